"""The transformer (DiT) image families through the Image tab's engine, on tiny random-weight pipelines of their real
classes (core/tiny_dit.py): FLUX.1, SD 3.5, Z-Image, Qwen-Image and FLUX.1 Kontext. Pictures and seeds, image to
image, samplers per family, previews, LoRAs, edits with words, the recipe and AUTOMATIC1111's text, refusals."""

import json

import numpy as np
import pytest
from ldm_helpers import write_ldm_checkpoint
from PIL import Image

from core import hub
from core.errors import ModelUnavailable, UserError
from core.models import ModelCache
from core.png_recipes import parse_a1111, read_recipe
from tabs.image import families
from tabs.image.engine import ImageParams, generate_image
from tabs.image.pipelines import download_patterns, load_image_pipeline

DIT = ["tiny:flux", "tiny:sd3", "tiny:z-image", "tiny:qwen-image"]
PIPELINES = {
    "tiny:flux": "Flux",
    "tiny:sd3": "StableDiffusion3",
    "tiny:z-image": "ZImage",
    "tiny:qwen-image": "QwenImage",
}
FAMILY = {"tiny:flux": "flux1", "tiny:sd3": "sd35", "tiny:z-image": "z-image", "tiny:qwen-image": "qwen-image"}


@pytest.fixture
def dit_settings(settings):
    return settings.replace(tiny=True)


@pytest.fixture(scope="module")
def dit_cache(tiny_dir):
    """A cache of this module's own: the families' pipelines leave with it, not in the session's shared cache."""
    return ModelCache(device="cpu", offline=True, tiny_dir=tiny_dir)


def run(cache, settings, model, prompt="a red fox in the snow", **options):
    kw = {k: options.pop(k) for k in ("init_image", "mask", "control") if k in options}
    params = ImageParams(prompt, **{"steps": 3, "width": 96, "height": 64, "seed": 5, **options})
    return list(generate_image(cache, settings, params, model=model, **kw))


def gallery_paths(gallery):
    return [item["image"] if isinstance(item["image"], str) else item["image"]["path"] for item in gallery]


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.mark.parametrize("model", DIT)
def test_each_family_makes_its_pictures_from_its_seeds_with_previews(dit_cache, dit_settings, model):
    updates = run(dit_cache, dit_settings, model, num_images=2)
    done = updates[-1]
    assert done.done and len(done.images) == 2
    first, second = (pixels(p) for p in done.images)
    assert first.shape == (64, 96, 3)  # the size asked for (not the pipeline's own default)
    assert np.abs(first - second).mean() > 2  # image i draws from seed + i
    recipe = done.recipe
    assert recipe["family"] == FAMILY[model] and recipe["pipeline"] == PIPELINES[model] + "Pipeline"
    assert recipe["sampler"] == "Euler" and recipe["scheduler"] == "FlowMatchEulerDiscreteScheduler"
    assert done.filmstrip and all(frame.width > frame.height for frame in done.filmstrip[:-1])  # 3:2 previews
    again = run(dit_cache, dit_settings, model, num_images=1)[-1]
    assert np.abs(pixels(again.images[0]) - first).mean() < 1  # the same seed, the same picture (watermark aside)
    parameters = Image.open(done.images[0]).text["parameters"]
    assert f"Seed: 5, Size: 96x64, Model: {model}" in parameters


@pytest.mark.parametrize("model", DIT)
def test_image_to_image_keeps_the_pictures_size_in_every_family(dit_cache, dit_settings, model):
    source = Image.new("RGB", (96, 64), (200, 40, 40))
    done = run(dit_cache, dit_settings, model, init_image=source, strength=0.7, steps=4, num_images=2)[-1]
    assert [Image.open(p).size for p in done.images] == [(96, 64)] * 2
    assert done.recipe["mode"] == "image-to-image" and done.recipe["pipeline"] == PIPELINES[model] + "Img2ImgPipeline"


