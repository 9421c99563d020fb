"""The image engine's plain parts: samplers, input pictures and masks, live previews. No model is loaded here;
`tabs/image.py` runs the pipelines and builds the tab."""

import copy
from typing import Any

from core import checks
from core.errors import UserError
from core.settings import Settings

MASK_BLUR = 4  # px: the inpainting mask's edge is softened before the original is laid back (A1111's "Mask blur")
DEFAULT_SAMPLER = "Model default"  # the scheduler the model ships with (what its authors tuned it for)


def latent_preview(latents: Any, family: Any = None, size: tuple[int, int] | None = None) -> Any:
    """A rough RGB picture of the first latent in a batch, at latent resolution (the page scales it), with the
    family's linear latent-to-RGB factors. Takes the layouts the pipelines hold: (B, C, h, w); (B, C, frames, h, w)
    (Qwen-Image's video VAE); and FLUX.1's and Qwen-Image's packed (B, tokens, C*4) 2x2 patches, unpacked with the
    picture's `size` (width, height) for its aspect ratio."""
    import torch
    from PIL import Image

    from tabs.image.families import PREVIEWS

    lat = latents[0].float().cpu()
    if lat.ndim == 2:  # packed: tokens of 2x2 patches
        tokens, width = lat.shape
        w, h = size or (1, 1)
        rows = max(1, round((tokens * h / w) ** 0.5))
        cols = max(1, tokens // rows)
        channels = width // 4
        lat = lat[: rows * cols].reshape(rows, cols, channels, 2, 2).permute(2, 0, 3, 1, 4)
        lat = lat.reshape(channels, rows * 2, cols * 2)
    elif lat.ndim == 4:  # (C, frames, h, w)
        lat = lat[:, 0]
    factors, bias = PREVIEWS[getattr(family, "preview", "sd")]
    channels = lat.shape[0]
    if channels != len(factors):  # a model with another latent width (the tiny test models): its first channels
        factors, bias = PREVIEWS["sd"][0][:channels], PREVIEWS["sd"][1]
        lat = lat[: len(factors)]
    rgb = torch.einsum("chw,cr->hwr", lat, torch.tensor(factors)) + torch.tensor(bias)
    rgb = ((rgb + 1) / 2).clamp(0, 1).mul(255).byte().numpy()
    return Image.fromarray(rgb)


def check_sampler(sampler: Any) -> str:
    """A sampler name the studio knows (for some family), or "Model default"; whether it fits the chosen model's
    family is checked once the model is known (check_sampler_fits)."""
    from tabs.image.families import ALL_SAMPLERS

    sampler = DEFAULT_SAMPLER if sampler is None or str(sampler).strip() == "" else str(sampler).strip()
    if sampler != DEFAULT_SAMPLER and sampler not in ALL_SAMPLERS:
        offered = ", ".join([DEFAULT_SAMPLER, *ALL_SAMPLERS])
        raise UserError(f"The sampler {sampler[:40]!r} is not offered here: choose one of {offered}.")
    return sampler


def check_sampler_fits(sampler: str, family: Any) -> None:
    if sampler != DEFAULT_SAMPLER and sampler not in family.samplers:
        kind = "a flow-matching model" if family.flow else "a noise-prediction model"
        offered = ", ".join([DEFAULT_SAMPLER, *family.samplers])
        raise UserError(
            f"The sampler {sampler!r} does not run {family.name} models ({kind}): choose one of {offered}."
        )


def make_scheduler(base_scheduler: Any, sampler: str, family: Any = None) -> Any:
    """A fresh scheduler for one run (its state is per run): the model's own, or the chosen sampler built from
    the model's scheduler config (so a model's tuning, e.g. SD-Turbo's trailing timesteps or FLUX.1's shift,
    carries over), in the variant made for the family's kind of model (flow matching or not)."""
    if sampler == DEFAULT_SAMPLER:
        return copy.deepcopy(base_scheduler)
    import diffusers

    from tabs.image.families import FAMILIES

    if family is not None:
        check_sampler_fits(sampler, family)
    name, options = (family or FAMILIES["sd15"]).scheduler(sampler)
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
