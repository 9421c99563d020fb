"""The Extras tab's engine (AUTOMATIC1111 calls it so): any picture upscaled with an ESRGAN-family model and its faces
restored, saved with its recipe and labelled as the user's picture, AI-enhanced. Plain Python: the parameters and
their checks, then `enhance_picture` in steps (check -> models from the cache -> upscale and restore with progress ->
save). The models and the work itself are in core.enhance (the Image and Face swap tabs use them too)."""

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core import checks, enhance, faces, outputs, provenance, saving, serving
from core.errors import UserError
from core.models import ModelCache
from core.settings import Settings

MAX_SCALE = 8  # x8: a x4 model twice, as A1111's Extras allows
MAX_SIDE = 8192  # a target width or height in pixels (the output's megapixels are bounded too)
UNREADABLE = "The picture (image) is not an image the studio can read (PNG, JPEG or WebP)."


@dataclass(frozen=True)
class ExtrasParams:
    upscaler: str = enhance.NONE  # a name of core.enhance.upscaler_choices, or None
    _: KW_ONLY
    scale: float = 2  # how many times larger, 1 to 8 (1: faces only)
    target_width: int = 0  # or the size to reach (A1111's "Scale to"): 0 takes it from scale; one of the two keeps
    target_height: int = 0  # the picture's shape, both give exactly that size (scaled to cover it, then centred crop)
    face_restorer: str = enhance.NONE  # a name of core.enhance.restorer_choices, or None
    restore_strength: float = 1.0  # 0 keeps the faces as they were, 1 is the restorer's alone (A1111's visibility)


@dataclass
class ExtrasUpdate:
    done_steps: int
    total_steps: int
    seconds: float
    stage: str = ""  # what it does now ("Upscaling", "Restoring faces")
    path: Path | None = None  # the saved PNG, once done
    recipe: dict | None = None
    before: Any = None  # the input picture (PIL), once done, for the before/after view
    done: bool = False
    faces: int = 0  # faces restored

    def status(self) -> str:
        if self.done:
            restoring = self.recipe and self.recipe.get("face_restorer") != enhance.NONE
            restored = f", {self.faces} face(s) restored" if restoring else ""
            return f"Done: {self.recipe['width']}x{self.recipe['height']} in {self.seconds:.1f} s{restored}."
        return f"{self.stage} · step {self.done_steps}/{self.total_steps} · {self.seconds:.1f} s"


def check_params(settings: Settings, p: ExtrasParams) -> ExtrasParams:
    upscaler = enhance.check_choice(p.upscaler, enhance.upscaler_choices(settings), checks.named("upscaler"))
    restorer = enhance.check_choice(p.face_restorer, enhance.restorer_choices(settings), checks.named("face_restorer"))
    scale = checks.check_number(p.scale, "scale", 1, MAX_SCALE)
    width = checks.check_number(p.target_width, checks.named("target_width"), 0, MAX_SIDE, integer=True, unit=" px")
    height = checks.check_number(p.target_height, checks.named("target_height"), 0, MAX_SIDE, integer=True, unit=" px")
    sized = bool(width or height)
    if upscaler == enhance.NONE and (scale != 1 or sized):
        raise UserError("Choose an upscaler to make the picture larger (or scale 1 to restore faces only).")
    if upscaler != enhance.NONE and scale == 1 and not sized:
        raise UserError("An upscaler needs a scale above 1 (or a target width or height).")
    if upscaler == enhance.NONE and restorer == enhance.NONE:
        raise UserError("Choose an upscaler, a face restorer or both: there is nothing to do.")
    strength = checks.check_number(p.restore_strength, checks.named("restore_strength"), 0, 1)
    return ExtrasParams(
        upscaler, scale=float(scale), target_width=width, target_height=height, face_restorer=restorer,
        restore_strength=float(strength),
    )  # fmt: skip


def planned(params: ExtrasParams, width: int, height: int) -> ExtrasParams:
    """The checked parameters for a `width` x `height` picture, with the scale that reaches the target size (the
    larger of the two ratios where both are given: the picture covers the target, then is cropped to it) and the
    output's size in target_width and target_height. Refuses a target smaller than the picture, or past the limits."""
    w, h = params.target_width, params.target_height
    if not (w or h):
        scale = params.scale
        w, h = round(width * scale), round(height * scale)
    else:
        scale = max(w / width if w else 0, h / height if h else 0)
        w, h = w or round(width * scale), h or round(height * scale)
        if scale <= 1:
            raise UserError(
                f"The target size (target_width {params.target_width or 'any'}, target_height "
                f"{params.target_height or 'any'}) is not larger than the {width}x{height} picture; the Extras tab "
                "enlarges pictures."
            )
        if scale > MAX_SCALE:
            raise UserError(
                f"Reaching {w}x{h} (target_width, target_height) from the {width}x{height} picture takes "
                f"x{scale:.3g}; the most is x{MAX_SCALE}. Choose a smaller target size."
            )
    enhance.check_output_size(width, height, scale)
    return replace(params, scale=scale, target_width=w, target_height=h)


