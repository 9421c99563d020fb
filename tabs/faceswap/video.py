"""Face swap on every frame of a short video: H.264 MP4 out, the original audio kept, progress in frames, Stop. Plain
Python, on the engine's Swapper and checks."""

import hashlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import checks, saving
from core.errors import Stopped, UserError
from core.models import ModelCache
from core.settings import Settings
from tabs.faceswap.engine import (
    MAX_VIDEO_FPS,
    MAX_VIDEO_SIDE,
    UNREADABLE_VIDEO,
    Swapper,
    SwapResult,
    VideoUpdate,
    _audit_entry,
    _recipe,
    audit,
    check_consent,
    check_enhance,
    check_face_index,
    check_region,
    enhancer,
    label,
    open_image,
    pick_engine,
    swapped_faces,
    swapper,
)


@dataclass
class VideoInfo:
    """A checked target video."""

    path: Path
    sha256: str
    fps: Any  # frames per second (a Fraction)
    frames: int  # the frames it says it has (or would have, from its length)


def open_video(settings: Settings, target_video: Any) -> VideoInfo:
    """The target video, checked: readable, with a video stream, no longer than the limit (as far as it says)."""
    import av

    if not target_video:
        raise UserError("Add a target video.")
    video_path = Path(target_video)
    try:
        digest = hashlib.sha256(video_path.read_bytes()).hexdigest()
        probe = av.open(str(video_path))
    except (OSError, av.FFmpegError):
        raise UserError(UNREADABLE_VIDEO) from None
    with probe:
        if not probe.streams.video:
            raise UserError(UNREADABLE_VIDEO)
        vstream = probe.streams.video[0]
        width, height = vstream.codec_context.width, vstream.codec_context.height
        if width * height > checks.MAX_IMAGE_PIXELS:  # refused from its header, before a frame is decoded
            raise UserError(
                f"The video's frames are {width}x{height} pixels; the studio accepts up to "
                f"{checks.MAX_IMAGE_PIXELS // 1_000_000} megapixels. Use a smaller video."
            )
        try:  # a picture or a damaged file may open as a "video" whose first frame cannot be decoded
            next(probe.decode(vstream))
        except (av.FFmpegError, StopIteration, ValueError):
            raise UserError(UNREADABLE_VIDEO) from None
        seconds = float(probe.duration / av.time_base) if probe.duration else float(vstream.frames or 0) / 25
        if seconds > settings.max_video_seconds:
            raise UserError(
                f"The video is {seconds:.0f} s long; the limit is {settings.max_video_seconds:g} s. Trim it first."
            )
        fps = vstream.average_rate or 25
        return VideoInfo(video_path, digest, fps, vstream.frames or max(1, round(seconds * float(fps))))


@dataclass
class VideoTally:
    """What a video swap did: frames written, frames with a face, audio kept, notes for the user."""

    frames: int = 0
    with_faces: int = 0
    audio_kept: bool = False
    notes: list[str] = field(default_factory=list)


def _swap_frames(
    settings: Settings,
    video: VideoInfo,
    swapping: tuple[Swapper, Callable | None],
    index: int,
    out: Path,
    stop: threading.Event,
    tally: VideoTally,
) -> Iterator[int]:
    """Decode, swap (and enhance, where `swapping` has an enhancer; see engine.enhancer), label and encode every
    frame into `out` (H.264 MP4, the original audio packets copied), yielding the frames done so far. A video whose
    header hid its length is refused once it passes the limit."""
    import av

    swap, improve = swapping
    with av.open(str(video.path)) as src, av.open(str(out), "w", format="mp4") as dst:
        vin = src.streams.video[0]
        ain = src.streams.audio[0] if src.streams.audio else None
        vout = dst.add_stream("libx264", rate=video.fps)
        width, height = vin.codec_context.width, vin.codec_context.height
        scale = min(1.0, MAX_VIDEO_SIDE / max(width, height, 1))
        vout.width, vout.height = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
        if scale < 1:
            tally.notes.append(
                f"The video was scaled down from {width}x{height} to {vout.width}x{vout.height} "
                f"(the limit is {MAX_VIDEO_SIDE} px)."
            )
        max_frames = int(settings.max_video_seconds * min(float(video.fps), MAX_VIDEO_FPS)) + 1
        vout.pix_fmt = "yuv420p"
        vout.options = {"crf": "20", "preset": "veryfast"}
        aout = dst.add_stream_from_template(ain) if ain is not None else None
        tally.audio_kept = ain is not None
        for packet in src.demux(*(s for s in (vin, ain) if s is not None)):
            if stop.is_set():
                raise Stopped
            if packet.stream is ain:
                if packet.dts is not None:
                    packet.stream = aout
                    dst.mux(packet)
                continue
            for frame in _decoded(packet, tally.frames):
                if tally.frames >= max_frames or (frame.time or 0) > settings.max_video_seconds + 1:
                    raise UserError(  # its header hid its length; nothing is kept
                        f"The video is longer than the limit of {settings.max_video_seconds:g} s. Trim it first."
                    )
                rgb = frame.to_ndarray(format="rgb24", width=vout.width, height=vout.height)
                found = swap.detect(rgb)
                if found and (index == -1 or index <= len(found)):
                    rgb = swap.apply(rgb, found, index)
                    rgb = improve(rgb, swapped_faces(found, index)) if improve else rgb
                    tally.with_faces += 1
                if settings.faceswap_label:
                    rgb = label(rgb)
                for out_packet in vout.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                    dst.mux(out_packet)
                tally.frames += 1
                yield tally.frames
        for out_packet in vout.encode():
            dst.mux(out_packet)


