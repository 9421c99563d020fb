"""The Image tab's page: components and wiring. Pictures come from engine.generate_image through core.jobs.run.

Each run's inputs are named (their names are the API's parameters, in the API's order) and map onto ImageParams.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from core import checks, enhance, ui
from core.png_recipes import read_recipe
from tabs.image import control, guides, prompts, xyz
from tabs.image.choices import (
    EXAMPLES,
    MAX_IMAGES,
    MAX_STEPS,
    PRESETS,
    model_choices,
    model_defaults,
    model_note,
    model_samplers,
    preset_values,
)
from tabs.image.families import ALL_SAMPLERS as SAMPLERS
from tabs.image.gallery import item_path
from tabs.image.live import LIVE_MAX_STEPS
from tabs.image.parts import DEFAULT_SAMPLER, OUTPAINT_SIDES
from tabs.image.runs import LANCZOS, use_result, wire_grid, wire_live, wire_runs

TAB = "image"
NO_PICTURE = "Add an image to inpaint (upload one, or use a result), then paint over what to repaint."


@dataclass
class Page:
    """The tab's components, by name (those named after an ImageParams field are its inputs)."""

    prompt: Any = None
    negative_prompt: Any = None
    steps: Any = None
    guidance_scale: Any = None
    width: Any = None
    height: Any = None
    seed: Any = None
    num_images: Any = None
    model: Any = None
    sampler: Any = None
    styles: Any = None  # styles that wrap the prompt (prompts.styles)
    generate: Any = None
    stop: Any = None
    model_note: Any = None
    preset: Any = None
    reuse: Any = None
    init: Any = None  # the input picture (image to image, outpainting, upscaling)
    strength: Any = None
    transform: Any = None
    outpaint_sides: Any = None
    outpaint_pixels: Any = None
    outpaint: Any = None
    editor: Any = None  # the inpainting editor (picture + painted mask)
    inpaint_strength: Any = None
    inpaint: Any = None
    control_image: Any = None  # ControlNet (guides.py): the control picture and how it steers
    control_type: Any = None
    control_is_map: Any = None
    control_scale: Any = None
    control_start: Any = None
    control_end: Any = None
    control_model: Any = None
    control_preview: Any = None
    ip_adapter_image: Any = None  # the image prompt (IP-Adapter): a reference picture and its scale
    ip_adapter_scale: Any = None
    guide_buttons: tuple = ()  # guides.py's own buttons and sketchpad, wired by guides.wire
    axes: list = None  # the X/Y/Z plot's (type, values) inputs, X first
    plot: Any = None
    restore: Any = None
    preview: Any = None
    status: Any = None
    gallery: Any = None
    use_result: Any = None
    upscale: Any = None
    upscaler: Any = None  # what ⤢ Upscale makes the larger picture with: Lanczos, or an upscaler model
    seed_used: Any = None
    recipe_view: Any = None
    selected: Any = None  # the result chosen in the gallery (a State)
    how: Any = None  # the filmstrip for "How it works" (a State)
    last_seed: Any = None  # what "Reuse last seed" gives: None (random) until something ran (a State)
    live: Any = None  # Live mode (live.py): its toggle, panel, picture, status, Keep, sketch and sketch strength
    live_panel: Any = None
    live_view: Any = None
    live_status: Any = None
    live_keep: Any = None
    live_sketch: Any = None
    live_strength: Any = None


def build(ctx: ui.Context) -> None:
    page = Page()
    with gr.Row():
        with gr.Column(scale=2):
            _prompt_and_settings(ctx, page)
            guides.build(ctx, page)
            _edit_panels(ctx, page)
        with gr.Column(scale=3):
            _results(ctx, page)
    page.selected, page.last_seed = gr.State(None), gr.State(None)
    gr.Examples(EXAMPLES, page.prompt, label="Try")
    page.how = _how_it_works(ctx.settings.classroom)
    ctx.shared.image_prompt, ctx.shared.image_gallery = page.prompt, page.gallery
    ctx.shared.image_selected = page.selected
    wire_runs(ctx, page)
    wire_grid(ctx, page)
    wire_live(ctx, page)
    guides.wire(ctx, page)
    _wire_controls(ctx, page)
    _wire_restore(ctx, page)


