"""ControlNet for the Image tab: a control picture steers the composition. An offline preprocessor turns it into a
control map (Canny edges with OpenCV, a human pose from mediapipe's bundled pose model drawn as an OpenPose skeleton,
a scribble's strokes, a depth map from Depth Anything V2, downloaded on first use), or the picture is used as a map
as it is. The ControlNet that fits the base model and the control type is downloaded on first use (CURATED), or
chosen from the folders of STUDIO_CONTROLNET_DIR. diffusers' ControlNetModel and ControlNet pipelines do the work.
"""

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import checks
from core.device import import_lock, imported
from core.errors import UserError
from core.faces import PerThread
from core.models import ModelCache, ModelKey
from core.settings import Settings
from tabs.image import families

SETTING = "STUDIO_CONTROLNET_DIR"
TYPES = ("Canny", "Pose", "Scribble", "Depth")  # what the control picture is read as (and so which ControlNet steers)
AUTOMATIC = "Automatic"  # the curated ControlNet for the base model and the type
CANNY_THRESHOLDS = (100, 200)  # OpenCV's hysteresis thresholds (AUTOMATIC1111's defaults)
SCALE = (0.0, 2.0)  # conditioning scale: 0 = no effect, 1 = as trained
# The ControlNets offered for each base model family (diffusers format, safetensors weights on the Hub).
CURATED = {
    "sd15": {
        "Canny": "lllyasviel/control_v11p_sd15_canny",
        "Pose": "lllyasviel/control_v11p_sd15_openpose",
        "Scribble": "lllyasviel/control_v11p_sd15_scribble",
        "Depth": "lllyasviel/control_v11f1p_sd15_depth",
    },
    "sdxl": {
        "Canny": "diffusers/controlnet-canny-sdxl-1.0",
        "Pose": "xinsir/controlnet-openpose-sdxl-1.0",
        "Scribble": "xinsir/controlnet-scribble-sdxl-1.0",
        "Depth": "diffusers/controlnet-depth-sdxl-1.0",
    },
    "tiny": dict.fromkeys(TYPES, "tiny:controlnet"),  # the --tiny pipeline's random-weight ControlNet (core.tiny)
}


def weights(files: dict | None) -> list[str]:
    """All a diffusers ControlNet needs: its config and one weights file, the fp16 one where the repo has it (half the
    download; loaded in the device's dtype). `files`: the repo's files (None: not known, then whichever is here)."""
    full, half = "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"
    if files is None:
        return ["config.json", half, full]
    return ["config.json", half if half in files else full]


DEPTH_SETTING = "STUDIO_DEPTH_MODEL"
TINY_DEPTH = "tiny:depth-anything"  # --tiny's random-weight Depth Anything (core.tiny)
# OpenPose's 18 body points from mediapipe's 33 (None: the neck, the shoulders' midpoint) and its limbs and colours.
OPENPOSE_FROM_MEDIAPIPE = (0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13), (1, 0),
    (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
MIN_VISIBILITY = 0.3  # mediapipe's confidence that a body point is in view; below it the point is left out


@dataclass(frozen=True)
class Control:
    image: Any  # the control picture: a file path or a PIL image
    kind: str = "Canny"  # one of TYPES
    scale: float = 1.0  # how strongly the map steers (controlnet_conditioning_scale)
    start: float = 0.0  # the share of the steps done before it starts steering (control_guidance_start)
    end: float = 1.0  # the share done when it stops (control_guidance_end)
    model: str = AUTOMATIC  # AUTOMATIC, or the name of a folder in STUDIO_CONTROLNET_DIR
    is_map: bool = False  # the picture already is a control map: no preprocessor


def available(settings: Settings) -> dict[str, Path]:
    """The ControlNets of the operator's folder: name -> folder, for each subfolder with a config.json. Only these
    names are loaded: a name is never turned into a path."""
    folder = Path(settings.controlnet_dir)
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if (p / "config.json").is_file()}


