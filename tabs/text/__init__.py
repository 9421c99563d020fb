"""Text tab: a streaming chat with a small instruction-tuned model (transformers).

engine.py is plain Python (no Gradio): parameters, input checks and the generate functions, which the page, the
API, the CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.text`
serves this tab alone.
"""

from tabs.text.engine import DEFAULT_SYSTEM_PROMPT, TextParams, generate_text, message_text, model_choices  # noqa: F401

TITLE = "Text"


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.text.page import build as build_page

    build_page(ctx)
