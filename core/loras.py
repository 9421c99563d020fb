"""LoRAs for the Image and Video tabs: the .safetensors files in STUDIO_LORA_DIR, used with AUTOMATIC1111's prompt
syntax `<lora:name:0.8>` (so prompts copied from civitai-style pages work). diffusers loads them (its own and PEFT's
format, and Kohya's/A1111's, which it converts) into the loaded pipeline once; after that a run only sets the adapters
and their weights, so switching weights never reloads the base model, and a run without LoRAs turns them all off.
"""

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import checks, outputs
from core.errors import UserError
from core.settings import Settings

TAG = re.compile(r"<lora:([^:<>]*)(?::([^:<>]*))?>", re.IGNORECASE)  # <lora:name> or <lora:name:weight>
MAX_LORAS = 8  # adapters in one run
WEIGHT = (-4.0, 4.0)  # A1111 takes any number; beyond this a LoRA only makes noise


@dataclass(frozen=True)
class Lora:
    name: str  # the file's name without .safetensors
    weight: float
    path: Path

    @property
    def adapter(self) -> str:
        """The adapter's name inside the pipeline, made from the very file (its path, size and time): two visitors'
        LoRAs of one name, or a LoRA replaced by a new training, never pass for one another. (Not the file's name
        itself: LoRA files are often called like "add_detail_v1.5", and peft refuses a dot in an adapter name.)"""
        try:
            stat = self.path.stat()
            identity = f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        except OSError:
            identity = str(self.path)
        return "studio" + hashlib.sha1(identity.encode()).hexdigest()[:12]

    def recipe(self) -> dict[str, Any]:
        """What the recipe says of it (the hash names the very file; AUTOMATIC1111 shows its first 12 digits)."""
        return {"name": self.name, "weight": self.weight, "sha256": outputs.file_sha256(self.path)}


def available(settings: Settings) -> dict[str, Path]:
    """The LoRAs a user may choose: name -> file, for each .safetensors file in the LoRA folder (its subfolders
    too). Only these names are ever loaded: a name is never turned into a path."""
    folder = Path(settings.lora_dir)
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.rglob("*.safetensors")) if p.is_file() and not p.name.startswith(".")}


def metadata(path: Path) -> dict[str, str]:
    """A safetensors file's metadata, from its header alone (8 bytes of length, then JSON), as AUTOMATIC1111,
    ComfyUI and civitai read it; {} for a file without any."""
    import json
    import struct

    with open(path, "rb") as f:
        length = struct.unpack("<Q", f.read(8))[0]
        if length > 100_000_000:
            raise ValueError("not a safetensors header")
        return json.loads(f.read(length)).get("__metadata__", {}) or {}


def trigger_of(path: Path) -> str:
    """The trigger words a LoRA was trained with, where its metadata says them (the model spec's trigger phrase, as
    the Train tab and kohya's scripts write it); "" otherwise."""
    try:
        return str(metadata(path).get("modelspec.trigger_phrase") or "").strip()
    except (OSError, ValueError):
        return ""


def split_prompt(prompt: str) -> tuple[str, list[tuple[str, str | None]]]:
    """(the prompt without its <lora:...> tags, the tags as (name, weight text)). The model never reads the tags."""
    tags = [(m.group(1).strip(), m.group(2)) for m in TAG.finditer(prompt or "")]
    clean = re.sub(r"\s{2,}", " ", TAG.sub("", prompt or "")).strip(" ,")
    return clean, tags


def own(settings: Settings, history: list[dict] | None) -> dict[str, Path]:
    """The LoRAs this visitor trained on a shared studio, which stay theirs (the Train tab leaves them out of the
    LoRA folder there): name -> file, from the visitor's History, the newest first. The History is server-side state
    (core.history), so no request can name another visitor's file; only .safetensors files the Train tab saved
    under the output folder count."""
    found: dict[str, Path] = {}
    trained = (Path(settings.output_dir) / "train").resolve()
    for entry in history or []:
        if not isinstance(entry, dict) or entry.get("tab") != "Train":
            continue
        for name in entry.get("files") or []:
            path = Path(str(name))
            if path.suffix != ".safetensors" or not path.is_file() or not path.resolve().is_relative_to(trained):
                continue
            try:
                lora_name = str(metadata(path).get("ss_output_name") or path.stem)
            except (OSError, ValueError):
                continue
            found.setdefault(lora_name, path)
    return found


def check_loras(settings: Settings, prompt: str, mine: dict[str, Path] | None = None) -> tuple[str, list[Lora]]:
    """The prompt the model reads and the LoRAs it asks for, checked: each must be a file of the LoRA folder or one
    of `mine` (see own), which wins where both have the name."""
    clean, tags = split_prompt(prompt)
    if not tags:
        return clean, []
    if len(tags) > MAX_LORAS:
        raise UserError(f"The prompt asks for {len(tags)} LoRAs; the limit is {MAX_LORAS}.")
    offered = {**available(settings), **(mine or {})}
    chosen: dict[str, Lora] = {}
    for name, weight in tags:
        if name not in offered:
            known = ", ".join(list(offered)[:8]) or "none yet"
            yours = " or among the LoRAs you trained" if mine else ""
            raise UserError(
                f"There is no LoRA called {name!r:.60} in the LoRA folder ({settings.lora_dir}, STUDIO_LORA_DIR; "
                f"only .safetensors files){yours}. Available: {known}."
            )
        what = checks.named("lora_weight", f"weight of the LoRA {name!r}")
        value = 1.0 if weight in (None, "") else float(checks.check_number(weight, what, *WEIGHT))
        chosen[name] = Lora(name, value, offered[name])  # a name twice: the last weight counts, as in A1111
    return clean, list(chosen.values())


