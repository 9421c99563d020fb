"""The Music engine on a tiny MusicGen built locally (musicgen-small's classes, random weights)."""

import json
import re
import threading

import numpy as np
import pytest
import soundfile as sf
from helpers import drawing_neighbour

from core.errors import UserError
from tabs.music.engine import MusicParams, generate_music


def run(cache, settings, **kwargs):
    params = MusicParams(**{"prompt": "lo fi hip hop with warm piano", "duration": 2, "seed": 1, **kwargs})
    return list(generate_music(cache, settings, params))


@pytest.mark.parametrize("seconds", [1, 2, 3.5])
def test_duration_matches_the_request_to_the_frame(shared_cache, settings, seconds):
    final = run(shared_cache, settings, duration=seconds)[-1]
    info = sf.info(final.path)
    assert info.samplerate == 32000  # the model's own rate
    assert info.frames == round(seconds * 50) * 640  # 50 frames a second, 640 samples a frame
    assert info.subtype == "PCM_16" and info.channels == 1


def test_peak_normalised_without_clipping(shared_cache, settings):
    final = run(shared_cache, settings)[-1]
    audio, _ = sf.read(final.path, dtype="float32")
    assert 0.95 <= np.abs(audio).max() <= 0.99


def test_same_seed_same_audio(shared_cache, settings):
    a = run(shared_cache, settings, seed=5)[-1]
    b = run(shared_cache, settings, seed=5)[-1]
    c = run(shared_cache, settings, seed=6)[-1]
    read = lambda u: sf.read(u.path, dtype="int16")[0]  # noqa: E731
    assert (read(a) == read(b)).all() and not (read(a) == read(c)).all()


def test_a_seed_holds_while_other_threads_draw_random_numbers(shared_cache, settings):
    read = lambda u: sf.read(u.path, dtype="int16")[0]  # noqa: E731
    alone = read(run(shared_cache, settings, seed=8)[-1])
    with drawing_neighbour():
        crowded = read(run(shared_cache, settings, seed=8)[-1])
    assert (crowded == alone).all()


def test_sampling_settings_shape_the_music(shared_cache, settings):
    # (Guidance is not checked here: on random weights the conditional and unconditional logits barely differ.)
    read = lambda u: sf.read(u.path, dtype="int16")[0]  # noqa: E731
    base = read(run(shared_cache, settings, seed=9)[-1])
    assert not (read(run(shared_cache, settings, seed=9, top_k=2)[-1]) == base).all()
    assert not (read(run(shared_cache, settings, seed=9, temperature=0.05)[-1]) == base).all()


def test_recipe_in_the_wav_and_beside_it(shared_cache, settings):
    final = run(shared_cache, settings, prompt="calm jazz", top_k=100, temperature=0.9, guidance_scale=2.5, seed=8)[-1]
    assert final.path.parent.parent.name == "music"
    with sf.SoundFile(final.path) as f:
        tags = f.copy_metadata()
    assert tags["title"] == "calm jazz" and "AI-generated" in tags["copyright"]
    inside = json.loads(tags["comment"])
    assert inside["seed"] == 8 and inside["top_k"] == 100 and inside["guidance_scale"] == 2.5
    beside = json.loads(final.path.with_suffix(".json").read_text())
    assert beside["prompt"] == "calm jazz" and beside["model"] == settings.music_model and beside["seed"] == 8
    assert beside["versions"]["transformers"] and beside["sampling_rate"] == 32000


def test_progress_in_seconds_of_audio(shared_cache, settings, monkeypatch):
    import tabs.music.engine

    monkeypatch.setattr(tabs.music.engine, "UPDATE_EVERY_S", 0.02)
    updates = run(shared_cache, settings, duration=6)
    done = [u.seconds_done for u in updates[:-1]]
    assert len(done) >= 3 and done == sorted(done) and 0 <= done[0] and done[-1] <= 6.0
    assert updates[-1].done and updates[-1].waveform.size == (800, 160)


def test_stop_keeps_nothing(shared_cache, settings):
    stop = threading.Event()
    seen = []
    with pytest.raises(UserError, match="Stopped"):
        for update in generate_music(shared_cache, settings, MusicParams("slow ambient", duration=30), stop=stop):
            seen.append(update)
            stop.set()
    assert seen and not settings.output_dir.exists()
    assert not any(t.name == "music-generate" for t in threading.enumerate())
    assert run(shared_cache, settings)[-1].done  # and the next request works


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"prompt": ""}, "description (prompt) is empty"),
        ({"prompt": "\n\n"}, "description (prompt) is empty"),
        ({"duration": 0}, "duration must be between 1 and 30 seconds"),
        ({"duration": 31}, "duration must be between 1 and 30 seconds"),
        ({"duration": float("nan")}, "duration must be a finite number"),
        ({"temperature": 0}, "temperature must be between"),
        ({"top_p": 1.5}, "top-p (top_p) must be between 0 and 1"),
        ({"top_k": -1}, "top-k (top_k) must be between"),
        ({"seed": "x"}, "seed must be a number"),
    ],
)
def test_bad_input_gets_one_clear_sentence(shared_cache, settings, kwargs, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        run(shared_cache, settings, **kwargs)
    assert not settings.output_dir.exists()


def tone(path, hz=440.0, seconds=3.0, rate=44100):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate)
    return path