def check(settings: Settings, control: Control | None) -> Control | None:
    """The control settings, checked (None when there is no control picture), before any model loads."""
    if control is None or control.image in (None, "", []):
        return None
    kind = control.kind
    if kind not in TYPES:
        raise UserError(f"The control type (control_type) must be one of {', '.join(TYPES)}; got {kind!r:.40}.")
    model = control.model or AUTOMATIC
    if model != AUTOMATIC and model not in available(settings):
        known = ", ".join(available(settings)) or "none yet"
        raise UserError(
            f"There is no ControlNet called {model!r:.60} in {settings.controlnet_dir} ({SETTING}). Choose "
            f"{AUTOMATIC} or one of: {known}."
        )
    scale = float(checks.check_number(control.scale, checks.named("control_scale", "control strength"), *SCALE))
    start = float(checks.check_number(control.start, checks.named("control_start", "control start"), 0, 1))
    end = float(checks.check_number(control.end, checks.named("control_end", "control end"), 0, 1))
    if start >= end:
        raise UserError(f"The control start ({start:g}) must come before its end ({end:g}): e.g. 0 and 1.")
    picture = read_picture(settings, control.image, checks.named("control_image", "control picture"))
    return Control(picture, kind, scale, start, end, model, bool(control.is_map))


def read_picture(settings: Settings, image: Any, what: str) -> Any:
    """A guide's picture (a path or a PIL image) as RGB within the size limit; one that is not a picture gets a
    sentence naming it (`what`)."""
    from tabs.image.parts import open_input_image

    if not hasattr(image, "size"):
        unreadable = f"The {what} is not an image the studio can read (PNG, JPEG or WebP)."
        with checks.open_image_file(image, what, unreadable) as opened:
            image = opened.convert("RGB")
    return open_input_image(image, settings)


# ----------------------------------------------------------------------------------------- preprocessors -------


def canny(picture: Any) -> Any:
    """White edges on black (OpenCV's Canny)."""
    import cv2
    import numpy as np
    from PIL import Image

    edges = cv2.Canny(np.asarray(picture.convert("L")), *CANNY_THRESHOLDS)
    return Image.fromarray(edges).convert("RGB")


def scribble(picture: Any) -> Any:
    """A sketch's strokes as white lines on black, as scribble ControlNets were trained: dark strokes on a light
    page are inverted, light strokes on a dark one kept."""
    import numpy as np
    from PIL import Image

    grey = np.asarray(picture.convert("L"))
    strokes = grey < 128 if grey.mean() >= 128 else grey >= 128
    return Image.fromarray(np.where(strokes, 255, 0).astype(np.uint8)).convert("RGB")


def _pose_graph() -> Any:
    mp = imported("mediapipe")

    return mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)


@contextlib.contextmanager
def pose_graphs(cache: ModelCache) -> Iterator[PerThread]:
    """mediapipe's pose landmarker (bundled with the package), one per thread, from the model cache."""
    key = ModelKey("pose", "mediapipe pose landmarker (bundled)", None, "cpu", "tflite")
    with cache.acquire(key, lambda: PerThread(_pose_graph)) as graphs:
        yield graphs


