"""Finishing a picture: upscalers (the ESRGAN family: Real-ESRGAN, its compact SRVGG nets, 4x-UltraSharp...) and
face restorers (GFPGAN, RestoreFormer; CodeFormer where the operator installs spandrel_extra_arches), run through
spandrel, the library ComfyUI and InvokeAI use to recognise these architectures from their weights.

Used by the Extras tab, the Image tab's Upscale and the Face swap tab's "Enhance the swapped face". Weights come from
a short curated list (named Hub repos, downloaded on first use) or from the operator's folders (STUDIO_UPSCALER_DIR,
STUDIO_FACE_RESTORER_DIR, the layout ComfyUI and A1111 users have). `.safetensors` load as they are; `.pth` only
through torch's weights_only loading (tensors, never code); `.pt` (TorchScript) and `.ckpt` are never read.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import checks
from core.errors import Stopped, UserError

NONE = "None"
UPSCALER_SETTING, RESTORER_SETTING = "STUDIO_UPSCALER_DIR", "STUDIO_FACE_RESTORER_DIR"
SUFFIXES = (".safetensors", ".pth")  # read; everything else in the folders is ignored (.pt runs TorchScript code)
TILE, OVERLAP, MIN_TILE = 512, 32, 128  # ComfyUI's tiling: 512 px tiles overlapping by 32 px, halved on out of memory
FACE_SIZE = 512
# The 5 key points of FFHQ's 512 px face crop, which GFPGAN, RestoreFormer and CodeFormer were trained on (facexlib's
# face_restoration_helper): eyes, nose tip, mouth corners, image left first (core.faces' keypoints5 order).
FFHQ_512 = np.array(
    [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935], [201.26117, 371.41043],
     [313.08905, 371.15118]],
    dtype=np.float32,
)  # fmt: skip


@dataclass(frozen=True)
class Curated:
    repo: str  # the Hugging Face repo it is downloaded from on first use
    file: str  # its file there
    licence: str  # shown beside it


UPSCALERS = {
    "Real-ESRGAN x4plus": Curated("Comfy-Org/Real-ESRGAN_repackaged", "RealESRGAN_x4plus.safetensors", "BSD-3-Clause"),
    "Real-ESRGAN general x4v3": Curated("jhj0517/realesr-general-x4v3", "realesr-general-x4v3.pth", "BSD-3-Clause"),
    "Real-ESRGAN x4plus anime 6B": Curated("lllyasviel/Annotators", "RealESRGAN_x4plus_anime_6B.pth", "BSD-3-Clause"),
}
RESTORERS = {
    "GFPGAN v1.4": Curated("hacksider/deep-live-cam", "GFPGANv1.4.pth", "Apache-2.0 (TencentARC)"),
}
NON_COMMERCIAL = {"CodeFormer": "CodeFormer's S-Lab licence allows non-commercial use only."}


def local_models(folder: Path | None) -> dict[str, Path]:
    """name -> file for the weights in an operator's folder (its .safetensors and .pth files, by file name without
    extension). Only these names are loaded: a name is never turned into a path."""
    if not folder or not Path(folder).is_dir():
        return {}
    return {p.stem: p for p in sorted(Path(folder).iterdir()) if p.suffix.lower() in SUFFIXES and p.is_file()}


def folder_of(settings: Any, kind: str) -> Path:
    """Where the operator's upscalers or face restorers are (with --tiny: tiny random-weight ones built here)."""
    if settings.tiny:
        from core import tiny

        return tiny.ensure(
            "tiny:upscalers" if kind == "upscaler" else "tiny:face-restorers", settings.cache_dir / "tiny"
        )
    return settings.upscaler_dir if kind == "upscaler" else settings.face_restorer_dir


TINY_UPSCALERS = ("tiny-compact-x4", "tiny-esrgan-x2")  # core.tiny's, built on first use (not to list them)
TINY_RESTORERS = ("tiny-restoreformer",)


def upscaler_choices(settings: Any) -> list[str]:
    if settings.tiny:
        return list(TINY_UPSCALERS)
    return [*UPSCALERS, *(n for n in local_models(settings.upscaler_dir) if n not in UPSCALERS)]


