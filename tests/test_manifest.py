"""The curated Hub repositories, checked offline against their recorded file listings (core/hub_manifest.json): what
the studio would download for each, that every one has weights it may load, the size said before a download, and a
model the memory budget cannot hold refused before a byte of it is fetched."""

import pytest

from core import enhance, hub
from core.errors import ModelUnavailable
from core.models import ModelCache, memory_needed
from core.settings import Settings
from tabs.faceswap import neural
from tabs.image import control, ip_adapter
from tabs.image.choices import CURATED as IMAGE_MODELS
from tabs.image.pipelines import download_patterns as image_patterns
from tabs.image.pipelines import load_image_pipeline
from tabs.music.engine import CURATED as MUSIC_MODELS
from tabs.music.engine import download_patterns as music_patterns
from tabs.text.engine import CURATED as TEXT_MODELS
from tabs.train.engine import BASES as TRAIN_BASES
from tabs.video.checkpoints import CURATED as VIDEO_FILES
from tabs.video.engine import CURATED as VIDEO_MODELS
from tabs.voice.clone import CODEC
from tabs.voice.voices import HIBARI_REPO, MMS

CONTROLNETS = sorted({repo for family in control.CURATED.values() for repo in family.values()} - {"tiny:controlnet"})
NEVER = (".bin", ".ckpt", ".onnx", ".onnx_data", ".msgpack", ".pt", ".pth")  # pickles and other runtimes' exports


def files_of(repo: str) -> dict:
    listed = hub.manifest().get(repo)
    assert listed is not None, f"{repo} is curated but has no listing in core/hub_manifest.json"
    return listed["files"]


def test_every_curated_repo_has_a_listing():
    curated = [*IMAGE_MODELS, *TEXT_MODELS, *MUSIC_MODELS, *CONTROLNETS, Settings().depth_model]
    curated += [source.repo for source in ip_adapter.CURATED.values()] + [f.repo for f in neural.SOURCES]
    curated += [c.repo for c in (*enhance.UPSCALERS.values(), *enhance.RESTORERS.values())]
    curated += [*MMS, HIBARI_REPO, Settings().voice_clone_model, CODEC, *VIDEO_MODELS]
    curated += [f.repo for f in VIDEO_FILES.values()] + [f.base for f in VIDEO_FILES.values()]
    curated += [Settings().caption_model, *TRAIN_BASES]
    for repo in [r for r in curated if not r.startswith("tiny:")]:
        files = files_of(repo)
        assert files, repo
        assert all(size is None or size > 0 for size in files.values()), repo


UNET_REPOS = sorted(repo for repo in IMAGE_MODELS if "unet/config.json" in (files_of(repo) or {}))
DIT_REPOS = sorted(repo for repo in IMAGE_MODELS if "transformer/config.json" in (files_of(repo) or {}))


def test_every_curated_image_model_is_checked_or_its_listing_is_partial():
    """The gated repos' listings here hold only their root checkpoints: the Hub's own listing chooses their files
    when a user downloads them (the manifest entry says complete: false)."""
    for repo in set(IMAGE_MODELS) - set(UNET_REPOS) - set(DIT_REPOS):
        assert hub.manifest()[repo]["complete"] is False and "model_index.json" not in files_of(repo), repo
    assert {"black-forest-labs/FLUX.1-schnell", "Tongyi-MAI/Z-Image-Turbo", "Qwen/Qwen-Image"} <= set(DIT_REPOS)


@pytest.mark.parametrize("repo", UNET_REPOS + DIT_REPOS)
def test_an_image_model_downloads_one_set_of_safetensors_weights_and_nothing_else(repo):
    files = files_of(repo)
    taken = hub.selected(files, image_patterns(files))
    assert "model_index.json" in taken
    assert not [f for f in taken if "/" not in f and f != "model_index.json"]  # no root single-file checkpoint
    assert not [f for f in taken if f.endswith(NEVER) or ".non_ema." in f]
    weights = [f for f in taken if f.endswith(".safetensors")]
    folders = {f.split("/")[0] for f in weights}
    denoiser = "unet" if repo in UNET_REPOS else "transformer"
    assert {denoiser, "vae", "text_encoder"} <= folders
    for folder in folders:  # one set per part: fp16 where the repo has it, never both; every shard of it
        mine = [f for f in weights if f.startswith(f"{folder}/")]
        assert len({".fp16." in f for f in mine}) == 1, folder
        shards = [f for f in files if f.startswith(f"{folder}/") and "-of-" in f and f.endswith(".safetensors")]
        assert len(mine) == (len(shards) or 1), folder
        assert any(f.startswith(f"{folder}/") and f.endswith("config.json") for f in taken) or shards, folder
    if repo in UNET_REPOS:
        assert all(".fp16." in f for f in weights)  # every curated SD repo has fp16 files: half the download


