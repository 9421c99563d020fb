from pathlib import Path

import pytest

from core.settings import DEFAULT_TEXT_MODEL, TINY_TEXT_MODEL, Settings, from_env


def test_defaults_without_environment():
    s = from_env({})
    assert s.port == 7860 and s.host == "127.0.0.1" and s.device == "auto"
    assert s.text_model == DEFAULT_TEXT_MODEL and s.allow_custom_models is False
    assert s.output_dir == Path("outputs") and s.memory_budget_bytes is None


def test_environment_overrides_and_flags_win():
    env = {
        "STUDIO_PORT": "9000",
        "STUDIO_OFFLINE": "yes",
        "STUDIO_MEMORY_BUDGET_GB": "1.5",
        "STUDIO_TEXT_MODEL": "/models/qwen",
        "STUDIO_ALLOW_CUSTOM_MODELS": "1",
    }
    s = from_env(env, port=9100)
    assert s.port == 9100 and s.offline is True and s.allow_custom_models is True
    assert s.memory_budget_bytes == int(1.5 * 1024**3) and s.text_model == "/models/qwen"


def test_hf_hub_offline_implies_offline():
    assert from_env({"HF_HUB_OFFLINE": "1"}).offline is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STUDIO_PORT": "eighty"}, "STUDIO_PORT must be a int"),
        ({"STUDIO_OFFLINE": "maybe"}, "STUDIO_OFFLINE must be 1/0"),
        ({"STUDIO_DEVICE": "tpu"}, "STUDIO_DEVICE must be auto"),
        ({"STUDIO_MEMORY_BUDGET_GB": "-2"}, "STUDIO_MEMORY_BUDGET_GB must be a positive"),
        ({"STUDIO_PORT": "70000"}, "between 1 and 65535"),
    ],
)
def test_bad_values_say_what_is_wrong(env, message):
    with pytest.raises(ValueError, match=message):
        from_env(env)


def test_tiny_replaces_the_default_models():
    s = Settings(tiny=True)
    assert s.model_for("text") == TINY_TEXT_MODEL
    assert Settings().model_for("text") == DEFAULT_TEXT_MODEL


def test_gradio_hosting_variables_are_honoured():
    s = from_env({"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861"})
    assert (s.host, s.port) == ("0.0.0.0", 7861)
    assert from_env({"GRADIO_SERVER_NAME": "0.0.0.0", "STUDIO_HOST": "127.0.0.2"}).host == "127.0.0.2"


def test_a_tab_whose_model_runs_elsewhere_sends_more_requests_at_once():
    local = Settings(concurrency=2)
    assert [local.jobs_at_once(tab) for tab in ("text", "image", "music", "faceswap")] == [2, 2, 2, 2]
    text = local.replace(text_endpoint="http://server:8000/v1")
    assert text.jobs_at_once("text") == 16 and text.jobs_at_once("image") == 2
    ray = local.replace(ray_address="auto", remote_concurrency=32)
    assert [ray.jobs_at_once(tab) for tab in ("text", "image", "music", "faceswap", "gan")] == [2, 32, 32, 32, 2]
