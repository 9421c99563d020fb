"""Image tab: text-to-image, image-to-image, inpainting, outpainting and upscaling with diffusers.

engine.py is plain Python (no Gradio): parameters, input checks and the generate functions, which the page, the
API, the CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.image`
serves this tab alone.
"""

from tabs.image.choices import model_choices, model_defaults  # noqa: F401
from tabs.image.engine import OUTPAINT_STRENGTH, ImageParams, generate_image  # noqa: F401

TITLE = "Image"


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.image.page import build as build_page

    build_page(ctx)
