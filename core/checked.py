"""Gradio input components that answer unreadable input with a sentence (see `checked`).

Kept in a module of its own, this small: Gradio parses the source file of every component class it sees (to write
a .pyi stub beside it), once per class at startup, and a short file parses quickly.
"""

import functools

import gradio as gr


@functools.cache
def checked(component: type, sentence: str, what: str | None = None) -> type:
    """A Gradio input component whose unreadable input (an upload that is not what it says, a word where a number
    belongs) gives `sentence` instead of a processing error. "{label}" in it becomes the component's label.

    An image input (gr.Image, gr.ImageEditor, gr.Sketchpad) first reads each picture's header and refuses one over
    the studio's pixel limit, naming it as `what`: Gradio would otherwise decode it, whatever its size, before any
    handler runs (a 12000x12000 PNG of 18 KB costs 0.6 GB there).

    Uses Gradio's template mechanism (is_template): the browser renders the parent component as usual.
    """
    pictures = issubclass(component, gr.Image | gr.ImageEditor)

    class Checked(component):
        is_template = True

        # A file's payload model, whose malformed value gets words too (a property, not an __init__ of our own:
        # Gradio reads a component's props from its __init__ signature).
        @property
        def data_model(self):
            model = self.__dict__.get("_raw_data_model", getattr(component, "data_model", None))
            return _explained(model, sentence) if isinstance(model, type) else model

        @data_model.setter
        def data_model(self, model):
            self.__dict__["_raw_data_model"] = model

        def preprocess(self, payload):
            if pictures:
                _refuse_oversized(payload, what or str(self.label or "picture").split(" (")[0].lower())
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
def _explained(model: type, sentence: str) -> type:
    """`model` (a component's payload model), whose validation failure (a value that is no file, say a path sent as
    plain text) says `sentence` and how to send a file, not pydantic's error. Same name: the API page is unchanged."""
    import pydantic

    def model_validate(cls, obj, *args, **kwargs):
        try:
            return model.model_validate.__func__(cls, obj, *args, **kwargs)
        except pydantic.ValidationError:
            how = " Send a file as an upload (gradio_client: handle_file(path))."
            raise gr.Error(sentence.format(label="file") + how, print_exception=False) from None

    members = {"__module__": model.__module__, "__doc__": model.__doc__, "model_validate": classmethod(model_validate)}
    return type(model.__name__, (model,), members)


def _refuse_oversized(payload, what: str) -> None:
    """gr.Error if any picture in an image component's payload declares more pixels than the studio accepts."""
    import base64
    import binascii
    import io

    from core.checks import check_image_header
    from core.errors import UserError

    files = [payload] if hasattr(payload, "path") else []
    for part in ("background", "composite", "layers"):  # an image editor's payload
        found = getattr(payload, part, None)
        files += found if isinstance(found, list) else [found] if found is not None else []
    for file in files:
        url, path = getattr(file, "url", None) or "", getattr(file, "path", None)
        try:
            if url.startswith("data:"):
                check_image_header(io.BytesIO(base64.b64decode(url.partition(",")[2], validate=False)), what)
            elif path:
                check_image_header(path, what)
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except (binascii.Error, ValueError):
            continue  # unreadable: the component's own decoding says so


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
