"""The Verify tab's page: a file in, what it says about itself out (engine.verify_file)."""

import gradio as gr

from core import ui
from tabs.verify.engine import verify_file


def build(ctx: ui.Context) -> None:
    gr.Markdown(
        "Drop an image (PNG, JPEG, WebP), a WAV or an MP4 to see whether this studio made it, with what "
        "recipe, and whether its content credentials are intact."
    )
    with gr.Row():
        with gr.Column():
            readable = ui.checked(gr.File, "The file (file) could not be read.")
            file = readable(label="File to verify", elem_id="verify-file")
            check = gr.Button("Verify", variant="primary", elem_id="verify-button")
        with gr.Column():
            verdict = gr.Markdown(elem_id="verify-summary")
            report = gr.JSON(label="Full report", open=False)

    @ui.user_errors
    def verify(file: str) -> tuple[str, dict]:
        facts = verify_file(file, ctx.settings, ctx.cache)
        return facts["summary"], facts

    check.click(verify, file, [verdict, report], api_name="verify")
    file.upload(verify, file, [verdict, report], api_name=False)
