"""The Image engine on a tiny StableDiffusionPipeline built locally (sd-turbo's classes, random weights)."""

import json
import re
import threading

import numpy as np
import pytest
from PIL import Image

from core.errors import UserError
from core.png_recipes import a1111_parameters, parse_a1111, read_recipe
from tabs.image.engine import ImageParams, generate_image


def run(cache, settings, **kwargs):
    init = kwargs.pop("init_image", None)
    stop = kwargs.pop("stop", None)
    mask = kwargs.pop("mask", None)
    params = ImageParams(**{"prompt": "a red fox", "steps": 2, "width": 64, "height": 64, "seed": 1, **kwargs})
    return list(generate_image(cache, settings, params, init_image=init, mask=mask, stop=stop))


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def same_up_to_rounding(a, b) -> bool:
    """Equal but for float rounding: a batch runs other CPU kernels than a single image, which moves a few pixels
    by one level on some machines (another seed changes nearly every pixel, by up to 255)."""
    diff = np.abs(pixels(a) - pixels(b))
    return diff.max() <= 2 and (diff > 0).mean() < 0.01


@pytest.mark.parametrize(("width", "height"), [(64, 64), (96, 64), (64, 128)])
def test_sizes(shared_cache, settings, width, height):
    final = run(shared_cache, settings, width=width, height=height)[-1]
    assert final.done and Image.open(final.images[0]).size == (width, height)


def test_progress_counts_every_step(shared_cache, settings, monkeypatch):
    import tabs.image.engine

    monkeypatch.setattr(tabs.image.engine, "PREVIEW_EVERY_S", 0)  # every step, for the test (normally twice a second)
    monkeypatch.setattr(tabs.image.engine, "UPDATE_EVERY_S", 0)
    updates = run(shared_cache, settings, steps=8, seed=3)
    steps = [s for s in dict.fromkeys(u.step for u in updates if not u.done) if s]  # slow steps may repeat
    assert steps == list(range(1, 9)) and updates[-1].done
    # a preview at every step but the last, which goes straight to the real image
    assert {u.step for u in updates if u.preview is not None} == set(range(1, 8))
    first_preview = next(u.preview for u in updates if u.preview is not None)  # (a slow first step: a bare tick)
    assert first_preview.size == (32, 32)  # latent resolution of the tiny model (its VAE scales by 2)
    monkeypatch.undo()
    throttled = run(shared_cache, settings, steps=8, seed=3)  # the usual intervals
    assert next(u.step for u in throttled if u.step) == 1 and throttled[-1].done  # step 1 is always reported
    # (before it, a slow first step on a busy machine may send a bare tick with step 0: CI saw one)
    assert updates[-1].preview is None and all(u.total == 8 for u in updates)


def test_same_seed_same_image_and_batches_use_consecutive_seeds(shared_cache, settings):
    a = run(shared_cache, settings, seed=42)[-1]
    b = run(shared_cache, settings, seed=42)[-1]
    assert (pixels(a.images[0]) == pixels(b.images[0])).all()
    batch = run(shared_cache, settings, seed=42, num_images=3)[-1]
    assert len(batch.images) == 3
    assert same_up_to_rounding(batch.images[0], a.images[0])
    assert not same_up_to_rounding(batch.images[1], batch.images[0])
    second = run(shared_cache, settings, seed=43)[-1]
    assert same_up_to_rounding(second.images[0], batch.images[1])
    assert [read_recipe(p)["seed"] for p in batch.images] == [42, 43, 44]


def test_random_seed_is_reported(shared_cache, settings):
    final = run(shared_cache, settings, seed=-1)[-1]
    assert 0 <= final.seed < 2**32 and read_recipe(final.images[0])["seed"] == final.seed