def _prompt_and_settings(ctx: ui.Context, page: Page) -> None:
    settings = ctx.settings
    choices, size_max = model_choices(settings), settings.max_image_size
    first = model_defaults(choices[0])
    page.prompt = gr.Textbox(
        "",
        label="Prompt",
        lines=3,
        elem_id="image-prompt",
        max_length=settings.max_prompt_chars,
        placeholder="a watercolor fox in a snowy forest, soft light",
    )
    page.negative_prompt = gr.Textbox(
        "", label="Negative prompt", lines=1, elem_id="image-negative", placeholder="what to avoid (guidance > 1)"
    )
    with gr.Accordion("Styles and wildcards", open=False, elem_id="image-styles-panel"):
        page.styles = ui.choice(
            gr.CheckboxGroup,
            list(prompts.styles(settings)),
            param="styles",
            value=[],
            label="Styles",
            info="Each wraps the prompt (and adds to the negative prompt), in order. `__name__` in a prompt draws "
            f"a line from `{settings.wildcards_dir}/name.txt` (the same seed draws the same).",
            elem_id="image-styles",
        )
    ui.lora_picker(ctx.settings, page.prompt, "image", ctx.history)
    with gr.Row():
        page.generate = gr.Button("Generate", variant="primary", elem_id="image-generate")
        ctx.shared.image_expand = gr.Button("✨ Expand prompt", elem_id="image-expand")
        page.stop = gr.Button("Stop", variant="stop", elem_id="image-stop")
    page.model = ui.model_dropdown(settings, choices, elem_id="image-model")
    ctx.shared.image_model = page.model
    page.model_note = gr.Markdown(model_note(choices[0], settings), elem_id="image-model-note")
    page.preset = gr.Radio(
        list(PRESETS),
        label="Preset",
        elem_id="image-preset",
        info="Fast: fewer steps, smaller. Quality: more steps. Balanced: the model's own.",
    )
    with gr.Row():
        page.steps = ui.slider(
            1,
            MAX_STEPS,
            param="steps",
            words="number of steps",
            value=first.steps,
            step=1,
            label="Steps",
            elem_id="image-steps",
        )
        page.guidance_scale = ui.slider(
            0, 30, param="guidance_scale", value=first.guidance, step=0.5, label="Guidance (CFG)"
        )
    page.sampler = ui.choice(
        gr.Dropdown,
        [DEFAULT_SAMPLER, *SAMPLERS],  # every name the API takes; choosing a model narrows it to its family's
        value=DEFAULT_SAMPLER,
        label="Sampler",
        elem_id="image-sampler",
        visible=not settings.classroom,
        info="How each step removes noise. Each model offers the samplers that run it (flow-matching ones differ).",
        param="sampler",
    )
    with gr.Row():
        page.width = ui.slider(64, size_max, param="width", value=first.size, step=8, label="Width")
        page.height = ui.slider(64, size_max, param="height", value=first.size, step=8, label="Height")
    with gr.Row():
        page.seed = ui.checked(gr.Number, checks.SEED_UNREADABLE)(
            -1, label="Seed (-1 = random)", precision=0, elem_id="image-seed"
        )
        page.reuse = gr.Button("♻ Reuse last seed", size="sm")
        page.num_images = ui.slider(
            1, MAX_IMAGES, param="num_images", words="number of images", value=1, step=1, label="Images"
        )


