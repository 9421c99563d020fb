"""ControlNet and IP-Adapter on the tiny Stable Diffusion: a tiny ControlNet (ControlNetModel.from_unet on the tiny
UNet, its zero convolutions given weights) and a tiny IP-Adapter (CLIP image encoder + projection and attention
weights of the right shapes), built by core.tiny; the offline preprocessors on real photographs."""

import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from faces_helpers import ASTRONAUT, HOPPER
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw, ImageOps

from core import tiny
from core.errors import UserError
from core.png_recipes import parse_a1111, read_recipe
from tabs.image import control
from tabs.image.control import Control
from tabs.image.engine import ImageParams, generate_image
from tabs.image.ip_adapter import Reference


def pixels(cache, settings, **guides):
    params = ImageParams("a person in a garden", steps=2, width=64, height=64, seed=7)
    final = list(generate_image(cache, settings, params, **guides))[-1]
    return np.asarray(Image.open(final.images[0]).convert("RGB")).astype(int), final


def overlap(a, b) -> float:
    """Intersection over union of two drawings' strokes, each widened by 7 pixels (lines a few pixels apart match)."""
    import cv2

    a, b = (cv2.dilate(np.asarray(x).any(axis=2).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0 for x in (a, b))
    return (a & b).sum() / (a | b).sum()


# ------------------------------------------------------------------------------------------ preprocessors -----


def test_canny_draws_the_edges_of_the_picture():
    square = Image.new("RGB", (128, 128))
    ImageDraw.Draw(square).rectangle((32, 32, 95, 95), fill="white")
    edges = np.asarray(control.canny(square).convert("L"))
    assert set(np.unique(edges)) <= {0, 255}
    ys, xs = np.nonzero(edges)
    assert len(ys) > 200  # the whole outline, about 4 x 64 pixels
    on_border = (np.minimum(np.abs(xs - 32), np.abs(xs - 95)) <= 1) | (
        np.minimum(np.abs(ys - 32), np.abs(ys - 95)) <= 1
    )
    assert on_border.all()  # and nothing else
    photo = np.asarray(control.canny(Image.open(ASTRONAUT)).convert("L")) > 0
    assert 0.02 < photo.mean() < 0.4


def test_a_scribble_becomes_white_lines_on_black():
    sketch = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(sketch).line((8, 32, 56, 32), fill="black", width=3)
    lines = np.asarray(control.scribble(sketch).convert("L"))
    assert lines[32, 8:56].min() == 255 and lines[10].max() == 0
    assert np.array_equal(np.asarray(control.scribble(ImageOps.invert(sketch))), np.asarray(control.scribble(sketch)))


def test_the_pose_follows_the_person(shared_cache):
    """The OpenPose skeleton lies on the astronaut (nose on the face), and a mirrored photo gives a mirrored one."""
    photo = Image.open(ASTRONAUT).convert("RGB")
    drawn = np.asarray(control.pose(photo, shared_cache))
    assert drawn.any(axis=2).mean() > 0.005
    nose = drawn[120:150, 205:245].reshape(-1, 3)  # the astronaut's nose is near (225, 133)
    assert ((nose[:, 0] > 200) & (nose[:, 1] < 60) & (nose[:, 2] < 60)).any()  # OpenPose's red nose point
    mirrored = control.pose(ImageOps.mirror(photo), shared_cache)
    hopper = control.pose(Image.open(HOPPER).convert("RGB").resize(photo.size), shared_cache)
    assert overlap(drawn, ImageOps.mirror(mirrored)) > 0.35  # measured 0.53
    assert overlap(drawn, hopper) < 0.2  # another person's pose: 0.07
    with pytest.raises(UserError, match="No person was found"):
        control.pose(Image.new("RGB", (256, 256), "grey"), shared_cache)


# ------------------------------------------------------------------------------------------------ ControlNet ---


def test_a_depth_map_is_grey_near_bright(shared_cache, settings):
    s = settings.replace(depth_model=control.TINY_DEPTH)
    picture = control.read_picture(s, str(ASTRONAUT), "x")
    drawn = np.asarray(control.depth(picture, shared_cache, s))
    assert drawn.shape == (512, 512, 3) and (drawn[..., 0] == drawn[..., 2]).all()  # grey
    assert drawn.min() == 0 and drawn.max() == 255  # the nearest white, the farthest black
    with pytest.raises(UserError, match="Depth-Anything-V2-Small-hf' is not downloaded on this machine"):
        control.depth(picture, shared_cache, settings)  # the real default: not here, and the hub cannot be reached


def test_controlnet_changes_the_picture_and_strength_zero_does_not(shared_cache, settings):
    settings = settings.replace(depth_model=control.TINY_DEPTH)
    plain, _ = pixels(shared_cache, settings)
    for kind in control.TYPES:
        steered, final = pixels(shared_cache, settings, control=Control(str(ASTRONAUT), kind))
        assert np.abs(steered - plain).mean() > 2, kind  # measured: about 10 levels on the tiny model
        assert final.recipe["controlnet"]["type"] == kind and final.recipe["controlnet"]["model"] == "tiny:controlnet"
        off, _ = pixels(shared_cache, settings, control=Control(str(ASTRONAUT), kind, scale=0))
        assert np.array_equal(off, plain), kind
    astronaut, _ = pixels(shared_cache, settings, control=Control(str(ASTRONAUT)))
    hopper, _ = pixels(shared_cache, settings, control=Control(str(HOPPER)))
    assert np.abs(astronaut - hopper).mean() > 2  # another picture steers otherwise
    late, final = pixels(shared_cache, settings, control=Control(str(ASTRONAUT), start=0.5))
    assert np.abs(late - astronaut).mean() > 0.5 and np.abs(late - plain).mean() > 0.5  # only the second step
    assert final.recipe["controlnet"]["start"] == 0.5
    again, _ = pixels(shared_cache, settings)
    assert np.array_equal(again, plain)


def test_a_picture_that_is_already_a_map_is_used_as_it_is(shared_cache, settings, tmp_path):
    edges = control.canny(Image.open(ASTRONAUT).convert("RGB").resize((64, 64)))
    edges.save(tmp_path / "edges.png")
    as_map, final = pixels(shared_cache, settings, control=Control(str(tmp_path / "edges.png"), is_map=True))
    preprocessed, _ = pixels(shared_cache, settings, control=Control(str(tmp_path / "edges.png")))
    assert final.recipe["controlnet"]["preprocessor"] == "none"
    assert np.abs(as_map - preprocessed).mean() > 0.5  # Canny of a Canny map is another map


def test_a_controlnet_folder_of_the_operator(shared_cache, settings, tmp_path, tiny_dir):
    """A ControlNet in STUDIO_CONTROLNET_DIR, chosen by name, is the same model the tiny base uses by default; one
    made for another base model gets a sentence."""
    from diffusers import ControlNetModel

    folder = tmp_path / "controlnets"
    shutil.copytree(tiny.ensure("tiny:controlnet", tiny_dir), folder / "my-canny")
    ControlNetModel(
        block_out_channels=(4, 8), layers_per_block=1, cross_attention_dim=48, norm_num_groups=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), conditioning_embedding_out_channels=(4, 8),
    ).save_pretrained(folder / "wider")  # fmt: skip
    s = settings.replace(controlnet_dir=folder)
    assert list(control.available(s)) == ["my-canny", "wider"]
    automatic, _ = pixels(shared_cache, s, control=Control(str(ASTRONAUT)))
    named, final = pixels(shared_cache, s, control=Control(str(ASTRONAUT), model="my-canny"))
    assert np.array_equal(named, automatic) and final.recipe["controlnet"]["model"] == "my-canny"
    with pytest.raises(UserError, match="'wider' was made for other models, not for this tiny test model"):
        pixels(shared_cache, s, control=Control(str(ASTRONAUT), model="wider"))
    for name in ("../my-canny", "gone"):
        with pytest.raises(UserError, match="There is no ControlNet called"):
            pixels(shared_cache, s, control=Control(str(ASTRONAUT), model=name))