def test_png_carries_a1111_parameters_and_the_full_recipe(shared_cache, settings):
    final = run(shared_cache, settings, prompt="a castle", negative_prompt="fog", guidance_scale=2.5, seed=9)[-1]
    path = final.images[0]
    assert path.parent.parent.name == "image" and path.suffix == ".png"
    chunks = Image.open(path).text
    params = chunks["parameters"].splitlines()
    assert params[0] == "a castle" and params[1] == "Negative prompt: fog"
    assert params[2].startswith("Steps: 2, Sampler: Euler, CFG scale: 2.5, Seed: 9, Size: 64x64, Model: ")
    recipe = json.loads(chunks["studio_recipe"])
    assert recipe["model"] == settings.image_model and recipe["mode"] == "text-to-image"
    assert recipe["versions"]["diffusers"] and recipe["statement"].startswith("AI-generated")
    assert json.loads(path.with_suffix(".json").read_text()) == recipe


def test_restore_reads_back_what_was_used(shared_cache, settings):
    final = run(
        shared_cache,
        settings,
        prompt="a lighthouse",
        negative_prompt="people",
        steps=3,
        guidance_scale=1.5,
        width=72,
        height=64,
        seed=77,
    )[-1]
    r = read_recipe(final.images[0])
    assert (
        r["prompt"],
        r["negative_prompt"],
        r["steps"],
        r["guidance_scale"],
        r["width"],
        r["height"],
        r["seed"],
    ) == ("a lighthouse", "people", 3, 1.5, 72, 64, 77)
    again = run(
        shared_cache,
        settings,
        **{k: r[k] for k in ("prompt", "negative_prompt", "steps", "guidance_scale", "width", "height", "seed")},
    )[-1]
    assert (pixels(again.images[0]) == pixels(final.images[0])).all()


def test_a_chosen_sampler_runs_and_is_recorded(shared_cache, settings):
    euler = run(shared_cache, settings, seed=5)[-1]
    assert euler.recipe["sampler"] == "Euler"  # the tiny model's own scheduler, as sd-turbo's
    karras = run(shared_cache, settings, seed=5, sampler="DPM++ 2M Karras")[-1]
    assert karras.recipe["scheduler"] == "DPMSolverMultistepScheduler"
    assert "Sampler: DPM++ 2M Karras," in Image.open(karras.images[0]).text["parameters"]
    assert read_recipe(karras.images[0])["sampler"] == "DPM++ 2M Karras"
    assert not same_up_to_rounding(karras.images[0], euler.images[0])  # it really sampled differently
    again = run(shared_cache, settings, seed=5, sampler="DPM++ 2M Karras")[-1]
    assert (pixels(again.images[0]) == pixels(karras.images[0])).all()
    # the shared pipeline keeps its own scheduler: the next default run is Euler again
    assert run(shared_cache, settings, seed=5)[-1].recipe["sampler"] == "Euler"


def test_an_unknown_sampler_is_refused_with_the_choices(shared_cache, settings):
    with pytest.raises(UserError, match=r"sampler 'Euler z' is not offered here: choose one of Model default, Euler"):
        run(shared_cache, settings, sampler="Euler z")


def test_newer_a1111_schedule_type_is_read_into_the_sampler():
    text = "a cat\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512"
    assert parse_a1111(text)["sampler"] == "DPM++ 2M Karras"
    assert parse_a1111(text.replace("Karras", "Automatic"))["sampler"] == "DPM++ 2M"


def test_a1111_text_round_trips():
    recipe = {
        "prompt": "a cat, sitting\non a mat",
        "negative_prompt": "dog, blurry",
        "steps": 20,
        "sampler": "Euler a",
        "guidance_scale": 7.0,
        "seed": 123,
        "width": 512,
        "height": 768,
        "model": "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "mode": "image-to-image",
        "strength": 0.6,
    }
    back = parse_a1111(a1111_parameters(recipe))
    for key in (
        "prompt",
        "negative_prompt",
        "steps",
        "guidance_scale",
        "seed",
        "width",
        "height",
        "model",
        "strength",
    ):
        assert back[key] == recipe[key], key


