"""Music tab: not built yet (text-to-music with MusicGen)."""


def build(ctx) -> None:
    import gradio as gr

    gr.Markdown(
        "### Coming soon\n"
        "The Music tab is not built yet. It will offer text-to-music with MusicGen."
        " The other tabs work now."
    )
