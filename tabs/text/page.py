"""The Text tab's page: components and wiring. The answers come from engine.generate_text through core.jobs.run."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core import checks, jobs, ui
from core.errors import UserError
from core.history import prepend, record
from tabs.text import engine
from tabs.text.engine import (
    DEFAULT_SYSTEM_PROMPT,
    EXAMPLES,
    PRESETS,
    TextParams,
    TextUpdate,
    message_text,
    model_choices,
)

TAB = "text"


@dataclass
class Page:
    """The tab's components, by name."""

    chatbot: Any
    message: Any
    send: Any
    stop: Any
    go_on: Any
    clear: Any
    stats: Any
    model: Any
    system_prompt: Any
    preset: Any
    preset_note: Any
    max_new_tokens: Any
    temperature: Any
    top_p: Any
    top_k: Any
    repetition_penalty: Any
    seed: Any
    seed_used: Any
    how: Any  # the model's choices per step (a State), shown in "How it works"


def build(ctx: ui.Context) -> None:
    page = _layout(ctx)
    _wire_chat(ctx, page)
    _wire_controls(ctx, page)
    _wire_api(ctx)


def _layout(ctx: ui.Context) -> Page:
    settings = ctx.settings
    choices = model_choices(settings)
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Chat", height=420, elem_id="text-chat", buttons=["copy", "copy_all"])
            with gr.Row():
                message = gr.Textbox(
                    placeholder="Type a message and press Enter",
                    show_label=False,
                    scale=5,
                    elem_id="text-message",
                    max_length=settings.max_prompt_chars,
                )
                send = gr.Button("Send", variant="primary", scale=1, elem_id="text-send")
            with gr.Row():
                stop = gr.Button("Stop", variant="stop", elem_id="text-stop")
                go_on = gr.Button("Continue", elem_id="text-continue")
                clear = gr.Button("Clear", elem_id="text-clear")
                ctx.shared.text_to_image = gr.Button("🖼️ Use as image prompt", elem_id="text-to-image")
                ctx.shared.text_to_voice = gr.Button("🔊 Read aloud", elem_id="text-to-voice")
            stats = gr.Markdown(elem_id="text-stats")
            gr.Examples(EXAMPLES, message, label="Try")
        with gr.Column(scale=2):
            model = ui.model_dropdown(settings, choices)
            system_prompt = gr.Textbox(DEFAULT_SYSTEM_PROMPT, label="System prompt", lines=2)
            preset = gr.Radio(
                list(PRESETS), label="Preset", info="Fill the settings in one click", elem_id="text-preset"
            )
            preset_note = gr.Markdown()
            sampling = _sampling_controls(ctx)
            seed_used = ui.seed_used_box("text-seed-used")
    ctx.shared.text_chat = chatbot
    how = _how_it_works(settings.classroom)
    return Page(
        chatbot, message, send, stop, go_on, clear, stats, model, system_prompt, preset, preset_note,
        **sampling, seed_used=seed_used, how=how,
    )  # fmt: skip


def _sampling_controls(ctx: ui.Context) -> dict[str, Any]:
    settings, defaults = ctx.settings, TextParams()
    with gr.Accordion("Sampling", open=False, visible=not settings.classroom):
        return dict(
            max_new_tokens=ui.slider(
                1,
                settings.max_new_tokens,
                param="max_new_tokens",
                value=defaults.max_new_tokens,
                step=1,
                label="Max new tokens",
            ),
            temperature=ui.slider(
                0, 2, param="temperature", value=defaults.temperature, step=0.05, label="Temperature (0 = greedy)"
            ),
            top_p=ui.slider(0.01, 1, param="top_p", value=defaults.top_p, step=0.01, label="Top-p"),
            top_k=ui.slider(0, 200, param="top_k", value=defaults.top_k, step=1, label="Top-k (0 = off)"),
            repetition_penalty=ui.slider(
                0.5,
                2,
                param="repetition_penalty",
                value=defaults.repetition_penalty,
                step=0.05,
                label="Repetition penalty",
            ),
            seed=ui.checked(gr.Number, checks.SEED_UNREADABLE)(
                -1, label="Seed (-1 = random)", precision=0, elem_id="text-seed"
            ),
        )


