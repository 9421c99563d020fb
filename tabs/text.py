"""Text tab: a streaming chat with a small instruction-tuned model (transformers), using the model's own chat template.

Reads top to bottom: model choices, the engine (`generate_text`, plain Python), then the UI (`build`).
"""

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core import checks, outputs
from core import sampling as sampler
from core.device import Worker, gpu, import_lock
from core.errors import UserError
from core.models import ModelCache
from core.settings import Settings

SETTING = "STUDIO_TEXT_MODEL"
CURATED = (
    "Qwen/Qwen2.5-0.5B-Instruct",  # default: Apache-2.0, fast on a laptop CPU
    "HuggingFaceTB/SmolLM2-360M-Instruct",  # Apache-2.0, smallest
    "Qwen/Qwen2.5-1.5B-Instruct",  # Apache-2.0, better answers, wants a GPU or patience
)
DEFAULT_SYSTEM_PROMPT = "You are a helpful, concise assistant."
HOW_STEPS = 200  # steps shown in "How it works"
PRESETS = {
    "Fast": {"max_new_tokens": 96, "temperature": 0.7, "note": "Short answers: quick on any CPU, may stop early."},
    "Balanced": {"max_new_tokens": 256, "temperature": 0.7, "note": "The defaults: a paragraph or two."},
    "Thorough": {"max_new_tokens": 1024, "temperature": 0.5, "note": "Long, steadier answers: slower."},
}
EXAMPLES = [
    "Explain how a diffusion model turns noise into a picture, in three sentences.",
    "Write a haiku about a lighthouse in fog.",
    "Give me three ideas for a short film about friendship and robots.",
]


def model_choices(settings: Settings) -> list[str]:
    first = settings.model_for("text")
    return [first] + [m for m in CURATED if m != first and not settings.tiny]


@dataclass(frozen=True)
class TextParams:
    max_new_tokens: int = 256
    temperature: float = 0.7  # 0 = greedy (always the most likely token)
    top_p: float = 0.9
    top_k: int = 50  # 0 = off
    repetition_penalty: float = 1.1
    seed: int | None = -1  # -1 or None = random; the seed used is reported


@dataclass
class TextUpdate:
    text: str  # the answer so far
    seed: int
    tokens: int = 0
    seconds: float = 0.0
    done: bool = False
    stopped: bool = False
    saved: Path | None = None  # transcript (with a .json recipe beside it), once done
    candidates: list | None = None  # once done: per step, the chosen token and the model's top 5 (How it works)
    left_out: int = 0  # the oldest chat messages left out to fit the model's context

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def stats(self) -> str:
        state = "Stopped" if self.stopped else ("Done" if self.done else "Generating")
        speed = f"{self.tokens_per_second:.1f} tokens/s"
        note = (
            f". The oldest {self.left_out} message(s) of the chat were left out to fit the model's context"
            if self.left_out
            else ""
        )
        return f"{state}: {self.tokens} tokens in {self.seconds:.1f} s ({speed}), seed {self.seed}{note}"


@dataclass
class LoadedText:
    tokenizer: Any
    model: Any


def load_text_model(folder: Path, device: str, dtype: Any) -> LoadedText:
    with import_lock:
        from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, TextIteratorStreamer  # noqa: F401

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, use_safetensors=True, trust_remote_code=False)
    return LoadedText(tokenizer=tokenizer, model=model.to(device).eval())


def check_params(settings: Settings, params: TextParams) -> TextParams:
    return TextParams(
        max_new_tokens=int(
            checks.check_number(params.max_new_tokens, "max new tokens", 1, settings.max_new_tokens, True)
        ),
        temperature=float(checks.check_number(params.temperature, "temperature", 0, 2)),
        top_p=float(checks.check_number(params.top_p, "top-p", 0.01, 1)),
        top_k=int(checks.check_number(params.top_k, "top-k", 0, 1000, True)),
        repetition_penalty=float(checks.check_number(params.repetition_penalty, "repetition penalty", 0.5, 2)),
        seed=checks.resolve_seed(params.seed),
    )


