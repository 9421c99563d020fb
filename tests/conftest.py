"""Shared fixtures: offline environment, tiny models built once per session, one running studio server.

The environment is set before gradio, gradio_client or huggingface_hub are imported, so nothing leaves the
machine: no analytics, no telemetry, no Hub (HF_HOME points at an empty folder).
"""

import os
import tempfile
from pathlib import Path

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="studio-tests-"))
os.environ.update(
    GRADIO_ANALYTICS_ENABLED="False",
    HF_HUB_OFFLINE="1",
    HF_HUB_DISABLE_TELEMETRY="1",
    HF_HOME=str(_SESSION_TMP / "hf-home"),
    GRADIO_TEMP_DIR=str(_SESSION_TMP / "gradio-tmp"),
    TOKENIZERS_PARALLELISM="false",
)
for _name in [k for k in os.environ if k.startswith("STUDIO_")]:  # the developer's own settings must not leak in
    del os.environ[_name]

import pytest  # noqa: E402
from helpers import connect, running_studio  # noqa: E402

from core import tiny  # noqa: E402
from core.settings import Settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"

# Test tiers (registered in pyproject.toml), so a contributor can run the fast ones alone: `pytest -m unit`,
# `-m "unit or engine"`. A test marked with a tier keeps it; the others get one from the fixtures they use.
TIERS = ("unit", "engine", "api", "browser")
SERVERS = {"server", "client", "classroom_server", "locked_server"}  # a running studio: api
MODELS = {"settings", "shared_cache", "tiny_dir", "tiny_text", "tiny_image", "tiny_music"}  # tiny models: engine


def pytest_collection_modifyitems(items):
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        used = set(item.fixturenames)
        tier = "browser" if "page" in used else "api" if used & SERVERS else "engine" if used & MODELS else "unit"
        item.add_marker(tier)


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    return _SESSION_TMP / "tiny"


@pytest.fixture(scope="session")
def tiny_text(tiny_dir) -> Path:
    """A tiny Qwen2ForCausalLM folder (random weights, real classes), built once per session."""
    return tiny.ensure("tiny:qwen2", tiny_dir)


@pytest.fixture(scope="session")
def tiny_image(tiny_dir) -> Path:
    """A tiny StableDiffusionPipeline folder (sd-turbo's classes, random weights), built once per session."""
    return tiny.ensure("tiny:stable-diffusion", tiny_dir)


@pytest.fixture(scope="session")
def tiny_music(tiny_dir) -> Path:
    """A tiny MusicgenForConditionalGeneration folder (musicgen-small's classes, random weights)."""
    return tiny.ensure("tiny:musicgen", tiny_dir)


@pytest.fixture
def settings(tmp_path, tiny_text, tiny_image, tiny_music, tiny_dir) -> Settings:
    """Settings for engine tests: the tiny models as local folders, outputs in a fresh folder."""
    return Settings(
        text_model=str(tiny_text),
        image_model=str(tiny_image),
        music_model=str(tiny_music),
        output_dir=tmp_path / "outputs",
        cache_dir=tiny_dir.parent,
        offline=True,
        device="cpu",
    )


@pytest.fixture(scope="session")
def shared_cache():
    from core.models import ModelCache

    return ModelCache(device="cpu", offline=True, tiny_dir=_SESSION_TMP / "tiny")


@pytest.fixture(scope="session")
def lora_dir(tiny_image):
    """style.safetensors (diffusers' format), kohya.safetensors (the same weights, Kohya's keys), a pickled
    model.ckpt (never offered), and wrongbase.safetensors (a LoRA for a wider model than the tiny one)."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder = _SESSION_TMP / "loras"  # the session server's STUDIO_LORA_DIR too
    folder.mkdir(exist_ok=True)
    unet = UNet2DConditionModel.from_pretrained(tiny_image / "unet")
    torch.manual_seed(0)
    config = LoraConfig(
        r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False
    )
    unet.add_adapter(config)
    weights = get_peft_model_state_dict(unet)
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=weights, weight_name="style.safetensors")
    (folder / "detail_v1.5.safetensors").write_bytes((folder / "style.safetensors").read_bytes())  # a dotted name
    kohya = {}
    for key, value in weights.items():  # down_blocks.0...to_q.lora_A.weight -> lora_unet_down_blocks_0_..._to_q
        module, kind = key.rsplit(".lora_", 1)
        name = "lora_unet_" + module.replace(".", "_")
        kohya[f"{name}.lora_{'down' if kind.startswith('A') else 'up'}.weight"] = value.contiguous()
        kohya[f"{name}.alpha"] = torch.tensor(4.0)
    save_file(kohya, folder / "kohya.safetensors")
    wider = {k: torch.randn(v.shape[0] * 2, v.shape[1] * 2) for k, v in weights.items()}
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=wider, weight_name="wrongbase.safetensors")
    (folder / "model.ckpt").write_bytes(b"a pickle would go here")
    return folder


@pytest.fixture(scope="session")
def server(tiny_text, tiny_image, tiny_music, tiny_dir):
    """One studio server for the API and browser tests."""
    loras = _SESSION_TMP / "loras"  # filled by the lora_dir fixture when a test asks for it
    with running_studio(tiny_dir, _SESSION_TMP / "server-outputs", warm=True, concurrency=2, lora_dir=loras) as (
        url,
        demo,
        s,
    ):
        yield {"url": url, "demo": demo, "settings": s, "cache": demo.studio_cache}


@pytest.fixture
def client(server):
    return connect(server["url"])


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium, with nothing that reaches out to the network."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }
