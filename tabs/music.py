"""Music tab: text-to-music with MusicGen through transformers, progress in seconds of audio, WAVs with recipes.

audiocraft (MusicGen's own package) pins torch 2.1 and old torchaudio/xformers, so it cannot live beside current
gradio, diffusers and transformers; the same checkpoints run through transformers' MusicGen classes.
Reads top to bottom: model choices, the engine (`generate_music`, plain Python), then the UI (`build`).
"""

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core import checks, hub, outputs, provenance
from core import sampling as sampler
from core.device import Worker, gpu, import_lock, in_passing_thread
from core.errors import Stopped, UserError
from core.models import ModelCache
from core.settings import Settings

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
MAX_MELODY_SECONDS = 30
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MAX_CLIP_SECONDS = 600  # the longest clip the tab continues (only its end is heard by the model: CONTEXT_SECONDS)
CONTEXT_SECONDS = 10.0  # how much of a clip's end MusicGen hears when it continues it (audiocraft's demo: 2-10 s)
CROSSFADE_S = 0.05  # the clip's end fades into the model's version of it, so the join does not click
UNREADABLE = "The {what} is not an audio file the studio can read (WAV, FLAC, OGG or MP3)."
MELODY_UNREADABLE = UNREADABLE.format(what="melody")
CLIP_UNREADABLE = UNREADABLE.format(what="clip to continue")
# How MusicGen-Melody turns audio into chroma (its preprocessor_config.json, when the model folder has one).
CHROMA_DEFAULTS = {"sampling_rate": 32000, "n_fft": 16384, "hop_length": 4096, "chunk_length": 30, "num_chroma": 12}
UPDATE_EVERY_S = 0.25  # seconds between progress updates sent to the page
PEAK = 0.98  # peak level after normalisation (about -0.2 dBFS): loud, never clipped


def model_choices(settings: Settings) -> list[str]:
    first = settings.model_for("music")
    others = TINY if settings.tiny else CURATED
    return [first] + [m for m in others if m != first]


