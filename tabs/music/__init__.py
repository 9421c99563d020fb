"""Music tab: text-to-music with MusicGen (transformers), melodies and continuations.

engine.py is plain Python (no Gradio): parameters, input checks and the generate functions, which the page, the
API, the CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.music`
serves this tab alone.
"""

from tabs.music.engine import MusicParams, generate_music, model_choices  # noqa: F401

TITLE = "Music"

# What each endpoint does, for agents (Gradio's MCP server, STUDIO_MCP=1) and the API page (app.tools).
TOOLS = {
    "generate_music": "Compose music from a text prompt with MusicGen: duration in seconds (8 by default, at most "
    "the studio's limit), top_k, top_p, temperature, guidance_scale, seed (-1 = random), and a melody audio file "
    "for melody models. Returns the WAV file (recipe and content credentials inside), its waveform and the seed.",
    "continue_music": "Go on from an audio clip (continue_from) for duration more seconds, after the prompt (blank: "
    "the clip's own). Returns the WAV file and the seed used.",
}


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.music.page import build as build_page

    build_page(ctx)
