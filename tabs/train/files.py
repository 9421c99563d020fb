"""The Train tab's files: checkpoints (the LoRA, the optimizer and the random generator's state, so that Resume goes
on exactly where Stop left off) and the finished LoRA file, with kohya's `ss_*` metadata and the studio's recipe."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import outputs
from core.device import imported
from core.errors import UserError
from core.settings import Settings
from tabs.train.trainer import Trainer

if TYPE_CHECKING:  # (the engine imports this module)
    from tabs.train.dataset import Picture
    from tabs.train.engine import Base, TrainParams


KEEP_CHECKPOINTS = 20  # trainings whose checkpoints are kept (the most recently saved); older ones are removed


def checkpoint_folder(settings: Settings, name: str, base: str, dataset: list[dict]) -> Path:
    """Where a training's checkpoints go: its name and a digest of its base model, pictures and captions. Two
    trainings of one name with other pictures (two visitors of a shared studio) never overwrite each other's
    checkpoint, and Resume finds the one made from the same pictures."""
    digest = hashlib.sha256(json.dumps([base, dataset], sort_keys=True).encode()).hexdigest()[:16]
    return Path(settings.cache_dir) / "training" / f"{name}-{digest}"


def prune_checkpoints(folder: Path, keep: int = KEEP_CHECKPOINTS) -> None:
    """Only the `keep` most recently saved checkpoints stay (each holds a LoRA and its optimizer's state): the
    training folder cannot grow without end on a studio many people train on."""
    kept = [f for f in folder.parent.iterdir() if f.is_dir() and (f / "info.json").exists()]
    kept.sort(key=lambda f: (f / "info.json").stat().st_mtime_ns, reverse=True)
    for old in kept[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def dataset_facts(pictures: list[Picture], prompts: list[str], sizes: list[tuple[int, int]]) -> list[dict]:
    """Each picture as the recipe and the checkpoints name it: file name, SHA-256, caption, size in training."""
    return [
        {"name": p.name, "sha256": p.sha256, "caption": prompt, "size": list(size)}
        for p, prompt, size in zip(pictures, prompts, sizes, strict=True)
    ]


def save_checkpoint(folder: Path, trainer: Trainer, optimizer: Any, generator: Any, info: dict) -> None:
    from safetensors.torch import save_file

    torch = imported("torch")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({**trainer.state(), "studio.generator_state": generator.get_state()}, tmp / "lora.safetensors")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")  # read back with weights_only=True: tensors and numbers
    (tmp / "info.json").write_text(json.dumps(info))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    prune_checkpoints(folder)


def resume(folder: Path, info: dict, trainer: Trainer, optimizer: Any, generator: Any) -> dict:
    """The checkpoint's state put back, once it is known to be this training's (same pictures, base and shape)."""
    from safetensors.torch import load_file

    torch = imported("torch")
    if not (folder / "info.json").exists():
        others = folder.parent.glob(f"{info['name']}-*/info.json") if folder.parent.is_dir() else []
        if any(json.loads(f.read_text()).get("name") == info["name"] for f in others):
            raise UserError(
                f"The checkpoint of {info['name']!r} was made with other pictures and captions, another base "
                "model or another bucket choice: resume (resume) with the same ones, or start again."
            )
        raise UserError(f"There is no checkpoint of {info['name']!r} to resume (resume): train it first.")
    saved = json.loads((folder / "info.json").read_text())
    compared = (("base", "base model"), ("rank", "rank"), ("resolution", "resolution"),
                ("train_text_encoder", "text encoder choice"), ("buckets", "bucket choice"),
                ("optimizer", "optimizer"))  # fmt: skip
    for key, what in compared:
        if saved.get(key) != info[key]:
            raise UserError(
                f"The checkpoint of {info['name']!r} was made with other {what}: resume (resume) with the same "
                "pictures, captions, base model, rank and resolution, or start again."
            )
    if saved["step"] >= info["steps"]:
        raise UserError(f"The checkpoint is at step {saved['step']}: ask for more steps (steps) to go on.")
    state = load_file(folder / "lora.safetensors")
    generator.set_state(state.pop("studio.generator_state"))
    trainer.load_state(state)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    return saved


# -- the LoRA file -------------------------------------------------------------------------------------------------
def metadata(
    optimizer: str, params: TrainParams, model_id: str, base: Base, facts: list[dict], started: float, tensors: dict
) -> dict:
    """kohya's `ss_*` keys (every value a string, as sd-scripts writes them), the model spec, the studio's trigger."""
    from safetensors.torch import save

    tags: Counter = Counter()
    for fact in facts:
        tags.update(t.strip().lower() for t in fact["caption"].split(",") if t.strip())
    folder = f"1_{params.trigger or params.name}"
    plain = save(tensors)  # the data after the header, whatever the metadata: sshs_model_hash, as kohya hashes it
    data_hash = hashlib.sha256(plain[8 + int.from_bytes(plain[:8], "little") :]).hexdigest()
    side = params.resolution
    sizes = Counter(tuple(fact["size"]) for fact in facts)
    bucket_info = {"buckets": {str(i): {"resolution": list(size), "count": n} for i, (size, n) in
                               enumerate(sorted(sizes.items()))}}  # fmt: skip
    meta = {
        "ss_output_name": params.name,
        "ss_sd_model_name": model_id,
        "ss_base_model_version": base.version,
        "ss_v2": str(base.version == "sd_v2"),
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(params.rank),
        "ss_network_alpha": str(float(params.rank)),
        "ss_resolution": str((side, side)),
        "ss_steps": str(params.steps),
        "ss_max_train_steps": str(params.steps),
        "ss_learning_rate": str(params.learning_rate),
        "ss_unet_lr": str(params.learning_rate),
        "ss_text_encoder_lr": str(params.learning_rate) if params.train_text_encoder else "None",
        "ss_batch_size_per_device": str(params.batch_size),
        "ss_num_train_images": str(len(facts)),
        "ss_seed": str(params.seed),
        "ss_enable_bucket": str(params.buckets),
        "ss_bucket_info": json.dumps(bucket_info),
        "ss_optimizer": optimizer,
        "ss_training_started_at": str(started),
        "ss_training_finished_at": str(time.time()),
        "ss_tag_frequency": json.dumps({folder: dict(tags)}),
        "ss_dataset_dirs": json.dumps({folder: {"n_repeats": 1, "img_count": len(facts)}}),
        "ss_training_comment": f"trigger: {params.trigger}" if params.trigger else "",
        "sshs_model_hash": data_hash,
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": base.architecture,
        "modelspec.implementation": "diffusers",
        "modelspec.title": params.name,
        "modelspec.resolution": f"{side}x{side}",
        "modelspec.trigger_phrase": params.trigger,
        "modelspec.date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "format": "pt",
    }
    return meta


def write_lora(
    settings: Settings, params: TrainParams, tensors: dict, metadata: dict, recipe: dict, shared: bool = True
) -> Path:
    """The LoRA saved as an output (outputs/train/..., its recipe beside it), then, when `shared`, copied into the
    LoRA folder under its name, where every Image tab finds it at once (otherwise it stays its trainer's: the Image
    tab finds it through their History, core.loras.own)."""
    from safetensors.torch import save_file

    metadata = {**metadata, "studio_recipe": json.dumps(recipe, default=str)}
    path = outputs.new_output_path(settings.output_dir, "train", params.name, "safetensors")
    with outputs.atomic_target(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)
    outputs.save_recipe(path, recipe)
    if not shared:
        return path
    target = Path(settings.lora_dir) / f"{params.name}.safetensors"
    with outputs.atomic_target(target) as tmp:
        shutil.copyfile(path, tmp)
    return path