def test_each_family_offers_the_samplers_that_run_it(dit_cache, dit_settings):
    done = run(dit_cache, dit_settings, "tiny:flux", sampler="DPM++ 2M")[-1]
    assert done.recipe["sampler"] == "DPM++ 2M" and done.recipe["scheduler"] == "DPMSolverMultistepScheduler"
    assert run(dit_cache, dit_settings, "tiny:sd3", sampler="Heun")[-1].recipe["sampler"] == "Heun"
    with pytest.raises(UserError, match=r"'DDIM' does not run FLUX.1 models \(a flow-matching model\)"):
        run(dit_cache, dit_settings, "tiny:flux", sampler="DDIM")
    with pytest.raises(UserError, match="'Heun' does not run Z-Image models"):
        run(dit_cache, dit_settings, "tiny:z-image", sampler="Heun")
    assert families.FAMILIES["sd15"].samplers == tuple(families.SAMPLERS)  # the UNet families keep theirs


def test_flux_reads_distilled_guidance_and_no_negative_prompt_as_forge_writes_it(dit_cache, dit_settings):
    done = run(dit_cache, dit_settings, "tiny:flux", guidance_scale=3.5, negative_prompt="blurry")[-1]
    assert done.recipe["guidance_kind"] == "distilled" and done.recipe["negative_prompt_ignored"] is True
    text = Image.open(done.images[0]).text["parameters"]
    assert "Negative prompt" not in text and "CFG scale: 1, Distilled CFG Scale: 3.5," in text
    assert parse_a1111(text)["guidance_scale"] == 3.5  # Restore fills the guidance slider with FLUX.1's value
    restored = read_recipe(done.images[0])
    assert restored["family"] == "flux1" and restored["model"] == "tiny:flux"
    qwen = run(dit_cache, dit_settings, "tiny:qwen-image", guidance_scale=4.0, negative_prompt="blurry")[-1]
    assert (
        qwen.recipe["guidance_kind"] == "true_cfg"
        and "Negative prompt: blurry" in Image.open(qwen.images[0]).text["parameters"]
    )


def test_the_guidance_arguments_follow_the_family():
    flux, qwen, sd3 = (families.FAMILIES[k] for k in ("flux1", "qwen-image", "sd35"))
    assert families.call_arguments(flux, 3.5, "blurry") == {"max_sequence_length": 256, "guidance_scale": 3.5}
    assert families.call_arguments(qwen, 4.0, "") == {"true_cfg_scale": 4.0, "negative_prompt": " "}
    assert families.call_arguments(qwen, 1.0, "") == {"true_cfg_scale": 1.0, "negative_prompt": None}
    assert families.call_arguments(sd3, 4.5, "x") == {"max_sequence_length": 256, "guidance_scale": 4.5,
                                                      "negative_prompt": "x"}  # fmt: skip


@pytest.fixture(scope="module")
def flux_lora_dir(tmp_path_factory, tiny_dir):
    """fluxstyle.safetensors: a peft LoRA on the tiny FLUX.1 transformer (diffusers' format), and sdstyle: one made
    for the tiny Stable Diffusion UNet."""
    import torch
    from diffusers import FluxPipeline, FluxTransformer2DModel, StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    from core import tiny

    folder = tmp_path_factory.mktemp("flux-loras")
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel.from_pretrained(tiny.ensure("tiny:flux", tiny_dir) / "transformer")
    config = dict(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    transformer.add_adapter(LoraConfig(**config))
    with torch.no_grad():
        for name, weight in transformer.named_parameters():
            if "lora_B" in name:
                weight.mul_(20)  # random weights at the test's scale barely move a tiny model's picture
    FluxPipeline.save_lora_weights(
        folder, transformer_lora_layers=get_peft_model_state_dict(transformer), weight_name="fluxstyle.safetensors"
    )
    kohya, width, rank = {}, transformer.config.num_attention_heads * transformer.config.attention_head_dim, 4
    for name, rows in (("img_attn_qkv", 3 * width), ("img_attn_proj", width), ("txt_attn_qkv", 3 * width)):
        key = f"lora_unet_double_blocks_0_{name}"  # Kohya's (sd-scripts') names for FLUX.1, as civitai serves them
        kohya[f"{key}.lora_down.weight"] = torch.randn(rank, width) * 0.5
        kohya[f"{key}.lora_up.weight"] = torch.randn(rows, rank) * 0.5
        kohya[f"{key}.alpha"] = torch.tensor(float(rank))
    save_file(kohya, folder / "kohya-flux.safetensors")
    unet = UNet2DConditionModel.from_pretrained(tiny.ensure("tiny:stable-diffusion", tiny_dir) / "unet")
    unet.add_adapter(LoraConfig(**config))
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=get_peft_model_state_dict(unet), weight_name="sdstyle.safetensors"
    )
    return folder


