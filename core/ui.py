"""UI parts every tab shares: error wrapping, per-session Stop, the History panel and the model panel."""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from core.checked import checked
from core.device import is_out_of_memory
from core.errors import UserError
from core.models import ModelCache
from core.settings import Settings

log = logging.getLogger("studio.ui")

HISTORY_LIMIT = 100  # entries kept per browser session (files stay on disk)


def _to_gradio_error(exc: BaseException) -> gr.Error:
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, UserError):
        return gr.Error(str(exc), print_exception=False)
    if is_out_of_memory(exc):
        return gr.Error(
            "The studio ran out of memory for this request. Try a smaller size, fewer images or a "
            "shorter output, or unload other models in the Models panel.",
            print_exception=False,
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return gr.Error(
            "The disk is full: the result could not be saved. Free some space and try again.", print_exception=False
        )
    log.exception("unexpected error", exc_info=exc)
    return gr.Error(
        f"Something went wrong on the server ({type(exc).__name__}); the details are in its log. "
        "Other requests are not affected: try again.",
        print_exception=False,
    )


def user_errors(fn: Callable) -> Callable:
    """Turn UserError into a gr.Error sentence, and anything unexpected into a short one (traceback to the log)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise _to_gradio_error(exc) from None

        return gen

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise _to_gradio_error(exc) from None

    return call


def slider(minimum: float, maximum: float, **kwargs) -> gr.Slider:
    """gr.Slider that answers "The <label> must be a number." to a word sent through the API."""
    return checked(gr.Slider, "The {label} must be a number.")(minimum, maximum, **kwargs)


STOPPED_BEFORE_START = "Stopped before it started: nothing was made."
WAITING = "Waiting for the model…"  # a status line from the click until the run starts (not the last run's "Done")
TICKET_TTL_S = 3600  # a ticket whose request never reached the worker (queue full, page closed) is forgotten


class Stops:
    """Per-session stop flags: one user's Stop ends that user's jobs on one tab, never anyone else's.

    Stop reaches a job while it runs (its flag is checked at every step) and while it still waits in the queue: the
    page takes a ticket the moment the user asks (`ticket`, unqueued), the queued job starts with that ticket, and a
    ticket stopped meanwhile makes the job end at once, before any work (`start` raises STOPPED_BEFORE_START).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], list[threading.Event]] = {}
        self._waiting: dict[str, tuple[tuple[str, str], threading.Event, float]] = {}

    def ticket(self, session: str | None, tab: str) -> str | None:
        if not session:
            return None
        ticket = os.urandom(8).hex()
        now = time.monotonic()
        with self._lock:
            for old in [t for t, (_, _, made) in self._waiting.items() if now - made > TICKET_TTL_S]:
                del self._waiting[old]
            self._waiting[ticket] = ((session, tab), threading.Event(), now)
        return ticket

    def start(self, session: str | None, tab: str, ticket: str | None = None) -> threading.Event:
        with self._lock:
            waited = self._waiting.pop(ticket, None) if ticket else None
            event = waited[1] if waited and waited[0] == (session, tab) else threading.Event()
            if event.is_set():
                raise UserError(STOPPED_BEFORE_START)
            if session:
                self._running.setdefault((session, tab), []).append(event)
        return event

    def stop(self, session: str | None, tab: str) -> tuple[int, int]:
        """Stop this session's jobs on `tab`; returns (running jobs stopped, waiting requests cancelled)."""
        if not session:
            return 0, 0
        with self._lock:
            running = self._running.pop((session, tab), [])
            waiting = [e for key, e, _ in self._waiting.values() if key == (session, tab) and not e.is_set()]
        for event in running + waiting:
            event.set()
        return len(running), len(waiting)

    def done(self, session: str | None, tab: str, event: threading.Event) -> None:
        with self._lock:
            events = self._running.get((session, tab), []) if session else []
            if event in events:
                events.remove(event)
                if not events:
                    del self._running[(session, tab)]


