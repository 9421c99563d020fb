"""The Image tab's runs, one function per API endpoint, each with its parameters by name (the API's names) and a
docstring: /generate_image, /image_to_image, /inpaint, /outpaint, /upscale, /xyz_plot, and Live mode's /live_image
and /keep_image. Each goes through core.jobs (its Stop ticket and History are gr.State values the API never sees),
but Live mode, which has tickets of its own (live.py). `page` is page.Page."""

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import gradio as gr
import numpy as np

from core import checks, enhance, jobs, loras, ui
from core.errors import UserError
from core.history import prepend, record
from core.png_recipes import read_recipe
from tabs.image import engine, guides, live, xyz
from tabs.image.engine import MAX_STEPS, OUTPAINT_STRENGTH, UPSCALE_STRENGTH, ImageParams, ImageUpdate
from tabs.image.gallery import chosen_or_first
from tabs.image.parts import upscaled

TAB = "image"
LANCZOS = "Lanczos"  # ⤢ Upscale without a model: Lanczos resampling, as before upscaler models
NO_PICTURE = "Add an image to inpaint (upload one, or use a result), then paint over what to repaint."
# The parameters every run shares, in the API's order (after the picture endpoints' own first ones).
RUN = ("prompt", "negative_prompt", "steps", "guidance_scale", "width", "height", "seed", "num_images", "model")


def use_result(chosen: str | None, items: list | None) -> tuple[str, str]:
    """The chosen result (or the first) fills both image to image and the inpainting editor."""
    path = chosen_or_first(chosen, items, "use it for image to image or inpainting")
    return path, path


