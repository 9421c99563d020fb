"""`python studio.py generate ...`: the same engines as the UI without a server, the same results as the API."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, tiny_dir, out):
    env = {**os.environ, "STUDIO_CACHE_DIR": str(tiny_dir.parent)}
    return subprocess.run(
        [sys.executable, "studio.py", "generate", *args, "--tiny", "--output-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_image_matches_the_api(client, tiny_dir, tmp_path):
    done = cli("image", "--prompt", "a quiet harbour", "--seed", "5", tiny_dir=tiny_dir, out=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = done.stdout.splitlines()  # only the saved paths on stdout: path=$(studio.py generate image ...) works
    assert "seed 5" in done.stderr.splitlines() and Path(path).exists() and Path(path).with_suffix(".json").exists()
    _p, gallery, *_ = client.predict(prompt="a quiet harbour", seed=5, api_name="/generate_image")
    api_file = gallery[0]["image"] if isinstance(gallery[0]["image"], str) else gallery[0]["image"]["path"]
    assert (np.asarray(Image.open(path)) == np.asarray(Image.open(api_file))).all()


def test_cli_text_matches_the_api(client, tiny_dir, tmp_path):
    done = cli(
        "text", "--prompt", "Hello there", "--seed", "9", "--max-new-tokens", "12", tiny_dir=tiny_dir, out=tmp_path
    )
    assert done.returncode == 0, done.stderr
    (transcript,) = map(Path, done.stdout.splitlines())
    answer = json.loads(transcript.with_suffix(".json").read_text())["answer"]
    assert answer == client.predict(prompt="Hello there", seed=9, max_new_tokens=12, api_name="/generate_text")


def test_cli_music_and_refusals(tiny_dir, tmp_path):
    done = cli("music", "--prompt", "calm piano", "--duration", "1", "--seed", "2", tiny_dir=tiny_dir, out=tmp_path)
    assert done.returncode == 0 and done.stdout.strip().endswith(".wav")
    first = done.stdout.strip()
    more = cli(
        "music", "--prompt", "calm piano", "--duration", "1", "--continue", first, tiny_dir=tiny_dir, out=tmp_path
    )
    assert more.returncode == 0
    import soundfile as sf

    assert sf.info(more.stdout.strip()).frames == 2 * 32000  # the clip, then one second more
    refused = cli(
        "faceswap",
        "--source",
        "assets/faces/grace_hopper.jpg",
        "--target",
        "assets/faces/astronaut.jpg",
        tiny_dir=tiny_dir,
        out=tmp_path,
    )
    assert refused.returncode == 2 and refused.stderr.startswith("studio.py: Tick the consent box")
    assert "Traceback" not in refused.stderr
    swapped = cli(
        "faceswap",
        "--source",
        "assets/faces/grace_hopper.jpg",
        "--target",
        "assets/faces/astronaut.jpg",
        "--consent",
        tiny_dir=tiny_dir,
        out=tmp_path,
    )
    assert swapped.returncode == 0 and swapped.stdout.strip().endswith(".png")


def test_cli_inpaints_outpaints_and_refuses_an_unknown_sampler(tiny_dir, tmp_path):
    photo = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 16, 64))
    mask.save(tmp_path / "mask.png")
    args = ["image", "--prompt", "a door", "--init-image", str(tmp_path / "photo.png"), "--strength", "1"]
    done = cli(*args, "--mask", str(tmp_path / "mask.png"), "--sampler", "UniPC", tiny_dir=tiny_dir, out=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = map(Path, done.stdout.splitlines())
    assert (np.asarray(Image.open(path).convert("RGB"))[:, 32:] == photo[:, 32:]).all()
    assert json.loads(path.with_suffix(".json").read_text())["sampler"] == "UniPC"
    wider = cli(*args, "--outpaint", "right", "--outpaint-pixels", "32", tiny_dir=tiny_dir, out=tmp_path)
    assert wider.returncode == 0, wider.stderr
    assert Image.open(wider.stdout.strip()).size == (96, 64)
    refused = cli("image", "--prompt", "x", "--sampler", "Euler z", tiny_dir=tiny_dir, out=tmp_path)
    assert refused.returncode == 2 and "The sampler 'Euler z' is not offered here" in refused.stderr


def test_cli_help_lists_the_options():
    done = subprocess.run(
        [sys.executable, "studio.py", "generate", "image", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--negative-prompt" in done.stdout and "--init-image" in done.stdout


def test_cli_extras_upscales_and_prints_only_the_path(tiny_dir, tmp_path):
    picture = ROOT / "assets" / "faces" / "grace_hopper.jpg"
    done = cli("extras", "--image", str(picture), "--upscaler", "tiny-compact-x4", "--scale", "2", tiny_dir=tiny_dir,
               out=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (path,) = done.stdout.splitlines()
    assert Image.open(path).size == tuple(2 * side for side in Image.open(picture).size)
    refused = cli("extras", "--image", str(picture), "--scale", "4", tiny_dir=tiny_dir, out=tmp_path)
    assert refused.returncode == 2 and "Choose an upscaler to make the picture larger" in refused.stderr