def _edit_panels(ctx: ui.Context, page: Page) -> None:
    """Image to image (with outpainting), inpainting, and restoring the settings of a PNG."""
    with gr.Accordion("Image to image", open=False) as ctx.shared.image_init_panel:
        page.init = ui.checked(gr.Image, checks.IMAGE_UNREADABLE, "input image (image)")(
            label="Input image", type="filepath", format="png", elem_id="image-init", sources=["upload", "clipboard"]
        )
        ctx.shared.image_init = page.init
        page.strength = ui.slider(
            0.05, 1, param="strength", value=0.5, step=0.05, label="Strength (1 = repaint everything)"
        )
        page.transform = gr.Button("Generate from image", elem_id="image-transform")
        with gr.Row():
            page.outpaint_sides = ui.choice(
                gr.CheckboxGroup,
                [side.capitalize() for side in OUTPAINT_SIDES],
                param="outpaint_sides",
                words="sides to extend",
                value=["Right"],
                label="Extend the picture (outpaint)",
                info="The model paints what lies beyond these edges; the picture itself stays as it is.",
                elem_id="image-outpaint-sides",
            )
            page.outpaint_pixels = ui.slider(
                8,
                512,
                param="outpaint_pixels",
                words="number of pixels to add",
                value=128,
                step=8,
                label="Pixels to add",
                elem_id="image-outpaint-pixels",
            )
        page.outpaint = gr.Button("Extend the picture", elem_id="image-outpaint-run")
    with gr.Accordion("Inpaint: repaint part of an image", open=False, elem_id="image-inpaint-panel"):
        page.editor = ui.checked(gr.ImageEditor, checks.IMAGE_UNREADABLE, "image to inpaint (image)")(
            label="Image: paint over what to repaint",
            type="filepath",
            format="png",
            sources=["upload", "clipboard"],
            brush=gr.Brush(colors=["#ff2d7a"], color_mode="fixed"),
            eraser=gr.Eraser(),
            layers=False,
            transforms=(),
            canvas_size=None,  # the canvas follows the picture's size (a fixed one would rescale it)
            elem_id="image-inpaint",
        )
        page.inpaint_strength = ui.slider(
            0.05, 1, param="strength", value=0.75, step=0.05, label="Strength (1 = ignore what was under the paint)"
        )
        page.inpaint = gr.Button("Repaint the painted area", elem_id="image-inpaint-run")
    with gr.Accordion("X/Y/Z plot: compare settings", open=False, visible=not ctx.settings.classroom):
        page.axes = []
        for axis, kind, values in (("X", "Seed", "1, 2, 3"), ("Y", "Nothing", ""), ("Z", "Nothing", "")):
            with gr.Row():
                page.axes.append(
                    (
                        gr.Dropdown(
                            list(xyz.AXES), value=kind, label=f"{axis} type", elem_id=f"image-{axis.lower()}-type"
                        ),
                        gr.Textbox(
                            values,
                            label=f"{axis} values",
                            placeholder="1, 2, 5 · 10-30 (+10) · Prompt S/R: the word to replace first",
                            elem_id=f"image-{axis.lower()}-values",
                        ),
                    )
                )
        page.plot = gr.Button("Make the grid", elem_id="image-plot")
    with gr.Accordion("Restore settings from a PNG", open=False, visible=not ctx.settings.classroom):
        page.restore = ui.checked(gr.File, "The PNG (file) could not be read.")(
            label="Drop a PNG made here or by AUTOMATIC1111", file_types=[".png"], elem_id="image-restore"
        )


def _live_panel(page: Page) -> None:
    """Live mode: a toggle; when on, the live picture (not saved), its status, Keep, and a sketch it can follow."""
    page.live = gr.Checkbox(
        False,
        label="Live: draw as I type",
        elem_id="image-live",
        info=f"Redraws as the prompt, seed or sketch changes (at most {LIVE_MAX_STEPS} steps; best with the turbo "
        "models). Nothing is saved until you press Keep.",
    )
    with gr.Group(visible=False, elem_id="image-live-panel") as page.live_panel:
        page.live_view = gr.Image(
            label="Live picture (not saved)", type="filepath", format="png", interactive=False, height=320,
            elem_id="image-live-view",
        )  # fmt: skip
        page.live_status = gr.Markdown(elem_id="image-live-status")
        page.live_keep = gr.Button("Keep this picture", variant="primary", size="sm", elem_id="image-live-keep")
        with gr.Accordion("Sketch: the picture follows your drawing", open=False, elem_id="image-live-sketch-panel"):
            page.live_sketch = ui.checked(gr.Sketchpad, "The sketch could not be read: draw it again.", "sketch")(
                type="pil", image_mode="RGBA", canvas_size=(512, 512), label="Sketch", elem_id="image-live-sketch",
                brush=gr.Brush(default_size=8),
            )  # fmt: skip
            page.live_strength = ui.slider(
                0.3, 1, param="sketch_strength", words="sketch strength", value=0.7, step=0.05,
                label="Sketch strength (1 = only the prompt)", elem_id="image-live-strength",
            )  # fmt: skip


def _results(ctx: ui.Context, page: Page) -> None:
    _live_panel(page)
    page.preview = gr.Image(label="Preview", interactive=False, visible=True, height=256, elem_id="image-preview")
    page.status = gr.Markdown(elem_id="image-status")
    page.gallery = gr.Gallery(
        label="Results",
        format="png",
        columns=2,
        fit_columns=False,
        object_fit="contain",
        height=420,
        elem_id="image-gallery",
        interactive=False,
    )
    with gr.Row():
        page.use_result = gr.Button("Use for image to image / inpaint", size="sm", elem_id="image-use-result")
        page.upscale = gr.Button("⤢ Upscale ×2", size="sm", elem_id="image-upscale")
        ctx.shared.image_to_music = gr.Button("🎵 Make a soundtrack", size="sm", elem_id="image-to-music")
        ctx.shared.image_to_faceswap = gr.Button("🎭 Use as face-swap target", size="sm", elem_id="image-to-faceswap")
        ctx.shared.image_to_extras = gr.Button("🔍 Upscale in Extras", size="sm", elem_id="image-to-extras")
        ctx.shared.image_to_video = gr.Button("🎬 Animate this picture", size="sm", elem_id="image-to-video")
    page.upscaler = ui.choice(
        gr.Dropdown, [LANCZOS, *enhance.upscaler_choices(ctx.settings)], param="upscaler", value=LANCZOS,
        label="⤢ Upscale ×2 with", info="Lanczos resampling, or an upscaler model (see the Extras tab)",
        elem_id="image-upscaler",
    )  # fmt: skip
    page.seed_used = ui.seed_used_box("image-seed-used")
    page.recipe_view = gr.JSON(label="Recipe", open=False)


