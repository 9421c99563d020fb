"""Image tab: text-to-image, image-to-image, inpainting, outpainting and upscaling with diffusers.

engine.py is plain Python (no Gradio): parameters, input checks and the generate functions, which the page, the
API, the CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.image`
serves this tab alone.
"""

from tabs.image.choices import model_choices, model_defaults  # noqa: F401
from tabs.image.engine import OUTPAINT_STRENGTH, ImageParams, generate_image  # noqa: F401

TITLE = "Image"

# What each endpoint does, for agents (Gradio's MCP server, STUDIO_MCP=1) and the API page (app.tools).
TOOLS = {
    "generate_image": "Make pictures from a text prompt with Stable Diffusion (diffusers). Pass at least the prompt; "
    "<lora:name:weight> tags, embedding names and __wildcards__ work in it. steps, guidance_scale, width and height "
    "(multiples of 8) default to the model's own; seed -1 is random (image i uses seed + i); num_images 1-4. "
    "Optional guides: control_image with control_type (Canny, Pose, Scribble, Depth) for a ControlNet, "
    "ip_adapter_image for an image prompt. Returns the PNG files, each with its recipe inside, and the seed used.",
    "image_to_image": "Repaint a picture (image) after a prompt; strength 0.01-1 says how much is repainted "
    "(0.5 by default). The output keeps the picture's size. Returns the PNG files and the seed used.",
    "inpaint": "Repaint only the painted part of a picture: image is the editor's value {background, layers}; "
    "outside the paint the picture stays as it was. Returns the PNG files and the seed used.",
    "outpaint": "Extend a picture (image) on the sides listed in outpaint_sides (Left, Right, Top, Bottom) by "
    "outpaint_pixels each, painting the new area after the prompt. Returns the PNG files.",
    "upscale": "Double a picture's size and let the model add detail (image to image at low strength, the same "
    "seed); a blank prompt takes the one in the picture's recipe. Returns the PNG file.",
    "xyz_plot": "Compare settings on a grid: every combination of the x, y and z axes' values (Seed, Steps, "
    "Guidance, Sampler, LoRA weight, Prompt S/R; values like '1, 2, 5' or '10-30 (+10)') is made with the "
    "prompt. Returns the labelled grid, every cell, and the plot's recipe.",
    "live_image": "Live mode: one quick picture from the prompt (and a sketch, if given, kept as much as "
    "1 - sketch_strength), at most 8 steps, not saved. Only a session's newest request runs: an older one still "
    "waiting returns nothing. A random seed (-1) draws with seed 0. Returns the picture and a status line.",
    "keep_image": "Save the session's last live picture (from live_image), unchanged, into the outputs with its "
    "recipe. Returns the saved PNG and its recipe.",
    "control_map": "The control map a ControlNet would read from control_image for control_type (Canny edges, "
    "a Pose skeleton, a Scribble, Depth).",
    "restore_image_settings": "Read the settings stored in a PNG made here or by AUTOMATIC1111 (file).",
}


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.image.page import build as build_page

    build_page(ctx)
