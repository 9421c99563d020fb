"""A narrated track: speech over music, the music ducked (turned down) while the voice speaks, saved as one labelled
WAV. Plain Python; the page and the API call `narrate`.

The ducking follows the voice: its loudness, measured every 20 ms, drives the music's gain down by `duck_db` with a
fast attack (50 ms) and a slow release (400 ms), as a broadcast mixer's side-chain compressor does, so the music
comes back up in the pauses between sentences. Music shorter than the narration loops; it fades out after it.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, asdict, dataclass
from typing import Any

from core import audio, checks, outputs, provenance, saving
from core.errors import UserError
from core.settings import Settings

MAX_MUSIC_SECONDS = 600
MAX_SPEECH_SECONDS = 900
FRAME_S = 0.02  # the voice's loudness is measured every 20 ms
ATTACK_S, RELEASE_S = 0.05, 0.4
MAX_RATE = 48000
WAV_TAGGED = ("tab", "model", "mode", "music_db", "duck_db", "lead_in", "tail", "sampling_rate")


@dataclass(frozen=True)
class MixParams:
    _: KW_ONLY
    music_db: float = -6.0  # the music's level where nobody speaks, against the voice (0 = as loud)
    duck_db: float = 12.0  # how far the music drops while the voice speaks
    lead_in: float = 2.0  # seconds of music before the voice starts
    tail: float = 2.0  # seconds of music after the voice ends, fading out


def check_params(p: MixParams) -> MixParams:
    return MixParams(
        music_db=float(checks.check_number(p.music_db, checks.named("music_db", "music level"), -30, 0, unit=" dB")),
        duck_db=float(checks.check_number(p.duck_db, checks.named("duck_db", "ducking"), 0, 30, unit=" dB")),
        lead_in=float(checks.check_number(p.lead_in, checks.named("lead_in", "lead-in"), 0, 10, unit=" seconds")),
        tail=float(checks.check_number(p.tail, "tail", 0, 10, unit=" seconds")),
    )


def voice_activity(speech: Any, rate: int) -> Any:
    """How much the voice speaks at each sample, 0..1: its loudness every FRAME_S against its loud parts, smoothed
    with a fast attack and a slow release."""
    import numpy as np

    frame = max(1, int(FRAME_S * rate))
    frames = len(speech) // frame + 1
    padded = np.pad(speech, (0, frames * frame - len(speech)))
    rms = np.sqrt((padded.reshape(frames, frame) ** 2).mean(axis=1))
    loud = float(np.percentile(rms, 95)) or 1.0
    target = np.clip(rms / (0.25 * loud), 0, 1)  # a quarter of the voice's loud level counts as speaking
    attack, release = (1 - np.exp(-FRAME_S / t) for t in (ATTACK_S, RELEASE_S))
    level, smooth = 0.0, np.empty(frames, np.float32)
    for i, t in enumerate(target):
        level += (t - level) * (attack if t > level else release)
        smooth[i] = level
    return np.repeat(smooth, frame)[: len(speech)]


def mix(speech: Any, speech_rate: int, music: Any, music_rate: int, p: MixParams) -> tuple[Any, int]:
    """The narrated track (mono float32) and its rate: music, lead-in, the voice over the ducked music, a tail."""
    import numpy as np

    rate = min(max(speech_rate, music_rate), MAX_RATE)
    speech = provenance.resample(np.asarray(speech, np.float32), speech_rate, rate)
    music = provenance.resample(np.asarray(music, np.float32), music_rate, rate)
    start, total = int(p.lead_in * rate), int((p.lead_in + p.tail) * rate) + len(speech)
    if len(music) < total:  # loop the music under a long narration
        music = np.tile(music, total // len(music) + 1)
    music = music[:total] * np.float32(10 ** (p.music_db / 20))
    activity = np.zeros(total, np.float32)
    activity[start : start + len(speech)] = voice_activity(speech, rate)
    music *= (10 ** (-p.duck_db * activity / 20)).astype(np.float32)
    fade = min(total, max(int(p.tail * rate), int(0.05 * rate)))
    music[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)  # out after the voice
    music[: int(0.02 * rate)] *= np.linspace(0, 1, int(0.02 * rate), dtype=np.float32)  # no click at the start
    music[start : start + len(speech)] += speech
    peak = float(np.abs(music).max())
    return (music * (0.95 / peak) if peak > 0.95 else music), rate


def narrate(cache: Any, settings: Settings, speech: Any, music: Any, params: MixParams) -> saving.Saved:
    """Mix the `speech` clip over the `music` clip (paths) and save the narrated track with its recipe."""
    if not speech:
        raise UserError("Make some speech first (Speak), or add a speech clip (speech).")
    if not music:
        raise UserError("Add the music to narrate over (music): upload a clip or use the Music tab's result.")
    params = check_params(params)
    voice, voice_rate = audio.read_audio_clip(speech, "speech clip (speech)", MAX_SPEECH_SECONDS)
    track, track_rate = audio.read_audio_clip(music, "music clip (music)", MAX_MUSIC_SECONDS)
    made, rate = mix(voice, voice_rate, track, track_rate, params)
    sources = {
        "speech": {"sha256": outputs.file_sha256(speech), "seconds": round(len(voice) / voice_rate, 2)},
        "music": {"sha256": outputs.file_sha256(music), "seconds": round(len(track) / track_rate, 2)},
    }
    recipe = outputs.base_recipe(
        "voice", "mix", mode="narrate", sampling_rate=rate, samples=int(len(made)), sources=sources, **asdict(params)
    )
    title = audio.studio_title(speech) or "narrated track"
    recipe["text"] = title
    write = audio.wav_writer(cache, settings, made, rate, title="text", tagged=WAV_TAGGED)
    return saving.finish(settings, "voice", f"narrated {title}", "wav", recipe, write, edited=True)
