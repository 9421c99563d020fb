"""The one run path of every tab: a queued job with its Stop (running or still waiting), the engine's updates shown
as they come, and nothing left running when the user stops or leaves.

    jobs.queued(ctx, "image", button.click, handler, {"prompt": prompt, ...}, outputs, status=status)
    def handler(request, progress, *, ticket=None, **form):
        yield from jobs.run(ctx, request, "image", ticket, lambda stop: engine(..., stop=stop), show)
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr

from core.errors import UserError

if TYPE_CHECKING:
    from core.ui import Context

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
    inputs: dict[str, Any],
    outputs: list,
    status: Any = None,
    **kwargs: Any,
) -> Any:
    """Wire `trigger` (e.g. button.click) to run `fn` in the queue so that Stop can cancel it while it waits: an
    instant, unqueued step takes a ticket, then `fn` runs with the named `inputs` (its parameter names, which are
    the API's too) and `ticket=` (a gr.State, so API clients never see it; they run without one). With `status`,
    that step also says WAITING there (not the last run's "Done" while this one waits), and a refused request
    clears it."""
    ticket = gr.State(None)

    def take_ticket(request: gr.Request) -> Any:
        taken = ctx.stops.ticket(session_of(request), tab)
        return (taken, WAITING) if status is not None else taken

    shown = ticket if status is None else [ticket, status]
    taken = trigger(take_ticket, None, shown, api_visibility="private", queue=False)
    run_step = taken.then(fn, inputs_kwargs={**inputs, "ticket": ticket}, outputs=outputs, **kwargs)
    if status is not None:
        run_step.failure(lambda: "", None, status, api_visibility="private", queue=False)
    return run_step


def run(
    ctx: Context,
    request: gr.Request | None,
    tab: str,
    ticket: str | None,
    work: Callable[[threading.Event], Iterator[Any]],
    show: Callable[[Any], dict],
) -> Iterator[dict]:
    """The one run path: `work(stop)` (an engine's updates) under this session's Stop flag for `tab`, each update
    shown in the page as `show(update)` (a dict keyed by component). Leaving early (Stop, a closed page) closes the
    engine, whose Worker then halts the model at its next step."""
    with job(ctx, request, tab, ticket) as stop:
        updates = work(stop)
        try:
            for update in updates:
                yield show(update)
        finally:
            close = getattr(updates, "close", None)
            if close is not None:
                close()


def session_of(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None
