"""Voice tab: text to speech with voices that need no download (hibari), MMS-TTS (VITS) and Piper voices.

engine.py is plain Python (no Gradio): parameters, input checks and `speak`, which the page, the API, the CLI and
the tests all call; voices.py holds the voices and their engines. page.py builds the tab (components and wiring
only). `python -m tabs.voice` serves this tab alone.
"""

from tabs.voice.engine import SpeechParams, speak, voice_choices  # noqa: F401

TITLE = "Voice"

# What each endpoint does, for agents (Gradio's MCP server, STUDIO_MCP=1) and the API page (app.tools).
TOOLS = {
    "speak": "Speak a text aloud (text to speech): text (sentences are spoken in order), voice (a voice id from the "
    "tab's list, e.g. 'hibari:heart', which needs no download; blank: the default), language (a code such as 'en' "
    "or 'fr'; blank: the voice's own), speed (0.5-2, 1 = normal), seed (-1 = random). Returns the WAV file "
    "(recipe and content credentials inside), its waveform and the seed.",
    "clone_voice": "Say a text (up to 300 characters) in the voice of a reference clip (reference: 3-20 s of one "
    "person speaking; reference_text: what it says, word for word) with Dia. consent must be true: the speaker's "
    "own voice, or their consent to clone it; every clone is audited and labelled a composite of a real person's "
    "voice. seed (-1 = random). Slow on a CPU (about a minute per second of speech).",
    "narrate": "Mix a speech clip (speech, e.g. /speak's WAV) over a music clip (music, e.g. /generate_music's WAV): "
    "the music at music_db (-30-0 dB against the voice), ducked by duck_db (0-30 dB) while the voice speaks, "
    "lead_in seconds of music before the voice and tail seconds after it. Returns the narrated WAV (labelled, with "
    "its recipe) and a status line.",
}


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.voice.page import build as build_page

    build_page(ctx)