IP_ADAPTER_USED = "_studio_had_ip_adapter"  # set on a base pipeline whose UNet has had an IP-Adapter (ip_adapter.py)


def pipeline_lock(pipe: Any) -> threading.Lock:
    """One lock per loaded pipeline: the adapters (LoRAs, an IP-Adapter) are the pipeline's, shared by its runs. A
    plain Lock, not an RLock: a run is a generator that Gradio resumes on any of its threads, and it may release
    the lock on another thread than the one that took it."""
    return pipe.__dict__.setdefault("_studio_adapter_lock", threading.Lock())


def turn(base: Any, changes: bool) -> contextlib.AbstractContextManager:
    """The run's turn at the adapters of `base`, for the length of the run: its lock when the run changes them
    (`changes`: it asks for LoRAs or an IP-Adapter) or when any run ever did (so none meets another's adapters);
    no lock on a model that never had one."""
    shared = changes or any(base.get_list_adapters().values()) or base.__dict__.get(IP_ADAPTER_USED)
    return pipeline_lock(base) if shared else contextlib.nullcontext()


def _load(base: Any, lora: Lora, family: str) -> None:
    loaded = {name for names in base.get_list_adapters().values() for name in names}
    if lora.adapter in loaded:
        return
    why = ""
    experts = ("high", "low") if getattr(base, "transformer_2", None) is not None else ("high",)
    mine = expert_of(lora.name) if len(experts) == 2 else None
    try:
        for expert in experts:  # Wan 2.2 A14B: the high-noise expert (transformer) and the low-noise one
            if mine in (None, expert):
                base.load_lora_weights(
                    str(lora.path.parent), weight_name=lora.path.name, adapter_name=lora.adapter,
                    **({"load_into_transformer_2": True} if expert == "low" else {}),
                )  # fmt: skip
    except Exception as exc:
        why = f" ({type(exc).__name__})"
    loaded = {name for names in base.get_list_adapters().values() for name in names}
    if why or lora.adapter not in loaded:  # a LoRA for another family may load no weights at all, silently
        with contextlib.suppress(Exception):  # leave nothing half-loaded behind
            base.delete_adapters(lora.adapter)
        raise UserError(
            f"The LoRA {lora.name!r} does not fit this model: it was probably made for another base model (an SD "
            f"1.5 LoRA on SDXL or FLUX.1, say) or is not a LoRA{why}. This is a {family} model: "
            "choose a LoRA made for it."
        )


HIGH_NOISE = re.compile(r"(?i:high[ _.-]?noise)|(?<![A-Za-z])(?:HIGH|HN)(?![A-Za-z])")
LOW_NOISE = re.compile(r"(?i:low[ _.-]?noise)|(?<![A-Za-z])(?:LOW|LN)(?![A-Za-z])")


def expert_of(name: str) -> str | None:
    """Which expert of a two-expert model (Wan 2.2 A14B) a LoRA is for, from its name as such pairs are published
    ("..._high_noise", "..._HIGH_fp16", "LowNoise"): "high", "low", or None (both experts take it, as Wan 2.1 LoRAs
    are used)."""
    high, low = bool(HIGH_NOISE.search(name)), bool(LOW_NOISE.search(name))
    return "high" if high and not low else "low" if low and not high else None


MAX_LOADED = 16  # adapters kept loaded in one pipeline; beyond that the ones this run does not use are dropped


def _make_room(base: Any, wanted: set[str]) -> None:
    """Every LoRA a run loads stays loaded for the next run; past MAX_LOADED (many visitors' own LoRAs), the others
    are dropped, so the pipeline's memory stays bounded."""
    loaded = [name for names in base.get_list_adapters().values() for name in names]
    loaded = list(dict.fromkeys(loaded))
    if len(set(loaded) | wanted) > MAX_LOADED:
        dropped = [name for name in loaded if name not in wanted]
        if dropped:
            base.delete_adapters(dropped)


@contextlib.contextmanager
def applied(base: Any, pipe: Any, chosen: list[Lora], family: str = "") -> Iterator[None]:
    """For the block: the chosen LoRAs on (loaded into `base` the first time, their weights set), every other one
    off; with none chosen, all off. `pipe` is the run's own pipeline around `base`'s modules; `family` names the
    model in a refusal (FLUX.1, Wan...). The caller holds the run's turn (see turn), so two users' LoRAs never mix."""
    if not chosen and not any(base.get_list_adapters().values()):
        yield  # no LoRA was ever loaded into this model: nothing to switch off
        return
    _make_room(base, {lora.adapter for lora in chosen})
    for lora in chosen:
        _load(base, lora, family or type(base).__name__)
    if chosen:
        pipe.enable_lora()
        pipe.set_adapters([lora.adapter for lora in chosen], [lora.weight for lora in chosen])
    else:
        pipe.disable_lora()
    yield
