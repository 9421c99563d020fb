"""Voice tab: text to speech, sentence by sentence in order, with progress and Stop, saved as a labelled WAV.

Plain Python (no Gradio): parameters, input checks and `speak`, which the page, the API, the CLI and the tests all
call. The voices and the engines that speak them are in voices.py.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, asdict, dataclass
from pathlib import Path
from typing import Any

from core import audio, checks, outputs, saving, serving
from core.device import gpu, import_lock, in_passing_thread
from core.errors import Stopped, UserError
from core.models import ModelCache
from core.settings import Settings
from tabs.voice import voices
from tabs.voice.voices import Voice

PAUSE_S = 0.25  # silence between two sentences
PARAGRAPH_PAUSE_S = 0.6  # and between two paragraphs
MAX_PIECE_CHARS = 400  # a longer sentence is spoken in pieces, cut at clause punctuation (or spaces)
SPEED = (0.5, 2.0)
EXAMPLES = [
    "Welcome to the studio. Everything you hear was made by a model, on this machine, a moment ago.",
    "Once upon a time, a small robot learned to paint. Every morning it mixed the colours of the sky.",
    "Photosynthesis turns light, water and carbon dioxide into sugar. The oxygen we breathe is what is left over.",
]
WAV_TAGGED = ("tab", "model", "voice", "language", "speed", "seed", "sampling_rate", "sentences")


def voice_choices(settings: Settings) -> list[Voice]:
    return voices.catalogue(settings)


@dataclass(frozen=True)
class SpeechParams:
    text: str
    _: KW_ONLY  # the rest by name only
    voice: str = ""  # a voice id; blank: the default voice (or the first that speaks `language`)
    language: str = ""  # a language code; blank: the voice's own
    speed: float = 1.0  # 0.5 (slow) to 2 (fast)
    seed: int | None = -1  # the engine's noise (hibari, VITS); -1 = random


@dataclass
class SpeechUpdate:
    done_sentences: int
    total_sentences: int
    seconds: float  # seconds of speech made so far
    elapsed: float
    seed: int
    path: Path | None = None
    waveform: Any = None
    recipe: dict | None = None
    done: bool = False

    @property
    def eta(self) -> float:
        if not self.done_sentences:
            return 0.0
        return self.elapsed / self.done_sentences * (self.total_sentences - self.done_sentences)

    def status(self) -> str:
        if self.done:
            rtf = self.seconds / self.elapsed if self.elapsed else 0.0
            return (
                f"Done: {self.seconds:.1f} s of speech ({self.total_sentences} sentence"
                f"{'s' if self.total_sentences != 1 else ''}) in {self.elapsed:.1f} s ({rtf:.0f}x real time), "
                f"seed {self.seed}."
            )
        left = f" · about {self.eta:.0f} s left" if self.done_sentences else ""
        return f"Sentence {self.done_sentences + 1} of {self.total_sentences} · {self.seconds:.1f} s so far{left}"


def sentences(text: str) -> list[tuple[str, bool]]:
    """The text's sentences in order, each with True where a new paragraph starts after it; a sentence over
    MAX_PIECE_CHARS is cut at clause punctuation, else at spaces, so that no engine gets a page at once."""
    with import_lock:
        from hibari import Hibari

    out: list[tuple[str, bool]] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        said = [piece for sentence in Hibari.split_sentences(paragraph) for piece in _pieces(sentence.strip())]
        out += [(piece, i == len(said) - 1) for i, piece in enumerate(said)]
    return out


def _pieces(sentence: str) -> list[str]:
    if len(sentence) <= MAX_PIECE_CHARS:
        return [sentence] if sentence else []
    pieces, current = [], ""
    for part in re.split(r"(?<=[,;:—])\s+|\s+", sentence):
        if current and len(current) + len(part) + 1 > MAX_PIECE_CHARS:
            pieces.append(current)
            current = part
        else:
            current = f"{current} {part}" if current else part
    return pieces + [current] if current else pieces


def check_params(settings: Settings, p: SpeechParams) -> tuple[SpeechParams, Voice]:
    text = checks.check_text(p.text, "text", settings.max_speech_chars)
    if not re.search(r"\w", text):
        raise UserError("The text has no words to speak: type a sentence.")
    language = checks.check_text(p.language, "language", 40, required=False).strip()
    wanted = checks.check_text(p.voice, "voice", 500, required=False).strip()
    offered = voice_choices(settings)
    if not wanted:
        speaking = [v for v in offered if speaks(v, language)] if language else offered
        if not speaking:
            raise UserError(f"No voice here speaks '{language:.40}' (language). Leave it blank or pick a voice.")
        voice = speaking[0]
    else:
        voice = voices.find(settings, wanted)
        if language and voice.language and not speaks(voice, language):
            raise UserError(
                f"The voice {voice.id} speaks {voice.language_name}, not '{language:.40}' (language): leave the "
                "language blank or pick a voice that speaks it."
            )
    speed = float(checks.check_number(p.speed, "speed", *SPEED))
    seed = checks.resolve_seed(p.seed)
    return SpeechParams(text, voice=voice.id, language=voice.language or language, speed=speed, seed=seed), voice


def speaks(voice: Voice, language: str) -> bool:
    """Does `voice` speak `language` ("en" matches en-US and en-GB; "English" matches too)?"""
    wanted = language.strip().lower().replace("_", "-")
    code, name = voice.language.lower(), voice.language_name.lower()
    return wanted in (code, code.split("-")[0], name, name.split(" (")[0])


@dataclass
class RenderedSpeech:
    """What a voice said for one request, before it is saved (picklable: it comes back from a Ray replica)."""

    audio: Any  # (samples,) float32, peak-normalised
    rate: int
    engine: str  # "hibari" | "vits" | "piper"
    sentences: int


@gpu(duration=120)  # spaces.GPU on ZeroGPU Spaces (the VITS voices run on the GPU), nothing elsewhere
def speak(
    cache: ModelCache,
    settings: Settings,
    params: SpeechParams,
    *,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[SpeechUpdate]:
    """Speak `params.text` with its voice, sentence by sentence (progress after each; Stop before the next), then
    save the WAV with its recipe and labels; yields progress, then the saved file. With STUDIO_RAY_ADDRESS the voice
    speaks on the cluster's voice engine."""
    # 1. check the inputs
    params, voice = check_params(settings, params)
    stop = stop or threading.Event()
    start = time.perf_counter()
    # 2. the voice from the cache (here, or on a Ray replica) speaks, sentence by sentence
    served = None
    if settings.ray_address:
        made = yield from serving.call(settings, "voice", "render", (params,), stop, progress)
        served = serving.served_by(settings, "voice")
    else:
        made = yield from render_speech(cache, settings, params, stop, progress)
    # 3. saved with its recipe
    recipe = outputs.base_recipe(
        "voice",
        voice.id,
        engine=made.engine,
        licence=voice.licence,
        sampling_rate=made.rate,
        samples=int(made.audio.size),
        sentences=made.sentences,
        seeded=made.engine != "piper",  # a Piper voice's noise comes from inside its ONNX graph
        versions=outputs.library_versions("hibari-tts", "onnxruntime", "torch", "transformers"),
        served_by=served,
        **asdict(params),
    )
    write = audio.wav_writer(cache, settings, made.audio, made.rate, title="text", tagged=WAV_TAGGED)
    path = saving.finish(settings, "voice", params.text, "wav", recipe, write).path
    yield SpeechUpdate(
        made.sentences, made.sentences, made.audio.size / made.rate, time.perf_counter() - start, params.seed,
        path=path, waveform=audio.waveform_picture(made.audio), recipe=recipe, done=True,
    )  # fmt: skip


