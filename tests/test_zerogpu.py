"""On a ZeroGPU Space every generation must run inside a GPU grant: `spaces.GPU` has to wrap the function the tab's
handler runs (the whole generation), not a helper. The Space's runtime is not here, so a stand-in `spaces` package
records which functions ran inside a grant; the studio itself runs as on a Space (SPACES_ZERO_GPU=1) and is called
through its API."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.api
ROOT = Path(__file__).resolve().parent.parent

STAND_IN = '''
"""Stand-in for Hugging Face's `spaces` package: GPU(duration) records each call made inside a grant."""
import functools, inspect
granted = []

def GPU(duration=60):
    def wrap(fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen(*args, **kwargs):
                granted.append(fn.__name__)
                yield from fn(*args, **kwargs)
            return gen
        @functools.wraps(fn)
        def call(*args, **kwargs):
            granted.append(fn.__name__)
            return fn(*args, **kwargs)
        return call
    return wrap
'''

SCRIPT = """
import json, os, sys
from pathlib import Path
import spaces
from gradio_client import Client
from app.server import build_app, launch
from core.settings import Settings

s = Settings(host="127.0.0.1", port=int(os.environ["PORT"]), text_model=os.environ["TEXT"],
             image_model=os.environ["IMAGE"], music_model=os.environ["MUSIC"], video_model=os.environ["VIDEO"],
             output_dir=Path(os.environ["OUT"]),
             cache_dir=Path(os.environ["OUT"]) / "cache", offline=True, device="cpu")
demo = build_app(s)
launch(demo, s, block=False, warm=False, quiet=True)
client = Client(f"http://127.0.0.1:{s.port}/", analytics_enabled=False, verbose=False)
client.predict(prompt="hello", max_new_tokens=4, seed=1, api_name="/generate_text")
client.predict(prompt="a fox", steps=1, width=64, height=64, seed=1, api_name="/generate_image")
client.predict(prompt="jazz", duration=1, seed=1, api_name="/generate_music")
client.predict(text="Hello there.", seed=1, api_name="/speak")
client.predict(prompt="waves", num_frames=5, width=32, height=32, steps=1, seed=1, api_name="/generate_video")
demo.close()
print("GRANTED", json.dumps(spaces.granted))
"""


def test_every_generation_runs_inside_a_gpu_grant(tmp_path, tiny_text, tiny_image, tiny_music, tiny_dir):
    from helpers import free_port

    from core import tiny

    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "__init__.py").write_text(textwrap.dedent(STAND_IN))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "SPACES_ZERO_GPU": "1",
        "PORT": str(free_port()),
        "TEXT": str(tiny_text),
        "IMAGE": str(tiny_image),
        "MUSIC": str(tiny_music),
        "VIDEO": str(tiny.ensure("tiny:wan", tiny_dir)),
        "OUT": str(tmp_path / "out"),
    }
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    line = next((x for x in run.stdout.splitlines() if x.startswith("GRANTED ")), None)
    assert line, run.stdout[-2000:] + run.stderr[-4000:]
    granted = json.loads(line.removeprefix("GRANTED "))
    # each tab's whole generation (the function its handler runs) got the GPU, and no helper asked for its own grant
    assert set(granted) == {"generate_text", "generate_image", "generate_music", "speak", "generate_video"}, granted
