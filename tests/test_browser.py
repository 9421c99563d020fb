"""Real-browser tests in Debian's Chromium against the running studio."""

import re
import time

from helpers import connect, lora_trained_in_page, picture_made_in_page
from playwright.sync_api import Page, expect


def test_text_chat_streams_into_the_page(page: Page, server):
    page.goto(server["url"])
    page.get_by_role("tab", name="Text").click()
    box = page.locator("#text-message textarea")
    box.fill("Hello from the browser")
    box.press("Enter")
    chat = page.locator("#text-chat")
    expect(chat).to_contain_text("Hello from the browser", timeout=15_000)
    expect(page.locator("#text-stats")).to_contain_text(re.compile(r"Done: \d+ tokens"), timeout=30_000)
    expect(chat.locator("[aria-label='Loading response']")).to_have_count(0)  # the answer is shown
    expect(chat.locator(".bot").last).to_have_text(re.compile(r"\S"))  # and it is not empty
    # the answer was saved and listed in History
    page.locator("#history-panel").get_by_text("History").click()
    expect(page.locator("#history-table")).to_contain_text("Text")


def test_image_generate_shows_the_image(page: Page, server):
    page.goto(server["url"])
    page.get_by_role("tab", name="Image").click()
    reuse = page.get_by_role("button", name="♻ Reuse last seed")
    expect(page.locator("#image-seed-used")).to_be_hidden()  # no "Seed used: 0" before anything was made
    page.locator("#image-seed input").fill("123")
    reuse.click()  # nothing made yet: back to a random seed
    expect(page.locator("#image-seed input")).to_have_value("-1")
    page.locator("#image-prompt textarea").fill("a tiny red boat")
    page.locator("#image-generate").click()
    expect(page.locator("#image-status")).to_contain_text("Done: 1 image(s)", timeout=30_000)
    picture = page.locator("#image-gallery img").first
    expect(picture).to_be_visible()
    expect(picture).to_have_js_property("naturalWidth", 64)  # (0 until the picture has loaded)
    expect(page.locator("#image-seed-used input")).to_have_value(re.compile(r"^\d+$"))
    seed = page.locator("#image-seed-used input").input_value()
    reuse.click()
    expect(page.locator("#image-seed input")).to_have_value(seed)
    page.locator("#image-upscale").click()  # the result, twice the size, with detail added by image to image
    # (the status line still says "Done ... seed N" from the first picture until this one starts)
    expect(page.locator("#image-gallery img").first).to_have_js_property("naturalWidth", 128, timeout=30_000)
    expect(page.locator("#image-status")).to_contain_text(re.compile(r"Done: 1 image\(s\).*seed " + seed))


def test_outpaint_extends_a_result(page: Page, server):
    picture_made_in_page(page, server["url"], "a lighthouse")
    page.locator("#image-use-result").click()
    page.get_by_text("Image to image", exact=True).click()
    expect(page.locator("#image-init img")).to_be_visible()  # the result, ready to extend
    page.locator("#image-outpaint-sides").get_by_label("Left").check()  # and Right, ticked from the start
    page.locator("#image-outpaint-pixels input[type=number]").fill("64")
    page.locator("#image-outpaint-pixels input[type=number]").press("Enter")
    page.locator("#image-outpaint-run").click()
    # (the status line says "Done" from the first picture until this one starts: wait for the wider picture itself)
    wider = page.locator("#image-gallery img").first
    expect(wider).to_have_js_property("naturalWidth", 64 + 2 * 64, timeout=30_000)


def test_voice_speaks_text_and_the_language_narrows_the_voices(page: Page, server):
    page.goto(server["url"])
    page.get_by_role("tab", name="Voice").click()
    page.locator("#voice-language input").click()
    page.get_by_role("option", name="English (UK)").click()
    expect(page.locator("#voice-voice input")).to_have_value(re.compile("Emma"))  # a British voice now
    expect(page.locator("#voice-about")).to_contain_text("downloaded once")
    page.locator("#voice-language input").click()
    page.get_by_role("option", name="Any language").click()
    page.locator("#voice-voice input").click()
    page.get_by_role("option", name=re.compile("^Heart")).click()
    expect(page.locator("#voice-about")).to_contain_text("built in (no download)")
    page.locator("#voice-text textarea").fill("Hello there. This is the studio speaking.")
    page.locator("#voice-speak").click()
    expect(page.locator("#voice-status")).to_contain_text("Done:", timeout=30_000)
    expect(page.locator("#voice-status")).to_contain_text("2 sentences")
    expect(page.locator("#voice-audio audio[src], #voice-audio [data-testid^='waveform']").first).to_be_attached()
    expect(page.locator("#voice-waveform img")).to_be_visible()


