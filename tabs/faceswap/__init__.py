"""Face swap tab: consent first; a classic engine offline, a neural one when present.

engine.py is plain Python (no Gradio): parameters, input checks and the generate functions, which the page, the
API, the CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.faceswap`
serves this tab alone.
"""

from tabs.faceswap.engine import swap_face_image  # noqa: F401
from tabs.faceswap.video import swap_face_video  # noqa: F401

TITLE = "Face swap"

# What each endpoint does, for agents (Gradio's MCP server, STUDIO_MCP=1) and the API page (app.tools).
TOOLS = {
    "swap_face": "Put the face from source_image on the faces of target_image. consent must be true: the person "
    "whose face is used has agreed to it. face_index -1 swaps every face (else the Nth from the left), engine auto, "
    "classic or neural, region whole face, keep eyes, keep mouth or skin only. Returns the labelled PNG and a "
    "summary.",
    "swap_face_video": "Put the face from source_image on the faces of every frame of target_video (consent must "
    "be true, as for swap_face). Returns the MP4 and a summary.",
    "get_neural_engine": "Download the neural face swap engine (insightface's inswapper_128 and ArcFace, about "
    "730 MB, non-commercial research licence): accept_licence must be true.",
}


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.faceswap.page import build as build_page

    build_page(ctx)
