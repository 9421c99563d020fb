"""X/Y/Z plot, AUTOMATIC1111's way of comparing settings: up to three axes (seed, steps, guidance, sampler, prompt
search and replace), every combination made as its own image with its own recipe, then a labelled grid (one block
per Z value) saved with the recipe of the whole plot. One queued job, progress per cell, Stop between steps."""

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any

from core import checks, loras, outputs, provenance, saving
from core.errors import UserError
from core.models import ModelCache
from core.settings import Settings
from tabs.image.choices import MAX_STEPS
from tabs.image.engine import WITHHELD_ALL, ImageParams, generate_image
from tabs.image.families import ALL_SAMPLERS as SAMPLERS
from tabs.image.parts import DEFAULT_SAMPLER

AXES = ("Nothing", "Seed", "Steps", "Guidance", "Sampler", "LoRA weight", "Prompt S/R")
MAX_CELLS = 100  # images in one plot: each is a full run


@dataclass
class GridUpdate:
    cell: int  # cells finished
    total: int
    label: str  # what the cell being made varies ("Steps: 4, Seed: 2")
    step_status: str = ""  # the cell's own progress
    grid: Path | None = None  # the saved grid PNG, once done
    cells: list[Path] = field(default_factory=list)  # each cell's PNG (with its recipe beside it)
    recipe: dict | None = None
    done: bool = False

    def status(self) -> str:
        if self.done:
            return f"Done: a grid of {self.total} image(s)."
        return f"Cell {self.cell + 1}/{self.total} ({self.label}) · {self.step_status}"


RANGE = re.compile(r"(-?[\d.]+)\s*-\s*(-?[\d.]+)(?:\s*\(\s*\+\s*([\d.]+)\s*\))?")
MAX_AXIS_CHARS = 2000  # an axis's values as typed; 100 values fit easily


def _too_many(what: str) -> UserError:
    return UserError(f"The {what} list is longer than a plot can be: the limit is {MAX_CELLS} values. Use fewer.")


def _numbers(text: str, what: str, integer: bool, low: float, high: float) -> list[float]:
    """A1111's number lists: "1, 2, 5", ranges "1-4" (integers), "10-30 (+10)" (a step). Ranges are counted in
    exact decimals before any value is made, and all parts together may give at most MAX_CELLS values."""
    from decimal import Decimal, InvalidOperation

    values: list[Any] = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        ranged = RANGE.fullmatch(part)
        if not ranged:
            values.append(part)
        else:
            try:
                start, end, step = (Decimal(g) for g in (ranged[1], ranged[2], ranged[3] or "1"))
            except InvalidOperation:
                raise UserError(
                    f"The {what} range {part!r:.60} is not a range of numbers like 1-4 or 10-30 (+10)."
                ) from None
            if step <= 0 or end < start:
                raise UserError(f"The {what} range {part!r:.60} must go up, from the smaller number to the larger.")
            count = int((end - start) / step) + 1  # exact: no float stepping that never reaches the end
            if len(values) + count > MAX_CELLS:
                raise _too_many(what)
            values += [start + i * step for i in range(count)]
        if len(values) > MAX_CELLS:
            raise _too_many(what)
    return [checks.check_number(str(v), what, low, high, integer) for v in values]


def parse_axis(kind: str, text: str) -> list[Any]:
    """The values of one axis, checked (each sentence names the axis)."""
    if kind not in AXES:
        raise UserError(f"The axis type must be one of {', '.join(AXES)}; got {kind!r:.40}.")
    text = str(text or "")
    if len(text) > MAX_AXIS_CHARS:
        raise UserError(
            f"The {kind} axis values are {len(text):,} characters long; the limit is {MAX_AXIS_CHARS:,}. Use fewer."
        )
    if kind == "Nothing":
        return [None]
    what = checks.named(f"{kind.lower().replace('/', '')}_values", f"{kind} axis value")
    if kind == "Seed":
        return _numbers(text, what, True, 0, checks.MAX_SEED)
    if kind == "Steps":
        return _numbers(text, what, True, 1, MAX_STEPS)
    if kind == "Guidance":
        return _numbers(text, what, False, 0, 30)
    if kind == "LoRA weight":
        return _numbers(text, checks.named("lora_weight_values", "LoRA weight axis value"), False, *loras.WEIGHT)
    values = [v.strip() for v in text.split(",") if v.strip()]
    if len(values) > MAX_CELLS:
        raise _too_many(f"{kind} axis value")
    if kind == "Sampler":
        for v in values:
            if v not in (DEFAULT_SAMPLER, *SAMPLERS):
                raise UserError(f"The Sampler axis value {v!r:.40} is not a sampler: use {', '.join(SAMPLERS)}.")
    return values  # Prompt S/R: the first value is searched in the prompt, each value replaces it


def _apply(params: ImageParams, kind: str, value: Any, search: str | None) -> ImageParams:
    if kind == "Seed":
        return replace(params, seed=value)
    if kind == "Steps":
        return replace(params, steps=value)
    if kind == "Guidance":
        return replace(params, guidance_scale=value)
    if kind == "Sampler":
        return replace(params, sampler=value)
    if kind == "Prompt S/R":
        return replace(params, prompt=params.prompt.replace(search, value))
    if kind == "LoRA weight":  # the weight of the prompt's first <lora:name:weight> tag
        tag = loras.TAG.search(params.prompt)
        lora = f"<lora:{tag.group(1)}:{value:g}>"
        return replace(params, prompt=params.prompt[: tag.start()] + lora + params.prompt[tag.end() :])
    return params