def _run(
    ctx, page: Any, params: ImageParams, model: Any, image: Any = None, *, request, progress, ticket, history, **edit
):
    """One run of the engine, shown as it goes: the preview and step counter, then the pictures and their recipe
    (and a History entry). `edit`: mask= (inpainting) or outpaint=(sides, pixels), control= and reference=
    (guides.from_inputs)."""

    def work(stop) -> Iterator[ImageUpdate]:
        return engine.generate_image(
            ctx.cache, ctx.settings, params, model=model, init_image=image, stop=stop, progress=progress,
            mine=loras.own(ctx.settings, history), **edit,
        )  # fmt: skip

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

    @ui.user_errors
    def generate_image(
        request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
        *,
        prompt: str,
        negative_prompt: str,
        steps: int,
        guidance_scale: float,
        width: int,
        height: int,
        seed: int,
        num_images: int,
        model: str,
        sampler: str,
        styles: list[str],
        control_image: str | None = None,
        control_type: str,
        control_scale: float,
        control_start: float,
        control_end: float,
        control_model: str,
        control_is_map: bool,
        ip_adapter_image: str | None = None,
        ip_adapter_scale: float,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """Pictures from a prompt; a control picture (ControlNet) and a reference picture (IP-Adapter) steer them."""
        params = ImageParams(
            prompt, negative_prompt=negative_prompt, steps=steps, guidance_scale=guidance_scale, width=width,
            height=height, seed=seed, num_images=num_images, sampler=sampler, styles=styles,
        )  # fmt: skip
        guided = guides.from_inputs(locals())  # the guides' parameters above, by name
        job = dict(request=request, progress=progress, ticket=ticket, history=history)
        yield from _run(ctx, page, params, model, **job, **guided)

    named = {name: getattr(page, name) for name in (*RUN, "sampler")}
    newer = {"styles": page.styles, **guides.inputs(page)}  # the API's order: these came later
    for trigger, api_name in ((page.generate.click, "generate_image"), (page.prompt.submit, False)):
        inputs = {**named, **newer, "history": ctx.history}
        jobs.queued(ctx, TAB, trigger, generate_image, inputs, outs, api_name=api_name, **common)

    def from_picture(image: Any, params: ImageParams, model: str, named: dict, outpaint: Any = None, **job):
        """A run from a picture (image to image, inpainting, outpainting) with the guides among `named`."""
        picture, mask = _picture_and_mask(image, outpaint)
        edits = dict(mask=mask, outpaint=outpaint, **guides.from_inputs(named))
        yield from _run(ctx, page, params, model, picture, **job, **edits)

    @ui.user_errors
    def image_to_image(
        request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
        *,
        image: str | None,
        prompt: str,
        negative_prompt: str,
        strength: float,
        steps: int,
        guidance_scale: float,
        seed: int,
        num_images: int,
        model: str,
        sampler: str,
        styles: list[str],
        control_image: str | None = None,
        control_type: str,
        control_scale: float,
        control_start: float,
        control_end: float,
        control_model: str,
        control_is_map: bool,
        ip_adapter_image: str | None = None,
        ip_adapter_scale: float,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """A picture repainted after a prompt; strength says how much."""
        params = ImageParams(
            prompt, negative_prompt=negative_prompt, strength=strength, steps=steps, guidance_scale=guidance_scale,
            seed=seed, num_images=num_images, sampler=sampler, styles=styles,
        )  # fmt: skip
        job = dict(request=request, progress=progress, ticket=ticket, history=history)
        yield from from_picture(image, params, model, locals(), **job)

    @ui.user_errors
    def inpaint(
        request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
        *,
        image: dict | None,
        prompt: str,
        negative_prompt: str,
        strength: float,
        steps: int,
        guidance_scale: float,
        seed: int,
        num_images: int,
        model: str,
        sampler: str,
        styles: list[str],
        control_image: str | None = None,
        control_type: str,
        control_scale: float,
        control_start: float,
        control_end: float,
        control_model: str,
        control_is_map: bool,
        ip_adapter_image: str | None = None,
        ip_adapter_scale: float,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """Only the painted part of a picture repainted (image: the editor's {background, layers})."""
        params = ImageParams(
            prompt, negative_prompt=negative_prompt, strength=strength, steps=steps, guidance_scale=guidance_scale,
            seed=seed, num_images=num_images, sampler=sampler, styles=styles,
        )  # fmt: skip
        job = dict(request=request, progress=progress, ticket=ticket, history=history)
        yield from from_picture(image, params, model, locals(), **job)

    @ui.user_errors
    def outpaint(
        request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
        *,
        image: str | None,
        prompt: str,
        negative_prompt: str,
        steps: int,
        guidance_scale: float,
        seed: int,
        num_images: int,
        model: str,
        sampler: str,
        outpaint_sides: list[str],
        outpaint_pixels: int,
        styles: list[str],
        control_image: str | None = None,
        control_type: str,
        control_scale: float,
        control_start: float,
        control_end: float,
        control_model: str,
        control_is_map: bool,
        ip_adapter_image: str | None = None,
        ip_adapter_scale: float,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """A picture extended on the chosen sides by outpaint_pixels, the new area painted to match."""
        params = ImageParams(
            prompt, negative_prompt=negative_prompt, strength=OUTPAINT_STRENGTH, steps=steps,
            guidance_scale=guidance_scale, seed=seed, num_images=num_images, sampler=sampler, styles=styles,
        )  # fmt: skip
        job = dict(request=request, progress=progress, ticket=ticket, history=history)
        yield from from_picture(image, params, model, locals(), (outpaint_sides, outpaint_pixels), **job)

    after_picture = {k: v for k, v in named.items() if k not in ("width", "height")}
    extend = {"outpaint_sides": page.outpaint_sides, "outpaint_pixels": page.outpaint_pixels}
    for trigger, picture, how_much, handler in (
        (page.transform.click, page.init, page.strength, image_to_image),
        (page.inpaint.click, page.editor, page.inpaint_strength, inpaint),
        (page.outpaint.click, page.init, None, outpaint),
    ):
        inputs = {"image": picture, "prompt": page.prompt, "negative_prompt": page.negative_prompt}
        inputs.update({"strength": how_much} if how_much is not None else {})
        inputs.update({k: v for k, v in after_picture.items() if k not in inputs})
        inputs.update({**(extend if handler is outpaint else {}), **newer, "history": ctx.history})
        jobs.queued(ctx, TAB, trigger, handler, inputs, outs, api_name=handler.__name__, **common)

    @ui.user_errors
    def upscale(
        request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
        *,
        image: str | None,
        prompt: str,
        negative_prompt: str,
        steps: int,
        guidance_scale: float,
        seed: int,
        model: str,
        sampler: str,
        upscaler: str = LANCZOS,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """Twice the size (with an upscaler model, or Lanczos resampling), then an image-to-image pass at low
        strength that adds the detail (A1111's "hires fix"). A blank prompt takes the one in the picture's recipe."""
        if not image:
            raise UserError("Generate an image (or add one under Image to image) first, then upscale it.")
        params = ImageParams(
            prompt, negative_prompt=negative_prompt, steps=steps, guidance_scale=guidance_scale, seed=seed,
            sampler=sampler, strength=UPSCALE_STRENGTH,
        )  # fmt: skip
        if not str(params.prompt or "").strip():
            try:
                params = replace(params, prompt=read_recipe(image).get("prompt", ""))
            except UserError:  # no recipe inside: the empty prompt is refused below, with its sentence
                pass
        what = checks.named("steps", "number of steps")
        steps = max(int(checks.check_number(params.steps, what, 1, MAX_STEPS, integer=True)), 3)
        picture = upscaled(image, ctx.settings)
        before = None
        if upscaler != LANCZOS:  # the model makes the larger picture (the size stays Lanczos' own)
            picture, before = _model_upscaled(image, picture.size, upscaler, progress)
        job = dict(request=request, progress=progress, ticket=ticket, history=history)
        yield from _run(ctx, page, replace(params, steps=steps), model, picture, before=before, **job)

    def _model_upscaled(image: str, size: tuple[int, int], name: str, progress: Any) -> tuple[Any, dict]:
        """The picture made `size` by the upscaler model `name` (core.enhance), and what the recipe says of it."""
        from PIL import Image

        name = enhance.check_choice(name, enhance.upscaler_choices(ctx.settings), checks.named("upscaler"))
        with checks.open_image_file(image, "image to upscale", checks.IMAGE_UNREADABLE) as im:
            picture = np.asarray(im.convert("RGB"))
        with enhance.model(ctx.cache, ctx.settings, name, "upscaler", progress) as loaded:
            made = enhance.upscale(loaded, picture, size[0] / picture.shape[1])
        made = Image.fromarray(made).resize(size, Image.Resampling.LANCZOS)
        return made, {"upscaler": name, "upscaler_sha256": loaded.sha256}

    # Upscale ×2 takes the chosen result (as "Use for image to image" does), then runs in the queue on it.
    chosen = page.upscale.click(
        ui.user_errors(use_result), [page.selected, page.gallery], [page.init, page.editor], api_visibility="private",
        queue=False,
    )  # fmt: skip
    inputs = {"image": page.init, **{k: v for k, v in after_picture.items() if k != "num_images"}}
    inputs["upscaler"] = page.upscaler  # the API's last parameter: it came later
    jobs.queued(
        ctx, TAB, chosen.success, upscale, {**inputs, "history": ctx.history}, outs, api_name="upscale", **common
    )
    jobs.wire_stop(ctx, page.stop, TAB, page.status)


def wire_grid(ctx: ui.Context, page: Any) -> None:
    """The X/Y/Z plot (/xyz_plot): every cell, then the labelled grid first in the gallery."""

    @ui.user_errors
    def xyz_plot(
        request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
        *,
        prompt: str,
        negative_prompt: str,
        steps: int,
        guidance_scale: float,
        width: int,
        height: int,
        seed: int,
        model: str,
        sampler: str,
        styles: list[str],
        x_type: str,
        x_values: str,
        y_type: str,
        y_values: str,
        z_type: str,
        z_values: str,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """Every combination of up to three axes (type and values) as its own picture, then a labelled grid."""
        params = ImageParams(
            prompt, negative_prompt=negative_prompt, steps=steps, guidance_scale=guidance_scale, width=width,
            height=height, seed=seed, sampler=sampler, styles=styles,
        )  # fmt: skip
        axes = [(x_type, x_values), (y_type, y_values), (z_type, z_values)]

        def work(stop) -> Iterator[xyz.GridUpdate]:
            return xyz.generate_grid(
                ctx.cache, ctx.settings, params, axes, model=model, stop=stop, mine=loras.own(ctx.settings, history)
            )

        def show(u: xyz.GridUpdate) -> dict:
            if not u.done:
                return {page.status: u.status()}
            files = [u.grid, u.grid.with_suffix(".json")] + [f for c in u.cells for f in (c, c.with_suffix(".json"))]
            entry = record("Image", f"X/Y/Z plot: {prompt}", files, preview=str(u.grid))
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
        ctx, TAB, page.plot.click, xyz_plot, {**inputs, "history": ctx.history}, outs, api_name="xyz_plot", **common
    )


def wire_live(ctx: ui.Context, page: Any) -> None:
    """Live mode (live.py): the toggle, the changes that redraw (/live_image) and Keep (/keep_image)."""
    runs = live.LiveRuns()
    frame = gr.State(None, time_to_live=live.SCRATCH_TTL_S, delete_callback=live.forget)  # the page's live picture

    @ui.user_errors
    def live_image(
        request: gr.Request,
        *,
        prompt: str,
        negative_prompt: str,
        steps: int,
        guidance_scale: float,
        width: int,
        height: int,
        seed: int,
        model: str,
        sampler: str,
        styles: list[str],
        sketch: Any = None,
        sketch_strength: float = 0.7,
        ticket: int | None = None,
    ) -> Any:
        """One live picture, not saved: the newest request of a session wins (older ones end without a picture)."""
        session, api = jobs.session_of(request), ticket is None
        # dropped: the page keeps showing what it shows; an API client is told why it got no picture
        dropped = (None, live.SUPERSEDED, gr.skip()) if api else gr.skip()
        if api:  # the page takes its ticket as the change happens; an API call takes one now
            if live.newer_waiting(session, "live_image"):
                return dropped
            ticket = runs.take(session)
        stop = runs.begin(session, ticket)
        if stop is None:  # a newer request of this page came meanwhile
            return dropped
        try:
            params = ImageParams(
                prompt, negative_prompt=negative_prompt, steps=steps, guidance_scale=guidance_scale, width=width,
                height=height, seed=seed, sampler=sampler, styles=styles,
            )  # fmt: skip
            picture = live.sketch_picture(sketch)
            if picture is not None:
                params = replace(params, strength=sketch_strength)
            elif not api and not prompt.strip():
                return gr.skip(), live.WAITING_FOR_WORDS, gr.skip()
            made = live.draw(ctx.cache, ctx.settings, params, model, picture, stop, session)
        except UserError as refused:  # in the page, said under the live picture: no pop-up at every key typed
            if api:
                raise
            return gr.skip(), f"Live: {refused}", gr.skip()
        finally:
            runs.end(session, stop)
        if made is None:
            return dropped
        return made["png"], live.status(made), made

    @ui.user_errors
    def keep_image(request: gr.Request, *, shown: dict | None = None, history: list | None = None) -> tuple:
        """Save the session's last live picture, unchanged, into the outputs with its recipe."""
        path = live.keep(ctx.settings, shown)
        entry = record("Image", f"Live: {shown['recipe'].get('prompt', '')}", [path, path.with_suffix(".json")])
        said = f"Kept: saved as `{path.name}` with its recipe."
        return [str(path)], shown["recipe"], said, prepend(history, entry), shown

    names = ("prompt", "negative_prompt", "steps", "guidance_scale", "width", "height", "seed", "model", "sampler")
    inputs = {name: getattr(page, name) for name in names}
    inputs.update(styles=page.styles, sketch=page.live_sketch, sketch_strength=page.live_strength)
    outs = [page.live_view, page.live_status, frame]
    common = dict(concurrency_limit=ctx.settings.jobs_at_once(TAB), concurrency_id=TAB, show_progress="hidden")
    ticket = gr.State(None)

    def take_ticket(on: bool, request: gr.Request) -> int:
        if not on:  # nothing to draw: end the chain quietly
            raise gr.Error("Live mode is off.", visible=False, print_exception=False)
        return runs.take(jobs.session_of(request))

    changes = [page.prompt.change, page.negative_prompt.change, page.seed.change, page.model.change]
    changes += [page.styles.change, page.live_sketch.change, page.live.change]
    changes += [c.release for c in (page.steps, page.guidance_scale, page.width, page.height, page.live_strength)]
    taken = gr.on(
        changes, take_ticket, page.live, ticket, api_visibility="private", queue=False, trigger_mode="multiple",
        js=live.DEBOUNCE_JS,
    )  # fmt: skip
    # API clients call /live_image directly, without a ticket (the ticket is a State: the API never sees it)
    drawn = dict(inputs_kwargs={**inputs, "ticket": ticket}, outputs=outs, api_name="live_image", **common)
    taken.success(live_image, **drawn)

    def switched(on: bool, request: gr.Request) -> Any:
        if not on:
            runs.take(jobs.session_of(request))  # a live picture being made stops
        return gr.Group(visible=on)

    page.live.change(switched, page.live, page.live_panel, api_visibility="private", queue=False)

    # Stop also stops a live picture being made (Live mode stays on: the next change draws again)
    def stop_live(request: gr.Request) -> None:
        runs.take(jobs.session_of(request))

    page.stop.click(stop_live, None, None, queue=False, api_visibility="private")
    page.live_keep.click(
        keep_image, inputs_kwargs={"shown": frame, "history": ctx.history},
        outputs=[page.gallery, page.recipe_view, page.live_status, ctx.history, frame], api_name="keep_image",
        queue=False,
    )  # fmt: skip
