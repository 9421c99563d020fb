"""Face swap tab: not built yet (face swaps in images and videos, with consent and labelling built in)."""


def build(ctx) -> None:
    import gradio as gr

    gr.Markdown(
        "### Coming soon\n"
        "The Face swap tab is not built yet."
        " It will offer face swaps in images and videos, with consent and labelling built in."
        " The other tabs work now."
    )
