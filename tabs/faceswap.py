"""Face swap tab: consent first, a classic engine that works offline out of the box, a neural one when present.

Reads top to bottom: consent and limits, input checks, the engine (`swap_face_image`, `swap_face_video`, plain
Python; the face geometry lives in core/faces.py), then the UI (`build`).
"""

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import checks, faces, outputs, provenance
from core.errors import Stopped, UserError
from core.models import ModelCache, ModelKey
from core.settings import Settings

CONSENT_VERSION = "1"
CONSENT_TEXT = "I have the consent of the people shown, or the right to use these images."
CONSENT_MISSING = f"Tick the consent box first: {CONSENT_TEXT} The studio does not swap faces without it."
MAX_SIDE = 2048  # larger images are scaled down to this (longest side, pixels)
MAX_VIDEO_SIDE = 1920  # video frames are scaled down to this (longest side, pixels): Full HD
MAX_VIDEO_FPS = 60  # with the length cap, bounds the frames of a video whose header says nothing about its length
ENGINES = ("auto", "classic", "neural")
UNREADABLE_IMAGE = "The {} is not an image the studio can read (PNG, JPEG or WebP)."
UNREADABLE_VIDEO = "The target video is not a video the studio can read (MP4, MOV, WebM or MKV)."
_audit_lock = threading.Lock()


@dataclass
class SwapResult:
    path: Path  # the saved PNG (or MP4), with a .json recipe beside it
    summary: dict  # faces found, faces swapped, engine, notes
    recipe: dict
    image: Any = None  # the result as a PIL image (images only)
    mesh: Any = None  # the face mesh and its triangles on source, target and result (How it works)


@dataclass
class VideoUpdate:
    frames_done: int
    frames_total: int
    elapsed: float
    result: SwapResult | None = None
    notes: list[str] = field(default_factory=list)

    def status(self) -> str:
        if self.result:
            return (
                f"Done: {self.frames_total} frames in {self.elapsed:.1f} s ({self.result.summary['engine']} engine)."
            )
        eta = self.elapsed / self.frames_done * (self.frames_total - self.frames_done) if self.frames_done else 0
        return f"Frame {self.frames_done}/{self.frames_total} · about {eta:.0f} s left"


# ----------------------------------------------------------------------------------------- inputs ----------


