"""The Extras tab and its models (core.enhance): upscalers and face restorers recognised by spandrel from their
weights, here tiny random-weight ones of the real architectures (spandrel's own classes: the compact SRVGG net, an
ESRGAN RRDB net, RestoreFormer), built once per session by core.tiny."""

import hashlib
import json
import os
import re

import numpy as np
import pytest
from faces_helpers import ASTRONAUT, HOPPER, rgb
from gradio_client import handle_file
from PIL import Image

from core import enhance, faces, tiny
from core.errors import UserError
from core.png_recipes import read_recipe
from tabs.extras.engine import ExtrasParams, enhance_picture

COMPACT, ESRGAN, RESTORER = "tiny-compact-x4", "tiny-esrgan-x2", "tiny-restoreformer"


@pytest.fixture(scope="session")
def enhancers(tiny_dir):
    return tiny.ensure("tiny:upscalers", tiny_dir), tiny.ensure("tiny:face-restorers", tiny_dir)


@pytest.fixture
def extras_settings(settings, enhancers):
    return settings.replace(upscaler_dir=enhancers[0], face_restorer_dir=enhancers[1])


def run(cache, settings, image=ASTRONAUT, **params):
    return list(enhance_picture(cache, settings, str(image), ExtrasParams(**params)))[-1]


def loaded(cache, settings, name, kind):
    with enhance.model(cache, settings, name, kind) as held:
        return held


def test_tiny_mode_offers_the_tiny_models_it_builds(settings, enhancers):
    tiny_settings = settings.replace(tiny=True)
    assert enhance.upscaler_choices(tiny_settings) == list(enhance.local_models(enhancers[0]))
    assert enhance.restorer_choices(tiny_settings) == list(enhance.local_models(enhancers[1]))


