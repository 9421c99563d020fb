"""The Face swap tab's engine: consent first, a classic engine that works offline out of the box, a neural one when
present. Plain Python: consent and limits, input checks, then `swap_face_image` and `swap_face_video` in steps
(check -> models from the cache, held for the whole swap -> swap -> save with provenance -> audit). The face
geometry lives in core/faces.py."""

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import checks, faces, outputs, provenance, saving, serving
from core import enhance as enhancers
from core.errors import UserError
from core.models import ModelCache, ModelKey
from core.provenance import visible_label as label  # noqa: F401 (video.py takes it from here)
from core.settings import Settings
from tabs.faceswap import neural

CONSENT_VERSION = "1"
CONSENT_TEXT = "I have the consent of the people shown, or the right to use these images."
CONSENT_MISSING = f"Tick the consent box first: {CONSENT_TEXT} The studio does not swap faces without it."
MAX_SIDE = 2048  # larger images are scaled down to this (longest side, pixels)
MAX_VIDEO_SIDE = 1920  # video frames are scaled down to this (longest side, pixels): Full HD
MAX_VIDEO_FPS = 60  # with the length cap, bounds the frames of a video whose header says nothing about its length
ENGINES = ("auto", "classic", "neural")
UNREADABLE_IMAGE = "The {} is not an image the studio can read (PNG, JPEG or WebP)."
UNREADABLE_VIDEO = "The target video is not a video the studio can read (MP4, MOV, WebM or MKV)."


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


FACE_UNREADABLE = "The face number (face_index) must be -1 (all faces) or the number of a face on the preview."


def check_region(region: Any) -> str:
    if region not in faces.REGIONS:
        raise UserError(f"The face region (region) must be one of {', '.join(faces.REGIONS)}; got {region!r:.40}.")
    return region


def check_face_index(face_index: Any, found: int) -> int:
    try:
        index = int(face_index)
        if index != float(face_index):
            raise ValueError
    except (TypeError, ValueError):
        raise UserError(f"{FACE_UNREADABLE[:-1]}; got {face_index!r:.40}.") from None
    if index != -1 and not 1 <= index <= found:
        raise UserError(
            f"There is no face {index} in the target (face_index): it has {found} face(s). Use -1 for all faces."
        )
    return index


# ----------------------------------------------------------------------------------------- engine ----------


def pick_engine(settings: Settings, engine: str) -> str:
    if engine not in ENGINES:
        raise UserError(f"The engine must be one of {', '.join(ENGINES)}; got {engine!r:.40}.")
    present = neural.neural_paths(settings) is not None
    if engine == "neural" and not present:
        raise UserError(
            "The neural engine needs inswapper_128.onnx and w600k_r50.onnx: get them under 'Neural engine' on the "
            "Face swap tab (after accepting their licence), or put them in STUDIO_FACESWAP_MODEL_DIR (see the "
            "README). The classic engine works without them."
        )
    return "neural" if engine == "neural" or (engine == "auto" and present) else "classic"


class Swapper:
    """One source face, ready to be put on any number of target faces (images or video frames). Made by
    `swapper()`, which holds the neural engine's models in the cache for as long as it is used."""

    def __init__(
        self, source: np.ndarray, engine: str, graphs: faces.FaceGraphs, models: Any = None, region: str = "whole face"
    ) -> None:
        self.graphs = graphs  # mediapipe's face graphs (from the model cache)
        self.region = region  # what of each target face is painted (faces.REGIONS)
        found = self.detect(source)
        if not found:
            raise UserError("No face was found in the source image: use a clear, frontal photo of one face.")
        self.source, self.source_face, self.engine, self.models = source, max(found, key=_area), engine, models
        self.embedding = faces.embedding(models, source, self.source_face) if engine == "neural" else None

    def detect(self, image: np.ndarray) -> list[faces.Face]:
        return faces.detect_faces(image, self.graphs)

    def apply(self, target: np.ndarray, target_faces: list, face_index: int) -> np.ndarray:
        out = target
        for face in swapped_faces(target_faces, face_index):
            if self.engine == "neural":
                out = faces.swap_neural(self.models, self.embedding, out, face, self.region)
            else:
                out = faces.swap_classic(self.source, self.source_face, out, face, self.region)
        return out


@contextlib.contextmanager
def swapper(
    cache: ModelCache, settings: Settings, source: np.ndarray, engine: str, region: str = "whole face"
) -> Iterator[Swapper]:
    """A Swapper for the length of the block. Its models come from the model cache and stay leased (never evicted,
    say by Unload) until the block ends: mediapipe's face graphs, and the neural engine's ONNX sessions under a key
    that names the device they run on."""
    with faces.face_graphs(cache) as graphs:
        if engine != "neural":
            yield Swapper(source, engine, graphs, region=region)
            return
        swapper_file, recogniser_file = neural.neural_paths(settings)
        device = faces.onnx_device(cache.device)
        key = ModelKey("faceswap", str(swapper_file), None, device, "onnx")
        with cache.acquire(key, lambda: faces.NeuralModels.load(swapper_file, recogniser_file, device)) as models:
            yield Swapper(source, engine, graphs, models, region)


@dataclass(frozen=True)
class Enhance:
    """ "Enhance the swapped face": a face restorer run on each swapped face, blended in by `blend` (0: the swap as
    it is, 1: the restorer's alone), as facefusion's face enhancer does."""

    restorer: str = enhancers.NONE
    blend: float = 1.0


