"""The Music tab through gradio_client against the running studio (tiny mode)."""

import json
import re

import pytest
import soundfile as sf
from gradio_client.exceptions import AppError


def test_generate_music_returns_the_wav_and_its_recipe(client, server):
    audio, waveform, status, seed_used, recipe = client.predict(
        prompt="upbeat electronic", duration=2, seed=4, api_name="/generate_music"
    )
    info = sf.info(audio)
    assert info.samplerate == 32000 and info.frames == 2 * 32000
    with sf.SoundFile(audio) as f:
        assert json.loads(f.copy_metadata()["comment"])["seed"] == 4
    assert status.startswith("Done: 2 s of audio") and seed_used == 4
    assert recipe["prompt"] == "upbeat electronic" and recipe["model"] == "tiny:musicgen"
    assert waveform
    loads = server["cache"].loads
    client.predict(prompt="again", duration=1, api_name="/generate_music")
    assert server["cache"].loads == loads  # the loaded model is reused


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"prompt": ""}, "description (prompt) is empty"),
        ({"prompt": "x", "duration": 60}, "The duration must be between 1 and 30 seconds; got 60."),
        ({"prompt": "x", "temperature": 0}, "temperature must be between 0.05 and 2; got 0."),
    ],
)
def test_bad_input_is_one_sentence(client, kwargs, fragment):
    with pytest.raises(AppError, match=re.escape(fragment)):
        client.predict(**kwargs, api_name="/generate_music")


def test_melody_through_the_api(client, tmp_path):
    import numpy as np
    from gradio_client import handle_file

    rate = 16000
    t = np.arange(2 * rate) / rate
    clip = tmp_path / "hum.wav"
    sf.write(clip, (0.4 * np.sin(2 * np.pi * 392.0 * t)).astype(np.float32), rate)
    audio, _w, status, _s, recipe = client.predict(
        prompt="calm piano",
        duration=1,
        seed=2,
        model="tiny:musicgen-melody",
        melody=handle_file(str(clip)),
        api_name="/generate_music",
    )
    assert sf.info(audio).frames == 32000 and recipe["melody"]["main_pitch_class"] == "G"
    fake = tmp_path / "fake.wav"
    fake.write_text("not audio at all")
    with pytest.raises(AppError, match="not an audio file the studio can read"):
        client.predict(
            prompt="x", model="tiny:musicgen-melody", melody=handle_file(str(fake)), api_name="/generate_music"
        )


def test_continue_a_result_through_the_api(client, server):
    from gradio_client import handle_file

    first, *_ = client.predict(prompt="warm synth pads", duration=2, seed=6, api_name="/generate_music")
    audio, waveform, status, seed_used, recipe = client.predict(
        continue_from=handle_file(first), prompt="  ", duration=1, seed=7, api_name="/continue_music"
    )
    assert sf.info(audio).frames == 3 * 32000 and "The clip is now 3.0 s long" in status
    assert recipe["prompt"] == "warm synth pads"  # a blank description takes the one inside the clip
    assert recipe["mode"] == "continue" and recipe["continued_from"]["seconds"] == 2.0
    report, _facts = client.predict(file=handle_file(audio), api_name="/verify")
    assert "The model continued a clip: the first 2 s are the clip it was given" in report
    assert "This came from a face swap" not in report and "music made with tiny:musicgen" in report
    with pytest.raises(AppError, match="Add a clip to continue"):
        client.predict(continue_from=None, prompt="x", api_name="/continue_music")