def test_only_safetensors_and_pth_files_are_offered(tmp_path):
    for name in ("a.safetensors", "b.pth", "c.pt", "d.ckpt", "e.bin", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert list(enhance.local_models(tmp_path)) == ["a", "b"]  # .pt runs TorchScript code when read: never
    assert enhance.local_models(tmp_path / "missing") == {}


@pytest.mark.parametrize(("upscaler", "scale"), [(COMPACT, 2), (COMPACT, 4), (COMPACT, 1.5), (ESRGAN, 2)])
def test_an_upscale_makes_the_picture_larger_and_records_it(shared_cache, extras_settings, upscaler, scale):
    final = run(shared_cache, extras_settings, upscaler=upscaler, scale=scale)
    made = Image.open(final.path)
    assert made.size == (512 * scale, 512 * scale) and final.done
    recipe = json.loads(final.path.with_suffix(".json").read_text())
    weights = enhance.local_models(extras_settings.upscaler_dir)[upscaler]
    assert recipe["upscaler"] == upscaler and recipe["scale"] == scale and recipe["tab"] == "extras"
    assert recipe["upscaler_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert recipe["upscaler_architecture"] == ("Compact" if upscaler == COMPACT else "ESRGAN")
    if upscaler == COMPACT:  # it enlarges the picture plus a learned change: the result is still the astronaut
        plain = np.asarray(Image.open(ASTRONAUT).convert("L").resize(made.size, Image.Resampling.LANCZOS), float)
        assert np.corrcoef(np.asarray(made.convert("L"), float).ravel(), plain.ravel())[0, 1] > 0.9


def test_tiles_blend_into_the_picture_without_seams(shared_cache, extras_settings):
    """A picture upscaled in 64 px tiles equals the same picture upscaled whole, but for rounding where tiles
    cross-fade; tiles pasted side by side with no overlap would show their edges."""
    picture = rgb(ASTRONAUT)[150:300, 100:330]  # 150x230: several tiles each way
    model = loaded(shared_cache, extras_settings, COMPACT, "upscaler").descriptor
    whole = enhance.upscale_tiles(model, picture, tile=10_000).astype(int)
    tiled = enhance.upscale_tiles(model, picture, tile=64, overlap=8).astype(int)
    seams = enhance.upscale_tiles(model, picture, tile=64, overlap=0).astype(int)
    assert tiled.shape == whole.shape == (600, 920, 3)
    assert np.abs(tiled - whole).mean() < 0.3 and np.abs(tiled - whole).max() <= 12
    assert np.abs(seams - whole).max() > np.abs(tiled - whole).max()


def test_faces_are_restored_and_nothing_else_changes(shared_cache, extras_settings):
    picture = rgb(ASTRONAUT)
    found = faces.detect_faces(picture)
    restorer = loaded(shared_cache, extras_settings, RESTORER, "restorer")
    restored, count = enhance.restore_faces(restorer, picture, found, strength=1.0)
    assert count == len(found) == 1
    mask = enhance.paste_mask(enhance.alignment(found[0]), picture.shape[:2])
    assert np.array_equal(restored[mask == 0], picture[mask == 0])  # away from the face: the same bytes
    inside = mask > 0.99
    assert inside.sum() > 5000 and np.abs(restored[inside].astype(int) - picture[inside]).mean() > 5
    half, _ = enhance.restore_faces(restorer, picture, found, strength=0.5)  # between the two
    gap = np.abs(half[inside].astype(int) - picture[inside]).mean()
    assert 0 < gap < np.abs(restored[inside].astype(int) - picture[inside]).mean()


def test_the_result_is_labelled_ai_enhanced_and_verify_says_so(shared_cache, extras_settings):
    from tabs.verify.engine import verify_file

    final = run(shared_cache, extras_settings, upscaler=COMPACT, scale=2, face_restorer=RESTORER)
    assert final.faces == 1 and "1 face(s) restored" in final.status()
    recipe = read_recipe(final.path)
    assert recipe["face_restorer"] == RESTORER and recipe["faces_restored"] == 1
    assert recipe["provenance"]["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")
    assert recipe["statement"].startswith("AI-edited content: a picture, sound or video given by its user")
    report = verify_file(final.path, extras_settings)
    assert report["watermark"]["present"] and report["content_credentials"]["state"] in ("Valid", "Trusted")
    assert "c2pa.edited" in json.dumps(report["content_credentials"])


def test_a_weights_file_that_would_run_code_is_refused_unread(shared_cache, extras_settings, tmp_path):
    import torch

    ran = tmp_path / "the pickle ran"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch '{ran}'",)

    folder = tmp_path / "upscalers"
    folder.mkdir()
    torch.save({"params_ema": {"conv_first.weight": Exploit()}}, folder / "4x-Evil.pth")
    (folder / "broken.safetensors").write_bytes(b"not a safetensors file")
    s = extras_settings.replace(upscaler_dir=folder)
    with pytest.raises(UserError, match="holds more than tensors .* refused to read it"):
        run(shared_cache, s, upscaler="4x-Evil", scale=2)
    assert not ran.exists()
    with pytest.raises(UserError, match="not a readable safetensors file"):
        run(shared_cache, s, upscaler="broken", scale=2)


def test_a_target_size_is_reached_exactly(shared_cache, extras_settings):
    """A1111's "Scale to": one side keeps the picture's shape; both give exactly that size, the picture scaled to
    cover it and its centre kept (the pixels of the covering upscale's centre, not of another crop)."""
    wide = run(shared_cache, extras_settings, upscaler=COMPACT, target_width=768)
    assert Image.open(wide.path).size == (768, 768) and wide.recipe["scale"] == 1.5
    exact = run(shared_cache, extras_settings, upscaler=COMPACT, target_width=800, target_height=600)
    assert Image.open(exact.path).size == (800, 600) and exact.recipe["scale"] == 800 / 512
    assert (exact.recipe["width"], exact.recipe["height"]) == (800, 600)
    cover = np.asarray(Image.open(run(shared_cache, extras_settings, upscaler=COMPACT, target_width=800).path), int)
    centre = np.abs(np.asarray(Image.open(exact.path), int) - cover[100:700])  # up to the invisible watermark's
    shifted = np.abs(np.asarray(Image.open(exact.path), int) - cover[90:690])
    assert centre.mean() < 3 and shifted.mean() > 3 * centre.mean()


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"upscaler": COMPACT, "scale": 9}, "scale must be between 1 and 8; got 9"),
        ({"upscaler": COMPACT, "target_width": 256}, "is not larger than the 512x512 picture"),
        ({"upscaler": COMPACT, "target_width": 600, "target_height": 4500}, "takes x8.79; the most is x8"),
        ({"upscaler": COMPACT, "target_width": 9000}, "target width (target_width) must be between 0 and 8192 px"),
        ({"upscaler": COMPACT, "target_height": 700.5}, "must be a whole number"),
        ({"upscaler": "None", "scale": 1, "target_width": 800, "face_restorer": RESTORER}, "Choose an upscaler to"),
        ({"upscaler": "4x-Nowhere", "scale": 2}, "upscaler must be one of None, "),
        ({"upscaler": "None", "scale": 1}, "there is nothing to do"),
        ({"upscaler": "None", "scale": 2}, "Choose an upscaler to make the picture larger"),
        ({"upscaler": COMPACT, "scale": 1}, "An upscaler needs a scale above 1"),
        ({"upscaler": "None", "scale": 1, "face_restorer": RESTORER, "restore_strength": 2}, "between 0 and 1"),
        ({"upscaler": "None", "scale": 1, "face_restorer": ESRGAN}, "face restorer (face_restorer) must be one of"),
    ],
)
def test_bad_requests_get_one_sentence_and_make_nothing(shared_cache, extras_settings, params, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        run(shared_cache, extras_settings, **params)
    assert not extras_settings.output_dir.exists()


def test_an_output_past_the_pixel_limit_is_refused_before_any_work(shared_cache, extras_settings, tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (5000, 4000), "white").save(big)  # 20 megapixels: x4 would make 320
    with pytest.raises(UserError, match="would become 20000x16000 pixels; the studio makes at most 64 megapixels"):
        run(shared_cache, extras_settings, image=big, upscaler=COMPACT, scale=4)


def test_extras_through_the_api(client):
    status, _before_after, result, recipe = client.predict(
        image=handle_file(str(HOPPER)), upscaler=COMPACT, scale=2, face_restorer="None", api_name="/extras"
    )
    made = Image.open(result if isinstance(result, str) else result["path"])
    assert made.size == tuple(2 * side for side in Image.open(HOPPER).size) and status.startswith("Done:")
    assert recipe["upscaler"] == COMPACT


def test_the_image_tabs_upscale_can_use_an_upscaler_model(client):
    _p, gallery, *_ = client.predict(prompt="a small house", seed=4, width=64, height=64, api_name="/generate_image")
    first = gallery[0]["image"] if isinstance(gallery[0]["image"], str) else gallery[0]["image"]["path"]
    _p, bigger, _status, _seed, recipe = client.predict(
        image=handle_file(first), prompt="", upscaler=COMPACT, api_name="/upscale"
    )
    assert recipe["upscaler"] == COMPACT and recipe["mode"] == "image-to-image"
    made = bigger[0]["image"] if isinstance(bigger[0]["image"], str) else bigger[0]["image"]["path"]
    assert Image.open(made).size == (128, 128)


def test_the_swapped_face_is_enhanced_when_asked(shared_cache, extras_settings):
    from tabs.faceswap import swap_face_image

    def swap(**enhance_options):
        return swap_face_image(
            shared_cache, extras_settings, str(HOPPER), str(ASTRONAUT), consent=True, **enhance_options
        )

    plain, enhanced = swap(), swap(face_enhancer=RESTORER, enhance_blend=1.0)
    assert enhanced.summary["face_enhancer"] == RESTORER and plain.summary["face_enhancer"] == "None"
    a, b = np.asarray(plain.image, int), np.asarray(enhanced.image, int)
    target = faces.detect_faces(rgb(ASTRONAUT))[0]
    x0, y0, x1, y1 = target.box
    assert np.abs(a[y0:y1, x0:x1] - b[y0:y1, x0:x1]).mean() > 5  # the face changed
    away = enhance.paste_mask(enhance.alignment(target), a.shape[:2]) == 0
    assert away.sum() > 10_000 and np.array_equal(a[away], b[away])  # the rest of the picture did not
