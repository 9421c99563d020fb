"""The one place that picks the device and dtype, frees memory, and wraps GPU work for ZeroGPU Spaces.

torch is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import contextvars
import functools
import gc
import importlib
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("studio.device")

# transformers and diffusers resolve names lazily, and two threads importing them at once can see a half-built
# module ("cannot import name ...": Python hands a half-built module to one of two threads that import each other's
# modules in opposite orders). Every first import of a heavy library goes under this lock: model loads hold it for
# the whole load (ModelCache), the warm-up holds it, and a run takes it only for a name not yet imported (imported).
import_lock = threading.RLock()


def imported(module: str, *names: str) -> Any:
    """`module`, or its attributes `names` (a tuple), imported under import_lock unless already imported and resolved:
    a run on a loaded model never waits for another model's load, and a first import never races another."""
    found = sys.modules.get(module)
    spec = getattr(found, "__spec__", None)
    if found is None or getattr(spec, "_initializing", False) or any(n not in vars(found) for n in names):
        with import_lock:
            found = importlib.import_module(module)
            values = tuple(getattr(found, n) for n in names)
    else:
        values = tuple(vars(found)[n] for n in names)
    return values if names else found


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def pick_device(requested: str = "auto") -> str:
    """auto: cuda, then mps, then cpu (with a warning). A requested device that is missing raises ValueError."""
    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        if _cuda_available():
            return "cuda"
        if _mps_available():
            return "mps"
        log.warning("No GPU found: running on the CPU. Models will be slower; the tiny and small ones work well.")
        return "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "cuda" or requested.startswith("cuda:"):
        if not _cuda_available():
            raise ValueError(
                f"Device {requested!r} was requested but CUDA is not available. Use --device auto or cpu."
            )
        import torch

        index = int(requested.split(":", 1)[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"Device {requested!r} was requested but only {torch.cuda.device_count()} GPU(s) exist.")
        return requested
    if requested == "mps":
        if not _mps_available():
            raise ValueError("Device 'mps' was requested but Apple's Metal backend is not available here.")
        return "mps"
    raise ValueError(f"Unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps.")


def pick_dtype(device: str, fp16: bool = True):
    """float32 on CPU; bf16 on GPUs that support it well, else fp16; fp16 on MPS. With fp16=False (models that
    overflow in fp16: Qwen2-family text models give NaNs, "!!!!", in it), float32 wherever bf16 is not supported."""
    import torch

    if device.startswith("cuda"):
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16 if fp16 else torch.float32
    if device == "mps":
        return torch.float16 if fp16 else torch.float32
    return torch.float32


def free_memory() -> None:
    """Give freed tensors back: Python's garbage, then the accelerator's cache."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:  # torch never imported: nothing of ours holds tensors
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif _mps_available():
        torch.mps.empty_cache()


def place_pipeline(pipe: Any, device: str, weight_bytes: int) -> bool:
    """The pipeline on `device`; on a GPU it does not fit (its weights over 80% of the free memory), offloaded: each
    part moves to the GPU only while it runs (diffusers' model CPU offload), as ComfyUI and Forge do. True where
    it was offloaded."""
    import torch

    offload = device.startswith("cuda") and weight_bytes > 0.8 * torch.cuda.mem_get_info(device)[0]
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    if device == "mps":
        pipe.enable_attention_slicing()
    return offload


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or the CPU allocator's "can't allocate memory"."""
    text = str(exc).lower()
    return (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"
        or (isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text))
    )


def total_memory_bytes(device: str) -> int:
    """RAM on CPU/MPS (unified memory), the GPU's VRAM on CUDA."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_properties(torch.device(device)).total_memory
    import psutil

    return psutil.virtual_memory().total


def memory_now() -> str:
    """What is free now, for an out-of-memory sentence: the GPU's VRAM (where CUDA is in use) and the RAM."""
    import psutil

    ram = psutil.virtual_memory()
    said = [f"{ram.available / 1e9:.1f} of {ram.total / 1e9:.1f} GB of RAM"]
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        free, total = torch.cuda.mem_get_info()
        said.insert(0, f"{free / 1e9:.1f} of {total / 1e9:.1f} GB of GPU memory")
    return " and ".join(said) + " free now"


def default_budget_bytes(device: str) -> int:
    """A sensible share of memory for loaded models: half the RAM on CPU/MPS, 85% of the VRAM on CUDA."""
    share = 0.85 if device.startswith("cuda") else 0.5
    return int(total_memory_bytes(device) * share)


def on_zerogpu() -> bool:
    """True on a Hugging Face ZeroGPU Space (the `spaces` package is there and the Space says so)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in {"1", "true"} and bool(importlib.util.find_spec("spaces"))


def gpu(duration: int = 120) -> Callable[[Callable], Callable]:
    """Decorator for GPU work: spaces.GPU on ZeroGPU Spaces, a no-op elsewhere."""

    def wrap(fn: Callable) -> Callable:
        if not on_zerogpu():
            return fn
        import spaces

        return functools.wraps(fn)(spaces.GPU(duration=duration)(fn))

    return wrap


def in_passing_thread(fn: Callable[[], Any]) -> Any:
    """Run `fn` on a thread that ends when it returns (with this thread's context: progress bars still reach the
    page), and return its result or raise its exception.

    Why: every long-lived thread that runs a parallel torch op on the CPU keeps its own OpenMP thread team. Once
    a process holds more OpenMP threads than cores, libgomp stops spin-waiting between parallel regions and every
    small op pays a sleep/wake-up: measured here, MusicGen generation slowed by 11% at musicgen-small's size and
    3x on the tiny test model. Model loads (and generation, see Worker) therefore run on passing threads, whose
    teams go away with them, so Gradio's long-lived worker threads never hold one.
    """
    return Worker("studio-passing").start(fn).result()


class Worker:
    """`fn` on a passing thread (see in_passing_thread) while the caller streams progress, the shape of every
    generation here: the model runs in the worker, the request's generator polls and yields.

    Leaving the `with` block, normally or early (Stop, a client disconnect, Gradio closing the generator), sets
    `halt`, which the model's per-step callback checks, and joins the thread: a model is never handed back to the
    cache while a worker still runs it. `result()` then gives what `fn` returned, or raises what it raised.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.halt = threading.Event()  # the caller no longer wants the result: end at the next step
        self.finished = threading.Event()  # fn returned or raised
        self._outcome: tuple[bool, Any] | None = None  # (succeeded, value or exception)
        self._thread: threading.Thread | None = None

    def start(self, fn: Callable[[], Any]) -> Worker:
        context = contextvars.copy_context()

        def work() -> None:
            try:
                self._outcome = (True, context.run(fn))
            except BaseException as exc:  # re-raised in the caller's thread by result()
                self._outcome = (False, exc)
            finally:
                self.finished.set()

        self._thread = threading.Thread(target=work, name=self.name, daemon=True)
        self._thread.start()
        return self

    def is_current(self) -> bool:
        """True on the worker's own thread (e.g. in a forward hook that should see only this run's calls)."""
        return self._thread is not None and threading.current_thread() is self._thread

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def result(self) -> Any:
        self.join()
        succeeded, value = self._outcome
        if not succeeded:
            raise value
        return value

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.halt.set()
        self.join()
