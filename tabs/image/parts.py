"""The image engine's plain parts: samplers, input pictures and masks, live previews. No model is loaded here;
`tabs/image.py` runs the pipelines and builds the tab."""

import copy
from typing import Any

from core import checks
from core.errors import UserError
from core.settings import Settings

MASK_BLUR = 4  # px: the inpainting mask's edge is softened before the original is laid back (A1111's "Mask blur")
DEFAULT_SAMPLER = "Model default"  # the scheduler the model ships with (what its authors tuned it for)
# AUTOMATIC1111's sampler names -> (diffusers scheduler class, options over the model's own scheduler config)
SAMPLERS = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": False}),  # latent diffusion's settings
    "UniPC": ("UniPCMultistepScheduler", {}),
}

# Linear maps from 4-channel SD latents to RGB: a preview with no extra model (factors widely used by SD UIs).
LATENT_RGB = [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
]


def latent_preview(latents: Any) -> Any:
    """A rough RGB picture of the first latent in a batch (B, 4, h, w), at latent resolution (the page scales it)."""
    import torch
    from PIL import Image

    lat = latents[0, :4].float().cpu()
    rgb = torch.einsum("chw,cr->hwr", lat, torch.tensor(LATENT_RGB)[: lat.shape[0]])
    rgb = ((rgb + 1) / 2).clamp(0, 1).mul(255).byte().numpy()
    return Image.fromarray(rgb)


def check_sampler(sampler: Any) -> str:
    sampler = DEFAULT_SAMPLER if sampler is None or str(sampler).strip() == "" else str(sampler).strip()
    if sampler != DEFAULT_SAMPLER and sampler not in SAMPLERS:
        offered = ", ".join([DEFAULT_SAMPLER, *SAMPLERS])
        raise UserError(f"The sampler {sampler[:40]!r} is not offered here: choose one of {offered}.")
    return sampler


def make_scheduler(base_scheduler: Any, sampler: str) -> Any:
    """A fresh scheduler for one run (its state is per run): the model's own, or the chosen sampler built from
    the model's scheduler config (so a model's tuning, e.g. SD-Turbo's trailing timesteps, carries over)."""
    if sampler == DEFAULT_SAMPLER:
        return copy.deepcopy(base_scheduler)
    import diffusers

    name, options = SAMPLERS[sampler]
    return getattr(diffusers, name).from_config(base_scheduler.config, **options)


