"""GAN lab tab: train a small conditional GAN on handwritten digits, on the CPU.

engine.py is plain Python (no Gradio): parameters, input checks and the generate functions, which the page, the
API, the CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.gan`
serves this tab alone.
"""

from tabs.gan.engine import GanLab, train  # noqa: F401

TITLE = "GAN lab"


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.gan.page import build as build_page

    build_page(ctx)