def restorer_choices(settings: Any) -> list[str]:
    if settings.tiny:
        return list(TINY_RESTORERS)
    return [*RESTORERS, *(n for n in local_models(settings.face_restorer_dir) if n not in RESTORERS)]


def check_choice(value: Any, offered: list[str], what: str, allow_none: bool = True) -> str:
    """A model name as listed (NONE: not used), or a sentence that lists them."""
    choices = ([NONE] if allow_none else []) + offered
    if isinstance(value, str) and value.strip() in choices:
        return value.strip()
    raise UserError(f"The {what} must be one of {', '.join(choices)}; got {value!r:.60}.")


def read_weights(path: Path) -> dict:
    """A weights file's tensors: safetensors as they are, .pth through torch's weights_only loading (a pickle that
    would run code is refused with a sentence and never runs)."""
    import torch

    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception:
            raise UserError(f"The weights file {path.name} is not a readable safetensors file.") from None
    if path.suffix.lower() != ".pth":
        raise UserError(f"The studio reads .safetensors and .pth weights only, not {path.name}.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "Weights only load failed" in str(exc):
            raise UserError(
                f"The weights file {path.name} holds more than tensors (a pickle that could run code when read), so "
                "the studio refused to read it. Use a .safetensors copy."
            ) from None
        raise UserError(f"The weights file {path.name} could not be read: it seems damaged.") from None


@dataclass
class Loaded:
    """A spandrel model, ready: its descriptor, what it is and the SHA-256 of its weights (for the recipe)."""

    descriptor: Any  # spandrel.ImageModelDescriptor
    name: str
    sha256: str

    @property
    def scale(self) -> int:
        return int(self.descriptor.scale)

    @property
    def architecture(self) -> str:
        return str(self.descriptor.architecture.id)


def load_model(path: Path, name: str, purposes: tuple[str, ...], device: str, dtype: Any) -> Loaded:
    """The weights at `path` as a spandrel model whose purpose is one of `purposes` ("SR", "Restoration" for an
    upscaler; "FaceSR" for a face restorer), on `device` (half precision on a GPU where the architecture allows)."""
    import torch
    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

    state = read_weights(path)
    try:
        with contextlib.suppress(ImportError):
            import spandrel_extra_arches  # CodeFormer and others, where the operator installs them (licences vary)

            spandrel_extra_arches.install(ignore_duplicates=True)
        descriptor = ModelLoader().load_from_state_dict(state)
    except UnsupportedModelError:
        raise UserError(f"{name} is not a model the studio can run (spandrel does not recognise it).") from None
    if not isinstance(descriptor, ImageModelDescriptor) or descriptor.purpose not in purposes:
        kind = "an upscaler" if "SR" in purposes else "a face restorer"
        raise UserError(f"{name} is not {kind}: it is a {getattr(descriptor, 'purpose', 'different')} model.")
    supported = descriptor.supports_half if dtype == torch.float16 else descriptor.supports_bfloat16
    if device != "cpu" and dtype in (torch.float16, torch.bfloat16) and supported:
        descriptor.to(device, dtype)
    else:
        descriptor.to(device)  # float32: the CPU, or an architecture that is unstable in half precision
    descriptor.eval()
    return Loaded(descriptor, name, hashlib.sha256(Path(path).read_bytes()).hexdigest())


@contextlib.contextmanager
def model(cache: Any, settings: Any, name: str, kind: str, progress: Any = None) -> Iterator[Loaded]:
    """The upscaler or face restorer `name` (kind "upscaler" or "restorer") from the cache, held for the block: a
    curated one downloaded on first use, else the operator's file of that name."""
    curated = None if settings.tiny else (UPSCALERS if kind == "upscaler" else RESTORERS).get(name)
    folder = folder_of(settings, kind)
    setting = UPSCALER_SETTING if kind == "upscaler" else RESTORER_SETTING
    purposes = ("SR", "Restoration") if kind == "upscaler" else ("FaceSR",)
    if curated is not None:
        model_id, file, patterns = curated.repo, curated.file, [curated.file]
    else:
        local = local_models(folder).get(name)
        if local is None:
            raise UserError(f"There is no {kind} called {name!r:.60} (the files in {folder} are offered by name).")
        model_id, file, patterns = str(local.parent), local.name, None

    def load(where: Path, device: str, dtype: Any) -> Loaded:
        return load_model(Path(where) / file, name, purposes, device, dtype)

    options = dict(setting=setting, progress=progress, name=f"{model_id}/{file}")
    with cache.model(kind, model_id, load, **options, **({"allow_patterns": patterns} if patterns else {})) as held:
        yield held


# ---------------------------------------------------------------------------------------------- upscaling -----


def _to_tensor(picture: np.ndarray, descriptor: Any) -> Any:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) in [0, 1] on the model's device and dtype."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(picture, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    return tensor.to(descriptor.device, descriptor.dtype)


