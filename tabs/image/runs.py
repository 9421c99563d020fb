"""The Image tab's runs: Generate (/generate_image), from a picture (/image_to_image, /inpaint, /outpaint) and
⤢ Upscale (/upscale), each through core.jobs (named inputs, the API's parameter names). `page` is page.Page."""

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import gradio as gr

from core import checks, jobs, ui
from core.errors import UserError
from core.history import prepend, record
from core.png_recipes import read_recipe
from tabs.image import guides, xyz
from tabs.image.engine import MAX_STEPS, OUTPAINT_STRENGTH, UPSCALE_STRENGTH, ImageParams, ImageUpdate, generate_image
from tabs.image.parts import upscaled

TAB = "image"
NO_PICTURE = "Add an image to inpaint (upload one, or use a result), then paint over what to repaint."


def item_path(item: Any) -> str:
    """A Gallery item's file: (path, caption) or {"image": {"path": ...}}."""
    if isinstance(item, (list, tuple)):
        item = item[0]
    if isinstance(item, dict):
        item = item.get("image", item)
        item = item.get("path", item) if isinstance(item, dict) else item
    return str(item)


def use_result(chosen: str | None, items: list | None) -> tuple[str, str]:
    """The chosen result (or the first) fills both image to image and the inpainting editor."""
    if chosen or items:
        path = chosen or item_path(items[0])
        return path, path
    raise gr.Error("Generate an image first, then use it for image to image or inpainting.")


def _run(
    ctx, page: Any, params: ImageParams, model: Any, image: Any = None, *, request, progress, ticket, history, **edit
):
    """One run of the engine, shown as it goes: the preview and step counter, then the pictures and their recipe
    (and a History entry). `edit`: mask= (inpainting) or outpaint=(sides, pixels), control= and reference=
    (guides.from_inputs)."""

    def work(stop) -> Iterator[ImageUpdate]:
        return generate_image(
            ctx.cache, ctx.settings, params, model=model, init_image=image, stop=stop, progress=progress, **edit
        )

    def show(u: ImageUpdate) -> dict:
        shown = {page.status: u.status(), page.seed_used: u.seed, page.last_seed: u.seed}
        if not u.done:
            return {**shown, page.preview: u.preview} if u.preview is not None else shown
        files = [f for p in u.images for f in (p, p.with_suffix(".json"))]
        entry = record("Image", params.prompt, files, preview=str(u.images[0]))
        return {
            **shown,
            page.preview: None,
            page.gallery: [str(p) for p in u.images],
            page.recipe_view: u.recipe,
            ctx.history: prepend(history, entry),
            page.how: u.filmstrip,
        }

    yield from jobs.run(ctx, request, TAB, ticket, work, show)


def _picture_and_mask(image: Any, outpaint: Any) -> tuple[Any, Any]:
    """(picture, mask): a picture as it is; the inpainting editor's value, {"background": picture, "layers":
    [painted layers], ...}, as its picture and the painted layers (repainted where painted)."""
    if isinstance(image, dict):
        if not image.get("background"):
            raise UserError(NO_PICTURE)
        if not image.get("layers"):
            raise UserError("The mask is empty: paint over the part of the image to repaint.")
        return image["background"], image["layers"]
    if not image:
        what = "to extend" if outpaint else "for image-to-image"
        raise UserError(f"Add an input image {what} (upload one under Image to image, or use a result).")
    return image, None


