"""The Image tab's pipelines: which files of a model to download, how a model loads (once, shared by every run) and
the pipeline of each run's kind around it, and what a run's recipe says of them. engine.py and batch.py (the batched
path on Ray Serve) both stand on this module; it imports neither."""

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core import hub, outputs
from core.device import import_lock, imported, place_pipeline
from core.errors import UserError
from core.models import ModelCache
from core.png_recipes import sampler_name
from tabs.image import checkpoints, families
from tabs.image.parts import make_scheduler

SETTING = "STUDIO_IMAGE_MODEL"
# One file per part, or its shards (the transformers of FLUX.1 and Qwen-Image, T5-XXL: name-00001-of-00003...).
HALF_WEIGHTS = [
    "*/diffusion_pytorch_model.fp16.safetensors", "*/model.fp16.safetensors",
    "*/diffusion_pytorch_model.fp16-*.safetensors", "*/model.fp16-*.safetensors",
]  # fmt: skip
FULL_WEIGHTS = [
    "*/diffusion_pytorch_model.safetensors", "*/model.safetensors",
    "*/diffusion_pytorch_model-*.safetensors", "*/model-*.safetensors",
]  # fmt: skip


def download_patterns(files: dict | None) -> list[str]:
    """A diffusers repo's configs, tokenizers and one set of safetensors weights: its fp16 files where it has them,
    on every device (half the download; a CPU loads them as float32 just as well), else its full-precision ones.
    Never its root single-file checkpoints, ONNX exports or pickles. `files`: the repo's files (None: not known,
    then whichever set is on this machine)."""
    base = ["model_index.json", "*/*.json", "*/*.txt", "*/spiece.model"]
    if files is None:
        return base + HALF_WEIGHTS + FULL_WEIGHTS
    half = any(name.count("/") == 1 and name.endswith(".fp16.safetensors") for name in files)
    return base + (HALF_WEIGHTS if half else FULL_WEIGHTS)


@contextlib.contextmanager
def base_pipeline(cache: ModelCache, model_id: str, progress: Any = None, settings: Any = None) -> Iterator[Any]:
    """The model's pipeline from the cache (downloaded and loaded on first use), held for the block. A name of the
    checkpoints folder (settings.checkpoint_dir) is a single-file transformer: its family's reference repo gives the
    rest of the pipeline (tabs/image/checkpoints.py)."""
    if settings is not None and model_id in checkpoints.available(settings):
        point = checkpoints.identify(settings, model_id)
        options = dict(setting=checkpoints.SETTING, progress=progress, name=f"checkpoint:{point.name}")
        if point.whole:  # its configs and tokenizers only: the weights are all in the file
            options.update(allow_patterns=checkpoints.CONFIG_FILES)
        else:  # the rest of the pipeline, without its own transformer
            options.update(allow_patterns=download_patterns, ignore_patterns=["transformer/*.safetensors"])

        def load(folder: Path, device: str, dtype: Any) -> Any:
            return checkpoints.load(point, Path(folder), device, dtype)

        with cache.model("image", point.base, load, **options) as base:
            yield base
        return
    options = dict(setting=SETTING, progress=progress, allow_patterns=download_patterns)
    with cache.model("image", model_id, load_image_pipeline, **options) as base:
        yield base


def load_image_pipeline(folder: Path, device: str, dtype: Any) -> Any:
    """A model folder's pipeline (the class its model_index.json names: Stable Diffusion, FLUX.1, SD 3.5,
    Qwen-Image, Z-Image, an edit model...), on the device, offloaded to the CPU part by part where it does not fit
    the GPU. The transformer families run in bfloat16 on a GPU (FLUX.1 and Qwen-Image overflow in float16)."""
    with import_lock:
        import torch
        from diffusers import DiffusionPipeline

    half = any(Path(folder).rglob("*.fp16.safetensors"))  # fp16 files load as float32 on a CPU just as well
    pipeline_class = json.loads((Path(folder) / "model_index.json").read_text()).get("_class_name", "")
    options = {"add_watermarker": False} if "XL" in pipeline_class else {}  # the studio marks every picture itself
    transformer = not (Path(folder) / "unet").is_dir()
    if transformer and dtype == torch.float16 and device.startswith("cuda") and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16
    pipe = DiffusionPipeline.from_pretrained(
        folder, dtype=dtype, use_safetensors=True, variant="fp16" if half else None, **options
    )
    pipe.set_progress_bar_config(disable=True)
    keep_vae_in_float32(pipe, dtype)
    place_pipeline(pipe, device, hub.weight_bytes(folder))
    return pipe


def keep_vae_in_float32(pipe: Any, dtype: Any) -> None:
    """SDXL's VAE overflows in fp16 (black pictures), so its pipelines move the VAE to float32 for each decode and
    back after it: on a VAE that concurrent runs share, one run's move changes the dtype under another's decode.
    In fp16 the studio keeps such a VAE in float32 once, and hands it its inputs in float32."""
    import torch

    vae = getattr(pipe, "vae", None)
    if vae is None or dtype != torch.float16 or not getattr(vae.config, "force_upcast", False):
        return
    vae.to(torch.float32)
    vae.register_to_config(force_upcast=False)  # the pipeline then never moves it
    encode, decode = vae.encode, vae.decode
    vae.encode = lambda x, *args, **kwargs: encode(x.to(torch.float32), *args, **kwargs)
    vae.decode = lambda z, *args, **kwargs: decode(z.to(torch.float32), *args, **kwargs)


