"""The Train tab's page: components and wiring. LoRAs come from engine.train_lora through core.jobs.run."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core import checks, jobs, ui
from core.history import prepend, record
from core.settings import Settings
from tabs.train import dataset, engine
from tabs.train.engine import (
    CONSENT_TEXT,
    MAX_BATCH,
    MAX_RANK,
    PRESETS,
    TrainParams,
    TrainUpdate,
    base_choices,
    base_of,
)

TAB = "train"
PICTURE_TYPES = [".png", ".jpg", ".jpeg", ".webp", ".zip"]


@dataclass
class Page:
    images: Any = None
    captions: Any = None
    caption: Any = None
    trigger: Any = None
    name: Any = None
    base_model: Any = None
    about: Any = None
    preset: Any = None
    preset_info: Any = None
    steps: Any = None
    rank: Any = None
    learning_rate: Any = None
    resolution: Any = None
    batch_size: Any = None
    train_text_encoder: Any = None
    seed: Any = None
    sample_every: Any = None
    buckets: Any = None
    sample_prompt: Any = None
    checkpoint_every: Any = None
    consent: Any = None
    overwrite: Any = None
    resume: Any = None  # a hidden checkbox: the Resume button sets it
    train: Any = None
    resume_button: Any = None
    stop: Any = None
    status: Any = None
    plot: Any = None
    sample: Any = None
    lora_file: Any = None
    made: Any = None  # a State: {"name", "trigger", "base"} of the LoRA just made (for the Image tab)
    recipe_view: Any = None
    from_history: Any = None


def about_line(settings: Settings, model: str) -> str:
    base = base_of(model or "", settings)
    return f"*{base.about} Licence: {base.licence}.*"


def build(ctx: ui.Context) -> None:
    settings, page = ctx.settings, Page()
    choices = base_choices(settings)
    first = base_of(choices[0], settings)
    if not settings.training:
        gr.Markdown("**Training is turned off on this studio** (`STUDIO_TRAINING=0`).")
    with gr.Row():
        with gr.Column(scale=2):
            page.images = gr.File(
                label="Pictures to learn from: 5 to 50 (PNG, JPEG, WebP), or a zip of them with name.txt captions",
                file_count="multiple", file_types=PICTURE_TYPES, type="filepath", elem_id="train-images",
            )  # fmt: skip
            ctx.shared.train_images = page.images
            with gr.Row():
                ctx.shared.train_add_results = gr.Button(
                    "🖼 Add the Image tab's results", size="sm", elem_id="train-add-results"
                )
                page.from_history = gr.Button("🕘 Add pictures from the History", size="sm", elem_id="train-history")
            page.captions = gr.Dataframe(
                headers=["picture", "caption"], column_count=(2, "fixed"), datatype=["str", "str"], interactive=True,
                label="Captions (edit them: say what varies, not what the LoRA should learn)", type="array",
                elem_id="train-captions", wrap=True,
            )  # fmt: skip
            page.caption = gr.Button("✍️ Caption them (BLIP)", size="sm", elem_id="train-caption")
            with gr.Row():
                page.name = gr.Textbox("", label="Name of the LoRA", placeholder="my_dog", elem_id="train-name")
                page.trigger = gr.Textbox(
                    "", label="Trigger word", placeholder="sks dog", elem_id="train-trigger",
                    info="Put before every caption; in a prompt it calls the LoRA up.",
                )  # fmt: skip
            page.base_model = ui.model_dropdown(
                settings, choices, elem_id="train-base", label="Base model", param="base_model"
            )
            page.about = gr.Markdown(about_line(settings, choices[0]), elem_id="train-about")
            page.preset = gr.Radio(list(PRESETS), value="Subject", label="Preset", elem_id="train-preset")
            page.preset_info = gr.Markdown(f"*{PRESETS['Subject'][1]}*")
            _numbers(settings, page, first)
            page.consent = gr.Checkbox(False, label=CONSENT_TEXT, elem_id="train-consent")
            page.overwrite = gr.Checkbox(False, label="Replace a LoRA of the same name", elem_id="train-overwrite")
            page.resume = gr.Checkbox(False, visible=False)
            with gr.Row():
                page.train = gr.Button("Train", variant="primary", elem_id="train-start")
                page.resume_button = gr.Button("Resume", elem_id="train-resume")
                page.stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
            gr.Markdown(
                "*One training runs at a time on this studio; another waits in the queue. Stop keeps a checkpoint: "
                "Resume goes on from it (with the same pictures and settings, and as many steps or more).*"
            )
        with gr.Column(scale=3):
            page.status = gr.Markdown(elem_id="train-status")
            page.plot = gr.LinePlot(x="step", y="loss", label="Loss", height=220, elem_id="train-plot")
            page.sample = gr.Image(label="Sample (fixed prompt and seed)", interactive=False, height=256,
                                   elem_id="train-sample")  # fmt: skip
            where = "also in the LoRA folder" if not settings.public else "yours alone, in your History"
            page.lora_file = gr.File(label=f"The LoRA ({where})", interactive=False, elem_id="train-lora")
            ctx.shared.train_to_image = gr.Button("🖼 Use it on the Image tab", size="sm", elem_id="train-to-image")
            page.made = gr.State(None)
            ctx.shared.train_made = page.made
            page.recipe_view = gr.JSON(label="Recipe", open=False)
    _wire(ctx, page)


def _numbers(settings: Settings, page: Page, first: Any) -> None:
    steps, rank, rate, batch = (PRESETS["Subject"][0][k] for k in ("steps", "rank", "learning_rate", "batch_size"))
    with gr.Accordion("Steps, rank, learning rate, size, samples", open=not settings.classroom):
        with gr.Row():
            most = settings.max_train_steps
            page.steps = ui.slider(1, most, param="steps", value=min(steps, most), step=1, label="Steps",
                                   elem_id="train-steps")  # fmt: skip
            page.rank = ui.slider(1, MAX_RANK, param="rank", value=rank, step=1, label="Rank", elem_id="train-rank")
        with gr.Row():
            page.learning_rate = ui.checked(gr.Number, checks.NUMBER_UNREADABLE.format("learning rate"))(
                first.learning_rate if settings.tiny else rate, label="Learning rate", elem_id="train-lr"
            )
            page.batch_size = ui.slider(1, MAX_BATCH, param="batch_size", words="batch size", value=batch, step=1,
                                        label="Batch", elem_id="train-batch")  # fmt: skip
        with gr.Row():
            page.resolution = ui.slider(32, settings.max_image_size, param="resolution", step=8,
                                        value=min(first.resolution, settings.max_image_size), label="Resolution",
                                        elem_id="train-resolution")  # fmt: skip
            page.seed = ui.checked(gr.Number, checks.SEED_UNREADABLE)(0, label="Seed", precision=0)
        with gr.Row():
            page.train_text_encoder = gr.Checkbox(False, label="Train the text encoder too (SD 1.x/2.x)")
            page.buckets = gr.Checkbox(
                True, label="Keep each picture's shape (aspect-ratio buckets)", elem_id="train-buckets",
                info="Tall and wide pictures train at a size of their shape, of about the resolution's area, "
                "instead of losing their sides to a square crop.",
            )  # fmt: skip
        with gr.Row():
            page.sample_every = gr.Number(100, label="A sample every N steps (0: none)", precision=0,
                                          elem_id="train-sample-every")  # fmt: skip
            page.checkpoint_every = gr.Number(100, label="A checkpoint every N steps", precision=0)
        page.sample_prompt = gr.Textbox("", label="Sample prompt (empty: the trigger word and the first caption)")


def _wire(ctx: ui.Context, page: Page) -> None:
    settings = ctx.settings

    def pictures_listed(images: Any, rows: Any) -> list[list[str]]:
        """The table follows the pictures: a row each, keeping captions already written."""
        kept = {str(r[0]): str(r[1] or "") for r in (rows or []) if isinstance(r, (list, tuple)) and len(r) == 2}
        return [[name, kept.get(name) or caption] for name, caption in dataset.listing(images)]

    def history_pictures(history: list | None, chosen: list | None) -> list[str]:
        """The pictures this browser's History holds (made here, sealed by the server), after those chosen."""
        from core.history import views

        have = [c["path"] if isinstance(c, dict) else c for c in (chosen or [])]
        found = [f for f in views(history)[1] if f.lower().endswith(tuple(PICTURE_TYPES[:-1])) and f not in have]
        if not found:
            raise gr.Error("The History holds no pictures yet: make some on the Image tab first.")
        return (have + found)[: dataset.MAX_PICTURES]

    page.from_history.click(
        history_pictures, [ctx.history, page.images], page.images, api_visibility="private", queue=False
    )
    page.images.change(
        ui.user_errors(pictures_listed), [page.images, page.captions], page.captions, api_visibility="private",
        queue=False,
    )  # fmt: skip

    def preset_chosen(preset: str, model: str):
        numbers, info = PRESETS.get(preset, PRESETS["Subject"])
        rate = base_of(model or "", settings).learning_rate if settings.tiny else numbers["learning_rate"]
        steps = min(numbers["steps"], settings.max_train_steps)
        return steps, numbers["rank"], rate, numbers["batch_size"], f"*{info}*"

    shown = [page.steps, page.rank, page.learning_rate, page.batch_size, page.preset_info]
    page.preset.change(preset_chosen, [page.preset, page.base_model], shown, api_visibility="private", queue=False)

    def base_chosen(model: str):
        base = base_of(model or "", settings)
        return min(base.resolution, settings.max_image_size), about_line(settings, model)

    page.base_model.change(
        base_chosen, page.base_model, [page.resolution, page.about], api_visibility="private", queue=False
    )

    @ui.user_errors
    def caption_images(images: list[str]) -> list[list[str]]:
        """A caption for each picture (BLIP); pictures that came with one (a .txt beside them in a zip) keep it."""
        return engine.caption_images(ctx.cache, settings, images)

    page.caption.click(
        caption_images, page.images, page.captions, api_name="caption_images", concurrency_limit=1,
        concurrency_id="caption",
    )  # fmt: skip

    @ui.user_errors
    def train_lora(
        request: gr.Request,
        progress=gr.Progress(),
        *,
        images: list[str],
        name: str,
        trigger: str = "",
        steps: int = 1000,
        consent: bool = False,
        base_model: str | None = None,
        captions: list | None = None,
        rank: int = 16,
        learning_rate: float = 1e-4,
        resolution: int = 512,
        batch_size: int = 1,
        train_text_encoder: bool = False,
        seed: int = 0,
        sample_every: int = 100,  # (the API takes the page's values for what a client leaves out)
        sample_prompt: str = "",
        checkpoint_every: int = 100,
        buckets: bool = True,
        overwrite: bool = False,
        resume: bool = False,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """Train a LoRA on the pictures (5 to 50, or zips of them), with a trigger word; it lands in the LoRA folder
        as `name` (on a shared studio only the operator's: anyone else's stays theirs, a file in the answer and in
        their History, for their Image tab). consent must be true when a picture shows a face. resume goes on from
        the last checkpoint made from the same pictures."""
        params = TrainParams(
            name, trigger=trigger or "", steps=steps, rank=rank, learning_rate=learning_rate, resolution=resolution,
            batch_size=batch_size, train_text_encoder=train_text_encoder is True, seed=seed,
            sample_every=sample_every, sample_prompt=sample_prompt or "", checkpoint_every=checkpoint_every,
            buckets=buckets is not False,
        )  # fmt: skip
        operator = settings.is_operator(getattr(request, "username", None))

        def work(stop) -> Iterator[TrainUpdate]:
            return engine.train_lora(
                ctx.cache, settings, params, images, base_model=base_model, captions=captions, consent=consent,
                resume=resume is True, overwrite=overwrite is True, operator=operator, stop=stop, progress=progress,
            )  # fmt: skip

        def show(u: TrainUpdate) -> dict:
            import pandas as pd

            shown: dict = {page.status: u.status()}
            if u.losses:
                shown[page.plot] = pd.DataFrame({"step": range(1, len(u.losses) + 1), "loss": u.losses})
            if u.sample is not None:
                shown[page.sample] = u.sample
            if not u.done:
                return shown
            entry = record("Train", f"LoRA {params.name}", [u.path, u.path.with_suffix(".json")])
            made = {"name": params.name, "trigger": u.recipe["trigger"], "base": u.recipe["model"]}
            return {**shown, page.lora_file: str(u.path), page.recipe_view: u.recipe, page.made: made,
                    ctx.history: prepend(history, entry)}  # fmt: skip

        yield from jobs.run(ctx, request, TAB, ticket, work, show)

    fields = (
        "images", "name", "trigger", "steps", "consent", "base_model", "captions", "rank", "learning_rate",
        "resolution", "batch_size", "train_text_encoder", "seed", "sample_every", "sample_prompt", "checkpoint_every",
        "buckets", "overwrite", "resume",
    )  # fmt: skip
    inputs = {**{name: getattr(page, name) for name in fields}, "history": ctx.history}
    outs = [page.status, page.plot, page.sample, page.lora_file, page.recipe_view, page.made, ctx.history]
    common = dict(concurrency_limit=1, concurrency_id=TAB, show_progress_on=[page.status], status=page.status)
    start = page.train.click(lambda: False, None, page.resume, api_visibility="private", queue=False)
    jobs.queued(ctx, TAB, start.then, train_lora, inputs, outs, api_name="train_lora", **common)
    again = page.resume_button.click(lambda: True, None, page.resume, api_visibility="private", queue=False)
    jobs.queued(ctx, TAB, again.then, train_lora, inputs, outs, api_visibility="private", **common)
    jobs.wire_stop(ctx, page.stop, TAB, page.status, "Stopping: a checkpoint is being saved…")