def _how_it_works(open_: bool) -> Any:
    with gr.Accordion("How it works: the model's next-token choices", open=open_, elem_id="text-how"):
        gr.Markdown(
            "At each step the model scores every token it knows; these are its five likeliest next "
            "tokens and their probabilities (from its raw scores), and the one that was picked."
        )
        table = gr.Dataframe(
            headers=["Step", "Picked", "1st", "2nd", "3rd", "4th", "5th"],
            value=[],
            interactive=False,
            elem_id="text-how-table",
        )
    how = gr.State(None)

    def show_how(candidates):
        return [[c["step"], repr(c["chosen"])] + [f"{t!r} {p:.1%}" for t, p in c["top"]] for c in candidates or []]

    how.change(show_how, how, table, api_visibility="private", queue=False)
    return how


def _wire_chat(ctx: ui.Context, page: Page) -> None:
    """Send (or Enter), ↻ Retry, Continue: an instant step edits the chat, then the answer runs in the queue."""
    settings = ctx.settings
    pending = gr.State("")  # the message being answered
    continuing = gr.State(False)  # True: go on with the last answer (Continue) instead of answering anew
    form = dict(
        text=pending,
        chat=page.chatbot,
        system=page.system_prompt,
        model_id=page.model,
        history=ctx.history,
        continuing=continuing,
        **{name: getattr(page, name) for name in SAMPLING},  # one input per sampling setting
    )
    outputs = [page.chatbot, page.stats, page.seed_used, ctx.history, page.how]

    def respond(request: gr.Request, progress=gr.Progress(track_tqdm=True), *, ticket=None, **named):
        yield from _respond(ctx, page, request, progress, ticket, **named)

    def answer_after(step) -> None:
        jobs.queued(
            ctx,
            TAB,
            step.success,
            ui.user_errors(respond),
            form,
            outputs,
            status=page.stats,
            api_visibility="private",
            concurrency_limit=settings.jobs_at_once(TAB),
            concurrency_id=TAB,
        )

    @ui.user_errors
    def take_message(text: str, chat: list) -> tuple:
        text = checks.check_text(text, "message", settings.max_prompt_chars)
        return "", list(chat or []) + [{"role": "user", "content": as_written(text)}], text, False

    for trigger in (page.message.submit, page.send.click):
        shown = [page.message, page.chatbot, pending, continuing]
        answer_after(trigger(take_message, [page.message, page.chatbot], shown, api_visibility="private", queue=False))

    # Retry (↻ on an answer) asks again: a new answer to the same message (a new seed unless one is set).
    @ui.user_errors
    def take_retry(chat: list, retry: gr.RetryData):
        chat = list(chat or [])
        if not 0 <= retry.index < len(chat):
            raise UserError("There is no message to answer again.")
        return chat[: retry.index + 1], message_text(chat[retry.index].get("content")), False

    shown = [page.chatbot, pending, continuing]
    answer_after(page.chatbot.retry(take_retry, page.chatbot, shown, api_visibility="private", queue=False))

    # Continue goes on with the last answer, e.g. one cut short by max new tokens (text-generation-webui's Continue).
    @ui.user_errors
    def take_continue(chat: list):
        chat = list(chat or [])
        if len(chat) < 2 or chat[-1].get("role") != "assistant" or chat[-2].get("role") != "user":
            raise UserError("There is no answer to continue yet: send a message first.")
        return message_text(chat[-2].get("content")), True

    answer_after(
        page.go_on.click(take_continue, page.chatbot, [pending, continuing], api_visibility="private", queue=False)
    )


