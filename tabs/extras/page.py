"""The Extras tab's page: a picture in (an upload, or a result from the Image tab), an upscaler and a scale, a face
restorer and its strength; the result beside the picture before (a slider), its recipe, a History entry."""

from collections.abc import Iterator

import gradio as gr

from core import enhance, jobs, ui
from core.history import prepend, record
from tabs.extras.engine import MAX_SCALE, MAX_SIDE, UNREADABLE, ExtrasParams, ExtrasUpdate, enhance_picture

TAB = "extras"


def _licences(settings) -> str:
    upscalers = [f"{name} ({c.licence}, `{c.repo}`)" for name, c in enhance.UPSCALERS.items()]
    restorers = [f"{name} ({c.licence}, `{c.repo}`)" for name, c in enhance.RESTORERS.items()]
    return (
        f"Downloaded on first use: {', '.join(upscalers + restorers)}. Your own `.safetensors` and `.pth` files in "
        f"`{settings.upscaler_dir}` (upscalers) and `{settings.face_restorer_dir}` (face restorers) are offered by "
        "name: 4x-UltraSharp, 4x_NMKD-Siax_200k, RestoreFormer... (check each one's licence; 4x-UltraSharp "
        "and CodeFormer are for non-commercial use)."
    )


def build(ctx: ui.Context) -> None:
    settings = ctx.settings
    upscalers, restorers = enhance.upscaler_choices(settings), enhance.restorer_choices(settings)
    gr.Markdown(
        "Make a picture larger with an upscaler model and sharpen its faces with a face restorer. The result is "
        "labelled as your picture, enhanced by AI, and saved with its recipe. " + _licences(settings)
    )
    with gr.Row():
        with gr.Column():
            image = ui.checked(gr.Image, UNREADABLE, "picture (image)")(
                label="Picture", type="filepath", format="png", sources=["upload", "clipboard"], elem_id="extras-image"
            )
            upscaler = ui.choice(
                gr.Dropdown, [enhance.NONE, *upscalers], param="upscaler", value=(upscalers or [enhance.NONE])[0],
                label="Upscaler", elem_id="extras-upscaler",
            )  # fmt: skip
            scale = ui.slider(
                1, MAX_SCALE, param="scale", value=2, step=0.25, label="Scale (1: faces only)", elem_id="extras-scale"
            )
            with gr.Row():
                target_width = ui.slider(
                    0, MAX_SIDE, param="target_width", words="target width", unit=" px", value=0, step=1,
                    label="Or scale to a width (px, 0: by the scale)", elem_id="extras-width",
                )  # fmt: skip
                target_height = ui.slider(
                    0, MAX_SIDE, param="target_height", words="target height", unit=" px", value=0, step=1,
                    label="and/or a height (both: cropped to fit)", elem_id="extras-height",
                )  # fmt: skip
            face_restorer = ui.choice(
                gr.Dropdown, [enhance.NONE, *restorers], param="face_restorer", value=enhance.NONE,
                label="Face restorer", elem_id="extras-restorer",
            )  # fmt: skip
            restore_strength = ui.slider(
                0, 1, param="restore_strength", words="face restore strength", value=1.0, step=0.05,
                label="Face restore strength (0: as it was)", elem_id="extras-strength",
            )  # fmt: skip
            with gr.Row():
                run = gr.Button("Enhance", variant="primary", elem_id="extras-run")
                stop = gr.Button("Stop", variant="stop")
        with gr.Column():
            status = gr.Markdown(elem_id="extras-status")
            compare = gr.ImageSlider(label="Before / after", type="filepath", elem_id="extras-compare")
            result = gr.File(label="The result (PNG, its recipe inside)", elem_id="extras-result")
            recipe_view = gr.JSON(label="Recipe", open=False)
    ctx.shared.extras_image = image

    @ui.user_errors
    def extras(
        request: gr.Request,
        progress=gr.Progress(),
        *,
        image: str | None,
        upscaler: str,
        scale: float,
        face_restorer: str,
        restore_strength: float,
        target_width: int = 0,
        target_height: int = 0,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """The picture upscaled (upscaler; scale, or a target_width and/or target_height in pixels) and its faces
        restored (face_restorer, restore_strength)."""
        if not image:
            raise gr.Error("Add a picture first (upload one, or send a result from the Image tab).")
        params = ExtrasParams(
            upscaler, scale=scale, target_width=target_width, target_height=target_height,
            face_restorer=face_restorer, restore_strength=restore_strength,
        )  # fmt: skip

        def work(stop_flag) -> Iterator[ExtrasUpdate]:
            return enhance_picture(ctx.cache, settings, image, params, stop=stop_flag, progress=progress)

        def show(u: ExtrasUpdate) -> dict:
            if not u.done:
                return {status: u.status()}
            size = f"{u.recipe['width']}x{u.recipe['height']}"
            entry = record("Extras", f"{size} {params.upscaler}, faces: {params.face_restorer}",
                           [u.path, u.path.with_suffix(".json")], preview=str(u.path))  # fmt: skip
            return {
                status: u.status(),
                compare: (image, str(u.path)),
                result: str(u.path),
                recipe_view: u.recipe,
                ctx.history: prepend(history, entry),
            }

        yield from jobs.run(ctx, request, TAB, ticket, work, show)

    inputs = dict(
        image=image, upscaler=upscaler, scale=scale, face_restorer=face_restorer, restore_strength=restore_strength,
        target_width=target_width, target_height=target_height,
    )  # fmt: skip
    jobs.queued(
        ctx, TAB, run.click, extras, {**inputs, "history": ctx.history}, [status, compare, result, recipe_view,
        ctx.history], api_name="extras", concurrency_limit=settings.jobs_at_once(TAB), concurrency_id=TAB,
        show_progress_on=[status], status=status,
    )  # fmt: skip
    jobs.wire_stop(ctx, stop, TAB, status)