def open_image(value: Any, what: str) -> tuple[np.ndarray, str, list[str]]:
    """(RGB array, sha256 of the input, notes): EXIF rotation applied, huge images scaled down, bombs refused."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if value is None or (isinstance(value, str) and not value):
        raise UserError(f"Add a {what}.")
    notes: list[str] = []
    try:
        if hasattr(value, "size") and hasattr(value, "convert"):
            image, digest = value, hashlib.sha256(value.tobytes()).hexdigest()
        else:
            data = Path(value).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            image = checks.open_image_file(value, what, UNREADABLE_IMAGE.format(what))
        image = ImageOps.exif_transpose(image).convert("RGB")
    except UserError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise UserError(UNREADABLE_IMAGE.format(what)) from None
    if max(image.size) > MAX_SIDE:
        scale = MAX_SIDE / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        notes.append(f"The {what} was scaled down to {image.width}x{image.height}.")
    return np.asarray(image), digest, notes


def check_consent(consent: Any) -> None:
    if consent is not True:  # only a real True: "false", 0 or a missing value from an API client all refuse
        raise UserError(CONSENT_MISSING)


def check_face_index(face_index: Any, found: int) -> int:
    try:
        index = int(face_index)
        if index != float(face_index):
            raise ValueError
    except (TypeError, ValueError):
        raise UserError("The face number must be -1 (all faces) or the number of a face on the preview.") from None
    if index != -1 and not 1 <= index <= found:
        raise UserError(f"There is no face {index} in the target: it has {found} face(s). Use -1 for all faces.")
    return index


# ----------------------------------------------------------------------------------------- engine ----------


def pick_engine(settings: Settings, engine: str) -> str:
    if engine not in ENGINES:
        raise UserError(f"The engine must be one of {', '.join(ENGINES)}.")
    present = faces.neural_available(settings.faceswap_model_dir)
    if engine == "neural" and not present:
        raise UserError(
            "The neural engine needs inswapper_128.onnx and w600k_r50.onnx in STUDIO_FACESWAP_MODEL_DIR "
            "(see the README); the classic engine works without them."
        )
    return "neural" if engine == "neural" or (engine == "auto" and present) else "classic"


class Swapper:
    """One source face, ready to be put on any number of target faces (images or video frames)."""

    def __init__(self, cache: ModelCache, settings: Settings, source: np.ndarray, engine: str) -> None:
        found = faces.detect_faces(source)
        if not found:
            raise UserError("No face was found in the source image: use a clear, frontal photo of one face.")
        self.source, self.source_face, self.engine = source, max(found, key=_area), engine
        self.models = self.embedding = None
        if engine == "neural":
            folder = Path(settings.faceswap_model_dir)
            key = ModelKey("faceswap", str(folder), None, "cpu", "onnx")
            with cache.acquire(key, lambda: faces.NeuralModels.load(folder)) as models:
                self.models = models
            self.embedding = faces.embedding(self.models, source, self.source_face)

    def apply(self, target: np.ndarray, target_faces: list, face_index: int) -> np.ndarray:
        chosen = target_faces if face_index == -1 else [target_faces[face_index - 1]]
        out = target
        for face in chosen:
            if self.engine == "neural":
                out = faces.swap_neural(self.models, self.embedding, out, face)
            else:
                out = faces.swap_classic(self.source, self.source_face, out, face)
        return out


def _area(face: faces.Face) -> int:
    x0, y0, x1, y1 = face.box
    return (x1 - x0) * (y1 - y0)


def label(image: np.ndarray, text: str = "AI-generated") -> np.ndarray:
    """A small, legible label in the bottom-right corner."""
    from PIL import Image, ImageDraw, ImageFont

    im = Image.fromarray(image)
    size = max(12, im.height // 32)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(im, "RGBA")
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    pad = size // 3
    w, h = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    left, top = im.width - w - pad, im.height - h - pad
    draw.rectangle([left, top, left + w, top + h], fill=(0, 0, 0, 150))
    draw.text((left + pad - x0, top + pad - y0), text, font=font, fill=(255, 255, 255, 235))
    return np.asarray(im)


def audit(settings: Settings, entry: dict) -> None:
    """One JSON line per swap in <output_dir>/faceswap/audit.jsonl: who-what-when without any image."""
    path = outputs.audit_log_path(settings.output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **entry}, sort_keys=True) + "\n"
    with _audit_lock, open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()


def _recipe(kind: str, engine: str, hashes: dict, face_index: int, summary: dict, settings: Settings) -> dict:
    model = "inswapper_128 + ArcFace w600k_r50" if engine == "neural" else "classic (mediapipe face mesh)"
    return outputs.base_recipe(
        "faceswap",
        model,
        kind=kind,
        engine=engine,
        face_index=face_index,
        labelled=settings.faceswap_label,
        consent_version=CONSENT_VERSION,
        consent_statement=CONSENT_TEXT,
        inputs_sha256=hashes,
        summary=summary,
        versions=outputs.library_versions("mediapipe", "opencv-contrib-python", "onnxruntime", "av"),
    )


def mesh_picture(panels: list[tuple[np.ndarray, list]], height: int = 320) -> Any:
    """Side by side: each image with its faces' 468-point mesh and Delaunay triangles drawn on it."""
    from PIL import Image, ImageDraw

    drawn = []
    for image, found in panels:
        im = Image.fromarray(image)
        draw = ImageDraw.Draw(im)
        for face in found:
            pts = face.mesh
            for tri in faces._triangles(pts):
                draw.polygon([tuple(pts[i]) for i in tri], outline=(34, 211, 238))
        scale = height / im.height
        drawn.append(im.resize((max(1, round(im.width * scale)), height)))
    out = Image.new("RGB", (sum(d.width for d in drawn) + 8 * (len(drawn) - 1), height), "white")
    x = 0
    for d in drawn:
        out.paste(d, (x, 0))
        x += d.width + 8
    return out