def test_read_aloud_and_a_narrated_track_over_the_music_tabs_result(page: Page, server):
    page.goto(server["url"])
    page.get_by_role("tab", name="Text").click()
    page.locator("#text-message textarea").fill("Say something about the sea.")
    page.locator("#text-message textarea").press("Enter")
    expect(page.locator("#text-stats")).to_contain_text(re.compile(r"Done: \d+ tokens"), timeout=30_000)
    page.locator("#text-to-voice").click()  # Read aloud: the answer goes to the Voice tab and is spoken at once
    expect(page.get_by_role("tab", name="Voice")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#voice-text textarea")).not_to_have_value("")
    expect(page.locator("#voice-status")).to_contain_text("Done:", timeout=60_000)
    page.get_by_role("tab", name="Music").click()
    page.locator("#music-prompt textarea").fill("calm piano")
    page.locator("#music-generate").click()
    expect(page.locator("#music-status")).to_contain_text("Done:", timeout=60_000)
    page.get_by_role("tab", name="Voice").click()
    page.locator("#voice-narration").get_by_text("Narrate over music").click()
    page.locator("#voice-use-music").click()
    expect(page.locator("#voice-music audio[src], #voice-music [data-testid^='waveform']").first).to_be_attached()
    page.locator("#voice-mix").click()
    expect(page.locator("#voice-mix-status")).to_contain_text("Done: a ", timeout=30_000)
    narrated = page.locator("#voice-narrated audio[src], #voice-narrated [data-testid^='waveform']")
    expect(narrated.first).to_be_attached()


def test_cloning_a_voice_asks_for_consent_first(page: Page, server, tmp_path):
    from test_voice import voice_clip

    page.goto(server["url"])
    page.get_by_role("tab", name="Voice").click()
    page.locator("#voice-cloning").get_by_text("Clone a voice").click()
    page.locator("#voice-reference input[type=file]").set_input_files(voice_clip(tmp_path / "me.wav"))
    page.locator("#voice-reference-text textarea").fill("This is my voice.")
    page.locator("#voice-clone-text textarea").fill("Hi there.")
    page.locator("#voice-clone").click()
    expect(page.get_by_text("Tick the consent box first").first).to_be_visible(timeout=10_000)  # the error toast
    page.locator("#voice-consent input[type=checkbox]").check()
    page.locator("#voice-clone").click()
    expect(page.locator("#voice-status")).to_contain_text("in the cloned voice", timeout=60_000)
    expect(page.locator("#voice-audio audio[src], #voice-audio [data-testid^='waveform']").first).to_be_attached()


def test_a_picture_from_the_image_tab_becomes_a_video_that_plays(page: Page, server):
    picture_made_in_page(page, server["url"], "a lighthouse")
    page.locator("#image-to-video").click()  # Animate this picture
    expect(page.get_by_role("tab", name="Video")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#video-first-frame img")).to_be_visible()
    page.locator("#video-model input").click()
    page.get_by_role("option", name="tiny:wan-ti2v").click()
    for name, value in (("num-frames", "9"), ("width", "64"), ("height", "64")):
        box = page.locator(f"#video-{name} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.locator("#video-prompt textarea").fill("the light turns slowly")
    page.locator("#video-generate").click()
    expect(page.locator("#video-status")).to_contain_text("Done:", timeout=60_000)
    player = page.locator("#video-result video")
    expect(player).to_be_attached()
    page.wait_for_function("document.querySelector('#video-result video').readyState >= 1", timeout=15_000)
    assert page.evaluate("document.querySelector('#video-result video').videoWidth") == 64  # the browser decodes it
    box = page.locator("#video-frame input[type=number]")  # a frame of it goes back to the Image tab
    box.fill("5")
    box.press("Enter")
    page.locator("#video-to-image").click()
    expect(page.get_by_role("tab", name="Image")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#image-init img")).to_be_visible()


def test_a_lora_trained_in_the_page_goes_to_the_image_tab(page: Page, server, tmp_path):
    from test_screenshots import disc_pictures

    picture_made_in_page(page, server["url"], "a lighthouse")
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-history").click()  # the History's pictures join the training pictures
    expect(page.locator("#train-captions")).to_contain_text("lighthouse", timeout=15_000)
    lora_trained_in_page(page, disc_pictures(tmp_path), "browserdiscs", 12)  # a row per picture, then trained
    expect(page.locator("#train-plot")).to_be_visible()
    expect(page.locator("#train-lora")).to_contain_text("browserdiscs")
    page.locator("#train-to-image").click()  # the trigger word and the tag go to the Image tab's prompt
    expect(page.get_by_role("tab", name="Image")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#image-prompt textarea")).to_have_value("sks disc, a lighthouse <lora:browserdiscs:1>")
    page.locator("#image-generate").click()
    expect(page.locator("#image-status")).to_contain_text("Done", timeout=30_000)
    page.locator("#image-prompt textarea").fill("a disc")  # the LoRA panel adds its trigger words with the tag
    page.locator("#image-lora-panel").click()
    page.locator("#image-lora input").click()
    page.get_by_role("option", name="browserdiscs").click()
    page.locator("#image-lora-add").click()
    expect(page.locator("#image-prompt textarea")).to_have_value("sks disc, a disc <lora:browserdiscs:0.8>")


def test_music_generate_shows_a_player(page: Page, server):
    page.goto(server["url"])
    page.get_by_role("tab", name="Music").click()
    page.locator("#music-prompt textarea").fill("calm ambient piano")
    page.locator("#music-generate").click()
    expect(page.locator("#music-status")).to_contain_text("Done:", timeout=30_000)
    expect(page.locator("#music-audio audio[src], #music-audio [data-testid^='waveform']").first).to_be_attached()
    expect(page.locator("#music-waveform img")).to_be_visible()
    page.locator("#music-continue").click()  # the model goes on from the result, with the same description
    expect(page.locator("#music-status")).to_contain_text("The clip is now", timeout=30_000)


def test_face_swap_with_consent_shows_the_result(page: Page, server):
    from faces_helpers import ASTRONAUT, HOPPER

    page.goto(server["url"])
    page.get_by_role("tab", name="Face swap").click()
    page.locator("#faceswap-source input[type=file]").set_input_files(str(HOPPER))
    page.locator("#faceswap-target input[type=file]").set_input_files(str(ASTRONAUT))
    expect(page.locator("#faceswap-summary")).to_contain_text("1 face(s) found", timeout=20_000)
    page.locator("#faceswap-swap").click()
    expect(page.get_by_text("Tick the consent box first").first).to_be_visible(timeout=10_000)  # the error toast
    page.locator("#faceswap-consent input[type=checkbox]").check()
    page.locator("#faceswap-swap").click()
    expect(page.locator("#faceswap-summary")).to_contain_text("Swapped 1 of 1 face(s)", timeout=20_000)
    expect(page.locator("#faceswap-result img")).to_be_visible()


def test_stop_cancels_a_chat_answer_still_waiting_in_the_queue(page: Page, server):
    """Every text worker is busy with other users' long answers and more wait before this user's message: it waits
    in the queue, Stop cancels it there, and when a worker frees up the request ends at once without an answer."""

    page.goto(server["url"])  # the page is ready first, so that little time passes while the workers are busy
    page.get_by_role("tab", name="Text").click()
    page.locator("#text-message textarea").fill("I will change my mind")
    workers = server["settings"].concurrency
    # Greedy answers from the tiny model loop on one pair of tokens and never meet the end token: each runs the
    # full 2000 tokens (a few seconds). Sampled ones may end at once. Twice as many as there are workers: the message
    # waits behind the second lot, so it still waits even if the machine is slow to click Stop.
    busy = [
        connect(server["url"]).submit(
            prompt=f"busy {i}", max_new_tokens=2000, temperature=0, api_name="/generate_text"
        )
        for i in range(2 * workers)
    ]
    try:
        deadline = time.monotonic() + 30
        while sum(bool(job.outputs()) for job in busy) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(bool(job.outputs()) for job in busy) == workers, "the busy jobs never started, or too many did"
        page.locator("#text-message textarea").press("Enter")
        expect(page.locator("#text-chat")).to_contain_text("I will change my mind", timeout=10_000)
        page.locator("#text-stop").click()
        expect(page.locator("#text-stats")).to_contain_text("1 waiting request(s) cancelled", timeout=10_000)
        assert "Stopping" not in page.locator("#text-stats").inner_text(), "the message was already being answered"
    finally:
        for job in busy:
            job.cancel()
    expect(page.get_by_text("Stopped before it started").first).to_be_visible(timeout=30_000)
    expect(page.locator("#text-chat .bot")).to_have_count(0)


def test_inpaint_repaints_a_brush_stroke(page: Page, server, tmp_path):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (128, 128), (40, 120, 200)).save(photo)
    page.goto(server["url"])
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-prompt textarea").fill("a small boat")
    page.locator("#image-inpaint-panel").get_by_text("Inpaint").first.click()
    # The editor sets up its canvas (WebGL) when its panel opens; a picture dropped in before that lands on a default
    # 800 px canvas instead of one of its own size. A person takes longer than that half second; the test waits.
    expect(page.locator("#image-inpaint canvas").first).to_be_attached()
    page.locator("#image-inpaint input[type=file]").set_input_files(str(photo))
    expect(page.locator("#image-inpaint").get_by_text(re.compile(r"^\d+%$"))).to_be_visible()  # the picture is in
    page.locator("#image-inpaint button[aria-label='Brush']").first.click()
    canvas = page.locator("#image-inpaint canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 30, y)
    page.mouse.down()
    for i in range(12):
        page.mouse.move(x - 30 + i * 5, y)
    page.mouse.up()
    page.locator("#image-inpaint-run").click()
    expect(page.locator("#image-status")).to_contain_text("Done: 1 image(s)", timeout=30_000)
    picture = page.locator("#image-gallery img").first
    expect(picture).to_be_visible()
    expect(picture).to_have_js_property("naturalWidth", 128)  # the photo's own size


def test_a_refused_answer_leaves_no_waiting_line(page: Page, server):
    page.goto(server["url"])
    page.get_by_role("tab", name="Text").click()
    page.get_by_text("Sampling", exact=True).click()
    page.locator("#text-seed input").fill("-5")  # refused by the answer step, after the message was taken
    page.locator("#text-seed input").press("Tab")  # as a user leaves the box: the page takes the value then
    expect(page.locator("#text-seed input")).to_have_value("-5")
    page.locator("#text-message textarea").fill("Hello")
    page.locator("#text-message textarea").press("Enter")
    expect(page.get_by_text("seed must be between 0").first).to_be_visible(timeout=15_000)
    expect(page.locator("#text-stats")).not_to_contain_text("Waiting for the model", timeout=5_000)


def test_the_image_status_says_waiting_then_clears_on_a_refusal(page: Page, server):
    page.goto(server["url"])
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-generate").click()  # no prompt: refused once the request runs
    expect(page.get_by_text("The prompt is empty").first).to_be_visible(timeout=15_000)
    expect(page.locator("#image-status")).not_to_contain_text("Waiting for the model", timeout=5_000)


def test_choosing_a_flux_model_fills_its_defaults_and_its_samplers(page: Page, server):
    page.goto(server["url"])
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-model input").click()
    page.get_by_role("option", name="tiny:flux", exact=True).click()
    expect(page.locator("#image-model-note")).to_contain_text("Tiny random-weight FLUX.1")
    page.locator("#image-sampler input").click()
    offered = ["Model default", "Euler", "DPM++ 2M", "UniPC"]  # FLUX.1's samplers only (each shown after a ✓ mark)
    expect(page.get_by_role("option")).to_have_text([re.compile(re.escape(name) + "$") for name in offered])
    page.get_by_role("option", name="DPM++ 2M").click()
    page.locator("#image-prompt textarea").fill("a tiny red boat")
    page.locator("#image-generate").click()
    expect(page.locator("#image-status")).to_contain_text("Done: 1 image(s)", timeout=60_000)
    expect(page.locator("#image-gallery img").first).to_have_js_property("naturalWidth", 64)


def test_live_mode_draws_as_one_types_and_keep_saves_the_picture(page: Page, server):
    page.goto(server["url"])
    page.get_by_role("tab", name="Image").click()
    joins = []
    page.on("request", lambda r: joins.append(r.url) if "/queue/join" in r.url else None)
    expect(page.locator("#image-live-keep")).to_be_hidden()
    page.locator("#image-live input").check()
    expect(page.locator("#image-live-keep")).to_be_visible()
    expect(page.locator("#image-live-status")).to_contain_text("type a prompt", timeout=30_000)
    joins.clear()
    page.locator("#image-prompt textarea").press_sequentially("a red kite", delay=120)  # ten keys, one by one
    expect(page.locator("#image-live-status")).to_contain_text("not saved", timeout=60_000)
    expect(page.locator("#image-live-view img")).to_have_js_property("naturalWidth", 64)
    time.sleep(1)
    assert 1 <= len(joins) <= 2, joins  # the keys typed close together made one request (two at most), not ten
    page.locator("#image-live-keep").click()
    expect(page.locator("#image-live-status")).to_contain_text("Kept: saved as")
    expect(page.locator("#image-gallery img").first).to_have_js_property("naturalWidth", 64)
    kept = re.search(r"saved as (\S+\.png)", page.locator("#image-live-status").inner_text()).group(1)
    assert list(server["settings"].output_dir.rglob(kept))  # in the outputs, with its recipe beside it
    assert list(server["settings"].output_dir.rglob(kept.replace(".png", ".json")))
    page.locator("#image-live input").uncheck()
    expect(page.locator("#image-live-keep")).to_be_hidden()
