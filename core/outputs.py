"""Saving what users make, with the recipe that made it.

Files go to <output_dir>/<tab>/<YYYY-MM-DD>/<HHMMSS>-<slug>-<id>.<ext>, with <same name>.json beside them
holding the complete recipe. Every write goes to a temporary file in the same folder and is renamed into place,
so a full disk or a crash never leaves a half-written output or damages one already saved.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import secrets
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("studio.outputs")
STUDIO_NAME = "Generative AI Studio"
AI_STATEMENT = "AI-generated content: made with a generative model in the Generative AI Studio."
AI_EDITED_STATEMENT = (
    "AI-edited content: a picture, sound or video given by its user, changed by generative models in the Generative "
    "AI Studio."
)


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` if the block succeeds, removed if not."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write `data` to `path` via a temporary file and a rename (never a partial file at `path`)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_target(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def slug(text: str, limit: int = 40) -> str:
    """A short, safe file-name piece from free text ("A cat, on Mars!" -> "a-cat-on-mars")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-zA-Z0-9]+", "-", ascii_text).strip("-").lower()
    return cleaned[:limit].strip("-") or "untitled"


UNSAVED_DIR = Path(tempfile.gettempdir()) / "studio-unsaved"  # where results go when the output folder fails


def warn(message: str) -> None:
    """Tell the user (a yellow toast in the page when called from a request) and the log."""
    log.warning(message)
    gradio = sys.modules.get("gradio")
    if gradio is not None:
        gradio.Warning(message)


def _writable(folder: Path) -> str | None:
    """None if files can be written in `folder` (created if need be), else the reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
        return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def audit_log_path(output_dir: Path) -> Path:
    """The audit log of what needs consent (face swaps, cloned voices, LoRA trainings): in the output folder, but
    never served over HTTP (see app.server.launch). Its place predates voice cloning."""
    return Path(output_dir) / "faceswap" / "audit.jsonl"


_audit_lock = threading.Lock()


def append_audit(output_dir: Path, entry: dict[str, Any]) -> None:
    """One JSON line in the audit log: who-what-when, with hashes, never the pictures or sounds themselves."""
    path = audit_log_path(output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **entry}, sort_keys=True) + "\n"
    with _audit_lock, open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()


def new_output_path(output_dir: Path, tab: str, title: str, ext: str, now: dt.datetime | None = None) -> Path:
    """A fresh path for a result. If the output folder cannot be written, a temporary folder stands in and the
    user is warned: the result is still delivered, and nothing already saved is touched."""
    now = now or dt.datetime.now()
    name = f"{now:%H%M%S}-{slug(title)}-{secrets.token_hex(3)}.{ext.lstrip('.')}"
    folder = Path(output_dir) / tab / f"{now:%Y-%m-%d}"
    reason = _writable(folder)
    if reason:
        fallback = UNSAVED_DIR / tab / f"{now:%Y-%m-%d}"
        fallback.mkdir(parents=True, exist_ok=True)
        warn(
            f"Could not save in {Path(output_dir)} ({reason}). This result is kept in a temporary folder "
            "only: download it from the page to keep it."
        )
        folder = fallback
    return folder / name


@functools.lru_cache(maxsize=32)
def _versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    found = [("python", platform.python_version())]
    for name in names:
        try:
            found.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            pass
    return tuple(found)


def library_versions(*names: str) -> dict[str, str]:
    """Versions of Python and the named packages, for recipes (results depend on them)."""
    return dict(_versions(names))


def file_sha256(path: Path | str) -> str:
    """The SHA-256 of a file (read in 1 MB blocks), remembered while its size and modification time stay the same:
    model files (LoRAs, the neural face swap's 554 MB) are hashed once, not at every request."""
    stat = Path(path).stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, modified_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recipe_path(output: Path) -> Path:
    return Path(output).with_suffix(".json")


def save_recipe(output: Path, recipe: dict[str, Any]) -> Path:
    return atomic_write(recipe_path(output), json.dumps(recipe, indent=2, ensure_ascii=False, default=str))


def base_recipe(tab: str, model: str, **params: Any) -> dict[str, Any]:
    """The fields every recipe has; tabs add their own."""
    return {
        "studio": STUDIO_NAME,
        "statement": AI_STATEMENT,
        "tab": tab,
        "model": model,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **params,
    }


def save_png(image: Any, path: Path, text_chunks: dict[str, str]) -> Path:
    """Save a PIL image as PNG with iTXt text chunks (e.g. "parameters", "studio_recipe"), atomically."""
    import io

    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in text_chunks.items():
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return atomic_write(path, buffer.getvalue())


def png_text(path: Path) -> dict[str, str]:
    """The text chunks of a PNG file ({} for anything else)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                return {}
            im.load()
            return {k: v for k, v in im.text.items() if isinstance(v, str)}
    except (OSError, ValueError, SyntaxError):
        return {}