def preview_faces(target: Any) -> tuple[Any, int]:
    """The target with its faces boxed and numbered (what face_index refers to), and how many there are."""
    from PIL import Image, ImageDraw, ImageFont

    image, _, _ = open_image(target, "target image")
    found = faces.detect_faces(image)
    im = Image.fromarray(image)
    draw = ImageDraw.Draw(im)
    size = max(14, im.height // 25)
    font = ImageFont.load_default(size=size)
    for i, face in enumerate(found, 1):
        x0, y0, x1, y1 = face.box
        draw.rectangle([x0, y0, x1, y1], outline=(250, 204, 21), width=max(2, size // 8))
        draw.text((x0 + 4, max(0, y0 - size - 4)), str(i), font=font, fill=(250, 204, 21))
    return im, len(found)


def swap_face_image(
    cache: ModelCache,
    settings: Settings,
    source: Any,
    target: Any,
    *,
    consent: Any,
    face_index: Any = -1,
    engine: str = "auto",
) -> SwapResult:
    """Put the face in `source` on the face(s) of `target`; save the result with its recipe; audit the swap."""
    from PIL import Image

    check_consent(consent)
    engine = pick_engine(settings, engine)
    source_img, source_hash, notes = open_image(source, "source image")
    target_img, target_hash, target_notes = open_image(target, "target image")
    notes += target_notes
    swapper = Swapper(cache, settings, source_img, engine)
    found = faces.detect_faces(target_img)
    if not found:
        raise UserError("No face was found in the target image: use a photo where the face is clearly visible.")
    index = check_face_index(face_index, len(found))
    result = swapper.apply(target_img, found, index)
    if settings.faceswap_label:
        result = label(result)
    summary = {
        "faces_found": len(found),
        "faces_swapped": len(found) if index == -1 else 1,
        "engine": engine,
        "labelled": settings.faceswap_label,
        "notes": notes,
    }
    hashes = {"source": source_hash, "target": target_hash}
    recipe = _recipe("image", engine, hashes, index, summary, settings)
    path = outputs.new_output_path(settings.output_dir, "faceswap", f"swap-{engine}", "png")
    image = Image.fromarray(result)
    data = provenance.finish_png(
        image, recipe, settings, source_type=provenance.COMPOSITE, action="c2pa.edited", title=path.name
    )
    outputs.atomic_write(path, data)
    outputs.save_recipe(path, recipe)
    audit(
        settings,
        {
            "kind": "image",
            "engine": engine,
            "inputs_sha256": hashes,
            "consent_version": CONSENT_VERSION,
            "face_index": index,
            "faces_found": len(found),
            "output": path.name,
        },
    )
    after = faces.detect_faces(result)
    mesh = mesh_picture([(source_img, [swapper.source_face]), (target_img, found), (result, after)])
    return SwapResult(path=path, summary=summary, recipe=recipe, image=image, mesh=mesh)


def swap_face_video(
    cache: ModelCache,
    settings: Settings,
    source: Any,
    target_video: Any,
    *,
    consent: Any,
    face_index: Any = -1,
    engine: str = "auto",
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[VideoUpdate]:
    """Swap every frame of a short video (H.264 MP4 out, original audio kept). Yields progress, then the result."""
    import av

    check_consent(consent)
    engine = pick_engine(settings, engine)
    stop = stop or threading.Event()
    source_img, source_hash, notes = open_image(source, "source image")
    if not target_video:
        raise UserError("Add a target video.")
    video_path = Path(target_video)
    try:
        data = video_path.read_bytes()
        probe = av.open(str(video_path))
    except (OSError, av.FFmpegError):
        raise UserError(UNREADABLE_VIDEO) from None
    with probe:
        if not probe.streams.video:
            raise UserError(UNREADABLE_VIDEO)
        vstream = probe.streams.video[0]
        seconds = float(probe.duration / av.time_base) if probe.duration else float(vstream.frames or 0) / 25
        if seconds > settings.max_video_seconds:
            raise UserError(
                f"The video is {seconds:.0f} s long; the limit is {settings.max_video_seconds:g} s. Trim it first."
            )
        fps = vstream.average_rate or 25
        total = vstream.frames or max(1, round(seconds * float(fps)))
    swapper = Swapper(cache, settings, source_img, engine)
    index = check_face_index(face_index, 10**6) if str(face_index) != "-1" else -1
    path = outputs.new_output_path(settings.output_dir, "faceswap", f"video-{engine}", "mp4")
    start, done, with_faces, last = time.perf_counter(), 0, 0, 0.0
    with (
        outputs.atomic_target(path) as tmp,
        av.open(str(video_path)) as src,
        av.open(str(tmp), "w", format="mp4") as dst,
    ):
        vin = src.streams.video[0]
        ain = src.streams.audio[0] if src.streams.audio else None
        vout = dst.add_stream("libx264", rate=fps)
        width, height = vin.codec_context.width, vin.codec_context.height
        scale = min(1.0, MAX_VIDEO_SIDE / max(width, height, 1))
        vout.width, vout.height = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
        if scale < 1:
            notes.append(
                f"The video was scaled down from {width}x{height} to {vout.width}x{vout.height} "
                f"(the limit is {MAX_VIDEO_SIDE} px)."
            )
        max_frames = int(settings.max_video_seconds * min(float(fps), MAX_VIDEO_FPS)) + 1
        vout.pix_fmt = "yuv420p"
        vout.options = {"crf": "20", "preset": "veryfast"}
        aout = dst.add_stream_from_template(ain) if ain is not None else None
        for packet in src.demux(*(s for s in (vin, ain) if s is not None)):
            if stop.is_set():
                raise Stopped
            if packet.stream is ain:
                if packet.dts is not None:
                    packet.stream = aout
                    dst.mux(packet)
                continue
            for frame in packet.decode():
                if done >= max_frames or (frame.time or 0) > settings.max_video_seconds + 1:
                    raise UserError(  # its header hid its length; nothing is kept
                        f"The video is longer than the limit of {settings.max_video_seconds:g} s. Trim it first."
                    )
                rgb = frame.to_ndarray(format="rgb24", width=vout.width, height=vout.height)
                found = faces.detect_faces(rgb)
                if found and (index == -1 or index <= len(found)):
                    rgb = swapper.apply(rgb, found, index)
                    with_faces += 1
                if settings.faceswap_label:
                    rgb = label(rgb)
                for out_packet in vout.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                    dst.mux(out_packet)
                done += 1
                elapsed = time.perf_counter() - start
                if progress:
                    progress(min(done / total, 1.0), f"Frame {done}/{total}")
                if elapsed - last >= 0.25:
                    last = elapsed
                    yield VideoUpdate(done, max(total, done), elapsed)
        for out_packet in vout.encode():
            dst.mux(out_packet)
    if with_faces == 0:
        path.unlink(missing_ok=True)
        raise UserError("No face was found in any frame of the target video.")
    summary = {
        "frames": done,
        "frames_with_faces": with_faces,
        "engine": engine,
        "audio_kept": ain is not None,
        "labelled": settings.faceswap_label,
        "notes": notes,
    }
    hashes = {"source": source_hash, "target": hashlib.sha256(data).hexdigest()}
    recipe = _recipe("video", engine, hashes, index, summary, settings)
    recipe["provenance"] = {
        "digital_source_type": provenance.IPTC + provenance.COMPOSITE,
        "content_credentials": "C2PA, c2pa.edited",
        "label": settings.faceswap_label,
    }
    provenance.sign_file(
        path, "video/mp4", settings, source_type=provenance.COMPOSITE, action="c2pa.edited", recipe=recipe
    )
    outputs.save_recipe(path, recipe)
    audit(
        settings,
        {
            "kind": "video",
            "engine": engine,
            "inputs_sha256": hashes,
            "consent_version": CONSENT_VERSION,
            "face_index": index,
            "frames": done,
            "output": path.name,
        },
    )
    yield VideoUpdate(done, done, time.perf_counter() - start, SwapResult(path=path, summary=summary, recipe=recipe))


# ---------------------------------------------------------------- UI ----------------------------------------------


def build(ctx) -> None:
    """The Face swap tab. `ctx` is core.ui.Context."""
    import gradio as gr

    from core import ui

    settings, cache = ctx.settings, ctx.cache
    assets = Path(__file__).resolve().parent.parent / "assets" / "faces"
    engines = ["auto", "classic"] + (["neural"] if faces.neural_available(settings.faceswap_model_dir) else [])

    consent_note = (
        f"Swap only faces you have the right to use. Every swap needs the box ticked: “{CONSENT_TEXT}” "
        "Each swap is recorded in a local audit log (no images)."
    )
    if settings.classroom:
        gr.Markdown(f"## ✋ Consent first\n### {consent_note}", elem_id="faceswap-consent-note")
    else:
        gr.Markdown(f"**Consent first.** {consent_note}", elem_id="faceswap-consent-note")
    with gr.Row():
        with gr.Column():
            source = ui.checked(gr.Image, UNREADABLE_IMAGE.format("source image"))(
                label="Source face", type="filepath", elem_id="faceswap-source", sources=["upload", "clipboard"]
            )
            with gr.Tabs():
                with gr.Tab("Image"):
                    target = ui.checked(gr.Image, UNREADABLE_IMAGE.format("target image"))(
                        label="Target image",
                        type="filepath",
                        elem_id="faceswap-target",
                        sources=["upload", "clipboard"],
                    )
                    swap = gr.Button("Swap", variant="primary", elem_id="faceswap-swap")
                    ctx.shared["faceswap_target"] = target
                with gr.Tab("Video"):
                    video = ui.checked(gr.Video, UNREADABLE_VIDEO)(
                        label=f"Target video (up to {settings.max_video_seconds:g} s)",
                        elem_id="faceswap-video",
                        sources=["upload"],
                    )
                    with gr.Row():
                        swap_video = gr.Button("Swap every frame", variant="primary", elem_id="faceswap-swap-video")
                        stop = gr.Button("Stop", variant="stop")
            consent = gr.Checkbox(False, label=CONSENT_TEXT, elem_id="faceswap-consent")
            with gr.Row():
                face_index = gr.Number(-1, label="Face to swap (-1 = all; numbers on the preview)", precision=0)
                engine = gr.Radio(engines, value="auto", label="Engine", visible=not settings.classroom)
            gr.Examples(
                [[str(assets / "grace_hopper.jpg"), str(assets / "astronaut.jpg")]],
                [source, target],
                label="Public-domain faces to try",
            )
        with gr.Column():
            faces_preview = gr.Image(
                label="Faces found in the target", interactive=False, height=260, elem_id="faceswap-faces"
            )
            result = gr.Image(
                label="Result", type="filepath", format="png", interactive=False, elem_id="faceswap-result"
            )
            result_video = gr.Video(label="Result video", interactive=False, elem_id="faceswap-result-video")
            summary_box = gr.Markdown(elem_id="faceswap-summary")
            summary_json = gr.JSON(label="Summary", open=False)

    with gr.Accordion("How it works: the face mesh", open=settings.classroom, elem_id="faceswap-how"):
        gr.Markdown(
            "The studio finds 468 points on each face and joins them into triangles. Each triangle of the "
            "source face is stretched onto the matching triangle of the target face, then the colours are "
            "matched and the edges blended. Source, target, and the result (found again):"
        )
        mesh = gr.Image(
            label="Mesh and triangles: source, target, result", interactive=False, elem_id="faceswap-how-mesh"
        )
    how = gr.State(None)
    how.change(lambda picture: picture, how, mesh, api_visibility="private", queue=False)

    @ui.user_errors
    def find(target_path):
        if not target_path:
            return None, ""
        picture, count = preview_faces(target_path)
        return picture, f"{count} face(s) found in the target." if count else "No face found in the target."

    target.change(find, target, [faces_preview, summary_box], api_visibility="private")

    @ui.user_errors
    def swap_face(source_image, target_image, consent, face_index=-1, engine="auto", history=None):
        r = swap_face_image(
            cache, settings, source_image, target_image, consent=consent, face_index=face_index, engine=engine
        )
        entry = ui.history_entry(
            "Face swap",
            f"{r.summary['faces_swapped']} face(s), {r.summary['engine']} engine",
            [r.path, outputs.recipe_path(r.path)],
            preview=str(r.path),
        )
        text = (
            f"Swapped {r.summary['faces_swapped']} of {r.summary['faces_found']} face(s) with the "
            f"**{r.summary['engine']}** engine. " + " ".join(r.summary["notes"])
        )
        return str(r.path), text, r.summary, ui.history_add(history, entry), r.mesh

    common = dict(concurrency_limit=settings.concurrency, concurrency_id="faceswap")
    swap.click(
        swap_face,
        [source, target, consent, face_index, engine, ctx.history],
        [result, summary_box, summary_json, ctx.history, how],
        api_name="swap_face",
        **common,
    )

    @ui.user_errors
    def swap_face_video_ui(
        source_image,
        target_video,
        consent,
        face_index=-1,
        engine="auto",
        history=None,
        ticket=None,
        request: gr.Request = None,
        progress=gr.Progress(),
    ):
        with ui.job(ctx, request, "faceswap", ticket) as stop_event:
            for u in swap_face_video(
                cache,
                settings,
                source_image,
                target_video,
                consent=consent,
                face_index=face_index,
                engine=engine,
                stop=stop_event,
                progress=progress,
            ):
                if u.result is None:
                    yield gr.skip(), u.status(), gr.skip(), gr.skip()
                else:
                    r = u.result
                    entry = ui.history_entry(
                        "Face swap", f"video, {r.summary['frames']} frames", [r.path, outputs.recipe_path(r.path)]
                    )
                    yield str(r.path), u.status(), r.summary, ui.history_add(history, entry)

    ui.queued(
        ctx,
        "faceswap",
        swap_video.click,
        swap_face_video_ui,
        [source, video, consent, face_index, engine, ctx.history],
        [result_video, summary_box, summary_json, ctx.history],
        api_name="swap_face_video",
        show_progress_on=[summary_box],
        status=summary_box,
        **common,
    )

    ui.wire_stop(ctx, stop, "faceswap", summary_box)
