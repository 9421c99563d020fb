"""Screenshots of every tab in a real Chromium, after a real generation. The README's pictures come from here:
SCREENSHOT_DIR=docs/screenshots python -m pytest tests/test_screenshots.py"""

import os
import re
from pathlib import Path

from faces_helpers import ASTRONAUT, HOPPER
from playwright.sync_api import Page, expect


def disc_pictures(folder: Path) -> list[str]:
    """Six 64 px pictures to train on: a coloured disc on white each."""
    from PIL import Image, ImageDraw

    paths = []
    for i, colour in enumerate(["red", "blue", "green", "gold", "purple", "orange"]):
        picture = Image.new("RGB", (64, 64), "white")
        ImageDraw.Draw(picture).ellipse((8, 8, 56, 56), fill=colour)
        picture.save(folder / f"{i:02d}-{colour}.png")
        paths.append(str(folder / f"{i:02d}-{colour}.png"))
    return paths


def test_screenshot_every_tab(page: Page, server, tmp_path):
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(server["url"])

    def shot(name: str) -> None:
        path = folder / f"{name}.png"
        page.mouse.wheel(0, -10_000)
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000

    page.get_by_role("tab", name="Image").click()
    page.locator("#image-prompt textarea").fill("a lighthouse at dusk, oil painting")
    page.locator("#image-generate").click()
    expect(page.locator("#image-status")).to_contain_text("Done", timeout=30_000)
    shot("image")
    page.locator("#image-live input").check()  # Live mode: the picture follows the prompt
    page.locator("#image-prompt textarea").fill("a lighthouse at dawn, watercolor")
    expect(page.locator("#image-live-status")).to_contain_text("not saved", timeout=30_000)
    shot("image-live")
    page.locator("#image-live input").uncheck()
    page.get_by_role("tab", name="Text").click()
    page.locator("#text-message textarea").fill("Explain a diffusion model in one sentence.")
    page.locator("#text-message textarea").press("Enter")
    expect(page.locator("#text-stats")).to_contain_text(re.compile("Done"), timeout=30_000)
    shot("text")
    page.get_by_role("tab", name="Music").click()
    page.locator("#music-prompt textarea").fill("lo-fi hip hop with warm piano")
    page.locator("#music-generate").click()
    expect(page.locator("#music-status")).to_contain_text("Done", timeout=60_000)
    shot("music")
    page.get_by_role("tab", name="Voice").click()
    page.locator("#voice-text textarea").fill(
        "Welcome to the studio. Everything you hear was made by a model, on this machine, a moment ago."
    )
    page.locator("#voice-speak").click()
    expect(page.locator("#voice-status")).to_contain_text("Done", timeout=60_000)
    shot("voice")
    page.get_by_role("tab", name="Video").click()
    page.locator("#video-prompt textarea").fill("a red fox trotting through fresh snow, slow camera pan")
    for name, value in (("num-frames", "9"), ("width", "64"), ("height", "64")):
        page.locator(f"#video-{name} input[type=number]").fill(value)
        page.locator(f"#video-{name} input[type=number]").press("Enter")
    page.locator("#video-generate").click()
    expect(page.locator("#video-status")).to_contain_text("Done", timeout=60_000)
    shot("video")
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-images input[type=file]").set_input_files(disc_pictures(tmp_path))
    expect(page.locator("#train-captions")).to_contain_text("03-gold.png", timeout=15_000)
    page.locator("#train-name textarea, #train-name input").first.fill("discs")
    page.locator("#train-trigger textarea, #train-trigger input").first.fill("sks disc")
    for name, value in (("steps", "40"), ("batch", "6")):
        page.locator(f"#train-{name} input[type=number]").fill(value)
        page.locator(f"#train-{name} input[type=number]").press("Enter")
    page.locator("#train-sample-every input").fill("10")
    page.locator("#train-sample-every input").press("Tab")
    page.locator("#train-start").click()
    expect(page.locator("#train-status")).to_contain_text("Done", timeout=60_000)
    shot("train")
    page.get_by_role("tab", name="Face swap").click()
    page.locator("#faceswap-source input[type=file]").set_input_files(str(HOPPER))
    page.locator("#faceswap-target input[type=file]").set_input_files(str(ASTRONAUT))
    page.locator("#faceswap-consent input[type=checkbox]").check()
    page.locator("#faceswap-swap").click()
    expect(page.locator("#faceswap-summary")).to_contain_text("Swapped", timeout=30_000)
    shot("faceswap")
    page.get_by_role("tab", name="Extras").click()
    page.locator("#extras-image input[type=file]").set_input_files(str(HOPPER))
    page.locator("#extras-restorer input").click()
    page.get_by_role("option", name="tiny-restoreformer").click()
    page.locator("#extras-width input[type=number]").fill("800")  # "Scale to" a width: the height keeps the shape
    page.locator("#extras-width input[type=number]").press("Tab")
    page.locator("#extras-run").click()
    expect(page.locator("#extras-status")).to_contain_text("Done: 800x", timeout=60_000)
    shot("extras")
    page.get_by_role("tab", name="GAN lab").click()
    page.locator("#gan-train").click()
    if os.environ.get("SCREENSHOT_DIR"):  # the docs' picture: all 60 epochs, clear digits (about a minute here)
        expect(page.locator("#gan-status")).to_contain_text("Epoch 60", timeout=240_000)
    else:  # the suite's check: it trains and shows its digits
        expect(page.locator("#gan-status")).to_contain_text("Epoch 3", timeout=60_000)
        page.locator("#gan-stop").click()
    shot("gan")
    page.get_by_role("tab", name="Verify").click()
    shot("verify")