def test_chroma_of_a_pure_tone_is_its_pitch_class(tmp_path):
    from tabs.music.clips import CHROMA_DEFAULTS, melody_chroma, read_clip

    for hz, pitch_class in ((440.0, 9), (261.63, 0), (392.0, 7)):  # A4, C4, G4 (C = 0)
        chroma = melody_chroma(*read_clip(tone(tmp_path / f"{hz}.wav", hz)), CHROMA_DEFAULTS)
        assert chroma.shape == (1, 30 * 32000 // 4096 + 1, 12)
        assert chroma[0, 5].argmax().item() == pitch_class and chroma[0, 5].sum().item() == 1


def test_melody_model_is_conditioned_on_the_clip(shared_cache, settings, tmp_path, tiny_dir):
    """The engine hands MusicGen-Melody the clip's chroma: its WAV equals a direct transformers call given that
    chroma (a tiny random model barely reacts to conditioning, so we compare with the library itself)."""
    import torch
    from transformers import AutoTokenizer, MusicgenMelodyForConditionalGeneration

    from core import tiny
    from core.audio import peak_normalise
    from tabs.music.clips import CHROMA_DEFAULTS, melody_chroma, read_clip

    folder = tiny.ensure("tiny:musicgen-melody", tiny_dir)
    s = settings.replace(music_model=str(folder))
    clip = tone(tmp_path / "a.wav")
    final = list(generate_music(shared_cache, s, MusicParams("calm piano", duration=2, seed=3), melody=clip))[-1]
    assert sf.info(final.path).frames == 2 * 32000
    assert final.recipe["melody"]["seconds"] == 3.0 and len(final.recipe["melody"]["sha256"]) == 64

    model = MusicgenMelodyForConditionalGeneration.from_pretrained(folder)
    inputs = dict(AutoTokenizer.from_pretrained(folder)(["calm piano"], padding=True, return_tensors="pt"))
    inputs["input_features"] = melody_chroma(*read_clip(clip), CHROMA_DEFAULTS)
    torch.manual_seed(3)
    with torch.inference_mode():
        audio = model.generate(
            **inputs, do_sample=True, top_k=250, temperature=1.0, guidance_scale=3.0, max_new_tokens=100 + 3
        )[0, 0].numpy()
    expected = (peak_normalise(audio[: 2 * 32000]) * 32767).astype(np.int16)
    got = sf.read(final.path, dtype="int16")[0]
    assert np.abs(got.astype(np.int32) - expected).max() <= 2  # equal up to 16-bit rounding
    assert final.recipe["melody"]["main_pitch_class"] == "A"  # the clip is a 440 Hz tone


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"definitely not audio", "not an audio file the studio can read"),
        (None, "holds no sound"),
        ("long", "the limit is 30 s"),
    ],
)
def test_bad_melody_clips_get_a_sentence(shared_cache, settings, tmp_path, tiny_dir, content, fragment):
    from core import tiny

    s = settings.replace(music_model=str(tiny.ensure("tiny:musicgen-melody", tiny_dir)))
    path = tmp_path / "clip.wav"
    if content is None:
        sf.write(path, np.zeros(0, dtype=np.float32), 32000)
    elif content == "long":
        tone(path, seconds=31, rate=8000)
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=re.escape(fragment)):
        list(generate_music(shared_cache, s, MusicParams("x", duration=1), melody=str(path)))
    assert not settings.output_dir.exists()


def test_a_melody_needs_a_melody_model(shared_cache, settings, tmp_path):
    with pytest.raises(UserError, match="does not follow melodies"):
        list(
            generate_music(shared_cache, settings, MusicParams("x", duration=1), melody=str(tone(tmp_path / "t.wav")))
        )