def _ramp(length: int, feather: int, device: Any) -> Any:
    """1 inside, rising linearly from 1/feather over `feather` values at both ends (a tile's blending weight)."""
    import torch

    ramp = torch.ones(length, device=device)
    if 0 < feather < length:
        edge = torch.linspace(1 / feather, 1, feather, device=device)
        ramp[:feather] = torch.minimum(ramp[:feather], edge)
        ramp[-feather:] = torch.minimum(ramp[-feather:], edge.flip(0))
    return ramp


def upscale_tiles(
    descriptor: Any,
    picture: np.ndarray,
    tile: int = TILE,
    overlap: int = OVERLAP,
    stop: Any = None,
    step: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """The picture (H, W, 3 uint8) through the model in tiles of `tile` px overlapping by `overlap` px, cross-faded
    where they overlap (ComfyUI's tiled_scale): bounded memory for any size, no seams. `step(done, total)` after each
    tile; a set `stop` ends it at the next tile."""
    import torch

    scale = int(descriptor.scale)
    h, w = picture.shape[:2]
    image = _to_tensor(picture, descriptor)
    ys = list(range(0, max(h - overlap, 1), tile - overlap)) if h > tile else [0]
    xs = list(range(0, max(w - overlap, 1), tile - overlap)) if w > tile else [0]
    out = torch.zeros((3, h * scale, w * scale), dtype=torch.float32)
    weight = torch.zeros((1, h * scale, w * scale), dtype=torch.float32)
    feather = overlap * scale
    for done, (y, x) in enumerate(itertools.product(ys, xs), 1):
        if stop is not None and stop.is_set():
            raise Stopped
        y, x = min(y, max(h - tile, 0)), min(x, max(w - tile, 0))
        th, tw = min(tile, h - y), min(tile, w - x)
        with torch.inference_mode():
            made = descriptor(image[:, :, y : y + th, x : x + tw])[0].float().cpu()
        mask = (
            _ramp(made.shape[1], feather if len(ys) > 1 else 0, "cpu")[:, None]
            * _ramp(made.shape[2], feather if len(xs) > 1 else 0, "cpu")[None, :]
        )
        oy, ox = y * scale, x * scale
        out[:, oy : oy + made.shape[1], ox : ox + made.shape[2]] += made * mask
        weight[:, oy : oy + made.shape[1], ox : ox + made.shape[2]] += mask
        if step:
            step(done, len(ys) * len(xs))
    result = (out / weight.clamp_min(1e-8)).clamp(0, 1)
    return (result.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def upscale(
    loaded: Loaded, picture: np.ndarray, scale: float, stop: Any = None, step: Callable | None = None
) -> np.ndarray:
    """The picture `scale` times larger: the model's passes until it is at least that large, then resized to the
    exact size (a x4 model for x2: one pass, then halved, as A1111 does). Tiles halve on an out-of-memory error."""
    import cv2

    from core.device import is_out_of_memory

    h, w = picture.shape[:2]
    target = (round(w * scale), round(h * scale))
    made, tile = picture, TILE
    while made.shape[1] < target[0] or made.shape[0] < target[1]:
        try:
            made = upscale_tiles(loaded.descriptor, made, tile=tile, stop=stop, step=step)
        except Exception as exc:
            if not is_out_of_memory(exc) or tile // 2 < MIN_TILE:
                raise
            tile //= 2
            from core.device import free_memory

            free_memory()
    if (made.shape[1], made.shape[0]) != target:
        shrink = made.shape[1] > target[0]
        made = cv2.resize(made, target, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
    return made


def crop_to(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    """The centre `width` x `height` of a picture that covers that size (A1111's "crop to fit"); a picture a pixel
    short from rounding is resized instead."""
    h, w = picture.shape[:2]
    if (w, h) == (width, height):
        return picture
    if w < width or h < height:
        import cv2

        return cv2.resize(picture, (width, height), interpolation=cv2.INTER_LANCZOS4)
    left, top = (w - width) // 2, (h - height) // 2
    return np.ascontiguousarray(picture[top : top + height, left : left + width])


def check_output_size(width: int, height: int, scale: float) -> None:
    """Refuse an output past the studio's pixel limit before any work."""
    pixels = width * height * scale * scale
    if pixels > checks.MAX_IMAGE_PIXELS:
        raise UserError(
            f"At x{scale:g} the {width}x{height} picture would become {round(width * scale)}x"
            f"{round(height * scale)} pixels; the studio makes at most {checks.MAX_IMAGE_PIXELS // 1_000_000} "
            "megapixels. Choose a smaller scale."
        )


# -------------------------------------------------------------------------------------- face restoration -----


def _restore_crop(loaded: Loaded, crop: np.ndarray) -> np.ndarray:
    """A 512 px aligned face (uint8 RGB) restored: the networks read and write [-1, 1] (GFPGANer's and A1111's way;
    spandrel's descriptor call maps only RestoreFormer's range)."""
    import torch

    descriptor, net = loaded.descriptor, loaded.descriptor.model
    x = _to_tensor(crop, descriptor) * 2 - 1
    with torch.inference_mode():
        if loaded.architecture == "GFPGAN":
            y = net(x, return_rgb=False)[0]
        elif loaded.architecture == "CodeFormer":
            y = net(x, weight=0.5)[0]
        else:
            y = net(x)[0]
    y = ((y.float().clamp(-1, 1) + 1) / 2)[0].permute(1, 2, 0).cpu().numpy()
    return (y * 255 + 0.5).astype(np.uint8)


def paste_mask(matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Where a 512 px face crop lands in the picture (the inverse of `matrix`), as a soft mask in [0, 1] (H, W):
    eroded from the crop's edges and feathered by a twentieth of the face's size (facexlib's square paste-back)."""
    import cv2

    h, w = shape
    inverse = cv2.invertAffineTransform(matrix)
    mask = cv2.warpAffine(np.ones((FACE_SIZE, FACE_SIZE), np.float32), inverse, (w, h))
    mask = cv2.erode(mask, np.ones((2, 2), np.uint8))
    edge = max(int(np.sqrt(mask.sum())) // 20, 1)
    mask = cv2.erode(mask, np.ones((2 * edge, 2 * edge), np.uint8))
    return cv2.GaussianBlur(mask, (2 * edge + 1, 2 * edge + 1), 0).clip(0, 1)


def alignment(face: Any) -> np.ndarray:
    """The 2x3 matrix that puts a face (core.faces.Face) on FFHQ's 512 px template (least squares over its 5 key
    points, as core.faces aligns for the swapper)."""
    from core.faces import similarity

    return similarity(face.keypoints5, FFHQ_512)


def restore_faces(
    loaded: Loaded, picture: np.ndarray, found: list, strength: float, stop: Any = None
) -> tuple[np.ndarray, int]:
    """Each face in `found` (core.faces.Face) aligned to FFHQ's 512 px template, restored, blended with the original
    by `strength` (0 keeps it, 1 is the model's alone) and pasted back with a feathered mask: pixels away from the
    faces stay exactly as they were. Returns (the picture, faces restored)."""
    import cv2

    result = picture.astype(np.float32)
    h, w = picture.shape[:2]
    for face in found:
        if stop is not None and stop.is_set():
            raise Stopped
        matrix = alignment(face)
        crop = cv2.warpAffine(picture, matrix, (FACE_SIZE, FACE_SIZE), borderValue=(135, 133, 132))
        restored = _restore_crop(loaded, crop).astype(np.float32)
        blended = strength * restored + (1 - strength) * crop.astype(np.float32)
        back = cv2.warpAffine(blended, cv2.invertAffineTransform(matrix), (w, h))
        soft = paste_mask(matrix, (h, w))[..., None]
        result = soft * back + (1 - soft) * result
    return result.round().clip(0, 255).astype(np.uint8), len(found)  # where every mask is 0: the same bytes
