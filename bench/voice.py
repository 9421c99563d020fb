"""Real-time factor of the Voice tab's engines on this machine: seconds of compute per second of speech (under 1 is
faster than real time), each engine called directly and through the studio's engine (`speak`), which adds the
sentence loop, the WAV with its labels and the recipe.

    python bench/voice.py [--runs 3] [--device cpu|cuda] [--dia]

- hibari "heart": the real voice (its weights are in the package).
- VITS at MMS-TTS's real size (transformers' default VitsConfig, the facebook/mms-tts-* layout) with random weights:
  the compute is real, the lengths random (so the factor is per second of whatever it made).
- --dia: Dia-1.6B's real layout with random weights, a few frames with a 5 s reference (about 7 GB of memory; on
  a CPU this takes minutes): seconds of compute per second of cloned speech.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TEXT = (
    "The studio speaks this paragraph aloud, one sentence after another. Each sentence is measured on its own. "
    "A listener should hear every word clearly, at an even pace, without clicks between the sentences."
)


def median_rtf(fn, runs: int) -> tuple[float, float]:
    """(median seconds of compute per second of speech, seconds of speech), over `runs` calls of fn() -> seconds."""
    fn()  # warm up: loads, first-call allocations
    factors, made = [], 0.0
    for _ in range(runs):
        start = time.perf_counter()
        made = fn()
        factors.append((time.perf_counter() - start) / made)
    return statistics.median(factors), made


def hibari(runs: int, studio) -> None:
    from hibari import SAMPLE_RATE, Hibari

    tts = Hibari(threads=min(4, os.cpu_count() or 1))
    direct, seconds = median_rtf(lambda: len(tts(TEXT, seed=0)) / SAMPLE_RATE, runs)
    through, _ = median_rtf(lambda: studio("hibari:heart"), runs)
    print(f"hibari heart      direct {direct:.3f}  studio {through:.3f}  ({seconds:.1f} s of speech)")


def vits(runs: int, device: str, studio, folder: Path) -> None:
    import torch
    from transformers import AutoTokenizer, VitsConfig, VitsModel

    from core import tiny

    letters = tiny.ensure("tiny:vits", folder / "tiny")  # its letter tokenizer, as MMS-TTS's English reads text
    tokenizer = AutoTokenizer.from_pretrained(letters)
    torch.manual_seed(0)
    model = VitsModel(VitsConfig(vocab_size=len(tokenizer))).to(device).eval()
    real = folder / "mms-size"
    model.save_pretrained(real)
    tokenizer.save_pretrained(real)
    inputs = tokenizer(TEXT.lower(), return_tensors="pt").to(device)

    def direct() -> float:
        with torch.inference_mode():
            return model(**inputs).waveform.shape[-1] / model.config.sampling_rate

    factor, seconds = median_rtf(direct, runs)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    through, _ = median_rtf(lambda: studio(str(real)), runs)
    print(f"VITS (MMS size, {params:.0f}M)  direct {factor:.3f}  studio {through:.3f}  ({seconds:.1f} s made)")


def dia(device: str) -> None:
    import numpy as np
    import torch
    from transformers import (
        DacConfig,
        DacModel,
        DiaConfig,
        DiaFeatureExtractor,
        DiaForConditionalGeneration,
        DiaProcessor,
        DiaTokenizer,
    )

    torch.manual_seed(0)
    model = DiaForConditionalGeneration(DiaConfig()).to(device).eval()
    codec = DacModel(DacConfig(sampling_rate=44100)).to(device).eval()  # descript/dac_44khz's layout
    processor = DiaProcessor(DiaFeatureExtractor(sampling_rate=44100, hop_length=512), DiaTokenizer(), codec)
    t = np.arange(5 * 44100) / 44100
    voice = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    inputs = processor(
        text=["[S1] This is my voice, five seconds of it. Hello there, how are you today?"],
        audio=[voice], sampling_rate=44100, padding=True, return_tensors="pt",
    ).to(device)  # fmt: skip
    timings = {}
    for frames in (8, 24):
        start = time.perf_counter()
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=frames, min_new_tokens=frames, guidance_scale=3.0, do_sample=True)
        timings[frames] = time.perf_counter() - start
    per_frame = (timings[24] - timings[8]) / 16
    print(f"Dia 1.6B          {per_frame:.2f} s per frame -> {per_frame * 44100 / 512:.0f} s per second of speech")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dia", action="store_true", help="also Dia-1.6B's real layout (minutes on a CPU)")
    args = parser.parse_args()

    from core.models import ModelCache
    from core.settings import Settings
    from tabs.voice.engine import SpeechParams, speak

    folder = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    settings = Settings(output_dir=folder / "out", device=args.device, offline=True, allow_custom_models=True)
    cache = ModelCache(device=args.device, offline=True, tiny_dir=folder / "tiny")

    def studio(voice: str) -> float:
        done = list(speak(cache, settings, SpeechParams(TEXT, voice=voice, seed=0)))[-1]
        return done.recipe["samples"] / done.recipe["sampling_rate"]

    print(f"seconds of compute per second of speech (median of {args.runs}; {os.cpu_count()} CPUs, {args.device})")
    hibari(args.runs, studio)
    vits(args.runs, args.device, studio, folder)
    if args.dia:
        dia(args.device)


if __name__ == "__main__":
    main()
