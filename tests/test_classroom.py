"""For classrooms: "How it works" shows the model at work, and classroom mode simplifies and limits."""

import pytest
import torch
from faces_helpers import ASTRONAUT, HOPPER
from helpers import running_studio
from playwright.sync_api import Page, expect

from core.settings import from_env
from tabs.faceswap.engine import swap_face_image
from tabs.image.engine import ImageParams, generate_image
from tabs.music.engine import MusicParams, generate_music
from tabs.text.engine import TextParams, _encode, build_messages, generate_text, load_text_model


def test_token_probabilities_match_the_models_own_logits(shared_cache, settings):
    final = list(
        generate_text(
            shared_cache,
            settings,
            "What is a GAN?",
            system_prompt="Be brief.",
            params=TextParams(max_new_tokens=6, temperature=0),
        )
    )[-1]
    first = final.candidates[0]
    loaded = load_text_model(settings.text_model, "cpu", torch.float32)
    inputs = _encode(loaded.tokenizer, build_messages("Be brief.", [], "What is a GAN?"), 10_000)
    with torch.no_grad():
        probs = torch.softmax(loaded.model(**inputs).logits[0, -1].float(), -1)
    top = torch.topk(probs, 5)
    expected = [
        (loaded.tokenizer.decode([int(i)]), round(float(p), 4)) for i, p in zip(top.indices, top.values, strict=True)
    ]
    assert first["top"] == expected
    assert first["chosen"] == expected[0][0]  # greedy picks the likeliest
    assert len(final.candidates) == final.tokens == 6


def test_image_filmstrip_shows_every_step(shared_cache, settings):
    final = list(generate_image(shared_cache, settings, ImageParams("a fox", steps=6, width=64, height=64, seed=1)))[
        -1
    ]
    assert len(final.filmstrip) == 6  # 5 intermediate previews and the final picture
    assert final.filmstrip[0].size == (32, 32) and final.filmstrip[-1].size == (64, 64)


def test_music_spectrogram_and_speed(shared_cache, settings):
    final = list(generate_music(shared_cache, settings, MusicParams("calm piano", duration=1, seed=1)))[-1]
    assert final.spectrogram.size == (800, 240) and final.steps_per_second > 0


def test_face_mesh_before_and_after(shared_cache, settings):
    r = swap_face_image(shared_cache, settings, str(HOPPER), str(ASTRONAUT), consent=True)
    assert r.mesh.height == 320 and r.mesh.width > 3 * 200


def test_classroom_limits():
    s = from_env({"STUDIO_CLASSROOM": "1", "STUDIO_ALLOW_CUSTOM_MODELS": "1"})
    assert (s.max_new_tokens, s.max_image_size, s.max_music_seconds, s.allow_custom_models) == (256, 512, 10, False)
    assert from_env({}).max_music_seconds == 30


@pytest.fixture(scope="module")
def classroom_server(tmp_path_factory, tiny_dir):
    with running_studio(tiny_dir, tmp_path_factory.mktemp("class") / "out", classroom=True) as (url, _, _):
        yield url


def test_classroom_mode_hides_and_opens_what_it_should(page: Page, classroom_server):
    page.goto(classroom_server)
    expect(page.get_by_text("Classroom mode:")).to_be_visible()
    page.get_by_role("tab", name="Text").click()
    expect(page.get_by_text("Sampling", exact=True)).to_have_count(0)
    expect(page.locator("#text-how-table")).to_be_visible()  # "How it works" is open
    page.locator("#text-message textarea").fill("hi class")
    page.locator("#text-message textarea").press("Enter")
    expect(page.locator("#text-how-table")).to_contain_text("%", timeout=30_000)
    page.get_by_role("tab", name="Face swap").click()
    expect(page.locator("#faceswap-consent-note h2")).to_contain_text("Consent first")
    expect(page.get_by_text("Engine", exact=True)).to_have_count(0)