def message_text(content: Any) -> str:
    """Chatbot message content as plain text (Gradio may hand it over as a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, (list, tuple)):
        return "".join(message_text(part) for part in content)
    return "" if content is None else str(content)


def build_messages(system_prompt: str, history: Sequence[dict], prompt: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    for m in history:
        if m.get("role") in ("user", "assistant"):
            messages.append({"role": m["role"], "content": message_text(m.get("content"))})
    messages.append({"role": "user", "content": prompt})
    return messages


MAX_CHARS_PER_TOKEN = 16  # no tokenizer we offer packs more characters into one token (long runs of spaces aside)


def _encode(tokenizer: Any, messages: list[dict], room: int, continuing: bool = False) -> dict:
    """Tokenise with the chat template, dropping the oldest turns until prompt + answer fit the context. With
    `continuing`, the last message is an answer to go on with (the template leaves it open).

    The chat comes from the browser and can be any length: turns that could not fit even at MAX_CHARS_PER_TOKEN
    are dropped by counting characters first, so a long (or forged) chat costs one tokenisation, not thousands.
    """
    first_turn = 1 if messages and messages[0]["role"] == "system" else 0
    keep = 2 if continuing else 1  # the new message (and the answer being continued) always stay
    chars, start, kept = sum(len(m["content"]) for m in messages), first_turn, len(messages) - keep
    while chars > room * MAX_CHARS_PER_TOKEN and start < kept:
        n = min(2, kept - start)  # the oldest turn: a user message and its answer
        chars -= sum(len(m["content"]) for m in messages[start : start + n])
        start += n
    del messages[first_turn:start]
    while True:
        if getattr(tokenizer, "chat_template", None):
            enc = tokenizer.apply_chat_template(
                messages,
                add_generation_prompt=not continuing,
                continue_final_message=continuing,
                return_tensors="pt",
                return_dict=True,
            )
        else:  # a base model without a template: a plain transcript
            text = "".join(f"{m['role'].title()}: {m['content']}\n" for m in messages)
            text = text[:-1] if continuing else text + "Assistant:"
            enc = tokenizer(text, return_tensors="pt")
        if enc["input_ids"].shape[1] <= room:
            return dict(enc)
        n = min(2, len(messages) - keep - first_turn)  # the oldest turn, as above
        if n <= 0:
            raise UserError(
                f"The message is too long for this model's context ({room} tokens with the answer). "
                "Shorten it or lower max new tokens."
            )
        del messages[first_turn : first_turn + n]


def _save_transcript(
    settings: Settings, model_id: str, messages: list[dict], answer: str, params: TextParams, update: TextUpdate
) -> Path:
    lines = [
        "# Chat transcript",
        "",
        f"- {outputs.AI_STATEMENT}",
        f"- Model: {model_id}",
        f"- Settings: {', '.join(f'{k}={v}' for k, v in asdict(params).items())}",
        f"- {update.stats()}",
        "",
    ]
    for m in messages + [{"role": "assistant", "content": answer}]:
        lines += [f"**{m['role'].title()}:**", "", m["content"], ""]
    path = outputs.new_output_path(settings.output_dir, "text", messages[-1]["content"], "md")
    outputs.atomic_write(path, "\n".join(lines))
    recipe = outputs.base_recipe(
        "text",
        model_id,
        messages=messages,
        answer=answer,
        stopped=update.stopped,
        tokens=update.tokens,
        seconds=round(update.seconds, 3),
        versions=outputs.library_versions("torch", "transformers"),
        **asdict(params),
    )
    outputs.save_recipe(path, recipe)
    return path


@gpu(duration=180)  # spaces.GPU on ZeroGPU Spaces, nothing elsewhere
def _sampling(params: TextParams, device: Any) -> dict[str, Any]:
    """generate()'s sampling arguments. Sampling draws from this request's own generator: the same seed gives the
    same answer even while other requests generate at the same time (torch's global generator is shared)."""
    if params.temperature <= 0:
        return dict(sampler.GREEDY)
    processors = sampler.seeded_processors(
        params.seed, temperature=params.temperature, top_k=params.top_k, top_p=params.top_p, device=device
    )
    return dict(sampler.GREEDY, logits_processor=processors)


def _candidates(tokenizer: Any, chosen: list[int], top5: list[list[tuple[int, float]]]) -> list[dict]:
    """For "How it works": per step, the token picked and the model's five likeliest, decoded."""
    return [
        {
            "step": i + 1,
            "chosen": tokenizer.decode([c]),
            "top": [(tokenizer.decode([t]), round(p, 4)) for t, p in options],
        }
        for i, (c, options) in enumerate(zip(chosen, top5, strict=False))
    ]


def generate_text(
    cache: ModelCache,
    settings: Settings,
    prompt: str,
    *,
    history: Sequence[dict] = (),
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    model: str | None = None,
    params: TextParams = TextParams(),
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
    continue_answer: str = "",
) -> Iterator[TextUpdate]:
    """Stream the answer to `prompt` (after `history`, messages with role/content), then save the transcript.
    With `continue_answer`, the model goes on from that (cut-off) answer; the updates hold the whole answer."""
    prompt = checks.check_text(prompt, "message", settings.max_prompt_chars)
    system_prompt = checks.check_text(system_prompt, "system prompt", settings.max_prompt_chars, required=False)
    model_id = checks.check_model_choice(
        model or settings.model_for("text"), model_choices(settings), settings.allow_custom_models, SETTING
    )
    params = check_params(settings, params)
    stop = stop or threading.Event()

    with cache.model("text", model_id, load_text_model, setting=SETTING, progress=progress) as loaded:
        with import_lock:
            import torch
            from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        tokenizer, lm = loaded.tokenizer, loaded.model
        messages = build_messages(system_prompt, history, prompt)
        continuing = bool(continue_answer)
        if continuing:
            messages.append({"role": "assistant", "content": continue_answer})
        context = getattr(lm.config, "max_position_embeddings", None) or 4096
        given = len(messages)
        inputs = _encode(tokenizer, messages, context - params.max_new_tokens, continuing)
        left_out = given - len(messages)
        if continuing:
            messages.pop()  # the answer so far: saved below as the start of the whole answer
        inputs = {k: v.to(lm.device) for k, v in inputs.items()}
        prompt_len = inputs["input_ids"].shape[1]
        counted = [0]
        job = Worker("text-generate")
        chosen: list[int] = []  # the token picked at each step
        top5: list[list[tuple[int, float]]] = []  # the model's 5 likeliest next tokens at each step, from its logits

        def capture(module, inputs, output):  # on the output layer: raw logits, before any sampling setting
            if job.is_current() and len(top5) < HOW_STEPS:
                probs = torch.softmax(output[0, -1].float(), -1)
                top = torch.topk(probs, 5)
                top5.append(list(zip(top.indices.tolist(), top.values.tolist(), strict=True)))

        class Interrupt(StoppingCriteria):  # checked after every token: Stop takes effect at once
            def __call__(self, input_ids, scores, **kwargs):
                counted[0] = input_ids.shape[1] - prompt_len
                if len(chosen) < HOW_STEPS:
                    chosen.append(int(input_ids[0, -1]))
                halted = stop.is_set() or job.halt.is_set()
                return torch.full((input_ids.shape[0],), halted, dtype=torch.bool, device=input_ids.device)

        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=0.25)

        def run() -> None:
            try:
                with torch.inference_mode():
                    lm.generate(
                        **inputs,
                        **_sampling(params, lm.device),
                        max_new_tokens=params.max_new_tokens,
                        repetition_penalty=params.repetition_penalty,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([Interrupt()]),
                        pad_token_id=tokenizer.eos_token_id
                        if tokenizer.pad_token_id is None
                        else tokenizer.pad_token_id,
                    )
            except BaseException:
                streamer.end()  # the streaming loop below ends, then job.result() raises this
                raise

        start = time.perf_counter()
        update = TextUpdate(text=continue_answer, seed=params.seed, left_out=left_out)
        hook = lm.get_output_embeddings().register_forward_hook(capture)
        try:
            with job.start(run):  # leaving it (Stop, a disconnect) halts the worker at its next token
                while True:
                    try:
                        piece = next(streamer)
                    except queue.Empty:  # a slow token (a long prompt being read): report anyway, never block a Stop
                        piece = ""
                    except StopIteration:
                        break
                    update.text += piece
                    update.tokens, update.seconds = counted[0], time.perf_counter() - start
                    yield update
        finally:
            hook.remove()
        job.result()
        update.tokens, update.seconds = counted[0], time.perf_counter() - start
        update.stopped = stop.is_set()
        update.done = True
        update.candidates = _candidates(tokenizer, chosen, top5)
        if update.text != continue_answer or not update.stopped:
            update.saved = _save_transcript(settings, model_id, messages, update.text, params, update)
        yield update


