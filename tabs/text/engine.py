"""The Text tab's engine: a streaming chat with a small instruction-tuned model (transformers), using the model's
own chat template. Plain Python: model choices, parameters and their checks, then `generate_text` in steps (check ->
model from the cache -> stream with Stop -> save with its recipe)."""

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core import checks, outputs, saving
from core import sampling as sampler
from core.device import Worker, gpu, import_lock, imported, pick_dtype
from core.errors import UserError
from core.models import ModelCache
from core.settings import DEFAULT_TEXT_MODEL, Settings
from tabs.text import remote

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
    if settings.text_endpoint:  # the server's models: the one STUDIO_TEXT_MODEL names, or the first it lists
        named = settings.text_model != DEFAULT_TEXT_MODEL and not settings.tiny
        return [settings.text_model, remote.SERVER_DEFAULT] if named else [remote.SERVER_DEFAULT]
    first = settings.model_for("text")
    return [first] + [m for m in CURATED if m != first and not settings.tiny]


@dataclass(frozen=True, kw_only=True)
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
            checks.check_number(
                params.max_new_tokens, checks.named("max_new_tokens"), 1, settings.max_new_tokens, True
            )
        ),
        temperature=float(checks.check_number(params.temperature, "temperature", 0, 2)),
        top_p=float(checks.check_number(params.top_p, checks.named("top_p"), 0.01, 1)),
        top_k=int(checks.check_number(params.top_k, checks.named("top_k"), 0, 1000, True)),
        repetition_penalty=float(
            checks.check_number(params.repetition_penalty, checks.named("repetition_penalty"), 0.5, 2)
        ),
        seed=checks.resolve_seed(params.seed),
    )


def message_text(content: Any, depth: int = 0) -> str:
    """Chatbot message content as plain text (Gradio may hand it over as a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, (list, tuple)) and depth < 2:  # parts of a message; nothing real nests deeper
        return "".join(message_text(part, depth + 1) for part in content)
    return "" if content is None else str(content)[:200]


MAX_MESSAGES = 400  # earlier messages of a chat than the newest 400 are left out before anything else is counted
MAX_CHAT_CHARS = 1_000_000  # and earlier ones than fill this many characters (far beyond any context we offer)


def build_messages(system_prompt: str, history: Sequence[dict], prompt: str) -> list[dict[str, str]]:
    """The messages a model answers: the system prompt, the newest turns of `history` (at most MAX_MESSAGES and
    MAX_CHAT_CHARS: a chat comes from the browser and can be any length), the new message."""
    turns, chars = [], 0
    for m in reversed(history[-MAX_MESSAGES:] if isinstance(history, list | tuple) else ()):
        if isinstance(m, dict) and m.get("role") in ("user", "assistant"):
            text = message_text(m.get("content"))
            chars += len(text)
            if chars > MAX_CHAT_CHARS:
                break
            turns.append({"role": m["role"], "content": text})
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    return messages + turns[::-1] + [{"role": "user", "content": prompt}]


MAX_CHARS_PER_TOKEN = 16  # no tokenizer we offer packs more characters into one token (long runs of spaces aside)


def _template(tokenizer: Any, messages: list[dict], continuing: bool) -> dict:
    """The model's inputs for `messages` (its chat template; a plain transcript for a base model without one)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=not continuing,
            continue_final_message=continuing,
            return_tensors="pt",
            return_dict=True,
        )
    text = "".join(f"{m['role'].title()}: {m['content']}\n" for m in messages)
    text = text[:-1] if continuing else text + "Assistant:"
    return tokenizer(text, return_tensors="pt")


def _encode(tokenizer: Any, messages: list[dict], room: int, continuing: bool = False) -> dict:
    """Tokenise with the chat template, dropping the oldest turns (a user message and its answer) until prompt +
    answer fit the context. With `continuing`, the last message is an answer to go on with (the template leaves
    it open). Turns that could not fit even at MAX_CHARS_PER_TOKEN go first by counting characters; then a binary
    search over how many turns to drop: a few tokenisations whatever the chat's length, never one per turn."""
    first_turn = 1 if messages and messages[0]["role"] == "system" else 0
    keep = 2 if continuing else 1  # the new message (and the answer being continued) always stay
    last = len(messages) - keep  # dropping up to here leaves only what must stay
    chars, start = sum(len(m["content"]) for m in messages), first_turn
    while chars > room * MAX_CHARS_PER_TOKEN and start < last:
        n = min(2, last - start)
        chars -= sum(len(m["content"]) for m in messages[start : start + n])
        start += n
    cuts = list(range(start, last, 2)) + [last]  # where the kept messages may begin, from most kept to fewest

    def encoded(i: int) -> dict:
        return dict(_template(tokenizer, messages[:first_turn] + messages[cuts[i] :], continuing))

    low, high, best = 0, len(cuts) - 1, None
    while low <= high:  # the first cut whose inputs fit (fewer messages never make them longer)
        middle = (low + high) // 2
        enc = encoded(middle)
        if enc["input_ids"].shape[1] <= room:
            best, high = (middle, enc), middle - 1
        else:
            low = middle + 1
    if best is None:
        raise UserError(
            f"The message is too long for this model's context ({room} tokens with the answer). "
            "Shorten it or lower max new tokens."
        )
    del messages[first_turn : cuts[best[0]]]
    return best[1]


