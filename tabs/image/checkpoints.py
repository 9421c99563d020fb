"""Single-file models, the way creators hold them, in STUDIO_CHECKPOINT_DIR (models/checkpoints, ComfyUI's and
A1111's layout), offered in the Model box by file name; the file's tensor names tell its family:

- a whole Stable Diffusion 1.x, 2.x or SDXL checkpoint (civitai-style: UNet, VAE and text encoders in one
  `.safetensors` file, in the original LDM layout) loads with diffusers' `from_single_file`, with the family's
  reference repo giving only the configs and tokenizers (downloaded on first use, a few MB);
- the transformer of a DiT family as one `.safetensors` file or as a GGUF-quantised `.gguf` file (city96-style:
  flux1-schnell-Q4_K_S.gguf) loads with `from_single_file` too (the GGUF one stays quantised in memory,
  `GGUFQuantizationConfig`, computed in the device's dtype), and the rest of the pipeline (text encoders, VAE,
  scheduler) comes from the family's reference repo (without its own transformer).

Safetensors and GGUF only: neither holds code (a `.ckpt` is a pickle and is never offered).
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import checkpoints as single
from core.device import import_lock, place_pipeline
from core.errors import UserError
from core.settings import Settings
from tabs.image import families

SUFFIXES, SETTING, tensor_names = single.SUFFIXES, single.SETTING, single.tensor_names
# Tensor names that tell a transformer's family, in the original (BFL, ComfyUI) layout and in diffusers' own.
SIGNS = [
    ("flux1", ("double_blocks.0.img_attn.qkv.weight", "single_transformer_blocks.0.proj_out.weight")),
    ("sd35", ("joint_blocks.0.x_block.attn.qkv.weight", "transformer_blocks.0.ff_context.net.0.proj.weight")),
    ("qwen-image", ("transformer_blocks.0.img_mod.1.weight", "img_in.weight")),
    ("z-image", ("noise_refiner.0.attention.to_q.weight", "context_refiner.0.attention.to_q.weight")),
]
GUIDED = ("guidance_in.in_layer.weight", "time_text_embed.guidance_embedder.linear_1.weight")  # FLUX.1 [dev]
# A whole LDM checkpoint: its UNet under model.diffusion_model., its text encoders tell the family.
WHOLE = "model.diffusion_model.input_blocks.0.0.weight"
WHOLE_SIGNS = [
    ("sdxl", "conditioner.embedders.1.model.ln_final.weight"),  # CLIP-L and OpenCLIP bigG
    ("sd21", "cond_stage_model.model.ln_final.weight"),  # OpenCLIP ViT-H
    ("sd15", "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"),  # CLIP-L
]
# What a whole checkpoint needs of its family's reference repo: configs, tokenizers, the safety checker (SD 1.x).
CONFIG_FILES = ["model_index.json", "*/*.json", "*/*.txt", "*/*.model", "safety_checker/*.safetensors"]
# The pipeline each family's transformer joins: the reference repo (or, with --tiny, the tiny pipeline of the family).
TINY_BASES = {"flux1": "tiny:flux", "flux1-dev": "tiny:flux", "sd35": "tiny:sd3", "z-image": "tiny:z-image",
              "qwen-image": "tiny:qwen-image", "sd15": "tiny:stable-diffusion", "sd21": "tiny:stable-diffusion",
              "sdxl": "tiny:stable-diffusion"}  # fmt: skip
BASES = {"flux1-dev": "black-forest-labs/FLUX.1-dev"}


@dataclass(frozen=True)
class Checkpoint:
    name: str  # the file's name, as offered
    path: Path
    family: str  # a key of families.FAMILIES
    base: str  # the repo (or tiny model) the rest of the pipeline comes from
    quantization: str  # "gguf" (its tensors' types say which: Q4_K, Q8_0...) or "none"
    whole: bool = False  # a whole pipeline (an SD 1.x/2.x/XL checkpoint), not a transformer alone


def available(settings: Settings) -> dict[str, Path]:
    """name -> file for each .safetensors and .gguf file in the checkpoints folder (its subfolders too) but the
    Video tab's (Wan transformers). Only these names are ever loaded: a name is never turned into a path."""
    return {name: p for name, p in single.files(settings.checkpoint_dir).items() if not single.is_wan(p)}


