"""What a prompt becomes before the model reads it: styles that wrap it (Fooocus's kind: a JSON list of
{"name", "prompt" with {prompt} in it, "negative_prompt"}, the studio's own in assets/styles.json plus any in
STUDIO_STYLES_FILE) and `__name__` wildcards, each a line drawn from name.txt in STUDIO_WILDCARDS_DIR with a
generator seeded by the image's seed, so the same seed always draws the same lines."""

import json
import random
import re
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.settings import Settings

BUILT_IN = Path(__file__).resolve().parent.parent.parent / "assets" / "styles.json"
WILDCARD = re.compile(r"__([\w\-/]+?)__")
MAX_DEPTH = 5  # a drawn line may hold wildcards of its own, this deep
MAX_STYLES = 8


def _read_styles(path: Path) -> list[dict[str, Any]]:
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
        return [e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)]
    except (OSError, ValueError, TypeError):
        raise UserError(
            f"The styles file {path} is not a JSON list of styles: fix it or unset STUDIO_STYLES_FILE."
        ) from None


def styles(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every style by name: the built-in ones, then the operator's file (a style of the same name replaces ours)."""
    found = {s["name"]: s for s in _read_styles(BUILT_IN)}
    extra = settings.styles_file
    if extra and Path(extra).is_file():
        found.update({s["name"]: s for s in _read_styles(Path(extra))})
    return found


def apply_styles(settings: Settings, prompt: str, negative: str, chosen: Any) -> tuple[str, str]:
    """The prompt and negative prompt wrapped by each chosen style, in order."""
    names = [chosen] if isinstance(chosen, str) else list(chosen or [])
    if not names:
        return prompt, negative
    if len(names) > MAX_STYLES:
        raise UserError(f"Choose at most {MAX_STYLES} styles (styles); got {len(names)}.")
    offered = styles(settings)
    for name in names:
        if name not in offered:
            raise UserError(f"There is no style called {name!r:.60} (styles). Choose from: {', '.join(offered)}.")
        style = offered[name]
        template = style.get("prompt") or "{prompt}"
        prompt = template.replace("{prompt}", prompt) if "{prompt}" in template else f"{prompt}, {template}"
        negative = ", ".join(p for p in (negative, style.get("negative_prompt") or "") if p.strip())
    return prompt, negative


def wildcard_files(settings: Settings) -> dict[str, Path]:
    """name -> file for each .txt in the wildcards folder ("colours", or "animals/birds" in a subfolder)."""
    folder = Path(settings.wildcards_dir)
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).with_suffix("").as_posix(): p for p in sorted(folder.rglob("*.txt"))}


def expand_wildcards(settings: Settings, text: str, seed: int) -> tuple[str, dict[str, list[str]]]:
    """`text` with each __name__ replaced by a line of name.txt, drawn with random.Random(seed): (the text, what
    was drawn for each name). Only files of the wildcards folder are read: a name is never turned into a path."""
    if "__" not in (text or ""):
        return text, {}
    files, rng, drawn = wildcard_files(settings), random.Random(seed), {}
    lines: dict[str, list[str]] = {}

    def draw(match: re.Match) -> str:
        name = match.group(1)
        if name not in files:
            known = ", ".join(list(files)[:8]) or "none yet"
            raise UserError(
                f"There is no wildcard file {name!r:.60}.txt in the wildcards folder ({settings.wildcards_dir}, "
                f"STUDIO_WILDCARDS_DIR). Available: {known}."
            )
        if name not in lines:
            text = files[name].read_text(encoding="utf-8", errors="replace")
            lines[name] = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if not lines[name]:
            raise UserError(f"The wildcard file {name}.txt has no lines to draw from.")
        choice = rng.choice(lines[name])
        drawn.setdefault(name, []).append(choice)
        return choice

    for _ in range(MAX_DEPTH):
        text, count = WILDCARD.subn(draw, text)
        if not count:
            break
    return text, drawn
