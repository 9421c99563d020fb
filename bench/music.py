"""Real-time factor (seconds of audio per second of compute) through the studio's API versus a direct
transformers call on the same MusicGen model and settings.

    python bench/music.py [--model FOLDER_OR_ID] [--seconds 4] [--runs 4]

Without --model it builds the tiny local MusicGen (random weights). The direct call runs in this process, the
studio as its own server process (as users run it); after one warm-up each, the two alternate, and the medians
and their ratio are printed (goal: studio overhead within 5%).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a local folder or hub id (default: the tiny MusicGen)")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import torch
    from _server import start_studio
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    from core import tiny

    work = Path(tempfile.mkdtemp(prefix="bench-music-"))
    model_id = args.model or str(tiny.ensure("tiny:musicgen", work / "tiny"))
    server, client = start_studio(
        {
            "STUDIO_MUSIC_MODEL": model_id,
            "STUDIO_OUTPUT_DIR": str(work / "outputs"),
            "STUDIO_DEVICE": "cpu",
            "STUDIO_ALLOW_CUSTOM_MODELS": "1",
        }
    )
    model = MusicgenForConditionalGeneration.from_pretrained(model_id, dtype=torch.float32, use_safetensors=True)
    processor = AutoProcessor.from_pretrained(model_id)
    inputs = processor(text=["lo-fi hip hop with warm piano"], padding=True, return_tensors="pt")
    frame_rate = model.config.audio_encoder.frame_rate
    tokens = round(args.seconds * frame_rate) + model.decoder.config.num_codebooks - 1

    def direct() -> None:
        torch.manual_seed(1)
        with torch.inference_mode():
            model.generate(**inputs, do_sample=True, top_k=250, guidance_scale=3.0, max_new_tokens=tokens)

    def studio() -> None:
        client.predict(
            prompt="lo-fi hip hop with warm piano", duration=args.seconds, seed=1, api_name="/generate_music"
        )

    try:
        direct(), studio()  # warm-up: loads, first-call costs
        times: dict[str, list[float]] = {"direct": [], "studio": []}
        for _ in range(args.runs):  # interleaved, so that the machine's own ups and downs hit both sides alike
            for name, fn in (("direct", direct), ("studio", studio)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait(timeout=30)

    d, s = (statistics.median(times[n]) for n in ("direct", "studio"))
    print(f"model {model_id}, {args.seconds:g} s of audio, {args.runs} runs, torch threads {torch.get_num_threads()}")
    print(
        f"median real-time factor: direct transformers {args.seconds / d:.2f}x, studio API {args.seconds / s:.2f}x; "
        f"studio time / direct time {s / d:.3f} (goal <= 1.05)"
    )
    print(f"per request the studio adds {s - d:.3f} s (HTTP, queue, progress updates, WAV + pictures + signing)")


if __name__ == "__main__":
    main()