def test_an_image_repo_without_fp16_files_takes_its_full_weights():
    listing = {"model_index.json": 1, "unet/config.json": 1, "unet/diffusion_pytorch_model.safetensors": 1}
    listing |= {"sd.safetensors": 1, "unet/model.onnx": 1, "unet/diffusion_pytorch_model.bin": 1}
    assert hub.selected(listing, image_patterns(listing)) == [
        "model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    ]  # fmt: skip


def test_sd15_keeps_its_safety_checker():
    files = files_of("stable-diffusion-v1-5/stable-diffusion-v1-5")
    taken = hub.selected(files, image_patterns(files))
    assert "safety_checker/model.fp16.safetensors" in taken and "feature_extractor/preprocessor_config.json" in taken


@pytest.mark.parametrize("repo", TEXT_MODELS)
def test_a_text_model_downloads_its_safetensors_and_tokenizer(repo):
    taken = hub.selected(files_of(repo), hub.ALLOW_PATTERNS)
    assert "model.safetensors" in taken and "config.json" in taken and "tokenizer_config.json" in taken
    assert not [f for f in taken if f.endswith(NEVER) or f.startswith("onnx/")]


@pytest.mark.parametrize("repo", MUSIC_MODELS)
def test_a_music_model_downloads_weights_it_may_load(repo):
    """model.safetensors where the repo has it; musicgen-medium's main has only pytorch_model.bin, which the studio
    reads with torch's weights_only loading. Never audiocraft's state_dict.bin files (another library's format)."""
    files = files_of(repo)
    taken = hub.selected(files, music_patterns(files))
    weights = [f for f in taken if f.endswith((".safetensors", ".bin"))]
    assert weights and not [f for f in weights if "state_dict" in f]
    assert weights == (["model.safetensors"] if "model.safetensors" in files else ["pytorch_model.bin"])


@pytest.mark.parametrize("repo", CONTROLNETS)
def test_a_controlnet_downloads_one_safetensors_file(repo):
    files = files_of(repo)
    taken = hub.selected(files, control.weights(files))
    weights = [f for f in taken if f.endswith(".safetensors")]
    assert "config.json" in taken and len(weights) == 1
    assert (".fp16." in weights[0]) == ("diffusion_pytorch_model.fp16.safetensors" in files)


def test_the_upscalers_and_face_restorers_are_weights_the_studio_reads():
    for curated in (*enhance.UPSCALERS.values(), *enhance.RESTORERS.values()):
        assert curated.file in files_of(curated.repo) and curated.file.endswith(enhance.SUFFIXES)


def test_the_ip_adapters_and_the_neural_engines_files_are_listed():
    files = files_of("h94/IP-Adapter")
    for source in [s for s in ip_adapter.CURATED.values() if not s.repo.startswith("tiny:")]:
        assert source.weight in files and f"{source.encoder}/model.safetensors" in files
    for source in neural.SOURCES:
        assert files_of(source.repo).get(source.path) == pytest.approx(source.megabytes * 1e6, rel=0.01)


def test_memory_needed_counts_half_precision_files_twice_as_float32():
    import torch

    download = hub.Download("stabilityai/sd-turbo", {"unet/x.fp16.safetensors": 1000, "unet/config.json": 5}, [])
    assert memory_needed(download, torch.float32) == 2000 and memory_needed(download, torch.float16) == 1000
    bf16 = hub.Download("Qwen/Qwen2.5-0.5B-Instruct", {"model.safetensors": 988097824}, [])
    assert memory_needed(bf16, torch.float32) == 2 * 988097824  # stored in bf16, computed in float32 on a CPU


def test_the_size_is_said_before_a_download_and_a_model_over_budget_is_refused(monkeypatch, tmp_path):
    """Pretend the Hub is reachable (HF_HUB_OFFLINE keeps any real call from leaving): sd-turbo's fp16 files are
    2.6 GB, 5.2 GB as float32 on a CPU. A 1 GB budget refuses it with the numbers before any download; a large one
    says the size, then tries the download."""
    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # nothing of it on this machine
    said = []

    def get_sd_turbo(budget: int) -> None:
        cache, progress = ModelCache(budget_bytes=budget, device="cpu"), lambda share, text: said.append(text)
        options = dict(setting="STUDIO_IMAGE_MODEL", allow_patterns=image_patterns, progress=progress)
        with cache.model("image", "stabilityai/sd-turbo", load_image_pipeline, **options):
            pass

    with pytest.raises(ModelUnavailable, match=r"needs about 5\.2 GB of memory as float32 on cpu; .* is 1\.0 GB"):
        get_sd_turbo(10**9)
    assert not any("Downloading" in s for s in said)
    with pytest.raises(ModelUnavailable):  # the download itself cannot happen here
        get_sd_turbo(100 * 10**9)
    assert "Downloading stabilityai/sd-turbo (2.6 GB; once, then it is kept on this machine)…" in said


def test_the_space_card_lists_every_curated_model():
    """A Hugging Face Space links the models its README's front matter lists: all the curated ones."""
    from pathlib import Path

    card = (Path(__file__).resolve().parent.parent / "README.md").read_text().split("---")[1]
    listed = [line.strip()[2:] for line in card.split("models:")[1].splitlines()[1:] if line.startswith("  - ")]
    assert listed == list(hub.manifest())


@pytest.mark.parametrize("repo", sorted(MMS))
def test_a_vits_voice_downloads_its_safetensors_and_tokenizer_only(repo):
    from tabs.voice.voices import vits_patterns

    files = files_of(repo)
    taken = hub.selected(files, vits_patterns(files))
    assert {"config.json", "model.safetensors", "vocab.json", "tokenizer_config.json"} <= set(taken)
    assert not [f for f in taken if f.endswith(NEVER)]


def test_the_hibari_voices_listed_are_the_files_its_registry_checks():
    from tabs.voice.voices import hibari_registry

    listed = files_of(HIBARI_REPO)
    wanted = {f"voices/{v['file']}": v["bytes"] for v in hibari_registry().values() if not v.get("bundled")}
    assert listed == wanted


def test_the_cloning_model_downloads_its_safetensors_shards_and_the_budget_knows_its_size():
    repo = Settings().voice_clone_model
    files = files_of(repo)
    taken = hub.selected(files, hub.ALLOW_PATTERNS)
    assert {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "config.json"} <= set(taken)
    assert not [f for f in taken if f.endswith(NEVER)]
    download = hub.Download(repo, {f: files[f] for f in taken}, taken)
    assert 6.4e9 < memory_needed(download, "float32") < 6.5e9  # Dia runs in float32 (bf16 is slow on CPUs)
