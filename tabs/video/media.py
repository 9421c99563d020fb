"""Video files of the Video tab: frames written as an H.264 MP4 that every browser plays (PyAV), with the visible
label and an AAC soundtrack; one frame read back out (for the Image tab)."""

from fractions import Fraction
from pathlib import Path
from typing import Any

from core import checks, provenance
from core.errors import UserError


def write_mp4(frames: Any, path: Path, fps: int, soundtrack: tuple[Any, int] | None, label: bool) -> None:
    """uint8 frames (T, H, W, 3) as H.264 (yuv420p, moov first: plays in every browser) at `fps`, each with the
    visible label where asked; the soundtrack (samples, rate) as AAC, cut or padded to the video's length."""
    import av
    import numpy as np

    rate = Fraction(fps)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=rate)
        video.height, video.width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
        video.pix_fmt, video.options = "yuv420p", {"crf": "18", "preset": "medium"}
        sound = None
        if soundtrack is not None:  # every stream before the first packet: the header is written then
            samples, sample_rate = soundtrack
            sound = out.add_stream("aac", rate=sample_rate, layout="mono")
        for i, rgb in enumerate(frames):
            rgb = provenance.visible_label(rgb) if label else rgb
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: video.height, : video.width]), "rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            mux_track(out, sound, samples, sample_rate, int(len(frames) / fps * sample_rate))


def mux_track(out: Any, sound: Any, samples: Any, rate: int, length: int) -> None:
    """Mono float32 `samples` at `rate`, cut or padded with silence to `length` samples, encoded into the `sound`
    stream of the open container `out`."""
    import av
    import numpy as np

    track = np.zeros(length, np.float32)
    track[: min(length, len(samples))] = samples[:length]
    for start in range(0, length, 1024):
        chunk = av.AudioFrame.from_ndarray(track[None, start : start + 1024], format="flt", layout="mono")
        chunk.sample_rate, chunk.pts = rate, start
        out.mux(sound.encode(chunk))
    out.mux(sound.encode())


def video_frame(path: Any, number: Any, most: int) -> Any:
    """Frame `number` (1 = the first) of a video, as a PIL picture: checked from the header before anything is
    decoded, and never more than `most` frames decoded."""
    import av
    from PIL import Image

    number = int(checks.check_number(number, checks.named("frame"), 1, most, integer=True))
    unreadable = "The video could not be read; make a video in this tab first."
    try:
        container = av.open(str(path))
    except (OSError, av.FFmpegError, TypeError):
        raise UserError(unreadable) from None
    with container:
        if not container.streams.video:
            raise UserError(unreadable)
        stream = container.streams.video[0]
        if stream.codec_context.width * stream.codec_context.height > checks.MAX_IMAGE_PIXELS:
            raise UserError("The video's frames are larger than the studio reads.")
        seen = 0
        try:
            for frame in container.decode(stream):
                seen += 1
                if seen == number:
                    return Image.fromarray(frame.to_ndarray(format="rgb24"))
        except (av.FFmpegError, ValueError):
            raise UserError(unreadable) from None
    raise UserError(f"The video has {seen} frames; choose a frame (frame) from 1 to {seen}.")
