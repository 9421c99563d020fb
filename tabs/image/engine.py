"""The Image tab's engine: text-to-image, image-to-image, inpainting and outpainting with diffusers, live progress
and previews, recipes in every PNG. Plain Python: model choices and their defaults, parameters and their checks, then
`generate_image` in steps (check -> model from the cache -> denoise with progress -> save). Samplers, input pictures,
masks and previews are plain functions in parts.py."""

import contextlib
import contextvars
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path
from typing import Any

from core import checks, loras, provenance, saving, serving
from core.device import Worker, gpu
from core.errors import Stopped, UserError
from core.models import ModelCache
from core.png_recipes import a1111_parameters
from core.settings import Settings
from tabs.image import control, embeddings, families, ip_adapter, prompts
from tabs.image.batch import batch_key
from tabs.image.choices import MAX_IMAGES, MAX_STEPS, model_choices, model_defaults  # noqa: F401  (model_choices: tabs.image re-exports it)
from tabs.image.parts import (
    DEFAULT_SAMPLER,
    MASK_BLUR,
    check_sampler,
    keep_outside_mask,
    latent_preview,
    open_input_image,
    open_mask,
    outpaint_canvas,
)
from tabs.image.pipelines import (
    SETTING,
    Rendered,
    base_pipeline,
    flagged_by_checker,
    pipeline_for,
    run_recipe,
    with_request,
)

FILM_FRAMES = 24  # frames in the "How it works" filmstrip
PREVIEW_EVERY_S = 0.5  # seconds between live previews
UPDATE_EVERY_S = 0.25  # seconds between progress updates sent to the page
SAFETY_NOTE = "the model's own safety checker flagged them as possibly unsafe, so they were not kept."
WITHHELD_ALL = (
    "The model's own safety checker (Stable Diffusion 1.5 ships one) flagged the picture as possibly unsafe, so "
    "nothing was kept. Change the prompt or the seed and try again."
)
EDITS = ("inpaint", "outpaint", "edit")  # modes whose result is the user's picture changed (a composite)
OUTPAINT_STRENGTH = 1.0  # the new area starts from noise (its stretched-edge fill only sets the colours around it)
UPSCALE_STRENGTH = 0.35  # how much an upscale repaints: new detail, the same picture (A1111's hires fix: 0.3-0.7)


@dataclass(frozen=True)
class ImageParams:
    prompt: str
    _: KW_ONLY  # the rest by name only: a field added later never shifts another
    negative_prompt: str = ""
    steps: int = 1
    guidance_scale: float = 0.0
    width: int = 512
    height: int = 512
    seed: int | None = -1  # -1 or None = random; image i of a batch uses seed + i
    num_images: int = 1
    strength: float = 0.5  # image-to-image: how much of the input is repainted (1 = all)
    sampler: str = DEFAULT_SAMPLER  # a key of SAMPLERS, or the model's own scheduler
    styles: tuple = ()  # names of styles that wrap the prompt, in order (prompts.styles)


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
    waiting: str = ""  # what a request that reports no steps is waiting for (a batch on the cluster)
    withheld: int = 0  # pictures the model's safety checker flagged: not saved, not shown

    @property
    def eta(self) -> float:
        return self.seconds / self.step * (self.total - self.step) if self.step else 0.0

    def status(self) -> str:
        if self.done:
            withheld = f" {self.withheld} more withheld: {SAFETY_NOTE}" if self.withheld else ""
            return f"Done: {len(self.images)} image(s) in {self.seconds:.1f} s, seed {self.seed}.{withheld}"
        if self.waiting:
            return f"{self.waiting} · {self.seconds:.1f} s"
        return f"Step {self.step}/{self.total} · {self.seconds:.1f} s · about {self.eta:.0f} s left"


