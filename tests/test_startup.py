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
    """A History comes back from the browser sealed with a key that never leaves the server; a new key at each
    launch would drop every stored History after a restart, so the key is kept in the cache folder (readable by
    the studio's user only). Where it cannot be kept, the studio still starts, with a key for this run."""
    from core.history import KEY_FILE, Seals, load_key

    first, again = load_key(tmp_path / "cache"), load_key(tmp_path / "cache")
    assert len(first) == 32 and first == again
    assert load_key(tmp_path / "another-cache") != first
    assert (tmp_path / "cache" / KEY_FILE).stat().st_mode & 0o077 == 0
    made = tmp_path / "out" / "image" / "a.png"
    made.parent.mkdir(parents=True)
    made.write_bytes(b"png")
    entry = {"time": "1", "tab": "Image", "summary": "a", "files": [str(made)], "preview": None}
    sealed = Seals(first, [tmp_path / "out"]).seal([entry])
    assert Seals(again, [tmp_path / "out"]).check(sealed)[0]["files"] == [str(made.resolve())]  # after a restart
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert load_key(blocked / "cache") != load_key(blocked / "cache")
