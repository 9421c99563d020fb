"""Verify tab: read back what a file says about itself: watermark, metadata, content credentials.

engine.py is plain Python (no Gradio): parameters, input checks and the generate functions, which the page, the
API, the CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.verify`
serves this tab alone.
"""

from tabs.verify.engine import verify_file  # noqa: F401

TITLE = "Verify"

# What each endpoint does, for agents (Gradio's MCP server, STUDIO_MCP=1) and the API page (app.tools).
TOOLS = {
    "verify": "Read what a file (PNG, JPEG, WAV, MP4) says about itself: the invisible watermark, the AI-made "
    "labels in its metadata, the recipe, and signed content credentials (C2PA). Returns a plain-words summary "
    "and the full report.",
}


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.verify.page import build as build_page

    build_page(ctx)
