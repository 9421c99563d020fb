"""Single-file models in STUDIO_CHECKPOINT_DIR (models/checkpoints, ComfyUI's and A1111's layout): the files, their
tensor names read from the header (nothing is loaded), and which tab a file belongs to. The Image tab takes whole
Stable Diffusion checkpoints and the transformers of its families (tabs/image/checkpoints.py); the Video tab takes
Wan transformers (tabs/video/checkpoints.py). Safetensors and GGUF only: neither holds code (a `.ckpt` is a pickle
and is never offered)."""

import functools
from pathlib import Path

SUFFIXES = (".safetensors", ".gguf")
SETTING = "STUDIO_CHECKPOINT_DIR"
# A Wan transformer's first attention, in the original layout (city96's GGUFs, ComfyUI) and in diffusers' own.
WAN_SIGNS = ("blocks.0.self_attn.q.weight", "blocks.0.attn1.to_q.weight")


def files(folder: Path) -> dict[str, Path]:
    """name -> file for each .safetensors and .gguf file in `folder` (its subfolders too)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in SUFFIXES}


def tensor_names(path: Path) -> tuple[str, ...]:
    """The tensor names of a safetensors or GGUF file, read from its header (nothing is loaded), once while the
    file's size and modification time stay the same (each run and each choice in the Model box asks)."""
    stat = path.stat()
    return tuple(_tensors(str(path), stat.st_size, stat.st_mtime_ns))


def tensor_elements(path: Path, name: str) -> int:
    """How many numbers the tensor `name` holds (its shape's product), from the header."""
    stat = path.stat()
    return _tensors(str(path), stat.st_size, stat.st_mtime_ns)[name]


@functools.lru_cache(maxsize=64)
def _tensors(name: str, size: int, modified_ns: int) -> dict[str, int]:
    import math

    path = Path(name)
    if path.suffix.lower() == ".gguf":
        from gguf import GGUFReader

        return {t.name: int(t.n_elements) for t in GGUFReader(str(path)).tensors}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {key: math.prod(f.get_slice(key).get_shape()) for key in f.keys()}


def is_wan(path: Path) -> bool:
    """The file holds a Wan video transformer (the Video tab's), told by its tensor names; an unreadable file is
    not (the tab that lists it says it cannot be read)."""
    try:
        keys = {k.removeprefix("model.diffusion_model.") for k in tensor_names(path)}
    except Exception:  # noqa: BLE001
        return False
    return any(sign in keys for sign in WAN_SIGNS)
