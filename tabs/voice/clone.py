"""Voice cloning: a short clip of a person's voice and its transcript -> that voice says new text. Consent first.

The engine is Dia (nari-labs/Dia-1.6B-0626: Apache-2.0 code and weights, not gated; its DAC codec
descript/dac_44khz is MIT) through transformers' own classes: the reference clip's transcript and the new text go
in as one [S1] turn, the clip's codes as the audio prompt, and the model goes on speaking in that voice. Nari's own
terms forbid cloning a person without their permission; the studio asks for that consent on every request, refuses
without it on the server, writes each clone to the audit log (hashes, never the voice) and labels the result as a
composite of a real person's voice.

On a CPU Dia makes about one second of speech a minute (measured on a 2-core machine); on a GPU it is many times
faster. Plain Python: the page, the API and the tests call `clone_voice`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any

from core import audio, checks, hub, outputs, provenance, saving
from core.device import Worker, gpu, import_lock, imported
from core.errors import Stopped, UserError
from core.models import ModelCache
from core.settings import Settings

SETTING = "STUDIO_VOICE_CLONE_MODEL"
CODEC = "descript/dac_44khz"  # Dia's codec (MIT); a model folder may hold its own in codec/
CONSENT_VERSION = "1"
CONSENT_TEXT = "This is my own voice, or I have the speaker's consent to clone it."
CONSENT_MISSING = f"Tick the consent box first: {CONSENT_TEXT} The studio does not clone voices without it."
STATEMENT = (
    "AI-generated speech in the voice of a real person (a composite made from their recording, with consent): "
    "made with a generative model in the Generative AI Studio."
)
RATE = 44100  # Dia's (DAC's) sampling rate
FRAMES_PER_S = RATE / 512  # ~86 codec frames a second
REFERENCE_SECONDS = (3.0, 20.0)  # Nari: 5-10 s works best; under ~3 s there is not enough voice to follow
MAX_TEXT_CHARS = 300  # Dia speaks up to ~30 s per turn (its decoder holds 3072 frames, prompt included)
MAX_POSITIONS = 3072
UPDATE_EVERY_S = 0.25
_seeding = threading.Lock()  # Dia samples from torch's global generator: one seeded run at a time
WAV_TAGGED = ("tab", "model", "mode", "seed", "sampling_rate", "consent_version")


@dataclass(frozen=True)
class CloneParams:
    text: str  # what the cloned voice says
    _: KW_ONLY
    reference_text: str = ""  # what is said in the reference clip, word for word
    seed: int | None = -1


@dataclass
class CloneUpdate:
    frames: int
    max_frames: int
    elapsed: float
    seed: int
    path: Path | None = None
    waveform: Any = None
    recipe: dict | None = None
    done: bool = False

    def status(self) -> str:
        if self.done:
            seconds = self.recipe["samples"] / RATE if self.recipe else 0.0
            return f"Done: {seconds:.1f} s in the cloned voice, in {self.elapsed:.0f} s, seed {self.seed}."
        if not self.frames:
            return "Listening to the reference clip…"
        per_second = self.elapsed / (self.frames / FRAMES_PER_S)
        return (
            f"{self.frames / FRAMES_PER_S:.1f} s of speech so far (at most {self.max_frames / FRAMES_PER_S:.0f} s) · "
            f"{per_second:.0f} s of work per second of speech here"
        )


@dataclass
class LoadedDia:
    processor: Any
    model: Any


def load_dia(folder: Path, device: str, dtype: Any, codec: Path) -> LoadedDia:
    """Dia and its processor, assembled from its parts: the codec from its own folder (Dia's processor_config.json
    names the codec by a path or hub id that need not exist on this machine)."""
    with import_lock:
        from transformers import DacModel, DiaFeatureExtractor, DiaForConditionalGeneration, DiaProcessor, DiaTokenizer

    processor = DiaProcessor(
        feature_extractor=DiaFeatureExtractor.from_pretrained(folder),
        tokenizer=DiaTokenizer.from_pretrained(folder),
        audio_tokenizer=DacModel.from_pretrained(codec, use_safetensors=True).to(device).eval(),
    )
    model = DiaForConditionalGeneration.from_pretrained(folder, use_safetensors=True, trust_remote_code=False)
    return LoadedDia(processor, model.to(device).eval())  # float32: bf16 was 5x slower on a CPU without bf16 units


def check_consent(consent: Any) -> None:
    if consent is not True:  # only a real True: "false", 0 or a missing value from an API client all refuse
        raise UserError(CONSENT_MISSING)


def read_reference(path: Any) -> tuple[Any, str, float]:
    """The reference clip at Dia's rate (mono float32), its SHA-256 and its length; refuses what is not audio, too
    short, too long or silent."""
    import numpy as np

    if not path:
        raise UserError("Add a reference clip (reference): 5-10 s of the voice to clone, recorded or uploaded.")
    low, high = REFERENCE_SECONDS
    samples, rate = audio.read_audio_clip(path, "reference clip (reference)", high)
    seconds = len(samples) / rate
    if seconds < low:
        raise UserError(
            f"The reference clip (reference) is {seconds:.1f} s long: give at least {low:g} s (5-10 s is best)."
        )
    if float(np.sqrt(np.mean(samples**2))) < 1e-3:
        raise UserError("The reference clip (reference) is silent: record the voice again, closer to the microphone.")
    return provenance.resample(samples, rate, RATE), outputs.file_sha256(path), seconds


def check_params(settings: Settings, p: CloneParams) -> CloneParams:
    if not settings.voice_cloning:
        raise UserError("Voice cloning is turned off on this studio (STUDIO_VOICE_CLONING=0).")
    text = checks.check_text(p.text, "text", MAX_TEXT_CHARS)
    said = checks.check_text(p.reference_text, checks.named("reference_text", "reference clip's transcript"), 1000)
    return CloneParams(text, reference_text=said, seed=checks.resolve_seed(p.seed))


def _codec_folder(cache: ModelCache, folder: Path) -> Path:
    if (folder / "codec" / "config.json").exists():
        return folder / "codec"
    return hub.resolve(CODEC, setting=SETTING, offline=cache.offline)


@gpu(duration=300)  # spaces.GPU on ZeroGPU Spaces, nothing elsewhere
def clone_voice(
    cache: ModelCache,
    settings: Settings,
    reference: Any,
    params: CloneParams,
    *,
    consent: Any,
    model: str | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[CloneUpdate]:
    """Say `params.text` in the voice of the `reference` clip (a path; `params.reference_text` is what it says):
    consent first; yields progress in frames, then the saved WAV, labelled as a composite of a real person's voice;
    the clone is written to the audit log."""
    # 1. check the inputs (consent first)
    check_consent(consent)
    params = check_params(settings, params)
    voice, sha256, seconds = read_reference(reference)
    model_id = model or settings.model_for("voice_clone")
    stop = stop or threading.Event()
    start = time.perf_counter()
    # 2-3. the model from the cache clones, with progress in frames
    made = yield from _speak_like(cache, model_id, voice, params, stop, progress, start)
    # 4. saved with its recipe, labelled a composite, and audited
    made = audio.peak_normalise(made, 0.9)
    recipe = outputs.base_recipe(
        "voice",
        model_id,
        mode="clone",
        text=params.text,
        reference_text=params.reference_text,
        cloned_from={"sha256": sha256, "seconds": round(seconds, 2)},
        seed=params.seed,
        sampling_rate=RATE,
        samples=int(made.size),
        consent_version=CONSENT_VERSION,
        consent_statement=CONSENT_TEXT,
        licence="Apache-2.0 (Dia-1.6B), MIT (DAC codec); Nari's terms forbid cloning anyone without their consent",
        device=cache.device,
        versions=outputs.library_versions("torch", "transformers"),
    )
    recipe["statement"] = STATEMENT
    write = audio.wav_writer(cache, settings, made, RATE, title="text", tagged=WAV_TAGGED)
    saved = saving.finish(settings, "voice", f"cloned {params.text}", "wav", recipe, write, edited=True)
    outputs.append_audit(
        settings.output_dir,
        {"kind": "voice clone", "reference_sha256": sha256, "consent_version": CONSENT_VERSION,
         "model": model_id, "output": saved.path.name},
    )  # fmt: skip
    yield CloneUpdate(
        int(made.size / RATE * FRAMES_PER_S), 0, time.perf_counter() - start, params.seed, path=saved.path,
        waveform=audio.waveform_picture(made), recipe=saved.recipe, done=True,
    )  # fmt: skip


def _speak_like(
    cache: ModelCache, model_id: str, voice: Any, params: CloneParams, stop: Any, progress: Any, start: float
) -> Iterator[CloneUpdate]:
    torch = imported("torch")
    StoppingCriteria, StoppingCriteriaList = imported("transformers", "StoppingCriteria", "StoppingCriteriaList")

    def load(folder: Path, device: str, dtype: Any) -> LoadedDia:
        return load_dia(folder, device, dtype, _codec_folder(cache, Path(folder)))

    options = dict(setting=SETTING, progress=progress, dtype=torch.float32)
    with cache.model("voice-clone", model_id, load, **options) as loaded:
        turn = f"[S1] {params.reference_text} {params.text}"
        inputs = loaded.processor(
            text=[turn], audio=[voice], sampling_rate=RATE, padding=True, return_tensors="pt"
        ).to(loaded.model.device)
        prompt = loaded.processor.get_audio_prompt_len(inputs["decoder_attention_mask"])
        # about 14 characters a second of speech; room for a slow speaker, never past the decoder's positions
        most = int(min(MAX_POSITIONS - prompt - 16, max(1.0, len(params.text) / 14 * 1.6) * FRAMES_PER_S))
        if most < FRAMES_PER_S:
            raise UserError("The reference clip leaves no room to speak: use a shorter clip (5-10 s).")
        job, frames = Worker("voice-clone"), [0]

        class Watch(StoppingCriteria):  # once per generated frame
            def __call__(self, input_ids, scores, **kwargs):
                if stop.is_set() or job.halt.is_set():
                    raise Stopped
                frames[0] += 1
                return torch.zeros((input_ids.shape[0],), dtype=torch.bool, device=input_ids.device)

        def run() -> Any:
            devices = [loaded.model.device] if loaded.model.device.type == "cuda" else []
            with _seeding, torch.random.fork_rng(devices=devices), torch.inference_mode():
                torch.manual_seed(params.seed)
                out = loaded.model.generate(
                    **inputs, max_new_tokens=most, stopping_criteria=StoppingCriteriaList([Watch()])
                )
            made = loaded.processor.batch_decode(out, audio_prompt_len=prompt)[0]
            return made.float().cpu().numpy().reshape(-1)

        with job.start(run):
            while not job.finished.wait(UPDATE_EVERY_S):
                if progress:
                    progress(frames[0] / most, f"{frames[0] / FRAMES_PER_S:.1f} s of speech")
                yield CloneUpdate(frames[0], most, time.perf_counter() - start, params.seed)
        made = job.result()
    if not made.size or not (abs(made) > 0).any():
        raise UserError("The cloned voice made no sound for this text: try again with another seed.")
    return made