def test_a_plain_png_has_no_recipe(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    with pytest.raises(UserError, match="carries no recipe"):
        read_recipe(tmp_path / "plain.png")


def test_image_to_image_reuses_the_loaded_weights(shared_cache, settings):
    first = run(shared_cache, settings, seed=5)[-1]
    loads = shared_cache.loads
    final = run(shared_cache, settings, init_image=str(first.images[0]), strength=0.5, steps=4)[-1]
    assert shared_cache.loads == loads
    assert Image.open(final.images[0]).size == (64, 64)
    recipe = read_recipe(final.images[0])
    assert recipe["mode"] == "image-to-image" and recipe["strength"] == 0.5
    assert [u.step for u in run(shared_cache, settings, init_image=str(first.images[0]), strength=0.5, steps=4)][
        -1
    ] == 2
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 32))
    inpainted = run(shared_cache, settings, init_image=str(first.images[0]), mask=mask, strength=0.5, steps=4)[-1]
    images_loaded = [m for m in shared_cache.snapshot() if m["kind"] == "image"]
    assert shared_cache.loads == loads and len(images_loaded) == 1  # inpainting: the same weights again
    assert read_recipe(inpainted.images[0])["mode"] == "inpaint"


def test_image_to_image_keeps_the_input_size_within_the_limit(shared_cache, settings):
    big = Image.new("RGB", (2000, 1000), "white")
    final = run(shared_cache, settings.replace(max_image_size=128), init_image=big, strength=0.5, steps=2)[-1]
    assert Image.open(final.images[0]).size == (128, 64)


def test_stop_ends_the_run_and_saves_nothing(shared_cache, settings):
    stop = threading.Event()
    seen = []
    with pytest.raises(UserError, match="Stopped"):
        for update in generate_image(
            shared_cache, settings, ImageParams("a fox", steps=50, width=64, height=64), stop=stop
        ):
            seen.append(update)
            stop.set()
    assert len(seen) == 1
    assert not any(settings.output_dir.rglob("*.png"))
    assert not any(t.name == "image-generate" for t in threading.enumerate())


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": " \t "}, "prompt is empty"),
        ({"width": 100}, "not a multiple of 8"),
        ({"height": 32}, "height must be between 64 and 1024"),
        ({"width": 4096}, "width must be between 64 and 1024"),
        ({"steps": 0}, "number of steps (steps) must be between 1 and 100"),
        ({"steps": 1000}, "number of steps (steps) must be between 1 and 100"),
        ({"guidance_scale": float("inf")}, "guidance scale (guidance_scale) must be a finite number"),
        ({"num_images": 9}, "number of images (num_images) must be between 1 and 4"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"init_image": b"not an image"}, "not an image the studio can read"),
        ({"init_image": "/definitely/missing.png"}, "not an image the studio can read"),
        ({"init_image": Image.new("RGB", (64, 64)), "strength": 0.1, "steps": 2}, "no denoising step would run"),
    ],
)
def test_bad_input_gets_one_clear_sentence(shared_cache, settings, kwargs, fragment):
    if kwargs.get("init_image") == b"not an image":
        path = settings.output_dir.parent / "fake.png"
        path.write_bytes(b"not an image")
        kwargs["init_image"] = str(path)
    with pytest.raises(UserError, match=re.escape(fragment)):
        run(shared_cache, settings, **kwargs)
    assert not settings.output_dir.exists()


def test_a_model_that_cannot_load_is_a_sentence_and_the_next_request_works(shared_cache, settings, tmp_path):
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(settings.image_model, broken)
    (broken / "model_index.json").write_text("{not json")
    with pytest.raises(UserError, match="could not be loaded"):
        list(
            generate_image(
                shared_cache, settings.replace(allow_custom_models=True), ImageParams("x"), model=str(broken)
            )
        )
    assert run(shared_cache, settings)[-1].done


def test_a_mask_is_where_it_is_painted_or_where_it_is_white():
    from tabs.image.parts import open_mask

    def painted(box, mode="RGBA", fill=(255, 0, 0, 255)):
        layer = Image.new(mode, (32, 32), (0, 0, 0, 0) if mode == "RGBA" else 0)
        layer.paste(fill, box)
        return layer

    def area(mask):
        return np.asarray(mask) > 0

    left, top = painted((0, 0, 16, 32)), painted((0, 0, 32, 8))  # editor layers: transparent, painted on
    assert area(open_mask(left, (32, 32)))[:, :16].all() and not area(open_mask(left, (32, 32)))[:, 16:].any()
    both = area(open_mask([left, top], (64, 64)))  # layers add up; the mask follows the picture's size
    assert both.shape == (64, 64) and both[:16].all() and both[:, :32].all() and not both[16:, 32:].any()
    black_and_white = painted((8, 8, 24, 24), mode="L", fill=255)  # a mask file: white = repaint
    assert area(open_mask(black_and_white, (32, 32))).sum() == 16 * 16
    opaque = Image.new("RGBA", (32, 32), (0, 0, 0, 255))
    opaque.paste((255, 255, 255, 255), (0, 0, 8, 8))  # an opaque RGBA mask file counts by brightness
    assert area(open_mask(opaque, (32, 32))).sum() == 8 * 8
    with pytest.raises(UserError, match="The mask is empty"):
        open_mask([Image.new("RGBA", (32, 32), (0, 0, 0, 0)), None], (32, 32))


