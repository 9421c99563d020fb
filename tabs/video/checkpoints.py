"""Wan transformers as single files: a GGUF-quantised one (city96-style, e.g. wan2.1-t2v-14b-Q4_K_M.gguf: Wan 14B
in about 10 GB) or a safetensors one, from the curated list (downloaded on first use) or from the checkpoints folder
(STUDIO_CHECKPOINT_DIR, where ComfyUI users keep them). The file gives the transformer (a GGUF one stays quantised in
memory and is computed in the device's dtype); the rest of the pipeline (UMT5 text encoder, VAE, scheduler) comes
from the matching Wan-AI repo, without that repo's own transformer. The file's tensors tell which Wan it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import checkpoints as single
from core import hub
from core.device import import_lock, place_pipeline
from core.errors import UserError
from core.settings import Settings


@dataclass(frozen=True)
class WanFile:
    repo: str  # where the file comes from: a Hub repo, a tiny model, or "" for the checkpoints folder
    file: str  # its name there
    base: str  # the Wan-AI repo (or tiny model) the rest of the pipeline comes from
    quantization: str  # "gguf" or "none"
    path: Path | None = None  # a file of the checkpoints folder
    approx_bytes: int = 0  # its size, where the Hub's pages give it rounded (the manifest records no exact size)


CURATED = {  # city96's GGUFs of Wan 2.1 14B (Apache-2.0, as Wan): Q4_K_M is 10.1 GB, Q3_K_S 6.99, Q6_K 12.5
    "city96/Wan2.1-T2V-14B-gguf:Q4_K_M": WanFile(
        "city96/Wan2.1-T2V-14B-gguf",
        "wan2.1-t2v-14b-Q4_K_M.gguf",
        "Wan-AI/Wan2.1-T2V-14B-Diffusers",
        "gguf",
        approx_bytes=10_100_000_000,
    ),
}
TINY = {"tiny:wan-gguf": WanFile("tiny:wan-gguf", "tiny-wan-Q8_0.gguf", "tiny:wan", "gguf")}
# The Wan-AI repo whose configs, text encoder and VAE a transformer file joins, by its width (the first attention's
# query holds width x width numbers) and whether it reads a picture (an image-to-video model has an image embedder).
BASES = {
    (1536, False): "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    (3072, False): "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
    (5120, False): "Wan-AI/Wan2.1-T2V-14B-Diffusers",
    (5120, True): "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
}
IMAGE_SIGNS = ("img_emb.proj.0.weight", "condition_embedder.image_embedder.ff.net.0.proj.weight")


def offered(settings: Settings) -> dict[str, WanFile]:
    """The curated files (the tiny one with --tiny) and each Wan transformer in the checkpoints folder, by name."""
    found = {}
    for name, path in single.files(settings.checkpoint_dir).items():
        if single.is_wan(path):
            found[name] = WanFile("", name, _base_of(settings, name, path), _quantization(path), path)
    return {**(TINY if settings.tiny else CURATED), **found}


def _quantization(path: Path) -> str:
    return "gguf" if path.suffix.lower() == ".gguf" else "none"


def _base_of(settings: Settings, name: str, path: Path) -> str:
    keys = {k.removeprefix("model.diffusion_model.") for k in single.tensor_names(path)}
    query = next(k for k in single.WAN_SIGNS if k in keys)
    prefixed = query if query in single.tensor_names(path) else "model.diffusion_model." + query
    width = round(single.tensor_elements(path, prefixed) ** 0.5)
    if settings.tiny:
        return "tiny:wan"
    image = any(sign in keys for sign in IMAGE_SIGNS)
    return BASES.get((width, image), "")


def transformer_file(cache: Any, settings: Settings, chosen: WanFile) -> Path:
    """The file on this machine: from the checkpoints folder, or downloaded once from its repo (that file only)."""
    if chosen.path is not None:
        return chosen.path
    folder = hub.resolve(
        chosen.repo, setting="STUDIO_VIDEO_MODEL", offline=cache.offline, tiny_dir=cache.tiny_dir,
        allow_patterns=[chosen.file],
    )  # fmt: skip
    return folder / chosen.file


def memory_bytes(chosen: WanFile, size: int, dtype: Any) -> int:
    """What the transformer of a file of `size` bytes takes in memory: a GGUF stays quantised (about its size); a
    safetensors file, stored in 16 bits as Wan's are, takes twice its size as float32."""
    from core.models import BYTES_PER_VALUE

    if chosen.quantization == "gguf":
        return size
    return size * BYTES_PER_VALUE.get(str(dtype).replace("torch.", ""), 4) // 2


def known_size(chosen: WanFile) -> int:
    """The file's size before any download: on disk, or the Hub's rounded figure (0 where neither is known)."""
    if chosen.path is not None:
        return chosen.path.stat().st_size
    return chosen.approx_bytes


def base_options(chosen: WanFile, name: str) -> dict:
    """What the ModelCache takes of the base repo: everything but its own transformer's weights."""
    if not chosen.base:
        raise UserError(
            f"The checkpoint {name!r} is a Wan transformer of a size the studio does not know (Wan 2.1 1.3B and 14B, "
            "Wan 2.1 I2V 14B and Wan 2.2 TI2V 5B are known): use a diffusers folder of it."
        )
    return dict(name=f"checkpoint:{name}", ignore_patterns=["transformer/*.safetensors", "transformer_2/*"])


def load(file: Path, chosen: WanFile, base_folder: Path, device: str, dtype: Any) -> Any:
    """The base's pipeline with the file's transformer (GGUF: quantised, computed in `dtype`); the VAE in float32."""
    with import_lock:
        import diffusers
        import torch
        from diffusers import GGUFQuantizationConfig, WanTransformer3DModel

    options: dict[str, Any] = {}
    if chosen.quantization == "gguf":
        options["quantization_config"] = GGUFQuantizationConfig(compute_dtype=dtype)
    transformer = WanTransformer3DModel.from_single_file(
        str(file), config=str(base_folder), subfolder="transformer", dtype=dtype, **options
    )
    name = json.loads((Path(base_folder) / "model_index.json").read_text())["_class_name"]
    pipe = getattr(diffusers, name).from_pretrained(base_folder, transformer=transformer, dtype=dtype)
    pipe.vae.to(torch.float32)
    pipe.set_progress_bar_config(disable=True)
    pipe._studio_offloaded = place_pipeline(pipe, device, file.stat().st_size)
    if pipe._studio_offloaded:
        pipe.vae.enable_tiling()
    pipe._studio_checkpoint = {"file": file.name, "quantization": chosen.quantization, "base": chosen.base}
    return pipe
