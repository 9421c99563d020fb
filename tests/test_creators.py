"""For creators: hand-offs between tabs, presets, examples, a history that survives reloads and zips up."""

import json
import re
import zipfile
from pathlib import Path

from helpers import picture_made_in_page
from playwright.sync_api import Page, expect

from core.history import Seals, record


def chat_once(page: Page, text: str) -> None:
    page.get_by_role("tab", name="Text").click()
    page.locator("#text-message textarea").fill(text)
    page.locator("#text-message textarea").press("Enter")
    expect(page.locator("#text-stats")).to_contain_text(re.compile(r"Done: \d+ tokens"), timeout=30_000)
    expect(page.locator("#text-chat [aria-label='Loading response']")).to_have_count(0)  # the answer is shown


def test_text_answer_becomes_the_image_prompt(page: Page, server):
    page.goto(server["url"])
    chat_once(page, "Describe a castle")
    answer = page.locator("#text-chat .bot").last.inner_text().strip()
    page.locator("#text-to-image").click()
    expect(page.get_by_role("tab", name="Image", selected=True)).to_be_visible()
    prompt = page.locator("#image-prompt textarea")
    expect(prompt).not_to_have_value("")
    letters = lambda t: re.sub(r"[\W_]", "", t)  # noqa: E731 - the chat renders markdown, the prompt is raw
    assert letters(prompt.input_value()) == letters(answer)


def test_image_hands_off_to_music_and_face_swap(page: Page, server):
    picture_made_in_page(page, server["url"], "a stormy sea at night")
    page.locator("#image-to-music").click()
    expect(page.get_by_role("tab", name="Music", selected=True)).to_be_visible()
    expect(page.locator("#music-prompt textarea")).to_have_value("A soundtrack for this scene: a stormy sea at night")
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-to-faceswap").click()
    expect(page.get_by_role("tab", name="Face swap", selected=True)).to_be_visible()
    expect(page.locator("#faceswap-target img")).to_be_visible(timeout=10_000)


def test_presets_fill_the_form(page: Page, server):
    page.goto(server["url"])
    page.get_by_role("tab", name="Image").click()
    steps = page.locator("#image-steps input[type=number]")
    page.locator("#image-preset").get_by_test_id("Quality-radio-label").click()
    expect(steps).to_have_value("4")
    page.locator("#image-preset").get_by_test_id("Fast-radio-label").click()
    expect(steps).to_have_value("1")
    page.get_by_role("tab", name="Music").click()
    page.locator("#music-preset").get_by_test_id("Sketch-radio-label").click()
    expect(page.get_by_text("Sketch: 4 s")).to_be_visible()


def test_history_survives_a_reload(page: Page, server):
    page.goto(server["url"])
    # The page stores its (encrypted) history in localStorage once loaded and again, in a second round trip,
    # after each answer: reload only once the stored history has grown by the new entry.
    stored = "window.localStorage.getItem('studio-history')"
    page.wait_for_function(f"() => {stored} !== null", timeout=10_000)
    before = len(page.evaluate(f"() => {stored}"))
    chat_once(page, "Remember me after a reload")
    page.wait_for_function(f"(before) => ({stored} || '').length > before", arg=before, timeout=10_000)
    page.reload()
    page.locator("#history-panel").get_by_text("History").click()
    expect(page.locator("#history-table")).to_contain_text("Remember me after a reload", timeout=10_000)


def test_history_zip_has_every_file_and_recipe(tmp_path):
    made = []
    for i in range(2):
        out = tmp_path / "image" / "2026-01-01" / f"img{i}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"png")
        out.with_suffix(".json").write_text("{}")
        made.append(record("Image", f"picture {i}", [out, out.with_suffix(".json")]))
    with zipfile.ZipFile(Seals(b"k" * 32, [tmp_path]).zip(made)) as z:
        names = set(z.namelist())
        assert {"image/img0.png", "image/img0.json", "image/img1.png", "image/img1.json", "history.json"} <= names
        assert json.loads(z.read("history.json"))[1]["summary"] == "picture 1"


def test_expand_prompt_asks_the_text_model(client, server):
    expanded = client.predict(text="a fox", api_name="/expand_image_prompt")
    assert isinstance(expanded, str) and expanded.strip()
    assert any(m["kind"] == "text" for m in server["cache"].snapshot())
    assert Path(server["settings"].output_dir).exists()


def test_retry_answers_again_and_undo_gives_the_message_back(page: Page, server):
    page.goto(server["url"])
    message = "Tell me a story about this code:\n    def f():\n        return 1"  # kept as written, not dedented
    chat_once(page, message)
    chat = page.locator("#text-chat")
    seed_used = page.locator("#text-seed-used input")
    first_seed = seed_used.input_value()
    chat.get_by_role("button", name="Retry").last.click()
    expect(seed_used).not_to_have_value(first_seed, timeout=30_000)  # a new answer, with a new random seed
    expect(page.locator("#text-stats")).to_contain_text(re.compile(r"Done: \d+ tokens"), timeout=30_000)
    expect(chat.locator(".user")).to_have_count(1)
    expect(chat.locator(".bot")).to_have_count(1)
    chat.get_by_role("button", name="Undo").last.click()
    expect(page.locator("#text-message textarea")).to_have_value(message)
    expect(chat.locator(".bot")).to_have_count(0)


def test_continue_goes_on_with_the_last_answer(page: Page, server):
    page.goto(server["url"])
    chat_once(page, "Start a long story")

    def raw_answer(shown_before: str) -> str:  # the answer as text, through "Use as image prompt": the chat renders
        page.locator("#text-to-image").click()  # Markdown, which random tokens (<, *, |, ---) reshape as it grows
        expect(page.get_by_role("tab", name="Image", selected=True)).to_be_visible()
        prompt = page.locator("#image-prompt textarea")
        expect(prompt).not_to_have_value(shown_before)
        raw = prompt.input_value()
        page.get_by_role("tab", name="Text").click()
        return raw

    before = raw_answer("")
    seed_used = page.locator("#text-seed-used input")
    first_seed = seed_used.input_value()
    page.locator("#text-continue").click()
    # The stats still say "Done" from the first answer until the new one starts: wait for its new random seed first.
    expect(seed_used).not_to_have_value(first_seed, timeout=60_000)
    expect(page.locator("#text-stats")).to_contain_text(re.compile(r"Done: \d+ tokens"), timeout=60_000)
    expect(page.locator("#text-chat [aria-label='Loading response']")).to_have_count(0)
    expect(page.locator("#text-chat .bot")).to_have_count(1)  # the same answer, grown, not a second one
    after = raw_answer(before)
    assert after.startswith(before) and len(after) > len(before), f"not grown: {before!r} -> {after!r}"
