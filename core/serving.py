"""Engines on a Ray Serve cluster (STUDIO_RAY_ADDRESS): the studio stays the front (checks, Stop, saving with
provenance, History) and a tab's model runs on the cluster's deployment for it (app.engines), as replicas that
scale and batch.

Both sides of one call live here: `call` in the front (a generator of the engine's updates, returning its result)
and `drive` in a replica (an engine's generator run on a thread, its updates streamed back; a cancelled stream
sets the engine's Stop). Ray is imported only when a cluster is used.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any

from core.device import import_lock
from core.errors import Stopped, UserError
from core.settings import REMOTE_TABS

APPS = {tab: f"studio-{tab}" for tab in REMOTE_TABS}  # the Serve application of each tab's engine
BEAT_S = 0.5  # a replica says it is alive this often while its engine is quiet (a model loading), so Stop is heard
POLL_S = 0.25  # how often the front looks at a batched request that reports no steps

_lock = threading.Lock()
_handles: dict[tuple[str, str], Any] = {}


def connect(address: str) -> None:
    """Join the Ray cluster at `address` (`auto`, `ray://head:10001`, ...) once per process."""
    try:
        with import_lock:  # never beside another thread's import of torch or transformers (see core.device)
            import ray
            from ray import serve  # noqa: F401
    except ImportError:
        raise UserError(
            "STUDIO_RAY_ADDRESS needs Ray Serve in the studio's environment: pip install -r requirements-ray.txt"
        ) from None

    if ray.is_initialized():
        return
    try:
        ray.init(address=address, log_to_driver=False)
    except Exception as exc:  # a cluster that is down or named wrong
        raise UserError(
            f"Cannot reach the Ray cluster at {address} ({type(exc).__name__}): check STUDIO_RAY_ADDRESS and that "
            "the cluster is up."
        ) from exc


def handle(address: str, kind: str) -> Any:
    """The deployment handle of `kind`'s engine on the cluster (looked up once)."""
    with _lock:
        if (address, kind) not in _handles:
            connect(address)
            from ray import serve

            try:
                _handles[(address, kind)] = serve.get_app_handle(APPS[kind])
            except Exception as exc:
                raise UserError(
                    f"No {kind} engine is deployed on the Ray cluster at {address}: deploy the engines with "
                    f"`python studio.py serve-models --ray {address}`."
                ) from exc
        return _handles[(address, kind)]


def served_by(settings: Any, kind: str, **more: Any) -> dict:
    """What the recipe says about where the model ran, when it ran on the cluster."""
    return {"ray_address": settings.ray_address, "application": APPS[kind], **more}


def _failed(address: str, kind: str, exc: BaseException) -> UserError:
    """A replica's error as the user's sentence: a UserError as it was raised there; anything else (a replica that
    died mid-request, a lost node) says so, and that the next request goes to a live replica."""
    cause = getattr(exc, "cause", None) or exc
    if isinstance(cause, UserError):
        return cause
    return UserError(
        f"The {kind} engine on the Ray cluster at {address} failed while making this ({type(cause).__name__}); "
        "nothing was saved. Try again: the cluster replaces a failed replica."
    )


def call(
    settings: Any,
    kind: str,
    method: str,
    args: tuple,
    stop: threading.Event,
    progress: Callable | None,
    waiting: Callable[[tuple, float], Any] | None = None,
) -> Generator[Any, None, Any]:
    """Run `method(*args)` of `kind`'s engine on the cluster: yields its updates (or `waiting(args, seconds)` while
    a batched request runs, which reports none), returns its result. Stop cancels the request on the replica."""
    address = settings.ray_address
    engine = handle(address, kind)
    try:
        if method.endswith("_batched"):
            return (yield from _polled(getattr(engine, method).remote(*args), args, stop, waiting))
        stream = getattr(engine.options(stream=True), method).remote(*args)
        try:
            for tag, value, said in stream:
                if stop.is_set():
                    raise Stopped()
                if said is not None and progress is not None:
                    progress(*said)
                if tag == "done":
                    return value
                if tag == "update":
                    yield value
        except (Stopped, GeneratorExit):  # Stop, or the page was closed (the front's generator closed)
            stream.cancel()  # the replica's drive() then sets the engine's stop
            raise
        raise RuntimeError("the stream ended without a result")
    except Stopped:
        raise
    except Exception as exc:
        raise _failed(address, kind, exc) from exc


def call_once(settings: Any, kind: str, method: str, args: tuple) -> Any:
    """`method(*args)` of `kind`'s engine on the cluster, for a one-shot job (a face swap): its result."""
    address = settings.ray_address
    engine = handle(address, kind)
    try:
        return getattr(engine, method).remote(*args).result()
    except Exception as exc:
        raise _failed(address, kind, exc) from exc


def _polled(response: Any, args: tuple, stop: threading.Event, waiting: Callable) -> Iterator[Any]:
    start = time.perf_counter()
    try:
        while True:
            if stop.is_set():
                raise Stopped()
            try:
                return response.result(timeout_s=POLL_S)
            except TimeoutError:
                yield waiting(args, time.perf_counter() - start)
    except (Stopped, GeneratorExit):
        response.cancel()
        raise


async def drive(work: Callable[[threading.Event, Callable], Generator]) -> AsyncIterator[tuple]:
    """In a replica: run `work(stop, progress)` (an engine's generator) on a thread and stream (tag, value,
    (fraction, text) of the latest progress or None): ("update", update), ("beat", None) while it is quiet, and
    ("done", its result) at the end. A cancelled stream (the user's Stop, a closed page) sets `stop`, which the
    engine checks at every step."""
    stop, said, items = threading.Event(), [None], queue.Queue()

    def progress(fraction: float, text: str = "") -> None:
        said[0] = (fraction, text)

    def run() -> None:
        try:
            updates = work(stop, progress)
            while True:
                try:
                    items.put(("update", next(updates)))
                except StopIteration as end:
                    items.put(("done", end.value))
                    return
        except BaseException as exc:  # noqa: BLE001  (sent to the front, which says it in a sentence)
            items.put(("error", exc))

    running = asyncio.get_running_loop().run_in_executor(None, run)
    try:
        quiet = time.perf_counter()
        while True:
            try:
                tag, value = items.get_nowait()
            except queue.Empty:
                if time.perf_counter() - quiet >= BEAT_S:
                    quiet = time.perf_counter()
                    yield ("beat", None, said[0])
                await asyncio.sleep(0.02)
                continue
            if tag == "error":
                raise value
            quiet = time.perf_counter()
            yield (tag, value, said[0])
            if tag == "done":
                return
    finally:
        stop.set()
        await asyncio.shield(running)  # the engine ends at its next step; its model lease is returned first
