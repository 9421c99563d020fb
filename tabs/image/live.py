"""Live mode: the picture follows the prompt, the seed and a sketch as they change, with the fast models (SD-Turbo,
SDXL-Turbo, FLUX.1-schnell, Z-Image-Turbo), as Krita AI Diffusion's live painting and ComfyUI's real-time workflows
do; nothing is saved until the user keeps a picture.

- Only the newest request of a page runs. Changes close together make one request (the page asks once they pause
  for DEBOUNCE_MS), which takes a ticket at once (unqueued); a live run still waiting whose ticket is no longer its
  page's newest ends before any work, and a running one stops at its next step. A request sent without a ticket
  (the API) ends at once if a newer one of its session waits in the queue behind it. So one page has at most one
  live picture being made, and the queue is never filled with stale ones: another user's request waits at most for
  one short live picture (live runs share the Image tab's queue and its limit).
- A live picture is made with at most LIVE_MAX_STEPS steps, one picture, and is written (watermark, recipe, C2PA,
  like every output) to a scratch folder outside the outputs, one picture per page at a time; the previous one is
  deleted. Keep moves it, unchanged, into the outputs with its recipe, and into the History. A dropped or superseded
  request leaves no file.
- With a random seed (-1) live mode draws with LIVE_SEED, so that the picture changes with the words, not by chance.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import Stopped, UserError
from core.outputs import new_output_path

LIVE_MAX_STEPS = 8  # the fast models need 1-4; a live picture takes at most this many steps
LIVE_SEED = 0  # the seed of a live picture when the seed box says random (-1)
SCRATCH_TTL_S = 3600  # a live picture nobody kept is deleted after this long (its page closed, or went quiet)
# The page asks only once the changes pause for DEBOUNCE_MS: each change cancels the wait of the one before (which
# then ends as if Live mode were off, without a request to the queue), so keys typed together make one request.
DEBOUNCE_MS = 300
DEBOUNCE_JS = f"""(on) => new Promise((resolve) => {{
    const before = window.studioLiveWait;
    if (before) {{ clearTimeout(before.timer); before.resolve(false); }}
    const wait = {{ resolve }};
    wait.timer = setTimeout(() => {{ window.studioLiveWait = null; resolve(on); }}, {DEBOUNCE_MS});
    window.studioLiveWait = wait;
}})"""
SUPERSEDED = "No picture: a newer live request of this session came, and only the newest is drawn."
WAITING_FOR_WORDS = "Live: type a prompt (or draw a sketch) and the picture follows."
NOTHING_TO_KEEP = "Nothing to keep yet: turn on Live mode and let it draw a picture first."
GONE = "This live picture is gone: a newer one replaced it, or nobody kept it for an hour. Keep the one shown now."


class LiveRuns:
    """Per-session tickets: each change takes a newer one; only the newest runs, and taking one stops the run of an
    older one at its next step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._newest: dict[str, int] = {}
        self._running: dict[str, list[tuple[int, threading.Event]]] = {}
        self._count = 0

    def take(self, session: str | None) -> int:
        """A new ticket for `session`, now its newest; an older run of the session is told to stop."""
        with self._lock:
            self._count += 1
            if session:
                self._newest[session] = self._count
                for _, stop in self._running.get(session, []):
                    stop.set()
            return self._count

    def begin(self, session: str | None, ticket: int) -> threading.Event | None:
        """The run's stop flag, or None when a newer ticket of the session was taken (the run is dropped)."""
        with self._lock:
            if session and self._newest.get(session, ticket) != ticket:
                return None
            stop = threading.Event()
            if session:
                self._running.setdefault(session, []).append((ticket, stop))
            return stop

    def end(self, session: str | None, stop: threading.Event) -> None:
        with self._lock:
            runs = [run for run in self._running.get(session or "", []) if run[1] is not stop]
            if runs:
                self._running[session] = runs
            else:
                self._running.pop(session or "", None)


def newer_waiting(session: str | None, name: str) -> bool:
    """Whether a request of `session` to the event handler `name` waits in Gradio's queue (so it is newer than the
    one running: the queue is first in, first out). False outside a queued Gradio event."""
    from gradio.context import LocalContext

    blocks = LocalContext.blocks.get(None)
    queues = getattr(getattr(blocks, "_queue", None), "event_queue_per_concurrency_id", {})
    for waiting in list(queues.values()):
        for event in list(getattr(waiting, "queue", [])):
            if event.session_hash == session and getattr(event.fn, "name", None) == name:
                return True
    return False


