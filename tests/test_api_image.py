"""The Image tab through gradio_client against the running studio (tiny mode)."""

import json
import re

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image


def gallery_paths(gallery):
    return [item["image"] if isinstance(item["image"], str) else item["image"]["path"] for item in gallery]


def test_generate_image_returns_pngs_with_their_recipe(client, server):
    loads = server["cache"].loads
    _preview, gallery, status, seed_used, recipe = client.predict(
        prompt="a lighthouse at dusk", seed=21, num_images=2, api_name="/generate_image"
    )
    paths = gallery_paths(gallery)
    assert len(paths) == 2 and status.startswith("Done: 2 image(s)") and seed_used == 21
    for i, path in enumerate(paths):
        im = Image.open(path)
        assert im.format == "PNG" and im.size == (64, 64)  # the tiny model's defaults fill the form
        assert im.text["parameters"].startswith("a lighthouse at dusk\nSteps: 2, Sampler: Euler")
        assert json.loads(im.text["studio_recipe"])["seed"] == 21 + i
    assert recipe["prompt"] == "a lighthouse at dusk" and recipe["model"] == "tiny:stable-diffusion"
    client.predict(prompt="another", seed=1, api_name="/generate_image")
    assert server["cache"].loads <= loads + 1  # one load at most, then reused


def test_image_to_image_through_the_api(client, tmp_path):
    source = tmp_path / "in.png"
    Image.new("RGB", (96, 64), (200, 30, 30)).save(source)
    _p, gallery, status, _seed, recipe = client.predict(
        image=handle_file(str(source)),
        prompt="make it blue",
        strength=0.5,
        steps=4,
        seed=3,
        api_name="/image_to_image",
    )
    assert Image.open(gallery_paths(gallery)[0]).size == (96, 64)
    assert recipe["mode"] == "image-to-image" and recipe["strength"] == 0.5


def test_inpainting_repaints_the_painted_area_and_keeps_the_rest(client, tmp_path):
    import numpy as np

    source, layer = tmp_path / "photo.png", tmp_path / "paint.png"
    photo = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    Image.fromarray(photo).save(source)
    paint = Image.new("RGBA", (96, 64), (0, 0, 0, 0))  # what the editor sends: a transparent layer, painted on
    paint.paste((255, 45, 122, 255), (0, 0, 24, 64))
    paint.save(layer)
    editor = {"background": handle_file(str(source)), "layers": [handle_file(str(layer))], "composite": None}
    _p, gallery, status, _seed, recipe = client.predict(
        image=editor, prompt="a window", strength=0.8, steps=4, seed=4, api_name="/inpaint"
    )
    result = Image.open(gallery_paths(gallery)[0])
    assert result.size == (96, 64) and status.startswith("Done")
    out = np.asarray(result.convert("RGB")).astype(int)
    assert (out[:, 48:] == photo[:, 48:]).all()  # far from the paint: the original, pixel for pixel
    assert np.abs(out[:, :20] - photo[:, :20]).mean() > 10  # under the paint: repainted
    assert (
        recipe["mode"] == "inpaint" and recipe["mask_area"] == 0.25 and recipe["pipeline"].endswith("InpaintPipeline")
    )
    assert "Denoising strength: 0.8, Mask blur: 4," in result.text["parameters"]


@pytest.mark.parametrize(
    ("layers", "fragment"),
    [([], "paint over the part of the image to repaint"), (["clear"], "The mask is empty")],
)
def test_inpainting_without_paint_asks_for_it(client, tmp_path, layers, fragment):
    source, clear = tmp_path / "photo.png", tmp_path / "clear.png"
    Image.new("RGB", (64, 64), (90, 90, 90)).save(source)
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(clear)
    editor = {"background": handle_file(str(source)), "layers": [handle_file(str(clear)) for _ in layers]}
    with pytest.raises(AppError, match=re.escape(fragment)):
        client.predict(image={**editor, "composite": None}, prompt="x", api_name="/inpaint")


def test_restore_settings_from_a_png(client, tmp_path):
    _p, gallery, *_ = client.predict(
        prompt="restore me", negative_prompt="rain", seed=99, steps=3, sampler="DDIM", api_name="/generate_image"
    )
    restored = client.predict(file=handle_file(gallery_paths(gallery)[0]), api_name="/restore_image_settings")
    prompt, negative, steps, _guidance, width, height, seed, _model, sampler, note, styles, *_guides = restored
    assert (prompt, negative, steps, width, height, seed, sampler) == ("restore me", "rain", 3, 64, 64, 99, "DDIM")
    assert styles == []
    assert note.startswith("Restored the settings")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "x", "width": 70}, "not a multiple of 8"),
        ({"prompt": "x", "steps": 500}, "number of steps (steps) must be between 1 and 100; got 500."),  # the slider's
        ({"prompt": "x", "num_images": 0}, "number of images (num_images) must be between 1 and 4; got 0."),
        ({"prompt": "x", "model": "someone/else"}, "model must be one of the offered choices"),
    ],
)
def test_bad_input_is_one_sentence(client, kwargs, fragment):
    with pytest.raises(AppError, match=re.escape(fragment)):
        client.predict(**kwargs, api_name="/generate_image")


def test_a_non_image_upload_is_refused_clearly(client, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not a picture")
    with pytest.raises(AppError, match="not an image the studio can read"):
        client.predict(image=handle_file(str(fake)), prompt="x", api_name="/image_to_image")
    assert client.predict(prompt="still serving", api_name="/generate_image")[2].startswith("Done")


def test_upscale_doubles_the_size_and_keeps_the_prompt(client, tmp_path):
    _p, gallery, *_ = client.predict(prompt="a lighthouse", seed=8, api_name="/generate_image")
    source = gallery_paths(gallery)[0]
    _p, gallery, status, _seed, recipe = client.predict(image=handle_file(source), prompt="", api_name="/upscale")
    assert Image.open(gallery_paths(gallery)[0]).size == (128, 128) and status.startswith("Done")
    assert recipe["prompt"] == "a lighthouse"  # a blank prompt takes the picture's own
    assert recipe["mode"] == "image-to-image" and recipe["strength"] == 0.35 and recipe["steps"] >= 3
    wide = tmp_path / "wide.png"
    Image.new("RGB", (1024, 64)).save(wide)
    with pytest.raises(AppError, match="already at the size limit"):
        client.predict(image=handle_file(str(wide)), prompt="x", api_name="/upscale")


def test_outpainting_through_the_api_and_verify(client, tmp_path):
    import numpy as np

    source = tmp_path / "photo.png"
    photo = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(photo).save(source)
    _p, gallery, status, _seed, recipe = client.predict(
        image=handle_file(str(source)),
        prompt="more sky",
        outpaint_sides=["Top"],
        outpaint_pixels=64,
        seed=2,
        api_name="/outpaint",
    )
    result = gallery_paths(gallery)[0]
    out = np.asarray(Image.open(result).convert("RGB"))
    assert out.shape == (128, 64, 3) and status.startswith("Done")
    assert (out[64 + 24 :] == photo[24:]).all()  # the photo, below the (softened) seam
    assert recipe["mode"] == "outpaint" and recipe["strength"] == 1.0 and recipe["outpaint"]["sides"] == ["top"]
    report, _facts = client.predict(file=handle_file(result), api_name="/verify")
    assert "extended by the model (outpainting)" in report and "This came from a face swap" not in report
    with pytest.raises(AppError, match="Choose the sides to extend"):
        client.predict(image=handle_file(str(source)), prompt="x", outpaint_sides=[], api_name="/outpaint")
