"""Sound the studio makes (music, speech): level, pictures of it, and the labelled WAV every audio output is saved as.

The WAV carries the recipe in its RIFF INFO tags (the whole recipe is in the JSON beside it), the AI statement in
its copyright tag, and AudioSeal's inaudible watermark when the operator has provided its weights; saving.finish
signs it with content credentials.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import outputs, provenance
from core.errors import UserError

PEAK = 0.98  # peak level after normalisation (about -0.2 dBFS): loud, never clipped
UNREADABLE = "The {what} is not an audio file the studio can read (WAV, FLAC, OGG or MP3)."


def read_audio_clip(path: Any, what: str, limit: float) -> tuple[Any, int]:
    """An audio clip (a melody, a clip to continue, music to narrate over) as mono float32 samples and its rate;
    refuses unreadable, empty and over-long clips (the length read from the header, before decoding)."""
    import numpy as np
    import soundfile as sf

    try:
        info = sf.info(path)  # its length, from the header: a long clip is refused before it is decoded
        seconds = info.frames / info.samplerate
        if seconds > limit:
            raise UserError(f"The {what} is {seconds:.0f} s long; the limit is {limit:g} s. Trim it first.")
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except UserError:
        raise
    except Exception:
        raise UserError(UNREADABLE.format(what=what)) from None
    if audio.shape[0] == 0:
        raise UserError(f"The {what} holds no sound: record or upload a clip of a few seconds.")
    seconds = audio.shape[0] / rate
    if seconds > limit:
        raise UserError(f"The {what} is {seconds:.0f} s long; the limit is {limit:g} s. Trim it first.")
    return np.ascontiguousarray(audio.mean(axis=1)), int(rate)


def studio_title(path: Any) -> str | None:
    """The title inside a WAV this studio made (its RIFF INFO title: the description, the text spoken), or None."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            tags = f.copy_metadata()
    except Exception:
        return None
    made_here = tags.get("software", "").startswith(outputs.STUDIO_NAME)  # libsndfile appends its own name
    return tags.get("title") if made_here else None


def peak_normalise(audio: Any, peak: float = PEAK) -> Any:
    import numpy as np

    audio = np.asarray(audio, dtype=np.float32)
    top = float(np.abs(audio).max()) if audio.size else 0.0
    return audio * (peak / top) if top > 0 else audio


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


def wav_writer(
    cache: Any, settings: Any, audio: Any, sampling_rate: int, *, title: str, tagged: tuple[str, ...]
) -> Callable[[Path, dict], str]:
    """For saving.finish: a 16-bit PCM WAV with the recipe's `tagged` fields in its RIFF INFO comment (in full in the
    JSON beside it) and its `title` field as the title, and AudioSeal's watermark when the operator has provided its
    weights; returns the watermark."""

    def write(path: Path, recipe: dict) -> str:
        import soundfile as sf

        samples, mark = audio, "none (STUDIO_AUDIOSEAL_DIR is not set)"
        if provenance.audioseal_present(settings.audioseal_dir):
            with provenance.audioseal_model(cache, settings.audioseal_dir) as generator:
                samples = peak_normalise(provenance.audioseal_mark(audio, sampling_rate, generator))
            mark = "AudioSeal, payload GA"
        compact = {k: recipe[k] for k in tagged if recipe.get(k) is not None}
        with sf.SoundFile(path, "w", samplerate=sampling_rate, channels=1, subtype="PCM_16", format="WAV") as f:
            f.title = str(recipe.get(title) or "")[:500]
            f.comment = json.dumps(compact)[:2000]  # INFO ICMT over ~2 kB is dropped silently by libsndfile
            f.software = outputs.STUDIO_NAME
            f.artist = f"{outputs.STUDIO_NAME} ({recipe['model']})"
            f.copyright = outputs.AI_STATEMENT
            f.date = recipe["created"][:10]
            f.write(samples)
        return mark

    return write
