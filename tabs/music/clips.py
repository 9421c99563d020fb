"""The Music tab's clips: melodies to follow (MusicGen-Melody's chroma, computed here with torch and scipy, since
transformers' feature extractor needs torchaudio) and clips to continue (their end as EnCodec codes, the join
after). Plain Python; `loaded` is the engine's LoadedMusic."""

from dataclasses import dataclass
from typing import Any

from core import provenance
from core.audio import UNREADABLE, read_audio_clip
from core.audio import studio_title as studio_description  # noqa: F401 (the page reads it here)
from core.device import imported, in_passing_thread
from core.errors import UserError

MAX_MELODY_SECONDS = 30
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MAX_CLIP_SECONDS = 600  # the longest clip the tab continues (only its end is heard by the model: CONTEXT_SECONDS)
CONTEXT_SECONDS = 10.0  # how much of a clip's end MusicGen hears when it continues it (audiocraft's demo: 2-10 s)
CROSSFADE_S = 0.05  # the clip's end fades into the model's version of it, so the join does not click
MELODY_UNREADABLE = UNREADABLE.format(what="melody")
CLIP_UNREADABLE = UNREADABLE.format(what="clip to continue (continue_from)")
# How MusicGen-Melody turns audio into chroma (its preprocessor_config.json, when the model folder has one).
CHROMA_DEFAULTS = {"sampling_rate": 32000, "n_fft": 16384, "hop_length": 4096, "chunk_length": 30, "num_chroma": 12}


def read_clip(path: Any, what: str = "melody", limit: float = MAX_MELODY_SECONDS) -> tuple[Any, int]:
    """A melody (or, with `what` and `limit`, a clip to continue) as mono float32 samples and its rate."""
    return read_audio_clip(path, what, limit)


def melody_chroma(audio: Any, rate: int, spec: dict) -> Any:
    """MusicGen-Melody's conditioning: the dominant pitch class of each frame, one-hot, (1, frames, chroma).

    The same computation as transformers' MusicgenMelodyFeatureExtractor (which needs torchaudio): resample,
    pad to the chunk length, power spectrogram (reflect-padded, centred), chroma filter bank, argmax."""
    import numpy as np

    torch = imported("torch")
    (chroma_filter_bank,) = imported("transformers.audio_utils", "chroma_filter_bank")

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


def melody_inputs(clip: tuple[Any, int], sha256: str, loaded: Any, dtype: Any) -> tuple[Any, dict]:
    """The melody model's chroma features for a clip (samples, rate), and what the recipe says about the clip (its
    file's `sha256`)."""
    samples, rate = clip
    chroma = in_passing_thread(lambda: melody_chroma(samples, rate, loaded.chroma))  # torch ops: see core.device
    sounding_frames = round(len(samples) / rate * loaded.chroma["sampling_rate"]) // loaded.chroma["hop_length"]
    sounding = chroma[0, : max(1, sounding_frames)]  # (frames, 12): the clip itself, not the padding after it
    info = {
        "seconds": round(len(samples) / rate, 3),
        "sha256": sha256,
        "main_pitch_class": PITCH_CLASSES[int(sounding.sum(0).argmax())],
    }
    return chroma.to(dtype), info


@dataclass
class Continuation:
    """A clip the model goes on from."""

    audio: Any  # (samples,) all of it, mono at the model's sampling rate: it opens the result unchanged
    context: Any  # (samples,) its end, a whole number of codec frames: what the model hears
    info: dict  # what the recipe says about it


def read_clip_to_continue(path: Any) -> tuple[Any, int]:
    samples, rate = read_clip(path, "clip to continue (continue_from)", MAX_CLIP_SECONDS)
    if len(samples) < rate:
        raise UserError(
            "The clip to continue (continue_from) is shorter than 1 s: the model needs a second or more to go on from."
        )
    return samples, rate


def continuation(clip: tuple[Any, int], sha256: str, loaded: Any, new_tokens: int) -> Continuation:
    """What the model goes on from, checked against what the model can hold (its end and `new_tokens` steps);
    `sha256`: its file's, for the recipe."""
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
        "sha256": sha256,
    }
    return Continuation(audio, audio[len(audio) - frames * hop :], info)


def prompt_codes(lm: Any, context: Any, num_codebooks: int) -> Any:
    """The clip's end as MusicGen's decoder input: its EnCodec codes, (num_codebooks, frames). EnCodec's quantizer
    is residual, so the first num_codebooks codebooks are a coarser code of the same sound."""
    import torch

    values = torch.from_numpy(context)[None, None].to(lm.device, lm.audio_encoder.dtype)  # (batch, channels, samples)
    return lm.audio_encoder.encode(values).audio_codes[0, 0, :num_codebooks]  # (chunks, batch, codebooks, frames)


def joined(clip: Any, made: Any, clip_end: int, new_samples: int, rate: int) -> Any:
    """The whole clip, then what the model added after `clip_end` in `made` (its own rendering of the clip's end and
    the continuation). Over the clip's last CROSSFADE_S the clip fades into that rendering, so the join does not
    click."""
    import numpy as np

    n = min(round(CROSSFADE_S * rate), len(clip), clip_end)
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    head = np.array(clip, dtype=np.float32)
    head[len(head) - n :] = head[len(head) - n :] * (1 - ramp) + made[clip_end - n : clip_end] * ramp
    return np.concatenate([head, np.asarray(made[clip_end : clip_end + new_samples], dtype=np.float32)])
