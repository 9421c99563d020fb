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


@functools.cache
def bounded(component: type) -> type:
    """A number input (gr.Slider, gr.Number) whose refusals name the input, its range and what was given ("The
    duration must be between 1 and 30 seconds; got 0."), not Gradio's "Value 0 is less than minimum value 1.".
    Set `what` (see core.checks.named) and `unit` on the instance."""

    class Bounded(component):
        is_template = True
        what = "value"
        unit = ""

        def preprocess(self, payload):
            from core.checks import check_number
            from core.errors import UserError

            try:  # whole numbers are the engine's to ask for (a slider with step 1 may still take 2.5 from the API)
                number = check_number(payload, self.what, self.minimum, self.maximum, unit=self.unit)
            except UserError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            return super().preprocess(number)

    Bounded.__name__ = Bounded.__qualname__ = f"Bounded{component.__name__}"
    return Bounded


@functools.cache
def chosen(component: type) -> type:
    """A choice input (gr.Dropdown, gr.Radio, gr.CheckboxGroup) whose refusal names the input, a few of the offered
    choices and what was given, not Gradio's bare "Value: x is not in the list of choices". Set `what`."""

    class Chosen(component):
        is_template = True
        what = "choice"

        def preprocess(self, payload):
            try:
                return super().preprocess(payload)
            except Exception:
                offered = [str(c[1] if isinstance(c, tuple) else c) for c in self.choices or []]
                listed = ", ".join(offered[:6]) + (", ..." if len(offered) > 6 else "")
                raise gr.Error(
                    f"The {self.what} must be one of the offered choices ({listed}); got {payload!r:.80}.",
                    print_exception=False,
                ) from None

    Chosen.__name__ = Chosen.__qualname__ = f"Chosen{component.__name__}"
    return Chosen