@dataclass(frozen=True)
class MusicParams:
    prompt: str
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
    model = cls.from_pretrained(folder, dtype=dtype, use_safetensors=True, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    chroma = None
    if melody:
        chroma = dict(CHROMA_DEFAULTS)
        pre = folder / "preprocessor_config.json"
        if pre.exists():
            chroma.update({k: v for k, v in json.loads(pre.read_text()).items() if k in CHROMA_DEFAULTS})
    return LoadedMusic(tokenizer=tokenizer, model=model.to(device).eval(), chroma=chroma)


def read_clip(path: Any, what: str = "melody", limit: float = MAX_MELODY_SECONDS) -> tuple[Any, int]:
    """An audio clip (a melody, or a clip to continue) as mono float32 samples and its rate; refuses unreadable,
    empty and over-long clips."""
    import numpy as np
    import soundfile as sf

    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception:
        raise UserError(UNREADABLE.format(what=what)) from None
    if audio.shape[0] == 0:
        raise UserError(f"The {what} holds no sound: record or upload a clip of a few seconds.")
    seconds = audio.shape[0] / rate
    if seconds > limit:
        raise UserError(f"The {what} is {seconds:.0f} s long; the limit is {limit:g} s. Trim it first.")
    return np.ascontiguousarray(audio.mean(axis=1)), int(rate)


def studio_description(path: Any) -> str | None:
    """The description inside a WAV this studio made (its RIFF INFO title), or None."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            tags = f.copy_metadata()
    except Exception:
        return None
    made_here = tags.get("software", "").startswith(outputs.STUDIO_NAME)  # libsndfile appends its own name
    return tags.get("title") if made_here else None


def _sha256(path: Any) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def melody_chroma(audio: Any, rate: int, spec: dict) -> Any:
    """MusicGen-Melody's conditioning: the dominant pitch class of each frame, one-hot, (1, frames, chroma).

    The same computation as transformers' MusicgenMelodyFeatureExtractor (which needs torchaudio): resample,
    pad to the chunk length, power spectrogram (reflect-padded, centred), chroma filter bank, argmax."""
    import numpy as np
    import torch

    with import_lock:
        from transformers.audio_utils import chroma_filter_bank

    target = spec["sampling_rate"]
    audio = provenance.resample(audio, rate, target)
    n = spec["chunk_length"] * target
    audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
    wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    n_fft = spec["n_fft"]
    power = (
        torch.stft(
            wav,
            n_fft,
            hop_length=spec["hop_length"],
            win_length=n_fft,
            window=torch.hann_window(n_fft),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        ).abs()
        ** 2
    )
    filters = torch.from_numpy(
        chroma_filter_bank(sampling_rate=target, num_frequency_bins=n_fft, tuning=0, num_chroma=spec["num_chroma"])
    ).float()
    chroma = torch.nn.functional.normalize(
        torch.einsum("cf,...ft->...ct", filters, power), p=float("inf"), dim=-2, eps=1e-6
    ).transpose(1, 2)
    return torch.zeros_like(chroma).scatter_(-1, chroma.argmax(-1, keepdim=True), 1.0)


def _melody_inputs(clip: tuple[Any, int], melody: Any, loaded: LoadedMusic, dtype: Any) -> tuple[Any, dict]:
    """The melody model's chroma features for a clip (samples, rate), and what the recipe says about the clip."""
    samples, rate = clip
    chroma = in_passing_thread(lambda: melody_chroma(samples, rate, loaded.chroma))  # torch ops: see core.device
    sounding_frames = round(len(samples) / rate * loaded.chroma["sampling_rate"]) // loaded.chroma["hop_length"]
    sounding = chroma[0, : max(1, sounding_frames)]  # (frames, 12): the clip itself, not the padding after it
    info = {
        "seconds": round(len(samples) / rate, 3),
        "sha256": _sha256(melody),
        "main_pitch_class": PITCH_CLASSES[int(sounding.sum(0).argmax())],
    }
    return chroma.to(dtype), info


@dataclass
class Continuation:
    """A clip the model goes on from."""

    audio: Any  # (samples,) all of it, mono at the model's sampling rate: it opens the result unchanged
    context: Any  # (samples,) its end, a whole number of codec frames: what the model hears
    info: dict  # what the recipe says about it


def _read_clip_to_continue(path: Any) -> tuple[Any, int]:
    samples, rate = read_clip(path, "clip to continue", MAX_CLIP_SECONDS)
    if len(samples) < rate:
        raise UserError("The clip to continue is shorter than 1 s: the model needs a second or more to go on from.")
    return samples, rate


def _continuation(clip: tuple[Any, int], path: Any, loaded: LoadedMusic, new_tokens: int) -> Continuation:
    """What the model goes on from, checked against what the model can hold (its end and `new_tokens` steps)."""
    samples, rate = clip
    if int(loaded.model.decoder.config.audio_channels) != 1:
        raise UserError("This model makes stereo music: continuing a clip needs a mono MusicGen model.")
    audio = provenance.resample(samples, rate, loaded.sampling_rate)
    hop = round(loaded.sampling_rate / loaded.frame_rate)  # samples per codec frame
    frames = min(len(audio), round(CONTEXT_SECONDS * loaded.sampling_rate)) // hop
    positions = int(loaded.model.decoder.config.max_position_embeddings)
    if frames + new_tokens + 1 > positions:
        raise UserError(
            f"This model holds {positions / loaded.frame_rate:.0f} s at most: with the clip's last "
            f"{frames / loaded.frame_rate:g} s that is too long. Ask for fewer seconds."
        )
    info = {
        "seconds": round(len(audio) / loaded.sampling_rate, 3),
        "context_seconds": round(frames * hop / loaded.sampling_rate, 3),
        "sha256": _sha256(path),
    }
    return Continuation(audio, audio[len(audio) - frames * hop :], info)


def _prompt_codes(lm: Any, context: Any, num_codebooks: int) -> Any:
    """The clip's end as MusicGen's decoder input: its EnCodec codes, (num_codebooks, frames). EnCodec's quantizer
    is residual, so the first num_codebooks codebooks are a coarser code of the same sound."""
    import torch

    values = torch.from_numpy(context)[None, None].to(lm.device, lm.audio_encoder.dtype)  # (batch, channels, samples)
    return lm.audio_encoder.encode(values).audio_codes[0, 0, :num_codebooks]  # (chunks, batch, codebooks, frames)


def _recipe(
    model_id: str,
    params: MusicParams,
    cache: ModelCache,
    loaded: LoadedMusic,
    audio: Any,
    melody_info: dict | None,
    going_on: Continuation | None,
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


def _joined(clip: Any, made: Any, clip_end: int, new_samples: int, rate: int) -> Any:
    """The whole clip, then what the model added after `clip_end` in `made` (its own rendering of the clip's end and
    the continuation). Over the clip's last CROSSFADE_S the clip fades into that rendering, so the join does not
    click."""
    import numpy as np

    n = min(round(CROSSFADE_S * rate), len(clip), clip_end)
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    head = np.array(clip, dtype=np.float32)
    head[len(head) - n :] = head[len(head) - n :] * (1 - ramp) + made[clip_end - n : clip_end] * ramp
    return np.concatenate([head, np.asarray(made[clip_end : clip_end + new_samples], dtype=np.float32)])


def check_params(settings: Settings, p: MusicParams) -> MusicParams:
    return MusicParams(
        prompt=checks.check_text(p.prompt, "description", settings.max_prompt_chars),
        duration=float(checks.check_number(p.duration, "duration in seconds", 1, settings.max_music_seconds)),
        top_k=int(checks.check_number(p.top_k, "top-k", 0, 2048, integer=True)),
        top_p=float(checks.check_number(p.top_p, "top-p", 0, 1)),
        temperature=float(checks.check_number(p.temperature, "temperature", 0.05, 4)),
        guidance_scale=float(checks.check_number(p.guidance_scale, "guidance scale", 0, 15)),
        seed=checks.resolve_seed(p.seed),
    )


def waveform_picture(audio: Any, width: int = 800, height: int = 160) -> Any:
    """A PIL picture of a mono waveform (samples,): the min-max envelope per pixel column."""
    import numpy as np
    from PIL import Image, ImageDraw

    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    columns = np.array_split(samples, width) if samples.size >= width else [samples]
    image = Image.new("RGB", (width, height), (250, 250, 252))
    draw = ImageDraw.Draw(image)
    mid = height / 2
    step = width / len(columns)
    for x, col in enumerate(columns):
        if col.size:
            top, bottom = mid - float(col.max()) * mid * 0.95, mid - float(col.min()) * mid * 0.95
            draw.line([(x * step, top), (x * step, bottom)], fill=(79, 70, 229))
    draw.line([(0, mid), (width, mid)], fill=(200, 200, 210))
    return image


def spectrogram_picture(audio: Any, rate: int, width: int = 800, height: int = 240) -> Any:
    """A PIL picture of the log-magnitude spectrogram (time left to right, low pitches at the bottom)."""
    import numpy as np
    from PIL import Image
    from scipy.signal import stft

    _, _, z = stft(np.asarray(audio, np.float32), fs=rate, nperseg=1024, noverlap=768)
    db = 20 * np.log10(np.abs(z) + 1e-6)
    db = np.clip((db - db.max() + 80) / 80, 0, 1)[::-1]  # the top 80 dB, high frequencies on top
    rgb = np.stack([db**0.5, db**1.5, 0.35 + 0.65 * db], -1)  # dark blue to light yellow
    return Image.fromarray((rgb * 255).astype(np.uint8)).resize((width, height))


def peak_normalise(audio: Any) -> Any:
    import numpy as np

    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return audio * (PEAK / peak) if peak > 0 else audio


def _save_wav(settings: Settings, audio: Any, sampling_rate: int, recipe: dict, edited: bool = False) -> Path:
    """16-bit PCM WAV with the recipe in its RIFF INFO tags (and in full in the JSON beside it), AudioSeal's
    watermark when the operator has provided its weights, and signed content credentials. `edited`: the audio
    opens with a clip the studio was given (a continuation), so it is a composite, not wholly generated."""
    import soundfile as sf

    marked = provenance.audioseal_present(settings.audioseal_dir)
    if marked:
        audio = peak_normalise(provenance.audioseal_mark(audio, sampling_rate, settings.audioseal_dir))

    path = outputs.new_output_path(settings.output_dir, "music", recipe["prompt"], "wav")
    source_type, action = (provenance.COMPOSITE, "c2pa.edited") if edited else (provenance.GENERATED, "c2pa.created")
    compact = {
        k: recipe[k]
        for k in (
            "tab",
            "model",
            "revision",
            "duration",
            "top_k",
            "top_p",
            "temperature",
            "guidance_scale",
            "seed",
            "sampling_rate",
            "mode",
            "continued_from",
        )
        if recipe.get(k) is not None
    }
    with outputs.atomic_target(path) as tmp:
        with sf.SoundFile(tmp, "w", samplerate=sampling_rate, channels=1, subtype="PCM_16", format="WAV") as f:
            f.title = recipe["prompt"][:500]
            f.comment = json.dumps(compact)[:2000]  # INFO ICMT over ~2 kB is dropped silently by libsndfile
            f.software = outputs.STUDIO_NAME
            f.artist = f"{outputs.STUDIO_NAME} ({recipe['model']})"
            f.copyright = outputs.AI_STATEMENT
            f.date = recipe["created"][:10]
            f.write(audio)
        recipe["provenance"] = {
            "digital_source_type": provenance.IPTC + source_type,
            "content_credentials": f"C2PA, {action}",
            "watermark": "AudioSeal, payload GA" if marked else "none (STUDIO_AUDIOSEAL_DIR is not set)",
        }
        signed = provenance.sign(
            tmp.read_bytes(),
            "audio/wav",
            provenance.studio_credentials(settings),
            title=path.name,
            source_type=source_type,
            action=action,
            recipe=recipe,
        )
        tmp.write_bytes(signed)
    outputs.save_recipe(path, recipe)
    return path


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
    progress, then the saved WAV."""
    params = check_params(settings, params)
    clip = read_clip(melody) if melody not in (None, "") else None
    source = _read_clip_to_continue(continue_from) if continue_from not in (None, "") else None
    model_id = checks.check_model_choice(
        model or settings.model_for("music"), model_choices(settings), settings.allow_custom_models, SETTING
    )
    stop = stop or threading.Event()
    with cache.model("music", model_id, load_music_model, setting=SETTING, progress=progress) as loaded:
        with import_lock:
            import torch
            from transformers import StoppingCriteria, StoppingCriteriaList

        lm, k = loaded.model, loaded.num_codebooks
        if clip is not None and loaded.chroma is None:
            raise UserError(
                "This model does not follow melodies: choose a melody model (musicgen-melody) or remove "
                "the melody clip."
            )
        frames = round(params.duration * loaded.frame_rate)
        new_tokens = frames + k - 1  # the delay pattern spends num_codebooks - 1 steps before the first full frame
        going_on = _continuation(source, continue_from, loaded, new_tokens) if source is not None else None
        heard = len(going_on.context) if going_on else 0  # samples of the clip the model goes on from
        inputs = dict(loaded.tokenizer([params.prompt], padding=True, return_tensors="pt"))
        melody_info = None
        if clip is not None:
            inputs["input_features"], melody_info = _melody_inputs(clip, melody, loaded, lm.dtype)
        inputs = {name: value.to(lm.device) for name, value in inputs.items()}
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
                    inputs["decoder_input_ids"] = _prompt_codes(lm, going_on.context, k)
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
        new_samples = frames * loaded.sampling_rate // round(loaded.frame_rate)
        made = job.result()
        joined = _joined(going_on.audio, made, heard, new_samples, loaded.sampling_rate) if going_on else None
        audio = peak_normalise(made[:new_samples] if joined is None else joined)
        recipe = _recipe(model_id, params, cache, loaded, audio, melody_info, going_on)
        path = _save_wav(settings, audio, loaded.sampling_rate, recipe, edited=bool(going_on))
        yield MusicUpdate(
            params.duration,
            params.duration,
            time.perf_counter() - start,
            params.seed,
            path=path,
            waveform=waveform_picture(audio),
            recipe=recipe,
            done=True,
            spectrogram=spectrogram_picture(audio, loaded.sampling_rate),
            steps_per_second=steps[0] / max(time.perf_counter() - start, 1e-9),
            length=len(audio) / loaded.sampling_rate,
        )


# ---------------------------------------------------------------- UI ----------------------------------------------


def build(ctx) -> None:
    """The Music tab. `ctx` is core.ui.Context."""
    import gradio as gr

    from core import ui

    settings, cache = ctx.settings, ctx.cache
    choices = model_choices(settings)
    d = MusicParams(prompt="")

    with gr.Row():
        with gr.Column(scale=2):
            prompt = gr.Textbox(
                "",
                label="Describe the music",
                lines=3,
                elem_id="music-prompt",
                max_length=settings.max_prompt_chars,
                placeholder="lo-fi hip hop with warm piano and soft vinyl crackle",
            )
            ctx.shared["music_prompt"] = prompt
            ctx.shared["music_expand"] = gr.Button("✨ Expand description", size="sm", elem_id="music-expand")
            duration = ui.slider(
                1,
                settings.max_music_seconds,
                value=min(d.duration, settings.max_music_seconds),
                step=1,
                label="Duration (seconds)",
            )
            preset = gr.Radio(
                list(PRESETS),
                label="Preset",
                elem_id="music-preset",
                info="Sketch: short and quick. Full: long, several times slower.",
            )
            preset_note = gr.Markdown()
            preset.input(
                lambda name: (PRESETS[name][0], PRESETS[name][1]),
                preset,
                [duration, preset_note],
                api_visibility="private",
                queue=False,
            )
            with gr.Row():
                generate = gr.Button("Generate", variant="primary", elem_id="music-generate")
                stop = gr.Button("Stop", variant="stop", elem_id="music-stop")
            model = gr.Dropdown(
                visible=not settings.classroom,
                choices=choices,
                value=choices[0],
                label="Model",
                allow_custom_value=settings.allow_custom_models,
            )
            with gr.Accordion("Sampling", open=False, visible=not settings.classroom):
                top_k = ui.slider(0, 500, value=d.top_k, step=1, label="Top-k (0 = off)")
                top_p = ui.slider(0, 1, value=d.top_p, step=0.01, label="Top-p (0 = off)")
                temperature = ui.slider(0.05, 2, value=d.temperature, step=0.05, label="Temperature")
                guidance = ui.slider(
                    0, 10, value=d.guidance_scale, step=0.5, label="Classifier-free guidance (1 = off)"
                )
                seed = ui.checked(gr.Number, checks.SEED_UNREADABLE)(-1, label="Seed (-1 = random)", precision=0)
            melody = ui.checked(gr.Audio, MELODY_UNREADABLE)(
                label="Melody to follow (melody models only, up to 30 s)",
                sources=["upload", "microphone"],
                type="filepath",
                elem_id="music-melody",
            )
            with gr.Accordion("Continue a clip", open=False, elem_id="music-continue-panel"):
                clip = ui.checked(gr.Audio, CLIP_UNREADABLE)(
                    label=f"Clip to continue (its last {CONTEXT_SECONDS:g} s are what the model hears)",
                    sources=["upload", "microphone"],
                    type="filepath",
                    elem_id="music-clip",
                )
                gr.Markdown(
                    "The result is the whole clip, then *Duration* seconds more in the style of the description "
                    "(blank: the description inside a clip made here)."
                )
                continue_clip = gr.Button("Continue the clip", elem_id="music-continue-clip")
        with gr.Column(scale=3):
            status = gr.Markdown(elem_id="music-status")
            audio = gr.Audio(label="Result", type="filepath", interactive=False, elem_id="music-audio")
            picture = gr.Image(label="Waveform", interactive=False, height=180, elem_id="music-waveform")
            continue_result = gr.Button("➕ Continue this result", size="sm", elem_id="music-continue")
            seed_used = ui.seed_used_box("music-seed-used")
            recipe_view = gr.JSON(label="Recipe", open=False)

    @ui.user_errors
    def generate_music_ui(
        prompt,
        duration,
        top_k,
        top_p,
        temperature,
        guidance_scale,
        seed,
        model,
        melody=None,
        continue_from=False,
        history=None,
        ticket=None,
        request: gr.Request = None,
        progress=gr.Progress(track_tqdm=True),
    ):
        """/generate_music, and /continue_music: `duration` seconds more after the end of the `continue_from` clip
        (a blank description then takes the one inside the clip). False: nothing to continue (/generate_music)."""
        if continue_from is False:
            continue_from = None
        elif not continue_from:  # the clip box is empty
            raise UserError("Add a clip to continue (upload or record one), or make some music first.")
        elif not str(prompt or "").strip():
            prompt = studio_description(continue_from) or prompt
        params = MusicParams(prompt, duration, top_k, top_p, temperature, guidance_scale, seed)
        with ui.job(ctx, request, "music", ticket) as stop_event:
            for u in generate_music(
                cache,
                settings,
                params,
                model=model,
                melody=melody,
                continue_from=continue_from,
                stop=stop_event,
                progress=progress,
            ):
                if not u.done:
                    yield gr.skip(), gr.skip(), u.status(), u.seed, gr.skip(), gr.skip(), gr.skip()
                else:
                    entry = ui.history_entry("Music", params.prompt, [u.path, outputs.recipe_path(u.path)])
                    how_it_went = (u.spectrogram, u.steps_per_second, u.seconds_total)
                    yield (
                        str(u.path),
                        u.waveform,
                        u.status(),
                        u.seed,
                        u.recipe,
                        ui.history_add(history, entry),
                        how_it_went,
                    )

    gr.Examples(EXAMPLES, prompt, label="Try")
    settings_in = [prompt, duration, top_k, top_p, temperature, guidance, seed, model, melody]
    inputs = [*settings_in, gr.State(False), ctx.history]  # nothing to continue (a State: not part of the API)
    with gr.Accordion("How it works: sound as tokens", open=settings.classroom, elem_id="music-how"):
        gr.Markdown(
            "MusicGen writes music as a stream of tokens (4 parallel codebooks, 50 steps per second of "
            "sound) that a neural codec (EnCodec) turns back into a waveform. The spectrogram shows the "
            "result: time left to right, pitch bottom to top, loudness as brightness."
        )
        spectrogram = gr.Image(label="Spectrogram", interactive=False, elem_id="music-how-spectrogram")
        speed = gr.Markdown(elem_id="music-how-speed")
    how = gr.State(None)

    def show_how(value):
        if not value:
            return None, ""
        picture, steps_per_second, seconds = value
        return picture, (
            f"The model produced **{steps_per_second:.0f} token steps per second** here "
            f"({steps_per_second * 4:.0f} tokens/s over 4 codebooks); {seconds:g} s of music needs "
            f"{seconds * 50:.0f} steps."
        )

    how.change(show_how, how, [spectrogram, speed], api_visibility="private", queue=False)
    outs = [audio, picture, status, seed_used, recipe_view, ctx.history, how]
    common = dict(
        concurrency_limit=settings.concurrency, concurrency_id="music", show_progress_on=[status], status=status
    )
    ui.queued(ctx, "music", generate.click, generate_music_ui, inputs, outs, api_name="generate_music", **common)
    ui.queued(ctx, "music", prompt.submit, generate_music_ui, inputs, outs, api_name=False, **common)
    continuing = [*settings_in, clip, ctx.history]
    ui.queued(
        ctx, "music", continue_clip.click, generate_music_ui, continuing, outs, api_name="continue_music", **common
    )

    def result_as_clip(result):
        if not result:
            raise gr.Error("Make some music first, then continue it.")
        return result

    # "Continue this result" puts the result in the clip box (so the user sees what is continued), then runs.
    taken = continue_result.click(result_as_clip, audio, clip, api_visibility="private", queue=False)
    ui.queued(ctx, "music", taken.success, generate_music_ui, continuing, outs, api_name=False, **common)

    ui.wire_stop(ctx, stop, "music", status)