def wire_stop(ctx: Context, button: gr.Button, tab: str, status: Any, stopping: str = "Stopping…") -> None:
    """Stop ends this browser session's jobs on `tab`, running or waiting (never anyone else's), and says so in
    `status`."""

    def stop(request: gr.Request) -> str:
        running, waiting = ctx.stops.stop(session_of(request), tab)
        if not running and not waiting:
            return "Nothing is running."
        cancelled = f"{waiting} waiting request(s) cancelled: they will not run." if waiting else ""
        return f"{stopping} {cancelled}".strip() if running else cancelled

    button.click(stop, None, status, api_visibility="private", queue=False)


@contextlib.contextmanager
def job(ctx: Context, request: gr.Request | None, tab: str, ticket: str | None = None) -> Iterator[threading.Event]:
    """The Stop flag of this session's job on `tab` for the length of the block (see Stops)."""
    session = session_of(request)
    event = ctx.stops.start(session, tab, ticket)
    try:
        yield event
    finally:
        ctx.stops.done(session, tab, event)


def queued(
    ctx: Context,
    tab: str,
    trigger: Callable,
    fn: Callable,
    inputs: list,
    outputs: list,
    status: Any = None,
    **kwargs: Any,
) -> Any:
    """Wire `trigger` (e.g. button.click) to run `fn` in the queue so that Stop can cancel it while it waits: an
    instant, unqueued step takes a ticket, then `fn` runs with the ticket as its last input (a gr.State, so API
    clients never see it; they call `fn` directly, without one). With `status`, that step also says WAITING there
    (not the last run's "Done" while this one waits), and a refused request clears it."""
    ticket = gr.State(None)

    def take_ticket(request: gr.Request) -> Any:
        taken = ctx.stops.ticket(session_of(request), tab)
        return (taken, WAITING) if status is not None else taken

    shown = ticket if status is None else [ticket, status]
    taken = trigger(take_ticket, None, shown, api_visibility="private", queue=False)
    run = taken.then(fn, [*inputs, ticket], outputs, **kwargs)
    if status is not None:
        run.failure(lambda: "", None, status, api_visibility="private", queue=False)
    return run


def seed_used_box(elem_id: str) -> gr.Number:
    """The "Seed used" box, hidden until a run fills it: Gradio's Number shows an empty value as 0, which reads as a
    seed that was used."""
    box = gr.Number(label="Seed used", interactive=False, precision=0, elem_id=elem_id, visible=False)
    box.change(lambda: gr.Number(visible=True), None, box, api_visibility="private", queue=False)
    return box