def test_a_flux_lora_changes_the_picture_and_weight_zero_does_not(dit_cache, dit_settings, flux_lora_dir):
    settings = dit_settings.replace(lora_dir=flux_lora_dir)
    plain = pixels(run(dit_cache, settings, "tiny:flux", seed=9)[-1].images[0])
    styled = run(dit_cache, settings, "tiny:flux", "a red fox in the snow <lora:fluxstyle:1>", seed=9)[-1]
    zero = run(dit_cache, settings, "tiny:flux", "a red fox in the snow <lora:fluxstyle:0>", seed=9)[-1]
    assert np.abs(pixels(styled.images[0]) - plain).mean() > 3  # the LoRA moved the picture
    assert np.abs(pixels(zero.images[0]) - plain).mean() < 1  # weight 0: the picture without it
    assert (
        styled.recipe["loras"][0]["name"] == "fluxstyle"
        and "Lora hashes" in Image.open(styled.images[0]).text["parameters"]
    )
    after = pixels(run(dit_cache, settings, "tiny:flux", seed=9)[-1].images[0])
    assert np.abs(after - plain).mean() < 1  # the next run without it: off again
    with pytest.raises(UserError, match="The LoRA 'sdstyle' does not fit this model.* This is a FLUX.1 model"):
        run(dit_cache, settings, "tiny:flux", "a fox <lora:sdstyle:1>")
    kohya = run(dit_cache, settings, "tiny:flux", "a red fox in the snow <lora:kohya-flux:1>", seed=9)[-1]
    assert np.abs(pixels(kohya.images[0]) - plain).mean() > 3  # Kohya's format, converted by diffusers


def test_kontext_edits_a_picture_with_words_at_its_size(dit_cache, dit_settings):
    source = Image.new("RGB", (96, 64), (30, 60, 200))
    done = run(dit_cache, dit_settings, "tiny:flux-kontext", "make it night", init_image=source, num_images=2)[-1]
    assert [Image.open(p).size for p in done.images] == [(96, 64)] * 2
    assert done.recipe["mode"] == "edit" and done.recipe["pipeline"] == "FluxKontextPipeline"
    assert done.total == 3  # an edit runs every step (no strength)
    saved = json.loads(Image.open(done.images[0]).text["studio_recipe"])
    assert saved["statement"] != read_recipe(run(dit_cache, dit_settings, "tiny:flux")[-1].images[0])["statement"]
    assert "Denoising strength" not in Image.open(done.images[0]).text["parameters"]
    mask = Image.new("L", (96, 64), 255)
    with pytest.raises(UserError, match="FLUX.1 Kontext edits the whole picture from words: it takes no mask"):
        run(dit_cache, dit_settings, "tiny:flux-kontext", "make it night", init_image=source, mask=mask)


def test_qwen_image_edit_shows_the_picture_to_its_text_encoder_and_edits_it(dit_cache, dit_settings):
    """Qwen-Image-Edit reads the picture twice: as vision tokens beside the words (Qwen2.5-VL's processor and vision
    tower) and as latents beside the picture it makes (at about 1 megapixel whatever its size: the slow part here).
    The result keeps the picture's size and is labelled an edit. One step is enough: an edit runs every step, so
    the strength (0.5 by default) does not count as in image to image."""
    source = Image.new("RGB", (96, 64), (30, 60, 200))
    done = run(dit_cache, dit_settings, "tiny:qwen-image-edit", "make it night", init_image=source, steps=1)[-1]
    assert Image.open(done.images[0]).size == (96, 64)
    assert done.recipe["mode"] == "edit" and done.recipe["pipeline"] == "QwenImageEditPipeline"
    assert done.recipe["family"] == "qwen-image-edit" and done.recipe["guidance_kind"] == "true_cfg"
    mask = Image.new("L", (96, 64), 255)
    with pytest.raises(UserError, match="Qwen-Image-Edit edits the whole picture from words: it takes no mask"):
        run(dit_cache, dit_settings, "tiny:qwen-image-edit", "x", init_image=source, mask=mask)


