"""The Face swap tab through gradio_client against the running studio."""

import json

import pytest
from faces_helpers import ASTRONAUT, HOPPER, make_video
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image


def test_swap_face_returns_the_image_and_a_summary(client, server):
    path, text, summary = client.predict(
        source_image=handle_file(str(HOPPER)),
        target_image=handle_file(str(ASTRONAUT)),
        consent=True,
        api_name="/swap_face",
    )
    assert Image.open(path).size == (512, 512) and "classic" in text
    assert summary["faces_found"] == 1 and summary["engine"] == "classic" and summary["labelled"] is True
    assert json.loads(Image.open(path).text["studio_recipe"])["consent_version"] == "1"
    audit = server["settings"].output_dir / "faceswap" / "audit.jsonl"
    assert audit.exists() and json.loads(audit.read_text().splitlines()[-1])["engine"] == "classic"


@pytest.mark.parametrize("consent", [False, None])
def test_consent_is_enforced_by_the_server(client, consent):
    kwargs = {} if consent is None else {"consent": consent}
    with pytest.raises(AppError, match="Tick the consent box"):
        client.predict(
            source_image=handle_file(str(HOPPER)),
            target_image=handle_file(str(ASTRONAUT)),
            **kwargs,
            api_name="/swap_face",
        )


def test_unreadable_upload_is_a_sentence(client, tmp_path):
    fake = tmp_path / "face.jpg"
    fake.write_text("no pixels here")
    with pytest.raises(AppError, match="target image is not an image the studio can read"):
        client.predict(
            source_image=handle_file(str(HOPPER)),
            target_image=handle_file(str(fake)),
            consent=True,
            api_name="/swap_face",
        )


def test_swap_face_video(client, tmp_path):
    import av

    clip = make_video(tmp_path / "clip.mp4", frames=6)
    video, status, summary = client.predict(
        source_image=handle_file(str(HOPPER)),
        target_video=handle_file(str(clip)),
        consent=True,
        api_name="/swap_face_video",
    )
    path = video["video"] if isinstance(video, dict) else video
    with av.open(path) as c:
        assert c.streams.video[0].frames == 6 and c.streams.audio
    assert status.startswith("Done: 6 frames") and summary["audio_kept"] is True
