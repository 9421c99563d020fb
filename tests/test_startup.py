"""The UI must be up before torch, diffusers or transformers are imported."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_building_the_app_imports_no_heavy_library():
    code = (
        "import sys, studio\n"
        "from core.settings import Settings\n"
        "from app.server import build_app\n"
        "build_app(Settings())\n"
        "print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_bad_settings_stop_the_launch_with_a_sentence():
    env = {**os.environ, "STUDIO_DEVICE": "tpu"}
    out = subprocess.run([sys.executable, "studio.py"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2
    assert "STUDIO_DEVICE must be auto" in out.stderr and "Traceback" not in out.stderr


def test_the_history_key_outlives_a_restart(tmp_path):
    """Browsers keep their history encrypted with a key; a new key at each launch would make every stored history
    unreadable after a restart, so the key is kept in the cache folder (readable by the studio's user only)."""
    import gradio as gr

    from app.server import build_app
    from core.settings import Settings

    def history_key(cache_dir):
        demo = build_app(Settings(cache_dir=cache_dir, output_dir=tmp_path / "out"))
        (stored,) = [b for b in demo.blocks.values() if isinstance(b, gr.BrowserState)]
        return stored.secret

    first, again = history_key(tmp_path / "cache"), history_key(tmp_path / "cache")
    assert first and first == again
    assert history_key(tmp_path / "another-cache") != first
    assert (tmp_path / "cache" / "browser-state.key").stat().st_mode & 0o077 == 0
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    # cannot keep it: the app still builds, with Gradio's default of a new key per launch
    assert history_key(blocked / "cache") != history_key(blocked / "cache")