# ------------------------------------------------------------------------------------------- the engine -------


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
        negative_prompt=checks.check_text(
            p.negative_prompt, checks.named("negative_prompt"), settings.max_prompt_chars, False
        ),
        steps=int(checks.check_number(p.steps, checks.named("steps", "number of steps"), 1, MAX_STEPS, integer=True)),
        guidance_scale=float(checks.check_number(p.guidance_scale, checks.named("guidance_scale"), 0, 30)),
        seed=checks.resolve_seed(p.seed),
        num_images=int(
            checks.check_number(
                p.num_images, checks.named("num_images", "number of images"), 1, MAX_IMAGES, integer=True
            )
        ),
        strength=float(checks.check_number(p.strength, "strength", 0.01, 1)),
        sampler=check_sampler(p.sampler),
        styles=tuple(p.styles or ()) if not isinstance(p.styles, str) else (p.styles,),
        **sizes,
    )
    if image_to_image and int(checked.steps * checked.strength) < 1:
        raise UserError(
            f"With {checked.steps} step(s) at strength {checked.strength:g} no denoising step would run: "
            "raise the steps or the strength."
        )
    return checked


def _pipeline_args(
    request: "Request", params: ImageParams, on_step: Callable, extra: dict, family: families.Family
) -> dict[str, Any]:
    """The diffusers call for one run, in the family's terms (guidance, negative prompt: families.call_arguments);
    image i of the batch draws from its own generator seeded seed + i. `extra`: the IP-Adapter's arguments."""
    import torch

    args = dict(
        prompt=params.prompt,
        num_inference_steps=params.steps,
        num_images_per_prompt=params.num_images,
        generator=[torch.Generator("cpu").manual_seed(params.seed + i) for i in range(params.num_images)],
        callback_on_step_end=on_step,
        **families.call_arguments(family, params.guidance_scale, params.negative_prompt),
        **extra,
    )
    init, mask, steer = request.init, request.mask, request.control
    if family.key == "flux1-kontext":  # the size asked for, not Kontext's own area (1024x1024) and resolutions
        size = init.size if init is not None else (params.width, params.height)
        args.update(max_area=size[0] * size[1], _auto_resize=False)
    if request.mode == "edit":  # the picture as the edit model reads it, at its own size (no resizing to a preset)
        return dict(args, image=init, width=init.width, height=init.height)
    if steer is not None:  # the ControlNet pipelines: the map is `image` from text, `control_image` from a picture
        args.update(
            controlnet_conditioning_scale=steer.scale,
            control_guidance_start=steer.start,
            control_guidance_end=steer.end,
            **({"control_image": request.control_map} if init is not None else {"image": request.control_map}),
        )
    if mask is not None:
        return dict(args, image=init, mask_image=mask, strength=params.strength, width=init.width, height=init.height)
    if init is not None:  # at the picture's size (the DiT pipelines default to their own size, not the picture's)
        sized = {"width": init.width, "height": init.height} if family.denoiser == "transformer" else {}
        # SD 3.5's image-to-image (diffusers 0.42) encodes image i with generator i: one copy per picture
        image = [init] * params.num_images if family.key == "sd35" and params.num_images > 1 else init
        return dict(args, image=image, strength=params.strength, **sized)
    return dict(args, width=params.width, height=params.height)


@dataclass
class Request:
    """A checked request: what to run the pipeline on, and what the recipe says about it."""

    params: ImageParams
    mode: str  # text-to-image, image-to-image, inpaint or outpaint
    init: Any = None  # the input picture (PIL), or None for text-to-image
    mask: Any = None  # the inpainting mask (PIL "L", white = repaint), or None
    outpainted: dict | None = None  # the sides extended and the pixels added to each (outpainting)
    loras: list = field(default_factory=list)  # the LoRAs the prompt asks for (loras.Lora), checked
    embeddings: list = field(default_factory=list)  # textual inversions named in the prompts (embeddings.Embedding)
    model_prompt: str = ""  # the prompt the model reads: styled, wildcards drawn, without its <lora:...> tags
    model_negative: str = ""  # the negative prompt it reads: styled, wildcards drawn
    expanded: dict = field(default_factory=dict)  # for the recipe: the prompts as expanded, the wildcards drawn
    control: Any = None  # the ControlNet's settings (control.Control), checked, or None
    control_map: Any = None  # the map it reads (PIL, the picture's size)
    reference: Any = None  # the IP-Adapter's reference picture and scale (ip_adapter.Reference), or None

    @property
    def steps_run(self) -> int:  # image to image runs only the last `strength` of the steps (an edit runs all)
        partial = self.init is not None and self.mode != "edit"
        return int(self.params.steps * self.params.strength) if partial else self.params.steps