def test_inpainting_needs_an_image(shared_cache, settings):
    with pytest.raises(UserError, match="Add an image to inpaint"):
        run(shared_cache, settings, mask=Image.new("L", (64, 64), 255))


def test_outpainting_extends_the_picture_and_keeps_it(shared_cache, settings):
    photo = np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    params = ImageParams("a wide valley", steps=2, seed=5, strength=1.0)
    final = list(
        generate_image(
            shared_cache, settings, params, init_image=Image.fromarray(photo), outpaint=(["left", "bottom"], 36)
        )
    )[-1]
    out = pixels(final.images[0])
    assert out.shape == (64 + 32, 64 + 32, 3)  # 36 px, to the model's 8 px cells: 32 on each chosen side
    kept = out[:64, 32:]  # where the photo is now
    assert (kept[:40, 24:] == photo[:40, 24:]).all()  # away from the (softened) seams: the photo, pixel for pixel
    from tabs.image.parts import outpaint_canvas

    start, _mask, _info = outpaint_canvas(Image.fromarray(photo), ["left", "bottom"], 32, settings)
    assert np.abs(out[:, :24] - np.asarray(start, dtype=np.int16)[:, :24]).mean() > 10  # the model painted the strip
    recipe = read_recipe(final.images[0])
    assert recipe["mode"] == "outpaint" and recipe["outpaint"] == {"sides": ["left", "bottom"], "pixels": 32}
    assert "Mask blur: 4" in a1111_parameters(recipe)


def test_the_outpaint_canvas_starts_from_the_edges_and_masks_only_the_new_area(settings):
    from tabs.image.parts import OUTPAINT_OVERLAP, outpaint_canvas

    photo = Image.new("RGB", (64, 64), (200, 30, 30))
    canvas, mask, info = outpaint_canvas(photo, "Right, top", 64, settings)
    assert canvas.size == mask.size == (128, 128) and info == {"sides": ["right", "top"], "pixels": 64}
    assert canvas.getpixel((120, 10)) == (200, 30, 30)  # the stretched edge colour, not grey
    m = np.asarray(mask) > 0
    assert m[:64].all() and m[:, 64:].all()  # the new area
    assert not m[64 + OUTPAINT_OVERLAP :, : 64 - OUTPAINT_OVERLAP].any()  # the picture, but for a thin seam
    assert m[64 : 64 + OUTPAINT_OVERLAP, :].all() and m[:, 64 - OUTPAINT_OVERLAP : 64].all()