def _save_transcript(
    settings: Settings,
    model_id: str,
    messages: list[dict],
    answer: str,
    params: TextParams,
    update: TextUpdate,
    served: dict | None = None,
) -> Path:
    """The transcript as Markdown with its recipe; `served`: what the text server said of the run, if one ran it."""
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
    recipe = outputs.base_recipe(
        "text",
        model_id,
        messages=messages,
        answer=answer,
        stopped=update.stopped,
        tokens=update.tokens,
        seconds=round(update.seconds, 3),
        versions=outputs.library_versions("torch", "transformers") if served is None else {},
        **({"server": served} if served else {}),
        **asdict(params),
    )
    markdown = "\n".join(lines)

    def write(tmp: Path, _recipe: dict) -> None:  # Markdown carries no watermark
        tmp.write_text(markdown, "utf-8")

    saved = saving.finish(settings, "text", messages[-1]["content"], "md", recipe, write)
    return saved.path


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


def _prepare(
    loaded: LoadedText, system_prompt: str, history: Sequence[dict], prompt: str, answer_so_far: str, new_tokens: int
) -> tuple[list[dict], dict, int]:
    """(the messages answered, the model's inputs on its device, how many old messages were left out to fit)."""
    messages = build_messages(system_prompt, history, prompt)
    continuing = bool(answer_so_far)
    if continuing:
        messages.append({"role": "assistant", "content": answer_so_far})
    context = getattr(loaded.model.config, "max_position_embeddings", None) or 4096
    inputs = _encode(loaded.tokenizer, messages, context - new_tokens, continuing)
    told = sum(1 for m in history if isinstance(m, dict) and m.get("role") in ("user", "assistant"))
    left_out = told - (sum(1 for m in messages if m["role"] != "system") - (2 if continuing else 1))
    if continuing:
        messages.pop()  # the answer so far: saved as the start of the whole answer
    return messages, {k: v.to(loaded.model.device) for k, v in inputs.items()}, left_out


def _stream(
    loaded: LoadedText, inputs: dict, params: TextParams, stop: threading.Event, update: TextUpdate
) -> Iterator[TextUpdate]:
    """Generate on a Worker, growing `update` token by token (its text, count and seconds) and yielding it; once the
    stream ends, `update.candidates` holds the model's choices for "How it works". Stop ends it at the next token."""
    torch = imported("torch")
    StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer = imported(
        "transformers", "StoppingCriteria", "StoppingCriteriaList", "TextIteratorStreamer"
    )

    tokenizer, lm = loaded.tokenizer, loaded.model
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
    pad = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id

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
                    pad_token_id=pad,
                )
        except BaseException:
            streamer.end()  # the streaming loop below ends, then job.result() raises this
            raise

    start = time.perf_counter()
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
    update.candidates = _candidates(tokenizer, chosen, top5)


@gpu(duration=180)  # spaces.GPU on ZeroGPU Spaces (the function every caller runs), nothing elsewhere
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
    # 1. check the inputs
    prompt = checks.check_text(prompt, checks.named("prompt", "message"), settings.max_prompt_chars)
    system_prompt = checks.check_text(
        system_prompt, checks.named("system_prompt"), settings.max_prompt_chars, required=False
    )
    model_id = checks.check_model_choice(
        model or model_choices(settings)[0], model_choices(settings), settings.allow_custom_models, SETTING
    )
    params = check_params(settings, params)
    stop = stop or threading.Event()
    if settings.text_endpoint:  # 2-3. an OpenAI-compatible server runs the model instead
        yield from _generate_remote(settings, model_id, system_prompt, history, prompt, params, stop, continue_answer)
        return
    # 2. the model from the cache, held until the answer is done
    dtype = pick_dtype(cache.device, fp16=False)  # Qwen2-family models give NaNs ("!!!!") in fp16
    with cache.model("text", model_id, load_text_model, setting=SETTING, progress=progress, dtype=dtype) as loaded:
        messages, inputs, left_out = _prepare(
            loaded, system_prompt, history, prompt, continue_answer, params.max_new_tokens
        )
        # 3. stream the answer
        update = TextUpdate(text=continue_answer, seed=params.seed, left_out=left_out)
        yield from _stream(loaded, inputs, params, stop, update)
    # 4. save it with its recipe (not an answer stopped before its first token), and hand it back
    update.stopped = stop.is_set()
    update.done = True
    if update.text != continue_answer or not update.stopped:
        update.saved = _save_transcript(settings, model_id, messages, update.text, params, update)
    yield update


def _generate_remote(
    settings: Settings,
    model_id: str,
    system_prompt: str,
    history: Sequence[dict],
    prompt: str,
    params: TextParams,
    stop: threading.Event,
    continue_answer: str,
) -> Iterator[TextUpdate]:
    """generate_text's steps 2-4 on the text server (STUDIO_TEXT_ENDPOINT): stream its answer, save it here. The
    server fits the chat to its model's context; "How it works" has no token choices to show."""
    messages = build_messages(system_prompt, history, prompt)
    asked = messages + ([{"role": "assistant", "content": continue_answer}] if continue_answer else [])
    name = remote.model_name(settings, model_id)
    update, facts, start = TextUpdate(text=continue_answer, seed=params.seed), {}, time.perf_counter()
    for piece, facts in remote.stream(settings, name, asked, params, stop, bool(continue_answer)):
        update.text += piece
        update.tokens = facts.get("tokens") or facts.get("tokens_counted", 0)
        update.seconds = time.perf_counter() - start
        yield update
    update.stopped, update.done, update.candidates = stop.is_set(), True, []
    if update.text != continue_answer or not update.stopped:
        served = {"endpoint": remote.endpoint(settings), "model": facts.get("model") or name}
        served["settings_passed"] = facts.get("passed", [])
        update.saved = _save_transcript(settings, served["model"], messages, update.text, params, update, served)
    yield update
