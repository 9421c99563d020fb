"""The Music tab's page: components and wiring. Music comes from engine.generate_music through core.jobs.run."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core import checks, jobs, ui
from core.errors import UserError
from core.history import prepend, record
from tabs.music import engine
from tabs.music.clips import CLIP_UNREADABLE, CONTEXT_SECONDS, MELODY_UNREADABLE, studio_description
from tabs.music.engine import EXAMPLES, PRESETS, MusicParams, MusicUpdate, model_choices

TAB = "music"


@dataclass
class Page:
    """The tab's components, by name (those named after a MusicParams field are its inputs)."""

    prompt: Any = None
    duration: Any = None
    top_k: Any = None
    top_p: Any = None
    temperature: Any = None
    guidance_scale: Any = None
    seed: Any = None
    model: Any = None
    melody: Any = None
    clip: Any = None  # the clip to continue
    generate: Any = None
    stop: Any = None
    continue_clip: Any = None
    status: Any = None
    audio: Any = None
    picture: Any = None  # the waveform
    continue_result: Any = None
    seed_used: Any = None
    recipe_view: Any = None
    how: Any = None  # (spectrogram, steps per second, seconds) for "How it works" (a State)


def build(ctx: ui.Context) -> None:
    page = Page()
    with gr.Row():
        with gr.Column(scale=2):
            _description_and_settings(ctx, page)
            _clips(page)
        with gr.Column(scale=3):
            page.status = gr.Markdown(elem_id="music-status")
            page.audio = gr.Audio(label="Result", type="filepath", interactive=False, elem_id="music-audio")
            ctx.shared.music_result = page.audio
            page.picture = gr.Image(label="Waveform", interactive=False, height=180, elem_id="music-waveform")
            page.continue_result = gr.Button("➕ Continue this result", size="sm", elem_id="music-continue")
            page.seed_used = ui.seed_used_box("music-seed-used")
            page.recipe_view = gr.JSON(label="Recipe", open=False)
    gr.Examples(EXAMPLES, page.prompt, label="Try")
    page.how = _how_it_works(ctx.settings.classroom)
    _wire_runs(ctx, page)


def _description_and_settings(ctx: ui.Context, page: Page) -> None:
    settings, d = ctx.settings, MusicParams(prompt="")
    choices = model_choices(settings)
    page.prompt = gr.Textbox(
        "",
        label="Describe the music",
        lines=3,
        elem_id="music-prompt",
        max_length=settings.max_prompt_chars,
        placeholder="lo-fi hip hop with warm piano and soft vinyl crackle",
    )
    ctx.shared.music_prompt = page.prompt
    ctx.shared.music_expand = gr.Button("✨ Expand description", size="sm", elem_id="music-expand")
    longest = settings.max_music_seconds
    page.duration = ui.slider(
        1,
        longest,
        param="duration",
        unit=" seconds",
        value=min(d.duration, longest),
        step=1,
        label="Duration (seconds)",
    )
    preset = gr.Radio(
        list(PRESETS),
        label="Preset",
        elem_id="music-preset",
        info="Sketch: short and quick. Full: long, several times slower.",
    )
    preset_note = gr.Markdown()

    def apply_preset(name: str):
        if name not in PRESETS:
            raise gr.Error(f"The preset must be one of {', '.join(PRESETS)}.", print_exception=False)
        return PRESETS[name]

    preset.input(apply_preset, preset, [page.duration, preset_note], api_visibility="private", queue=False)
    with gr.Row():
        page.generate = gr.Button("Generate", variant="primary", elem_id="music-generate")
        page.stop = gr.Button("Stop", variant="stop", elem_id="music-stop")
    page.model = ui.model_dropdown(settings, choices)
    with gr.Accordion("Sampling", open=False, visible=not settings.classroom):
        page.top_k = ui.slider(0, 500, param="top_k", value=d.top_k, step=1, label="Top-k (0 = off)")
        page.top_p = ui.slider(0, 1, param="top_p", value=d.top_p, step=0.01, label="Top-p (0 = off)")
        page.temperature = ui.slider(0.05, 2, param="temperature", value=d.temperature, step=0.05, label="Temperature")
        page.guidance_scale = ui.slider(
            0, 10, param="guidance_scale", value=d.guidance_scale, step=0.5, label="Classifier-free guidance (1 = off)"
        )
        page.seed = ui.checked(gr.Number, checks.SEED_UNREADABLE)(-1, label="Seed (-1 = random)", precision=0)


def _clips(page: Page) -> None:
    page.melody = ui.checked(gr.Audio, MELODY_UNREADABLE)(
        label="Melody to follow (melody models only, up to 30 s)",
        sources=["upload", "microphone"],
        type="filepath",
        elem_id="music-melody",
    )
    with gr.Accordion("Continue a clip", open=False, elem_id="music-continue-panel"):
        page.clip = ui.checked(gr.Audio, CLIP_UNREADABLE)(
            label=f"Clip to continue (its last {CONTEXT_SECONDS:g} s are what the model hears)",
            sources=["upload", "microphone"],
            type="filepath",
            elem_id="music-clip",
        )
        gr.Markdown(
            "The result is the whole clip, then *Duration* seconds more in the style of the description "
            "(blank: the description inside a clip made here)."
        )
        page.continue_clip = gr.Button("Continue the clip", elem_id="music-continue-clip")


