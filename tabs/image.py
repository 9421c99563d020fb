"""Image tab: text-to-image and image-to-image with diffusers, live progress and previews, recipes in every PNG.

Reads top to bottom: model choices and their defaults, the engine (`generate_image`, plain Python), then the UI
(`build`). Samplers, input pictures, masks and previews are plain functions in `tabs/image_parts.py`.
"""

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core import checks, hub, outputs, provenance
from core.device import Worker, gpu, import_lock
from core.errors import Stopped, UserError
from core.models import ModelCache
from core.png_recipes import a1111_parameters, read_recipe, sampler_name
from core.settings import TINY_IMAGE_MODEL, Settings
from tabs.image_parts import (
    DEFAULT_SAMPLER,
    MASK_BLUR,
    OUTPAINT_SIDES,
    SAMPLERS,
    check_sampler,
    keep_outside_mask,
    latent_preview,
    make_scheduler,
    open_input_image,
    open_mask,
    outpaint_canvas,
    upscaled,
)

SETTING = "STUDIO_IMAGE_MODEL"


@dataclass(frozen=True)
class ModelDefaults:
    steps: int
    guidance: float
    size: int
    note: str = ""


CURATED = {
    "stabilityai/sd-turbo": ModelDefaults(1, 0.0, 512, "SD-Turbo: 1-4 steps, guidance 0. Fast on a CPU."),
    "stabilityai/sdxl-turbo": ModelDefaults(1, 0.0, 512, "SDXL-Turbo: 1-4 steps, guidance 0. Sharper, heavier."),
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ModelDefaults(
        25, 7.0, 512, "Stable Diffusion 1.5: about 25 steps, guidance 7. Slow on a CPU."
    ),
}
TINY_DEFAULTS = ModelDefaults(2, 0.0, 64, "Tiny random-weight model: the images are noise.")
OTHER_DEFAULTS = ModelDefaults(25, 7.0, 512, "Custom model: Stable Diffusion defaults.")
MAX_STEPS = 100
PRESETS = ("Fast", "Balanced", "Quality")
EXAMPLES = [
    "a watercolor fox in a snowy forest, soft morning light",
    "a cozy reading nook with plants and warm lamps, isometric illustration",
    "a lighthouse on a cliff at dusk, dramatic clouds, oil painting",
]
FILM_FRAMES = 24  # frames in the "How it works" filmstrip
PREVIEW_EVERY_S = 0.5  # seconds between live previews
UPDATE_EVERY_S = 0.25  # seconds between progress updates sent to the page
MAX_IMAGES = 4
EDITS = ("inpaint", "outpaint")  # modes whose result keeps the input picture outside the mask
OUTPAINT_STRENGTH = 1.0  # the new area starts from noise (its stretched-edge fill only sets the colours around it)
UPSCALE_STRENGTH = 0.35  # how much an upscale repaints: new detail, the same picture (A1111's hires fix: 0.3-0.7)


def model_defaults(model_id: str) -> ModelDefaults:
    if model_id == TINY_IMAGE_MODEL:
        return TINY_DEFAULTS
    return CURATED.get(model_id, OTHER_DEFAULTS)