def test_models_without_a_controlnet_or_ip_adapter_get_a_sentence(settings):
    sd21 = SimpleNamespace(unet=SimpleNamespace(config=SimpleNamespace(cross_attention_dim=1024)))
    with pytest.raises(UserError, match="SD 2.x models .* have no ControlNets published in safetensors"):
        control.model_for(settings, Control("x"), sd21)
    sd15 = SimpleNamespace(unet=SimpleNamespace(config=SimpleNamespace(cross_attention_dim=768)))
    assert control.model_for(settings, Control("x", "Pose"), sd15) == "lllyasviel/control_v11p_sd15_openpose"
    from tabs.image import ip_adapter

    with pytest.raises(UserError, match="no IP-Adapter for Stable Diffusion 2.x"):
        ip_adapter.source_for(settings, sd21)
    assert ip_adapter.source_for(settings, sd15).weight == "models/ip-adapter_sd15.safetensors"


def test_an_unreachable_hub_names_the_controlnet(shared_cache, settings, tmp_path):
    s = settings.replace(controlnet_dir=tmp_path)
    sd15 = SimpleNamespace(unet=SimpleNamespace(config=SimpleNamespace(cross_attention_dim=768)))
    name = control.model_for(s, Control("x"), sd15)
    with pytest.raises(UserError, match="'lllyasviel/control_v11p_sd15_canny' is not downloaded on this machine"):
        with shared_cache.model("controlnet", name, control.load_controlnet, setting=control.SETTING):
            pass


