"""Faults and load: the studio keeps serving, users do not disturb each other, and nothing made is lost."""

import re
import shutil
import threading
import time

import httpx
import psutil
import pytest
import torch
from helpers import connect, running_studio

from core import outputs
from core.errors import UserError
from core.jobs import Stops
from core.models import ModelCache, ModelKey
from tabs.image.engine import ImageParams, generate_image
from tabs.text.engine import TextParams, generate_text, load_text_model


def test_one_users_stop_never_stops_another():
    stops = Stops()
    a, b = stops.start("session-a", "music"), stops.start("session-b", "music")
    other_tab = stops.start("session-a", "image")
    assert stops.stop("session-a", "music") == (1, 0)
    assert a.is_set() and not b.is_set() and not other_tab.is_set()
    assert stops.stop("session-c", "music") == (0, 0)  # nothing running there: nothing happens


def test_stop_cancels_a_request_still_waiting_in_the_queue():
    stops = Stops()
    running = stops.start("session-a", "image")
    waiting, later, theirs = (stops.ticket(s, "image") for s in ("session-a", "session-a", "session-b"))
    assert stops.stop("session-a", "image") == (1, 2)  # the running job and both waiting requests of this session
    assert running.is_set()
    for ticket in (waiting, later):
        with pytest.raises(UserError, match="Stopped before it started"):
            stops.start("session-a", "image", ticket)
    assert not stops.start("session-b", "image", theirs).is_set()  # another user's waiting request still runs
    fresh = stops.ticket("session-a", "image")  # asking again after a Stop works
    assert not stops.start("session-a", "image", fresh).is_set()
    assert not stops.start("session-a", "image", "unknown-ticket").is_set()  # API clients have no ticket


def test_one_clients_cancel_leaves_the_other_running(server):
    url = server["url"]
    a = connect(url)
    b = connect(url)
    job_a = a.submit(prompt="long one", max_new_tokens=2000, seed=1, api_name="/generate_text")
    job_b = b.submit(prompt="other user", max_new_tokens=120, seed=2, temperature=0, api_name="/generate_text")
    deadline = time.monotonic() + 30
    while not job_a.outputs() and time.monotonic() < deadline:
        time.sleep(0.05)
    job_a.cancel()
    answer = job_b.result(timeout=120)
    assert answer and job_b.status().success
    expected = b.predict(prompt="other user", max_new_tokens=120, seed=2, temperature=0, api_name="/generate_text")
    assert answer == expected  # B got its whole answer, untouched by A's cancel


def test_out_of_memory_frees_the_cache_and_the_next_request_works(settings):
    cache = ModelCache(device="cpu", offline=True)
    list(generate_text(cache, settings, "warm up", params=TextParams(max_new_tokens=2)))
    with cache.model("text", settings.text_model, load_text_model, setting="STUDIO_TEXT_MODEL") as loaded:

        def fail_once(module, args):
            handle.remove()
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

        handle = loaded.model.register_forward_pre_hook(fail_once)
    with pytest.raises(torch.OutOfMemoryError):
        list(generate_text(cache, settings, "this one fails", params=TextParams(max_new_tokens=4)))
    assert cache.snapshot() == []  # everything idle was unloaded
    final = list(generate_text(cache, settings, "and this one works", params=TextParams(max_new_tokens=4)))[-1]
    assert final.done and cache.loads == 2


def test_out_of_memory_reaches_the_user_as_a_sentence():
    from core.ui import _to_gradio_error

    message = _to_gradio_error(torch.OutOfMemoryError("CUDA out of memory")).message
    assert message.startswith("The studio ran out of memory") and "unload" in message
    assert re.search(r"\(\d+\.\d of \d+\.\d GB of RAM free now\)", message)  # the numbers, where it happened
    cuda = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has a total capacity of 8 GB")
    assert "(it asked for 2.50 GiB more; " in _to_gradio_error(cuda).message
    assert "ran out of memory" in _to_gradio_error(RuntimeError("DefaultCPUAllocator: can't allocate memory")).message