def as_written(text: str) -> list[dict]:
    """A message for the Chatbot exactly as written: Gradio dedents a plain string (inspect.cleandoc), which reshapes
    code and, on Continue, hands the model a different answer from the one it wrote; a text part is kept as it is."""
    return [{"type": "text", "text": text}]


SAMPLING = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed")


def _respond(ctx, page: Page, request, progress, ticket, *, text, chat, system, model_id, history, continuing, **s):
    """One answer in the chat, streamed; the last update adds it to the History and fills "How it works"."""
    chat = list(chat or [])
    partial = message_text(chat.pop().get("content")) if continuing and chat else ""
    params = TextParams(**{name: s[name] for name in SAMPLING})

    def work(stop) -> Iterator[TextUpdate]:
        return engine.generate_text(
            ctx.cache, ctx.settings, text, history=chat[:-1], continue_answer=partial, system_prompt=system,
            model=model_id, params=params, stop=stop, progress=progress,
        )  # fmt: skip

    def show(update: TextUpdate) -> dict:
        shown = {
            page.chatbot: chat + [{"role": "assistant", "content": as_written(update.text)}],
            page.stats: update.stats(),
            page.seed_used: update.seed,
        }
        if update.done:
            files = [update.saved, update.saved.with_suffix(".json")] if update.saved else []
            entry = record("Text", f"{text[:80]} → {update.text[:80]}", files)
            shown.update({ctx.history: prepend(history, entry), page.how: update.candidates})
        return shown

    yield from jobs.run(ctx, request, TAB, ticket, work, show)


def _wire_controls(ctx: ui.Context, page: Page) -> None:
    def apply_preset(name: str):
        if name not in PRESETS:
            raise gr.Error(f"The preset must be one of {', '.join(PRESETS)}.", print_exception=False)
        p = PRESETS[name]
        return p["max_new_tokens"], p["temperature"], p["note"]

    page.preset.input(
        apply_preset,
        page.preset,
        [page.max_new_tokens, page.temperature, page.preset_note],
        api_visibility="private",
        queue=False,
    )

    def take_undo(chat: list, undo: gr.UndoData):  # Undo: the last message back into the box to edit it
        return list(chat or [])[: undo.index], message_text(undo.value)

    page.chatbot.undo(take_undo, page.chatbot, [page.chatbot, page.message], api_visibility="private", queue=False)
    jobs.wire_stop(ctx, page.stop, TAB, page.stats)
    page.clear.click(lambda: ([], ""), None, [page.chatbot, page.stats], api_visibility="private", queue=False)


def _wire_api(ctx: ui.Context) -> None:
    defaults, choices = TextParams(), model_choices(ctx.settings)

    @ui.user_errors
    def generate_text(
        prompt: str,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        max_new_tokens: int = defaults.max_new_tokens,
        temperature: float = defaults.temperature,
        top_p: float = defaults.top_p,
        top_k: int = defaults.top_k,
        repetition_penalty: float = defaults.repetition_penalty,
        seed: int = -1,
        model: str = choices[0],
        history: list[dict] | None = None,
        request: gr.Request = None,
    ) -> Iterator[str]:
        """Stream the answer to one message, after `history` (earlier messages, oldest first, each
        {"role": "user" or "assistant", "content": text}): yields the growing answer text."""
        if history is not None and (
            not isinstance(history, list)
            or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in history)
        ):
            raise UserError('The history must be a list of messages like {"role": "user", "content": "Hi"}.')
        params = TextParams(
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
            repetition_penalty=repetition_penalty, seed=seed,
        )  # fmt: skip

        def work(stop) -> Iterator[TextUpdate]:
            return engine.generate_text(
                ctx.cache, ctx.settings, prompt, history=history or (), system_prompt=system_prompt, model=model,
                params=params, stop=stop,
            )  # fmt: skip

        yield from jobs.run(ctx, request, "text-api", None, work, lambda update: update.text)

    gr.api(
        generate_text,
        api_name="generate_text",
        concurrency_limit=ctx.settings.jobs_at_once(TAB),
        concurrency_id=TAB,
    )