# ---------------------------------------------------------------------------------------------- IP-Adapter ---


def test_an_image_prompt_changes_the_picture_and_scale_zero_does_not(shared_cache, settings):
    plain, _ = pixels(shared_cache, settings)
    astronaut, final = pixels(shared_cache, settings, reference=Reference(str(ASTRONAUT), 1.0))
    assert np.abs(astronaut - plain).mean() > 2  # measured: about 6 levels
    assert final.recipe["ip_adapter"]["scale"] == 1.0 and "ip-adapter" in final.recipe["ip_adapter"]["model"]
    hopper, _ = pixels(shared_cache, settings, reference=Reference(str(HOPPER), 1.0))
    assert np.abs(astronaut - hopper).mean() > 1  # another reference, another picture
    off, _ = pixels(shared_cache, settings, reference=Reference(str(ASTRONAUT), 0.0))
    assert np.array_equal(off, plain)
    after, _ = pixels(shared_cache, settings)
    assert np.array_equal(after, plain)  # taken out of the shared UNet cleanly
    both, final = pixels(shared_cache, settings, control=Control(str(ASTRONAUT)), reference=Reference(str(HOPPER)))
    assert {"controlnet", "ip_adapter"} <= set(final.recipe) and np.abs(both - plain).mean() > 2


def test_the_png_says_what_steered_it_and_restore_reads_it(shared_cache, settings):
    _, final = pixels(shared_cache, settings, control=Control(str(ASTRONAUT), "Pose", 0.8, 0.1, 0.9))
    recipe = read_recipe(final.images[0])
    assert recipe["controlnet"]["scale"] == 0.8 and len(recipe["controlnet"]["map_sha256"]) == 64
    text = Image.open(final.images[0]).text["parameters"]
    assert 'ControlNet 0: "Module: pose, Model: tiny:controlnet, Weight: 0.8, Guidance Start: 0.1' in text
    parsed = parse_a1111(text)
    assert parsed["controlnet"] == {"type": "Pose", "scale": 0.8, "start": 0.1, "end": 0.9}
    a1111 = (  # what AUTOMATIC1111's ControlNet extension writes
        "a house\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, ControlNet 0: \"Module: "
        'canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 0.65, Resize Mode: Crop and Resize, Guidance '
        'Start: 0, Guidance End: 0.8, Pixel Perfect: False", Version: v1.9.4'
    )  # fmt: skip
    assert parse_a1111(a1111)["controlnet"] == {"type": "Canny", "scale": 0.65, "start": 0.0, "end": 0.8}


