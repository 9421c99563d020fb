"""X/Y/Z plot on the tiny Stable Diffusion: every combination is a real run with its own recipe, then a labelled
grid; the same seed gives the same grid; bad axes get one sentence."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from core.errors import UserError
from tabs.image import xyz
from tabs.image.engine import ImageParams

BASE = ImageParams("a red fox in snow", steps=1, width=64, height=64, seed=11)


def grid(cache, settings, axes, params=BASE):
    return list(xyz.generate_grid(cache, settings, params, axes))


def test_every_cell_is_made_with_its_own_recipe_and_laid_out_in_a_labelled_grid(shared_cache, settings):
    updates = grid(shared_cache, settings, [("Steps", "1, 2"), ("Seed", "3-5"), ("Nothing", "")])
    final = updates[-1]
    assert (
        final.done and len(final.cells) == 6 and [u.cell for u in updates[:-1]] == sorted(u.cell for u in updates[:-1])
    )
    recipes = [json.loads(c.with_suffix(".json").read_text()) for c in final.cells]
    assert [(r["steps"], r["seed"]) for r in recipes] == [(1, 3), (2, 3), (1, 4), (2, 4), (1, 5), (2, 5)]  # X fastest
    picture = Image.open(final.grid)
    assert picture.size[0] > 2 * 64 and picture.size[1] > 3 * 64  # two columns, three rows, and their labels
    assert final.recipe["mode"] == "xyz-grid" and final.recipe["cells"] == [c.name for c in final.cells]
    assert final.recipe["axes"] == [{"type": "Steps", "values": [1, 2]}, {"type": "Seed", "values": [3, 4, 5]}]
    assert json.loads(final.grid.with_suffix(".json").read_text())["provenance"]["content_credentials"]


def test_the_same_seed_gives_the_same_grid(shared_cache, settings):
    axes = [("Guidance", "0, 2"), ("Prompt S/R", "fox, owl"), ("Sampler", "Euler, DDIM")]
    first, again = grid(shared_cache, settings, axes)[-1], grid(shared_cache, settings, axes)[-1]
    a, b = (np.asarray(Image.open(g.grid).convert("RGB")).astype(int) for g in (first, again))
    assert a.shape == b.shape and np.abs(a - b).max() <= 2  # float rounding at most (batched CPU kernels)
    prompts = [json.loads(c.with_suffix(".json").read_text())["prompt"] for c in first.cells]
    assert prompts[:2] == ["a red fox in snow"] * 2 and prompts[2:4] == ["a red owl in snow"] * 2
    assert len(first.cells) == 8


@pytest.mark.parametrize(
    "axes, fragment",
    [
        ([("Nothing", ""), ("Nothing", ""), ("Nothing", "")], "Give the X axis"),
        ([("Seed", "")], "Give the X axis"),
        ([("Seed", "1-200")], "the limit is 100"),
        ([("Seed", "1-100, 1-100")], "the limit is 100 values"),  # counted across parts, before any is made
        ([("Seed", "1-100," * 10_000)], "characters long; the limit is 2,000"),
        ([("Seed", "9007199254740992-9007199254740993")], "must be between 0 and 4294967295; got 9007199254740992"),
        ([("Guidance", "1-2 (+0)")], "must go up"),
        ([("Seed", "5-1")], "must go up"),
        ([("Guidance", "1.2.3-4")], "is not a range of numbers"),
        ([("Seed", "1-20"), ("Steps", "1-10")], "would make 200 images; the limit is 100"),
        ([("Steps", "0, 1")], "Steps axis value (steps_values) must be between 1 and 100; got 0"),
        ([("Guidance", "lots")], "Guidance axis value (guidance_values) must be a number"),
        ([("Sampler", "Euler z")], "'Euler z' is not a sampler"),
        ([("Prompt S/R", "cat, dog")], "does not contain 'cat'"),
        ([("Colour", "red")], "axis type must be one of"),
    ],
)
def test_bad_axes_get_one_sentence_and_make_nothing(shared_cache, settings, axes, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        grid(shared_cache, settings, axes)
    assert not settings.output_dir.exists()


def test_a_plot_through_the_api(client):
    status, gallery, recipe = client.predict(
        prompt="a boat", steps=1, seed=2, x_type="Seed", x_values="1, 2", api_name="/xyz_plot"
    )
    assert status.startswith("Done: a grid of 2") and len(gallery) == 3 and recipe["mode"] == "xyz-grid"


def test_a_lora_weight_axis(shared_cache, settings, lora_dir):
    s = settings.replace(lora_dir=lora_dir)
    prompt = replace(BASE, prompt="a red fox <lora:style:1> in snow")
    final = grid(shared_cache, s, [("LoRA weight", "0, 1"), ("Nothing", ""), ("Nothing", "")], prompt)[-1]
    recipes = [json.loads(c.with_suffix(".json").read_text()) for c in final.cells]
    assert [r["loras"][0]["weight"] for r in recipes] == [0, 1]
    zero, one = (np.asarray(Image.open(c)).astype(int) for c in final.cells)
    plain = grid(shared_cache, s, [("Seed", "11"), ("Nothing", ""), ("Nothing", "")])[-1].cells[0]
    assert np.array_equal(zero, np.asarray(Image.open(plain)).astype(int)) and np.abs(one - zero).mean() > 2
    with pytest.raises(UserError, match="no <lora:name:weight> tag"):
        grid(shared_cache, s, [("LoRA weight", "0, 1")])
