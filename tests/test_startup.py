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
        "from core.app import build_app\n"
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