def test_an_unwritable_output_folder_still_delivers_the_result(shared_cache, settings, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("outputs cannot be made under a file")
    s = settings.replace(output_dir=blocker / "outputs")
    final = list(generate_image(shared_cache, s, ImageParams("a boat", steps=2, width=64, height=64, seed=1)))[-1]
    saved = final.images[0]
    assert saved.exists() and outputs.UNSAVED_DIR in saved.parents and saved.with_suffix(".json").exists()
    assert "Could not save in" in caplog.text and "download it from the page" in caplog.text
    text = list(generate_text(shared_cache, s, "hello", params=TextParams(max_new_tokens=2)))[-1]
    assert text.saved.exists() and outputs.UNSAVED_DIR in text.saved.parents


def test_writes_are_atomic_and_never_damage_what_is_saved(tmp_path):
    target = tmp_path / "kept.txt"
    outputs.atomic_write(target, "first version")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with outputs.atomic_target(target):
            raise Boom  # a writer that fails halfway
    assert target.read_text() == "first version"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]  # no temporary file left behind


def test_memory_stays_bounded_when_two_models_alternate(tiny_text, tmp_path):
    """Two models that do not fit the budget together, used alternately 8 times: the cache holds one at a time,
    and the process does not grow. (Each eviction runs a full garbage collection, which late in the suite's big
    process takes seconds: hence 8, not more.)"""
    other = tmp_path / "second-model"
    shutil.copytree(tiny_text, other)
    with ModelCache(device="cpu").acquire(
        ModelKey("t", "probe", None, "cpu", "float32"), lambda: load_text_model(tiny_text, "cpu", torch.float32)
    ) as probe:
        from core.models import measure_bytes

        one = measure_bytes(probe)
    cache = ModelCache(budget_bytes=int(one * 1.5), device="cpu", offline=True)
    process = psutil.Process()
    rss = []
    for i in range(8):
        folder = tiny_text if i % 2 == 0 else other
        with cache.model("text", str(folder), load_text_model, setting="STUDIO_TEXT_MODEL"):
            assert cache.used_bytes() <= cache.budget_bytes
        rss.append(process.memory_info().rss)
    assert cache.loads == 8 and len(cache.snapshot()) == 1
    assert max(rss[4:]) - rss[3] < 50 * 1024**2  # no growth beyond noise after warm-up


@pytest.mark.api  # its own studio, with a queue of one
def test_a_full_queue_says_busy(tiny_dir, tmp_path):
    with running_studio(tiny_dir, tmp_path / "out", concurrency=1, max_queue=1) as (url, _, _):
        clients = [connect(url) for _ in range(4)]
        jobs = [c.submit(prompt="busy", max_new_tokens=400, temperature=0, api_name="/generate_text") for c in clients]
        errors = []
        for job in jobs:
            try:
                job.result(timeout=120)
            except Exception as exc:  # the ones the full queue turned away
                errors.append(str(exc))
        assert errors and all("queue is full" in e.lower() or "try again" in e.lower() for e in errors), errors
        assert clients[0].predict(prompt="after", max_new_tokens=2, api_name="/generate_text")


def test_cancel_mid_run_frees_image_and_music_workers(client, server):
    for api, kwargs in (
        ("/generate_music", {"prompt": "long ambient", "duration": 30}),
        ("/generate_image", {"prompt": "slow", "steps": 100, "width": 512, "height": 512}),
    ):
        job = client.submit(**kwargs, seed=1, api_name=api)
        deadline = time.monotonic() + 60
        while not job.outputs() and time.monotonic() < deadline:
            time.sleep(0.05)
        for attempt in range(3):  # on a loaded machine the cancel request itself may time out: send it again
            try:
                job.cancel()
                break
            except httpx.TimeoutException:
                if attempt == 2:
                    raise
        deadline = time.monotonic() + 30
        while any(m["in_use"] for m in server["cache"].snapshot()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(m["in_use"] for m in server["cache"].snapshot()), api
        assert not any(t.name in ("image-generate", "music-generate") and t.is_alive() for t in threading.enumerate())
    assert client.predict(prompt="ok", max_new_tokens=2, api_name="/generate_text")


def test_stopping_with_the_stop_flag_saves_nothing(shared_cache, settings):
    stop = threading.Event()
    stop.set()
    with pytest.raises(UserError, match="Stopped"):
        list(generate_image(shared_cache, settings, ImageParams("x", steps=5, width=64, height=64), stop=stop))
    assert not settings.output_dir.exists()
