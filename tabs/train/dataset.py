"""The Train tab's pictures: uploads (PNG, JPEG, WebP) and zips of them, with kohya-style captions beside them
(`name.txt` in the zip), checked before anything is decoded; captions edited in the page's table; BLIP captions for
the rest. Plain Python."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from core import checks
from core.errors import UserError

MIN_PICTURES, MAX_PICTURES = 5, 50
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_PICTURE_BYTES = 40_000_000  # one picture (compressed) in a zip
MAX_ZIP_BYTES = 600_000_000  # all the pictures of one zip, as they are inside it once unpacked
MAX_ZIP_MEMBERS = 1000  # entries a zip may list (pictures, captions, anything else)
MAX_CAPTION_CHARS = 1000
UNREADABLE = "The picture {name!r} (images) is not a picture the studio can read (PNG, JPEG or WebP)."


@dataclass
class Picture:
    name: str  # its file name, as the user knows it
    image: Any  # PIL RGB
    sha256: str
    caption: str = ""  # from a .txt beside it in a zip, the table, or BLIP


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


MAX_SIDE = 1536  # a picture is kept no larger than this (training crops at most 1024 px): 50 kept pictures, ~350 MB


def _open(data: bytes, name: str) -> Any:
    """One picture, decoded (checked from its header first), then shrunk: only one full-size picture is ever held."""
    stream = io.BytesIO(data)
    image = checks.open_image_file(stream, f"picture {name!r} (images)", UNREADABLE.format(name=name))
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


def _from_zip(path: Path, name: str) -> list[Picture]:
    """The pictures of a zip, read in memory from its listing (sizes known before anything is unpacked; names are
    never made paths), each with the caption of the .txt of the same name beside it."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise UserError(f"The zip {name!r} (images) cannot be read: is it complete?") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise UserError(f"The zip {name!r} (images) lists {len(members)} files; the limit is {MAX_ZIP_MEMBERS}.")
        pictures = [m for m in members if not m.is_dir() and PurePosixPath(m.filename).suffix.lower() in SUFFIXES]
        pictures = [m for m in pictures if not PurePosixPath(m.filename).name.startswith((".", "__MACOSX"))]
        if sum(m.file_size for m in pictures) > MAX_ZIP_BYTES or any(
            m.file_size > MAX_PICTURE_BYTES for m in pictures
        ):
            raise UserError(f"The zip {name!r} (images) holds pictures too large for training: keep each under "
                            f"{MAX_PICTURE_BYTES // 1_000_000} MB.")  # fmt: skip
        if len(pictures) > MAX_PICTURES:
            raise UserError(f"The zip {name!r} (images) holds {len(pictures)} pictures; the limit is {MAX_PICTURES}.")
        texts = {
            PurePosixPath(m.filename).with_suffix("").as_posix(): m for m in members if m.filename.endswith(".txt")
        }
        found = []
        for member in pictures:
            try:
                data = archive.read(member)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError):  # damaged, encrypted
                raise UserError(f"The picture {member.filename!r} in the zip (images) cannot be unpacked.") from None
            caption = ""
            beside = texts.get(PurePosixPath(member.filename).with_suffix("").as_posix())
            if beside is not None and beside.file_size <= 4 * MAX_CAPTION_CHARS:
                caption = archive.read(beside).decode("utf-8", "replace").strip()[:MAX_CAPTION_CHARS]
            shown = PurePosixPath(member.filename).name
            found.append(Picture(shown, _open(data, shown), _sha256(data), caption))
    return found


def gather(images: Any, minimum: int = MIN_PICTURES) -> list[Picture]:
    """The pictures of `images` (paths of pictures and zips, in order), checked: readable, not too large, 5 to 50
    (at least `minimum`)."""
    if images in (None, ""):
        images = []
    if isinstance(images, (str, Path)):
        images = [images]
    if not isinstance(images, Iterable):
        raise UserError("Give the pictures to learn from (images): 5 to 50 PNG, JPEG or WebP files, or a zip of them.")
    found: list[Picture] = []
    for item in images:
        path = Path(item["path"] if isinstance(item, dict) else item)
        name = path.name
        if path.suffix.lower() == ".zip":
            found += _from_zip(path, name)
        else:
            try:
                data = path.read_bytes()
            except OSError:
                raise UserError(UNREADABLE.format(name=name)) from None
            found.append(Picture(name, _open(data, name), _sha256(data)))
        if len(found) > MAX_PICTURES:
            raise UserError(f"That is more than {MAX_PICTURES} pictures (images): choose the best {MAX_PICTURES}.")
    if len(found) < minimum:
        raise UserError(
            f"Give at least {minimum} pictures (images) to learn from; {len(found)} given. 10-30 varied pictures "
            "of the subject or style work best."
        )
    return found


