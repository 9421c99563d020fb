"""Face swap tab: consent first; a classic engine offline, a neural one when present.

engine.py is plain Python (no Gradio): parameters, input checks and the generate functions, which the page, the
API, the CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.faceswap`
serves this tab alone.
"""

from tabs.faceswap.engine import swap_face_image  # noqa: F401
from tabs.faceswap.video import swap_face_video  # noqa: F401

TITLE = "Face swap"


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.faceswap.page import build as build_page

    build_page(ctx)