def check_request(
    settings: Settings,
    params: ImageParams,
    init_image: Any,
    mask: Any,
    outpaint: tuple[Any, Any] | None,
    guide: tuple[Any, Any] = (None, None),
    cache: ModelCache | None = None,
    edit: bool = False,
    mine: dict[str, Path] | None = None,
) -> Request:
    """Check everything before any model loads: the parameters, the input picture, the mask or the outpainting,
    and `guide` = (ControlNet's control.Control, IP-Adapter's ip_adapter.Reference); makes the control map.
    `edit`: the model edits with words (every step runs: the strength does not count). `mine`: the visitor's own
    LoRAs besides the LoRA folder's (core.loras.own)."""
    outpainted = None
    if outpaint is not None:
        if init_image in (None, ""):
            raise UserError("Add an image to extend (upload one under Image to image, or use a result).")
        init_image, mask, outpainted = outpaint_canvas(open_input_image(init_image, settings), *outpaint, settings)
    inpaint = mask is not None and mask != "" and mask != []
    if inpaint and init_image in (None, ""):
        raise UserError("Add an image to inpaint (upload one, or use a result), then paint over what to repaint.")
    init = open_input_image(init_image, settings) if init_image is not None else None
    if init is not None:
        params = replace(params, width=init.size[0], height=init.size[1])
    params = check_params(settings, params, init is not None and not (edit and not inpaint))
    styled, negative = prompts.apply_styles(settings, params.prompt, params.negative_prompt, params.styles)
    styled, drawn = prompts.expand_wildcards(settings, styled, params.seed)
    negative, drawn_negative = prompts.expand_wildcards(settings, negative, params.seed + 1)
    expanded = {}
    if styled != params.prompt or negative != params.negative_prompt:
        expanded = {"expanded_prompt": styled, "expanded_negative_prompt": negative}
        expanded.update({"wildcards": {**drawn, **drawn_negative}} if drawn or drawn_negative else {})
    model_prompt, chosen = loras.check_loras(settings, styled, mine)
    mode = "outpaint" if outpainted else "inpaint" if inpaint else "image-to-image" if init else "text-to-image"
    mask_image = open_mask(mask, init.size) if inpaint else None
    named = embeddings.used(settings, model_prompt, negative)
    steer, reference = control.check(settings, guide[0]), ip_adapter.check(settings, guide[1])
    size = init.size if init is not None else (params.width, params.height)
    steer_map = control.control_map(settings, steer, size, cache) if steer else None
    return Request(
        params, mode, init, mask_image, outpainted, loras=chosen, embeddings=named, model_prompt=model_prompt,
        model_negative=negative, expanded=expanded, control=steer, control_map=steer_map, reference=reference,
    )  # fmt: skip


