"""Music tab: text-to-music with MusicGen (transformers), melodies and continuations.

engine.py is plain Python (no Gradio): parameters, input checks and the generate functions, which the page, the
API, the CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.music`
serves this tab alone.
"""

from tabs.music.engine import MusicParams, generate_music, model_choices  # noqa: F401

TITLE = "Music"


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.music.page import build as build_page

    build_page(ctx)