def render_speech(
    cache: ModelCache,
    settings: Settings,
    params: SpeechParams,
    stop: threading.Event,
    progress: Callable[[float, str], None] | None,
) -> Iterator[SpeechUpdate]:
    """Step 2 of speak for checked parameters: the voice from the cache says each sentence in turn; returns the
    speech as RenderedSpeech. Runs here or on a Ray Serve replica (app.engines)."""
    import numpy as np

    voice = voices.find(settings, params.voice)
    said = sentences(params.text)
    start = time.perf_counter()
    rng = np.random.default_rng(params.seed)
    parts: list[Any] = []
    seconds = 0.0
    with voices.speaker(cache, settings, voice, progress) as engine:
        for i, (sentence, paragraph_ends) in enumerate(said):
            if stop.is_set():
                raise Stopped()
            if progress:
                progress(i / len(said), f"Sentence {i + 1} of {len(said)}")
            yield SpeechUpdate(i, len(said), seconds, time.perf_counter() - start, params.seed)
            samples = in_passing_thread(lambda s=sentence: engine.say(s, params.speed, rng))
            pause = PARAGRAPH_PAUSE_S if paragraph_ends and i < len(said) - 1 else PAUSE_S
            parts += [np.asarray(samples, np.float32), np.zeros(int(pause * engine.rate), np.float32)]
            seconds += (len(samples) + len(parts[-1])) / engine.rate
        rate, name = engine.rate, engine.engine
    if stop.is_set():
        raise Stopped()
    made = np.concatenate(parts[:-1]) if parts else np.zeros(0, np.float32)
    if not made.size or not np.isfinite(made).all() or float(np.abs(made).max()) == 0:
        raise UserError("The voice made no sound for this text: try other words, or another voice.")
    return RenderedSpeech(audio.peak_normalise(made, 0.9), rate, name, len(said))