def pipeline_for(base: Any, request: Any, controlnet: Any = None) -> Any:
    """A pipeline of our own around the shared weights (the scheduler's state is per run), of the request's kind
    (engine.Request: text to image, from a picture, inpainting, an edit with words; with a ControlNet where given),
    in the variant made for the model's family (families.family_of)."""
    AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image = imported(
        "diffusers", "AutoPipelineForImage2Image", "AutoPipelineForInpainting", "AutoPipelineForText2Image"
    )
    family = families.family_of(base)
    scheduler = make_scheduler(base.scheduler, request.params.sampler, family)
    if family.edit:  # an edit model reads the picture itself, whole: no mask, no strength
        if request.mask is not None:
            raise UserError(
                f"{family.name} edits the whole picture from words: it takes no mask. Clear the painted mask and say "
                "what to change in the prompt, or choose another model to inpaint."
            )
        if family.needs_picture and request.init is None:
            raise UserError(
                f"{family.name} edits a picture: add one under Image to image (or use a result) and say what to "
                "change in the prompt."
            )
        pipe = type(base).from_pipe(base, scheduler=scheduler)
        pipe.set_progress_bar_config(disable=True)
        return pipe
    kind, what = (
        (AutoPipelineForInpainting, "inpainting")
        if request.mask is not None
        else (AutoPipelineForImage2Image, "image to image")
        if request.init is not None
        else (AutoPipelineForText2Image, "text to image")
    )
    extra = {"controlnet": controlnet} if controlnet is not None else {}  # a ControlNet pipeline of that kind
    try:
        pipe = kind.from_pipe(base, scheduler=scheduler, **extra)
    except ValueError:  # diffusers has no pipeline of that kind for this model
        raise UserError(f"{family.name} models cannot do {what} in this version of diffusers.") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


@dataclass
class Rendered:
    """What the model made for one request, before anything is saved (picklable: it comes back from a Ray replica)."""

    images: list  # PIL images, in the batch's order (image i drew from seed + i)
    film: list  # the first image's denoising, step by step (How it works)
    recipe: dict  # the batch's recipe: model, settings, what ran it (device, pipeline, scheduler, versions)
    seconds: float  # denoising time
    batch_size: int = 1  # requests served by the same pipeline call (Ray Serve's batching), for the figures
    steps: int = 0  # denoising steps the scheduler ran (0: not counted; the request's own count is shown)
    withheld: list = field(default_factory=list)  # indices of pictures the model's safety checker flagged


def flagged_by_checker(output: Any) -> list[int]:
    """The pictures of a pipeline's output that the model's own safety checker flagged (Stable Diffusion 1.5 ships
    one; the pipeline has blacked them out): they are withheld, never saved, and the user is told so."""
    flags = getattr(output, "nsfw_content_detected", None) or []
    return [i for i, flag in enumerate(flags) if flag]


def with_request(recipe: dict, request: Any, guided: dict) -> dict:
    """The recipe with what the request asked for besides its parameters: guides, LoRAs, embeddings."""
    recipe.update(request.expanded, **guided)
    if request.loras:
        recipe.update(loras=[lora.recipe() for lora in request.loras])
    if request.embeddings:
        recipe.update(embeddings=[embedding.recipe() for embedding in request.embeddings])
    return recipe


def run_recipe(model_id: str, base: Any, pipe: Any, p: Any, mode: str, cache: ModelCache) -> dict:
    """A run's recipe: the model, its family and revision, the parameters (the sampler in A1111's words), what ran
    it (device, dtype, how it was placed: on the device or offloaded)."""
    revision = hub.revision_of(base.config.get("_name_or_path", ""))
    family = families.family_of(base)
    dtype = next((m.dtype for m in base.components.values() if hasattr(m, "dtype")), cache.dtype)
    offloaded = bool(getattr(base, "_all_hooks", None) or getattr(base, "_offload_gpu_id", None) is not None)
    return outputs.base_recipe(
        "image",
        model_id,
        revision=revision,
        family=family.key,
        guidance_kind=family.guidance,
        **checkpoints.recipe(base),
        **({"negative_prompt_ignored": True} if p.negative_prompt and not families.uses_negative(family) else {}),
        **({"offload": "model"} if offloaded and str(cache.device).startswith("cuda") else {}),
        mode=mode,
        pipeline=type(pipe).__name__,
        scheduler=type(pipe.scheduler).__name__,
        device=cache.device,
        dtype=str(dtype).replace("torch.", ""),
        versions=outputs.library_versions("torch", "diffusers", "transformers"),
        **{
            **asdict(p),
            "sampler": sampler_name(pipe.scheduler),
            "styles": list(p.styles),
        },  # the sampler in A1111 words
    )