def identify(settings: Settings, name: str) -> Checkpoint:
    """The checkpoint called `name`, its family told by its tensor names; a file of no known family gets a sentence."""
    path = available(settings)[name]
    try:
        names = set(tensor_names(path))
    except Exception as exc:
        why = type(exc).__name__
        raise UserError(f"The checkpoint {name!r} cannot be read ({why}): is the file complete?") from None
    if WHOLE in names and path.suffix.lower() == ".safetensors":
        family = next((key for key, sign in WHOLE_SIGNS if sign in names), None)
        if family is None:
            raise UserError(
                f"The checkpoint {name!r} is a Stable Diffusion UNet whose text encoders the studio does not know (an "
                "SDXL refiner, or a file without its text encoders): use an SD 1.x, 2.x or SDXL base checkpoint."
            )
        base = TINY_BASES[family] if settings.tiny else families.FAMILIES[family].config_repo
        return Checkpoint(name, path, family, base, "none", whole=True)
    keys = {k.removeprefix("model.diffusion_model.") for k in names}
    family = next((key for key, signs in SIGNS if any(s in keys for s in signs)), None)
    if family is None:
        raise UserError(
            f"The checkpoint {name!r} is neither a whole Stable Diffusion 1.x, 2.x or SDXL checkpoint nor a "
            "transformer of FLUX.1, SD 3.5, Qwen-Image or Z-Image, the models the studio loads from one file: use a "
            "diffusers folder of it."
        )
    variant = "flux1-dev" if family == "flux1" and any(g in keys for g in GUIDED) else family
    base = TINY_BASES[variant] if settings.tiny else BASES.get(variant) or families.FAMILIES[family].config_repo
    return Checkpoint(name, path, family, base, "gguf" if path.suffix.lower() == ".gguf" else "none")


def load(checkpoint: Checkpoint, base_folder: Path, device: str, dtype: Any) -> Any:
    """The family's pipeline from `base_folder` (the reference repo's files) with the checkpoint's weights."""
    with import_lock:  # see core.device: imports of these libraries are not thread-safe
        import diffusers
        import torch
        from diffusers import GGUFQuantizationConfig

    pipeline_class = getattr(diffusers, json.loads((base_folder / "model_index.json").read_text())["_class_name"])
    if checkpoint.whole:  # the whole pipeline's weights from the file; configs and tokenizers from the folder
        options = {"add_watermarker": False} if "XL" in pipeline_class.__name__ else {}  # the studio marks pictures
        pipe = pipeline_class.from_single_file(str(checkpoint.path), config=str(base_folder), dtype=dtype, **options)
    else:  # the transformer from the file, the rest of the pipeline from the folder
        transformer_class = json.loads((base_folder / "transformer" / "config.json").read_text())["_class_name"]
        options: dict[str, Any] = {}
        if checkpoint.quantization == "gguf":
            compute = dtype if dtype != torch.float16 else torch.bfloat16  # FLUX.1 overflows in float16
            options["quantization_config"] = GGUFQuantizationConfig(compute_dtype=compute)
        transformer = getattr(diffusers, transformer_class).from_single_file(
            str(checkpoint.path), config=str(base_folder), subfolder="transformer", dtype=dtype, **options
        )
        pipe = pipeline_class.from_pretrained(base_folder, transformer=transformer, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    place_pipeline(pipe, device, checkpoint.path.stat().st_size)
    pipe._studio_checkpoint = checkpoint  # the recipe says which file and quantisation ran
    return pipe


def recipe(pipe: Any) -> dict[str, Any]:
    checkpoint = getattr(pipe, "_studio_checkpoint", None)
    if checkpoint is None:
        return {}
    from core import outputs

    return {
        "checkpoint": {
            "file": checkpoint.name,
            "sha256": outputs.file_sha256(checkpoint.path),
            "quantization": checkpoint.quantization,
            "base": checkpoint.base,
        }
    }
