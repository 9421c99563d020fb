"""Generative AI Studio: images, text, music and face swaps in one Gradio app.

    python studio.py [--host H] [--port P] [--share] [--device auto|cpu|cuda|mps] [--offline] [--tiny]
    python studio.py generate {image,text,music,faceswap} --prompt ... [options]   (no server; --help lists them)
    python studio.py serve-models --ray ADDRESS [options]   (deploy the engines on a Ray cluster)

Every flag can also be set with an environment variable (STUDIO_HOST, STUDIO_PORT, ...); flags win.
Only this file parses flags. Heavy libraries (torch, diffusers, transformers) load on first use, so the UI
serves in about the time of a bare Gradio app.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def parser() -> argparse.ArgumentParser:
    """The server's flags (each also a STUDIO_* variable; docs/settings.md lists them with every other setting)."""
    p = argparse.ArgumentParser(prog="studio.py", description="Generative AI Studio (Gradio web UI).")
    p.add_argument("--host", help="address to bind (env STUDIO_HOST, default 127.0.0.1; 0.0.0.0 for a network)")
    p.add_argument("--port", type=int, help="port (env STUDIO_PORT, default 7860)")
    p.add_argument("--share", action="store_true", default=None, help="public Gradio link (env STUDIO_SHARE)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="device (env STUDIO_DEVICE, default auto)")
    p.add_argument(
        "--offline", action="store_true", default=None, help="never contact the Hugging Face Hub (env STUDIO_OFFLINE)"
    )
    p.add_argument(
        "--tiny",
        action="store_true",
        default=None,
        help="tiny random-weight models built locally; outputs are noise (env STUDIO_TINY)",
    )
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parser().parse_args(argv)


def prepare_environment(offline: bool) -> None:
    """Set before gradio/huggingface_hub are imported: no analytics, no telemetry, and offline if asked."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"


def main(argv: list[str] | None = None, only: str | None = None) -> int:
    """Serve the studio (`only`: one tab by its package name, as `python -m tabs.<name>` does), or run `generate`."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["generate"]:
        prepare_environment(offline="--offline" in argv or os.environ.get("STUDIO_OFFLINE", "") in ("1", "true"))
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        from app.cli import run

        return run(argv[1:])
    if argv[:1] == ["serve-models"]:
        prepare_environment(offline=os.environ.get("STUDIO_OFFLINE", "") in ("1", "true"))
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        from app.engines import main as serve_models

        return serve_models(argv[1:])
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from core.settings import from_env

    try:
        settings = from_env(
            host=args.host, port=args.port, share=args.share, device=args.device, offline=args.offline, tiny=args.tiny
        )
    except ValueError as exc:
        print(f"studio.py: {exc}", file=sys.stderr)
        return 2
    prepare_environment(settings.offline)

    from app.server import build_app, launch

    tabs = None
    if only is not None:
        from tabs import TABS

        tabs = tuple((title, module) for title, module in TABS if module.__name__ == f"tabs.{only}")
    demo = build_app(settings, tabs=tabs)
    launch(demo, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
