"""The Text tab on an OpenAI-compatible server: a real third-party one, `transformers serve` (transformers[serving]),
serving the tiny Qwen2 folder on a loopback port; and a server that answers garbage."""

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from helpers import connect, free_port, running_studio

from core.errors import UserError
from tabs.text.engine import TextParams, generate_text


@contextlib.contextmanager
def transformers_serve(folder, *flags):
    """`transformers serve FOLDER` on a free loopback port; yields its /v1 address."""
    port = free_port()
    cli = os.path.join(os.path.dirname(sys.executable), "transformers")
    server = subprocess.Popen(
        [cli, "serve", str(folder), "--host", "127.0.0.1", "--port", str(port), *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "transformers serve did not start in 120 s"
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def text_server(tiny_text):
    with transformers_serve(tiny_text) as url:
        yield url


@pytest.fixture
def remote(settings, text_server):
    return settings.replace(text_endpoint=text_server)


def answer(cache, settings, prompt="Hello there", stop=None, **params):
    return list(generate_text(cache, settings, prompt, params=TextParams(**params), stop=stop))


def test_the_answer_streams_from_the_server_and_is_saved_here(shared_cache, remote, tiny_text):
    loads = shared_cache.loads
    updates = answer(shared_cache, remote, max_new_tokens=24, temperature=0)
    final = updates[-1]
    assert final.done and not final.stopped and final.tokens > 0 and len(updates) > 2  # it came in pieces
    recipe = json.loads(final.saved.with_suffix(".json").read_text())
    assert recipe["server"]["endpoint"] == remote.text_endpoint and recipe["model"] == str(tiny_text)
    assert recipe["answer"] == final.text and "max_tokens" in recipe["server"]["settings_passed"]
    again = answer(shared_cache, remote, max_new_tokens=24, temperature=0)[-1]
    assert again.text == final.text  # greedy: the same answer
    assert shared_cache.loads == loads  # the studio loaded no model of its own for it


def test_stop_closes_the_stream_and_the_server_keeps_serving(shared_cache, remote):
    stop = threading.Event()
    updates = []
    for update in generate_text(
        shared_cache, remote, "Tell me a long story", params=TextParams(max_new_tokens=512, temperature=0), stop=stop
    ):
        updates.append(update.tokens)
        if update.tokens >= 3:
            stop.set()
    final = update
    assert final.stopped and final.tokens < 100  # asked for 512
    assert answer(shared_cache, remote, max_new_tokens=8, temperature=0)[-1].done


def test_eight_users_at_once(shared_cache, remote):
    results, errors = [], []

    def user(i):
        try:
            results.append(answer(shared_cache, remote, f"Hello number {i}", max_new_tokens=12, seed=i)[-1])
        except Exception as exc:  # noqa: BLE001 (collected, then asserted)
            errors.append(exc)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors and len(results) == 8 and all(r.done and r.saved.exists() for r in results)


def test_a_server_that_is_down_or_answers_garbage_gets_one_sentence(shared_cache, settings):
    down = settings.replace(text_endpoint=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(UserError, match=r"The text server at http://127.0.0.1:\d+/v1 cannot be reached"):
        answer(shared_cache, down)

    class Garbage(BaseHTTPRequestHandler):
        def do_GET(self):  # /v1/models, as it should be
            self._send(b'{"data": [{"id": "junk"}]}')

        def do_POST(self):  # a stream that is not one
            self._send(b"data: this is not json\n\n")

        def _send(self, body):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    junk = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=junk.serve_forever, daemon=True).start()
    try:
        bad = settings.replace(text_endpoint=f"http://127.0.0.1:{junk.server_address[1]}/v1")
        with pytest.raises(UserError, match="answered something that is not an OpenAI-compatible stream"):
            answer(shared_cache, bad)
    finally:
        junk.shutdown()


def test_a_model_the_server_does_not_serve(shared_cache, remote):
    custom = remote.replace(allow_custom_models=True)
    with pytest.raises(UserError, match=f"The text server at {remote.text_endpoint} .*(no model|refused)"):
        list(
            generate_text(shared_cache, custom, "hi", model="someone/other-model", params=TextParams(max_new_tokens=8))
        )


def test_the_studio_api_answers_through_the_server(tiny_dir, text_server, tmp_path):

    with running_studio(tiny_dir, tmp_path / "out", text_endpoint=text_server) as (url, _demo, _s):
        client = connect(url)
        result = client.predict(prompt="Hello", max_new_tokens=8, temperature=0, api_name="/generate_text")
        assert isinstance(result, str) and next((tmp_path / "out").rglob("*.md")).exists()


@pytest.fixture(scope="module")
def batching_server(tiny_text):
    """The same server with continuous batching: requests join and leave one running batch, token by token."""
    with transformers_serve(tiny_text, "--continuous-batching") as url:
        yield url


def test_a_continuous_batching_server_serves_eight_users_at_once_and_stops_one(
    shared_cache, settings, batching_server
):
    remote = settings.replace(text_endpoint=batching_server)
    with ThreadPoolExecutor(8) as users:
        answers = list(
            users.map(
                lambda i: answer(shared_cache, remote, f"Hello number {i}", max_new_tokens=12, seed=i)[-1], range(8)
            )
        )
    assert all(a.done and a.tokens > 0 and a.saved.exists() for a in answers)
    saved = {a.saved for a in answers}
    assert len(saved) == 8  # each user's own transcript
    stop = threading.Event()
    for update in generate_text(
        shared_cache, remote, "Tell me a long story", params=TextParams(max_new_tokens=512, temperature=0), stop=stop
    ):
        if update.tokens >= 1:
            stop.set()
    assert update.stopped and update.tokens < 512
    assert answer(shared_cache, remote, max_new_tokens=8, temperature=0)[-1].done  # the server keeps serving