def _denoise(
    pipe: Any,
    request: Request,
    stop: threading.Event,
    progress: Callable | None,
    start: float,
    extra: dict,
    family: families.Family,
) -> Iterator[ImageUpdate]:
    """Run the pipeline on a Worker, yielding progress (with a cheap preview twice a second) as steps finish; returns
    (the images, the filmstrip of the first image's denoising for "How it works", the steps that ran). The count is
    the scheduler's own (the pipeline's num_timesteps): PNDM, SD 1.5's default, runs one more than asked."""
    import torch

    params, total = request.params, request.steps_run
    job = Worker("image-generate")
    events: queue.Queue = queue.Queue()  # (steps done, preview or None) after each step; None at the end
    last_preview = [time.perf_counter()]
    film: list = []  # the denoising, step by step (at most FILM_FRAMES frames)
    film_every = max(1, -(-total // FILM_FRAMES))
    size = request.init.size if request.init is not None else (params.width, params.height)

    def preview_of(latents: Any) -> Any:
        return latent_preview(latents, family, size)

    def on_step(_pipe, i, _t, kwargs):
        if stop.is_set() or job.halt.is_set():
            raise Stopped
        steps = getattr(_pipe, "num_timesteps", None) or total  # what the scheduler really runs
        done, now, preview = i + 1, time.perf_counter(), None
        if done % film_every == 0 and done < steps:
            film.append(preview_of(kwargs["latents"]))
        if done < steps and now - last_preview[0] >= PREVIEW_EVERY_S:  # a cheap preview, at most twice a second
            preview, last_preview[0] = preview_of(kwargs["latents"]), now
        events.put((done, preview, steps))
        return kwargs

    def run() -> Any:
        try:
            with torch.inference_mode():
                model_params = replace(params, prompt=request.model_prompt, negative_prompt=request.model_negative)
                return pipe(**_pipeline_args(request, model_params, on_step, extra, family))
        finally:
            events.put(None)

    last_yield, done = 0.0, 0
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
            (done, preview, total), elapsed = event, time.perf_counter() - start
            if progress:
                progress(done / total, f"Step {done}/{total}")
            if preview is not None or done == 1 or elapsed - last_yield >= UPDATE_EVERY_S:
                last_yield = elapsed
                yield ImageUpdate(step=done, total=total, seconds=elapsed, seed=params.seed, preview=preview)
    return job.result(), film, total


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
    control: "control.Control | None" = None,
    reference: "ip_adapter.Reference | None" = None,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
    before: dict | None = None,
    mine: dict[str, Path] | None = None,
) -> Iterator[ImageUpdate]:
    """Text-to-image, image-to-image when `init_image` is given, inpainting when a `mask` (white = repaint, see
    open_mask) comes with it, outpainting with `outpaint` = (sides, pixels) (see outpaint_canvas), each steered by a
    ControlNet (`control`) and an image prompt (`reference`, IP-Adapter) if given: yields progress, then the PNGs.
    `before`: what the caller did to the input first, for the recipe (the upscaler of a hires fix); `mine`: the
    visitor's own LoRAs (core.loras.own), usable besides the LoRA folder's.
    With STUDIO_RAY_ADDRESS the model runs on the cluster's image engine (app.engines); the rest runs here."""
    # 1. check the inputs
    chosen = families.FAMILIES.get(model_defaults(model or settings.model_for("image"), settings).family)
    edit = bool(chosen and chosen.edit)  # known before it loads: a curated or tiny model, or a checkpoint
    request = check_request(settings, params, init_image, mask, outpaint, (control, reference), cache, edit, mine)
    params = request.params
    model_id = checks.check_model_choice(
        model or settings.model_for("image"), model_choices(settings), settings.allow_custom_models, SETTING
    )
    stop = stop or threading.Event()
    # 2-3. the model from the cache (here, or on a Ray replica) denoises, with progress and previews
    if settings.ray_address:
        method = "render_batched" if batch_key(model_id, request) else "render"
        made = yield from serving.call(settings, "image", method, (model_id, request), stop, progress, _waiting)
        made.recipe.update(served_by=serving.served_by(settings, "image", batch_size=made.batch_size))
    else:
        made = yield from render_image(cache, settings, model_id, request, stop, progress)
    images, recipe = made.images, made.recipe
    if len(made.withheld) == len(images):
        raise UserError(WITHHELD_ALL)
    # 4. save every picture with its recipe
    if request.mask is not None:
        images = [keep_outside_mask(request.init, image, request.mask) for image in images]
    if request.outpainted:
        recipe.update(outpaint=request.outpainted)
    if before:
        recipe.update(before)
    if request.mask is not None:
        painted = sum(request.mask.histogram()[128:]) / (request.mask.width * request.mask.height)
        recipe.update(mask_blur=MASK_BLUR, mask_area=round(painted, 4))  # the share of the picture repainted
    kept = [(i, image) for i, image in enumerate(images) if i not in made.withheld]
    paths = _save_all(settings, kept, recipe)
    total = made.steps or request.steps_run
    yield ImageUpdate(
        step=total,
        total=total,
        seconds=made.seconds,
        seed=params.seed,
        images=paths,
        recipe=recipe,
        done=True,
        filmstrip=made.film + [images[0]] if made.film else [],
        withheld=len(made.withheld),
    )


def _waiting(request_args: tuple, seconds: float) -> ImageUpdate:
    """A progress update while a batched request runs on the cluster (it reports no steps of its own)."""
    request = request_args[1]
    waiting = "Made in a batch with other requests on the image engine"
    return ImageUpdate(0, request.steps_run, seconds, request.params.seed, waiting=waiting)


def render_image(
    cache: ModelCache, settings: Settings, model_id: str, request: Request, stop: threading.Event, progress: Any
) -> Iterator[ImageUpdate]:
    """Steps 2 and 3 of generate_image for a checked request: the model from the cache, held while it denoises with
    progress and previews (with the prompt's LoRAs on, every other one off); returns what it made (Rendered). Runs
    in the studio's process, or on a Ray Serve replica (app.engines) with that replica's cache."""
    with base_pipeline(cache, model_id, progress, settings) as base, contextlib.ExitStack() as held:
        family = families.family_of(base)
        request = for_family(request, family)
        params = request.params
        embeddings.load_used(base, request.embeddings)  # once per model: the tokenizer knows them from then on
        controlnet, adapter, guided = _guides(cache, settings, base, request, held, progress)
        pipe = pipeline_for(base, request, controlnet)
        start = time.perf_counter()
        with (
            loras.turn(base, bool(request.loras or request.reference)),
            loras.applied(base, pipe, request.loras, families.family_of(base).name),
            ip_adapter.applied(base, pipe, adapter, request.reference) as extra,
        ):
            output, film, steps = yield from _denoise(pipe, request, stop, progress, start, extra, family)
        recipe = run_recipe(model_id, base, pipe, params, request.mode, cache)
    recipe, flagged = with_request(recipe, request, guided), flagged_by_checker(output)
    seconds = time.perf_counter() - start
    return Rendered(output.images, [] if 0 in flagged else film, recipe, seconds, steps=steps, withheld=flagged)


def for_family(request: Request, family: families.Family) -> Request:
    """The request as the model's family takes it: a picture given to an edit model is edited with words (mode
    "edit"); textual-inversion words stay plain words for a family that has no embeddings (the DiT families)."""
    if family.edit and request.init is not None and request.mask is None:
        request = replace(request, mode="edit")
    if request.embeddings and "embeddings" not in family.adapters:
        request = replace(request, embeddings=[])
    return request


def _guides(
    cache: ModelCache, settings: Settings, base: Any, request: Request, held: contextlib.ExitStack, progress: Any
) -> tuple[Any, Any, dict]:
    """(the ControlNet, the IP-Adapter, what the recipe says of them) for the request, from the cache (downloaded on
    first use) and held in `held` for the run; None for each the request does not use."""
    controlnet = adapter = None
    said: dict[str, Any] = {}
    if request.control is not None:
        name = control.model_for(settings, request.control, base)
        options = dict(setting=control.SETTING, progress=progress, allow_patterns=control.weights)
        controlnet = held.enter_context(cache.model("controlnet", name, control.load_controlnet, **options))
        control.check_fits(controlnet, base, name)
        said["controlnet"] = control.recipe(request.control, name, request.control_map)
    if request.reference is not None:
        adapter = held.enter_context(ip_adapter.adapter(cache, settings, base, progress))
        said["ip_adapter"] = ip_adapter.recipe(adapter, request.reference)
    return controlnet, adapter, said


def _save_all(settings: Settings, pictures: list[tuple[int, Any]], recipe: dict) -> list[Path]:
    """Each (index, picture) saved with its recipe, in order; a batch's pictures side by side on the CPU's cores
    (the watermark's maths, zlib and the signing let go of the GIL), so 4 pictures take little more than 1."""
    if len(pictures) == 1:
        return [_save(settings, pictures[0][1], recipe, pictures[0][0])]
    workers = min(len(pictures), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="save") as pool:
        # each in a copy of the request's context, so that a warning (outputs.warn) still reaches the page
        saves = [
            pool.submit(contextvars.copy_context().run, _save, settings, image, recipe, i) for i, image in pictures
        ]
        return [save.result() for save in saves]


def _save(settings: Settings, image: Any, batch_recipe: dict, index: int) -> Path:
    recipe = {
        **batch_recipe,
        "seed": batch_recipe["seed"] + index,
        "batch_seed": batch_recipe["seed"],
        "batch_index": index,
    }
    # an inpainted or outpainted picture is the user's own outside the mask: a composite, edited (as a face swap)
    write = provenance.png_writer(image, chunks={"parameters": a1111_parameters(recipe)})
    return saving.finish(
        settings, "image", recipe["prompt"], "png", recipe, write, edited=recipe["mode"] in EDITS
    ).path
