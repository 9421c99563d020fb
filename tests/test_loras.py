"""LoRAs on the tiny Stable Diffusion: real adapter files (built with peft on the tiny UNet, random non-zero weights)
in diffusers' format and in Kohya's (what AUTOMATIC1111 and civitai use), loaded by diffusers, chosen with
AUTOMATIC1111's <lora:name:weight> prompt syntax."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from core.errors import UserError
from core.png_recipes import read_recipe
from tabs.image.engine import ImageParams, generate_image


@pytest.fixture
def lora_settings(settings, lora_dir):
    return settings.replace(lora_dir=lora_dir)


def pixels(cache, settings, prompt, seed=5):
    final = list(generate_image(cache, settings, ImageParams(prompt, steps=2, width=64, height=64, seed=seed)))[-1]
    return np.asarray(Image.open(final.images[0]).convert("RGB")).astype(int), final


def test_a_lora_changes_the_picture_and_weight_zero_or_none_does_not(shared_cache, lora_settings):
    before, _ = pixels(shared_cache, lora_settings, "a red fox")
    styled, final = pixels(shared_cache, lora_settings, "a red fox <lora:style:1>")
    assert np.abs(styled - before).mean() > 2  # measured: about 6 levels on the tiny model
    zero, _ = pixels(shared_cache, lora_settings, "a red fox <lora:style:0>")
    assert np.array_equal(zero, before)  # weight 0 is no LoRA
    after, _ = pixels(shared_cache, lora_settings, "a red fox")
    assert np.array_equal(after, before)  # the next picture without it is as before: it was switched off cleanly
    kohya, _ = pixels(shared_cache, lora_settings, "a red fox <lora:kohya:1>")
    assert np.abs(kohya - styled).max() <= 1  # Kohya's keys are converted to the same adapter
    dotted, _ = pixels(shared_cache, lora_settings, "a red fox <lora:detail_v1.5:1>")  # a name peft would refuse
    assert np.array_equal(dotted, styled)  # the same file under another name: the same picture
    half, _ = pixels(shared_cache, lora_settings, "a red fox <lora:style:0.5>")
    assert 0 < np.abs(half - before).mean() < np.abs(styled - before).mean()  # a new weight, no reload


def test_switching_loras_loads_nothing_new(shared_cache, lora_settings):
    pixels(shared_cache, lora_settings, "a fox <lora:style:1>")
    loads = shared_cache.loads
    pixels(shared_cache, lora_settings, "a fox <lora:style:0.3> <lora:kohya:0.5>")
    pixels(shared_cache, lora_settings, "a fox")
    assert shared_cache.loads == loads


def test_the_recipe_and_a1111_parameters_list_the_loras_and_restore_brings_them_back(shared_cache, lora_settings):
    _, final = pixels(shared_cache, lora_settings, "a castle <lora:style:0.7>, watercolor")
    recipe = json.loads((final.images[0]).with_suffix(".json").read_text())
    (entry,) = recipe["loras"]
    assert entry["name"] == "style" and entry["weight"] == 0.7 and len(entry["sha256"]) == 64
    parameters = Image.open(final.images[0]).text["parameters"]
    assert f'Lora hashes: "style: {entry["sha256"][:12]}"' in parameters
    assert parameters.startswith("a castle <lora:style:0.7>, watercolor")  # the prompt as written, as A1111 keeps it
    assert read_recipe(final.images[0])["prompt"] == "a castle <lora:style:0.7>, watercolor"


@pytest.mark.parametrize(
    "prompt, fragment",
    [
        ("a fox <lora:nothere:1>", "no LoRA called 'nothere'"),
        ("a fox <lora:../../etc/passwd:1>", "no LoRA called '../../etc/passwd'"),
        ("a fox <lora:model:1>", "no LoRA called 'model'"),  # model.ckpt: pickles are never offered
        ("a fox <lora:style:lots>", "weight of the LoRA 'style' (lora_weight) must be a number between -4 and 4"),
        ("a fox <lora:style:9>", "must be between -4 and 4; got 9"),
        ("a fox <lora:wrongbase:1>", "does not fit this model"),
    ],
)
def test_bad_loras_get_one_sentence(shared_cache, lora_settings, prompt, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        list(generate_image(shared_cache, lora_settings, ImageParams(prompt, steps=1, width=64, height=64)))
    ok, _ = pixels(shared_cache, lora_settings, "a fox")  # the model still works, with no LoRA left on
    plain, _ = pixels(shared_cache, lora_settings.replace(lora_dir=lora_settings.lora_dir / "none"), "a fox")
    assert np.array_equal(ok, plain)


def test_a_lora_through_the_api_and_the_cli(client, server, lora_dir, tmp_path):
    """The session's studio reads the same LoRA folder (STUDIO_LORA_DIR): the prompt syntax works through the API."""
    _p, gallery, _status, _seed, recipe = client.predict(
        prompt="a lighthouse <lora:style:0.9>", steps=2, seed=3, api_name="/generate_image"
    )
    assert recipe["loras"][0]["name"] == "style" and recipe["loras"][0]["weight"] == 0.9
    with pytest.raises(AppError, match="no LoRA called 'gone'"):
        client.predict(prompt="a lighthouse <lora:gone:1>", api_name="/generate_image")
    out = tmp_path / "cli"
    env = {"STUDIO_LORA_DIR": str(lora_dir), "STUDIO_CACHE_DIR": str(server["settings"].cache_dir)}
    made = subprocess.run(
        [sys.executable, "studio.py", "generate", "image", "--tiny", "--offline", "--prompt", "a boat", "--steps", "2",
         "--lora", "kohya:0.6", "--output-dir", str(out), "--seed", "2"],
        capture_output=True, text=True, timeout=240, env={**__import__("os").environ, **env},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    saved = json.loads(next(out.rglob("*.json")).read_text())
    assert saved["prompt"] == "a boat <lora:kohya:0.6>" and saved["loras"][0]["name"] == "kohya"


@pytest.fixture(scope="module")
def embeddings_dir(tmp_path_factory):
    """Textual-inversion embeddings for the tiny CLIP (32 wide): AUTOMATIC1111's layout (emb_params, 2 vectors),
    diffusers' ({token: vector}), and one for a wider text encoder (another base model)."""
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("embeddings")
    torch.manual_seed(1)
    save_file({"emb_params": torch.randn(2, 32) * 3}, folder / "tinystyle.safetensors")
    save_file({"<shiny>": torch.randn(32) * 3}, folder / "shiny.safetensors")
    save_file({"emb_params": torch.randn(2, 768)}, folder / "sd15only.safetensors")
    return folder


def test_an_embedding_is_used_by_name_in_the_prompt_and_the_negative_prompt(settings, embeddings_dir):
    from core.models import ModelCache

    cache = ModelCache(device="cpu", offline=True)  # its own pipeline: a loaded embedding stays in its tokenizer
    s = settings.replace(embeddings_dir=embeddings_dir)

    def run(s, prompt, negative="", guidance=0.0):
        params = ImageParams(
            prompt, negative_prompt=negative, steps=2, guidance_scale=guidance, width=64, height=64, seed=9
        )
        final = list(generate_image(cache, s, params))[-1]
        return np.asarray(Image.open(final.images[0]).convert("RGB")).astype(int), final

    # the words as plain words first (no embeddings folder), then the same prompts with the embeddings
    without = settings.replace(embeddings_dir=embeddings_dir / "none")
    plain, word, negative_word, shiny_word = (
        run(without, "a fox")[0],
        run(without, "a fox tinystyle")[0],
        run(without, "a fox", "tinystyle", guidance=5.0)[0],
        run(without, "a fox shiny")[0],
    )
    # the tiny random model hears its prompt faintly, so the change is small, but every run is exact: any change
    # is the embedding's (measured: about 0.5 levels on average)
    styled, final = run(s, "a fox tinystyle")
    changes = [
        np.abs(styled - word).mean(),  # the word now calls the embedding
        np.abs(run(s, "a fox", "tinystyle", guidance=5.0)[0] - negative_word).mean(),  # in the negative prompt too
        np.abs(run(s, "a fox shiny")[0] - shiny_word).mean(),  # diffusers' own layout
    ]
    assert min(changes) > 0.1, changes
    assert np.array_equal(run(s, "a fox")[0], plain)  # loaded, but unused: nothing changes
    (entry,) = final.recipe["embeddings"]
    assert entry["name"] == "tinystyle" and len(entry["sha256"]) == 64
    assert f'TI hashes: "tinystyle: {entry["sha256"][:12]}"' in Image.open(final.images[0]).text["parameters"]
    with pytest.raises(UserError, match="The embedding 'sd15only' does not fit this model"):
        run(s, "a fox sd15only")


@pytest.fixture
def wildcard_settings(settings, tmp_path):
    folder = tmp_path / "wildcards"
    (folder / "animals").mkdir(parents=True)
    (folder / "colours.txt").write_text("# colours\nred\ngreen\nblue\nviolet\namber\n")
    (folder / "animals" / "birds.txt").write_text("a __colours__ heron\na __colours__ finch\n")  # nested
    (folder / "empty.txt").write_text("# nothing\n")
    return settings.replace(wildcards_dir=folder)


def test_wildcards_draw_the_same_lines_for_the_same_seed(wildcard_settings):
    from tabs.image import prompts

    s = wildcard_settings
    once = prompts.expand_wildcards(s, "__animals/birds__ over a __colours__ lake", 7)
    assert once == prompts.expand_wildcards(s, "__animals/birds__ over a __colours__ lake", 7)
    text, drawn = once
    assert "__" not in text and set(drawn) == {"animals/birds", "colours"} and len(drawn["colours"]) == 2
    draws = {prompts.expand_wildcards(s, "__colours__", seed)[0] for seed in range(30)}
    assert draws == {"red", "green", "blue", "violet", "amber"}  # every line can come up
    assert prompts.expand_wildcards(s, "__../../etc/passwd__", 1)[0] == "__../../etc/passwd__"  # not a name: text
    for prompt, fragment in (("__nothere__", "no wildcard file 'nothere'.txt"), ("__empty__", "has no lines")):
        with pytest.raises(UserError, match=re.escape(fragment)):
            prompts.expand_wildcards(s, prompt, 1)


def test_styles_wrap_the_prompt_and_the_recipe_keeps_both(shared_cache, wildcard_settings):
    params = ImageParams(
        "a __colours__ fox", negative_prompt="blurry", steps=1, width=64, height=64, seed=4, styles=("Watercolor",)
    )
    final = list(generate_image(shared_cache, wildcard_settings, params))[-1]
    r = final.recipe
    assert r["prompt"] == "a __colours__ fox" and r["styles"] == ["Watercolor"]
    colour = r["wildcards"]["colours"][0]
    assert r["expanded_prompt"].startswith(f"watercolor painting of a {colour} fox, soft washes")
    assert r["expanded_negative_prompt"].startswith("blurry, photo")
    assert Image.open(final.images[0]).text["parameters"].startswith(r["expanded_prompt"])  # what the model read
    assert read_recipe(final.images[0])["styles"] == ["Watercolor"]
    again = list(generate_image(shared_cache, wildcard_settings, params))[-1]
    assert again.recipe["expanded_prompt"] == r["expanded_prompt"]  # the same seed: the same draw
    with pytest.raises(UserError, match=re.escape("There is no style called 'Vaporwave' (styles)")):
        list(generate_image(shared_cache, wildcard_settings, ImageParams("x", styles=("Vaporwave",))))


def test_styles_through_the_api(client):
    _p, _g, _s, _seed, recipe = client.predict(
        prompt="a cabin", steps=1, styles=["Pixel art"], api_name="/generate_image"
    )
    assert recipe["styles"] == ["Pixel art"] and recipe["expanded_prompt"].startswith("pixel art of a cabin")
