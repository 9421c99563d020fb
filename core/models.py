"""ModelCache: loads each model once, shares it across tabs and users, and evicts by bytes under a budget.

- Key: (kind, model id or path, revision, device, dtype). A second request for the same key loads nothing.
- Single-flight: concurrent first requests for one key wait for one load.
- Budget: before a load, least recently used idle models are evicted until the new one fits (estimated from
  the size of its safetensors files); a model in use is never evicted. Freed memory goes back (gc, empty_cache).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from core import device as devices
from core import hub

log = logging.getLogger("studio.models")

ProgressFn = Callable[[float, str], None]


class ModelKey(NamedTuple):
    kind: str  # "text", "image", "music"...
    model: str  # hub id or local path
    revision: str | None
    device: str
    dtype: str


@dataclass
class _Entry:
    key: ModelKey
    value: Any = None
    nbytes: int = 0
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)
    ready: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    load_seconds: float = 0.0


def measure_bytes(obj: Any) -> int:
    """Bytes held by the tensors of a model, a diffusers pipeline, or a container of them (shared storage once)."""
    seen: set[int] = set()
    total = 0

    def visit(x: Any) -> None:
        nonlocal total
        if id(x) in seen or x is None:
            return
        seen.add(id(x))
        import torch

        if isinstance(x, torch.nn.Module):
            for t in list(x.parameters()) + list(x.buffers()):
                ptr = t.untyped_storage().data_ptr()
                if ptr not in seen:
                    seen.add(ptr)
                    total += t.untyped_storage().nbytes()
        elif isinstance(x, torch.Tensor):
            total += x.untyped_storage().nbytes()
        elif isinstance(x, dict):
            for v in x.values():
                visit(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                visit(v)
        elif isinstance(getattr(x, "resident_bytes", None), int):  # a model of another runtime (ONNX) says its size
            total += x.resident_bytes
        elif hasattr(x, "components") and isinstance(x.components, dict):  # diffusers pipelines
            visit(x.components)
        elif hasattr(x, "__dataclass_fields__"):
            for name in x.__dataclass_fields__:
                visit(getattr(x, name))

    visit(obj)
    return total


class ModelCache:
    def __init__(
        self,
        budget_bytes: int | None = None,
        device: str = "auto",
        offline: bool = False,
        tiny_dir: Path | None = None,
    ) -> None:
        self._requested_device = device
        self._device: str | None = None
        self._budget = budget_bytes
        self.offline = offline
        self.tiny_dir = tiny_dir
        self._lock = threading.Lock()
        # Loads of different models run one at a time: from_pretrained changes process-wide torch state while it
        # builds a model (meta device, default dtype), and two at once corrupt each other ("meta tensor").
        self._load_lock = threading.Lock()
        self._entries: dict[ModelKey, _Entry] = {}
        self.loads = 0  # models actually loaded since start (a cache hit adds nothing)

    # -- device and budget (decided on first use, so the UI serves before torch is imported) --
    @property
    def device(self) -> str:
        if self._device is None:
            self._device = devices.pick_device(self._requested_device)
        return self._device

    @property
    def device_picked(self) -> bool:
        """False until the first model load (asking earlier would import torch)."""
        return self._device is not None

    @property
    def dtype(self):
        return devices.pick_dtype(self.device)

    @property
    def budget_bytes(self) -> int:
        if self._budget is None:
            self._budget = devices.default_budget_bytes(self.device)
        return self._budget

    # -- the core: acquire a model, loading it at most once --
    def acquire(self, key: ModelKey, loader: Callable[[], Any], estimate_bytes: int = 0) -> Any:
        """Yield the model for `key`, loading it with `loader()` (under the import lock) if nobody has. It is not
        evicted while held."""

        def locked() -> Any:
            with devices.import_lock:
                return loader()

        return self._acquire(key, locked, estimate_bytes)

    @contextlib.contextmanager
    def _acquire(self, key: ModelKey, loader: Callable[[], Any], estimate_bytes: int = 0) -> Iterator[Any]:
        entry = self._get_or_load(key, loader, estimate_bytes)
        out_of_memory = False
        try:
            yield entry.value
        except BaseException as exc:
            out_of_memory = devices.is_out_of_memory(exc)
            raise
        finally:
            with self._lock:
                entry.users -= 1
                entry.last_used = time.monotonic()
            if out_of_memory:  # give back all we can so that the next request has room
                unloaded, kept = self.unload()
                log.warning("out of memory: unloaded %d idle model(s), %d in use elsewhere", unloaded, kept)

    def _get_or_load(self, key: ModelKey, loader: Callable[[], Any], estimate_bytes: int) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if owner:
                entry = self._entries[key] = _Entry(key=key)
            entry.users += 1
        if owner:
            return self._load(entry, loader, estimate_bytes)
        entry.ready.wait()
        if entry.error is not None:  # the load we waited for failed (and was removed): share its error
            with self._lock:
                entry.users -= 1
            raise entry.error
        return entry

    def _load(self, entry: _Entry, loader: Callable[[], Any], estimate_bytes: int) -> _Entry:
        start = time.perf_counter()
        try:
            self._make_room(estimate_bytes, keep=entry.key)
            with self._load_lock:
                value = devices.in_passing_thread(loader)  # no OpenMP team left behind (see there)
            entry.value = value
            entry.nbytes = measure_bytes(value)
            entry.load_seconds = time.perf_counter() - start
            with self._lock:
                self.loads += 1
            self._make_room(0, keep=entry.key)  # the real size may exceed the estimate
            log.info(
                "loaded %s %s in %.1f s (%.0f MB)",
                entry.key.kind,
                entry.key.model,
                entry.load_seconds,
                entry.nbytes / 1e6,
            )
            return entry
        except BaseException as exc:
            entry.error = exc
            with self._lock:
                self._entries.pop(entry.key, None)
            devices.free_memory()
            raise
        finally:
            entry.ready.set()

    def _make_room(self, needed: int, keep: ModelKey) -> None:
        """Evict idle models, least recently used first, until `needed` more bytes fit the budget."""
        evicted: list[_Entry] = []
        budget = self.budget_bytes
        with self._lock:
            used = sum(e.nbytes for e in self._entries.values())
            idle = sorted(
                (e for e in self._entries.values() if e.users == 0 and e.ready.is_set() and e.key != keep),
                key=lambda e: e.last_used,
            )
            for e in idle:
                if used + needed <= budget:
                    break
                del self._entries[e.key]
                used -= e.nbytes
                evicted.append(e)
        for e in evicted:
            log.info(
                "evicted %s %s (%.0f MB) to stay under the memory budget", e.key.kind, e.key.model, e.nbytes / 1e6
            )
            e.value = None
        if evicted:
            devices.free_memory()
        if used + needed > budget:
            log.warning("models in use need %.0f MB, over the %.0f MB budget", (used + needed) / 1e6, budget / 1e6)

    # -- the usual way in for a tab: resolve files, key by device/dtype, load with progress --
    @contextlib.contextmanager
    def model(
        self,
        kind: str,
        model_id: str,
        load: Callable[[Path, str, Any], Any],
        *,
        setting: str,
        revision: str | None = None,
        progress: ProgressFn | None = None,
        name: str | None = None,
        dtype: Any = None,
        extra_bytes: int = 0,
        **resolve_options: Any,
    ) -> Iterator[Any]:
        """Yield `load(folder, device, dtype)` for `model_id`, cached. `setting` names the STUDIO_* override; `name`
        keys it in the cache instead of `model_id`, where one repo holds several models (IP-Adapters); `dtype`
        replaces the device's usual one (text models are never fp16); `extra_bytes`: memory the load takes besides
        the folder's weights (a transformer from a file of its own, such as a GGUF), counted against the budget."""
        dtype = self.dtype if dtype is None else dtype
        key = ModelKey(kind, name or model_id, revision, self.device, str(dtype).replace("torch.", ""))

        def before_download(download: hub.Download) -> None:
            """Refuse a model the memory budget cannot hold before fetching gigabytes of it; say the size."""
            needed = memory_needed(download, dtype) + extra_bytes
            refusal = over_budget(self, model_id, needed, f"as {str(dtype).replace('torch.', '')} on {self.device}")
            if refusal:
                raise refusal
            if progress and download.missing:
                size = f"{download.bytes / 1e9:.1f} GB" if download.sized else "its size is not recorded"
                progress(0.0, f"Downloading {model_id} ({size}; once, then it is kept on this machine)…")

        def loader() -> Any:
            if progress:
                progress(0.0, f"Getting {model_id}…")
            folder = hub.resolve(
                model_id,
                setting=setting,
                offline=self.offline,
                revision=revision,
                tiny_dir=self.tiny_dir,
                before_download=before_download,
                **resolve_options,
            )
            self._make_room(hub.weight_bytes(folder) + extra_bytes, keep=key)
            if progress:
                progress(0.0, f"Loading {model_id} on {self.device}…")
            try:
                with devices.import_lock:  # the load's imports never race another thread's (see core.device)
                    return load(folder, self.device, dtype)
            except Exception as exc:  # a folder that does not load: one sentence (memory errors stay as they are)
                if isinstance(exc, (hub.ModelUnavailable, MemoryError)) or "OutOfMemory" in type(exc).__name__:
                    raise
                raise hub.unloadable(model_id, folder, setting, exc) from exc

        with self._acquire(key, loader) as value:  # the download outside the import lock, the load inside
            yield value

    # -- for the model panel --
    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            entries = [e for e in self._entries.values() if e.ready.is_set() and e.error is None]
            return [
                {
                    "kind": e.key.kind,
                    "model": e.key.model,
                    "device": e.key.device,
                    "dtype": e.key.dtype,
                    "megabytes": round(e.nbytes / 1e6, 1),
                    "in_use": e.users > 0,
                    "load_seconds": round(e.load_seconds, 2),
                }
                for e in sorted(entries, key=lambda e: -e.last_used)
            ]

    def used_bytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())

    def forget(self, key: ModelKey) -> bool:
        """Drop the model under `key` if nobody uses it (True; the next acquire loads it anew), else False."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return True
            if entry.users or not entry.ready.is_set():
                return False
            del self._entries[key]
        entry.value = None
        return True

    def unload(self, kind: str | None = None) -> tuple[int, int]:
        """Unload idle models (of one kind, or all). Returns (unloaded, kept because in use)."""
        with self._lock:
            chosen = [e for e in self._entries.values() if e.ready.is_set() and (kind is None or e.key.kind == kind)]
            idle = [e for e in chosen if e.users == 0]
            for e in idle:
                del self._entries[e.key]
        for e in idle:
            e.value = None
        if idle:
            devices.free_memory()
        return len(idle), len(chosen) - len(idle)


BYTES_PER_VALUE = {"float32": 4, "float16": 2, "bfloat16": 2}


def over_budget(cache: ModelCache, model_id: str, needed: int, what: str) -> hub.ModelUnavailable | None:
    """The sentence for a model that the memory budget cannot hold (None where it fits): said before any download."""
    if needed <= cache.budget_bytes:
        return None
    return hub.ModelUnavailable(
        f"The model '{model_id}' needs about {needed / 1e9:.1f} GB of memory {what}; the studio's model budget is "
        f"{cache.budget_bytes / 1e9:.1f} GB. Choose a smaller model, or raise STUDIO_MEMORY_BUDGET_GB where the "
        "machine has the memory."
    )


def memory_needed(download: hub.Download, dtype: Any) -> int:
    """Bytes a model's weights take in memory as `dtype`, from the sizes of its weight files (0 where a size is not
    recorded): a half-precision file (name .fp16., or a repo stored in bf16) takes twice its size as float32."""
    stored_half = hub.manifest().get(download.model_id, {}).get("dtype") in ("float16", "bfloat16")
    wanted = BYTES_PER_VALUE.get(str(dtype).replace("torch.", ""), 4)
    total = 0
    for name, size in download.files.items():
        if size and name.endswith(hub.WEIGHTS):
            stored = 2 if ".fp16." in name or stored_half else 4
            total += size * wanted // stored
    return total


def make_cache(settings: Any) -> ModelCache:
    """The cache for a core.settings.Settings: its device, memory budget, offline flag and tiny-model folder."""
    return ModelCache(
        budget_bytes=settings.memory_budget_bytes,
        device=settings.device,
        offline=settings.offline,
        tiny_dir=settings.cache_dir / "tiny",
    )
