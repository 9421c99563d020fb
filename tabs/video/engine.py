"""Video tab: text to video and picture to video with Wan (diffusers' WanPipeline / WanImageToVideoPipeline) and
LTX-Video (LTXPipeline / LTXImageToVideoPipeline), LoRAs from the prompt (`<lora:name:w>`, as on the Image tab),
progress in denoising steps with a preview of the middle frame, Stop at the next step, an H.264 MP4 (PyAV) with an
optional soundtrack (AAC), a visible label, the recipe and content credentials. Plain Python: the page, the API, the
CLI and the tests call `generate_video`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, asdict, dataclass, replace
from pathlib import Path
from typing import Any

from core import audio, checks, hub, loras, outputs, saving, serving
from core.device import Worker, gpu, import_lock, imported, place_pipeline
from core.errors import Stopped, UserError
from core.models import ModelCache, over_budget
from core.settings import Settings
from tabs.video import checkpoints, media, previews

SETTING = "STUDIO_VIDEO_MODEL"


@dataclass(frozen=True)
class VideoModel:
    fps: int  # the frame rate it was trained at
    width: int  # its own size
    height: int
    steps: int
    guidance: float
    first_frame: bool  # it can start from a picture
    licence: str
    family: str = "wan"  # "wan" or "ltx": the pipelines, frame rule and preview it takes


FAMILIES = {"wan": "Wan", "ltx": "LTX-Video"}
FRAME_STEP = {"wan": 4, "ltx": 8}  # frames are k*step+1 (the VAEs pack 4 or 8 frames into one latent frame)
LTX_LICENCE = (
    "LTX-Video 0.9.1 licence (RAIL-M family: use restrictions; Lightricks speaks of research and academic use): "
    "https://huggingface.co/Lightricks/LTX-Video/blob/main/ltx-video-2b-v0.9.1.license.txt"
)


CURATED = {
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": VideoModel(16, 832, 480, 50, 5.0, False, "Apache-2.0"),  # ~8 GB of GPU
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": VideoModel(24, 832, 480, 50, 5.0, True, "Apache-2.0"),  # text or picture
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers": VideoModel(16, 832, 480, 40, 4.0, False, "Apache-2.0"),  # 2 experts, big GPU
    "Lightricks/LTX-Video-0.9.1": VideoModel(24, 704, 480, 50, 3.0, True, LTX_LICENCE, "ltx"),  # 2B, fast
}
TINY = {
    "tiny:wan": VideoModel(16, 64, 64, 2, 5.0, False, "none (random weights)"),
    "tiny:wan-ti2v": VideoModel(24, 64, 64, 2, 5.0, True, "none (random weights)"),
    "tiny:wan-a14b": VideoModel(16, 64, 64, 2, 4.0, False, "none (random weights)"),
    "tiny:ltx": VideoModel(24, 64, 64, 2, 3.0, True, "none (random weights)", "ltx"),
}
PIPELINES = {  # what a folder's model_index.json may name -> the pipeline the studio loads it with
    "WanPipeline": "WanPipeline",
    "WanImageToVideoPipeline": "WanImageToVideoPipeline",
    "LTXPipeline": "LTXPipeline",  # the LTX pipelines share their parts: one loads any LTX-Video folder
    "LTXImageToVideoPipeline": "LTXPipeline",
    "LTXConditionPipeline": "LTXPipeline",
}
MAX_FPS = 30
MAX_STEPS = 100
PREVIEWS = 5  # previews of the middle frame over a run
UPDATE_EVERY_S = 0.25
EXAMPLES = [
    "a red fox trotting through fresh snow in a birch forest, morning light, slow camera pan",
    "waves rolling onto a sandy beach at sunset, gentle motion, cinematic",
    "a paper boat drifting down a rain-filled street gutter, close-up",
]


def model_choices(settings: Settings) -> list[str]:
    """The default model, the curated ones (the tiny ones with --tiny), then the Wan transformer files (GGUF)."""
    first = settings.model_for("video")
    others = list(TINY if settings.tiny else CURATED) + list(checkpoints.offered(settings))
    return [first] + [m for m in others if m != first]


def model_defaults(model_id: str, folder: Path | None = None, settings: Settings | None = None) -> VideoModel:
    """The curated models' own settings; for another folder, those of its family: Wan 2.1's (Wan 2.2's where it
    takes a picture) or LTX-Video's; for a Wan transformer file (with `settings`), those of the repo it joins."""
    known = {**CURATED, **TINY}.get(model_id)
    if known:
        return known
    chosen = checkpoints.CURATED.get(model_id) or checkpoints.TINY.get(model_id)
    if chosen is None and settings is not None:
        chosen = checkpoints.offered(settings).get(model_id)
    if chosen is not None:  # the defaults of the repo it joins (Wan 14B's are Wan 2.1 1.3B's: 832x480, 16 fps)
        licence = "Apache-2.0 (Wan)" if chosen.path is None else "the checkpoint's own: see the page you got it from"
        base = {**CURATED, **TINY}.get(chosen.base)
        return replace(base or VideoModel(16, 832, 480, 50, 5.0, "I2V" in chosen.base, ""), licence=licence)
    if folder is None and hub.looks_like_path(model_id):
        folder = Path(model_id)
    ti2v = False
    if folder is not None and (folder / "model_index.json").exists():
        import json

        index = json.loads((folder / "model_index.json").read_text())
        if str(index.get("_class_name", "")).startswith("LTX"):
            return VideoModel(24, 704, 480, 50, 3.0, True, "the model's own", "ltx")
        ti2v = bool(index.get("expand_timesteps")) or index.get("_class_name") == "WanImageToVideoPipeline"
    return VideoModel(24 if ti2v else 16, 832, 480, 50, 5.0, ti2v, "the model's own")