def test_bad_guides_get_one_sentence(shared_cache, settings, tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    rows = [
        (dict(control=Control(str(ASTRONAUT), "Depthy")), "control type (control_type) must be one of Canny"),
        (dict(control=Control(str(ASTRONAUT), scale=3)), "control strength (control_scale) must be between 0 and 2"),
        (dict(control=Control(str(ASTRONAUT), start=0.9, end=0.2)), "control start (0.9) must come before"),
        (dict(control=Control(str(tmp_path / "notes.png"))), "control picture (control_image) is not an image"),
        (dict(reference=Reference(str(tmp_path / "notes.png"))), "reference picture (ip_adapter_image) is not an"),
        (dict(reference=Reference(str(ASTRONAUT), 2)), "image prompt scale (ip_adapter_scale) must be between 0"),
    ]
    for guides, sentence in rows:
        with pytest.raises(UserError, match=sentence.replace("(", r"\(").replace(")", r"\)")):
            pixels(shared_cache, settings, **guides)


# ------------------------------------------------------------------------------------------ API and CLI -----


def test_guides_through_the_api(client, server):
    _p, _g, status, _seed, recipe = client.predict(
        prompt="a lighthouse", steps=2, seed=3, control_image=handle_file(str(ASTRONAUT)), control_type="Canny",
        control_scale=0.7, ip_adapter_image=handle_file(str(HOPPER)), ip_adapter_scale=0.5, api_name="/generate_image",
    )  # fmt: skip
    assert recipe["controlnet"]["scale"] == 0.7 and recipe["ip_adapter"]["scale"] == 0.5, status
    made = client.predict(
        prompt="a tower", steps=2, control_image=handle_file(str(ASTRONAUT)), control_type="Scribble",
        control_scale=0.4, control_start=0.2, ip_adapter_image=handle_file(str(HOPPER)), ip_adapter_scale=0.9,
        api_name="/generate_image",
    )[1]  # fmt: skip
    restored = client.predict(file=handle_file(made[0]["image"]), api_name="/restore_image_settings")
    assert restored[-5:] == ("Scribble", 0.4, 0.2, 1.0, 0.9)  # type, strength, start, end, image prompt scale
    shown = client.predict(control_image=handle_file(str(ASTRONAUT)), control_type="Canny", api_name="/control_map")
    expected = control.canny(control.read_picture(server["settings"], str(ASTRONAUT), "x"))
    assert np.array_equal(np.asarray(Image.open(shown).convert("RGB")), np.asarray(expected))
    with pytest.raises(AppError, match="No person was found"):
        blank = server["settings"].output_dir.parent / "blank.png"
        Image.new("RGB", (128, 128), "grey").save(blank)
        client.predict(control_image=handle_file(str(blank)), control_type="Pose", api_name="/control_map")
    _p, gallery, *_ = client.predict(prompt="a boat", steps=2, seed=3, api_name="/generate_image")  # none: as ever
    assert "controlnet" not in read_recipe(gallery[0]["image"])


def test_guides_from_the_cli(server, tmp_path):
    out = tmp_path / "cli"
    env = {"STUDIO_CACHE_DIR": str(server["settings"].cache_dir)}
    made = subprocess.run(
        [sys.executable, "studio.py", "generate", "image", "--tiny", "--offline", "--prompt", "a boat", "--steps", "2",
         "--control-image", str(ASTRONAUT), "--control-type", "Scribble", "--control-scale", "0.5",
         "--ip-adapter-image", str(HOPPER), "--output-dir", str(out), "--seed", "2"],
        capture_output=True, text=True, timeout=240, env={**__import__("os").environ, **env},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    saved = json.loads(next(out.rglob("*.json")).read_text())
    assert saved["controlnet"]["type"] == "Scribble" and saved["controlnet"]["scale"] == 0.5
    assert saved["ip_adapter"]["scale"] == 0.6


def test_lora_and_controlnet_in_the_browser(page, server, lora_dir):
    """A LoRA tag in the prompt and a control picture: the map shows, the picture is made with both."""
    from playwright.sync_api import expect

    outputs = server["settings"].output_dir
    before = set(outputs.rglob("*.json"))
    page.goto(server["url"])
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-prompt textarea").fill("a boat <lora:style:0.8>")
    page.get_by_text("ControlNet: follow a picture's edges, pose or sketch").click()
    page.locator("#image-control-image input[type=file]").set_input_files(str(ASTRONAUT))
    page.locator("#image-control-type").get_by_text("Pose").click()
    page.locator("#image-control-preview").click()
    shown = page.locator("#image-control-map img")
    expect(shown).to_have_js_property("naturalWidth", 512, timeout=30_000)  # the astronaut's skeleton, full size
    page.locator("#image-generate").click()
    expect(page.locator("#image-status")).to_contain_text("Done: 1 image(s)", timeout=60_000)
    made = [json.loads(p.read_text()) for p in set(outputs.rglob("*.json")) - before]
    recipe = next(r for r in made if r.get("tab") == "image")
    assert recipe["controlnet"]["type"] == "Pose" and recipe["loras"][0]["name"] == "style"
