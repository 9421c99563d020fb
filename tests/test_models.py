import threading
import time

import pytest
import torch

from core import hub
from core.errors import ModelUnavailable
from core.models import ModelCache, ModelKey, measure_bytes
from tabs.text.engine import load_text_model

MB = 1_000_000


def key(name: str) -> ModelKey:
    return ModelKey("test", name, None, "cpu", "float32")


def weights(megabytes: int) -> torch.nn.Module:
    """A module holding `megabytes` of float32 parameters."""
    return torch.nn.Linear(megabytes * MB // 4, 1, bias=False)


def test_measure_bytes_counts_parameters_once():
    layer = weights(2)
    assert measure_bytes(layer) == 2 * MB
    assert measure_bytes({"a": layer, "b": [layer]}) == 2 * MB


def test_second_request_loads_nothing():
    cache = ModelCache(budget_bytes=100 * MB, device="cpu")
    calls = []

    def loader():
        calls.append(1)
        return weights(1)

    with cache.acquire(key("a"), loader) as first:
        pass
    with cache.acquire(key("a"), loader) as second:
        pass
    assert first is second and len(calls) == 1 and cache.loads == 1


def test_single_flight_eight_threads_load_once():
    cache = ModelCache(budget_bytes=100 * MB, device="cpu")
    calls, results = [], []
    start = threading.Barrier(8)

    def loader():
        calls.append(1)
        time.sleep(0.3)  # long enough that every thread asks while the load runs
        return weights(1)

    def ask():
        start.wait()
        with cache.acquire(key("shared"), loader) as model:
            results.append(model)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 8 and all(r is results[0] for r in results)


def test_a_failed_load_reaches_every_waiter_and_can_be_retried():
    cache = ModelCache(budget_bytes=100 * MB, device="cpu")
    with pytest.raises(RuntimeError, match="broken"):
        with cache.acquire(key("x"), lambda: (_ for _ in ()).throw(RuntimeError("broken"))):
            pass
    with cache.acquire(key("x"), lambda: weights(1)) as model:
        assert isinstance(model, torch.nn.Linear)


def test_eviction_is_least_recently_used_under_the_budget():
    cache = ModelCache(budget_bytes=5 * MB, device="cpu")
    for name in ("a", "b"):
        with cache.acquire(key(name), lambda: weights(2)):
            pass
    with cache.acquire(key("a"), lambda: weights(2)):  # "a" is now more recent than "b"
        pass
    with cache.acquire(key("c"), lambda: weights(2), estimate_bytes=2 * MB):
        pass
    loaded = {m["model"] for m in cache.snapshot()}
    assert loaded == {"a", "c"} and cache.used_bytes() <= 5 * MB


def test_a_model_in_use_is_never_evicted():
    cache = ModelCache(budget_bytes=3 * MB, device="cpu")
    with cache.acquire(key("busy"), lambda: weights(2)) as busy:
        with cache.acquire(key("next"), lambda: weights(2), estimate_bytes=2 * MB):
            assert {m["model"] for m in cache.snapshot()} == {"busy", "next"}
        assert busy.weight.numel() > 0
    # once both are idle, the next load evicts the older one
    with cache.acquire(key("third"), lambda: weights(2), estimate_bytes=2 * MB):
        pass
    assert len(cache.snapshot()) == 1


def test_unload_keeps_models_in_use():
    cache = ModelCache(budget_bytes=10 * MB, device="cpu")
    with cache.acquire(key("idle"), lambda: weights(1)):
        pass
    with cache.acquire(key("busy"), lambda: weights(1)):
        assert cache.unload() == (1, 1)
    assert [m["model"] for m in cache.snapshot()] == ["busy"]


def test_tiny_text_model_loads_once_through_the_cache(tiny_text):
    cache = ModelCache(device="cpu", offline=True)
    for _ in range(2):
        with cache.model("text", str(tiny_text), load_text_model, setting="STUDIO_TEXT_MODEL") as loaded:
            assert type(loaded.model).__name__ == "Qwen2ForCausalLM"
    assert cache.loads == 1
    assert cache.snapshot()[0]["megabytes"] > 0


@pytest.mark.parametrize("offline", [True, False])
def test_a_missing_hub_model_fails_fast_with_a_sentence(offline, monkeypatch):
    # offline=False: the Hub is "unreachable" (a closed local port), as on a machine with no internet
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    hub._probe_cache.clear()
    cache = ModelCache(device="cpu", offline=offline)
    start = time.perf_counter()
    with pytest.raises(ModelUnavailable) as err:
        with cache.model("text", "Qwen/Qwen2.5-0.5B-Instruct", load_text_model, setting="STUDIO_TEXT_MODEL"):
            pass
    # No wait for the network: a timeout and its retries would take 10 s each (huggingface_hub's); 0.4 s measured
    # here, a few seconds on a loaded machine.
    assert time.perf_counter() - start < 20
    message = str(err.value)
    assert "Qwen/Qwen2.5-0.5B-Instruct" in message and "STUDIO_TEXT_MODEL" in message
    assert "Connect to the internet once" in message
    assert cache.snapshot() == []


@pytest.mark.parametrize(
    ("model_id", "fragment"),
    [("./no/such/folder", "does not exist"), ("not a model id!", "neither a local folder"), ("", "No model")],
)
def test_bad_model_names_get_a_sentence(model_id, fragment):
    with pytest.raises(ModelUnavailable, match=fragment):
        hub.resolve(model_id, setting="STUDIO_TEXT_MODEL", offline=True)


def test_safetensors_only(tmp_path, tiny_text):
    """A folder whose weights are a pickle (pytorch_model.bin) is refused with a sentence, never unpickled."""
    import shutil

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_text, folder)
    (folder / "model.safetensors").unlink()
    torch.save({"weights": torch.zeros(1)}, folder / "pytorch_model.bin")
    cache = ModelCache(device="cpu", offline=True)
    with pytest.raises(ModelUnavailable, match="no safetensors weights"):
        with cache.model("text", str(folder), load_text_model, setting="STUDIO_TEXT_MODEL"):
            pass


def test_a_truncated_weights_file_is_a_sentence(tmp_path, tiny_text):
    import shutil

    folder = tmp_path / "truncated"
    shutil.copytree(tiny_text, folder)
    weights_file = folder / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes()[:1000])
    cache = ModelCache(device="cpu", offline=True)
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        with cache.model("text", str(folder), load_text_model, setting="STUDIO_TEXT_MODEL"):
            pass
