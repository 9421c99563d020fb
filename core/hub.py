"""Where a model's files come from: a local folder, a tiny model built here, or the Hugging Face Hub.

The Hub is asked at most once per model: a quick reachability probe (a TCP connection, 2 s at most) decides
between downloading (with tqdm progress, which the UI tracks) and using the local cache only, so an offline
machine gets a clear sentence in well under 5 s instead of huggingface_hub's retries (23-46 s).
Only safetensors weights and the small config/tokenizer files are ever downloaded.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from core.errors import ModelUnavailable

log = logging.getLogger("studio.hub")

# Files a model needs; weights only as safetensors (never pickles).
ALLOW_PATTERNS = [
    "*.json",
    "*.safetensors",
    "*.txt",
    "*.model",
    "*.jinja",
    "*.tiktoken",
    "tokenizer*",
    "vocab*",
    "merges*",
]
PROBE_SECONDS = 2.0
_probe_cache: dict[str, tuple[float, bool]] = {}
_probe_lock = threading.Lock()


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_reachable(timeout: float = PROBE_SECONDS, max_age: float = 30.0) -> bool:
    """Can a TCP connection to the Hub be opened within `timeout` seconds? Remembered for `max_age` seconds."""
    url = urlparse(hub_endpoint())
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    with _probe_lock:
        seen = _probe_cache.get(host)
        if seen and time.monotonic() - seen[0] < max_age:
            return seen[1]
    result: list[bool] = []

    def probe() -> None:  # getaddrinfo ignores socket timeouts, so the whole probe runs in a thread we can leave
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True, name="hub-probe")
    thread.start()
    thread.join(timeout)
    ok = bool(result and result[0])
    with _probe_lock:
        _probe_cache[host] = (time.monotonic(), ok)
    return ok


def looks_like_path(model_id: str) -> bool:
    """A hub id is "owner/name"; anything else with a slash, a dot or a drive in front is a folder path."""
    return model_id.startswith(("/", ".", "~")) or "\\" in model_id or model_id.count("/") > 1 or model_id[1:2] == ":"


def resolve(
    model_id: str,
    *,
    setting: str,
    offline: bool = False,
    revision: str | None = None,
    tiny_dir: Path | None = None,
    allow_patterns: list[str] | None = None,
    ignore_patterns: list[str] | None = None,
) -> Path:
    """A local folder holding the model `model_id` (downloading it if needed and allowed).

    `setting` names the STUDIO_* variable that points at a local folder instead, for the error messages.
    Raises ModelUnavailable with one sentence that names the model and the fix.
    """
    model_id = (model_id or "").strip()
    if not model_id:
        raise ModelUnavailable(f"No model is chosen: pick one from the list or set {setting}.")
    if model_id.startswith("tiny:"):
        from core import tiny

        return tiny.ensure(model_id, tiny_dir or tiny.default_dir())
    expanded = Path(model_id).expanduser()
    if expanded.is_dir():
        return expanded
    if looks_like_path(model_id):
        raise ModelUnavailable(f"The model folder {model_id!r} does not exist. Check the path given in {setting}.")

    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    patterns = allow_patterns or ALLOW_PATTERNS
    online = not offline and hub_reachable()
    try:
        return Path(
            snapshot_download(
                model_id,
                revision=revision,
                allow_patterns=patterns,
                ignore_patterns=ignore_patterns,
                local_files_only=not online,
            )
        )
    except (LocalEntryNotFoundError, FileNotFoundError):
        why = "the studio is in offline mode" if offline else "the Hugging Face Hub cannot be reached"
        raise ModelUnavailable(
            f"The model '{model_id}' is not downloaded on this machine and {why}. Connect to the internet once so "
            f"the studio can download it, or set {setting} to a local folder that holds the model."
        ) from None
    except GatedRepoError:
        raise ModelUnavailable(
            f"The model '{model_id}' is gated on the Hugging Face Hub: accept its licence on its page and log in "
            "with `hf auth login` (or set HF_TOKEN), then try again."
        ) from None
    except RepositoryNotFoundError:
        raise ModelUnavailable(
            f"There is no model called '{model_id}' on the Hugging Face Hub. Check the spelling (owner/name), or "
            f"set {setting} to a local folder."
        ) from None
    except HFValidationError:
        raise ModelUnavailable(
            f"'{model_id}' is neither a local folder nor a Hugging Face model id (owner/name). Check {setting}."
        ) from None
    except RevisionNotFoundError:
        raise ModelUnavailable(f"The model '{model_id}' has no revision {revision!r}.") from None
    except (HfHubHTTPError, OSError) as exc:
        log.warning("download of %s failed: %s", model_id, exc)
        raise ModelUnavailable(
            f"Downloading the model '{model_id}' failed ({type(exc).__name__}). Check the connection and try "
            f"again, or set {setting} to a local folder."
        ) from None


def weight_bytes(folder: Path) -> int:
    """Bytes of safetensors weights in a model folder: the estimate of its size in memory before loading."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*.safetensors") if p.is_file())


def unloadable(model_id: str, folder: Path, setting: str, exc: BaseException) -> ModelUnavailable:
    """The sentence for a model whose files are there but do not load."""
    log.warning("loading %s from %s failed", model_id, folder, exc_info=exc)
    if not any(Path(folder).rglob("*.safetensors")):
        return ModelUnavailable(
            f"The model '{model_id}' has no safetensors weights; the studio never loads pickled weights "
            f"(.bin, .ckpt, .pt). Use a copy of the model in safetensors format, or change {setting}."
        )
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    return ModelUnavailable(
        f"The model '{model_id}' could not be loaded ({first_line}). Its files may be incomplete or corrupt: "
        f"download it again, or check {setting}."
    )


def revision_of(folder: str | Path) -> str | None:
    """The Hub commit of a model folder in the Hugging Face cache (…/snapshots/<commit>), else None."""
    folder = Path(str(folder))
    return folder.name if folder.parent.name == "snapshots" else None