@dataclass(frozen=True)
class VideoParams:
    prompt: str
    _: KW_ONLY
    negative_prompt: str = ""
    num_frames: int = 33  # 4k+1 (Wan's rule); 33 frames at 16 fps is 2 s
    fps: int = 16
    width: int = 832
    height: int = 480
    steps: int = 50
    guidance_scale: float = 5.0
    seed: int | None = -1


@dataclass
class VideoUpdate:
    step: int
    steps: int
    elapsed: float
    seed: int
    preview: Any = None  # a PIL picture of the middle frame, now and then
    path: Path | None = None
    recipe: dict | None = None
    done: bool = False
    notes: tuple[str, ...] = ()

    def status(self) -> str:
        said = " ".join(self.notes)
        if self.done:
            seconds = self.recipe["num_frames"] / self.recipe["fps"] if self.recipe else 0
            return f"Done: {seconds:.1f} s of video in {self.elapsed:.0f} s, seed {self.seed}. {said}".strip()
        if not self.step:
            return f"Starting… {said}".strip()
        per_step = self.elapsed / self.step
        left = per_step * (self.steps - self.step)
        done = f"Step {self.step} of {self.steps} · {per_step:.1f} s per step · about {left:.0f} s left."
        return f"{done} {said}".strip()


def snap(settings: Settings, p: VideoParams, multiple: int, family: str = "wan") -> tuple[VideoParams, list[str]]:
    """The parameters checked, with frames made k*step+1 (4k+1 for Wan, 8k+1 for LTX-Video) and the size a multiple
    of what the model needs (said)."""
    notes = []
    prompt = checks.check_text(p.prompt, checks.named("prompt", "description"), settings.max_prompt_chars)
    negative = checks.check_text(p.negative_prompt, checks.named("negative_prompt"), settings.max_prompt_chars, False)
    most = settings.max_video_frames
    frames = int(checks.check_number(p.num_frames, checks.named("num_frames", "frames"), 5, most, integer=True))
    step = FRAME_STEP[family]
    if (frames - 1) % step:
        frames = max(1, (frames - 1) // step) * step + 1
        notes.append(f"Frames made {frames} ({FAMILIES[family]} takes {step}k+1).")
    fps = int(checks.check_number(p.fps, checks.named("fps", "frame rate"), 4, MAX_FPS, integer=True))
    side = settings.max_image_size
    size = {}
    for name in ("width", "height"):
        value = int(checks.check_number(getattr(p, name), name, multiple, side, integer=True))
        size[name] = value // multiple * multiple
        if size[name] != value:
            notes.append(f"The {name} was made {size[name]} (a multiple of {multiple}).")
    steps = int(checks.check_number(p.steps, "steps", 1, MAX_STEPS, integer=True))
    guidance = float(checks.check_number(p.guidance_scale, checks.named("guidance_scale"), 1, 20))
    seed = checks.resolve_seed(p.seed)
    checked = VideoParams(
        prompt, negative_prompt=negative, num_frames=frames, fps=fps, steps=steps, guidance_scale=guidance, seed=seed,
        **size,
    )  # fmt: skip
    return checked, notes


def load_video_pipeline(folder: Path, device: str, dtype: Any) -> Any:
    """A Wan or LTX-Video pipeline from its folder (safetensors only, no remote code); the VAE in float32, as Wan's
    authors run it. On a GPU too small for it, offloaded part by part, with the VAE decoding in tiles."""
    import json

    torch = imported("torch")
    with import_lock:
        import diffusers

    name = json.loads((Path(folder) / "model_index.json").read_text()).get("_class_name")
    if name not in PIPELINES:
        raise UserError(f"This folder holds a {name}, not a video pipeline the studio runs ({', '.join(PIPELINES)}).")
    pipe = getattr(diffusers, PIPELINES[name]).from_pretrained(folder, dtype=dtype, use_safetensors=True)
    pipe.vae.to(torch.float32)
    pipe.set_progress_bar_config(disable=True)
    pipe._studio_offloaded = place_pipeline(pipe, device, hub.weight_bytes(Path(folder)))
    if pipe._studio_offloaded:  # a GPU too small for the whole model is too small for a whole video's decode
        pipe.vae.enable_tiling()
    return pipe


def _first_frame_picture(path: Any, width: int, height: int) -> tuple[Any, str]:
    """The first frame, cropped to the video's shape and resized (the pipeline only resizes), and its SHA-256."""
    from PIL import ImageOps

    image = checks.open_image_file(path, "first frame (first_frame)", "The first frame is not a picture the studio "
                                   "can read (PNG, JPEG or WebP).")  # fmt: skip
    return ImageOps.fit(image.convert("RGB"), (width, height)), outputs.file_sha256(path)


@gpu(duration=600)  # spaces.GPU on ZeroGPU Spaces: a video takes minutes
def generate_video(
    cache: ModelCache,
    settings: Settings,
    params: VideoParams,
    *,
    model: str | None = None,
    first_frame: Any = None,
    soundtrack: Any = None,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[VideoUpdate]:
    """A video of `params.prompt` (starting from the `first_frame` picture, a path, with a model that takes one;
    with the `soundtrack` clip, a path, muxed under it): yields progress and previews, then the saved MP4."""
    # 1. check the inputs
    model_id = checks.check_model_choice(
        model or settings.model_for("video"), model_choices(settings), settings.allow_custom_models, SETTING
    )
    known = model_defaults(model_id, settings=settings)
    wan_file = checkpoints.offered(settings).get(model_id)  # a Wan transformer in one file (GGUF)
    understood = model_id in {**CURATED, **TINY} or hub.looks_like_path(model_id) or wan_file is not None
    if first_frame not in (None, "") and not known.first_frame and understood:
        raise UserError(
            f"{model_id} makes videos from text only: choose Wan2.2-TI2V-5B or LTX-Video to start from a picture "
            "(first_frame)."
        )
    family = known.family
    multiple = 16 if understood and family == "wan" and not known.first_frame else 32  # Wan 2.2, LTX: 32 pixels
    params, notes = snap(settings, params, multiple, family)
    model_prompt, chosen = loras.check_loras(settings, params.prompt)  # the model never reads the <lora:...> tags
    if not model_prompt:
        raise UserError("The description (prompt) holds only LoRA tags: say what the video shows too.")
    sound = audio.read_audio_clip(soundtrack, "soundtrack", 600) if soundtrack not in (None, "") else None
    picture = _first_frame_picture(first_frame, params.width, params.height) if first_frame not in (None, "") else None
    stop = stop or threading.Event()
    start = time.perf_counter()
    # 2-3. the pipeline from the cache (here, or on a Ray replica) makes the frames, step by step
    run = replace(params, prompt=model_prompt)
    if settings.ray_address:
        made = yield from serving.call(
            settings, "video", "render", (model_id, run, picture, chosen, tuple(notes)), stop, progress
        )
        made.facts.update(served_by=serving.served_by(settings, "video"))
    else:
        made = yield from render_video(cache, settings, model_id, run, picture, chosen, stop, progress, tuple(notes))
    # 4. saved with its recipe, labels and soundtrack
    recipe = outputs.base_recipe(
        "video",
        model_id,
        **asdict(params),
        mode="picture to video" if picture else "text to video",
        family=FAMILIES[family],
        loras=[lora.recipe() for lora in chosen],
        first_frame_sha256=picture[1] if picture else None,
        soundtrack=_clip_facts(soundtrack, sound),
        labelled=settings.video_label,
        licence=known.licence,
        **made.facts,
        versions=outputs.library_versions("torch", "diffusers", "transformers", "av"),
    )

    def write(tmp: Path, _recipe: dict) -> None:  # the frames carry the visible label; no invisible watermark
        media.write_mp4(made.frames, tmp, params.fps, sound, settings.video_label)

    edited = picture is not None or sound is not None  # it holds something the user gave
    saved = saving.finish(
        settings, "video", params.prompt, "mp4", recipe, write, edited=edited, label=settings.video_label
    )
    yield VideoUpdate(
        params.steps, params.steps, time.perf_counter() - start, params.seed, path=saved.path, recipe=saved.recipe,
        done=True, notes=tuple(notes),
    )  # fmt: skip


@dataclass
class RenderedVideo:
    frames: Any  # uint8 (T, H, W, 3)
    facts: dict  # what the recipe says of how it ran: device, dtype, offload, the checkpoint file


def render_video(
    cache: ModelCache,
    settings: Settings,
    model_id: str,
    params: VideoParams,
    picture: tuple | None,
    chosen: list,
    stop: threading.Event,
    progress: Any,
    notes: tuple = (),
) -> Iterator[VideoUpdate]:
    """Steps 2 and 3 of generate_video for checked parameters (`params.prompt` without its LoRA tags; `picture`: the
    first frame and its SHA-256; `chosen`: the LoRAs): the pipeline from the cache, held while it makes the frames;
    returns them as RenderedVideo. Runs here or on a Ray Serve replica (app.engines)."""
    torch = imported("torch")
    start = time.perf_counter()
    family = model_defaults(model_id, settings=settings).family
    dtype = torch.bfloat16 if cache.device.startswith("cuda") else torch.float32
    options = dict(setting=SETTING, progress=progress, dtype=dtype, allow_patterns=hub.ALLOW_PATTERNS)
    wan_file = checkpoints.offered(settings).get(model_id)
    if wan_file is not None:  # the file's transformer in the pipeline of the Wan-AI repo it belongs to
        needed = checkpoints.memory_bytes(wan_file, checkpoints.known_size(wan_file), dtype)
        refusal = over_budget(cache, model_id, needed, "(its transformer file alone)")
        if refusal:  # before gigabytes of it are downloaded
            raise refusal
        file = checkpoints.transformer_file(cache, settings, wan_file)
        extra = checkpoints.memory_bytes(wan_file, file.stat().st_size, dtype)
        options.update(checkpoints.base_options(wan_file, model_id), extra_bytes=extra)

        def load(folder: Path, device: str, dtype: Any) -> Any:
            return checkpoints.load(file, wan_file, Path(folder), device, dtype)

        held = cache.model("video", wan_file.base, load, **options)
    else:
        held = cache.model("video", model_id, load_video_pipeline, **options)
    with held as pipe:
        with loras.turn(pipe, bool(chosen)), loras.applied(pipe, pipe, chosen, FAMILIES[family]):
            frames = yield from _denoise(pipe, params, picture, stop, progress, start, notes)
        facts: dict[str, Any] = {"device": cache.device, "dtype": str(dtype).replace("torch.", "")}
        if getattr(pipe, "_studio_offloaded", False):
            facts.update(offload="model", vae_tiling=True)
        if getattr(pipe, "transformer_2", None) is not None:  # Wan 2.2 A14B: which expert ran which steps
            facts["experts"] = {"high_noise": "transformer", "low_noise": "transformer_2",
                                "boundary_ratio": pipe.config.boundary_ratio}  # fmt: skip
        if getattr(pipe, "_studio_checkpoint", None):
            facts["checkpoint"] = {**pipe._studio_checkpoint, "sha256": outputs.file_sha256(file)}
    return RenderedVideo(frames, facts)


def _clip_facts(path: Any, sound: tuple | None) -> dict | None:
    return {"sha256": outputs.file_sha256(path), "seconds": round(len(sound[0]) / sound[1], 2)} if sound else None


def _denoise(
    pipe: Any, params: VideoParams, picture: Any, stop: Any, progress: Any, start: float, notes: tuple
) -> Iterator[VideoUpdate]:
    """Run the pipeline on a Worker, yielding each step with now and then a preview; returns uint8 (T, H, W, 3)."""
    import numpy as np

    torch = imported("torch")
    job, done, shown, before = Worker("video"), [0], [None], [None]
    every = max(1, params.steps // PREVIEWS)
    ltx = type(pipe).__name__.startswith("LTX")

    def on_step_end(p: Any, i: int, t: Any, kwargs: dict) -> dict:
        if stop.is_set() or job.halt.is_set():
            raise Stopped  # at the next step, before anything is decoded
        done[0] = i + 1
        latents = kwargs["latents"]
        if (i + 1) % every == 0 and i + 1 < params.steps:
            try:  # a preview is a nicety: never the reason a video fails
                if ltx:
                    shown[0] = previews.ltx_middle_frame(p, previews.flow_estimate(p, i, latents, before[0]), params)
                else:
                    estimate = (getattr(p.scheduler, "model_outputs", None) or [None])[-1]
                    shown[0] = previews.wan_middle_frame(p, estimate if estimate is not None else latents)
            except Exception:  # noqa: BLE001
                shown[0] = None
        if ltx and (i + 2) % every == 0:  # the step before a preview: its latents give the flow's direction
            before[0] = latents.detach().clone()
        return {}

    if picture is not None and type(pipe).__name__ in ("WanPipeline", "LTXPipeline"):  # the same weights
        with import_lock:
            from diffusers import LTXImageToVideoPipeline, WanImageToVideoPipeline
        pipe = (LTXImageToVideoPipeline if ltx else WanImageToVideoPipeline).from_pipe(pipe)
    call = dict(
        prompt=params.prompt, negative_prompt=params.negative_prompt or None, num_frames=params.num_frames,
        width=params.width, height=params.height, num_inference_steps=params.steps,
        guidance_scale=params.guidance_scale, output_type="np", callback_on_step_end=on_step_end,
        callback_on_step_end_tensor_inputs=["latents"],
    )  # fmt: skip
    if picture is not None:
        call["image"] = picture[0]
    if ltx:  # LTX-Video's rotary positions follow the frame rate; 0.9.1+ VAEs decode at a small noise level
        call["frame_rate"] = params.fps
        if getattr(pipe.vae.config, "timestep_conditioning", False):
            call.update(decode_timestep=0.05, decode_noise_scale=0.025)

    def run() -> Any:
        generator = torch.Generator("cpu").manual_seed(params.seed)
        with torch.inference_mode():
            made = pipe(**call, generator=generator).frames[0]
        return (np.clip(made, 0, 1) * 255).round().astype(np.uint8)

    with job.start(run):
        while not job.finished.wait(UPDATE_EVERY_S):
            if progress:
                progress(done[0] / params.steps, f"Step {done[0]}/{params.steps}")
            preview, shown[0] = shown[0], None
            yield VideoUpdate(done[0], params.steps, time.perf_counter() - start, params.seed, preview, notes=notes)
    made = job.result()  # a fast run may end between two polls: its last step (and preview) is still shown
    yield VideoUpdate(done[0], params.steps, time.perf_counter() - start, params.seed, shown[0], notes=notes)
    return made
