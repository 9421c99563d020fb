"""Where the neural engine's model files come from: the operator's folder (STUDIO_FACESWAP_MODEL_DIR), or, one click
away, the Hugging Face Hub, once the user has accepted their non-commercial research licence. Each downloaded file
must have its published SHA-256 before the studio runs it; one that does not is deleted. Never silently: nothing
is downloaded without the user's yes, and an operator can forbid it (STUDIO_ALLOW_MODEL_DOWNLOADS=0)."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import faces, hub, outputs
from core.errors import ModelUnavailable, UserError
from core.settings import Settings

log = logging.getLogger("studio.faceswap")
SETTING = "STUDIO_FACESWAP_MODEL_DIR"


@dataclass(frozen=True)
class NeuralFile:
    name: str  # what the engine calls it (faces.NEURAL_FILES)
    repo: str  # the Hugging Face model repo it is downloaded from
    path: str  # its path in that repo
    sha256: str  # the published file's checksum (the same file as insightface's release)
    megabytes: int


SOURCES = (
    NeuralFile(
        "inswapper_128.onnx",
        "ezioruan/inswapper_128.onnx",
        "inswapper_128.onnx",
        "e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af",
        554,
    ),
    NeuralFile(
        "w600k_r50.onnx",  # the ArcFace recogniser of insightface's buffalo_l pack
        "deepghs/insightface",
        "buffalo_l/w600k_r50.onnx",
        "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43",
        174,
    ),
)
LICENCE = (
    "The neural engine runs insightface's inswapper_128 and its ArcFace recogniser (buffalo_l). insightface "
    "releases them for **non-commercial research purposes only**: you may not use them, or what you make with "
    "them, commercially."
)
ACCEPT = "I accept insightface's non-commercial research licence for these models."
NOT_ACCEPTED = "Tick the licence box first: the neural engine's models are for non-commercial research only."


def verified(path: Path, expected: str) -> bool:
    """Is this the published file? (Hashed once while it stays the same: 554 MB take a second or two.)"""
    return outputs.file_sha256(path) == expected


def _from_hub(source: NeuralFile, offline: bool) -> Path:
    folder = hub.resolve(source.repo, setting=SETTING, offline=offline, allow_patterns=[source.path])
    path = folder / source.path
    if not path.is_file():
        raise ModelUnavailable(f"The Hub repo {source.repo} has no file {source.path}.")
    return path


def neural_paths(settings: Settings) -> tuple[Path, Path] | None:
    """(swapper, recogniser) when the neural engine can run: from the operator's folder, or downloaded earlier into
    the Hugging Face cache (and checked). None otherwise. Never downloads."""
    folder = settings.faceswap_model_dir
    if faces.neural_available(folder):
        return Path(folder) / faces.NEURAL_FILES[0], Path(folder) / faces.NEURAL_FILES[1]
    found = []
    for source in SOURCES:
        try:
            path = _from_hub(source, offline=True)
        except ModelUnavailable:
            return None
        if not verified(path, source.sha256):
            return None
        found.append(path)
    return found[0], found[1]


def download(settings: Settings, accept: Any, progress: Any = None) -> tuple[Path, Path]:
    """Fetch both files from the Hub into its cache (huggingface_hub's progress bars reach the page through
    gr.Progress(track_tqdm=True)), check their checksums, and return their paths. Refusals are one sentence."""
    if accept is not True:  # only a real yes
        raise UserError(NOT_ACCEPTED)
    if not settings.allow_model_downloads:
        raise UserError(
            "Model downloads are turned off on this studio (STUDIO_ALLOW_MODEL_DOWNLOADS=0). Its operator can put "
            f"inswapper_128.onnx and w600k_r50.onnx in a folder and set {SETTING} to it."
        )
    if settings.offline:
        raise UserError(f"The studio is offline: it cannot download the neural engine. Set {SETTING} instead.")
    paths = []
    for i, source in enumerate(SOURCES):
        if progress:
            progress(i / len(SOURCES), f"Downloading {source.name} ({source.megabytes} MB) from {source.repo}…")
        try:
            path = _from_hub(source, offline=False)
        except ModelUnavailable as exc:
            raise UserError(f"{exc} (The neural engine needs {source.name}.)") from None
        if not verified(path, source.sha256):
            log.warning("%s from %s has the wrong checksum: deleted", source.path, source.repo)
            Path(path).resolve().unlink(missing_ok=True)  # the cached blob, not only its link
            Path(path).unlink(missing_ok=True)
            raise UserError(
                f"{source.name} from {source.repo} is not the published file (its SHA-256 differs), so the studio "
                "deleted it and will not run it. Try again later, or put the right file in " + SETTING + "."
            )
        paths.append(path)
    return paths[0], paths[1]
