"""History: what a visitor made, kept in their browser across reloads and restarts of the studio, and the one check
that a History handed back by a browser names only files the studio made for that browser.

The trust boundary: a History lives on the server (a gr.State, which no request can forge) while the page is open,
and in the browser's localStorage between visits. Gradio's BrowserState encrypts that copy with a secret it also
publishes in /config, and the event that hands it back answers any direct request, so whatever comes back from a
browser may be forged. Each entry therefore leaves the server sealed: an HMAC-SHA256 over the entry, with a key that
never leaves the server (Seals). An entry comes back in only with its seal intact, so a visitor can restore only
what the studio gave that visitor's browser: never another visitor's results, the audit log or a key. Restoring,
listing, zipping and the hand-offs that take a History file all read the server-side History, filled only from
entries made in this session or restored through `Seals.check`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("studio.history")

LIMIT = 100  # entries kept per browser (the files stay on disk)
FILES_PER_ENTRY = 64
KEY_FILE = "history.key"  # in the cache folder: 32 random bytes (hex), readable by the studio's user only


def record(tab: str, summary: str, files: Sequence[Path | str], preview: str | None = None) -> dict[str, Any]:
    """One History entry: when, which tab, what (a short summary), the saved files (each with its recipe)."""
    return {
        "time": time.strftime("%H:%M:%S"),
        "tab": tab,
        "summary": summary[:200],
        "files": [str(f) for f in files if f][:FILES_PER_ENTRY],
        "preview": preview,
    }


def prepend(history: list[dict] | None, made: dict[str, Any]) -> list[dict]:
    """`made` first, then the History as it was (at most LIMIT entries)."""
    return ([made] + list(history or []))[:LIMIT]


def views(history: list[dict] | None) -> tuple[list[list[str]], list[str]]:
    """(the table's rows, the files that still exist) of a server-side History."""
    rows = [[h["time"], h["tab"], h["summary"]] for h in history or []]
    files = [f for h in history or [] for f in h["files"] if Path(f).is_file()]
    return rows, files


def load_key(cache_dir: Path) -> bytes:
    """The sealing key, kept in the cache folder so that a History survives a restart; made on first use. Where the
    folder cannot hold it, a key for this process only (Histories then last until the studio restarts)."""
    path = Path(cache_dir) / KEY_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made before (or by another studio process just now)
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        for _ in range(50):  # another process may be between creating and writing it
            text = path.read_text().strip()
            if len(text) == 64:
                return bytes.fromhex(text)
            time.sleep(0.02)
        raise OSError(f"{path} does not hold a key")
    except (OSError, ValueError) as exc:
        log.warning("cannot keep the History key in %s (%s): Histories last until the studio restarts", path, exc)
        return secrets.token_bytes(32)


def _fields(item: Any) -> dict[str, Any] | None:
    """An entry's fields with the types the studio writes, or None for anything else."""
    if not isinstance(item, dict):
        return None
    files, preview = item.get("files"), item.get("preview")
    if not (isinstance(files, list) and len(files) <= FILES_PER_ENTRY and all(isinstance(f, str) for f in files)):
        return None
    if not all(isinstance(item.get(k), str) for k in ("time", "tab", "summary")) or not isinstance(
        preview, str | None
    ):
        return None
    return {"time": item["time"], "tab": item["tab"], "summary": item["summary"], "files": files, "preview": preview}


class Seals:
    """Seals History entries on their way to the browser and checks them on their way back (see the module's
    docstring). `roots`: the folders results are saved in; `blocked`: files and folders never handed out (the audit
    log, keys), even sealed."""

    def __init__(self, key: bytes, roots: Sequence[Path], blocked: Sequence[Path] = ()) -> None:
        self._key = key
        self.roots = [Path(r).resolve() for r in roots]
        self.blocked = [Path(b).resolve() for b in blocked]

    def _mac(self, fields: dict[str, Any]) -> str:
        text = json.dumps(fields, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def seal(self, history: list[dict] | None) -> list[dict]:
        """The History as the browser keeps it: each entry with its seal."""
        return [{**fields, "seal": self._mac(fields)} for h in history or [] if (fields := _fields(h))]

    def file(self, path: Any) -> str | None:
        """`path` (links followed) if it is an existing file inside the roots and outside the blocked paths."""
        if not isinstance(path, str) or not path or "\0" in path:
            return None
        try:
            resolved = Path(path).resolve()
            inside = any(resolved.is_relative_to(r) for r in self.roots)
            blocked = any(resolved == b or resolved.is_relative_to(b) for b in self.blocked)
            return str(resolved) if inside and not blocked and resolved.is_file() else None
        except (OSError, ValueError):
            return None

    def check(self, kept: Any) -> list[dict]:
        """A History handed back by a browser: only entries whose seal is intact (made by this studio for that
        browser), each with only its files that still exist inside the roots."""
        clean: list[dict] = []
        for item in kept[:LIMIT] if isinstance(kept, list) else []:
            fields = _fields(item)
            seal = item.get("seal") if fields else None
            if not isinstance(seal, str) or not hmac.compare_digest(seal, self._mac(fields)):
                continue
            files = [f for f in map(self.file, fields["files"]) if f]
            clean.append({**fields, "files": files, "preview": self.file(fields["preview"])})
        return clean

    def zip(self, history: list[dict] | None) -> str:
        """Every file of a server-side History (outputs and their recipes) in one zip, with history.json."""
        from core.errors import UserError

        history = [h for h in history or [] if _fields(h)]
        files = [Path(f) for h in history for f in h["files"] if self.file(f)]
        if not files:
            raise UserError("The history is empty: make something first.")
        fd, name = tempfile.mkstemp(prefix="studio-history-", suffix=".zip")
        os.close(fd)
        with zipfile.ZipFile(name, "w", zipfile.ZIP_DEFLATED) as z:
            for f in dict.fromkeys(files):
                z.write(f, arcname=f"{f.parent.parent.name}/{f.name}")
            z.writestr("history.json", json.dumps([_fields(h) for h in history], indent=2))
        return name


def seals_for(settings: Any) -> Seals:
    """The studio's Seals: its key from the cache folder, its output folders as roots, its records and keys
    blocked (see blocked_paths)."""
    from core.outputs import UNSAVED_DIR

    roots = [Path(settings.output_dir), UNSAVED_DIR]
    return Seals(load_key(Path(settings.cache_dir)), roots, blocked_paths(settings))


def blocked_paths(settings: Any) -> list[Path]:
    """Files of the studio that no route serves and no History names: the face swap audit log (the operator's
    record), the History key and the content-credentials keys."""
    from core.outputs import audit_log_path

    cache = Path(settings.cache_dir)
    blocked = [audit_log_path(settings.output_dir), cache / KEY_FILE, cache / "c2pa", cache / "browser-state.key"]
    return [p.resolve() for p in blocked + ([Path(settings.c2pa_key)] if settings.c2pa_key else [])]


def build_panel(history: Any, seals: Seals) -> tuple[Any, Any]:
    """The History panel (table, files, zip, clear) under the tabs; returns (table, files)."""
    import gradio as gr

    from core.ui import user_errors

    with gr.Accordion("History (kept in this browser, newest first)", open=False, elem_id="history-panel"):
        table = gr.Dataframe(
            headers=["Time", "Tab", "What"], value=[], interactive=False, wrap=True, elem_id="history-table"
        )
        files = gr.Files(label="Saved files (each with its recipe)", elem_id="history-files")
        with gr.Row():
            download = gr.Button("Download all as a zip", size="sm", elem_id="history-zip")
            clear = gr.Button("Clear history", size="sm")
        zipped = gr.File(label="History zip", visible=True, elem_id="history-zip-file")
    history.change(views, history, [table, files], api_visibility="private", queue=False)
    download.click(user_errors(seals.zip), history, zipped, api_visibility="private")
    clear.click(lambda: [], None, history, api_visibility="private", queue=False)
    return table, files
