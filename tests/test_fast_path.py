"""The fast path (bench/image.py, bench/overhead.py): the speed-ups keep every guarantee."""

import json

import gradio as gr
import numpy as np
from PIL import Image

from app import speed
from core import provenance
from tabs.image.engine import ImageParams, generate_image


def test_component_schemas_are_derived_once_per_data_model_and_unchanged(monkeypatch):
    speed.install()
    model = gr.Gallery.data_model
    expected = model.model_json_schema()
    expected["additional_description"] = expected.pop("description", None)  # as Gradio's own api_info says it
    derived = []
    original = model.model_json_schema
    monkeypatch.setattr(model, "model_json_schema", lambda *a, **k: derived.append(1) or original(*a, **k))
    speed._schema.cache_clear()
    first, second = gr.Gallery(render=False), gr.Gallery(render=False)
    assert first.api_info() == second.api_info() == expected
    assert len(derived) == 1  # a bare update rebuilds the component: its schema is not derived again
    first.api_info()["mutated"] = True
    assert "mutated" not in second.api_info()  # each component its own copy


def test_a_batch_saved_side_by_side_keeps_every_label(settings, shared_cache):
    """Pictures of a batch are saved in parallel: each still has its own seed, recipe, watermark and C2PA."""
    params = ImageParams("a lighthouse", steps=2, width=256, height=256, seed=40, num_images=3)
    *_, done = generate_image(shared_cache, settings, params)
    assert [json.loads(Image.open(p).text["studio_recipe"])["seed"] for p in done.images] == [40, 41, 42]
    for path in done.images:
        assert (
            json.loads(path.with_suffix(".json").read_text())["batch_index"]
            == int(json.loads(path.with_suffix(".json").read_text())["seed"]) - 40
        )
        assert provenance.read_c2pa(path.read_bytes(), "image/png")["present"]
        assert provenance.read_watermark(np.asarray(Image.open(path).convert("RGB")))["present"]