def _decoded(packet: Any, done: int) -> list:
    """The frames of one packet of the target video; a damaged packet is a sentence, not a decoder error."""
    import av

    try:
        return packet.decode()
    except (av.FFmpegError, ValueError):
        raise UserError(
            f"The target video could not be read after frame {done}: the file seems damaged. Try another copy."
        ) from None


def swap_face_video(
    cache: ModelCache,
    settings: Settings,
    source: Any,
    target_video: Any,
    *,
    consent: Any,
    face_index: Any = -1,
    engine: str = "auto",
    region: str = "whole face",
    face_enhancer: str = "None",
    enhance_blend: float = 1.0,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[VideoUpdate]:
    """Swap every frame of a short video (H.264 MP4 out, original audio kept), each swapped face enhanced with
    `face_enhancer` where one is chosen. Yields progress, then the result."""
    # 1. check the inputs (consent first)
    check_consent(consent)
    engine, region = pick_engine(settings, engine), check_region(region)
    wanted = check_enhance(settings, face_enhancer, enhance_blend)
    stop = stop or threading.Event()
    source_img, source_hash, notes = open_image(source, "source image")
    video = open_video(settings, target_video)
    index = check_face_index(face_index, 10**6) if str(face_index) != "-1" else -1
    tally, start, last = VideoTally(notes=notes), time.perf_counter(), 0.0
    # 2. the models, held for the whole video; 3. swap frame by frame into a temporary file
    with (
        tempfile.TemporaryDirectory(prefix="studio-video-") as work,
        swapper(cache, settings, source_img, engine, region) as swap,
        enhancer(cache, settings, wanted) as improve,
    ):
        made = Path(work) / "swapped.mp4"
        for done in _swap_frames(settings, video, (swap, improve), index, made, stop, tally):
            elapsed = time.perf_counter() - start
            if progress:
                progress(min(done / video.frames, 1.0), f"Frame {done}/{video.frames}")
            if elapsed - last >= 0.25:
                last = elapsed
                yield VideoUpdate(done, max(video.frames, done), elapsed)
        if tally.with_faces == 0:
            raise UserError("No face was found in any frame of the target video.")
        # 4. save with provenance, and audit
        summary = {
            "frames": tally.frames,
            "frames_with_faces": tally.with_faces,
            "engine": engine,
            "region": region,
            "face_enhancer": wanted.restorer,
            "enhance_blend": wanted.blend,
            "audio_kept": tally.audio_kept,
            "labelled": settings.faceswap_label,
            "notes": tally.notes,
        }
        hashes = {"source": source_hash, "target": video.sha256}
        recipe = _recipe("video", engine, hashes, index, summary, settings)

        def write(tmp: Path, _recipe: dict) -> None:  # the frames carry the visible label, no watermark
            shutil.move(made, tmp)

        saved = saving.finish(
            settings, "faceswap", f"video-{engine}", "mp4", recipe, write, edited=True, label=settings.faceswap_label
        )
    audit(settings, _audit_entry("video", engine, hashes, index, saved.path, frames=tally.frames))
    result = SwapResult(path=saved.path, summary=summary, recipe=recipe)
    yield VideoUpdate(tally.frames, tally.frames, time.perf_counter() - start, result)
