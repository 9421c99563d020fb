"""Text tab: a streaming chat with a small instruction-tuned model (transformers).

engine.py is plain Python (no Gradio): parameters, input checks and the generate functions, which the page, the
API, the CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.text`
serves this tab alone.
"""

from tabs.text.engine import DEFAULT_SYSTEM_PROMPT, TextParams, generate_text, message_text, model_choices  # noqa: F401

TITLE = "Text"

# What each endpoint does, for agents (Gradio's MCP server, STUDIO_MCP=1) and the API page (app.tools).
TOOLS = {
    "generate_text": "Answer a message (prompt) with the Text tab's chat model, streaming the growing answer. "
    "Optional: system_prompt, max_new_tokens, temperature (0 = greedy), top_p, top_k, repetition_penalty, seed "
    "(-1 = random), model, and history (earlier messages, oldest first, each {role, content}). Returns the answer; "
    "the transcript is saved with its recipe.",
}


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.text.page import build as build_page

    build_page(ctx)
