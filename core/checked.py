"""Gradio input components that answer unreadable input with a sentence (see `checked`).

Kept in a module of its own, this small: Gradio parses the source file of every component class it sees (to write
a .pyi stub beside it), once per class at startup, and a short file parses quickly.
"""

import functools

import gradio as gr


@functools.cache
def checked(component: type, sentence: str) -> type:
    """A Gradio input component whose unreadable input (an upload that is not what it says, a word where a number
    belongs) gives `sentence` instead of a processing error. "{label}" in it becomes the component's label.

    Uses Gradio's template mechanism (is_template): the browser renders the parent component as usual.
    """

    class Checked(component):
        is_template = True

        def preprocess(self, payload):
            try:
                return super().preprocess(payload)
            except gr.Error:
                raise
            except Exception:
                label = str(self.label or "value").split(" (")[0].lower()
                raise gr.Error(sentence.format(label=label), print_exception=False) from None

    Checked.__name__ = Checked.__qualname__ = f"Checked{component.__name__}"
    return Checked
