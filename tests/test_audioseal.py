"""AudioSeal, when the operator provides its weights: the studio's loading (weights_only), marking and detection
path, exercised with checkpoints of the real classes written here with random weights. Random weights cannot
prove that a mark is found again; they prove that the files load safely and that the save and Verify paths
use them."""

import numpy as np
import pytest
import soundfile as sf
import torch

from core import provenance
from tabs.music.engine import MusicParams, generate_music
from tabs.verify.engine import verify_file


@pytest.fixture(scope="module")
def audioseal_dir(tmp_path_factory):
    from audioseal.builder import AudioSealDetectorConfig, AudioSealWMConfig, create_detector, create_generator
    from audioseal.loader import AudioSeal, load_local_model_config
    from omegaconf import OmegaConf

    folder = tmp_path_factory.mktemp("audioseal")
    torch.manual_seed(0)
    for card, kind, make, name in (
        ("audioseal_wm_16bits", AudioSealWMConfig, create_generator, "generator_base.pth"),
        ("audioseal_detector_16bits", AudioSealDetectorConfig, create_detector, "detector_base.pth"),
    ):
        config = OmegaConf.to_container(load_local_model_config(card))
        config.pop("checkpoint")
        model = make(AudioSeal.parse_config(config, kind, nbits=16))
        torch.save({"model": model.state_dict()}, folder / name)
    return folder


def test_music_is_watermarked_and_verify_reads_the_detector(shared_cache, settings, audioseal_dir):
    plain = list(generate_music(shared_cache, settings, MusicParams("calm piano", duration=1, seed=4)))[-1]
    marked_settings = settings.replace(audioseal_dir=audioseal_dir)
    marked = list(generate_music(shared_cache, marked_settings, MusicParams("calm piano", duration=1, seed=4)))[-1]
    assert marked.recipe["provenance"]["watermark"] == "AudioSeal, payload GA"
    a, b = (sf.read(u.path, dtype="float32")[0] for u in (plain, marked))
    assert a.shape == b.shape and not np.array_equal(a, b) and np.abs(b).max() <= 0.99
    report = verify_file(marked.path, marked_settings)
    assert 0 <= report["watermark"]["score"] <= 1 and "AudioSeal watermark: detection score" in report["summary"]
    assert report["content_credentials"]["present"]


def test_a_pickled_object_in_the_checkpoint_is_refused(tmp_path, audioseal_dir):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(audioseal_dir, bad)

    class Payload:
        def __reduce__(self):
            return (print, ("this would run on load",))

    torch.save({"model": {}, "evil": Payload()}, bad / "generator_base.pth")
    from core.models import ModelCache

    with pytest.raises(Exception, match="(?i)weights_only|unpickl|unsupported"):
        with provenance.audioseal_model(ModelCache(device="cpu"), bad):
            pass
