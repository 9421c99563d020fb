"""The Image tab's guides, in the page: ControlNet (a control picture, uploaded, drawn or taken from a result, its
type, strength and step range, a preview of its control map) and the image prompt (IP-Adapter: a reference picture
and its scale). Components and wiring only: the work is in control.py and ip_adapter.py. `page` is page.Page."""

from typing import Any

import gradio as gr

from core import ui
from core.errors import UserError
from tabs.image import control, ip_adapter
from tabs.image.gallery import chosen_or_first

# The API names of the guides' inputs, after every other input of /generate_image and the picture endpoints.
CONTROL = ("control_image", "control_type", "control_scale", "control_start", "control_end", "control_model")
CONTROL_FIELDS = ("image", "kind", "scale", "start", "end", "model")  # their control.Control fields
UNREADABLE = "The {what} is not an image the studio can read (PNG, JPEG or WebP)."  # as control.read_picture says
INPUTS = (*CONTROL, "control_is_map", "ip_adapter_image", "ip_adapter_scale")


def build(ctx: ui.Context, page: Any) -> None:
    settings = ctx.settings
    with gr.Accordion(
        "ControlNet: follow a picture's edges, pose or sketch", open=False, elem_id="image-control-panel"
    ):
        gr.Markdown(
            "The picture steers the composition: its **edges** (Canny), a person's **pose**, the lines of a "
            "**scribble**, or its **depth** (Depth Anything, downloaded on first use). The ControlNet for the model "
            "and the type downloads on first use (Stable Diffusion 1.5 and SDXL; ControlNet folders in "
            f"`{settings.controlnet_dir}` are offered too). Clear the picture to stop using it."
        )
        with gr.Row():
            page.control_image = ui.checked(
                gr.Image, UNREADABLE.format(what="control picture (control_image)"), "control picture (control_image)"
            )(
                label="Control picture", type="filepath", format="png", sources=["upload", "clipboard"],
                elem_id="image-control-image",
            )  # fmt: skip
            page.control_preview = gr.Image(
                label="Control map", interactive=False, format="png", elem_id="image-control-map"
            )
        with gr.Row():
            page.control_type = ui.choice(
                gr.Radio, list(control.TYPES), param="control_type", value="Canny", label="Control type",
                elem_id="image-control-type",
            )  # fmt: skip
            page.control_model = ui.choice(
                gr.Dropdown, [control.AUTOMATIC, *control.available(settings)], param="control_model",
                value=control.AUTOMATIC, label="ControlNet", elem_id="image-control-model",
            )  # fmt: skip
        page.control_is_map = gr.Checkbox(
            False, label="The picture already is a control map (no preprocessor)", elem_id="image-control-is-map"
        )
        with gr.Row():
            page.control_scale = ui.slider(
                *control.SCALE, param="control_scale", words="control strength", value=1.0, step=0.05,
                label="Control strength", elem_id="image-control-scale",
            )  # fmt: skip
            page.control_start = ui.slider(
                0,
                1,
                param="control_start",
                words="control start",
                value=0.0,
                step=0.05,
                label="Start (share of steps)",
            )
            page.control_end = ui.slider(
                0, 1, param="control_end", words="control end", value=1.0, step=0.05, label="End (share of steps)"
            )
        with gr.Row():
            show = gr.Button("Preview the control map", size="sm", elem_id="image-control-preview")
            take = gr.Button("Use the chosen result", size="sm", elem_id="image-control-use-result")
        with gr.Accordion("Draw a scribble", open=False):
            sketch = ui.checked(gr.Sketchpad, "The sketch could not be read: draw it again.", "sketch")(
                type="pil", image_mode="RGBA", canvas_size=(512, 512), label="Sketch", elem_id="image-sketch",
                brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=6),
            )  # fmt: skip
            use_sketch = gr.Button("Use the sketch as control picture", size="sm", elem_id="image-use-sketch")
    with gr.Accordion("Image prompt (IP-Adapter)", open=False, elem_id="image-ip-panel"):
        gr.Markdown(
            "The result takes the style or subject of this picture, as much as the scale says. The adapter and its "
            "image encoder download on first use (Stable Diffusion 1.5 and SDXL)."
        )
        with gr.Row():
            unreadable = UNREADABLE.format(what="reference picture (ip_adapter_image)")
            page.ip_adapter_image = ui.checked(gr.Image, unreadable, "reference picture (ip_adapter_image)")(
                label="Reference picture", type="filepath", format="png", sources=["upload", "clipboard"],
                elem_id="image-ip-image",
            )  # fmt: skip
            page.ip_adapter_scale = ui.slider(
                *ip_adapter.SCALE, param="ip_adapter_scale", words="image prompt scale", value=0.6, step=0.05,
                label="Scale", elem_id="image-ip-scale",
            )  # fmt: skip
    page.guide_buttons = (show, take, sketch, use_sketch)


def inputs(page: Any) -> dict[str, Any]:
    """The guides' named inputs of an image run."""
    return {name: getattr(page, name) for name in INPUTS}


def from_inputs(named: dict[str, Any]) -> dict[str, Any]:
    """generate_image's control= and reference= from a run's parameters by name (the guides' INPUTS among them;
    one that is None takes its default)."""
    given = {name: named.get(name) for name in INPUTS}
    made: dict[str, Any] = {"control": None, "reference": None}
    if given["control_image"]:
        fields = {field: given[name] for name, field in zip(CONTROL, CONTROL_FIELDS, strict=True)}
        defaults = control.Control(None)
        fields = {k: getattr(defaults, k) if v is None else v for k, v in fields.items()}
        made["control"] = control.Control(**fields, is_map=bool(given["control_is_map"]))
    if given["ip_adapter_image"]:
        scale = given["ip_adapter_scale"]
        made["reference"] = ip_adapter.Reference(given["ip_adapter_image"], 0.6 if scale is None else scale)
    return made


def wire(ctx: ui.Context, page: Any) -> None:
    """The guides' own events: preview the control map (/control_map), a result or the sketch as control picture."""
    settings, (show, take, sketch, use_sketch) = ctx.settings, page.guide_buttons

    @ui.user_errors
    def control_map(control_image, control_type, control_is_map):
        """The control map a picture gives for a control type (what the ControlNet will read)."""
        if not control_image:
            raise UserError("Add a control picture first (upload one, draw a scribble, or use a result).")
        steer = control.check(settings, control.Control(control_image, control_type, is_map=bool(control_is_map)))
        return control.control_map(settings, steer, steer.image.size, ctx.cache)

    steering = [page.control_image, page.control_type, page.control_is_map]
    show.click(
        control_map, steering, page.control_preview, api_name="control_map",
        concurrency_limit=ctx.settings.concurrency, concurrency_id="image-guides",
    )  # fmt: skip

    @ui.user_errors
    def chosen_result(selected: str | None, items: list | None) -> str:
        return chosen_or_first(selected, items, "use it as the control picture")

    take.click(chosen_result, [page.selected, page.gallery], page.control_image, api_visibility="private")

    @ui.user_errors
    def sketch_to_control(drawn):
        """The sketch on a white page, as the control picture (read as a scribble)."""
        from PIL import Image

        picture = (drawn or {}).get("composite")
        if picture is None or picture.getbbox() is None:
            raise UserError("The sketch is empty: draw something first.")
        page_ = Image.new("RGBA", picture.size, "white")
        page_.alpha_composite(picture.convert("RGBA"))
        return page_.convert("RGB"), "Scribble", False

    use_sketch.click(
        sketch_to_control, sketch, [page.control_image, page.control_type, page.control_is_map],
        api_visibility="private", queue=False,
    )  # fmt: skip