def pose(picture: Any, cache: ModelCache) -> Any:
    """The person's pose as an OpenPose skeleton (coloured limbs and points on black), what pose ControlNets read."""
    import cv2
    import numpy as np
    from PIL import Image

    rgb = np.asarray(picture.convert("RGB"))
    with pose_graphs(cache) as graphs:
        found = graphs.get().process(rgb).pose_landmarks
    if found is None:
        raise UserError(
            "No person was found in the control picture: Pose needs a visible body (head and shoulders at least). "
            "Use another picture, or another control type."
        )
    h, w = rgb.shape[:2]
    marks = found.landmark

    def point(index: int | None) -> tuple[int, int] | None:
        if index is None:  # the neck: between the shoulders
            a, b = point(12), point(11)
            return None if a is None or b is None else ((a[0] + b[0]) // 2, (a[1] + b[1]) // 2)
        m = marks[index]
        inside = 0 <= m.x <= 1 and 0 <= m.y <= 1
        return (int(m.x * w), int(m.y * h)) if m.visibility >= MIN_VISIBILITY and inside else None

    points = [point(i) for i in OPENPOSE_FROM_MEDIAPIPE]
    canvas = np.zeros_like(rgb)
    width = max(2, round(max(h, w) / 128))
    for (a, b), colour in zip(LIMBS, COLOURS, strict=False):
        if points[a] and points[b]:
            cv2.line(canvas, points[a], points[b], [c * 0.6 for c in colour], width * 2, cv2.LINE_AA)
    for p, colour in zip(points, COLOURS, strict=True):
        if p:
            cv2.circle(canvas, p, width * 2, colour, -1, cv2.LINE_AA)
    return Image.fromarray(canvas)


def load_depth(folder: Path, device: str, dtype: Any) -> tuple[Any, Any]:
    with import_lock:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    model = AutoModelForDepthEstimation.from_pretrained(folder, dtype=dtype, use_safetensors=True)
    return AutoImageProcessor.from_pretrained(folder), model.to(device).eval()


def depth(picture: Any, cache: ModelCache, settings: Settings) -> Any:
    """A depth map, near bright and far dark, as depth ControlNets read: Depth Anything V2 (or STUDIO_DEPTH_MODEL),
    downloaded on first use like every model."""
    import numpy as np
    import torch
    from PIL import Image

    name = TINY_DEPTH if settings.tiny else settings.depth_model
    with cache.model("depth", name, load_depth, setting=DEPTH_SETTING) as (processor, model):
        pixels = processor(images=picture, return_tensors="pt")["pixel_values"].to(model.device, model.dtype)
        with torch.inference_mode():
            predicted = model(pixel_values=pixels)
        sized = processor.post_process_depth_estimation(predicted, target_sizes=[(picture.height, picture.width)])
    near = sized[0]["predicted_depth"].float().cpu().numpy()  # relative inverse depth: larger is nearer
    span = float(near.max() - near.min())
    scaled = (near - near.min()) / span if span > 0 else np.zeros_like(near)
    return Image.fromarray((scaled * 255).round().astype(np.uint8)).convert("RGB")


def control_map(settings: Settings, control: Control, size: tuple[int, int], cache: ModelCache) -> Any:
    """The control map the ControlNet reads, at the picture's size (width, height). Edges and strokes are found at
    that size (found larger and then shrunk, they would fade to grey); the pose is found on the whole picture."""
    from PIL import Image

    picture, size = control.image, tuple(size)  # (checked: RGB, within the size limit)
    if control.kind == "Pose" and not control.is_map:
        picture = pose(picture, cache)
    elif control.kind == "Depth" and not control.is_map:
        picture = depth(picture, cache, settings)
    picture = picture if picture.size == size else picture.resize(size, Image.Resampling.LANCZOS)
    if control.is_map or control.kind in ("Pose", "Depth"):
        return picture
    return canny(picture) if control.kind == "Canny" else scribble(picture)


# -------------------------------------------------------------------------------------------- the model -------


def model_for(settings: Settings, control: Control, base: Any) -> str:
    """The ControlNet to load for this base model: a folder of STUDIO_CONTROLNET_DIR, or the curated one."""
    if control.model != AUTOMATIC:
        return str(available(settings)[control.model])
    family = families.family_of(base)
    if "controlnet" not in family.adapters and family.denoiser == "transformer":
        raise UserError(
            f"ControlNet needs a Stable Diffusion 1.5 or SDXL model here; {family.name} models take no ControlNet in "
            "the studio yet. Choose Stable Diffusion 1.5 or SDXL-Turbo, or turn the ControlNet off."
        )
    chosen = CURATED.get(family.key, {}).get(control.kind)
    if chosen:
        return chosen
    why = (
        "SD 2.x models (such as SD-Turbo) have no ControlNets published in safetensors format"
        if family.key == "sd21"
        else f"there is no curated {control.kind} ControlNet for {family.name} models"
    )
    raise UserError(
        f"ControlNet needs another model: {why}. Choose Stable Diffusion 1.5 or SDXL-Turbo, or put a {control.kind} "
        f"ControlNet for this model (diffusers format, safetensors) in {settings.controlnet_dir} ({SETTING})."
    )


def load_controlnet(folder: Path, device: str, dtype: Any) -> Any:
    with import_lock:
        from diffusers import ControlNetModel

    half = (Path(folder) / "diffusion_pytorch_model.fp16.safetensors").exists()
    return ControlNetModel.from_pretrained(
        folder, dtype=dtype, use_safetensors=True, variant="fp16" if half else None
    ).to(device)


def check_fits(controlnet: Any, base: Any, name: str) -> None:
    """A ControlNet made for another base model (an SD 1.5 one on SDXL, say) gets a sentence, not a shape error."""
    ours, theirs = base.unet.config.cross_attention_dim, controlnet.config.cross_attention_dim
    if ours != theirs:
        raise UserError(
            f"The ControlNet {Path(name).name!r} was made for {families.family_of(theirs).name} models, not for this "
            f"{families.family_of(ours).name} model. Choose {AUTOMATIC} or a ControlNet made for this model."
        )


def recipe(control: Control, model: str, picture: Any) -> dict[str, Any]:
    return {
        "type": control.kind,
        "model": Path(model).name if Path(model).is_dir() else model,
        "scale": control.scale,
        "start": control.start,
        "end": control.end,
        "preprocessor": "none" if control.is_map else control.kind.lower(),
        "map_sha256": hashlib.sha256(picture.tobytes()).hexdigest(),  # the very map that steered the picture
    }
