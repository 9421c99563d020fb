"""Textual-inversion embeddings for the Image tab, used as AUTOMATIC1111 uses them: a file `name.safetensors` in
STUDIO_EMBEDDINGS_DIR becomes the word `name`, in the prompt or the negative prompt ("easynegative" in a negative
prompt, say). diffusers loads each into the loaded pipeline's tokenizer and text encoder the first time a prompt
uses it; safetensors only (A1111's `emb_params` and diffusers' own layout)."""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import outputs
from core.errors import UserError
from core.loras import pipeline_lock
from core.settings import Settings


@dataclass(frozen=True)
class Embedding:
    name: str  # the word that calls it: the file's name without .safetensors
    path: Path

    def recipe(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": outputs.file_sha256(self.path)}


def available(settings: Settings) -> dict[str, Path]:
    """name -> file for each .safetensors file in the embeddings folder (and its subfolders)."""
    folder = Path(settings.embeddings_dir)
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.rglob("*.safetensors")) if p.is_file()}


def used(settings: Settings, *prompts: str) -> list[Embedding]:
    """The embeddings whose names appear as words in the prompts (as in AUTOMATIC1111)."""
    offered = available(settings)
    if not offered:
        return []
    words = {w for prompt in prompts for w in re.findall(r"[\w\-.]+", prompt or "")}
    return [Embedding(name, path) for name, path in offered.items() if name in words]


def load_used(base: Any, chosen: list[Embedding]) -> None:
    """Load each chosen embedding into `base` (its tokenizer and text encoder) once; later runs find it there."""
    if not chosen:
        return
    with pipeline_lock(base):
        loaded = base.__dict__.setdefault("_studio_embeddings", set())
        for embedding in chosen:
            if embedding.name in loaded:
                continue
            try:
                base.load_textual_inversion(str(embedding.path), token=embedding.name)
            except Exception as exc:
                raise UserError(
                    f"The embedding {embedding.name!r} does not fit this model: it was probably made for another base "
                    f"model (an SD 1.5 embedding on SDXL, say) ({type(exc).__name__}). Remove it from the prompt."
                ) from None
            loaded.add(embedding.name)