def _how_it_works(open_: bool) -> Any:
    with gr.Accordion("How it works: sound as tokens", open=open_, elem_id="music-how"):
        gr.Markdown(
            "MusicGen writes music as a stream of tokens (4 parallel codebooks, 50 steps per second of "
            "sound) that a neural codec (EnCodec) turns back into a waveform. The spectrogram shows the "
            "result: time left to right, pitch bottom to top, loudness as brightness."
        )
        spectrogram = gr.Image(label="Spectrogram", interactive=False, elem_id="music-how-spectrogram")
        speed = gr.Markdown(elem_id="music-how-speed")
    how = gr.State(None)

    def show_how(value):
        if not value:
            return None, ""
        picture, steps_per_second, seconds = value
        return picture, (
            f"The model produced **{steps_per_second:.0f} token steps per second** here "
            f"({steps_per_second * 4:.0f} tokens/s over 4 codebooks); {seconds:g} s of music needs "
            f"{seconds * 50:.0f} steps."
        )

    how.change(show_how, how, [spectrogram, speed], api_visibility="private", queue=False)
    return how


def _compose(ctx, page: Page, params: MusicParams, model: str, melody: Any, continue_from: Any, **job):
    """One run of the engine (after `continue_from`'s clip where there is one), shown as it goes, then the sound,
    its waveform, its recipe and a History entry."""
    request, progress, ticket, history = job["request"], job["progress"], job["ticket"], job["history"]

    def work(stop) -> Iterator[MusicUpdate]:
        return engine.generate_music(
            ctx.cache, ctx.settings, params, model=model, melody=melody, continue_from=continue_from, stop=stop,
            progress=progress,
        )  # fmt: skip

    def show(u: MusicUpdate) -> dict:
        shown = {page.status: u.status(), page.seed_used: u.seed}
        if not u.done:
            return shown
        entry = record("Music", params.prompt, [u.path, u.path.with_suffix(".json")])
        return {
            **shown,
            page.audio: str(u.path),
            page.picture: u.waveform,
            page.recipe_view: u.recipe,
            ctx.history: prepend(history, entry),
            page.how: (u.spectrogram, u.steps_per_second, u.seconds_total),
        }

    yield from jobs.run(ctx, request, TAB, ticket, work, show)


def _wire_runs(ctx: ui.Context, page: Page) -> None:
    @ui.user_errors
    def generate_music(
        request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
        *,
        prompt: str,
        duration: float,
        top_k: int,
        top_p: float,
        temperature: float,
        guidance_scale: float,
        seed: int,
        model: str,
        melody: str | None = None,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """Music from a description (and a melody clip to follow, for melody models)."""
        params = MusicParams(
            prompt, duration=duration, top_k=top_k, top_p=top_p, temperature=temperature,
            guidance_scale=guidance_scale, seed=seed,
        )  # fmt: skip
        job = dict(request=request, progress=progress, ticket=ticket, history=history)
        yield from _compose(ctx, page, params, model, melody, None, **job)

    @ui.user_errors
    def continue_music(
        request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
        *,
        prompt: str,
        duration: float,
        top_k: int,
        top_p: float,
        temperature: float,
        guidance_scale: float,
        seed: int,
        model: str,
        melody: str | None = None,
        continue_from: str | None,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """`duration` seconds more after the end of the continue_from clip; a blank description takes the one inside
        a clip made here."""
        if not continue_from:  # the clip box is empty
            raise UserError("Add a clip to continue (upload or record one), or make some music first.")
        if not str(prompt or "").strip():
            prompt = studio_description(continue_from) or prompt
        params = MusicParams(
            prompt, duration=duration, top_k=top_k, top_p=top_p, temperature=temperature,
            guidance_scale=guidance_scale, seed=seed,
        )  # fmt: skip
        job = dict(request=request, progress=progress, ticket=ticket, history=history)
        yield from _compose(ctx, page, params, model, melody, continue_from, **job)

    fields = ("prompt", "duration", "top_k", "top_p", "temperature", "guidance_scale", "seed", "model", "melody")
    named = {name: getattr(page, name) for name in fields}
    outs = [page.audio, page.picture, page.status, page.seed_used, page.recipe_view, ctx.history, page.how]
    common = dict(
        concurrency_limit=ctx.settings.jobs_at_once(TAB), concurrency_id=TAB, show_progress_on=[page.status],
        status=page.status,
    )  # fmt: skip
    fresh = {**named, "history": ctx.history}
    jobs.queued(ctx, TAB, page.generate.click, generate_music, fresh, outs, api_name="generate_music", **common)
    jobs.queued(ctx, TAB, page.prompt.submit, generate_music, fresh, outs, api_name=False, **common)
    going_on = {**named, "continue_from": page.clip, "history": ctx.history}
    jobs.queued(
        ctx, TAB, page.continue_clip.click, continue_music, going_on, outs, api_name="continue_music", **common
    )

    def result_as_clip(result):
        if not result:
            raise gr.Error("Make some music first, then continue it.")
        return result

    # "Continue this result" puts the result in the clip box (so the user sees what is continued), then runs.
    taken = page.continue_result.click(result_as_clip, page.audio, page.clip, api_visibility="private", queue=False)
    jobs.queued(ctx, TAB, taken.success, continue_music, going_on, outs, api_name=False, **common)
    jobs.wire_stop(ctx, page.stop, TAB, page.status)
