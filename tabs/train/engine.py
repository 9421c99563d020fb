"""Train tab: a LoRA trained on the user's own pictures (diffusers + peft; tabs/train/trainer.py), on a base model of
the Image tab's families, with a loss curve, sample pictures, Stop and Resume, consent for faces, and a LoRA file
that AUTOMATIC1111, ComfyUI and the Image tab read at once (`<lora:name:weight>`), with kohya-style `ss_*` metadata
and the studio's recipe. Plain Python: the page, the API and the tests call `train_lora` and `caption_images`.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core import checks, loras, outputs
from core.device import Worker, gpu, import_lock, imported, place_pipeline
from core.errors import UserError
from core.models import ModelCache, ModelKey
from core.settings import Settings
from tabs.train import dataset, files
from tabs.train.captions import caption_images  # noqa: F401  (the page and the API call it through here)
from tabs.train.trainer import KINDS, Trainer

SETTING = "STUDIO_TRAIN_MODEL"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a file name on every system: letters, digits, - and _
CONSENT_TEXT = "I have the consent of the people shown, or the right to use these pictures."
CONSENT_MISSING = (
    "{faces} of these pictures show a face. Tick the consent box first (consent): " + CONSENT_TEXT + " The studio "
    "does not learn a person's likeness without it."
)
UPDATE_EVERY_S = 0.5


@dataclass(frozen=True)
class Base:
    resolution: int  # its training size
    learning_rate: float
    about: str
    licence: str
    version: str  # ss_base_model_version, as kohya's scripts write it
    architecture: str  # modelspec.architecture
    sample_steps: int = 25
    sample_guidance: float = 7.0


BASES = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": Base(
        512, 1e-4, "SD 1.5: the family most LoRAs are made for; 512 px; trains on a 8 GB GPU (slowly on a CPU).",
        "CreativeML OpenRAIL-M", "sd_v1", "stable-diffusion-v1/lora",
    ),
    "stabilityai/stable-diffusion-xl-base-1.0": Base(
        1024, 1e-4, "SDXL 1.0: 1024 px; its LoRAs work on most community SDXL checkpoints too (put one in the "
        "checkpoints folder); needs a GPU with 16-24 GB.", "CreativeML Open RAIL++-M", "sdxl_base_v1-0",
        "stable-diffusion-xl-v1-base/lora", 30, 5.0,
    ),
    "stabilityai/stable-diffusion-3.5-medium": Base(
        1024, 1e-4, "SD 3.5 Medium: 1024 px, sharper text; needs a GPU with 16 GB or more. Gated: accept its licence.",
        "Stability AI Community License", "sd3", "stable-diffusion-3-medium/lora", 28, 4.5,
    ),
    "black-forest-labs/FLUX.1-dev": Base(
        1024, 1e-4, "FLUX.1 [dev]: the LoRAs creators train today (FluxGym's base); needs a GPU with 24 GB or more. "
        "Gated: accept its licence; its outputs' commercial use is restricted.",
        "FLUX.1 [dev] Non-Commercial License", "flux1", "flux-1-dev/lora", 28, 3.5,
    ),
}  # fmt: skip
TINY_BASES = {
    "tiny:stable-diffusion": Base(32, 1e-2, "Tiny random-weight SD: learns noise, fast.", "none", "sd_v1",
                                  "stable-diffusion-v1/lora", 2, 5.0),
    "tiny:sdxl": Base(32, 1e-2, "Tiny random-weight SDXL.", "none", "sdxl_base_v1-0",
                      "stable-diffusion-xl-v1-base/lora", 2, 5.0),
    "tiny:sd3": Base(32, 1e-2, "Tiny random-weight SD 3.5.", "none", "sd3", "stable-diffusion-3-medium/lora", 2, 3.0),
    "tiny:flux": Base(32, 1e-2, "Tiny random-weight FLUX.1.", "none", "flux1", "flux-1-dev/lora", 2, 3.5),
}  # fmt: skip
PRESETS = {  # what each trades, in the page's words; the numbers stay editable
    "Quick try": (dict(steps=300, rank=8, learning_rate=1e-4, batch_size=1),
                  "A first look in a few minutes on a GPU: learns the gist, not the details."),
    "Subject": (dict(steps=1000, rank=16, learning_rate=1e-4, batch_size=1),
                "One person, pet or object, from 10-20 varied pictures: the usual DreamBooth-LoRA recipe."),
    "Style": (dict(steps=1500, rank=32, learning_rate=5e-5, batch_size=2),
              "A look across many subjects, from 20-50 pictures: a higher rank holds more, a lower rate keeps it "
              "from copying the pictures."),
}  # fmt: skip
MAX_RANK, MAX_BATCH = 128, 8


# The families whose whole checkpoints (civitai-style single files) train like a curated base: its size and rate.
CHECKPOINT_LIKE = {
    "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
}


def checkpoint_bases(settings: Settings) -> dict[str, Any]:
    """The whole SD 1.x and SDXL checkpoints of the checkpoints folder (name -> tabs.image.checkpoints.Checkpoint):
    a LoRA trained on one fits that model (a community SDXL model, say) and works on the Image tab with it."""
    from tabs.image import checkpoints

    found = {}
    for name in checkpoints.available(settings):
        try:
            point = checkpoints.identify(settings, name)
        except UserError:
            continue
        if point.whole and point.family in CHECKPOINT_LIKE:
            found[name] = point
    return found


def base_choices(settings: Settings) -> list[str]:
    first = settings.model_for("train")
    others = list(TINY_BASES if settings.tiny else BASES) + list(checkpoint_bases(settings))
    return [first] + [m for m in others if m != first]


def base_of(model_id: str, settings: Settings | None = None) -> Base:
    known = {**BASES, **TINY_BASES}.get(model_id)
    if known is not None:
        return known
    point = checkpoint_bases(settings).get(model_id) if settings is not None else None
    if point is not None:  # trains like its family's curated base (with --tiny, like the tiny one it borrows)
        like = TINY_BASES.get(point.base) or BASES[CHECKPOINT_LIKE[point.family]]
        about = f"A whole {point.family.upper()} checkpoint of the checkpoints folder; its LoRAs fit it and its kin."
        return replace(like, about=about, licence="the checkpoint's own: see the page you got it from")
    return Base(512, 1e-4, "A model of your own.", "the model's own", "sd_v1", "stable-diffusion-v1/lora")


@dataclass(frozen=True)
class TrainParams:
    name: str  # the LoRA's name: its file name, and the name in <lora:name:weight>
    _: KW_ONLY
    trigger: str = ""  # the word that calls it up, put before every caption (e.g. "sks dog", "ohwx style")
    steps: int = 1000
    rank: int = 16  # the LoRA's rank (its alpha is the same: scale 1)
    learning_rate: float = 1e-4
    resolution: int = 512  # the pictures' side in training (square crops)
    batch_size: int = 1
    train_text_encoder: bool = False  # SD 1.x/2.x: a LoRA on the CLIP text encoder too
    seed: int | None = 0
    sample_every: int = 0  # a sample picture every N steps (0: none)
    sample_prompt: str = ""  # empty: the trigger word and the first caption
    checkpoint_every: int = 100  # a checkpoint every N steps (Stop keeps the last one; Resume goes on from it)
    buckets: bool = True  # each picture keeps its shape (aspect-ratio buckets); False: every one cropped square


@dataclass
class TrainUpdate:
    step: int
    steps: int
    elapsed: float
    first_step: int  # where this run started (0, or the checkpoint it resumed from)
    losses: list[float] = field(default_factory=list)  # every step's loss since step 0
    sample: Any = None  # a PIL picture, now and then
    path: Path | None = None  # the LoRA file, when done
    recipe: dict | None = None
    done: bool = False
    stopped: bool = False
    said: str = ""
    withheld_at: int = 0  # the step of the last sample the base model's safety checker withheld (0: none)

    def status(self) -> str:
        if self.stopped:
            return (f"Stopped at step {self.step} of {self.steps}: the checkpoint is kept. Press Resume to go on "
                    "from it.")  # fmt: skip
        if self.done:
            return f"Done: {self.steps} steps in {self.elapsed:.0f} s. {self.said}{self._withheld()}".strip()
        ran = self.step - self.first_step
        if ran <= 0:
            return self.said or "Preparing the pictures…"
        per_step = self.elapsed / ran
        left = per_step * (self.steps - self.step)
        shown = f"{left / 60:.0f} min" if left >= 90 else f"{left:.0f} s"
        said = f"Step {self.step} of {self.steps} · {per_step:.2f} s per step · about {shown} left"
        return f"{said} · loss {self.losses[-1]:.4f}{self._withheld()}"

    def _withheld(self) -> str:
        if not self.withheld_at:
            return ""
        return (f" (The sample at step {self.withheld_at} was withheld: the base model's safety checker flagged it, "
                "as it does now and then with pictures of people; the training goes on.)")  # fmt: skip


def check_params(settings: Settings, p: TrainParams, resolution_default: int) -> TrainParams:
    name = str(p.name or "").strip()
    if not NAME.fullmatch(name):
        raise UserError(
            "The name (name) becomes the LoRA's file name: use 1-64 letters, digits, - or _ (no spaces, dots or "
            f"slashes); got {name[:40]!r}."
        )
    trigger = checks.check_text(p.trigger, checks.named("trigger", "trigger word"), 100, required=False)
    side = int(checks.check_number(p.resolution or resolution_default, "resolution", 32, settings.max_image_size,
                                   integer=True))  # fmt: skip
    if side % 8:
        raise UserError(f"The resolution must be a multiple of 8; got {side}.")
    return TrainParams(
        name,
        trigger=trigger,
        steps=int(checks.check_number(p.steps, "steps", 1, settings.max_train_steps, integer=True)),
        rank=int(checks.check_number(p.rank, "rank", 1, MAX_RANK, integer=True)),
        learning_rate=float(checks.check_number(p.learning_rate, checks.named("learning_rate"), 1e-7, 0.1)),
        resolution=side,
        batch_size=int(checks.check_number(p.batch_size, checks.named("batch_size"), 1, MAX_BATCH, integer=True)),
        train_text_encoder=p.train_text_encoder is True,
        seed=checks.resolve_seed(p.seed),
        sample_every=int(
            checks.check_number(p.sample_every or 0, checks.named("sample_every"), 0, 100_000, integer=True)
        ),  # fmt: skip
        sample_prompt=checks.check_text(
            p.sample_prompt, checks.named("sample_prompt"), settings.max_prompt_chars, required=False
        ),  # fmt: skip
        checkpoint_every=int(
            checks.check_number(p.checkpoint_every or 0, checks.named("checkpoint_every"), 0, 100_000, integer=True)
        ),  # fmt: skip
        buckets=p.buckets is not False,
    )


def _check_name_free(settings: Settings, name: str, overwrite: bool, operator: bool) -> None:
    if name not in loras.available(settings):
        return
    if overwrite is not True:
        raise UserError(
            f"A LoRA called {name!r} exists already (name): choose another name, or tick “Replace it” to overwrite it."
        )
    if not operator:
        raise UserError(
            f"A LoRA called {name!r} exists already (name), and on a shared studio only its operator may replace one "
            "(everyone uses the LoRA folder): choose another name."
        )


def _faces(cache: ModelCache, pictures: list[dataset.Picture]) -> int:
    """How many of the pictures show a face (mediapipe's detector, on a copy no larger than 640 px)."""
    import numpy as np

    from core import faces

    found = 0
    with faces.face_graphs(cache) as graphs:
        for picture in pictures:
            small = picture.image.copy()
            small.thumbnail((640, 640))
            found += bool(faces.detect_faces(np.asarray(small), graphs))
    return found


def load_training_pipeline(folder: Path, device: str, dtype: Any) -> Any:
    """A private copy of the base pipeline (its LoRA layers never reach the Image tab's copy), safetensors only."""
    with import_lock:
        from diffusers import DiffusionPipeline

    name = json.loads((Path(folder) / "model_index.json").read_text()).get("_class_name")
    if name not in KINDS:
        raise UserError(
            f"This base model is a {name}: the studio trains LoRAs for Stable Diffusion 1.x/2.x, SDXL, SD 3.5 and "
            "FLUX.1 models."
        )
    pipe = DiffusionPipeline.from_pretrained(folder, dtype=dtype, use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    place_pipeline(pipe, device, 0)  # training moves every part anyway: all on the device
    return pipe


# -- training ------------------------------------------------------------------------------------------------------
@gpu(duration=1800)  # spaces.GPU on ZeroGPU Spaces: a training takes many minutes
def train_lora(
    cache: ModelCache,
    settings: Settings,
    params: TrainParams,
    images: Any,
    *,
    base_model: str | None = None,
    captions: Any = None,
    consent: Any = False,
    resume: bool = False,
    overwrite: bool = False,
    operator: bool = True,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[TrainUpdate]:
    """A LoRA of `images` (pictures and zips of them, with `captions` as [name, caption] rows) on `base_model`:
    yields the loss, samples and time left, then the LoRA file (in the LoRA folder as params.name). `resume` goes on
    from the last checkpoint of params.name; `overwrite` replaces an existing LoRA (on a shared studio only for its
    `operator`). The `operator`'s LoRA goes into the LoRA folder, for everyone; anyone else's (a visitor of a shared
    studio) stays theirs: an output in their History, which only their Image tab uses (core.loras.own)."""
    # 1. check the inputs: training allowed, the name, the numbers, the pictures, consent where faces show
    if not settings.training:
        raise UserError("Training is turned off on this studio (STUDIO_TRAINING=0).")
    model_id = checks.check_model_choice(
        base_model or settings.model_for("train"), base_choices(settings), settings.allow_custom_models, SETTING
    )
    base = base_of(model_id, settings)
    point = checkpoint_bases(settings).get(model_id)  # a whole checkpoint of the checkpoints folder, or None
    params = check_params(settings, params, base.resolution)
    if not resume:
        _check_name_free(settings, params.name, overwrite, operator)
    pictures = dataset.gather(images)
    dataset.apply_captions(pictures, captions)
    prompts = [", ".join(x for x in (params.trigger, p.caption) if x) or params.name for p in pictures]
    shapes = dataset.buckets(params.resolution) if params.buckets else [(params.resolution,) * 2]
    facts = files.dataset_facts(pictures, prompts, [dataset.bucket_of(p.image, shapes) for p in pictures])
    with_faces = _faces(cache, pictures)
    if with_faces and consent is not True:
        raise UserError(CONSENT_MISSING.format(faces=with_faces))
    outputs.append_audit(settings.output_dir, {
        "kind": "lora training", "name": params.name, "base": model_id, "pictures": [p.sha256 for p in pictures],
        "pictures_with_faces": with_faces, "consent": consent is True, "resume": bool(resume),
    })  # fmt: skip
    stop = stop or threading.Event()
    start, started = time.perf_counter(), time.time()
    yield TrainUpdate(0, params.steps, 0.0, 0, said="Loading the base model…")
    # 2. a private copy of the base model, its LoRA layers added, the pictures encoded once
    torch = imported("torch")
    dtype = torch.float32
    if cache.device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    name = f"train:{model_id}"
    options = dict(setting=SETTING, progress=progress, dtype=dtype, name=name, allow_patterns=_patterns)
    key = ModelKey("train", name, None, cache.device, str(dtype).replace("torch.", ""))
    repo, load = model_id, load_training_pipeline
    if point is not None:  # the file's weights; configs and tokenizers from its family's reference repo
        from tabs.image import checkpoints

        repo, load = point.base, functools.partial(checkpoints.load, point)  # (a private copy: keyed `name`)
        options.update(allow_patterns=checkpoints.CONFIG_FILES)
    try:
        with cache.model("train", repo, load, **options) as pipe:
            run = _train(pipe, cache.device, settings, params, model_id, base, pictures, prompts, facts, resume, stop,
                         start)  # fmt: skip
            final, tensors, optimizer = yield from run
    finally:
        cache.forget(key)  # its LoRA layers are this training's: the next one loads a clean copy
    if final.stopped:
        yield final
        return
    # 4. the LoRA file, with kohya's metadata and the recipe, in the LoRA folder
    losses = final.losses
    recipe = outputs.base_recipe(
        "train", model_id, **asdict(params), base_licence=base.licence, dataset=facts, consent=consent is True,
        checkpoint={"file": point.name, "sha256": outputs.file_sha256(point.path)} if point else None,
        pictures_with_faces=with_faces, optimizer=optimizer, first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None, device=cache.device, dtype=str(dtype).replace("torch.", ""),
        versions=outputs.library_versions("torch", "diffusers", "peft", "safetensors"),
    )  # fmt: skip
    recipe["statement"] = "A LoRA trained in the Generative AI Studio on the pictures its user gave."
    recipe["shared"] = operator  # in the LoRA folder for everyone, or its trainer's alone (see train_lora)
    metadata = files.metadata(optimizer, params, model_id, base, facts, started, tensors)
    path = files.write_lora(settings, params, tensors, metadata, recipe, shared=operator)
    said = f"`<lora:{params.name}:1>` is ready on the Image tab ({model_id})."
    if not operator:
        said += " It is yours alone: it stays out of this shared studio's LoRA folder, and your History holds it."
    yield TrainUpdate(params.steps, params.steps, time.perf_counter() - start, final.first_step, losses,
                      final.sample, path, recipe, done=True, said=said, withheld_at=final.withheld_at)  # fmt: skip


def _patterns(files: dict | None) -> list[str]:
    from tabs.image.pipelines import download_patterns  # the Image tab's choice: one set of safetensors weights

    return download_patterns(files)


def make_optimizer(trainable: list, learning_rate: float, device: str) -> Any:
    """AdamW (weight decay 0.01, as diffusers' examples); on a GPU bitsandbytes' 8-bit AdamW where it is installed
    (its state in 8 bits: a fraction of the memory for big LoRAs; on a CPU it saves nothing for LoRA-sized state)."""
    torch = imported("torch")
    if device.startswith("cuda"):
        try:
            with import_lock:
                import bitsandbytes as bnb
            return bnb.optim.AdamW8bit(trainable, lr=learning_rate, weight_decay=1e-2)
        except ImportError:
            pass
    return torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=1e-2)


def optimizer_name(optimizer: Any) -> str:
    return f"{type(optimizer).__module__}.{type(optimizer).__name__}(weight_decay=0.01)"


def _train(
    pipe: Any, device: str, settings: Settings, params: TrainParams, model_id: str, base: Base, pictures: list,
    prompts: list, facts: list, resume: bool, stop: threading.Event, start: float,
) -> Iterator[TrainUpdate]:  # fmt: skip
    """3. the steps, on a Worker: every step's loss, a sample now and then, a checkpoint every checkpoint_every steps
    and at Stop. Returns the last update, the LoRA file's tensors (None when stopped) and the optimizer's name."""
    torch = imported("torch")
    trainer = Trainer(pipe, params.rank, params.train_text_encoder, device, params.seed)
    trainer.encode([dataset.fitted(p.image, tuple(f["size"])) for p, f in zip(pictures, facts, strict=True)], prompts)
    optimizer = make_optimizer(trainer.trainable, params.learning_rate, device)
    generator = torch.Generator("cpu").manual_seed(params.seed)
    folder = files.checkpoint_folder(settings, params.name, model_id, facts)
    info = dict(name=params.name, base=model_id, rank=params.rank, resolution=params.resolution,
                train_text_encoder=params.train_text_encoder, buckets=params.buckets, dataset=facts,
                steps=params.steps, optimizer=optimizer_name(optimizer))  # fmt: skip
    losses: list[float] = []
    first = 0
    if resume:
        saved = files.resume(folder, info, trainer, optimizer, generator)
        first, losses = saved["step"], list(saved["losses"])
        for group in optimizer.param_groups:
            group["lr"] = params.learning_rate
    job, done, shown, withheld = Worker("train"), [first], [None], [0]
    start = time.perf_counter()  # the time per step counts from the first step (loading and encoding came before)
    sample_prompt = params.sample_prompt or prompts[0]

    def checkpoint(step: int) -> None:
        files.save_checkpoint(folder, trainer, optimizer, generator, {**info, "step": step, "losses": losses})

    def run() -> bool:
        for step in range(first, params.steps):
            if stop.is_set() or job.halt.is_set():
                checkpoint(step)
                return False
            loss = trainer.loss(params.batch_size, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainer.trainable, 1.0)
            optimizer.step()
            losses.append(round(float(loss.detach()), 6))
            done[0] = step + 1
            if params.checkpoint_every and (step + 1) % params.checkpoint_every == 0 and step + 1 < params.steps:
                checkpoint(step + 1)
            if params.sample_every and (step + 1) % params.sample_every == 0:
                side = params.resolution
                made = trainer.sample(sample_prompt, params.seed, side, base.sample_steps, base.sample_guidance)
                if made is None:
                    withheld[0] = step + 1
                else:
                    shown[0] = made
        checkpoint(params.steps)  # a later Resume with more steps goes on from here
        return True

    last = None  # the latest sample picture: each is shown once, when it is new
    with job.start(run):
        while not job.finished.wait(UPDATE_EVERY_S):
            new, shown[0] = shown[0], None
            last = new or last
            yield TrainUpdate(done[0], params.steps, time.perf_counter() - start, first, list(losses), new,
                              withheld_at=withheld[0])  # fmt: skip
    finished = job.result()
    last = shown[0] or last
    update = TrainUpdate(done[0], params.steps, time.perf_counter() - start, first, list(losses), last,
                         withheld_at=withheld[0])  # fmt: skip
    if not finished:
        update.stopped = True
        return update, None, ""
    yield update
    return update, trainer.lora_file_tensors(), optimizer_name(optimizer)