def test_unet_only_guides_get_a_sentence_on_a_transformer_model(dit_cache, dit_settings):
    from tabs.image import control

    steer = control.Control(Image.new("RGB", (96, 64), "white"), "Canny")
    with pytest.raises(UserError, match="ControlNet needs a Stable Diffusion 1.5 or SDXL model here; FLUX.1 models"):
        run(dit_cache, dit_settings, "tiny:flux", control=steer)


def test_a_model_too_large_for_the_memory_budget_is_refused_with_its_numbers(monkeypatch, tmp_path):
    """FLUX.1-schnell's recorded files: 33.7 GB in bf16, twice that in float32 on a CPU, refused before a byte of
    it is fetched (HF_HUB_OFFLINE keeps any real call from leaving)."""
    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    cache = ModelCache(budget_bytes=12 * 10**9, device="cpu")
    options = dict(setting="STUDIO_IMAGE_MODEL", allow_patterns=download_patterns)
    with pytest.raises(ModelUnavailable, match=r"needs about 67\.\d GB of memory as float32 on cpu; .* is 12\.0 GB"):
        with cache.model("image", "black-forest-labs/FLUX.1-schnell", load_image_pipeline, **options):
            pass


def test_the_curated_models_say_their_licence_and_family():
    from tabs.image.choices import CURATED, model_note, model_samplers

    assert "Apache-2.0" in model_note("black-forest-labs/FLUX.1-schnell")
    assert "Non-Commercial" in model_note("black-forest-labs/FLUX.1-dev")
    assert "Non-Commercial" in model_note("black-forest-labs/FLUX.1-Kontext-dev")
    assert all(d.family in families.FAMILIES and d.licence for d in CURATED.values())
    assert model_samplers("Tongyi-MAI/Z-Image-Turbo") == ["Model default", "Euler"]
    assert "DDIM" in model_samplers("stabilityai/sd-turbo")


def test_a_flux_picture_through_the_api(client):
    _preview, gallery, status, seed, recipe = client.predict(
        prompt="a lighthouse", model="tiny:flux", sampler="Euler", steps=2, width=96, height=64, seed=3,
        api_name="/generate_image",
    )  # fmt: skip
    assert status.startswith("Done: 1 image(s)") and recipe["family"] == "flux1"
    assert Image.open(gallery_paths(gallery)[0]).size == (96, 64)


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory, tiny_dir):
    """The tiny FLUX.1 transformer as creators hold transformers: one .safetensors file, and a GGUF file with its
    2-D weights quantised to Q8_0 (gguf's own writer, as city96's files are made); and a file of no known family."""
    import gguf
    from safetensors.torch import load_file, save_file

    from core import tiny

    folder = tmp_path_factory.mktemp("checkpoints")
    weights = load_file(tiny.ensure("tiny:flux", tiny_dir) / "transformer" / "diffusion_pytorch_model.safetensors")
    save_file(weights, folder / "tiny-flux.safetensors")
    writer = gguf.GGUFWriter(str(folder / "tiny-flux-Q8_0.gguf"), arch="flux")
    for name, tensor in weights.items():
        values = tensor.float().numpy()
        if values.ndim == 2 and values.shape[-1] % 32 == 0:
            quantised = gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, quantised, raw_shape=quantised.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, values.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    save_file({"input_blocks.0.0.weight": weights["x_embedder.weight"]}, folder / "sd15-style.safetensors")
    # a whole SD checkpoint in A1111's layout (the tiny SD pipeline's weights), and a UNet without text encoders
    write_ldm_checkpoint(tiny.ensure("tiny:stable-diffusion", tiny_dir), folder / "tiny-sd-whole.safetensors")
    save_file(
        {"model.diffusion_model.input_blocks.0.0.weight": weights["x_embedder.weight"]}, folder / "unet.safetensors"
    )
    (folder / "notes.txt").write_text("not a model")
    return folder