# ---------------------------------------------------------------- UI ----------------------------------------------


def build(ctx) -> None:
    """The Text tab. `ctx` is core.ui.Context."""
    import gradio as gr

    from core import ui

    settings, cache = ctx.settings, ctx.cache
    choices = model_choices(settings)
    defaults = TextParams()

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
                ctx.shared["text_to_image"] = gr.Button("🖼️ Use as image prompt", elem_id="text-to-image")
            stats = gr.Markdown(elem_id="text-stats")
            gr.Examples(EXAMPLES, message, label="Try")
        with gr.Column(scale=2):
            model = gr.Dropdown(
                visible=not settings.classroom,
                choices=choices,
                value=choices[0],
                label="Model",
                allow_custom_value=settings.allow_custom_models,
                info="A hub id or local folder." if settings.allow_custom_models else None,
            )
            system_prompt = gr.Textbox(DEFAULT_SYSTEM_PROMPT, label="System prompt", lines=2)
            preset = gr.Radio(
                list(PRESETS), label="Preset", info="Fill the settings in one click", elem_id="text-preset"
            )
            preset_note = gr.Markdown()
            with gr.Accordion("Sampling", open=False, visible=not settings.classroom):
                max_new_tokens = ui.slider(
                    1, settings.max_new_tokens, value=defaults.max_new_tokens, step=1, label="Max new tokens"
                )
                temperature = ui.slider(0, 2, value=defaults.temperature, step=0.05, label="Temperature (0 = greedy)")
                top_p = ui.slider(0.01, 1, value=defaults.top_p, step=0.01, label="Top-p")
                top_k = ui.slider(0, 200, value=defaults.top_k, step=1, label="Top-k (0 = off)")
                repetition_penalty = ui.slider(
                    0.5, 2, value=defaults.repetition_penalty, step=0.05, label="Repetition penalty"
                )
                seed = ui.checked(gr.Number, checks.SEED_UNREADABLE)(
                    -1, label="Seed (-1 = random)", precision=0, elem_id="text-seed"
                )
            seed_used = ui.seed_used_box("text-seed-used")

    pending = gr.State("")  # the message being answered
    ticket = gr.State(None)  # lets Stop cancel the answer while it still waits in the queue
    continuing = gr.State(False)  # True: go on with the last answer (Continue) instead of answering anew
    ctx.shared["text_chat"] = chatbot

    def apply_preset(name: str):
        p = PRESETS[name]
        return p["max_new_tokens"], p["temperature"], p["note"]

    preset.input(
        apply_preset, preset, [max_new_tokens, temperature, preset_note], api_visibility="private", queue=False
    )

    @ui.user_errors
    def take_message(text: str, chat: list, request: gr.Request) -> tuple:
        text = checks.check_text(text, "message", settings.max_prompt_chars)
        ticket = ctx.stops.ticket(ui.session_of(request), "text")  # Stop cancels the answer while it waits
        return "", list(chat or []) + [{"role": "user", "content": text}], text, ticket, False, ui.WAITING

    @ui.user_errors
    def respond(
        text,
        chat,
        system,
        model_id,
        n,
        temp,
        p,
        k,
        rep,
        seed_value,
        history,
        ticket,
        continuing,
        request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
    ):
        chat = list(chat or [])
        with ui.job(ctx, request, "text", ticket) as stop_event:
            partial = message_text(chat.pop().get("content")) if continuing and chat else ""
            params = TextParams(n, temp, p, k, rep, seed_value)
            for update in generate_text(
                cache,
                settings,
                text,
                history=chat[:-1],
                continue_answer=partial,
                system_prompt=system,
                model=model_id,
                params=params,
                stop=stop_event,
                progress=progress,
            ):
                answer = chat + [{"role": "assistant", "content": update.text}]
                if not update.done:
                    yield answer, update.stats(), update.seed, gr.skip(), gr.skip()
                else:
                    entry = ui.history_entry(
                        "Text", f"{text[:80]} → {update.text[:80]}", [update.saved] if update.saved else []
                    )
                    yield answer, update.stats(), update.seed, ui.history_add(history, entry), update.candidates

    chat_inputs = [
        pending,
        chatbot,
        system_prompt,
        model,
        max_new_tokens,
        temperature,
        top_p,
        top_k,
        repetition_penalty,
        seed,
        ctx.history,
        ticket,
        continuing,
    ]
    with gr.Accordion("How it works: the model's next-token choices", open=settings.classroom, elem_id="text-how"):
        gr.Markdown(
            "At each step the model scores every token it knows; these are its five likeliest next "
            "tokens and their probabilities (from its raw scores), and the one that was picked."
        )
        how_table = gr.Dataframe(
            headers=["Step", "Picked", "1st", "2nd", "3rd", "4th", "5th"],
            value=[],
            interactive=False,
            elem_id="text-how-table",
        )
    how = gr.State(None)

    def show_how(candidates):
        rows = [[c["step"], repr(c["chosen"])] + [f"{t!r} {p:.1%}" for t, p in c["top"]] for c in candidates or []]
        return rows

    how.change(show_how, how, how_table, api_visibility="private", queue=False)
    chat_outputs = [chatbot, stats, seed_used, ctx.history, how]

    def answer_after(step) -> None:
        """Queue the answer once an instant first step (which takes the message and a Stop ticket) succeeded."""
        step.success(
            respond,
            chat_inputs,
            chat_outputs,
            api_visibility="private",
            concurrency_limit=settings.concurrency,
            concurrency_id="text",
        ).failure(lambda: "", None, stats, api_visibility="private", queue=False)  # not "Waiting…" after an error

    for trigger in (message.submit, send.click):
        answer_after(
            trigger(
                take_message,
                [message, chatbot],
                [message, chatbot, pending, ticket, continuing, stats],
                api_visibility="private",
                queue=False,
            )
        )

    # Retry (↻ on the last answer) asks again: a new answer to the same message (a new seed unless one is set).
    # Undo takes the last message and its answer back out of the chat and into the message box.
    @ui.user_errors
    def take_retry(chat: list, retry: gr.RetryData, request: gr.Request):
        chat = list(chat or [])
        if not 0 <= retry.index < len(chat):
            raise UserError("There is no message to answer again.")
        text = message_text(chat[retry.index].get("content"))
        ticket = ctx.stops.ticket(ui.session_of(request), "text")
        return chat[: retry.index + 1], text, ticket, False, ui.WAITING

    answer_after(
        chatbot.retry(
            take_retry, chatbot, [chatbot, pending, ticket, continuing, stats], api_visibility="private", queue=False
        )
    )

    # Continue goes on with the last answer, e.g. one cut short by max new tokens (text-generation-webui's Continue).
    @ui.user_errors
    def take_continue(chat: list, request: gr.Request):
        chat = list(chat or [])
        if len(chat) < 2 or chat[-1].get("role") != "assistant" or chat[-2].get("role") != "user":
            raise UserError("There is no answer to continue yet: send a message first.")
        ticket = ctx.stops.ticket(ui.session_of(request), "text")
        return message_text(chat[-2].get("content")), ticket, True, ui.WAITING

    answer_after(
        go_on.click(
            take_continue, chatbot, [pending, ticket, continuing, stats], api_visibility="private", queue=False
        )
    )

    def take_undo(chat: list, undo: gr.UndoData):
        chat = list(chat or [])
        return chat[: undo.index], message_text(undo.value)

    chatbot.undo(take_undo, chatbot, [chatbot, message], api_visibility="private", queue=False)

    ui.wire_stop(ctx, stop, "text", stats)
    clear.click(lambda: ([], "", ""), None, [chatbot, stats, pending], api_visibility="private", queue=False)

    @ui.user_errors
    def api_generate_text(
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
        with ui.job(ctx, request, "text-api") as stop_event:
            params = TextParams(max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed)
            for update in generate_text(
                cache,
                settings,
                prompt,
                history=history or (),
                system_prompt=system_prompt,
                model=model,
                params=params,
                stop=stop_event,
            ):
                yield update.text

    gr.api(api_generate_text, api_name="generate_text", concurrency_limit=settings.concurrency, concurrency_id="text")