def wire_runs(ctx: ui.Context, page: Any) -> None:
    """Generate (/generate_image), from a picture (/image_to_image, /inpaint, /outpaint) and ⤢ Upscale (/upscale)."""
    outs = [
        page.preview, page.gallery, page.status, page.seed_used, page.recipe_view, ctx.history, page.how,
        page.last_seed,
    ]  # fmt: skip
    common = dict(
        concurrency_limit=ctx.settings.jobs_at_once(TAB), concurrency_id=TAB, show_progress_on=[page.preview],
        status=page.status,
    )  # fmt: skip
    fields = ("prompt", "negative_prompt", "steps", "guidance_scale", "width", "height", "seed", "num_images")
    named = {name: getattr(page, name) for name in (*fields, "model", "sampler")}

    @guides.optional
    @ui.user_errors
    def generate(request: gr.Request, progress=gr.Progress(track_tqdm=True), *, ticket=None, history=None, **f):
        model, guided = f.pop("model"), guides.from_inputs(f)
        job = dict(request=request, progress=progress, ticket=ticket, history=history)
        yield from _run(ctx, page, ImageParams(**f), model, **job, **guided)

    newer = {"styles": page.styles, **guides.inputs(page)}  # newer parameters come last, so older calls still work
    for trigger, api_name in ((page.generate.click, "generate_image"), (page.prompt.submit, False)):
        inputs = {**named, **newer, "history": ctx.history}
        jobs.queued(ctx, TAB, trigger, generate, inputs, outs, api_name=api_name, **common)

    @guides.optional
    @ui.user_errors
    def from_picture(request: gr.Request, progress=gr.Progress(track_tqdm=True), *, ticket=None, history=None, **f):
        """From a picture (/image_to_image), the inpainting editor's value (/inpaint), or a picture with the sides
        to extend and by how much (/outpaint; outpaint_sides None: not outpainting)."""
        model, sides, pixels = f.pop("model"), f.pop("outpaint_sides", None), f.pop("outpaint_pixels", None)
        outpaint = None if sides is None else (sides, pixels)
        image, mask = _picture_and_mask(f.pop("image"), outpaint)
        guided = guides.from_inputs(f)
        params = ImageParams(**f)
        job = dict(request=request, progress=progress, ticket=ticket, history=history)
        yield from _run(ctx, page, params, model, image, mask=mask, outpaint=outpaint, **job, **guided)

    after_picture = {k: v for k, v in named.items() if k not in ("width", "height")}
    extend = {"outpaint_sides": page.outpaint_sides, "outpaint_pixels": page.outpaint_pixels}
    for trigger, picture, how_much, api_name in (
        (page.transform.click, page.init, page.strength, "image_to_image"),
        (page.inpaint.click, page.editor, page.inpaint_strength, "inpaint"),
        (page.outpaint.click, page.init, gr.State(OUTPAINT_STRENGTH), "outpaint"),
    ):
        inputs = {"image": picture, "prompt": page.prompt, "negative_prompt": page.negative_prompt}
        inputs.update(strength=how_much, **{k: v for k, v in after_picture.items() if k not in inputs})
        inputs.update({**(extend if api_name == "outpaint" else {}), **newer, "history": ctx.history})
        jobs.queued(ctx, TAB, trigger, from_picture, inputs, outs, api_name=api_name, **common)

    @ui.user_errors
    def upscale(request: gr.Request, progress=gr.Progress(track_tqdm=True), *, ticket=None, history=None, **f):
        """Twice the size, then an image-to-image pass at low strength that adds the detail (A1111's "hires
        fix"). A blank prompt takes the one in the picture's recipe."""
        image, model = f.pop("image"), f.pop("model")
        if not image:
            raise UserError("Generate an image (or add one under Image to image) first, then upscale it.")
        params = ImageParams(**f, strength=UPSCALE_STRENGTH)
        if not str(params.prompt or "").strip():
            try:
                params = replace(params, prompt=read_recipe(image).get("prompt", ""))
            except UserError:  # no recipe inside: the empty prompt is refused below, with its sentence
                pass
        what = checks.named("steps", "number of steps")
        steps = max(int(checks.check_number(params.steps, what, 1, MAX_STEPS, integer=True)), 3)
        picture = upscaled(image, ctx.settings)
        job = dict(request=request, progress=progress, ticket=ticket, history=history)
        yield from _run(ctx, page, replace(params, steps=steps), model, picture, **job)

    # Upscale ×2 takes the chosen result (as "Use for image to image" does), then runs in the queue on it.
    chosen = page.upscale.click(
        use_result, [page.selected, page.gallery], [page.init, page.editor], api_visibility="private", queue=False
    )
    inputs = {"image": page.init, **{k: v for k, v in after_picture.items() if k != "num_images"}}
    jobs.queued(
        ctx, TAB, chosen.success, upscale, {**inputs, "history": ctx.history}, outs, api_name="upscale", **common
    )
    jobs.wire_stop(ctx, page.stop, TAB, page.status)


def wire_grid(ctx: ui.Context, page: Any) -> None:
    """The X/Y/Z plot (/xyz_plot): every cell, then the labelled grid first in the gallery."""

    @ui.user_errors
    def plot(request: gr.Request, progress=gr.Progress(track_tqdm=True), *, ticket=None, history=None, **f):
        axes = [(f.pop(f"{a}_type"), f.pop(f"{a}_values")) for a in "xyz"]
        model = f.pop("model")

        def work(stop) -> Iterator[xyz.GridUpdate]:
            return xyz.generate_grid(ctx.cache, ctx.settings, ImageParams(**f), axes, model=model, stop=stop)

        def show(u: xyz.GridUpdate) -> dict:
            if not u.done:
                return {page.status: u.status()}
            files = [u.grid, u.grid.with_suffix(".json")] + [f for c in u.cells for f in (c, c.with_suffix(".json"))]
            entry = record("Image", f"X/Y/Z plot: {f['prompt']}", files, preview=str(u.grid))
            return {
                page.status: u.status(),
                page.gallery: [str(u.grid)] + [str(c) for c in u.cells],
                page.recipe_view: u.recipe,
                ctx.history: prepend(history, entry),
            }

        yield from jobs.run(ctx, request, TAB, ticket, work, show)

    fields = ("prompt", "negative_prompt", "steps", "guidance_scale", "width", "height", "seed", "model", "sampler")
    inputs = {name: getattr(page, name) for name in (*fields, "styles")}
    for axis, (kind, values) in zip("xyz", page.axes, strict=True):
        inputs.update({f"{axis}_type": kind, f"{axis}_values": values})
    outs = [page.status, page.gallery, page.recipe_view, ctx.history]
    common = dict(concurrency_limit=ctx.settings.jobs_at_once(TAB), concurrency_id=TAB, status=page.status)
    jobs.queued(
        ctx, TAB, page.plot.click, plot, {**inputs, "history": ctx.history}, outs, api_name="xyz_plot", **common
    )