def _how_it_works(open_: bool) -> Any:
    with gr.Accordion("How it works: from noise to picture", open=open_, elem_id="image-how"):
        gr.Markdown(
            "The model starts from random noise and removes a little of it at every step, guided by the "
            "prompt. These frames are the picture after each step (a quick preview of the model's "
            "internal 'latent' image), ending with the final result."
        )
        film = gr.Gallery(
            label="Denoising, step by step", columns=8, height=200, object_fit="contain", elem_id="image-how-film"
        )
    how = gr.State(None)
    how.change(lambda frames: frames or [], how, film, api_visibility="private", queue=False)
    return how


# ------------------------------------------------------------------------------------- other controls ------


def _wire_controls(ctx: ui.Context, page: Page) -> None:
    size_max = ctx.settings.max_image_size
    sizes = [page.steps, page.guidance_scale, page.width, page.height, page.model_note]

    def apply_preset(name: str, model_id: str):
        steps_value, guidance_value, size_value, note = preset_values(name, model_id, size_max)
        return steps_value, guidance_value, size_value, size_value, note

    page.preset.input(apply_preset, [page.preset, page.model], sizes, api_visibility="private", queue=False)

    def apply_defaults(model_id: str):
        """Choosing a model fills the form with its defaults, its note and licence, and the samplers that run it."""
        d, settings = model_defaults(model_id, ctx.settings), ctx.settings
        samplers = gr.Dropdown(choices=model_samplers(model_id, settings), value=DEFAULT_SAMPLER)
        note = model_note(model_id, settings)
        return d.steps, d.guidance, min(d.size, size_max), min(d.size, size_max), note, samplers

    page.model.input(apply_defaults, page.model, [*sizes, page.sampler], api_visibility="private", queue=False)
    page.reuse.click(
        lambda s: -1 if s is None else s, page.last_seed, page.seed, api_visibility="private", queue=False
    )

    def on_select(evt: gr.SelectData, items):
        return item_path(items[evt.index]) if items and evt.index is not None else None

    page.gallery.select(on_select, page.gallery, page.selected, api_visibility="private", queue=False)
    page.use_result.click(
        ui.user_errors(use_result), [page.selected, page.gallery], [page.init, page.editor],
        api_visibility="private", queue=False,
    )  # fmt: skip


def _wire_restore(ctx: ui.Context, page: Page) -> None:
    """Restore settings from a PNG (ours or AUTOMATIC1111's): /restore_image_settings."""
    choices = model_choices(ctx.settings)
    restored = ("prompt", "negative_prompt", "steps", "guidance_scale", "width", "height", "seed")
    guided = {  # the guides' settings (their pictures are not in a PNG): (recipe part, key) -> component
        ("controlnet", "type"): page.control_type,
        ("controlnet", "scale"): page.control_scale,
        ("controlnet", "start"): page.control_start,
        ("controlnet", "end"): page.control_end,
        ("ip_adapter", "scale"): page.ip_adapter_scale,
    }
    outputs = [getattr(page, name) for name in restored] + [page.model, page.sampler, page.status, page.styles]
    outputs += list(guided.values())

    @ui.user_errors
    def restore_image_settings(file: str | None) -> dict:
        """The form filled from a PNG's recipe (the studio's, or AUTOMATIC1111's parameters)."""
        if not file:
            return {page.status: ""}
        r = read_recipe(file)
        shown = {getattr(page, name): r[name] for name in restored if name in r}
        if r.get("model") in choices:
            shown[page.model] = r["model"]
        if r.get("sampler") in SAMPLERS:
            shown[page.sampler] = r["sampler"]
        if isinstance(r.get("styles"), list):
            offered = prompts.styles(ctx.settings)
            shown[page.styles] = [name for name in r["styles"] if name in offered]
        for (part, key), component in guided.items():
            value = r.get(part, {}).get(key) if isinstance(r.get(part), dict) else None
            if value is not None and (key != "type" or value in control.TYPES):
                shown[component] = value
        return {**shown, page.status: f"Restored the settings of {Path(file).name}."}

    page.restore.upload(restore_image_settings, page.restore, outputs, api_name="restore_image_settings")