def test_continuing_a_clip_keeps_it_and_goes_on_as_transformers_does(shared_cache, settings, tmp_path):
    """The result opens with the clip itself (resampled to the model's rate, mono), then the model's continuation,
    which equals transformers' own audio-prompted generation (`input_values`) from the clip."""
    import torch
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration

    from core import provenance
    from core.audio import peak_normalise
    from tabs.music.clips import CROSSFADE_S, joined

    rate, seconds = 44100, 2.5
    t = np.arange(int(seconds * rate)) / rate
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)
    clip = tmp_path / "stereo.wav"
    sf.write(clip, np.stack([left, right], axis=1).astype(np.float32), rate)
    params = MusicParams("calm piano", duration=1.5, seed=3)
    final = list(generate_music(shared_cache, settings, params, continue_from=str(clip)))[-1]

    got, got_rate = sf.read(final.path, dtype="int16")
    stored = sf.read(clip, dtype="float32")[0].mean(axis=1)  # (the WAV holds 16-bit samples)
    heard = provenance.resample(stored, rate, 32000)  # 2.5 s: 125 whole frames
    assert got_rate == 32000 and len(got) == len(heard) + round(1.5 * 32000)
    assert "The clip is now 4.0 s long" in final.status()
    assert final.recipe["mode"] == "continue" and final.recipe["continued_from"]["seconds"] == 2.5
    assert final.recipe["continued_from"]["context_seconds"] == 2.5
    assert final.recipe["provenance"]["content_credentials"] == "C2PA, c2pa.edited"  # a composite, not all made

    model = MusicgenForConditionalGeneration.from_pretrained(settings.music_model)
    inputs = dict(AutoTokenizer.from_pretrained(settings.music_model)(["calm piano"], return_tensors="pt"))
    torch.manual_seed(3)
    with torch.inference_mode():
        made = model.generate(
            **inputs,
            input_values=torch.from_numpy(heard)[None, None],
            do_sample=True,
            top_k=250,
            temperature=1.0,
            guidance_scale=3.0,
            max_new_tokens=75 + 3,
        )[0, 0].numpy()
    assert len(made) == len(heard) + 75 * 640  # the library's output starts with its rendering of the clip
    expected = (peak_normalise(joined(heard, made, len(heard), 75 * 640, 32000)) * 32767).astype(np.int16)
    assert np.abs(got.astype(np.int32) - expected).max() <= 2  # equal up to 16-bit rounding
    opening = got[: len(heard) - round(CROSSFADE_S * 32000)].astype(np.float32)
    assert np.corrcoef(opening, heard[: len(opening)])[0, 1] > 0.999  # the clip itself, not the codec's version


def test_only_the_end_of_a_long_clip_is_heard(shared_cache, settings, tmp_path):
    from tabs.music.clips import CONTEXT_SECONDS

    clip = tone(tmp_path / "long.wav", seconds=CONTEXT_SECONDS + 2.3, rate=32000)
    final = list(generate_music(shared_cache, settings, MusicParams("x", duration=1), continue_from=str(clip)))[-1]
    assert final.recipe["continued_from"]["context_seconds"] == CONTEXT_SECONDS
    assert sf.info(final.path).frames == round((CONTEXT_SECONDS + 2.3 + 1) * 32000)


@pytest.mark.parametrize(
    ("seconds", "content", "fragment"),
    [
        (0.5, None, "shorter than 1 s"),
        (0, None, "holds no sound"),
        (0, b"RIFF....WAVEnot really", "clip to continue (continue_from) is not an audio file"),
    ],
)
def test_bad_clips_to_continue_get_a_sentence(shared_cache, settings, tmp_path, seconds, content, fragment):
    path = tmp_path / "clip.wav"
    if content:
        path.write_bytes(content)
    else:
        tone(path, seconds=seconds, rate=16000)
    with pytest.raises(UserError, match=re.escape(fragment)):
        list(generate_music(shared_cache, settings, MusicParams("x", duration=1), continue_from=str(path)))
    assert not settings.output_dir.exists()


def test_a_continuation_longer_than_the_model_holds_is_refused(settings, tmp_path):
    import torch

    from tabs.music.clips import continuation, read_clip
    from tabs.music.engine import load_music_model

    loaded = load_music_model(settings.music_model, "cpu", torch.float32)
    loaded.model.decoder.config.max_position_embeddings = 200  # 4 s at 50 frames a second
    clip = tone(tmp_path / "three.wav", seconds=3, rate=32000)
    assert continuation(read_clip(clip), clip, loaded, new_tokens=40).info["context_seconds"] == 3.0
    with pytest.raises(UserError, match="This model holds 4 s at most"):
        continuation(read_clip(clip), clip, loaded, new_tokens=60)


def test_a_repo_with_only_pytorch_model_bin_loads_through_weights_only(tiny_music, tmp_path):
    """facebook/musicgen-medium's main has only pytorch_model.bin: the studio reads it with torch's weights_only
    loading (tensors only), and a .bin that would run code when unpickled is refused with a sentence, unrun."""
    import os
    import shutil

    import torch

    from core.errors import ModelUnavailable
    from core.models import ModelCache
    from tabs.music.engine import load_music_model

    folder = tmp_path / "bin-only"
    shutil.copytree(tiny_music, folder)
    reference = load_music_model(tiny_music, "cpu", torch.float32).model.state_dict()
    (folder / "model.safetensors").unlink()
    torch.save(reference, folder / "pytorch_model.bin")
    loaded = load_music_model(folder, "cpu", torch.float32).model.state_dict()
    assert loaded.keys() == reference.keys() and all(torch.equal(loaded[k], reference[k]) for k in reference)

    ran = tmp_path / "the pickle ran"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch '{ran}'",)

    torch.save({"decoder.model.decoder.embed_tokens.0.weight": Exploit()}, folder / "pytorch_model.bin")
    cache = ModelCache(device="cpu", offline=True)
    with pytest.raises(ModelUnavailable, match="holds more than tensors .* the studio refused to read it"):
        with cache.model("music", str(folder), load_music_model, setting="STUDIO_MUSIC_MODEL"):
            pass
    assert not ran.exists()