def listing(images: Any) -> list[list[str]]:
    """[name, caption] for each picture of `images`, from file names and zip listings alone (nothing is decoded):
    the page's table while pictures are added."""
    rows = []
    for item in images or []:
        path = Path(item["path"] if isinstance(item, dict) else item)
        if path.suffix.lower() != ".zip":
            rows.append([path.name, ""])
            continue
        try:
            with zipfile.ZipFile(path) as archive:
                members = archive.infolist()[:MAX_ZIP_MEMBERS]
                texts = {m.filename[: -len(".txt")]: m for m in members if m.filename.endswith(".txt")}
                for member in members:
                    stem, suffix = (
                        PurePosixPath(member.filename).with_suffix(""),
                        PurePosixPath(member.filename).suffix,
                    )
                    if member.is_dir() or suffix.lower() not in SUFFIXES or stem.name.startswith("."):
                        continue
                    beside = texts.get(stem.as_posix())
                    caption = ""
                    if beside is not None and beside.file_size <= 4 * MAX_CAPTION_CHARS:
                        caption = archive.read(beside).decode("utf-8", "replace").strip()[:MAX_CAPTION_CHARS]
                    rows.append([PurePosixPath(member.filename).name, caption])
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError):
            raise UserError(f"The zip {path.name!r} (images) cannot be read: is it complete?") from None
        if len(rows) > MAX_PICTURES:
            break
    return rows[:MAX_PICTURES]


def apply_captions(pictures: list[Picture], captions: Any) -> None:
    """The captions of the page's table (rows of [picture name, caption], or a list of captions in picture order)
    put on the pictures; a picture the table does not name keeps the one from its zip."""
    if captions in (None, ""):
        return
    rows = captions.get("data", []) if isinstance(captions, dict) else captions
    if not isinstance(rows, list) or len(rows) > MAX_PICTURES * 2:
        raise UserError("The captions (captions) must be a table of [picture, caption] rows.")
    by_name: dict[str, str] = {}
    for i, row in enumerate(rows):
        if isinstance(row, str):
            name, text = (pictures[i].name if i < len(pictures) else ""), row
        elif isinstance(row, (list, tuple)) and len(row) == 2:
            name, text = str(row[0] or ""), row[1]
        else:
            raise UserError("The captions (captions) must be a table of [picture, caption] rows.")
        by_name[name] = checks.check_text(text or "", checks.named("captions", "caption"), MAX_CAPTION_CHARS, False)
    for picture in pictures:
        if picture.name in by_name:
            picture.caption = by_name[picture.name]


def buckets(side: int) -> list[tuple[int, int]]:
    """Aspect-ratio buckets as kohya's scripts make them: (width, height) sizes of about side x side pixels, in steps
    of 64 (of side/8 below 256 px), from 1:2 to 2:1, the square among them."""
    step = 64 if side >= 256 else max(8, side // 8)
    if side % step:
        return [(side, side)]
    found = set()
    for width in range(step, 2 * side + 1, step):
        height = min(2 * side, side * side // width // step * step)
        if height >= step and max(width, height) <= 2 * min(width, height):
            found.update({(width, height), (height, width)})
    return sorted(found, key=lambda size: size[0] / size[1])


def bucket_of(image: Any, sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose shape is nearest the picture's (it then loses the least to the crop)."""
    import math

    aspect = math.log(image.width / image.height)
    return min(sizes, key=lambda size: (abs(math.log(size[0] / size[1]) - aspect), size[0] != size[1]))


def fitted(image: Any, size: tuple[int, int]) -> Any:
    """The picture scaled to cover `size` (width, height) and cropped to it around its middle."""
    from PIL import ImageOps

    return ImageOps.fit(image, size)
