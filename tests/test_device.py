import logging

import pytest
import torch

from core import device


def test_auto_falls_back_to_cpu_with_a_warning(caplog):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the fallback is for machines without one")
    with caplog.at_level(logging.WARNING, logger="studio.device"):
        assert device.pick_device("auto") == "cpu"
    assert "running on the CPU" in caplog.text


def test_a_missing_requested_device_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        device.pick_device("cuda")
    with pytest.raises(ValueError, match="Unknown device"):
        device.pick_device("tpu")


def test_cpu_is_always_there_and_uses_float32():
    assert device.pick_device("cpu") == "cpu"
    assert device.pick_dtype("cpu") == torch.float32


def test_text_models_are_never_fp16(monkeypatch):
    """A GPU without bf16 (T4, V100) gets fp16 for pictures and sound, fp32 for text (Qwen2 overflows in fp16)."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert device.pick_dtype("cuda") == torch.float16
    assert (
        device.pick_dtype("cuda", fp16=False) == torch.float32
        and device.pick_dtype("mps", fp16=False) == torch.float32
    )
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert device.pick_dtype("cuda", fp16=False) == torch.bfloat16


def test_a_text_model_is_loaded_in_the_text_dtype(shared_cache, settings):
    """The Text tab asks the cache for its own dtype (pick_dtype with fp16=False), which keys the loaded model."""
    from tabs.text.engine import TextParams, generate_text

    list(generate_text(shared_cache, settings, "hi", params=TextParams(max_new_tokens=1)))
    (text,) = [m for m in shared_cache.snapshot() if m["kind"] == "text" and m["model"] == settings.text_model]
    assert text["dtype"] == str(device.pick_dtype("cpu", fp16=False)).replace("torch.", "")


def test_budget_is_a_share_of_memory():
    total = device.total_memory_bytes("cpu")
    assert 0 < device.default_budget_bytes("cpu") < total


def test_gpu_decorator_is_a_no_op_off_zerogpu(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)

    def work(x):
        return x * 2

    assert device.gpu()(work) is work and not device.on_zerogpu()


def test_in_passing_thread_returns_raises_and_keeps_the_callers_context():
    import contextvars
    import threading

    from core.device import in_passing_thread

    var = contextvars.ContextVar("request", default="none")
    var.set("this request")  # e.g. Gradio's progress tracking, found through context variables
    caller = threading.current_thread()
    seen = in_passing_thread(lambda: (var.get(), threading.current_thread() is not caller))
    assert seen == ("this request", True)
    assert not any(t.name == "studio-passing" for t in threading.enumerate())  # it has ended

    def fail():
        raise ValueError("from the passing thread")

    with pytest.raises(ValueError, match="from the passing thread"):
        in_passing_thread(fail)


def test_a_worker_is_halted_and_joined_when_its_caller_leaves_early():
    import threading
    import time

    from core.device import Worker
    from core.errors import Stopped

    job = Worker("test-worker")
    steps = []

    def work():  # a model call: checks the halt flag at every step, as the tabs' step callbacks do
        while not job.halt.is_set():
            steps.append(job.is_current())
            time.sleep(0.01)
        raise Stopped

    def stream():  # a request's generator streaming progress
        with job.start(work):
            while True:
                yield len(steps)

    updates = stream()
    next(updates)
    while not steps:  # the work is under way
        time.sleep(0.01)
    updates.close()  # what Gradio does when the client goes away
    assert job.finished.is_set() and not any(t.name == "test-worker" for t in threading.enumerate())
    assert all(steps) and not job.is_current()  # is_current() is true on the worker's thread only
    with pytest.raises(Stopped, match="Stopped: nothing was saved"):
        job.result()
    assert Worker("returns").start(lambda: 42).result() == 42
