"""The one save path of every output (PNG, WAV, MP4, Markdown): a fresh path, the recipe's provenance block (one
schema for all tabs), the file written by the tab's writer, signed content credentials where the format carries
them, the renaming into place, the recipe beside it. It stands on core.outputs (paths, atomic writes, recipe JSON)
and core.provenance (labels, watermarks, C2PA); neither imports it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import outputs, provenance

SIGNED = {"png": "image/png", "wav": "audio/wav", "mp4": "video/mp4"}  # kinds that carry signed content credentials
Writer = Callable[[Path, dict[str, Any]], str | None]  # writes the file; returns its watermark (None: none)


@dataclass
class Saved:
    """An output on disk with its recipe (which is also in `outputs.recipe_path(path)` beside it)."""

    path: Path
    recipe: dict[str, Any]


def finish(
    settings: Any,
    tab: str,
    title: str,
    ext: str,
    recipe: dict[str, Any],
    write: Writer,
    *,
    edited: bool = False,
    label: bool = False,
) -> Saved:
    """Save one output (see the module's docstring) and complete its recipe: the writer gets the recipe with its
    provenance block and writes the file (a PNG or WAV carries the recipe inside); it returns what watermark it put
    in (None: none), which the recipe then says, here and only here. `edited`: the output keeps something the user
    gave (inpainting, a continuation, a face swap), so it is a composite. `label`: it carries a visible
    "AI-generated" label."""
    source_type, action = (provenance.COMPOSITE, "c2pa.edited") if edited else (provenance.GENERATED, "c2pa.created")
    mime = SIGNED.get(ext)
    path = outputs.new_output_path(settings.output_dir, tab, title, ext)
    if edited and recipe.get("statement") == outputs.AI_STATEMENT:
        recipe["statement"] = outputs.AI_EDITED_STATEMENT
    recipe["provenance"] = {
        "digital_source_type": provenance.IPTC + source_type,
        "content_credentials": f"C2PA, {action}" if mime else "none (a text file cannot carry them)",
        "watermark": "none",
        "label": label,
    }
    with outputs.atomic_target(path) as tmp:
        recipe["provenance"]["watermark"] = write(tmp, recipe) or "none"
        if mime:
            signed = provenance.sign(
                tmp.read_bytes(),
                mime,
                provenance.studio_credentials(settings),
                title=path.name,
                source_type=source_type,
                action=action,
                recipe=recipe,
            )
            tmp.write_bytes(signed)
    outputs.save_recipe(path, recipe)
    return Saved(path, recipe)
