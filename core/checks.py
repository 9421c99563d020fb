"""Input checks shared by the tabs. Each failure is a UserError with one sentence that says how to fix it."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable
from typing import Any

from core.errors import UserError

MAX_SEED = 2**32 - 1
SEED_UNREADABLE = "The seed must be a whole number from 0 to 4294967295, or -1 for a random one."
NUMBER_UNREADABLE = "The {} must be a number."
IMAGE_UNREADABLE = "The input is not an image the studio can read (PNG, JPEG or WebP)."
MAX_IMAGE_PIXELS = 64_000_000  # larger images are refused from their header, before decoding (decompression bombs)


def too_many_pixels(what: str, width: int | None = None, height: int | None = None, pixels: int = 0) -> UserError:
    size = (
        f"{width}x{height} pixels"
        if width and height
        else f"{pixels / 1e6:,.0f} megapixels"
        if pixels
        else f"over {MAX_IMAGE_PIXELS // 1_000_000} megapixels"
    )
    return UserError(
        f"The {what} is {size}; the studio accepts up to {MAX_IMAGE_PIXELS // 1_000_000} megapixels. "
        "Use a smaller image."
    )


def check_image_header(source: Any, what: str) -> None:
    """Refuse an image file (a path or a binary stream) whose header declares more than MAX_IMAGE_PIXELS, before a
    pixel is decoded. Anything that is no image passes: the decoder that follows says it cannot read it."""
    from PIL import Image

    try:
        with Image.open(source) as image:
            size = image.width, image.height
    except Image.DecompressionBombError as exc:  # past Pillow's own limit (see limit_pillow): surely too big
        size = _png_size(source)  # the usual bomb; for others, the pixel count Pillow's sentence gives
        said = re.search(r"\((\d+) pixels\)", str(exc))  # "Image size (400000000 pixels) exceeds limit ..."
        raise too_many_pixels(what, *(size or (None, None)), pixels=int(said[1]) if said else 0) from None
    except Exception:
        return
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise too_many_pixels(what, *size)


def _png_size(source: Any) -> tuple[int, int] | None:
    """A PNG's (width, height) from its IHDR chunk, or None for anything else."""
    import struct

    try:
        if hasattr(source, "seek"):
            source.seek(0)
            head = source.read(24)
        else:
            with open(source, "rb") as f:
                head = f.read(24)
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def limit_pillow() -> None:
    """Pillow refuses, process-wide, any image past twice MAX_IMAGE_PIXELS before decoding it (its
    DecompressionBombError; it warns from MAX_IMAGE_PIXELS): a second line behind the studio's header checks, which
    refuse anything past MAX_IMAGE_PIXELS in every input, for every other Image.open."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def open_image_file(path: Any, what: str, unreadable: str) -> Any:
    """The image file at `path`, decoded (a PIL image), once its declared size is known to be at most
    MAX_IMAGE_PIXELS; `unreadable` is the sentence for a file that is not an image or cannot be decoded."""
    from PIL import Image, UnidentifiedImageError

    check_image_header(path, what)
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise UserError(unreadable) from None
    if image.width * image.height > MAX_IMAGE_PIXELS:
        image.close()
        raise too_many_pixels(what, image.width, image.height)
    try:
        image.load()  # (PIL's own bomb check also runs here; ours came first with a clearer sentence)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        image.close()
        raise UserError(unreadable) from None
    return image


WORDS = {"top_k": "top-k", "top_p": "top-p"}  # parameters whose name in words is not just their spaced-out name


def named(param: str, words: str | None = None) -> str:
    """How a sentence names an input: in words, with its API parameter name where the two differ, so both a person
    in the page and an API caller with ten parameters see which one it is ("guidance scale (guidance_scale)")."""
    words = words or WORDS.get(param, param.replace("_", " "))
    return words if words == param else f"{words} ({param})"


def check_text(value: Any, what: str, limit: int, required: bool = True) -> str:
    """A prompt-like string: present (if required), not over `limit` characters, control characters removed."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise UserError(f"The {what} must be text, not {type(value).__name__}.")
    cleaned = "".join(c for c in value if c.isprintable() or c in "\n\t")
    if required and not cleaned.strip():
        raise UserError(f"The {what} is empty: type something first.")
    if len(cleaned) > limit:
        raise UserError(f"The {what} is {len(cleaned):,} characters long; the limit is {limit:,}. Shorten it.")
    return cleaned.strip() if required else cleaned


def check_number(value: Any, what: str, low: float, high: float, integer: bool = False, unit: str = "") -> float | int:
    """A finite number in [low, high] (an integer if asked). Numeric strings from API clients are accepted. Refusals
    name the input (`what`, see named), its range (in `unit`, e.g. " seconds") and what was given."""
    span = f"between {_shown(low)} and {_shown(high)}{unit}"
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise UserError(f"The {what} must be a number {span}; got {value!r:.40}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"The {what} must be a number {span}; got {value!r:.40}.") from None
    if not math.isfinite(number):
        raise UserError(f"The {what} must be a finite number {span}; got {number}.")
    if integer:
        if number != int(number):
            raise UserError(f"The {what} must be a whole number {span}; got {_shown(number)}.")
        number = int(number)
    if not low <= number <= high:
        raise UserError(f"The {what} must be {span}; got {_shown(number)}.")
    return number


def _shown(number: float) -> str:
    """A number as a sentence shows it: 4294967295 and 0.05 as written, 1e+300 short."""
    return str(int(number)) if float(number).is_integer() and abs(number) < 1e16 else f"{number:g}"


def resolve_seed(seed: Any) -> int:
    """Blank, None or -1 picks a random seed; anything else must be a whole number 0..2^32-1."""
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        return random.randrange(MAX_SEED)
    try:
        if float(seed) == -1:
            return random.randrange(MAX_SEED)
    except (TypeError, ValueError):
        pass
    return int(check_number(seed, "seed", 0, MAX_SEED, integer=True))


def check_model_choice(model: Any, choices: Iterable[str], allow_custom: bool, setting: str) -> str:
    """The model must be one of the offered choices unless custom models are allowed by the operator."""
    if not isinstance(model, str) or not model.strip():
        raise UserError("Choose a model from the list.")
    model = model.strip()
    if model in choices or allow_custom:
        return model
    raise UserError(
        f"The model '{model:.80}' is not offered here. Pick one from the list (the operator can allow any model "
        f"with STUDIO_ALLOW_CUSTOM_MODELS=1, or set {setting})."
    )