def test_single_file_and_gguf_transformers_run_as_their_family(dit_cache, dit_settings, checkpoint_dir):
    """The file's tensors tell FLUX.1; the rest of the pipeline comes from the family's reference model (the tiny one
    with --tiny); the GGUF one stays quantised (diffusers' GGUFLinear) and makes nearly the same picture."""
    from tabs.image.choices import model_choices

    settings = dit_settings.replace(checkpoint_dir=checkpoint_dir)
    offered = model_choices(settings)
    assert {"tiny-flux.safetensors", "tiny-flux-Q8_0.gguf"} <= set(offered) and "notes.txt" not in offered
    reference = run(dit_cache, settings, "tiny:flux", seed=4)[-1]
    single = run(dit_cache, settings, "tiny-flux.safetensors", seed=4)[-1]
    quantised = run(dit_cache, settings, "tiny-flux-Q8_0.gguf", seed=4)[-1]
    assert np.abs(pixels(single.images[0]) - pixels(reference.images[0])).mean() < 1  # the very same transformer
    assert np.abs(pixels(quantised.images[0]) - pixels(reference.images[0])).mean() < 3  # Q8_0: nearly the same
    assert single.recipe["family"] == quantised.recipe["family"] == "flux1"
    assert single.recipe["checkpoint"]["quantization"] == "none"
    said = quantised.recipe["checkpoint"]
    assert said["quantization"] == "gguf" and said["base"] == "tiny:flux" and len(said["sha256"]) == 64
    key = next(k for k in dit_cache.snapshot() if k["model"] == "checkpoint:tiny-flux-Q8_0.gguf")
    assert key["kind"] == "image"
    with pytest.raises(UserError, match="'sd15-style.safetensors' is neither a whole Stable Diffusion"):
        run(dit_cache, settings, "sd15-style.safetensors")


def test_a_whole_sd_checkpoint_in_one_file_makes_the_pictures_of_its_weights(dit_cache, dit_settings, checkpoint_dir):
    """A civitai-style checkpoint (UNet, VAE and text encoder in A1111's layout, one file): its family told by its
    text encoder, its configs from the family's reference model; the very weights, so the very same picture."""
    from tabs.image.choices import model_defaults

    settings = dit_settings.replace(checkpoint_dir=checkpoint_dir)
    reference = run(dit_cache, settings, "tiny:stable-diffusion", seed=6)[-1]
    single = run(dit_cache, settings, "tiny-sd-whole.safetensors", seed=6)[-1]
    assert (pixels(single.images[0]) == pixels(reference.images[0])).all()
    said = single.recipe["checkpoint"]
    assert said["file"] == "tiny-sd-whole.safetensors" and said["base"] == "tiny:stable-diffusion"
    defaults = model_defaults("tiny-sd-whole.safetensors", settings)
    assert defaults.family == "sd15" and defaults.note.startswith("Stable Diffusion 1.x checkpoint in one file")
    with pytest.raises(UserError, match="whose text encoders the studio does not know"):
        run(dit_cache, settings, "unet.safetensors")


def test_the_gguf_transformer_is_quantised_in_memory(dit_cache, dit_settings, checkpoint_dir):
    from tabs.image.pipelines import base_pipeline

    settings = dit_settings.replace(checkpoint_dir=checkpoint_dir)
    with base_pipeline(dit_cache, "tiny-flux-Q8_0.gguf", settings=settings) as base:
        layer = base.transformer.transformer_blocks[0].attn.to_q
        assert type(layer).__name__ == "GGUFLinear" and type(layer.weight).__name__ == "GGUFParameter"
