"""Live mode (tabs/image/live.py): the newest request wins, dropped ones leave no files, Keep saves the picture shown
with its recipe and provenance, and one user's live mode does not hold up another's request."""

import json
import threading

import numpy as np
import pytest
from helpers import PageSession, connect
from PIL import Image

from core import provenance
from tabs.image import live
from tabs.image.engine import ImageParams


def scratch_pictures() -> set:
    return {p for p in live.scratch_dir().rglob("*.png")}


def outputs(server) -> set:
    return set((server["settings"].output_dir / "image").rglob("*.png"))


def test_tickets_newest_wins_and_a_newer_one_stops_the_running_one():
    runs = live.LiveRuns()
    first = runs.take("page-a")
    running = runs.begin("page-a", first)
    assert running is not None and not running.is_set()
    other = runs.begin("page-b", runs.take("page-b"))  # another page is never touched
    second = runs.take("page-a")
    assert running.is_set() and not other.is_set()  # the older run stops at its next step
    assert runs.begin("page-a", first) is None  # an older request still waiting is dropped
    assert runs.begin("page-a", second) is not None


def test_live_params_one_picture_few_steps_and_a_steady_seed():
    params = live.live_params(ImageParams("a fox", steps=30, seed=-1, num_images=4))
    assert (params.steps, params.seed, params.num_images) == (live.LIVE_MAX_STEPS, live.LIVE_SEED, 1)
    assert live.live_params(ImageParams("a fox", steps=2, seed=7)).seed == 7
    assert live.sketch_steps(ImageParams("a fox", steps=1, strength=0.3)).steps == 4  # at least one step repaints


def test_a_stopped_live_run_leaves_no_file(settings, shared_cache):
    stop = threading.Event()
    stop.set()  # a newer request came before the first step
    before = scratch_pictures()
    made = live.draw(shared_cache, settings, ImageParams("a fox", steps=2), None, None, stop, "stopped-page")
    assert made is None and scratch_pictures() == before
    assert not list(settings.output_dir.rglob("*.png"))


def test_live_picture_is_not_saved_until_kept_then_kept_unchanged_with_recipe_and_provenance(client, server):
    before = outputs(server)
    asked = dict(prompt="a red kite", seed=-1, steps=2, width=256, height=256)
    shown, status = client.predict(**asked, api_name="/live_image")
    assert status.startswith("Live:") and "not saved" in status
    assert outputs(server) == before  # nothing saved yet
    shown_bytes = open(shown, "rb").read()
    # the picture shown carries its provenance already (anyone may save it from the page)
    assert provenance.read_c2pa(shown_bytes, "image/png")["present"]
    gallery, recipe, said = client.predict(api_name="/keep_image")
    kept = set(outputs(server)) - before
    assert len(kept) == 1 and said.startswith("Kept:")
    (path,) = kept
    assert path.read_bytes() == shown_bytes  # the very picture shown, not a new one
    saved = json.loads(path.with_suffix(".json").read_text())
    assert saved["live"] is True and saved["seed"] == live.LIVE_SEED and saved["steps"] == 2
    assert saved["prompt"] == "a red kite" and recipe["provenance"] == saved["provenance"]
    assert saved["provenance"]["watermark"] == provenance.WATERMARK_PAYLOAD.decode()
    picture = np.asarray(Image.open(path).convert("RGB"))
    assert provenance.read_watermark(picture)["present"]
    assert json.loads(Image.open(path).text["studio_recipe"])["live"] is True
    assert client.predict(api_name="/keep_image")[2].startswith("Kept:")  # a second Keep saves nothing new
    assert set(outputs(server)) - before == kept


def test_keep_without_a_live_picture_says_so(server):
    from gradio_client.exceptions import AppError

    fresh = connect(server["url"])  # a session that never drew live
    with pytest.raises(AppError, match="Nothing to keep yet"):
        fresh.predict(api_name="/keep_image")


def test_only_the_newest_waiting_request_runs_and_others_wait_for_one_picture_at_most(server):
    """A page (or a script) that sends five live requests at once: those that find a newer one of theirs waiting
    end without a picture and leave no file; another user's request, sent after them, waits for at most the
    pictures the first user really gets, not for five."""
    page, other = PageSession(server["url"]), PageSession(server["url"])
    asked = [page.join("/live_image", prompt=f"a boat {i}", seed=i, steps=2, width=64, height=64) for i in range(5)]
    theirs = other.join("/generate_image", prompt="a lighthouse", seed=1, steps=2)
    results = page.results(5)
    (generated,) = other.results(1).values()
    assert generated["success"] and generated["output"]["data"][2].startswith("Done")
    shown = [results[event]["output"]["data"] for event in asked]
    drawn = [i for i, (picture, *_) in enumerate(shown) if picture]  # a dropped one: no picture
    assert drawn[-1] == 4 and len(drawn) <= 2  # the newest always; the first too if it was already running
    assert all(shown[i][1] == live.SUPERSEDED for i in range(5) if i not in drawn)
    assert "seed 4" in shown[4][1] and theirs
    left = {p for p in scratch_pictures() if "a-boat" in p.name}
    assert len(left) == 1 and "a-boat-4" in next(iter(left)).name  # one picture per page: the newest


def test_a_live_picture_is_drawn_from_the_sketch(client, tmp_path):
    """The sketch goes into the picture (image to image): the same sketch gives the same picture, another sketch
    another one. (With random weights the tiny VAE does not give back what it gets, so how close the picture stays
    to the sketch can only be judged with real weights.)"""
    from gradio_client import handle_file

    def sketch(box: tuple) -> dict:
        drawing = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        drawing.paste((20, 20, 20, 255), box)
        path = tmp_path / f"sketch-{box[0]}.png"
        drawing.save(path)
        return {"background": None, "layers": [], "composite": handle_file(str(path))}

    asked = dict(prompt="a castle", seed=5, steps=2, width=64, height=64, sketch_strength=0.3, api_name="/live_image")
    first, status = client.predict(**asked, sketch=sketch((8, 8, 24, 24)))
    first = np.asarray(Image.open(first).convert("RGB"), float)
    again = np.asarray(Image.open(client.predict(**asked, sketch=sketch((8, 8, 24, 24)))[0]).convert("RGB"), float)
    other = np.asarray(Image.open(client.predict(**asked, sketch=sketch((36, 36, 60, 60)))[0]).convert("RGB"), float)
    assert (first == again).all() and np.abs(first - other).mean() > 2
    assert "4 step(s)" in status  # at strength 0.3, 2 steps would repaint none: live mode takes 4
    recipe = client.predict(api_name="/keep_image")[1]
    assert recipe["mode"] == "image-to-image" and recipe["strength"] == 0.3 and recipe["live"] is True
