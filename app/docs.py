"""The reference pages made from the code, so that they cannot drift from it: docs/settings.md from Settings (each
field's STUDIO_* variable, flag, type, default and comment) and docs/api.md from the app's API (each endpoint, what
it does, its parameters with their defaults, what it returns).

    python -m app.docs            # write both pages
    python -m app.docs --check    # exit 1 if either differs from what the code says (CI runs this through the tests)
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import io
import json
import re
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_PAGE = ROOT / "docs" / "settings.md"
API_PAGE = ROOT / "docs" / "api.md"
# Defaults that the source spells as code: how a reader should see them.
SHOWN_DEFAULTS = {"cache_dir": "`~/.cache/studio` (`$XDG_CACHE_HOME/studio` where that is set)"}


def field_comments() -> dict[str, str]:
    """Each Settings field's comment, read from core/settings.py (the one place it is written)."""
    from core import settings

    source = Path(settings.__file__).read_text()
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("# ").strip()
    (cls,) = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "Settings"]
    found = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            lines = range(node.lineno, node.end_lineno + 1)
            found[node.target.id] = " ".join(comments[n] for n in lines if n in comments)
    return found


def _default(name: str, value: object) -> str:
    if name in SHOWN_DEFAULTS:
        return SHOWN_DEFAULTS[name]
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"`{value}`"


def _flags() -> dict[str, str]:
    """The command-line flag of each setting that has one (studio.py's parser)."""
    import studio

    flags = {}
    for action in studio.parser()._actions:
        if action.dest != "help" and action.option_strings:
            flags[action.dest] = action.option_strings[0]
    return flags


def _code(text: str) -> str:
    """A comment as Markdown shows it literally: <tags>, __wildcards__ and *.globs in backticks."""
    return re.sub(r"(<[^>]+>|__\w+__|\*\.[\w.]+)", r"`\1`", text).replace("|", "\\|")


def settings_markdown() -> str:
    from core.settings import Settings, classroom_limits, env_name

    comments, flags, defaults = field_comments(), _flags(), Settings()
    classroom = classroom_limits(Settings(classroom=True))
    lines = [
        "# Settings",
        "",
        "<!-- Made by `python -m app.docs` from core/settings.py: edit the comments there, not this page. -->",
        "",
        "Every setting is an environment variable (`STUDIO_*`); a few also have a flag of `python studio.py`, which",
        "wins over the variable. Booleans take 1/0, true/false, yes/no or on/off. A bad value stops the studio at",
        "start with a sentence. Classroom mode (`STUDIO_CLASSROOM=1`) lowers some limits (the last column).",
        "Gradio's `GRADIO_SERVER_NAME`/`GRADIO_SERVER_PORT` (set by Hugging Face Spaces) stand for the host and",
        "port when `STUDIO_HOST`/`STUDIO_PORT` are unset, and `HF_HUB_OFFLINE=1` means `STUDIO_OFFLINE=1`.",
        "",
        "| Variable | Flag | Default | What it does | In classroom mode |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in dataclasses.fields(Settings):
        flag = f"`{flags[f.name]}`" if f.name in flags else ""
        default, lowered = getattr(defaults, f.name), getattr(classroom, f.name)
        kept = "" if lowered == default or f.name == "classroom" else _default(f.name, lowered)
        row = [f"`{env_name(f.name)}`", flag, _default(f.name, default), _code(comments.get(f.name, "")), kept]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _type(parameter: dict, sent: bool = True) -> str:
    python = parameter.get("python_type", {}).get("type", "")
    if "filepath" in python or "FileData" in json.dumps(parameter.get("type", {})):
        return "file (`handle_file(path)`)" if sent else "file"
    described = parameter.get("type", {}).get("description", "")
    return f"{python}, {described}" if described else python


def _shown(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else f'"{value}"'
    return f"`{text[:60]}`"


def api_markdown(info: dict) -> str:
    """docs/api.md from a studio's API description (Blocks.get_api_info())."""
    lines = [
        "# The API",
        "",
        "<!-- Made by `python -m app.docs` from the studio's own API description: edit the tabs, not this page. -->",
        "",
        "Every endpoint below is what the page itself calls. From Python, with `pip install gradio_client`:",
        "",
        "```python",
        "from gradio_client import Client, handle_file",
        "",
        'client = Client("http://127.0.0.1:7860/")',
        'preview, pictures, status, seed, recipe = client.predict(prompt="a fox", api_name="/generate_image")',
        "```",
        "",
        "Files go in with `handle_file(path)` and come back as paths of local copies. A refused request raises",
        "`gradio_client.exceptions.AppError` with one sentence that names the parameter. The same endpoints are MCP",
        "tools with `STUDIO_MCP=1` (see [scaling.md](scaling.md)). Defaults shown are those of the curated models",
        "(a server started with `--tiny` shows its tiny models).",
        "",
    ]
    for name, endpoint in info["named_endpoints"].items():
        lines += [f"## `{name}`", "", _code(endpoint.get("description") or ""), ""]
        params = endpoint.get("parameters", [])
        if params:
            lines += ["| Parameter | Type | Default |", "| --- | --- | --- |"]
            for p in params:
                default = _shown(p["parameter_default"]) if p.get("parameter_has_default") else "required"
                lines.append(f"| `{p['parameter_name']}` | {_type(p)} | {default} |".replace("\n", " "))
            lines.append("")
        returns = []
        for value in endpoint.get("returns", []):
            label = value.get("label") or ""
            label = "status" if not label or label.startswith("value_") else label  # an unlabelled Markdown
            returns.append(f"{label} ({_type(value, sent=False)})")
        lines += [f"Returns: {'; '.join(returns) if returns else 'nothing'}.", ""]
    return "\n".join(lines)


def api_info() -> dict:
    """The API of a studio with the default settings and none of the operator's own folders (so the page does not
    depend on the machine it is made on); built, not launched: no model is loaded."""
    import os
    import tempfile

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from app.server import build_app
    from core.settings import Settings

    with tempfile.TemporaryDirectory() as empty:
        names = ("lora_dir", "embeddings_dir", "wildcards_dir", "checkpoint_dir")
        folders = {name: Path(empty) / name for name in names}
        settings = Settings(controlnet_dir=Path(empty) / "controlnet", cache_dir=Path(empty) / "cache", **folders)
        return build_app(settings).get_api_info()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write (or --check) docs/settings.md and docs/api.md.")
    parser.add_argument("--check", action="store_true", help="only say whether the pages are current (exit 1 if not)")
    args = parser.parse_args(argv)
    pages = {SETTINGS_PAGE: settings_markdown(), API_PAGE: api_markdown(api_info())}
    stale = [p for p, text in pages.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for page in stale:
            print(f"{page.relative_to(ROOT)} is not current: run python -m app.docs", file=sys.stderr)
        return 1 if stale else 0
    for page, text in pages.items():
        page.write_text(text)
        print(page.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