def open_input_image(image: Any, settings: Settings, factor: float = 1.0) -> Any:
    """An uploaded image as RGB, scaled by `factor` but within the size limit, with sides that are multiples of 8."""
    from PIL import Image

    if image is None or image == "":
        raise UserError("Add an input image for image-to-image (upload one, or use a result).")
    if not hasattr(image, "size"):
        with checks.open_image_file(image, "input image", checks.IMAGE_UNREADABLE) as im:
            image = im.convert("RGB")
    image = image.convert("RGB")
    scale = min(factor, settings.max_image_size / max(image.size))
    w, h = (max(64, int(side * scale) // 8 * 8) for side in image.size)
    return image if (w, h) == image.size else image.resize((w, h), Image.Resampling.LANCZOS)


def upscaled(image: Any, settings: Settings) -> Any:
    """The picture at twice its size (within the size limit), for an image-to-image pass that adds the detail."""
    with checks.open_image_file(image, "image to upscale", checks.IMAGE_UNREADABLE) as im:
        picture = im.convert("RGB")
    if max(picture.size) >= settings.max_image_size:
        raise UserError(
            f"This image is already at the size limit ({settings.max_image_size} px on its longer side): "
            "there is nothing to upscale."
        )
    return open_input_image(picture, settings, factor=2.0)


def open_mask(mask: Any, size: tuple[int, int]) -> Any:
    """The inpainting mask (a PIL image, a path, or a list of them: an editor's painted layers) as an 8-bit
    black-and-white image of `size`, white where the picture is repainted. A layer with transparency counts where
    it is painted (its opacity); an opaque picture counts where it is bright (a black-and-white mask file)."""
    from PIL import Image, ImageChops

    layers = mask if isinstance(mask, (list, tuple)) else [mask]
    union = Image.new("L", size, 0)
    for layer in layers:
        if layer is None or layer == "":
            continue
        if not hasattr(layer, "size"):
            with checks.open_image_file(layer, "mask", checks.IMAGE_UNREADABLE) as im:
                layer = im.copy()
        alpha = layer.convert("RGBA").getchannel("A")
        painted = alpha if alpha.getextrema()[0] < 255 else layer.convert("L")
        union = ImageChops.lighter(union, painted.resize(size, Image.Resampling.NEAREST))
    union = union.point(lambda v: 255 if v >= 128 else 0)
    if not union.getbbox():
        raise UserError("The mask is empty: paint over the part of the image to repaint.")
    return union


def keep_outside_mask(original: Any, result: Any, mask: Any) -> Any:
    """AUTOMATIC1111's overlay: outside the (softened) mask the result is the original, pixel for pixel. Without
    it every pixel goes through the VAE, which shifts colours and detail where nothing was meant to change."""
    from PIL import Image, ImageFilter

    soft = mask.filter(ImageFilter.GaussianBlur(MASK_BLUR))
    return Image.composite(result.convert("RGB").resize(original.size), original.convert("RGB"), soft)


OUTPAINT_SIDES = ("left", "right", "top", "bottom")
OUTPAINT_OVERLAP = 8  # px of the original along each new edge that the model repaints too, so the seam blends


def check_sides(sides: Any) -> list[str]:
    """The sides to extend, in lower case ("Right" or "right, top" or a list of them)."""
    named = sides.split(",") if isinstance(sides, str) else sides if isinstance(sides, (list, tuple)) else []
    chosen = [str(s).strip().lower() for s in named if str(s).strip()]
    if not chosen or any(s not in OUTPAINT_SIDES for s in chosen):
        raise UserError(
            f"Choose the sides to extend (outpaint_sides): one or more of {', '.join(OUTPAINT_SIDES)}; "
            f"got {sides!r:.60}."
        )
    return sorted(set(chosen), key=OUTPAINT_SIDES.index)


def outpaint_canvas(image: Any, sides: Any, pixels: Any, settings: Settings) -> tuple[Any, Any, dict]:
    """The picture on a larger canvas, `pixels` more on each chosen side (within the size limit), the mask (white
    over the new area and a thin overlap into the picture), and what the recipe says about it. The new area starts
    as the picture's edges stretched outwards and blurred: colours the model continues from, not a flat grey it
    would have to undo."""
    import numpy as np
    from PIL import Image, ImageFilter

    chosen = check_sides(sides)
    pixels = int(
        checks.check_number(
            pixels,
            checks.named("outpaint_pixels", "number of pixels to add"),
            8,
            settings.max_image_size,
            integer=True,
        )
    )
    pixels -= pixels % 8  # the model works on 8 px cells
    left, right, top, bottom = (pixels if s in chosen else 0 for s in OUTPAINT_SIDES)
    w, h = image.size
    size = (w + left + right, h + top + bottom)
    if max(size) > settings.max_image_size:
        raise UserError(
            f"Extended by {pixels} px the picture would be {size[0]}x{size[1]}; the limit is "
            f"{settings.max_image_size} px a side. Add fewer pixels or choose fewer sides."
        )
    stretched = np.pad(np.asarray(image.convert("RGB")), ((top, bottom), (left, right), (0, 0)), mode="edge")
    canvas = Image.fromarray(stretched).filter(ImageFilter.GaussianBlur(max(4, pixels // 4)))
    canvas.paste(image.convert("RGB"), (left, top))
    mask = Image.new("L", size, 255)
    o = OUTPAINT_OVERLAP
    inner = (left and left + o, top and top + o, left + w - (right and o), top + h - (bottom and o))
    mask.paste(0, inner)
    return canvas, mask, {"sides": chosen, "pixels": pixels}
