"""Extras tab: any picture upscaled with an ESRGAN-family model and its faces restored (GFPGAN, RestoreFormer), as
AUTOMATIC1111's Extras tab does, saved with its recipe and labelled as AI-enhanced.

engine.py is plain Python (no Gradio): parameters, input checks and enhance_picture, which the page, the API, the
CLI and the tests all call; the models and the work are in core.enhance. page.py builds the tab (components and
wiring only). `python -m tabs.extras` serves this tab alone.
"""

from tabs.extras.engine import ExtrasParams, enhance_picture  # noqa: F401

TITLE = "Extras"

# What each endpoint does, for agents (Gradio's MCP server, STUDIO_MCP=1) and the API page (app.tools).
TOOLS = {
    "extras": "Upscale a picture (image) with an upscaler model as listed (upscaler, scale 2 or 4) and/or restore "
    "its faces (face_restorer, restore_strength 0-1; scale 1 for faces only). Returns the PNG (its recipe inside, "
    "labelled AI-enhanced), the picture before, and a status.",
}


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.extras.page import build as build_page

    build_page(ctx)
