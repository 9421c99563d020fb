"""Work Gradio would redo on every update, done once per process.

When a handler yields a dict that leaves some outputs out (a progress update that shows the step and the preview
but not yet the gallery), Gradio fills the gaps with a bare update and, for each, builds a fresh copy of the
component and its config, whose JSON schema pydantic derives again each time: 30-110 ms per picture on the event
loop for the Image tab's three such outputs (bench/image.py, py-spy). A data model's schema never changes, so it is
derived once per class here; each component still gets its own copy, as before.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from gradio.components.base import Component

_derive = Component.api_info


@functools.cache
def _schema(data_model: type) -> dict[str, Any]:
    schema = data_model.model_json_schema()
    schema["additional_description"] = schema.pop("description", None)  # as Component.api_info shapes it
    return schema


def _api_info(self: Component) -> dict[str, Any]:
    if self._api_info_cache is None and isinstance(self.data_model, type):
        self._api_info_cache = copy.deepcopy(_schema(self.data_model))
    return _derive(self)


def install() -> None:
    """Derive each data model's schema once (idempotent)."""
    Component.api_info = _api_info