def session_of(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


@dataclass
class Context:
    """What build() of every tab receives."""

    settings: Settings
    cache: ModelCache
    stops: Stops
    history: gr.State  # list of history entries (dicts), newest first, kept in the browser across reloads
    tabs: gr.Tabs | None = None  # to switch tabs in hand-offs
    shared: dict[str, Any] = field(default_factory=dict)  # components tabs offer to each other, by name


def history_entry(tab: str, summary: str, files: list[Path | str], preview: str | None = None) -> dict[str, Any]:
    return {
        "time": time.strftime("%H:%M:%S"),
        "tab": tab,
        "summary": summary[:200],
        "files": [str(f) for f in files if f],
        "preview": preview,
    }


def history_add(history: list[dict] | None, entry: dict[str, Any]) -> list[dict]:
    return ([entry] + list(history or []))[:HISTORY_LIMIT]


def history_views(history: list[dict] | None) -> tuple[list[list[str]], list[str]]:
    rows = [[h["time"], h["tab"], h["summary"]] for h in history or []]
    files = [f for h in history or [] for f in h["files"] if Path(f).exists()]
    return rows, files


def _inside(path: Any, roots: Sequence[Path]) -> Path | None:
    """`path` resolved (links followed) if it is a file inside one of `roots`, else None."""
    if not isinstance(path, str | Path):
        return None
    try:
        resolved = Path(path).resolve()
        return resolved if resolved.is_file() and any(resolved.is_relative_to(r) for r in roots) else None
    except (OSError, ValueError):
        return None


def history_roots(settings: Settings) -> list[Path]:
    """The only folders a history entry may point into: the output folder and its temporary stand-in."""
    from core.outputs import UNSAVED_DIR

    return [Path(settings.output_dir).resolve(), UNSAVED_DIR.resolve()]


def safe_history(history: Any, roots: Sequence[Path]) -> list[dict[str, Any]]:
    """A history as a browser hands it back. The browser keeps it and can send anything, so only well-formed
    entries are kept, and only files inside `roots`: a forged entry must never make the studio read or serve
    another file of the server (a key, a password file) through the History panel or its zip."""
    clean = []
    for entry in history if isinstance(history, list) else []:
        if not isinstance(entry, dict):
            continue
        listed = entry.get("files")
        files = [str(p) for f in (listed if isinstance(listed, list) else []) if (p := _inside(f, roots))]
        preview = _inside(entry.get("preview"), roots)
        clean.append(
            {
                "time": str(entry.get("time", ""))[:20],
                "tab": str(entry.get("tab", ""))[:40],
                "summary": str(entry.get("summary", ""))[:200],
                "files": files[:64],
                "preview": str(preview) if preview else None,
            }
        )
    return clean[:HISTORY_LIMIT]


def history_zip(history: list[dict] | None, roots: Sequence[Path]) -> str:
    """Every file in the history (outputs and their recipes) in one zip, for download; only files in `roots`."""
    import tempfile
    import zipfile

    history = safe_history(history, roots)
    files = [Path(f) for h in history for f in h["files"]]
    if not files:
        raise gr.Error("The history is empty: make something first.")
    fd, name = tempfile.mkstemp(prefix="studio-history-", suffix=".zip")
    os.close(fd)
    with zipfile.ZipFile(name, "w", zipfile.ZIP_DEFLATED) as z:
        for f in dict.fromkeys(files):
            z.write(f, arcname=f"{f.parent.parent.name}/{f.name}")
        z.writestr("history.json", json.dumps(history, indent=2))
    return name


def build_history_panel(history: gr.State, roots: Sequence[Path]) -> None:
    with gr.Accordion("History (kept in this browser, newest first)", open=False, elem_id="history-panel"):
        table = gr.Dataframe(
            headers=["Time", "Tab", "What"], value=[], interactive=False, wrap=True, elem_id="history-table"
        )
        files = gr.Files(label="Saved files (each with its recipe)", elem_id="history-files")
        with gr.Row():
            download = gr.Button("Download all as a zip", size="sm", elem_id="history-zip")
            clear = gr.Button("Clear history", size="sm")
        zipped = gr.File(label="History zip", visible=True, elem_id="history-zip-file")
    history.change(history_views, history, [table, files], api_visibility="private", queue=False)
    download.click(user_errors(lambda h: history_zip(h, roots)), history, zipped, api_visibility="private")
    clear.click(lambda: [], None, history, api_visibility="private", queue=False)
    return table, files


def build_model_panel(cache: ModelCache) -> None:
    def rows() -> tuple[list[list[Any]], str]:
        snap = cache.snapshot()
        table = [
            [m["kind"], m["model"], m["device"], m["dtype"], m["megabytes"], "yes" if m["in_use"] else "no"]
            for m in snap
        ]
        if not cache.device_picked:
            note = "No model loaded yet: the first request of each tab loads its model."
        else:
            note = (
                f"{len(snap)} model(s) loaded, {cache.used_bytes() / 1e6:.0f} MB of a "
                f"{cache.budget_bytes / 1e6:.0f} MB budget on {cache.device}."
            )
        return table, note

    def unload() -> tuple[list[list[Any]], str]:
        unloaded, kept = cache.unload()
        table, note = rows()
        kept_note = f" {kept} in use right now stayed loaded." if kept else ""
        return table, f"Unloaded {unloaded} model(s).{kept_note} " + note

    with gr.Accordion("Models", open=False, elem_id="model-panel"):
        table = gr.Dataframe(
            headers=["Tab", "Model", "Device", "Dtype", "MB", "In use"],
            value=[],
            interactive=False,
            elem_id="model-table",
        )
        note = gr.Markdown()
        with gr.Row():
            refresh = gr.Button("Refresh", size="sm")
            unload_btn = gr.Button("Unload all idle models", size="sm", variant="stop")
    refresh.click(rows, None, [table, note], api_name="models", queue=False)
    unload_btn.click(unload, None, [table, note], api_name="unload_models")