@pytest.mark.parametrize(
    ("sides", "amount", "fragment"),
    [
        ([], 64, "Choose the sides to extend"),
        (["up"], 64, "Choose the sides to extend"),
        (["left"], 0, "number of pixels to add (outpaint_pixels) must be between 8"),
        (["left", "right"], 512, "the limit is"),
    ],
)
def test_bad_outpaint_requests_get_a_sentence(shared_cache, settings, sides, amount, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        list(
            generate_image(
                shared_cache,
                settings,
                ImageParams("x", strength=1.0),
                init_image=Image.new("RGB", (64, 64)),
                outpaint=(sides, amount),
            )
        )
    with pytest.raises(UserError, match="Add an image to extend"):
        list(generate_image(shared_cache, settings, ImageParams("x"), outpaint=(["left"], 64)))


def _tiny_variant(tiny_image, folder, **parts):
    """The tiny pipeline saved again with some of its parts replaced or added (scheduler, safety_checker and
    feature_extractor), as a model folder."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_image, safety_checker=None, requires_safety_checker=False)
    pipe.register_modules(**parts)
    if "safety_checker" in parts:
        pipe.register_to_config(requires_safety_checker=True)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def _checker(threshold: float):
    """Stable Diffusion's safety checker (its real class) at a tiny size; every concept's threshold `threshold`:
    -10 flags every picture, +10 none."""
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(0)
    vision = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, image_size=32,
                  patch_size=4)  # fmt: skip
    text = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=99)
    checker = StableDiffusionSafetyChecker(CLIPConfig(text_config=text, vision_config=vision, projection_dim=32))
    with torch.no_grad():
        checker.concept_embeds_weights.fill_(threshold)
        checker.special_care_embeds_weights.fill_(threshold)
    return checker.eval(), CLIPImageProcessor(size=32, crop_size=32)


@pytest.mark.parametrize("flags", [True, False])
def test_a_picture_the_models_safety_checker_flags_is_withheld_with_a_sentence(
    shared_cache, settings, tiny_image, tmp_path, flags
):
    """SD 1.5 ships a safety checker that blacks out what it flags. The studio keeps the repo's checker, saves no
    black file and says why; pictures it lets through are saved as usual."""
    checker, extractor = _checker(-10.0 if flags else 10.0)
    folder = _tiny_variant(tiny_image, tmp_path / "checked", safety_checker=checker, feature_extractor=extractor)
    checked = settings.replace(image_model=str(folder))
    if flags:
        from tabs.image.xyz import generate_grid

        with pytest.raises(UserError, match="safety checker .* flagged the picture as possibly unsafe"):
            run(shared_cache, checked)
        with pytest.raises(UserError, match="safety checker"):  # a plot of withheld cells only: no grid either
            list(
                generate_grid(
                    shared_cache, checked, ImageParams("a fox", steps=2, width=64, height=64), [("Seed", "1, 2")]
                )
            )
        assert not list(checked.output_dir.rglob("*.png"))
    else:
        final = run(shared_cache, checked, num_images=2)[-1]
        assert len(final.images) == 2 and final.withheld == 0 and "withheld" not in final.status()
        assert pixels(final.images[0]).max() > 0  # not blacked out


def test_progress_counts_the_schedulers_own_steps(shared_cache, settings, tiny_image, tmp_path, monkeypatch):
    """PNDM (Stable Diffusion 1.5's default) runs one step more than asked: the progress says so, never "26/25"."""
    from diffusers import PNDMScheduler

    import tabs.image.engine

    monkeypatch.setattr(tabs.image.engine, "UPDATE_EVERY_S", 0)  # every step, for the test
    scheduler = PNDMScheduler(
        skip_prk_steps=True, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1
    )
    folder = _tiny_variant(tiny_image, tmp_path / "pndm", scheduler=scheduler)
    updates = run(shared_cache, settings.replace(image_model=str(folder)), steps=4)
    assert all(u.step <= u.total for u in updates) and all(u.eta >= 0 for u in updates)
    assert updates[-1].done and updates[-1].total == updates[-1].step == 5
    assert max(u.step for u in updates if not u.done) == 5


def test_an_fp16_vae_that_must_be_upcast_stays_float32(tiny_image):
    """SDXL's VAE (force_upcast) is kept in float32 once in fp16 runs and given float32 inputs, instead of the
    pipeline moving the shared VAE between dtypes around every decode."""
    import torch
    from diffusers import AutoencoderKL

    from tabs.image.pipelines import keep_vae_in_float32

    class Pipe:
        vae = AutoencoderKL.from_pretrained(tiny_image / "vae", dtype=torch.float16)

    Pipe.vae.register_to_config(force_upcast=True)
    keep_vae_in_float32(Pipe, torch.float16)
    assert Pipe.vae.dtype == torch.float32 and not Pipe.vae.config.force_upcast
    latents = torch.randn(1, Pipe.vae.config.latent_channels, 8, 8, dtype=torch.float16)
    assert Pipe.vae.decode(latents).sample.dtype == torch.float32  # half inputs are taken, not refused
