"""Train tab: a LoRA trained on the user's own pictures (diffusers + peft), usable at once on the Image tab.

engine.py is plain Python (no Gradio): parameters, checks, captions and `train_lora`, which the page, the API and the
tests call; trainer.py holds the training itself, dataset.py the pictures. page.py builds the tab. `python -m
tabs.train` serves this tab alone.
"""

from tabs.train.engine import TrainParams, caption_images, train_lora  # noqa: F401

TITLE = "Train"

# What each endpoint does, for agents (Gradio's MCP server, STUDIO_MCP=1) and the API page (app.tools).
TOOLS = {
    "train_lora": "Train a LoRA on 5 to 50 pictures (images: PNG, JPEG, WebP files or zips of them, with name.txt "
    "captions) on a base model (base_model: SD 1.5, SD 3.5 or FLUX.1 [dev]), with a trigger word, steps, rank, "
    "learning_rate, resolution, batch_size, seed and optional captions ([picture, caption] rows). consent must be "
    "true when a picture shows a face (audited). The LoRA lands in the LoRA folder as `name` (refused if it exists, "
    "unless overwrite) with kohya-style ss_* metadata; use it on the Image tab as <lora:name:1>. resume goes on from "
    "the last checkpoint. Minutes on a GPU; slow on a CPU.",
    "caption_images": "A caption for each picture (images, files or zips) by the captioning model (BLIP), as "
    "[picture, caption] rows for train_lora's captions.",
}


def build(ctx) -> None:
    """The tab's page, in the studio's Blocks (`ctx` is core.ui.Context). Gradio is imported only here."""
    from tabs.train.page import build as build_page

    build_page(ctx)
