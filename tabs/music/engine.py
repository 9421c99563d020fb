"""Music tab: text-to-music with MusicGen through transformers, progress in seconds of audio, WAVs with recipes.

audiocraft (MusicGen's own package) pins torch 2.1 and old torchaudio/xformers, so it cannot live beside current
gradio, diffusers and transformers; the same checkpoints run through transformers' MusicGen classes.
Reads top to bottom: model choices, the engine (`generate_music`, plain Python), then the UI (`build`).
"""

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, asdict, dataclass
from pathlib import Path
from typing import Any

from core import audio as audio_files
from core import checks, hub, outputs, saving, serving
from core import sampling as sampler
from core.audio import peak_normalise, spectrogram_picture, waveform_picture
from core.device import Worker, gpu, import_lock, imported
from core.errors import Stopped, UserError
from core.models import ModelCache
from core.settings import Settings
from tabs.music import clips
from tabs.music.clips import CHROMA_DEFAULTS, read_clip

SETTING = "STUDIO_MUSIC_MODEL"
CURATED = (
    "facebook/musicgen-small",  # default: 300M parameters, the one a laptop CPU can run
    "facebook/musicgen-medium",  # 1.5B: better, wants a GPU
    "facebook/musicgen-melody",  # 1.5B: also follows a melody clip (its chroma)
)
TINY = ("tiny:musicgen", "tiny:musicgen-melody")
PRESETS = {
    "Sketch": (4, "Sketch: 4 s, to hear an idea quickly."),
    "Balanced": (8, "Balanced: 8 s, the default."),
    "Full": (20, "Full: 20 s; on a CPU this takes several times longer than it plays."),
}
EXAMPLES = [
    "lo-fi hip hop with warm piano and soft vinyl crackle",
    "upbeat 80s synth-pop with punchy drums and a catchy bass line",
    "calm ambient pads with distant bells, slow tempo",
]
UPDATE_EVERY_S = 0.25  # seconds between progress updates sent to the page


def model_choices(settings: Settings) -> list[str]:
    first = settings.model_for("music")
    others = TINY if settings.tiny else CURATED
    return [first] + [m for m in others if m != first]


@dataclass(frozen=True)
class MusicParams:
    prompt: str
    _: KW_ONLY  # the rest by name only: a field added later never shifts another
    duration: float = 8.0  # seconds of audio
    top_k: int = 250  # 0 = off
    top_p: float = 0.0  # 0 = off
    temperature: float = 1.0
    guidance_scale: float = 3.0  # classifier-free guidance; 1 = off
    seed: int | None = -1


@dataclass
class MusicUpdate:
    seconds_done: float  # seconds of audio generated so far
    seconds_total: float
    elapsed: float  # wall-clock seconds
    seed: int
    path: Path | None = None  # the saved WAV, once done
    waveform: Any = None  # a PIL picture of the result, once done
    recipe: dict | None = None
    done: bool = False
    spectrogram: Any = None  # once done: a picture of the result's spectrogram (How it works)
    steps_per_second: float = 0.0  # once done: the model's token steps (all codebooks at once) per second
    length: float = 0.0  # once done: seconds in the saved file (more than seconds_total when a clip was continued)

    @property
    def eta(self) -> float:
        if not self.seconds_done:
            return 0.0
        return self.elapsed / self.seconds_done * (self.seconds_total - self.seconds_done)

    def status(self) -> str:
        if self.done:
            rtf = self.seconds_total / self.elapsed if self.elapsed else 0.0
            grown = f" The clip is now {self.length:.1f} s long." if self.length > self.seconds_total + 0.05 else ""
            return (
                f"Done: {self.seconds_total:g} s of audio in {self.elapsed:.1f} s ({rtf:.2f}x real time), "
                f"seed {self.seed}.{grown}"
            )
        return f"{self.seconds_done:.1f} / {self.seconds_total:g} s of audio · about {self.eta:.0f} s left"


