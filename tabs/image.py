"""Image tab: not built yet (text-to-image and image-to-image with diffusers (Stable Diffusion Turbo by default))."""


def build(ctx) -> None:
    import gradio as gr

    gr.Markdown(
        "### Coming soon\n"
        "The Image tab is not built yet."
        " It will offer text-to-image and image-to-image with diffusers (Stable Diffusion Turbo by default)."
        " The other tabs work now."
    )
