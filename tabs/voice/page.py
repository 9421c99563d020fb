"""The Voice tab's page: components and wiring. Speech comes from engine.speak through core.jobs.run."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core import checks, jobs, ui
from core.audio import UNREADABLE
from core.history import prepend, record
from tabs.voice import clone, engine
from tabs.voice import narrate as narration
from tabs.voice.engine import EXAMPLES, SPEED, SpeechParams, SpeechUpdate, voice_choices
from tabs.voice.narrate import MixParams
from tabs.voice.voices import language_name

TAB = "voice"
ANY = ("Any language", "")


@dataclass
class Page:
    text: Any = None
    language: Any = None
    voice: Any = None
    about: Any = None  # the chosen voice's licence and where it comes from
    speed: Any = None
    seed: Any = None
    speak: Any = None
    stop: Any = None
    status: Any = None
    audio: Any = None
    picture: Any = None
    seed_used: Any = None
    recipe_view: Any = None
    music: Any = None  # the music to narrate over
    music_db: Any = None
    duck_db: Any = None
    lead_in: Any = None
    tail: Any = None
    mix: Any = None
    narrated: Any = None  # the narrated track
    mix_status: Any = None
    clone_text: Any = None  # what the cloned voice says
    reference: Any = None  # the clip of the voice to clone
    reference_text: Any = None  # what the clip says
    consent: Any = None
    clone: Any = None


def _voices(settings, language: str) -> list[tuple[str, str]]:
    return [(v.label, v.id) for v in voice_choices(settings) if not language or engine.speaks(v, language)]


def _about(settings, voice_id: str) -> str:
    for v in voice_choices(settings):
        if v.id == voice_id:
            return f"**{v.language_name}** · licence: {v.licence} · {v.where}"
    return ""


def build(ctx: ui.Context) -> None:
    settings, page = ctx.settings, Page()
    offered = voice_choices(settings)
    languages = sorted({v.language for v in offered if v.language}, key=language_name)
    with gr.Row():
        with gr.Column(scale=2):
            page.text = gr.Textbox(
                "",
                label="Text to speak",
                lines=6,
                elem_id="voice-text",
                max_length=settings.max_speech_chars,
                placeholder="Type or paste text: it is spoken sentence by sentence, in order.",
            )
            ctx.shared.voice_text = page.text
            with gr.Row():
                page.speak = gr.Button("Speak", variant="primary", elem_id="voice-speak")
                page.stop = gr.Button("Stop", variant="stop", elem_id="voice-stop")
            page.language = gr.Dropdown(
                [ANY] + [(language_name(code), code) for code in languages],
                value="",
                label="Language",
                allow_custom_value=True,  # API callers may write "en" or "English"; the engine checks it
                elem_id="voice-language",
            )
            page.voice = gr.Dropdown(
                _voices(settings, ""),
                value=offered[0].id,
                label="Voice",
                allow_custom_value=True,  # Piper files added later, custom VITS models; the engine checks it
                elem_id="voice-voice",
            )
            page.about = gr.Markdown(_about(settings, offered[0].id), elem_id="voice-about")
            page.speed = ui.slider(*SPEED, param="speed", value=1.0, step=0.05, label="Speed (1 = normal)")
            page.seed = ui.checked(gr.Number, checks.SEED_UNREADABLE)(
                -1, label="Seed (-1 = random; hibari and VITS voices)", precision=0, visible=not settings.classroom
            )
        with gr.Column(scale=3):
            page.status = gr.Markdown(elem_id="voice-status")
            page.audio = gr.Audio(label="Speech", type="filepath", interactive=False, elem_id="voice-audio")
            page.picture = gr.Image(label="Waveform", interactive=False, height=180, elem_id="voice-waveform")
            page.seed_used = ui.seed_used_box("voice-seed-used")
            page.recipe_view = gr.JSON(label="Recipe", open=False)
    _narration(ctx, page)
    if settings.voice_cloning:
        _cloning(ctx, page)
    gr.Examples(EXAMPLES, page.text, label="Try")
    _wire(ctx, page)


def _cloning(ctx: ui.Context, page: Page) -> None:
    with gr.Accordion("🧬 Clone a voice (consent first)", open=False, elem_id="voice-cloning"):
        gr.Markdown(
            f"Clone only a voice you have the right to use. Every clone needs the box ticked: “{clone.CONSENT_TEXT}” "
            "The studio refuses without it, writes each clone to its audit log (hashes, never the voice) and labels "
            "the result as a composite of a real person's voice. With Dia (1.6B) a CPU makes about one second of "
            "speech a minute; a GPU is many times faster.",
            elem_id="voice-consent-note",
        )
        with gr.Row():
            with gr.Column():
                page.reference = ui.checked(gr.Audio, UNREADABLE.format(what="reference clip (reference)"))(
                    label="The voice: 5-10 s of one person speaking", sources=["upload", "microphone"],
                    type="filepath", elem_id="voice-reference",
                )  # fmt: skip
                page.reference_text = gr.Textbox(
                    label="What the clip says, word for word", lines=2, elem_id="voice-reference-text"
                )
            with gr.Column():
                page.clone_text = gr.Textbox(
                    label="What the cloned voice says", lines=3, max_length=clone.MAX_TEXT_CHARS,
                    elem_id="voice-clone-text",
                )  # fmt: skip
                page.consent = gr.Checkbox(False, label=clone.CONSENT_TEXT, elem_id="voice-consent")
                page.clone = gr.Button("Speak in this voice", variant="primary", elem_id="voice-clone")


def _narration(ctx: ui.Context, page: Page) -> None:
    d = MixParams()
    with gr.Accordion("🎵 Narrate over music", open=False, elem_id="voice-narration"):
        gr.Markdown(
            "The speech above over a piece of music, the music turned down while the voice speaks (ducking) and "
            "back up in the pauses, saved as one WAV."
        )
        with gr.Row():
            with gr.Column():
                page.music = ui.checked(gr.Audio, UNREADABLE.format(what="music clip (music)"))(
                    label="Music", sources=["upload"], type="filepath", elem_id="voice-music"
                )
                ctx.shared.voice_use_music = gr.Button(
                    "🎵 Use the Music tab's result", size="sm", elem_id="voice-use-music"
                )
                ctx.shared.voice_music = page.music
            with gr.Column():
                page.music_db = ui.slider(
                    -30, 0, param="music_db", words="music level", unit=" dB", value=d.music_db, step=1,
                    label="Music level against the voice (dB)",
                )  # fmt: skip
                page.duck_db = ui.slider(
                    0, 30, param="duck_db", words="ducking", unit=" dB", value=d.duck_db, step=1,
                    label="Ducking: how far the music drops under the voice (dB)",
                )  # fmt: skip
                page.lead_in = ui.slider(
                    0, 10, param="lead_in", words="lead-in", unit=" seconds", value=d.lead_in, step=0.5,
                    label="Music before the voice (s)",
                )  # fmt: skip
                page.tail = ui.slider(
                    0, 10, param="tail", unit=" seconds", value=d.tail, step=0.5, label="Music after the voice (s)"
                )
        page.mix = gr.Button("Mix the narrated track", variant="primary", elem_id="voice-mix")
        page.mix_status = gr.Markdown(elem_id="voice-mix-status")
        page.narrated = gr.Audio(label="Narrated track", type="filepath", interactive=False, elem_id="voice-narrated")


def _shows(ctx: ui.Context, page: Page, summary: str, history: list | None):
    """How a run's updates show in the page (speech or a clone): status and seed, then the WAV, its waveform, its
    recipe and a History entry."""

    def show(u: Any) -> dict:
        shown = {page.status: u.status(), page.seed_used: u.seed}
        if not u.done:
            return shown
        entry = record("Voice", summary, [u.path, u.path.with_suffix(".json")])
        return {
            **shown,
            page.audio: str(u.path),
            page.picture: u.waveform,
            page.recipe_view: u.recipe,
            ctx.history: prepend(history, entry),
        }

    return show


def _wire(ctx: ui.Context, page: Page) -> None:
    settings = ctx.settings

    def filter_voices(language: str, current: str):
        choices = _voices(settings, language or "")
        ids = [c[1] for c in choices]
        chosen = current if current in ids else (ids[0] if ids else None)
        return gr.Dropdown(choices=choices, value=chosen), _about(settings, chosen or "")

    page.language.input(
        filter_voices, [page.language, page.voice], [page.voice, page.about], api_visibility="private", queue=False
    )
    page.voice.change(
        lambda v: _about(settings, v or ""), page.voice, page.about, api_visibility="private", queue=False
    )

    @ui.user_errors
    def speak(
        request: gr.Request,
        progress=gr.Progress(),
        *,
        text: str,
        voice: str = "",
        language: str = "",
        speed: float = 1.0,
        seed: int = -1,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """Speech from text, sentence by sentence, in the chosen voice."""
        params = SpeechParams(text, voice=voice or "", language=language or "", speed=speed, seed=seed)

        def work(stop) -> Iterator[SpeechUpdate]:
            return engine.speak(ctx.cache, settings, params, stop=stop, progress=progress)

        yield from jobs.run(ctx, request, TAB, ticket, work, _shows(ctx, page, params.text, history))

    fields = ("text", "voice", "language", "speed", "seed")
    inputs = {**{name: getattr(page, name) for name in fields}, "history": ctx.history}
    outs = [page.audio, page.picture, page.status, page.seed_used, page.recipe_view, ctx.history]
    common = dict(
        concurrency_limit=settings.jobs_at_once(TAB), concurrency_id=TAB, show_progress_on=[page.status],
        status=page.status,
    )  # fmt: skip
    jobs.queued(ctx, TAB, page.speak.click, speak, inputs, outs, api_name="speak", **common)
    ctx.shared.voice_speak = lambda trigger: jobs.queued(
        ctx, TAB, trigger, speak, inputs, outs, api_name=False, **common
    )
    jobs.wire_stop(ctx, page.stop, TAB, page.status)
    if settings.voice_cloning:
        _wire_cloning(ctx, page, outs, common)

    @ui.user_errors
    def narrate(
        speech: str | None,
        music: str | None,
        music_db: float = -6.0,
        duck_db: float = 12.0,
        lead_in: float = 2.0,
        tail: float = 2.0,
        history: list | None = None,
    ):
        """Speech over music, the music ducked under the voice, as one labelled WAV."""
        params = MixParams(music_db=music_db, duck_db=duck_db, lead_in=lead_in, tail=tail)
        saved = narration.narrate(ctx.cache, settings, speech, music, params)
        entry = record("Voice", f"narrated: {saved.recipe['text']}", [saved.path, saved.path.with_suffix(".json")])
        seconds = saved.recipe["samples"] / saved.recipe["sampling_rate"]
        return str(saved.path), f"Done: a {seconds:.1f} s narrated track.", prepend(history, entry)

    page.mix.click(
        narrate,
        [page.audio, page.music, page.music_db, page.duck_db, page.lead_in, page.tail, ctx.history],
        [page.narrated, page.mix_status, ctx.history],
        api_name="narrate",
        concurrency_id=TAB,
        concurrency_limit=settings.jobs_at_once(TAB),
    )


def _wire_cloning(ctx: ui.Context, page: Page, outs: list, common: dict) -> None:
    settings = ctx.settings

    @ui.user_errors
    def clone_voice(
        request: gr.Request,
        progress=gr.Progress(),
        *,
        text: str,
        reference: str | None,
        reference_text: str,
        consent: bool,
        seed: int = -1,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """The text said in the voice of the reference clip (consent must be true)."""
        params = clone.CloneParams(text, reference_text=reference_text, seed=seed)

        def work(stop) -> Iterator[clone.CloneUpdate]:
            return clone.clone_voice(
                ctx.cache, settings, reference, params, consent=consent, stop=stop, progress=progress
            )

        summary = f"cloned: {params.text}"
        yield from jobs.run(ctx, request, TAB, ticket, work, _shows(ctx, page, summary, history))

    inputs = {
        "text": page.clone_text, "reference": page.reference, "reference_text": page.reference_text,
        "consent": page.consent, "seed": page.seed, "history": ctx.history,
    }  # fmt: skip
    jobs.queued(ctx, TAB, page.clone.click, clone_voice, inputs, outs, api_name="clone_voice", **common)
