"""Video tab: text to video and picture to video with Wan and LTX-Video, LoRAs, soundtracks, labels.

engine.py is plain Python (no Gradio): parameters, input checks and `generate_video`, which the page, the API, the
CLI and the tests all call. page.py builds the tab (components and wiring only). `python -m tabs.video` serves this
tab alone.
"""

from tabs.video.engine import VideoParams, generate_video, model_choices  # noqa: F401

TITLE = "Video"

# What each endpoint does, for agents (Gradio's MCP server, STUDIO_MCP=1) and the API page (app.tools).
TOOLS = {
    "generate_video": "Make a short video from a text prompt with Wan or LTX-Video (text to video), or from a "
    "first_frame picture with Wan2.2-TI2V-5B or LTX-Video (picture to video): num_frames (4k+1 for Wan, 8k+1 for "
    "LTX-Video, at most the studio's limit), fps, width and height (multiples of 16, or 32 for Wan 2.2 and LTX), "
    "steps, guidance_scale, seed (-1 = random), negative_prompt, LoRAs as <lora:name:weight> in the prompt, and a "
    "soundtrack audio file muxed under it. Returns the MP4 (H.264, labelled, recipe and content credentials inside), "
    "a status line and the seed. Minutes on a GPU; far longer on a CPU.",
    "add_soundtrack": "Put a soundtrack under a finished video (an H.264 MP4): the given soundtrack audio file, or "
    "music composed by the Music tab's model for the video's length from music_prompt (seed). The frames are copied "
    "unchanged. Returns the new MP4, a status line and its recipe.",
}


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.video.page import build as build_page

    build_page(ctx)
