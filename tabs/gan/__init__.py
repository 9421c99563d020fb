"""GAN lab tab: train a small conditional GAN on handwritten digits, on the CPU.

engine.py is plain Python (no Gradio): parameters, input checks and the generate functions, which the page, the
API, the CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.gan`
serves this tab alone.
"""

from tabs.gan.engine import GanLab, train  # noqa: F401

TITLE = "GAN lab"

# What each endpoint does, for agents (Gradio's MCP server, STUDIO_MCP=1) and the API page (app.tools).
TOOLS = {
    "train_gan": "Train (or go on training) this session's small conditional GAN on handwritten digits for "
    "epochs, from seed. Returns sample digits, the loss curves and a status line.",
    "gan_walk": "Every digit drawn from one point (t, 0 to 1) of a walk through the trained GAN's latent space.",
}


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.gan.page import build as build_page

    build_page(ctx)
