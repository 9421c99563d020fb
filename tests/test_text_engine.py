"""The Text engine on a tiny Qwen2 built locally (real transformers classes, random weights)."""

import json
import re
import threading

import pytest
from helpers import drawing_neighbour

from core.errors import UserError
from tabs.text.engine import TextParams, build_messages, generate_text


def run(cache, settings, prompt="Hello", **kwargs):
    return list(generate_text(cache, settings, prompt, **kwargs))


def test_streams_a_growing_answer_and_saves_it(shared_cache, settings):
    updates = run(shared_cache, settings, params=TextParams(max_new_tokens=12, seed=3))
    texts = [u.text for u in updates]
    assert len(updates) >= 3
    assert all(texts[i + 1].startswith(texts[i]) for i in range(len(texts) - 1))
    final = updates[-1]
    assert final.done and not final.stopped and final.tokens == 12 and final.seed == 3
    assert final.saved.exists() and final.saved.parent.parent.name == "text"
    transcript = final.saved.read_text()
    assert "AI-generated" in transcript and "Hello" in transcript and final.text in transcript
    recipe = json.loads(final.saved.with_suffix(".json").read_text())
    assert recipe["model"] == settings.text_model and recipe["seed"] == 3 and recipe["answer"] == final.text
    assert recipe["versions"]["transformers"]


def test_same_seed_same_answer_and_random_seed_reported(shared_cache, settings):
    a = run(shared_cache, settings, params=TextParams(max_new_tokens=10, temperature=1.0, seed=42))[-1]
    b = run(shared_cache, settings, params=TextParams(max_new_tokens=10, temperature=1.0, seed=42))[-1]
    c = run(shared_cache, settings, params=TextParams(max_new_tokens=10, temperature=1.0, seed=-1))[-1]
    d = run(shared_cache, settings, params=TextParams(max_new_tokens=10, temperature=1.0, seed=None))[-1]
    assert a.text == b.text
    assert 0 <= c.seed < 2**32 and 0 <= d.seed < 2**32 and c.seed != d.seed


def test_a_seed_holds_while_other_threads_draw_random_numbers(shared_cache, settings):
    """Concurrent requests (STUDIO_CONCURRENCY > 1) share torch's global generator; each answer must not care."""
    params = TextParams(max_new_tokens=16, temperature=1.0, seed=42)
    alone = run(shared_cache, settings, params=params)[-1].text
    with drawing_neighbour():
        crowded = run(shared_cache, settings, params=params)[-1].text
    assert crowded == alone
    assert (
        run(shared_cache, settings, params=TextParams(max_new_tokens=16, temperature=1.0, seed=43))[-1].text != alone
    )


def test_continue_goes_on_with_a_cut_off_answer(shared_cache, settings):
    cut = run(shared_cache, settings, "Tell me a story", params=TextParams(max_new_tokens=6, seed=4))[-1].text
    assert cut.strip()
    updates = run(
        shared_cache, settings, "Tell me a story", continue_answer=cut, params=TextParams(max_new_tokens=6, seed=5)
    )
    final = updates[-1]
    assert all(u.text.startswith(cut) for u in updates) and len(final.text) > len(cut) and final.tokens == 6
    recipe = json.loads(final.saved.with_suffix(".json").read_text())
    assert recipe["answer"] == final.text and recipe["messages"][-1] == {"role": "user", "content": "Tell me a story"}


def test_greedy_ignores_the_seed(shared_cache, settings):
    a = run(shared_cache, settings, params=TextParams(max_new_tokens=8, temperature=0, seed=1))[-1]
    b = run(shared_cache, settings, params=TextParams(max_new_tokens=8, temperature=0, seed=2))[-1]
    assert a.text == b.text


def test_stop_interrupts_at_once(shared_cache, settings):
    stop = threading.Event()
    updates = []
    for update in generate_text(
        shared_cache, settings, "Go on", params=TextParams(max_new_tokens=500, seed=1), stop=stop
    ):
        updates.append(update)
        if len(updates) == 3:
            stop.set()
    final = updates[-1]
    assert final.done and final.stopped and final.tokens < 20
    assert final.saved.exists()  # what was made before Stop is kept


def test_closing_the_stream_ends_the_worker(shared_cache, settings):
    import time

    stream = generate_text(shared_cache, settings, "Go on", params=TextParams(max_new_tokens=2000, seed=1))
    next(stream)
    start = time.perf_counter()
    stream.close()  # what Gradio does when a client cancels or disconnects
    assert time.perf_counter() - start < 2
    assert not any(t.name == "text-generate" for t in threading.enumerate())


def test_history_and_system_prompt_reach_the_template():
    messages = build_messages(
        "Be brief.",
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]}],
        "And now?",
    )
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "Hello!"


def test_long_history_is_trimmed_to_the_context(shared_cache, settings):
    history = []
    for i in range(200):
        history += [{"role": "user", "content": f"question {i} " * 20}, {"role": "assistant", "content": "ok " * 30}]
    final = run(shared_cache, settings, "last one", history=history, params=TextParams(max_new_tokens=4, seed=1))[-1]
    assert final.done and final.tokens == 4
    assert final.left_out > 0 and final.left_out % 2 == 0  # whole turns, oldest first
    assert f"The oldest {final.left_out} message(s) of the chat were left out" in final.stats()
    short = run(shared_cache, settings, "hi", history=history[-2:], params=TextParams(max_new_tokens=4))[-1]
    assert short.left_out == 0 and "left out" not in short.stats()


def test_a_huge_chat_from_the_browser_costs_one_tokenisation(shared_cache, settings):
    """The chat is sent by the page and can be forged: 20,000 turns of 1,000 characters must not be tokenised
    again and again; only the turns that can fit are kept, the newest ones."""
    history = []
    for i in range(20_000):
        history += [{"role": "user", "content": f"old {i} " + "x" * 1000}, {"role": "assistant", "content": "ok"}]
    history[-2]["content"] = "the newest question"
    final = run(shared_cache, settings, "last one", history=history, params=TextParams(max_new_tokens=4, seed=1))[-1]
    transcript = final.saved.read_text()
    assert final.done and "the newest question" in transcript and "old 0 " not in transcript


@pytest.mark.parametrize(
    ("prompt", "params", "model", "fragment"),
    [
        ("", TextParams(), None, "message (prompt) is empty"),
        ("   \n ", TextParams(), None, "message (prompt) is empty"),
        ("x" * 5000, TextParams(), None, "limit is 4,000"),
        ("hi", TextParams(max_new_tokens=0), None, "max new tokens (max_new_tokens) must be between 1 and 2048"),
        ("hi", TextParams(max_new_tokens=10**9), None, "max new tokens (max_new_tokens) must be between"),
        ("hi", TextParams(temperature=float("nan")), None, "temperature must be a finite number"),
        ("hi", TextParams(temperature=-1), None, "temperature must be between 0 and 2"),
        ("hi", TextParams(top_p=0), None, "top-p (top_p) must be between"),
        ("hi", TextParams(top_k=2.5), None, "top-k (top_k) must be a whole number"),
        ("hi", TextParams(seed="abc"), None, "seed must be a number"),
        ("hi", TextParams(seed=2**40), None, "seed must be between"),
        ("hi", TextParams(), "someone/any-model", "not offered here"),
        (None, TextParams(), None, "message (prompt) is empty"),
        (123, TextParams(), None, "message (prompt) must be text"),
    ],
)
def test_bad_input_gets_one_clear_sentence(shared_cache, settings, prompt, params, model, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        run(shared_cache, settings, prompt, params=params, model=model)
    assert not settings.output_dir.exists()  # nothing saved for a refused request
