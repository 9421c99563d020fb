"""Add a soundtrack to a video after it was made: a clip the user gives, or new music composed for the video's
length by the Music tab's model (tabs.music.engine, the one way music is made). The frames of an H.264 video (such
as the tab makes) are copied as they are (no re-encoding, so the visible label stays); any other video (VP9 or AV1
WebM, HEVC, MPEG-4...) is re-encoded as H.264, within a bound on the pixels decoded. The sound is encoded as AAC; the
result is a new output with its recipe and content credentials. Plain Python: the page, the API and the tests call
`add_soundtrack`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from core import audio, checks, outputs, saving
from core.errors import UserError
from core.models import ModelCache
from core.settings import Settings
from tabs.video.media import mux_track

MAX_VIDEO_S = 120.0  # the longest video a soundtrack is added to (copying frames is cheap; this bounds the file)
REENCODE_PIXELS = 120 * 24 * 1280 * 720  # most pixels decoded and re-encoded from a video that is not H.264
UNREADABLE = "The video (video) could not be read: give a video file, such as an MP4 the Video tab made."


@dataclass
class SoundtrackUpdate:
    said: str
    path: Path | None = None
    recipe: dict | None = None
    done: bool = False


@dataclass(frozen=True)
class VideoFacts:
    path: Path
    sha256: str
    seconds: float
    width: int
    height: int
    codec: str  # "h264": its frames are copied; anything else is re-encoded


def too_many_pixels(pixels: float) -> UserError:
    return UserError(
        f"The video (video) is not H.264, and re-encoding it would decode {pixels / 1e9:.1f} billion pixels; the "
        f"limit is {REENCODE_PIXELS / 1e9:.1f} (two minutes of 720p at 24 fps). Give a shorter or smaller video, or "
        "an H.264 MP4, whose frames are copied as they are."
    )


def open_video(path: Any) -> VideoFacts:
    """The video, checked from its header: readable, a video stream, not too long, not too large (and where it must
    be re-encoded, not too many pixels in all)."""
    import av

    if path in (None, ""):
        raise UserError("Make or give a video first (video); then a soundtrack can go under it.")
    try:
        container = av.open(str(path))
    except (OSError, av.FFmpegError, TypeError):
        raise UserError(UNREADABLE) from None
    with container:
        streams = container.streams.video
        if not streams:
            raise UserError(UNREADABLE)
        stream = streams[0]
        codec, width, height = stream.codec_context.name, stream.codec_context.width, stream.codec_context.height
        if width * height > checks.MAX_IMAGE_PIXELS or width <= 0 or height <= 0:
            raise UserError("The video's frames are larger than the studio reads (video).")
        if stream.duration is not None:
            seconds = float(stream.duration * stream.time_base)
        else:
            seconds = float((container.duration or 0) / av.time_base)
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        frames = max(int(stream.frames or 0), int(seconds * rate))
    if seconds > MAX_VIDEO_S:
        raise UserError(f"The video (video) is {seconds:.0f} s long; a soundtrack goes under videos of up to "
                        f"{MAX_VIDEO_S:g} s.")  # fmt: skip
    if seconds <= 0:
        raise UserError(UNREADABLE)
    if codec != "h264" and frames * width * height > REENCODE_PIXELS:
        raise too_many_pixels(frames * width * height)
    return VideoFacts(Path(path), outputs.file_sha256(path), seconds, width, height, codec)


def remux(video: Path, samples: Any, rate: int, target: Path, copy: bool = True) -> None:
    """The video's packets copied into a new MP4 (moov first), or with `copy` False its frames re-encoded as H.264,
    with `samples` (mono float32 at `rate`) cut or padded to the video's length under them as AAC. Any sound the
    video had is replaced."""
    import av

    with (
        av.open(str(video)) as source,
        av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as out,
    ):
        vin = source.streams.video[0]
        if copy:
            vout = out.add_stream_from_template(vin)
            sound = out.add_stream("aac", rate=rate, layout="mono")
            seconds = float(vin.duration * vin.time_base) if vin.duration else float(source.duration / av.time_base)
            for packet in source.demux(vin):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                packet.stream = vout
                out.mux(packet)
        else:
            sound, seconds = _reencode(source, vin, out, rate)
        mux_track(out, sound, samples, rate, int(round(seconds * rate)))


def _reencode(source: Any, vin: Any, out: Any, rate: int) -> tuple[Any, float]:
    """Every frame of `vin` decoded and encoded as H.264 (yuv420p, even sides) at its average frame rate, counting
    the pixels decoded (a header may understate them). Returns the sound stream added and the seconds written."""
    import av

    fps = Fraction(vin.average_rate or vin.guessed_rate or 24).limit_denominator(1001)
    vout = out.add_stream("libx264", rate=fps)
    vout.width, vout.height = vin.codec_context.width // 2 * 2, vin.codec_context.height // 2 * 2
    vout.pix_fmt, vout.options = "yuv420p", {"crf": "18", "preset": "medium"}
    sound = out.add_stream("aac", rate=rate, layout="mono")  # every stream before the first packet
    written, pixels = 0, 0
    try:
        for frame in source.decode(vin):
            pixels += frame.width * frame.height
            if pixels > REENCODE_PIXELS:
                raise too_many_pixels(pixels)
            picture = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
            picture.pts, picture.time_base = written, 1 / fps
            out.mux(vout.encode(picture))
            written += 1
    except (av.FFmpegError, ValueError):
        raise UserError(UNREADABLE) from None
    out.mux(vout.encode())
    if not written:
        raise UserError(UNREADABLE)
    return sound, float(written / fps)


def add_soundtrack(
    cache: ModelCache,
    settings: Settings,
    video: Any,
    *,
    soundtrack: Any = None,
    music_prompt: str = "",
    music_model: str | None = None,
    seed: int | None = -1,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[SoundtrackUpdate]:
    """`video` (a path) with a soundtrack under it: the `soundtrack` clip (a path), or music composed for
    `music_prompt` as long as the video. Yields progress, then the new MP4."""
    # 1. check the inputs
    facts = open_video(video)
    if soundtrack not in (None, ""):
        samples, rate = audio.read_audio_clip(soundtrack, "soundtrack", 600)
        music = {
            "source": "given",
            "sha256": outputs.file_sha256(soundtrack),
            "seconds": round(len(samples) / rate, 2),
        }
    else:
        music_prompt = checks.check_text(
            music_prompt, checks.named("music_prompt", "music description"), settings.max_prompt_chars
        )
        if facts.seconds > settings.max_music_seconds:
            raise UserError(
                f"The video is {facts.seconds:.0f} s long; music is composed for up to {settings.max_music_seconds:g}"
                " s here. Give a soundtrack clip (soundtrack) instead."
            )
        # 2-3. new music from the Music tab's engine, saved there with its own recipe, for the video's length
        from tabs.music.engine import MusicParams, generate_music

        params = MusicParams(music_prompt, duration=max(1.0, round(facts.seconds + 0.05, 1)), seed=seed)
        start, made = time.perf_counter(), None
        for made in generate_music(cache, settings, params, model=music_model, stop=stop, progress=progress):
            if not made.done:
                yield SoundtrackUpdate(
                    f"Composing the soundtrack: {made.seconds_done:.1f} of {made.seconds_total:g} s "
                    f"({time.perf_counter() - start:.0f} s so far)."
                )
        samples, rate = audio.read_audio_clip(made.path, "soundtrack", 600)
        music = {"source": "composed", "file": made.path.name, "recipe": made.recipe}
    # 4. the new video, with its recipe: the frames are the given video's, the sound is new
    recipe = outputs.base_recipe(
        "video", music.get("recipe", {}).get("model", "none"), mode="soundtrack added",
        video_sha256=facts.sha256, seconds=round(facts.seconds, 2), soundtrack=music,
        frames="copied from the given video, as they were (a visible label it had stays)" if facts.codec == "h264"
        else f"decoded from the given video ({facts.codec}) and re-encoded as H.264 (a visible label it had stays)",
        versions=outputs.library_versions("av"),
    )  # fmt: skip
    title = music_prompt if music["source"] == "composed" else "video with soundtrack"
    saved = saving.finish(
        settings, "video", title, "mp4", recipe,
        lambda tmp, _r: remux(facts.path, samples, rate, tmp, copy=facts.codec == "h264"), edited=True,
    )  # fmt: skip
    said = "Composed music added" if music["source"] == "composed" else "The soundtrack added"
    yield SoundtrackUpdate(f"{said}: {facts.seconds:.1f} s of video.", saved.path, saved.recipe, done=True)