@dataclass
class LoadedMusic:
    tokenizer: Any
    model: Any
    chroma: dict | None = None  # for melody models: how to compute chroma from a melody clip

    @property
    def sampling_rate(self) -> int:
        return int(self.model.config.audio_encoder.sampling_rate)

    @property
    def frame_rate(self) -> float:
        return float(self.model.config.audio_encoder.frame_rate)

    @property
    def num_codebooks(self) -> int:
        return int(self.model.decoder.config.num_codebooks)


def download_patterns(files: dict | None) -> list[str]:
    """A MusicGen repo's configs and tokenizer, and its transformers weights: model.safetensors where the repo has
    it, else pytorch_model.bin (facebook/musicgen-medium's main holds only that), which load_music_model reads with
    torch's weights_only loading: tensors only, no code runs. Never audiocraft's own state_dict.bin files."""
    has_safetensors = files is None or any(name.endswith(".safetensors") for name in files)
    return hub.ALLOW_PATTERNS + ([] if has_safetensors else ["pytorch_model*.bin"])


def load_music_model(folder: Path, device: str, dtype: Any) -> LoadedMusic:
    with import_lock:
        from transformers import (
            AutoTokenizer,
            MusicgenForConditionalGeneration,
            MusicgenMelodyForConditionalGeneration,
            StoppingCriteria,  # noqa: F401
        )

    folder = Path(folder)
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    melody = model_type == "musicgen_melody"
    cls = MusicgenMelodyForConditionalGeneration if melody else MusicgenForConditionalGeneration
    safe = any(folder.glob("*.safetensors"))  # else pytorch_model.bin, read by torch.load(weights_only=True)
    model = cls.from_pretrained(folder, dtype=dtype, use_safetensors=safe, weights_only=True, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    chroma = None
    if melody:
        chroma = dict(CHROMA_DEFAULTS)
        pre = folder / "preprocessor_config.json"
        if pre.exists():
            chroma.update({k: v for k, v in json.loads(pre.read_text()).items() if k in CHROMA_DEFAULTS})
    return LoadedMusic(tokenizer=tokenizer, model=model.to(device).eval(), chroma=chroma)


def _recipe(
    model_id: str,
    params: MusicParams,
    cache: ModelCache,
    loaded: LoadedMusic,
    audio: Any,
    melody_info: dict | None,
    going_on: clips.Continuation | None,
) -> dict:
    return outputs.base_recipe(
        "music",
        model_id,
        revision=hub.revision_of(getattr(loaded.model.config, "_name_or_path", "")),
        sampling_rate=loaded.sampling_rate,
        samples=int(audio.shape[0]),
        device=cache.device,
        melody=melody_info,
        mode="continue" if going_on else "generate",
        continued_from=going_on.info if going_on else None,
        dtype=str(cache.dtype).replace("torch.", ""),
        versions=outputs.library_versions("torch", "transformers"),
        **asdict(params),
    )


def check_params(settings: Settings, p: MusicParams) -> MusicParams:
    return MusicParams(
        prompt=checks.check_text(p.prompt, checks.named("prompt", "description"), settings.max_prompt_chars),
        duration=float(checks.check_number(p.duration, "duration", 1, settings.max_music_seconds, unit=" seconds")),
        top_k=int(checks.check_number(p.top_k, checks.named("top_k"), 0, 2048, integer=True)),
        top_p=float(checks.check_number(p.top_p, checks.named("top_p"), 0, 1)),
        temperature=float(checks.check_number(p.temperature, "temperature", 0.05, 4)),
        guidance_scale=float(checks.check_number(p.guidance_scale, checks.named("guidance_scale"), 0, 15)),
        seed=checks.resolve_seed(p.seed),
    )


def _wav_writer(cache: ModelCache, settings: Settings, audio: Any, sampling_rate: int) -> Callable[[Path, dict], str]:
    """For saving.finish: the music as a labelled WAV (see core.audio.wav_writer), titled by its description."""
    return audio_files.wav_writer(cache, settings, audio, sampling_rate, title="prompt", tagged=WAV_TAGGED)


WAV_TAGGED = (  # the recipe's fields that fit in the WAV's own comment tag
    "tab", "model", "revision", "duration", "top_k", "top_p", "temperature", "guidance_scale", "seed",
    "sampling_rate", "mode", "continued_from",
)  # fmt: skip


def _model_inputs(loaded: LoadedMusic, params: MusicParams, clip: Any, sha256: Any) -> tuple[dict, dict | None]:
    """The model's inputs on its device (the description's tokens; a melody's chroma), and the melody's recipe."""
    if clip is not None and loaded.chroma is None:
        raise UserError(
            "This model does not follow melodies: choose a melody model (musicgen-melody) or remove the melody clip."
        )
    inputs = dict(loaded.tokenizer([params.prompt], padding=True, return_tensors="pt"))
    melody_info = None
    if clip is not None:
        inputs["input_features"], melody_info = clips.melody_inputs(clip, sha256, loaded, loaded.model.dtype)
    return {name: value.to(loaded.model.device) for name, value in inputs.items()}, melody_info


def _compose(
    loaded: LoadedMusic, params: MusicParams, inputs: dict, going_on: Any, new_tokens: int, stop: Any, progress: Any
) -> Iterator[MusicUpdate]:
    """Generate `new_tokens` decoder steps on a Worker, yielding progress in seconds of audio a few times a second;
    returns (the samples made, (samples,) at the model's rate, and the decoder steps per second)."""
    torch = imported("torch")
    StoppingCriteria, StoppingCriteriaList = imported("transformers", "StoppingCriteria", "StoppingCriteriaList")

    lm, k = loaded.model, loaded.num_codebooks
    job = Worker("music-generate")
    steps = [0]  # generated so far: written by the worker, read by the polling loop below

    class Watch(StoppingCriteria):  # called once per generated step: cheap, no thread wake-ups
        def __call__(self, input_ids, scores, **kwargs):
            if stop.is_set() or job.halt.is_set():
                raise Stopped  # a clean way out of MusicGen's generate (returning True would crash it)
            steps[0] += 1
            return torch.zeros((input_ids.shape[0],), dtype=torch.bool, device=input_ids.device)

    # Sampling draws from this request's own generator (see core.sampling): the same seed gives the same music
    # even while other requests generate at the same time.
    sampling = dict(
        sampler.GREEDY,
        guidance_scale=params.guidance_scale if params.guidance_scale > 1 else 1.0,
        logits_processor=sampler.seeded_processors(
            params.seed, temperature=params.temperature, top_k=params.top_k, top_p=params.top_p, device=lm.device
        ),
    )

    def run() -> Any:  # (samples,) at the model's sampling rate
        with torch.inference_mode():
            if going_on:  # the model's output then starts with its own rendering of the clip's end
                inputs["decoder_input_ids"] = clips.prompt_codes(lm, going_on.context, k)
            audio = lm.generate(
                **inputs, **sampling, max_new_tokens=new_tokens, stopping_criteria=StoppingCriteriaList([Watch()])
            )
        return audio[0, 0].float().cpu().numpy()

    start = time.perf_counter()
    with job.start(run):
        while not job.finished.wait(UPDATE_EVERY_S):  # poll a few times a second: the worker never waits for us
            done = min(params.duration, max(0, steps[0] - (k - 1)) / loaded.frame_rate)
            if progress:
                progress(done / params.duration, f"{done:.1f} / {params.duration:g} s of audio")
            yield MusicUpdate(done, params.duration, time.perf_counter() - start, params.seed)
    return job.result(), steps[0] / max(time.perf_counter() - start, 1e-9)


@dataclass
class RenderedMusic:
    """What the model made for one request, before it is saved (picklable: it comes back from a Ray replica)."""

    audio: Any  # (samples,) float32, peak-normalised, at `rate`; a continued clip comes first
    rate: int  # samples per second
    recipe: dict
    steps_per_second: float  # the model's token steps (all codebooks at once) per second
    continued: bool  # it goes on from the user's clip (a composite, for provenance)


@gpu(duration=180)  # spaces.GPU on ZeroGPU Spaces, nothing elsewhere
def generate_music(
    cache: ModelCache,
    settings: Settings,
    params: MusicParams,
    *,
    model: str | None = None,
    melody: Any = None,
    continue_from: Any = None,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[MusicUpdate]:
    """Generate `params.duration` seconds of music for `params.prompt` (following the `melody` clip, a path, with a
    melody model; going on from the end of the `continue_from` clip, a path, which then opens the result): yields
    progress, then the saved WAV. With STUDIO_RAY_ADDRESS the model runs on the cluster's music engine."""
    # 1. check the inputs (the clips are read here: a replica on another machine gets their samples)
    params = check_params(settings, params)
    clip = (read_clip(melody), outputs.file_sha256(melody)) if melody not in (None, "") else None
    source = None
    if continue_from not in (None, ""):
        source = (clips.read_clip_to_continue(continue_from), outputs.file_sha256(continue_from))
    model_id = checks.check_model_choice(
        model or settings.model_for("music"), model_choices(settings), settings.allow_custom_models, SETTING
    )
    stop = stop or threading.Event()
    start = time.perf_counter()
    # 2-3. the model from the cache (here, or on a Ray replica) composes, with progress in seconds of audio
    if settings.ray_address:
        made = yield from serving.call(settings, "music", "render", (model_id, params, clip, source), stop, progress)
        made.recipe.update(served_by=serving.served_by(settings, "music"))
    else:
        made = yield from render_music(cache, model_id, params, clip, source, stop, progress)
    # 4. saved with its recipe
    write = _wav_writer(cache, settings, made.audio, made.rate)
    recipe = made.recipe
    path = saving.finish(settings, "music", recipe["prompt"], "wav", recipe, write, edited=made.continued).path
    yield MusicUpdate(
        params.duration,
        params.duration,
        time.perf_counter() - start,
        params.seed,
        path=path,
        waveform=waveform_picture(made.audio),
        recipe=recipe,
        done=True,
        spectrogram=spectrogram_picture(made.audio, made.rate),
        steps_per_second=made.steps_per_second,
        length=len(made.audio) / made.rate,
    )


def render_music(
    cache: ModelCache,
    model_id: str,
    params: MusicParams,
    clip: tuple | None,
    source: tuple | None,
    stop: threading.Event,
    progress: Any,
) -> Iterator[MusicUpdate]:
    """Steps 2 and 3 of generate_music for checked parameters: the model from the cache, held while it composes
    (after a melody `clip` or going on from `source`, each ((samples, rate), its file's SHA-256)); returns the new
    part (after the continued clip) as RenderedMusic. Runs here or on a Ray Serve replica (app.engines)."""
    options = dict(setting=SETTING, progress=progress, allow_patterns=download_patterns)
    with cache.model("music", model_id, load_music_model, **options) as loaded:
        frames = round(params.duration * loaded.frame_rate)
        new_tokens = frames + loaded.num_codebooks - 1  # the delay pattern spends num_codebooks - 1 steps first
        going_on = clips.continuation(*source, loaded, new_tokens) if source is not None else None
        inputs, melody_info = _model_inputs(loaded, params, *(clip or (None, None)))
        made, steps_per_second = yield from _compose(loaded, params, inputs, going_on, new_tokens, stop, progress)
    rate = loaded.sampling_rate
    new_samples = frames * rate // round(loaded.frame_rate)
    heard = len(going_on.context) if going_on else 0  # samples of the clip the model went on from
    joined = clips.joined(going_on.audio, made, heard, new_samples, rate) if going_on else None
    audio = peak_normalise(made[:new_samples] if joined is None else joined)
    recipe = _recipe(model_id, params, cache, loaded, audio, melody_info, going_on)
    return RenderedMusic(audio, rate, recipe, steps_per_second, going_on is not None)
