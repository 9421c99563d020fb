"""The running studio through gradio_client: streaming, reproducibility, stop, bad input."""

import json
import re
import time

import pytest
from gradio_client.exceptions import AppError


def test_endpoints_are_named(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/generate_text", "/models", "/unload_models"} <= names


def test_generate_text_streams_the_growing_answer(client):
    job = client.submit(prompt="Tell me a story", max_new_tokens=16, seed=7, api_name="/generate_text")
    partials = list(job)
    assert len(partials) >= 3
    assert all(partials[i + 1].startswith(partials[i]) for i in range(len(partials) - 1))
    assert job.result() == partials[-1] and partials[-1]


def test_only_the_prompt_is_required_and_seeds_reproduce(client):
    assert isinstance(client.predict(prompt="Hi", api_name="/generate_text"), str)
    a = client.predict(prompt="Hi", seed=11, temperature=1.0, max_new_tokens=10, api_name="/generate_text")
    b = client.predict(prompt="Hi", seed=11, temperature=1.0, max_new_tokens=10, api_name="/generate_text")
    assert a == b


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"prompt": ""}, "message (prompt) is empty"),
        ({"prompt": "hi", "temperature": 9}, "temperature must be between 0 and 2"),
        ({"prompt": "hi", "max_new_tokens": -5}, "max new tokens (max_new_tokens) must be between"),
        ({"prompt": "hi", "model": "evil/remote-code-model"}, "not offered here"),
        ({"prompt": "hi", "history": [{"role": "user"}]}, "history must be a list of messages"),
        ({"prompt": "hi", "history": ["just text"]}, "history must be a list of messages"),
    ],
)
def test_bad_input_reaches_the_client_as_a_sentence(client, kwargs, fragment):
    with pytest.raises(AppError, match=re.escape(fragment)):
        client.predict(**kwargs, api_name="/generate_text")


def test_cancel_stops_generation_and_the_server_keeps_serving(client, server):
    job = client.submit(prompt="Go on forever", max_new_tokens=2000, seed=1, api_name="/generate_text")
    deadline = time.monotonic() + 30
    while not job.outputs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.outputs(), "no streamed output arrived"
    job.cancel()
    # the worker must end promptly: the model is no longer in use
    deadline = time.monotonic() + 10
    while any(m["in_use"] for m in server["cache"].snapshot()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(m["in_use"] for m in server["cache"].snapshot())
    assert len(job.outputs()[-1]) < 2000 * 4
    assert client.predict(prompt="still there?", max_new_tokens=4, api_name="/generate_text")


def test_model_panel_lists_the_loaded_model_and_unloads_it(client, server):
    client.predict(prompt="load it", max_new_tokens=2, api_name="/generate_text")
    table, note = client.predict(api_name="/models")
    assert table["data"][0][1] == "tiny:qwen2" and "model(s) loaded" in note
    table, note = client.predict(api_name="/unload_models")
    assert table["data"] == [] and note.startswith("Unloaded ") and "0 model(s) loaded" in note
    before = server["cache"].loads
    client.predict(prompt="again", max_new_tokens=2, api_name="/generate_text")
    assert server["cache"].loads == before + 1


def test_a_chat_through_the_api_carries_its_history(client, server):
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
    ]
    answer = client.predict(prompt="What is my name?", history=history, max_new_tokens=4, api_name="/generate_text")
    assert isinstance(answer, str)
    outputs = server["settings"].output_dir
    (recipe,) = [
        json.loads(p.read_text())
        for p in outputs.rglob("*.json")
        if "what-is-my-name" in p.name and json.loads(p.read_text()).get("tab") == "text"
    ]
    assert [m["content"] for m in recipe["messages"][1:]] == [m["content"] for m in history] + ["What is my name?"]