@dataclass
class Enhanced:
    """What the models made, before it is saved (picklable: it comes back from a Ray replica)."""

    picture: np.ndarray  # (height, width, 3) RGB uint8
    faces: int  # faces restored
    used: dict  # what the recipe says of the models (architecture, SHA-256 of the weights)


def enhance_picture(
    cache: ModelCache,
    settings: Settings,
    image: Any,
    params: ExtrasParams,
    *,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[ExtrasUpdate]:
    """The picture `image` (a path) upscaled and its faces restored: yields progress, then the saved PNG. With
    STUDIO_RAY_ADDRESS the models run on the cluster's extras engine (app.engines); the rest runs here."""
    # 1. check the inputs: the models offered, the sizes (the output's too), the picture itself
    params = check_params(settings, params)
    with checks.open_image_file(image, "picture (image)", UNREADABLE) as opened:
        before = opened.convert("RGB")
    params = planned(params, before.width, before.height)
    source_sha256 = outputs.file_sha256(image)
    stop, start = stop or threading.Event(), time.perf_counter()
    # 2.-3. the models from the cache (here, or on a Ray replica) upscale and restore, with progress
    if settings.ray_address:
        made = yield from serving.call(settings, "extras", "render", (np.asarray(before), params), stop, progress)
        made.used.update(served_by=serving.served_by(settings, "extras"))
    else:
        made = yield from render_extras(cache, settings, np.asarray(before), params, stop, progress)
    # 4. save with its recipe: the user's picture, AI-enhanced (a composite, as inpainting and face swaps are)
    picture = made.picture
    recipe = outputs.base_recipe(
        "extras",
        params.upscaler if params.upscaler != enhance.NONE else params.face_restorer,
        source_sha256=source_sha256,
        width=picture.shape[1],
        height=picture.shape[0],
        source_width=before.width,
        source_height=before.height,
        faces_restored=made.faces,
        tile=enhance.TILE,
        versions=outputs.library_versions("torch", "spandrel"),
        **asdict(params),
        **made.used,
    )
    from PIL import Image

    write = provenance.png_writer(Image.fromarray(picture))
    saved = saving.finish(settings, "extras", Path(str(image)).stem, "png", recipe, write, edited=True)
    seconds = time.perf_counter() - start
    yield ExtrasUpdate(1, 1, seconds, "Done", saved.path, recipe, before, True, made.faces)


def render_extras(
    cache: ModelCache, settings: Settings, picture: np.ndarray, params: ExtrasParams, stop: Any, progress: Any
) -> Iterator[ExtrasUpdate]:
    """Steps 2 and 3 of enhance_picture for a checked picture: each model from the cache (downloaded on first use),
    held while it works; returns what they made (Enhanced). Runs here, or on a Ray Serve replica (app.engines)."""
    used: dict[str, Any] = {}
    steps, start = [0, 1], time.perf_counter()  # tiles done, steps in all (the upscale's tiles, then the faces)

    def tick(stage: str) -> ExtrasUpdate:
        update = ExtrasUpdate(steps[0], steps[1], time.perf_counter() - start, stage)
        if progress:
            progress(min(steps[0] / max(steps[1], 1), 1.0), update.status())
        return update

    if params.upscaler != enhance.NONE:
        with enhance.model(cache, settings, params.upscaler, "upscaler", progress) as upscaler:
            picture = yield from _upscale(upscaler, picture, params.scale, stop, steps, tick)
            picture = enhance.crop_to(picture, params.target_width, params.target_height)
            used["upscaler_sha256"], used["upscaler_architecture"] = upscaler.sha256, upscaler.architecture
    restored = 0
    if params.face_restorer != enhance.NONE:
        yield tick("Finding faces")
        with faces.face_graphs(cache) as graphs:
            found = faces.detect_faces(picture, graphs)
        with enhance.model(cache, settings, params.face_restorer, "restorer", progress) as restorer:
            yield tick(f"Restoring {len(found)} face(s)")
            picture, restored = enhance.restore_faces(restorer, picture, found, params.restore_strength, stop)
            used["face_restorer_sha256"], used["face_restorer_architecture"] = restorer.sha256, restorer.architecture
    return Enhanced(picture, restored, used)


def _upscale(upscaler: enhance.Loaded, picture: np.ndarray, scale: float, stop: Any, steps: list, tick: Callable):
    """The upscale on a Worker (its tiles counted into `steps`), yielding progress while it runs."""
    from core.device import Worker

    def step(done: int, total: int) -> None:
        steps[0], steps[1] = done, total + 1

    job = Worker("extras-upscale")
    with job.start(lambda: enhance.upscale(upscaler, picture, scale, stop=_either(stop, job.halt), step=step)):
        while not job.finished.wait(0.25):
            yield tick(f"Upscaling x{scale:.3g} with {upscaler.name}")
    return job.result()


@dataclass
class _either:
    """A stop flag set when either of two is (the user's Stop, or the page going away)."""

    first: Any
    second: Any = field(default=None)

    def is_set(self) -> bool:
        return self.first.is_set() or (self.second is not None and self.second.is_set())
