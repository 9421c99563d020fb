"""Where a model's files come from: a local folder, a tiny model built here, or the Hugging Face Hub.

The Hub is asked at most once per model: a quick reachability probe (a TCP connection, 2 s at most) decides
between downloading (with tqdm progress, which the UI tracks) and using the local cache only, so an offline
machine gets a clear sentence in well under 5 s instead of huggingface_hub's retries (23-46 s).
Only safetensors weights and the small config/tokenizer files are ever downloaded.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
MANIFEST = Path(__file__).with_name("hub_manifest.json")  # the curated repos' file listings (see there)
WEIGHTS = (".safetensors", ".bin")  # weight files, for sizes and memory estimates
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


@functools.cache
def manifest() -> dict[str, dict]:
    """The curated repos' listings (hub_manifest.json): repo -> {"revision", "complete", "files": {path: bytes}}."""
    return {k: v for k, v in json.loads(MANIFEST.read_text()).items() if not k.startswith("_")}


def repo_files(model_id: str, revision: str | None = None, online: bool = False) -> dict[str, int | None] | None:
    """A repo's files and sizes: the manifest's where it lists the whole repo; else the Hub's listing when the Hub
    can be reached; else what the manifest lists; else None (not known)."""
    listed = manifest().get(model_id) if revision is None else None
    if listed is not None and listed.get("complete"):
        return dict(listed["files"])
    if online:
        try:
            from huggingface_hub import HfApi

            info = HfApi().model_info(model_id, revision=revision, files_metadata=True)
            return {s.rfilename: s.size for s in info.siblings or []}
        except Exception:  # the download that follows says what is wrong, in words
            log.debug("no file listing for %s", model_id, exc_info=True)
    return dict(listed["files"]) if listed is not None else None


def selected(files: Iterable[str], patterns: list[str], ignore: list[str] | None = None) -> list[str]:
    """The files snapshot_download takes from `files` for these patterns (huggingface_hub's own filter)."""
    from huggingface_hub.utils import filter_repo_objects

    return list(filter_repo_objects(list(files), allow_patterns=patterns, ignore_patterns=ignore))


@dataclass
class Download:
    """What a download is about to fetch, told before it starts (ModelCache checks it against the memory budget)."""

    model_id: str
    files: dict[str, int | None]  # every file the model needs -> bytes (None: not recorded)
    missing: list[str]  # those not on this machine yet

    @property
    def bytes(self) -> int:
        """Bytes to download, as far as recorded."""
        return sum(self.files.get(f) or 0 for f in self.missing)

    @property
    def sized(self) -> bool:
        """Are the sizes of all the weights to download recorded?"""
        return all(self.files.get(f) is not None for f in self.missing if f.endswith(WEIGHTS))


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
    allow_patterns: list[str] | Callable[[dict | None], list[str]] | None = None,
    ignore_patterns: list[str] | None = None,
    before_download: Callable[[Download], None] | None = None,
) -> Path:
    """A local folder holding the model `model_id` (downloading it if needed and allowed).

    `setting` names the STUDIO_* variable that points at a local folder instead, for the error messages.
    `allow_patterns` may be a function of the repo's files (None: not known) choosing what to take, e.g. fp16
    weights where a repo has them. A model whose files are all on this machine is used without asking the Hub;
    `before_download` hears what is about to be fetched (and may refuse it by raising).
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

    online = not offline and hub_reachable()

    def choose(files: dict | None) -> list[str]:
        return allow_patterns(files) if callable(allow_patterns) else allow_patterns or ALLOW_PATTERNS

    try:
        local = _local_snapshot(model_id, revision)
        if local is not None:  # downloaded before: used as it is when nothing it needs is missing (no Hub call)
            known = repo_files(model_id, revision, online=False)
            missing = _missing(local, known, choose(known), ignore_patterns)
            if not missing or not online:
                return local
        if not online:
            raise LocalEntryNotFoundError(model_id)
        files = repo_files(model_id, revision, online=True)
        patterns = choose(files)
        if before_download is not None and files is not None:
            wanted = selected(files, patterns, ignore_patterns)
            missing = [f for f in wanted if local is None or not (local / f).exists()]
            before_download(Download(model_id, {f: files.get(f) for f in wanted}, missing))
        options = dict(revision=revision, allow_patterns=patterns, ignore_patterns=ignore_patterns)
        return Path(snapshot_download(model_id, **options))
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


def _local_snapshot(model_id: str, revision: str | None) -> Path | None:
    """The model's folder in the Hugging Face cache if it has been downloaded before, else None (no network)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None


def _missing(local: Path, files: dict | None, patterns: list[str], ignore: list[str] | None) -> list[str]:
    """What a model needs that its local folder lacks: the listed files the patterns select; with no listing, its
    weights (a folder without any weights the patterns allow is missing them)."""
    if files is not None:
        return [f for f in selected(files, patterns, ignore) if not (local / f).exists()]
    here = [str(p.relative_to(local)) for p in local.rglob("*") if p.is_file()]
    return [] if any(f.endswith(WEIGHTS) for f in selected(here, patterns, ignore)) else ["weights"]


def weight_bytes(folder: Path) -> int:
    """Bytes of safetensors weights in a model folder: the estimate of its size in memory before loading."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*.safetensors") if p.is_file())


def unloadable(model_id: str, folder: Path, setting: str, exc: BaseException) -> ModelUnavailable:
    """The sentence for a model whose files are there but do not load."""
    log.warning("loading %s from %s failed", model_id, folder, exc_info=exc)
    chain = [exc]
    while chain[-1].__cause__ or chain[-1].__context__:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    if any("Weights only load failed" in str(e) for e in chain):  # torch's weights_only loading refused a pickle
        return ModelUnavailable(
            f"A weights file of the model '{model_id}' holds more than tensors (a pickle that could run code when "
            f"read), so the studio refused to read it. Use a copy of the model in safetensors format, or change "
            f"{setting}."
        )
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