def plan(params: ImageParams, axes: list[tuple[str, str]]) -> tuple[list[tuple[str, list]], list[tuple]]:
    """(the axes that vary, as (kind, values)), and every cell as (x index, y index, z index, ImageParams)."""
    parsed = [(kind, parse_axis(kind, text)) for kind, text in axes]
    used = [(kind, values) for kind, values in parsed if kind != "Nothing"]
    if not used or any(not values for _, values in used):
        raise UserError("Give the X axis (and any other you use) a type and at least one value.")
    for kind, values in used:
        if kind == "Prompt S/R" and values[0] not in params.prompt:
            raise UserError(f"Prompt S/R: the prompt does not contain {values[0]!r:.60}, the first value to replace.")
        if kind == "LoRA weight" and not loras.TAG.search(params.prompt):
            raise UserError(
                "LoRA weight axis: the prompt has no <lora:name:weight> tag whose weight to vary (the LoRA panel "
                "adds one)."
            )
    count = 1
    for _, values in used:
        count *= len(values)
    if count > MAX_CELLS:
        raise UserError(f"The plot would make {count} images; the limit is {MAX_CELLS}. Use fewer values.")
    while len(used) < 3:
        used.append(("Nothing", [None]))
    cells = []
    for (zi, z), (yi, y), (xi, x) in product(*(list(enumerate(v)) for _, v in reversed(used))):
        p = params
        for (kind, values), value in zip(used, (x, y, z), strict=True):
            p = _apply(p, kind, value, values[0])
        cells.append((xi, yi, zi, p))
    return [a for a in used if a[0] != "Nothing"], cells


def _label(kind: str, value: Any) -> str:
    return f"{kind}: {value}"


def grid_picture(images: list, axes: list[tuple[str, list]], width: int, height: int) -> Any:
    """The cells laid out X across, Y down, one block per Z value under its title, labelled like A1111's grids."""
    from PIL import Image, ImageDraw, ImageFont

    (xk, xs), (yk, ys), (zk, zs) = (axes + [("Nothing", [None])] * 3)[:3]
    font = ImageFont.load_default(size=max(12, min(width, height) // 10))
    top, left = font.size * 2 + 8, (0 if yk == "Nothing" else max(120, font.size * 8))
    block_h = top + len(ys) * height
    title = 0 if zk == "Nothing" else font.size * 2
    canvas = Image.new("RGB", (left + len(xs) * width, len(zs) * (block_h + title)), "white")
    draw = ImageDraw.Draw(canvas)
    i = 0
    for zi, z in enumerate(zs):
        y0 = zi * (block_h + title)
        if title:
            draw.text((8, y0 + 4), _label(zk, z), font=font, fill="black")
        for xi, x in enumerate(xs):
            if xk != "Nothing":
                draw.text((left + xi * width + 4, y0 + title + 4), _label(xk, x), font=font, fill="black")
        for yi, y in enumerate(ys):
            if yk != "Nothing":
                draw.text((4, y0 + title + top + yi * height + 4), _label(yk, y), font=font, fill="black")
            for xi in range(len(xs)):
                canvas.paste(images[i].resize((width, height)), (left + xi * width, y0 + title + top + yi * height))
                i += 1
    return canvas


def generate_grid(
    cache: ModelCache,
    settings: Settings,
    params: ImageParams,
    axes: list[tuple[str, str]],
    *,
    model: str | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
    mine: dict[str, Path] | None = None,
) -> Iterator[GridUpdate]:
    """Every cell of the plot (each saved with its own recipe), then the labelled grid: yields progress per cell.
    `mine`: the visitor's own LoRAs (core.loras.own)."""
    from PIL import Image

    # 1. check: the axes, the number of cells, every cell's parameters (before anything runs)
    used, cells = plan(params, axes)
    stop = stop or threading.Event()
    base_seed = checks.resolve_seed(params.seed)  # one seed for the whole plot unless the Seed axis varies it
    cells = [(xi, yi, zi, replace(p, seed=base_seed) if p.seed in (-1, None) else p) for xi, yi, zi, p in cells]
    # 2.-3. each cell through the image engine (the model from the cache, held for that cell)
    made: list[Path | None] = []  # None: a cell the model's safety checker withheld
    for n, (xi, yi, zi, p) in enumerate(cells):
        label = ", ".join(_label(k, v[i]) for (k, v), i in zip(used, (xi, yi, zi), strict=False))
        try:
            for update in generate_image(cache, settings, replace(p, num_images=1), model=model, stop=stop, mine=mine):
                if progress:
                    progress((n + update.step / max(update.total, 1)) / len(cells), f"Cell {n + 1}/{len(cells)}")
                if not update.done:
                    yield GridUpdate(n, len(cells), label, update.status())
            made.append(update.images[0])
        except UserError as exc:
            if str(exc) != WITHHELD_ALL:
                raise
            made.append(None)  # a grey cell: the plot goes on
    kept = [m for m in made if m is not None]
    if not kept:
        raise UserError(WITHHELD_ALL)
    # 4. the grid, saved with the plot's recipe (which names every cell's file)
    first = Image.open(kept[0])
    size = (first.width, first.height)
    pictures = [Image.open(m).convert("RGB") if m else Image.new("RGB", size, "grey") for m in made]
    grid = grid_picture(pictures, used, *size)
    recipe = outputs.base_recipe(
        "image",
        model or settings.model_for("image"),
        mode="xyz-grid",
        prompt=params.prompt,
        seed=base_seed,
        axes=[{"type": k, "values": v} for k, v in used],
        cells=[m.name if m else "withheld by the model's safety checker" for m in made],
    )
    saved = saving.finish(settings, "image", f"grid-{params.prompt}", "png", recipe, provenance.png_writer(grid))
    yield GridUpdate(len(cells), len(cells), "", grid=saved.path, cells=kept, recipe=recipe, done=True)