def check_enhance(settings: Settings, face_enhancer: Any, enhance_blend: Any) -> Enhance:
    offered = enhancers.restorer_choices(settings)
    restorer = enhancers.check_choice(face_enhancer or enhancers.NONE, offered, checks.named("face_enhancer"))
    blend = checks.check_number(enhance_blend, checks.named("enhance_blend", "enhance blend"), 0, 1)
    return Enhance(restorer, float(blend))


@contextlib.contextmanager
def enhancer(cache: ModelCache, settings: Settings, wanted: Enhance) -> Iterator[Callable | None]:
    """A function (picture, swapped faces) -> picture that restores those faces, with its model held for the block;
    None where no enhancer is wanted."""
    if wanted.restorer == enhancers.NONE:
        yield None
        return
    with enhancers.model(cache, settings, wanted.restorer, "restorer") as loaded:
        yield lambda picture, swapped: enhancers.restore_faces(loaded, picture, swapped, wanted.blend)[0]


def swapped_faces(found: list, index: int) -> list:
    """The target faces a swap with `index` (-1: all) painted."""
    return found if index == -1 else [found[index - 1]]


def _area(face: faces.Face) -> int:
    x0, y0, x1, y1 = face.box
    return (x1 - x0) * (y1 - y0)


def audit(settings: Settings, entry: dict) -> None:
    """One JSON line per swap in the studio's audit log: who-what-when without any image."""
    outputs.append_audit(settings.output_dir, entry)


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


def preview_faces(cache: ModelCache, target: Any) -> tuple[Any, int]:
    """The target with its faces boxed and numbered (what face_index refers to), and how many there are."""
    from PIL import Image, ImageDraw, ImageFont

    image, _, _ = open_image(target, "target image")
    with faces.face_graphs(cache) as graphs:
        found = faces.detect_faces(image, graphs)
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
    region: str = "whole face",
    face_enhancer: str = enhancers.NONE,
    enhance_blend: float = 1.0,
) -> SwapResult:
    """Put the face in `source` on the face(s) of `target` (over `region`, see faces.REGIONS), then enhance the
    swapped faces with `face_enhancer` where one is chosen; save the result with its recipe; audit the swap."""
    from PIL import Image

    # 1. check the inputs (consent first)
    check_consent(consent)
    engine, region = pick_engine(settings, engine), check_region(region)
    wanted = check_enhance(settings, face_enhancer, enhance_blend)
    source_img, source_hash, notes = open_image(source, "source image")
    target_img, target_hash, target_notes = open_image(target, "target image")
    notes += target_notes
    # 2. the models, held for the whole swap; 3. swap (here, or on the cluster's face swap engine)
    if settings.ray_address:
        made = serving.call_once(settings, "faceswap", "swap", (source_img, target_img, engine, region, face_index))
    else:
        made = render_swap(cache, settings, source_img, target_img, engine, region, face_index)
    found, index, result = made.found, made.index, made.result
    with enhancer(cache, settings, wanted) as improve:
        result = improve(result, swapped_faces(found, index)) if improve else result
    if settings.faceswap_label:
        result = label(result)
    # 4. save with provenance, and audit
    summary = {
        "faces_found": len(found),
        "faces_swapped": len(found) if index == -1 else 1,
        "engine": engine,
        "region": region,
        "face_enhancer": wanted.restorer,
        "enhance_blend": wanted.blend,
        "labelled": settings.faceswap_label,
        "notes": notes,
    }
    hashes = {"source": source_hash, "target": target_hash}
    recipe = _recipe("image", engine, hashes, index, summary, settings)
    if settings.ray_address:
        recipe.update(served_by=serving.served_by(settings, "faceswap"))
    image = Image.fromarray(result)
    write = provenance.png_writer(image)
    saved = saving.finish(
        settings, "faceswap", f"swap-{engine}", "png", recipe, write, edited=True, label=settings.faceswap_label
    )
    audit(settings, _audit_entry("image", engine, hashes, index, saved.path, faces_found=len(found)))
    mesh = mesh_picture([(source_img, [made.source_face]), (target_img, found), (result, made.after)])
    return SwapResult(path=saved.path, summary=summary, recipe=recipe, image=image, mesh=mesh)


@dataclass
class Swapped:
    """What the swap made, before it is labelled and saved (picklable: it comes back from a Ray replica)."""

    result: np.ndarray  # the target with the face(s) swapped, (height, width, 3) RGB uint8
    found: list  # the faces found in the target (faces.Face)
    index: int  # the face swapped (1 = the first from the left), or -1 for all
    source_face: Any  # the face taken from the source (faces.Face)
    after: list  # the faces found again on the result (for "How it works")


def render_swap(
    cache: ModelCache,
    settings: Settings,
    source: np.ndarray,
    target: np.ndarray,
    engine: str,
    region: str,
    face_index: Any,
) -> Swapped:
    """Steps 2 and 3 of swap_face_image for checked pictures: the models from the cache, held for the whole swap,
    then the swap. Runs here or on a Ray Serve replica (app.engines)."""
    with swapper(cache, settings, source, engine, region) as swap:
        found = swap.detect(target)
        if not found:
            raise UserError("No face was found in the target image: use a photo where the face is clearly visible.")
        index = check_face_index(face_index, len(found))
        result = swap.apply(target, found, index)
        return Swapped(result, found, index, swap.source_face, swap.detect(result))


def _audit_entry(kind: str, engine: str, hashes: dict, index: int, path: Path, **counts: int) -> dict:
    return {
        "kind": kind,
        "engine": engine,
        "inputs_sha256": hashes,
        "consent_version": CONSENT_VERSION,
        "face_index": index,
        **counts,
        "output": path.name,
    }
