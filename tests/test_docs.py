"""The documentation a newcomer reads: the generated reference pages say what the code says, every relative link and
picture resolves, and the README stays a short front page."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def test_the_settings_and_api_pages_are_current():
    """docs/settings.md and docs/api.md are made from the code by `python -m app.docs`; CI fails when either lags."""
    from app import docs

    assert docs.SETTINGS_PAGE.read_text() == docs.settings_markdown(), "run: python -m app.docs"
    assert docs.API_PAGE.read_text() == docs.api_markdown(docs.api_info()), "run: python -m app.docs"


def test_every_setting_and_endpoint_is_on_its_page():
    import dataclasses

    from core.settings import Settings, env_name

    settings_page = (ROOT / "docs" / "settings.md").read_text()
    assert all(f"`{env_name(f.name)}`" in settings_page for f in dataclasses.fields(Settings))
    api_page = (ROOT / "docs" / "api.md").read_text()
    endpoints = ("/generate_image", "/generate_text", "/generate_music", "/speak", "/swap_face", "/verify")
    for endpoint in (*endpoints, "/generate_video", "/add_soundtrack", "/train_lora", "/caption_images", "/train_gan"):
        assert f"## `{endpoint}`" in api_page


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_picture_resolves(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor on the same page
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_the_readme_is_a_short_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme) <= 16_000, f"README.md is {len(readme):,} characters; move detail to docs/"
    cells = [c.strip() for line in readme.splitlines() if line.startswith("|") for c in line.strip("|").split("|")]
    assert max(map(len, cells)) <= 300  # a sentence or two per table cell
    for tab in ("image", "text", "music", "voice", "video", "train", "faceswap", "extras", "gan", "verify"):
        assert f"docs/{tab}.md" in readme and (ROOT / "docs" / f"{tab}.md").exists()
        assert f"screenshots/{tab}.png" in (ROOT / "docs" / f"{tab}.md").read_text()