def preset_values(name: str, model_id: str, size_max: int) -> tuple[int, float, int, str]:
    """(steps, guidance, size, what it trades) of a preset for a model, from the model's own defaults."""
    d = model_defaults(model_id)
    size = min(d.size, size_max)
    if name == "Fast":
        small = max(64, size * 3 // 4 // 8 * 8)
        return max(1, d.steps // 2), d.guidance, small, f"Fast: {max(1, d.steps // 2)} step(s) at {small} px, rougher."
    if name == "Quality":
        steps = min(MAX_STEPS, 4 if d.steps <= 2 else d.steps * 2)
        return steps, d.guidance, size, f"Quality: {steps} steps at {size} px, slower, finer detail."
    return d.steps, d.guidance, size, f"Balanced: the model's own defaults ({d.steps} step(s), {size} px)."


def model_choices(settings: Settings) -> list[str]:
    first = settings.model_for("image")
    return [first] + [m for m in CURATED if m != first and not settings.tiny]


def download_patterns(half: bool) -> list[str]:
    """A diffusers repo's configs, tokenizers and one set of safetensors weights (fp16 files on GPUs)."""
    weights = (
        ["*/diffusion_pytorch_model.fp16.safetensors", "*/model.fp16.safetensors"]
        if half
        else ["*/diffusion_pytorch_model.safetensors", "*/model.safetensors"]
    )
    return ["model_index.json", "*/*.json", "*/*.txt"] + weights


@dataclass(frozen=True)
class ImageParams:
    prompt: str
    negative_prompt: str = ""
    steps: int = 1
    guidance_scale: float = 0.0
    width: int = 512
    height: int = 512
    seed: int | None = -1  # -1 or None = random; image i of a batch uses seed + i
    num_images: int = 1
    strength: float = 0.5  # image-to-image: how much of the input is repainted (1 = all)
    sampler: str = DEFAULT_SAMPLER  # a key of SAMPLERS, or the model's own scheduler


@dataclass
class ImageUpdate:
    step: int  # denoising steps done
    total: int
    seconds: float
    seed: int
    preview: Any = None  # a PIL image: a cheap approximation of the first image, every few steps
    images: list[Path] = field(default_factory=list)  # saved PNGs, once done
    recipe: dict | None = None
    done: bool = False
    filmstrip: list = field(default_factory=list)  # once done: the first image at each step (How it works)

    @property
    def eta(self) -> float:
        return self.seconds / self.step * (self.total - self.step) if self.step else 0.0

    def status(self) -> str:
        if self.done:
            return f"Done: {len(self.images)} image(s) in {self.seconds:.1f} s, seed {self.seed}."
        return f"Step {self.step}/{self.total} · {self.seconds:.1f} s · about {self.eta:.0f} s left"


# ------------------------------------------------------------------------------------------- the engine -------


def load_image_pipeline(folder: Path, device: str, dtype: Any) -> Any:
    with import_lock:
        import torch
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image  # noqa: F401

    half = dtype != torch.float32 and any(Path(folder).rglob("*.fp16.safetensors"))
    pipe = AutoPipelineForText2Image.from_pretrained(
        folder, dtype=dtype, use_safetensors=True, variant="fp16" if half else None
    )
    pipe.set_progress_bar_config(disable=True)
    if device.startswith("cuda") and hub.weight_bytes(folder) > 0.8 * torch.cuda.mem_get_info(device)[0]:
        pipe.enable_model_cpu_offload(device=device)  # does not fit the GPU: keep parts on the CPU until needed
    else:
        pipe.to(device)
    if device == "mps":
        pipe.enable_attention_slicing()
    return pipe


def check_params(settings: Settings, p: ImageParams, image_to_image: bool) -> ImageParams:
    limit = settings.max_image_size
    size_hint = f"a multiple of 8 from 64 to {limit}" + (" (larger sizes need a GPU)" if limit <= 1024 else "")
    sizes = {}
    for name in ("width", "height"):
        value = checks.check_number(getattr(p, name), name, 64, limit, integer=True)
        if value % 8:
            raise UserError(f"The {name} must be {size_hint}; {value} is not a multiple of 8.")
        sizes[name] = value
    checked = ImageParams(
        prompt=checks.check_text(p.prompt, "prompt", settings.max_prompt_chars),
        negative_prompt=checks.check_text(p.negative_prompt, "negative prompt", settings.max_prompt_chars, False),
        steps=int(checks.check_number(p.steps, "number of steps", 1, MAX_STEPS, integer=True)),
        guidance_scale=float(checks.check_number(p.guidance_scale, "guidance scale", 0, 30)),
        seed=checks.resolve_seed(p.seed),
        num_images=int(checks.check_number(p.num_images, "number of images", 1, MAX_IMAGES, integer=True)),
        strength=float(checks.check_number(p.strength, "strength", 0.01, 1)),
        sampler=check_sampler(p.sampler),
        **sizes,
    )
    if image_to_image and int(checked.steps * checked.strength) < 1:
        raise UserError(
            f"With {checked.steps} step(s) at strength {checked.strength:g} no denoising step would run: "
            "raise the steps or the strength."
        )
    return checked


def _pipeline_args(params: ImageParams, init: Any, on_step: Callable, mask: Any = None) -> dict[str, Any]:
    """The diffusers call for one run; image i of the batch draws from its own generator seeded seed + i."""
    import torch

    args = dict(
        prompt=params.prompt,
        negative_prompt=params.negative_prompt or None,
        num_inference_steps=params.steps,
        guidance_scale=params.guidance_scale,
        num_images_per_prompt=params.num_images,
        generator=[torch.Generator("cpu").manual_seed(params.seed + i) for i in range(params.num_images)],
        callback_on_step_end=on_step,
    )
    if mask is not None:
        return dict(args, image=init, mask_image=mask, strength=params.strength, width=init.width, height=init.height)
    if init is not None:
        return dict(args, image=init, strength=params.strength)
    return dict(args, width=params.width, height=params.height)


@gpu(duration=180)  # spaces.GPU on ZeroGPU Spaces, nothing elsewhere
def generate_image(
    cache: ModelCache,
    settings: Settings,
    params: ImageParams,
    *,
    model: str | None = None,
    init_image: Any = None,
    mask: Any = None,
    outpaint: tuple[Any, Any] | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[ImageUpdate]:
    """Text-to-image, image-to-image when `init_image` is given, inpainting when a `mask` (white = repaint, see
    open_mask) comes with it, outpainting with `outpaint` = (sides, pixels) (see outpaint_canvas): yields progress,
    then the saved PNGs."""
    outpainted = None  # what the recipe says about an outpainting: the sides extended and the pixels added to each
    if outpaint is not None:
        if init_image in (None, ""):
            raise UserError("Add an image to extend (upload one under Image to image, or use a result).")
        init_image, mask, outpainted = outpaint_canvas(open_input_image(init_image, settings), *outpaint, settings)
    inpaint = mask is not None and mask != "" and mask != []
    if inpaint and init_image in (None, ""):
        raise UserError("Add an image to inpaint (upload one, or use a result), then paint over what to repaint.")
    img2img = init_image is not None
    init = open_input_image(init_image, settings) if img2img else None
    if init is not None:
        params = replace(params, width=init.size[0], height=init.size[1])
    params = check_params(settings, params, img2img)
    mask_image = open_mask(mask, init.size) if inpaint else None
    model_id = checks.check_model_choice(
        model or settings.model_for("image"), model_choices(settings), settings.allow_custom_models, SETTING
    )
    stop = stop or threading.Event()
    half = cache.device != "cpu"
    with cache.model(
        "image",
        model_id,
        load_image_pipeline,
        setting=SETTING,
        progress=progress,
        allow_patterns=download_patterns(half),
    ) as base:
        with import_lock:
            import torch
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

        # A pipeline of our own around the shared weights: the scheduler's state is per run.
        kind = (
            AutoPipelineForInpainting
            if inpaint
            else AutoPipelineForImage2Image
            if img2img
            else AutoPipelineForText2Image
        )
        pipe = kind.from_pipe(base, scheduler=make_scheduler(base.scheduler, params.sampler))
        pipe.set_progress_bar_config(disable=True)
        total = int(params.steps * params.strength) if img2img else params.steps
        job = Worker("image-generate")
        events: queue.Queue = queue.Queue()  # (steps done, preview or None) after each step; None at the end
        last_preview = [time.perf_counter()]
        film: list = []  # the denoising, step by step, for "How it works" (at most FILM_FRAMES frames)
        film_every = max(1, -(-total // FILM_FRAMES))

        def on_step(_pipe, i, _t, kwargs):
            if stop.is_set() or job.halt.is_set():
                raise Stopped
            done, now, preview = i + 1, time.perf_counter(), None
            if done % film_every == 0 and done < total:
                film.append(latent_preview(kwargs["latents"]))
            if done < total and now - last_preview[0] >= PREVIEW_EVERY_S:  # a cheap preview, at most twice a second
                preview, last_preview[0] = latent_preview(kwargs["latents"]), now
            events.put((done, preview))
            return kwargs

        def run() -> list:
            try:
                with torch.inference_mode():
                    return pipe(**_pipeline_args(params, init, on_step, mask_image)).images
            finally:
                events.put(None)

        start, last_yield, done = time.perf_counter(), 0.0, 0
        with job.start(run):
            while True:
                try:
                    event = events.get(timeout=max(UPDATE_EVERY_S, 0.05))
                except queue.Empty:  # a slow step: still report, so the page (and a Stop) is never kept waiting
                    last_yield = time.perf_counter() - start
                    yield ImageUpdate(step=done, total=total, seconds=last_yield, seed=params.seed)
                    continue
                if event is None:
                    break
                (done, preview), elapsed = event, time.perf_counter() - start
                if progress:
                    progress(done / total, f"Step {done}/{total}")
                if preview is not None or done == 1 or elapsed - last_yield >= UPDATE_EVERY_S:
                    last_yield = elapsed
                    yield ImageUpdate(step=done, total=total, seconds=elapsed, seed=params.seed, preview=preview)
        images = job.result()
        if inpaint:
            images = [keep_outside_mask(init, image, mask_image) for image in images]
        mode = "outpaint" if outpainted else "inpaint" if inpaint else "image-to-image" if img2img else "text-to-image"
        recipe = _recipe(model_id, base, pipe, params, mode, cache)
        if outpainted:
            recipe.update(outpaint=outpainted)
        if inpaint:
            painted = sum(mask_image.histogram()[128:]) / (mask_image.width * mask_image.height)
            recipe.update(mask_blur=MASK_BLUR, mask_area=round(painted, 4))  # the share of the picture repainted
        paths = [_save(settings, image, recipe, i) for i, image in enumerate(images)]
        yield ImageUpdate(
            step=total,
            total=total,
            seconds=time.perf_counter() - start,
            seed=params.seed,
            images=paths,
            recipe=recipe,
            done=True,
            filmstrip=film + [images[0]],
        )


def _recipe(model_id: str, base: Any, pipe: Any, p: ImageParams, mode: str, cache: ModelCache) -> dict:
    revision = hub.revision_of(base.config.get("_name_or_path", ""))
    return outputs.base_recipe(
        "image",
        model_id,
        revision=revision,
        mode=mode,
        pipeline=type(pipe).__name__,
        scheduler=type(pipe.scheduler).__name__,
        device=cache.device,
        dtype=str(cache.dtype).replace("torch.", ""),
        versions=outputs.library_versions("torch", "diffusers", "transformers"),
        **{**asdict(p), "sampler": sampler_name(pipe.scheduler)},  # what ran, in AUTOMATIC1111's words
    )


def _save(settings: Settings, image: Any, batch_recipe: dict, index: int) -> Path:
    recipe = {
        **batch_recipe,
        "seed": batch_recipe["seed"] + index,
        "batch_seed": batch_recipe["seed"],
        "batch_index": index,
    }
    path = outputs.new_output_path(settings.output_dir, "image", recipe["prompt"], "png")
    data = provenance.finish_png(
        image,
        recipe,
        settings,
        # an inpainted or outpainted picture is the user's own outside the mask: a composite, edited (as a face swap)
        source_type=provenance.COMPOSITE if recipe["mode"] in EDITS else provenance.GENERATED,
        action="c2pa.edited" if recipe["mode"] in EDITS else "c2pa.created",
        title=path.name,
        chunks={"parameters": a1111_parameters(recipe)},
    )
    outputs.atomic_write(path, data)
    outputs.save_recipe(path, recipe)
    return path


# ---------------------------------------------------------------- UI ----------------------------------------------


def build(ctx) -> None:
    """The Image tab. `ctx` is core.ui.Context."""
    import gradio as gr

    from core import ui

    settings, cache = ctx.settings, ctx.cache
    choices = model_choices(settings)
    first = model_defaults(choices[0])
    size_max = settings.max_image_size

    with gr.Row():
        with gr.Column(scale=2):
            prompt = gr.Textbox(
                "",
                label="Prompt",
                lines=3,
                elem_id="image-prompt",
                max_length=settings.max_prompt_chars,
                placeholder="a watercolor fox in a snowy forest, soft light",
            )
            negative = gr.Textbox(
                "",
                label="Negative prompt",
                lines=1,
                elem_id="image-negative",
                placeholder="what to avoid (used when guidance > 1)",
            )
            with gr.Row():
                generate = gr.Button("Generate", variant="primary", elem_id="image-generate")
                ctx.shared["image_expand"] = gr.Button("✨ Expand prompt", elem_id="image-expand")
                stop = gr.Button("Stop", variant="stop", elem_id="image-stop")
            model = gr.Dropdown(
                visible=not settings.classroom,
                choices=choices,
                value=choices[0],
                label="Model",
                allow_custom_value=settings.allow_custom_models,
            )
            model_note = gr.Markdown(first.note)
            preset = gr.Radio(
                list(PRESETS),
                label="Preset",
                elem_id="image-preset",
                info="Fast: fewer steps, smaller. Quality: more steps. Balanced: the model's own.",
            )
            with gr.Row():
                steps = ui.slider(1, MAX_STEPS, value=first.steps, step=1, label="Steps", elem_id="image-steps")
                guidance = ui.slider(0, 30, value=first.guidance, step=0.5, label="Guidance (CFG)")
            sampler = gr.Dropdown(
                [DEFAULT_SAMPLER, *SAMPLERS],
                value=DEFAULT_SAMPLER,
                label="Sampler",
                elem_id="image-sampler",
                visible=not settings.classroom,
                info="How each step removes noise. Turbo models are tuned for their own (Euler).",
            )
            with gr.Row():
                width = ui.slider(64, size_max, value=first.size, step=8, label="Width")
                height = ui.slider(64, size_max, value=first.size, step=8, label="Height")
            with gr.Row():
                seed = ui.checked(gr.Number, checks.SEED_UNREADABLE)(
                    -1, label="Seed (-1 = random)", precision=0, elem_id="image-seed"
                )
                reuse = gr.Button("♻ Reuse last seed", size="sm")
                count = ui.slider(1, MAX_IMAGES, value=1, step=1, label="Images")
            with gr.Accordion("Image to image", open=False):
                init = ui.checked(gr.Image, checks.IMAGE_UNREADABLE)(
                    label="Input image",
                    type="filepath",
                    format="png",
                    elem_id="image-init",
                    sources=["upload", "clipboard"],
                )
                strength = ui.slider(0.05, 1, value=0.5, step=0.05, label="Strength (1 = repaint everything)")
                transform = gr.Button("Generate from image", elem_id="image-transform")
                with gr.Row():
                    outpaint_sides = gr.CheckboxGroup(
                        [side.capitalize() for side in OUTPAINT_SIDES],
                        value=["Right"],
                        label="Extend the picture (outpaint)",
                        info="The model paints what lies beyond these edges; the picture itself stays as it is.",
                        elem_id="image-outpaint-sides",
                    )
                    outpaint_pixels = ui.slider(
                        8, 512, value=128, step=8, label="Pixels to add", elem_id="image-outpaint-pixels"
                    )
                outpaint = gr.Button("Extend the picture", elem_id="image-outpaint-run")
            with gr.Accordion("Inpaint: repaint part of an image", open=False, elem_id="image-inpaint-panel"):
                editor = ui.checked(gr.ImageEditor, checks.IMAGE_UNREADABLE)(
                    label="Image: paint over what to repaint",
                    type="filepath",
                    format="png",
                    sources=["upload", "clipboard"],
                    brush=gr.Brush(colors=["#ff2d7a"], color_mode="fixed"),
                    eraser=gr.Eraser(),
                    layers=False,
                    transforms=(),
                    canvas_size=None,  # the canvas follows the picture's size (a fixed one would rescale it)
                    elem_id="image-inpaint",
                )
                inpaint_strength = ui.slider(
                    0.05, 1, value=0.75, step=0.05, label="Strength (1 = ignore what was under the paint)"
                )
                inpaint = gr.Button("Repaint the painted area", elem_id="image-inpaint-run")
            with gr.Accordion("Restore settings from a PNG", open=False, visible=not settings.classroom):
                restore = gr.File(
                    label="Drop a PNG made here or by AUTOMATIC1111", file_types=[".png"], elem_id="image-restore"
                )
        with gr.Column(scale=3):
            preview = gr.Image(label="Preview", interactive=False, visible=True, height=256, elem_id="image-preview")
            status = gr.Markdown(elem_id="image-status")
            gallery = gr.Gallery(
                label="Results",
                format="png",
                columns=2,
                fit_columns=False,
                object_fit="contain",
                height=420,
                elem_id="image-gallery",
                interactive=False,
            )
            with gr.Row():
                use_result = gr.Button("Use for image to image / inpaint", size="sm", elem_id="image-use-result")
                upscale = gr.Button("⤢ Upscale ×2", size="sm", elem_id="image-upscale")
                ctx.shared["image_to_music"] = gr.Button("🎵 Make a soundtrack", size="sm", elem_id="image-to-music")
                ctx.shared["image_to_faceswap"] = gr.Button(
                    "🎭 Use as face-swap target", size="sm", elem_id="image-to-faceswap"
                )
            seed_used = ui.seed_used_box("image-seed-used")
            recipe_view = gr.JSON(label="Recipe", open=False)
    selected = gr.State(None)
    gr.Examples(EXAMPLES, prompt, label="Try")
    ctx.shared.update(image_prompt=prompt, image_gallery=gallery, image_selected=selected)

    def apply_preset(name: str, model_id: str):
        steps_value, guidance_value, size_value, note = preset_values(name, model_id, size_max)
        return steps_value, guidance_value, size_value, size_value, note

    preset.input(
        apply_preset,
        [preset, model],
        [steps, guidance, width, height, model_note],
        api_visibility="private",
        queue=False,
    )

    def run(params: ImageParams, model_id, image, history, ticket, request, progress, mask=None, outpaint=None):
        with ui.job(ctx, request, "image", ticket) as stop_event:
            for u in generate_image(
                cache,
                settings,
                params,
                model=model_id,
                init_image=image,
                mask=mask,
                outpaint=outpaint,
                stop=stop_event,
                progress=progress,
            ):
                if not u.done:
                    yield (
                        (u.preview if u.preview is not None else gr.skip()),
                        gr.skip(),
                        u.status(),
                        u.seed,
                        gr.skip(),
                        gr.skip(),
                        gr.skip(),
                        u.seed,
                    )
                else:
                    files = [f for p in u.images for f in (p, outputs.recipe_path(p))]
                    entry = ui.history_entry("Image", params.prompt, files, preview=str(u.images[0]))
                    yield (
                        None,
                        [str(p) for p in u.images],
                        u.status(),
                        u.seed,
                        u.recipe,
                        ui.history_add(history, entry),
                        u.filmstrip,
                        u.seed,
                    )

    @ui.user_errors
    def generate_image_ui(
        prompt,
        negative_prompt,
        steps,
        guidance_scale,
        width,
        height,
        seed,
        num_images,
        model,
        sampler,
        history,
        ticket=None,
        request: gr.Request = None,
        progress=gr.Progress(track_tqdm=True),
    ):
        params = ImageParams(
            prompt, negative_prompt, steps, guidance_scale, width, height, seed, num_images, sampler=sampler
        )
        yield from run(params, model, None, history, ticket, request, progress)

    @ui.user_errors
    def image_to_image_ui(
        image,
        prompt,
        negative_prompt,
        strength,
        steps,
        guidance_scale,
        seed,
        num_images,
        model,
        sampler,
        outpaint_sides=None,
        outpaint_pixels=None,
        history=None,
        ticket=None,
        request: gr.Request = None,
        progress=gr.Progress(track_tqdm=True),
    ):
        """From a picture (/image_to_image); from the inpainting editor's value (/inpaint): {"background":
        picture, "layers": [painted layers], "composite": ...}, repainting where the layers are painted; or from a
        picture with the sides to extend and by how much (/outpaint; None: not outpainting)."""
        mask, outpaint = None, None if outpaint_sides is None else (outpaint_sides, outpaint_pixels)
        if isinstance(image, dict):
            if not image.get("background"):
                raise UserError(
                    "Add an image to inpaint (upload one, or use a result), then paint over what to repaint."
                )
            if not image.get("layers"):
                raise UserError("The mask is empty: paint over the part of the image to repaint.")
            image, mask = image["background"], image["layers"]
        elif not image:
            what = "to extend" if outpaint else "for image-to-image"
            raise UserError(f"Add an input image {what} (upload one under Image to image, or use a result).")
        params = ImageParams(
            prompt, negative_prompt, steps, guidance_scale, 512, 512, seed, num_images, strength, sampler
        )
        yield from run(params, model, image, history, ticket, request, progress, mask, outpaint)

    @ui.user_errors
    def upscale_ui(
        image,
        prompt,
        negative_prompt,
        steps,
        guidance_scale,
        seed,
        model,
        sampler,
        history,
        ticket=None,
        request: gr.Request = None,
        progress=gr.Progress(track_tqdm=True),
    ):
        """Twice the size, then an image-to-image pass at low strength that adds the detail (A1111's "hires
        fix"). A blank prompt takes the one in the picture's recipe."""
        if not image:
            raise UserError("Generate an image (or add one under Image to image) first, then upscale it.")
        if not str(prompt or "").strip():
            try:
                prompt = read_recipe(image).get("prompt", "")
            except UserError:  # no recipe inside: the empty prompt is refused below, with its sentence
                pass
        steps = max(int(checks.check_number(steps, "number of steps", 1, MAX_STEPS, integer=True)), 3)
        params = ImageParams(
            prompt, negative_prompt, steps, guidance_scale, 512, 512, seed, 1, UPSCALE_STRENGTH, sampler
        )
        yield from run(params, model, upscaled(image, settings), history, ticket, request, progress)

    with gr.Accordion("How it works: from noise to picture", open=settings.classroom, elem_id="image-how"):
        gr.Markdown(
            "The model starts from random noise and removes a little of it at every step, guided by the "
            "prompt. These frames are the picture after each step (a quick preview of the model's "
            "internal 'latent' image), ending with the final result."
        )
        film = gr.Gallery(
            label="Denoising, step by step", columns=8, height=200, object_fit="contain", elem_id="image-how-film"
        )
    how = gr.State(None)
    how.change(lambda frames: frames or [], how, film, api_visibility="private", queue=False)
    last_seed = gr.State(None)  # what "Reuse last seed" gives: None (a random seed) until something ran
    outs = [preview, gallery, status, seed_used, recipe_view, ctx.history, how, last_seed]
    common = dict(
        concurrency_limit=settings.concurrency, concurrency_id="image", show_progress_on=[preview], status=status
    )
    for trigger in (generate.click, prompt.submit):
        ui.queued(
            ctx,
            "image",
            trigger,
            generate_image_ui,
            [prompt, negative, steps, guidance, width, height, seed, count, model, sampler, ctx.history],
            outs,
            api_name="generate_image" if trigger == generate.click else False,
            **common,
        )
    not_outpainting = [gr.State(None), gr.State(None)]  # (States: not part of these two endpoints' API)
    for trigger, picture, how_much, extend, name in (
        (transform.click, init, strength, not_outpainting, "image_to_image"),
        (inpaint.click, editor, inpaint_strength, not_outpainting, "inpaint"),
        (outpaint.click, init, gr.State(OUTPAINT_STRENGTH), [outpaint_sides, outpaint_pixels], "outpaint"),
    ):
        ui.queued(
            ctx,
            "image",
            trigger,
            image_to_image_ui,
            [picture, prompt, negative, how_much, steps, guidance, seed, count, model, sampler, *extend, ctx.history],
            outs,
            api_name=name,
            **common,
        )

    ui.wire_stop(ctx, stop, "image", status)

    def apply_defaults(model_id: str):
        d = model_defaults(model_id)
        return d.steps, d.guidance, min(d.size, size_max), min(d.size, size_max), d.note

    model.input(
        apply_defaults, model, [steps, guidance, width, height, model_note], api_visibility="private", queue=False
    )
    reuse.click(lambda s: -1 if s is None else s, last_seed, seed, api_visibility="private", queue=False)

    def item_path(item) -> str:  # a Gallery item: (path, caption) or {"image": {"path": ...}}
        if isinstance(item, (list, tuple)):
            item = item[0]
        if isinstance(item, dict):
            item = item.get("image", item)
            item = item.get("path", item) if isinstance(item, dict) else item
        return str(item)

    def on_select(evt: gr.SelectData, items):
        return item_path(items[evt.index]) if items and evt.index is not None else None

    gallery.select(on_select, gallery, selected, api_visibility="private", queue=False)

    def use_for_img2img(chosen, items):  # the result fills both image to image and inpainting
        if chosen or items:
            path = chosen or item_path(items[0])
            return path, path
        raise gr.Error("Generate an image first, then use it for image to image or inpainting.")

    use_result.click(use_for_img2img, [selected, gallery], [init, editor], api_visibility="private", queue=False)

    # Upscale ×2 takes the chosen result (as "Use for image to image" does), then runs in the queue on it.
    chosen = upscale.click(use_for_img2img, [selected, gallery], [init, editor], api_visibility="private", queue=False)
    ui.queued(
        ctx,
        "image",
        chosen.success,
        upscale_ui,
        [init, prompt, negative, steps, guidance, seed, model, sampler, ctx.history],
        outs,
        api_name="upscale",
        **common,
    )

    @ui.user_errors
    def restore_settings(file):
        if not file:
            return [gr.skip()] * 10
        r = read_recipe(file)
        keep = gr.skip()
        model_value = r.get("model") if r.get("model") in choices else keep
        sampler_value = r.get("sampler") if r.get("sampler") in SAMPLERS else keep
        return (
            r.get("prompt", keep),
            r.get("negative_prompt", keep),
            r.get("steps", keep),
            r.get("guidance_scale", keep),
            r.get("width", keep),
            r.get("height", keep),
            r.get("seed", keep),
            model_value,
            sampler_value,
            f"Restored the settings of {Path(file).name}.",
        )

    restore.upload(
        restore_settings,
        restore,
        [prompt, negative, steps, guidance, width, height, seed, model, sampler, status],
        api_name="restore_image_settings",
    )
