"""The Video tab's page: components and wiring. Videos come from engine.generate_video through core.jobs.run."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core import checks, jobs, ui
from core.audio import UNREADABLE
from core.history import prepend, record
from core.settings import Settings
from tabs.video import engine
from tabs.video import soundtrack as soundtrack_engine
from tabs.video.engine import EXAMPLES, MAX_FPS, MAX_STEPS, VideoParams, VideoUpdate, model_choices, model_defaults
from tabs.video.soundtrack import SoundtrackUpdate

TAB = "video"


def licence_line(settings: Settings, model: str) -> str:
    """What the page says under the model: its family and licence (LTX-Video's is not an open-source licence)."""
    d = model_defaults(model, settings=settings)
    return f"*{engine.FAMILIES[d.family]} · licence: {d.licence}*"


@dataclass
class Page:
    prompt: Any = None
    negative_prompt: Any = None
    num_frames: Any = None
    fps: Any = None
    width: Any = None
    height: Any = None
    steps: Any = None
    guidance_scale: Any = None
    seed: Any = None
    model: Any = None
    first_frame: Any = None
    soundtrack: Any = None
    generate: Any = None
    stop: Any = None
    status: Any = None
    preview: Any = None
    video: Any = None
    seed_used: Any = None
    recipe_view: Any = None
    licence: Any = None
    music_prompt: Any = None
    add_soundtrack: Any = None


def build(ctx: ui.Context) -> None:
    settings, page = ctx.settings, Page()
    choices = model_choices(settings)
    d = model_defaults(choices[0], settings=settings)
    side = settings.max_image_size
    with gr.Row():
        with gr.Column(scale=2):
            page.prompt = gr.Textbox(
                "", label="Describe the video", lines=3, elem_id="video-prompt", max_length=settings.max_prompt_chars,
                placeholder=EXAMPLES[0],
            )  # fmt: skip
            page.negative_prompt = gr.Textbox("", label="Negative prompt", lines=1, elem_id="video-negative")
            with gr.Row():
                page.generate = gr.Button("Generate", variant="primary", elem_id="video-generate")
                page.stop = gr.Button("Stop", variant="stop", elem_id="video-stop")
            page.model = ui.model_dropdown(settings, choices, elem_id="video-model")
            page.licence = gr.Markdown(licence_line(settings, choices[0]), elem_id="video-licence")
            ui.lora_picker(settings, page.prompt, "video")
            frames = min(33, settings.max_video_frames)
            page.num_frames = ui.slider(
                5, settings.max_video_frames, param="num_frames", words="frames", value=frames, step=4,
                label="Frames (Wan 4k+1, LTX-Video 8k+1)", elem_id="video-num-frames",
            )  # fmt: skip
            page.fps = ui.slider(4, MAX_FPS, param="fps", words="frame rate", value=d.fps, step=1, label="Frame rate")
            with gr.Row():
                page.width = ui.slider(
                    16, side, param="width", value=min(d.width, side), step=16, label="Width", elem_id="video-width"
                )
                page.height = ui.slider(
                    16,
                    side,
                    param="height",
                    value=min(d.height, side),
                    step=16,
                    label="Height",
                    elem_id="video-height",
                )
            with gr.Accordion("Steps, guidance, seed", open=False, visible=not settings.classroom):
                page.steps = ui.slider(1, MAX_STEPS, param="steps", value=d.steps, step=1, label="Steps")
                page.guidance_scale = ui.slider(
                    1, 20, param="guidance_scale", value=d.guidance, step=0.5, label="Guidance (CFG)"
                )
                page.seed = ui.checked(gr.Number, checks.SEED_UNREADABLE)(-1, label="Seed (-1 = random)", precision=0)
            unreadable = "The first frame is not a picture the studio can read (PNG, JPEG or WebP)."
            page.first_frame = ui.checked(gr.Image, unreadable, "first frame (first_frame)")(
                label="First frame (picture to video: Wan 2.2 or LTX-Video)",
                type="filepath",
                elem_id="video-first-frame",
            )
            ctx.shared.video_first_frame = page.first_frame
            page.soundtrack = ui.checked(gr.Audio, UNREADABLE.format(what="soundtrack"))(
                label="Soundtrack (muxed under the video)", sources=["upload"], type="filepath",
                elem_id="video-soundtrack",
            )  # fmt: skip
            ctx.shared.video_soundtrack = page.soundtrack
            ctx.shared.video_use_music = gr.Button(
                "🎵 Use the Music tab's result", size="sm", elem_id="video-use-music"
            )
        with gr.Column(scale=3):
            page.status = gr.Markdown(elem_id="video-status")
            page.preview = gr.Image(
                label="Middle frame, as it forms", interactive=False, height=200, elem_id="video-preview"
            )
            page.video = gr.Video(label="Video", interactive=False, elem_id="video-result")
            ctx.shared.video_result = page.video
            with gr.Row():
                ctx.shared.video_to_faceswap = gr.Button(
                    "🎭 Swap a face in this video", size="sm", elem_id="video-to-faceswap"
                )
                ctx.shared.video_to_image = gr.Button(
                    "🖼 Send this frame to the Image tab", size="sm", elem_id="video-to-image"
                )
            ctx.shared.video_frame = ui.slider(
                1, settings.max_video_frames, param="frame", value=1, step=1, label="Frame to send (1 = the first)",
                elem_id="video-frame",
            )  # fmt: skip
            with gr.Accordion("Add a soundtrack to this video", open=False, elem_id="video-soundtrack-panel"):
                page.music_prompt = gr.Textbox(
                    "", label="Music for it", lines=1, elem_id="video-music-prompt",
                    max_length=settings.max_prompt_chars,
                    info="Composed by the Music tab's model for the video's length. Left empty: the soundtrack clip "
                    "on the left if there is one, else music for the video's description.",
                )  # fmt: skip
                page.add_soundtrack = gr.Button("🎵 Add a soundtrack", size="sm", elem_id="video-add-soundtrack")
            page.seed_used = ui.seed_used_box("video-seed-used")
            page.recipe_view = gr.JSON(label="Recipe", open=False)
    gr.Examples(EXAMPLES, page.prompt, label="Try")
    _wire(ctx, page)


def _wire(ctx: ui.Context, page: Page) -> None:
    settings = ctx.settings

    def apply_defaults(model: str):
        d = model_defaults(model or "", settings=settings)
        side = settings.max_image_size
        return d.fps, min(d.width, side), min(d.height, side), d.steps, d.guidance, licence_line(settings, model or "")

    shown = [page.fps, page.width, page.height, page.steps, page.guidance_scale, page.licence]
    page.model.change(apply_defaults, page.model, shown, api_visibility="private", queue=False)

    @ui.user_errors
    def generate_video(
        request: gr.Request,
        progress=gr.Progress(),
        *,
        prompt: str,
        negative_prompt: str = "",
        num_frames: int = 33,
        fps: int = 16,
        width: int = 832,
        height: int = 480,
        steps: int = 50,
        guidance_scale: float = 5.0,
        seed: int = -1,
        model: str | None = None,
        first_frame: str | None = None,
        soundtrack: str | None = None,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """A video from a description (and a first frame, with a model that takes one; a soundtrack under it)."""
        params = VideoParams(
            prompt, negative_prompt=negative_prompt or "", num_frames=num_frames, fps=fps, width=width,
            height=height, steps=steps, guidance_scale=guidance_scale, seed=seed,
        )  # fmt: skip

        def work(stop) -> Iterator[VideoUpdate]:
            return engine.generate_video(
                ctx.cache, settings, params, model=model, first_frame=first_frame, soundtrack=soundtrack, stop=stop,
                progress=progress,
            )  # fmt: skip

        def show(u: VideoUpdate) -> dict:
            shown = {page.status: u.status(), page.seed_used: u.seed}
            if u.preview is not None:
                shown[page.preview] = u.preview
            if not u.done:
                return shown
            entry = record("Video", params.prompt, [u.path, u.path.with_suffix(".json")])
            return {**shown, page.video: str(u.path), page.recipe_view: u.recipe, ctx.history: prepend(history, entry)}

        yield from jobs.run(ctx, request, TAB, ticket, work, show)

    fields = (
        "prompt", "negative_prompt", "num_frames", "fps", "width", "height", "steps", "guidance_scale", "seed",
        "model", "first_frame", "soundtrack",
    )  # fmt: skip
    inputs = {**{name: getattr(page, name) for name in fields}, "history": ctx.history}
    outs = [page.video, page.preview, page.status, page.seed_used, page.recipe_view, ctx.history]
    common = dict(
        concurrency_limit=settings.jobs_at_once(TAB), concurrency_id=TAB, show_progress_on=[page.status],
        status=page.status,
    )  # fmt: skip
    jobs.queued(ctx, TAB, page.generate.click, generate_video, inputs, outs, api_name="generate_video", **common)
    jobs.wire_stop(ctx, page.stop, TAB, page.status)
    _wire_soundtrack(ctx, page, common)


def _wire_soundtrack(ctx: ui.Context, page: Page, common: dict) -> None:
    settings = ctx.settings

    @ui.user_errors
    def add_soundtrack(
        request: gr.Request,
        progress=gr.Progress(),
        *,
        video: str,
        soundtrack: str | None = None,
        music_prompt: str = "",
        seed: int = -1,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """The video with a soundtrack under it: the `soundtrack` clip, or music composed for `music_prompt` as long
        as the video (the frames are copied as they are)."""

        def work(stop) -> Iterator[SoundtrackUpdate]:
            return soundtrack_engine.add_soundtrack(
                ctx.cache, settings, video, soundtrack=soundtrack, music_prompt=music_prompt or "", seed=seed,
                stop=stop, progress=progress,
            )  # fmt: skip

        def show(u: SoundtrackUpdate) -> dict:
            if not u.done:
                return {page.status: u.said}
            entry = record("Video", u.path.stem, [u.path, u.path.with_suffix(".json")])
            return {
                page.status: u.said,
                page.video: str(u.path),
                page.recipe_view: u.recipe,
                ctx.history: prepend(history, entry),
            }

        yield from jobs.run(ctx, request, TAB, ticket, work, show)

    def music_for(prompt: str, music_prompt: str, soundtrack: str | None) -> str:
        """The page's choice: the box's music, or (empty) the clip on the left, or music for the video's prompt."""
        if (music_prompt or "").strip() or soundtrack:
            return music_prompt
        return f"A soundtrack for this scene: {prompt.strip()}" if (prompt or "").strip() else ""

    inputs = {
        "video": page.video, "soundtrack": page.soundtrack, "music_prompt": page.music_prompt, "seed": page.seed,
        "history": ctx.history,
    }  # fmt: skip
    outs = [page.video, page.status, page.recipe_view, ctx.history]
    filled = page.add_soundtrack.click(
        music_for, [page.prompt, page.music_prompt, page.soundtrack], page.music_prompt, api_visibility="private",
        queue=False,
    )  # fmt: skip
    jobs.queued(ctx, TAB, filled.then, add_soundtrack, inputs, outs, api_name="add_soundtrack", **common)