def scratch_dir() -> Path:
    """Where live pictures wait to be kept: a folder of this process under the temporary folder (Gradio serves
    pictures from there to the page), swept of pictures older than SCRATCH_TTL_S."""
    folder = Path(tempfile.gettempdir()) / "studio-live" / str(os.getpid())
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sweep(folder: Path, now: float | None = None) -> int:
    """Delete live pictures (and their recipes) older than SCRATCH_TTL_S; returns how many files went."""
    now = now or time.time()
    gone = 0
    for path in folder.rglob("*.*"):
        try:
            if now - path.stat().st_mtime > SCRATCH_TTL_S:
                path.unlink()
                gone += 1
        except OSError:
            pass
    return gone


def live_params(params: Any) -> Any:
    """The request as live mode runs it: one picture, at most LIVE_MAX_STEPS steps, a steady seed."""
    seed = LIVE_SEED if params.seed in (None, -1) else params.seed
    return replace(params, num_images=1, steps=max(1, min(int(params.steps), LIVE_MAX_STEPS)), seed=seed)


def sketch_steps(params: Any) -> Any:
    """A picture from a sketch repaints `strength` of the steps: at least one of them must run."""
    return replace(params, steps=min(LIVE_MAX_STEPS, max(params.steps, math.ceil(1 / params.strength))))


def sketch_picture(drawn: Any) -> Any:
    """The sketchpad's drawing on a white page (an RGB picture), or None when nothing is drawn."""
    from PIL import Image

    picture = (drawn or {}).get("composite") if isinstance(drawn, dict) else None
    if picture is None or picture.getbbox() is None:
        return None
    page = Image.new("RGBA", picture.size, "white")
    page.alpha_composite(picture.convert("RGBA"))
    return page.convert("RGB")


def status(made: dict) -> str:
    recipe = made["recipe"]
    steps, seed = recipe.get("steps"), recipe.get("seed")
    return f"Live: {made['seconds']:.2f} s · {steps} step(s) · seed {seed} · not saved: **Keep** saves it."


def forget(frame: dict | None) -> None:
    """Delete a live picture that was not kept (a newer one replaced it, or its page went away)."""
    if frame and not frame.get("kept"):
        for path in (Path(frame["png"]), Path(frame["png"]).with_suffix(".json")):
            path.unlink(missing_ok=True)


def draw(
    cache: Any,
    settings: Any,
    params: Any,
    model: str | None,
    sketch: Any,
    stop: threading.Event,
    session: str | None = None,
) -> dict | None:
    """One live picture (engine.generate_image into the session's scratch folder, labelled as every output):
    {"png", "recipe" (as saved), "seconds"}; the session's previous live picture, not kept, is deleted. None when it
    was stopped because a newer request came (nothing is left of it)."""
    from tabs.image import engine

    root = scratch_dir()
    sweep(root)
    folder = root / hashlib.sha256((session or secrets.token_hex(8)).encode()).hexdigest()[:16]
    start = time.perf_counter()
    params = live_params(params)
    if sketch is not None:
        params = sketch_steps(params)
    try:
        for update in engine.generate_image(
            cache, replace(settings, output_dir=folder), params, model=model, init_image=sketch, stop=stop,
            before={"live": True},
        ):  # fmt: skip
            if update.done:
                png = update.images[0]
                recipe = json.loads(png.with_suffix(".json").read_text(encoding="utf-8"))  # as saved, provenance too
                for old in folder.rglob("*.*"):  # one live picture per page at a time
                    if old.with_suffix("") != png.with_suffix(""):
                        old.unlink(missing_ok=True)
                return {"png": str(png), "recipe": recipe, "seconds": time.perf_counter() - start}
    except Stopped:
        return None
    if stop.is_set():
        return None
    raise UserError("The live picture was not made.")


def keep(settings: Any, frame: dict | None) -> Path:
    """Move a live picture and its recipe, unchanged, into the outputs; returns its new path."""
    if not frame:
        raise UserError(NOTHING_TO_KEEP)
    if frame.get("kept"):
        return Path(frame["kept"])
    png = Path(frame["png"])
    target = new_output_path(settings.output_dir, "image", frame["recipe"].get("prompt", "live"), "png")
    target = target.with_name(png.name)  # the name the picture's C2PA manifest gives it
    try:
        shutil.move(png.with_suffix(".json"), target.with_suffix(".json"))
        shutil.move(png, target)
    except FileNotFoundError:
        target.with_suffix(".json").unlink(missing_ok=True)
        raise UserError(GONE) from None
    frame["kept"] = str(target)
    return target
