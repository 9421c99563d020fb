"""The Train tab: LoRAs trained with diffusers + peft on the tiny Stable Diffusion (a UNet family) and the tiny SD 3.5
(a flow-matching transformer) from pictures made here; what a user gets: the loss goes down, the LoRA changes the
Image tab's picture (weight 0 does not), Stop then Resume continues the same curve, kohya's metadata reads back from
a plain header read, faces need consent, and bad input is one sentence naming the field."""

import io
import json
import os
import re
import threading
import zipfile

import numpy as np
import pytest
from faces_helpers import ASTRONAUT
from PIL import Image, ImageDraw

from core import loras
from core.errors import UserError
from core.history import record
from core.loras import metadata as read_metadata
from core.outputs import audit_log_path
from tabs.image.engine import ImageParams, generate_image
from tabs.train import files
from tabs.train.engine import TrainParams, caption_images, train_lora

COLOURS = ["red", "blue", "green", "gold", "purple", "orange"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """Six 64 px pictures: a coloured disc on white, one colour each."""
    folder = tmp_path_factory.mktemp("shapes")
    paths = []
    for i, colour in enumerate(COLOURS):
        picture = Image.new("RGB", (64, 64), "white")
        ImageDraw.Draw(picture).ellipse((8, 8, 56, 56), fill=colour)
        picture.save(folder / f"{i:02d}-{colour}.png")
        paths.append(str(folder / f"{i:02d}-{colour}.png"))
    return paths


@pytest.fixture
def tiny(settings, tmp_path):
    return settings.replace(tiny=True, lora_dir=tmp_path / "loras")


def fast(name, **kwargs):
    """The tiny model's recipe: random weights move only with a large learning rate (measured: 1e-2 drops the loss
    by ~9% in 30 steps on every seed tried; 1e-3 does not move it)."""
    return TrainParams(name, **{"trigger": "sks disc", "steps": 30, "rank": 4, "learning_rate": 1e-2,
                                "resolution": 32, "batch_size": 6, **kwargs})  # fmt: skip


def trained(cache, settings, params, images, **options):
    updates = list(train_lora(cache, settings, params, images, **options))
    return updates[-1], updates


def picture(cache, settings, prompt, model=None, mine=None):
    params = ImageParams(prompt, steps=2, width=64, height=64, seed=5)
    final = list(generate_image(cache, settings, params, model=model, mine=mine))[-1]
    return np.asarray(Image.open(final.images[0]).convert("RGB")).astype(int)


def test_a_lora_learns_lands_in_the_lora_folder_and_changes_the_image_tabs_picture(shared_cache, tiny, shapes):
    final, updates = trained(shared_cache, tiny, fast("discs", sample_every=10, checkpoint_every=10), shapes)
    losses = final.losses
    assert len(losses) == 30 and np.mean(losses[-5:]) < 0.95 * np.mean(losses[:5])  # it learned
    assert final.done and final.status().startswith("Done: 30 steps") and "<lora:discs:1>" in final.status()
    assert any(u.sample is not None for u in updates) and any("s per step" in u.status() for u in updates)
    lora = tiny.lora_dir / "discs.safetensors"
    assert lora.exists() and final.path.exists() and final.path.with_suffix(".json").exists()
    plain = picture(shared_cache, tiny, "a disc on white")
    styled = picture(shared_cache, tiny, "sks disc, a disc on white <lora:discs:1>")
    zero = picture(shared_cache, tiny, "sks disc, a disc on white <lora:discs:0>")
    trigger_only = picture(shared_cache, tiny, "sks disc, a disc on white")
    assert np.abs(styled - trigger_only).mean() > 2  # the LoRA, not the words, moved the picture
    assert np.array_equal(zero, trigger_only)  # weight 0 is no LoRA
    assert not np.array_equal(plain, styled)
    meta = read_metadata(lora)  # a plain header read, as AUTOMATIC1111 and civitai do it
    assert meta["ss_output_name"] == "discs" and meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "4.0"
    assert meta["ss_resolution"] == "(32, 32)" and meta["ss_base_model_version"] == "sd_v1"
    assert json.loads(meta["ss_tag_frequency"]) == {"1_sks disc": {"sks disc": 6}}
    assert meta["modelspec.trigger_phrase"] == "sks disc" and len(meta["sshs_model_hash"]) == 64
    assert loras.trigger_of(lora) == "sks disc"  # the Image tab's LoRA panel puts it before the tag
    assert meta["ss_optimizer"] == "torch.optim.adamw.AdamW(weight_decay=0.01)"  # (8-bit AdamW on a GPU with bnb)
    recipe = json.loads(meta["studio_recipe"])
    assert [d["sha256"] for d in recipe["dataset"]] == [d["sha256"] for d in final.recipe["dataset"]]
    assert recipe["trigger"] == "sks disc" and recipe["model"] == "tiny:stable-diffusion"
    assert recipe["last_loss"] < recipe["first_loss"]
    with open(lora, "rb") as f:
        assert b"lora_unet_" in f.read(20000)  # Kohya's names: what AUTOMATIC1111 and ComfyUI read
    audit = audit_log_path(tiny.output_dir).read_text()
    assert '"kind": "lora training"' in audit and "PNG" not in audit


def test_stop_keeps_a_checkpoint_and_resume_goes_on_along_the_same_curve(shared_cache, tiny, shapes):
    whole, _ = trained(shared_cache, tiny, fast("whole", steps=16, checkpoint_every=0), shapes)
    stop = threading.Event()
    updates = []
    for update in train_lora(shared_cache, tiny, fast("halves", steps=16, checkpoint_every=0), shapes, stop=stop):
        updates.append(update)
        if update.step >= 6:
            stop.set()
    assert updates[-1].stopped and "Press Resume" in updates[-1].status()
    assert not (tiny.lora_dir / "halves.safetensors").exists()
    resumed, _ = trained(shared_cache, tiny, fast("halves", steps=16, checkpoint_every=0), shapes, resume=True)
    assert resumed.first_step == updates[-1].step > 0
    assert np.allclose(resumed.losses, whole.losses, atol=1e-5)  # the same curve as without the Stop
    more, _ = trained(shared_cache, tiny, fast("halves", steps=20, checkpoint_every=0), shapes, resume=True)
    assert more.first_step == 16 and len(more.losses) == 20  # a finished LoRA trains on for more steps
    with pytest.raises(UserError, match="other pictures and captions"):
        trained(shared_cache, tiny, fast("halves", steps=30), shapes[:5], resume=True)
    with pytest.raises(UserError, match="no checkpoint of 'never'"):
        trained(shared_cache, tiny, fast("never"), shapes, resume=True)


@pytest.mark.parametrize(
    ("base", "version"), [("tiny:sdxl", "sdxl_base_v1-0"), ("tiny:sd3", "sd3"), ("tiny:flux", "flux1")]
)
def test_a_transformer_family_lora_learns_and_changes_the_picture(shared_cache, tiny, shapes, base, version):
    """SDXL (told its pooled text and sizes), SD 3.5 and FLUX.1 (flow matching; FLUX packs its latents): the loss goes
    down, the Image tab's picture moves with the LoRA and not at weight 0."""
    name = version + "discs"
    final, _ = trained(shared_cache, tiny, fast(name), shapes, base_model=base)
    assert np.mean(final.losses[-5:]) < 0.95 * np.mean(final.losses[:5])
    assert read_metadata(tiny.lora_dir / f"{name}.safetensors")["ss_base_model_version"] == version
    before = picture(shared_cache, tiny, "sks disc, a disc", model=base)
    after = picture(shared_cache, tiny, f"sks disc, a disc <lora:{name}:1>", model=base)
    zero = picture(shared_cache, tiny, f"sks disc, a disc <lora:{name}:0>", model=base)
    assert np.abs(after - before).mean() > 2 and np.array_equal(zero, before)


def test_a_lora_trained_on_a_checkpoint_file_fits_that_model(shared_cache, tiny, shapes, tiny_dir, tmp_path):
    """A whole checkpoint of the checkpoints folder (civitai-style, one file in A1111's layout) is a base: the LoRA
    trained on it moves the Image tab's picture made with that file; the recipe names the file by its SHA-256."""
    from ldm_helpers import write_ldm_checkpoint

    from core import tiny as tiny_models
    from tabs.train.engine import base_choices

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    write_ldm_checkpoint(tiny_models.ensure("tiny:stable-diffusion", tiny_dir), folder / "my-sd15.safetensors")
    own = tiny.replace(checkpoint_dir=folder)
    assert "my-sd15.safetensors" in base_choices(own)
    final, _ = trained(shared_cache, own, fast("mine15"), shapes, base_model="my-sd15.safetensors")
    assert (
        final.recipe["checkpoint"]["file"] == "my-sd15.safetensors" and len(final.recipe["checkpoint"]["sha256"]) == 64
    )
    assert np.mean(final.losses[-5:]) < 0.95 * np.mean(final.losses[:5])
    before = picture(shared_cache, own, "sks disc, a disc", model="my-sd15.safetensors")
    after = picture(shared_cache, own, "sks disc, a disc <lora:mine15:1>", model="my-sd15.safetensors")
    assert np.abs(after - before).mean() > 2


def zipped(path, pictures, captions=True, extra=()):
    with zipfile.ZipFile(path, "w") as z:
        for i, p in enumerate(pictures):
            z.write(p, f"set/{i}.png")
            if captions:
                z.writestr(f"set/{i}.txt", f"a {COLOURS[i]} disc")
        for name, data in extra:
            z.writestr(name, data)
    return str(path)


def test_a_zip_with_kohya_captions_and_blip_captions(shared_cache, tiny, shapes, tmp_path):
    archive = zipped(tmp_path / "set.zip", shapes[:5], extra=[("../../evil.txt", "x"), ("notes.md", "hi")])
    final, _ = trained(shared_cache, tiny, fast("zipped", steps=2), [archive])
    assert [d["caption"] for d in final.recipe["dataset"]] == [f"sks disc, a {c} disc" for c in COLOURS[:5]]
    assert not (tmp_path.parent / "evil.txt").exists()  # names in a zip never become paths
    rows = caption_images(shared_cache, tiny, shapes[:2] + [zipped(tmp_path / "two.zip", shapes[:2])])
    assert [r[0] for r in rows] == [shapes[0].rsplit("/", 1)[1], shapes[1].rsplit("/", 1)[1], "0.png", "1.png"]
    assert all(r[1] for r in rows[:2]) and rows[2][1] == "a red disc"  # BLIP wrote (tiny: noise); the zip's kept
    edited, _ = trained(shared_cache, tiny, fast("edited", steps=2), shapes[:5],
                        captions=[[shapes[0].rsplit("/", 1)[1], "a bright disc"]])  # fmt: skip
    assert edited.recipe["dataset"][0]["caption"] == "sks disc, a bright disc"


def test_pictures_are_kept_small_and_the_table_lists_them_without_decoding(shapes, tmp_path):
    from tabs.train import dataset

    big = tmp_path / "big.png"
    Image.new("RGB", (4000, 3000), "teal").save(big)
    pictures = dataset.gather(shapes[:4] + [str(big)])
    assert max(pictures[-1].image.size) == dataset.MAX_SIDE  # 50 kept pictures stay a few hundred MB at most
    archive = zipped(tmp_path / "set.zip", shapes[:2])
    (tmp_path / "broken.png").write_text("not a picture: the table lists it, training refuses it")
    rows = dataset.listing([str(tmp_path / "broken.png"), archive])
    assert rows == [["broken.png", ""], ["0.png", "a red disc"], ["1.png", "a blue disc"]]


def test_a_face_needs_consent_and_the_audit_keeps_hashes_only(shared_cache, tiny, tmp_path):
    faces = [str(ASTRONAUT)] * 5
    with pytest.raises(UserError, match=r"5 of these pictures show a face. Tick the consent box first \(consent\)"):
        trained(shared_cache, tiny, fast("face", steps=1), faces)
    with pytest.raises(UserError, match="consent"):
        trained(shared_cache, tiny, fast("face", steps=1), faces, consent="true")  # only a real True
    final, _ = trained(shared_cache, tiny, fast("face", steps=1), faces, consent=True)
    assert final.recipe["consent"] is True and final.recipe["pictures_with_faces"] == 5
    lines = [json.loads(line) for line in audit_log_path(tiny.output_dir).read_text().splitlines()]
    assert lines[-1]["pictures_with_faces"] == 5 and lines[-1]["consent"] is True and len(lines[-1]["pictures"]) == 5


@pytest.mark.parametrize(
    ("name", "kwargs", "fragment"),
    [
        ("ok", {"images": 4}, "Give at least 5 pictures (images)"),
        ("../evil", {}, "The name (name) becomes the LoRA's file name"),
        ("a b", {}, "The name (name)"),
        ("ok", {"steps": 0}, "The steps must be between 1 and 3000; got 0."),
        ("ok", {"rank": 500}, "The rank must be between 1 and 128"),
        ("ok", {"resolution": 100}, "The resolution must be a multiple of 8"),
        ("ok", {"learning_rate": 5}, "The learning rate (learning_rate) must be between"),
        ("ok", {"bad_picture": True}, "is not a picture the studio can read"),
        ("ok", {"bomb": True}, "holds pictures too large for training"),
    ],
)
def test_bad_input_is_one_sentence_naming_the_field(shared_cache, tiny, shapes, tmp_path, name, kwargs, fragment):
    images = shapes[: kwargs.pop("images", 6)]
    if kwargs.pop("bad_picture", False):
        (tmp_path / "notes.png").write_text("not a picture")
        images = shapes[:5] + [str(tmp_path / "notes.png")]
    if kwargs.pop("bomb", False):  # a zip whose listing declares a picture of 2 GB: refused from the listing
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("huge.png", b"\0" * 50_000_000)
        (tmp_path / "bomb.zip").write_bytes(buffer.getvalue())
        images = [str(tmp_path / "bomb.zip")]
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        trained(shared_cache, tiny, fast(name, **kwargs), images)


@pytest.fixture(scope="module")
def shaped(tmp_path_factory):
    """Six discs on white: two tall (48x96), two wide (96x48), two square (64x64)."""
    folder = tmp_path_factory.mktemp("shaped")
    paths = []
    for i, (colour, size) in enumerate(zip(COLOURS, [(48, 96), (96, 48), (64, 64)] * 2, strict=False)):
        picture = Image.new("RGB", size, "white")
        ImageDraw.Draw(picture).ellipse((4, 4, size[0] - 4, size[1] - 4), fill=colour)
        picture.save(folder / f"{i}.png")
        paths.append(str(folder / f"{i}.png"))
    return paths


@pytest.mark.parametrize("base", ["tiny:stable-diffusion", "tiny:flux"])
def test_tall_and_wide_pictures_keep_their_shape_in_buckets(shared_cache, tiny, shaped, shapes, base):
    """Aspect-ratio buckets (kohya's): a tall picture trains tall, a wide one wide, each batch from one bucket; the
    file says so in kohya's keys. A set of square pictures trains exactly as with square crops."""
    name = "shaped" + base.split(":")[1].replace("-", "")
    final, _ = trained(shared_cache, tiny, fast(name, resolution=64, steps=12), shaped, base_model=base)
    assert [d["size"] for d in final.recipe["dataset"]] == [[48, 80], [80, 48], [64, 64]] * 2
    assert final.done and all(np.isfinite(final.losses))
    meta = read_metadata(tiny.lora_dir / f"{name}.safetensors")
    buckets = json.loads(meta["ss_bucket_info"])["buckets"]
    assert meta["ss_enable_bucket"] == "True" and sorted(b["count"] for b in buckets.values()) == [2, 2, 2]
    square, _ = trained(shared_cache, tiny, fast(name + "sq", steps=6, buckets=False), shapes, base_model=base)
    kept, _ = trained(shared_cache, tiny, fast(name + "kept", steps=6), shapes, base_model=base)
    assert square.losses == kept.losses  # square pictures: the same draws, the same curve


def test_a_visitors_lora_on_a_shared_studio_stays_theirs(shared_cache, tiny, shapes, tmp_path):
    """On a shared studio a visitor's LoRA stays out of the LoRA folder: their History brings it to their own Image
    tab, nobody else's; two visitors' LoRAs of one name never pass for one another, in one loaded pipeline."""
    first, _ = trained(shared_cache, tiny, fast("secret", steps=12), shapes, operator=False)
    assert first.done and "yours alone" in first.status() and first.recipe["shared"] is False
    assert not (tiny.lora_dir / "secret.safetensors").exists() and "secret" not in loras.available(tiny)
    mine = loras.own(tiny, [record("Train", "LoRA secret", [first.path, first.path.with_suffix(".json")])])
    assert mine == {"secret": first.path}
    with pytest.raises(UserError, match="There is no LoRA called 'secret'"):  # anyone else: no such History entry
        picture(shared_cache, tiny, "sks disc, a disc <lora:secret:1>")
    second, _ = trained(shared_cache, tiny, fast("secret", steps=12, seed=7), shapes[::-1][:5], operator=False)
    theirs = loras.own(tiny, [record("Train", "LoRA secret", [second.path])])
    plain = picture(shared_cache, tiny, "sks disc, a disc")
    ours = picture(shared_cache, tiny, "sks disc, a disc <lora:secret:1>", mine=mine)
    other = picture(shared_cache, tiny, "sks disc, a disc <lora:secret:1>", mine=theirs)
    assert np.abs(ours - plain).mean() > 2 and np.abs(other - ours).mean() > 1  # each visitor gets their own LoRA
    assert np.array_equal(picture(shared_cache, tiny, "sks disc, a disc <lora:secret:1>", mine=mine), ours)
    # What a History may name is checked: a Train entry's .safetensors under outputs/train, nothing else.
    stray = tmp_path / "stray.safetensors"
    stray.write_bytes(first.path.read_bytes())
    assert loras.own(tiny, [record("Image", "x", [first.path]), record("Train", "x", [stray])]) == {}


def test_a_training_of_the_same_name_never_overwrites_anothers_checkpoint(shared_cache, tiny, shapes, tmp_path):
    stop, updates = threading.Event(), []
    for update in train_lora(shared_cache, tiny, fast("both", steps=16), shapes, stop=stop, operator=False):
        updates.append(update)
        if update.step >= 4:
            stop.set()
    assert updates[-1].stopped
    trained(shared_cache, tiny, fast("both", steps=4), shapes[:5], operator=False)  # another visitor, same name
    resumed, _ = trained(shared_cache, tiny, fast("both", steps=16), shapes, resume=True, operator=False)
    assert resumed.done and resumed.first_step == updates[-1].step
    kept = tmp_path / "training"  # the checkpoints kept are the most recently saved ones
    for i in range(4):
        (kept / f"t{i}").mkdir(parents=True)
        (kept / f"t{i}" / "info.json").write_text("{}")
        os.utime(kept / f"t{i}" / "info.json", ns=(i * 10**9, i * 10**9))
    files.prune_checkpoints(kept / "t3", keep=2)
    assert sorted(p.name for p in kept.iterdir()) == ["t2", "t3"]


def test_a_sample_the_safety_checker_flags_is_withheld_with_a_sentence(
    shared_cache, tiny, shapes, tiny_image, tmp_path
):
    """SD 1.5's safety checker blacks out what it flags (now and then a picture of a person): a withheld sample is
    said, never shown as a black picture, and the training goes on to its LoRA."""
    from test_image_engine import _checker, _tiny_variant

    checker, extractor = _checker(-10.0)  # flags every picture
    base = _tiny_variant(tiny_image, tmp_path / "checked", safety_checker=checker, feature_extractor=extractor)
    custom = tiny.replace(allow_custom_models=True)
    final, updates = trained(
        shared_cache, custom, fast("checked", steps=4, sample_every=2), shapes, base_model=str(base)
    )
    assert final.done and final.path.exists() and all(u.sample is None for u in updates)
    assert "The sample at step 4 was withheld: the base model's safety checker flagged it" in final.status()


def test_a_name_in_use_is_kept_unless_replaced_and_training_can_be_turned_off(shared_cache, tiny, shapes):
    trained(shared_cache, tiny, fast("mine", steps=1), shapes)
    with pytest.raises(UserError, match="A LoRA called 'mine' exists already \\(name\\)"):
        trained(shared_cache, tiny, fast("mine", steps=1), shapes)
    with pytest.raises(UserError, match="only its operator may replace one"):
        trained(shared_cache, tiny, fast("mine", steps=1), shapes, overwrite=True, operator=False)
    replaced, _ = trained(shared_cache, tiny, fast("mine", steps=2), shapes, overwrite=True)
    assert read_metadata(tiny.lora_dir / "mine.safetensors")["ss_steps"] == "2" and replaced.done
    with pytest.raises(UserError, match="Training is turned off on this studio"):
        trained(shared_cache, tiny.replace(training=False), fast("off", steps=1), shapes)


def test_train_lora_and_caption_images_through_the_api(client, server, shapes):
    from gradio_client import handle_file

    rows = client.predict(images=[handle_file(p) for p in shapes[:5]], api_name="/caption_images")
    assert len(rows["data"] if isinstance(rows, dict) else rows) == 5
    result = client.predict(
        images=[handle_file(p) for p in shapes], name="apidiscs", trigger="sks disc", steps=3, rank=4,
        learning_rate=0.01, resolution=32, batch_size=2, api_name="/train_lora",
    )  # fmt: skip
    status, recipe = result[0], result[4]
    assert status.startswith("Done: 3 steps") and recipe["name"] == "apidiscs"
    assert (server["settings"].lora_dir / "apidiscs.safetensors").exists()


def test_train_from_the_command_line_with_a_kohya_folder(tiny_dir, tmp_path, shapes, monkeypatch):
    """`studio.py generate lora` with a folder in kohya's layout (name.txt beside name.png): the LoRA's path on
    stdout, progress and the tag on stderr; a face without --consent is one sentence and status 2."""
    import shutil

    from test_cli import cli

    monkeypatch.setenv("STUDIO_LORA_DIR", str(tmp_path / "loras"))  # (the subprocess takes the environment)
    folder = tmp_path / "10_discs"
    folder.mkdir()
    for i, path in enumerate(shapes):
        shutil.copy(path, folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"a {COLOURS[i]} disc")
    args = ("lora", "--images", str(folder), "--name", "clidiscs", "--trigger", "sks disc", "--steps", "20",
            "--rank", "4", "--batch-size", "6", "--seed", "1")  # fmt: skip
    done = cli(*args, tiny_dir=tiny_dir, out=tmp_path / "out")
    assert done.returncode == 0, done.stderr
    (path,) = done.stdout.splitlines()
    meta = read_metadata(path)
    assert (tmp_path / "loras" / "clidiscs.safetensors").exists()
    assert json.loads(meta["studio_recipe"])["dataset"][2]["caption"] == "sks disc, a green disc"
    assert "Step " in done.stderr and "<lora:clidiscs:1>" in done.stderr
    refused = cli("lora", "--images", *[str(ASTRONAUT)] * 5, "--name", "x", "--steps", "1", tiny_dir=tiny_dir,
                  out=tmp_path / "out")  # fmt: skip
    assert refused.returncode == 2 and "Tick the consent box first (consent)" in refused.stderr


def test_on_a_shared_studio_a_visitors_lora_is_theirs_alone_in_the_page(browser, tiny_dir, tmp_path):
    """Two logins of a shared studio (neither its operator): Alice's LoRA reaches her Image tab and its LoRA list
    through her History; Bob's studio knows no such LoRA, and the LoRA folder never held it."""
    from helpers import lora_trained_in_page, running_studio
    from playwright.sync_api import expect
    from test_screenshots import disc_pictures

    logins = "teacher:t-pw,alice:a-pw,bob:b-pw"
    folder = tmp_path / "loras"
    with running_studio(tiny_dir, tmp_path / "out", auth=logins, admins="teacher", lora_dir=folder) as (url, *_):

        def visitor(name: str, password: str):
            context = browser.new_context()
            assert context.request.post(f"{url}login", form={"username": name, "password": password}).ok
            page = context.new_page()
            page.goto(url)
            return page

        alice = visitor("alice", "a-pw")
        alice.get_by_role("tab", name="Train").click()
        lora_trained_in_page(alice, disc_pictures(tmp_path), "alicediscs", 8)
        expect(alice.locator("#train-status")).to_contain_text("yours alone")
        assert not (folder / "alicediscs.safetensors").exists()
        alice.locator("#train-to-image").click()
        expect(alice.locator("#image-prompt textarea")).to_have_value(re.compile(r"<lora:alicediscs:1>$"))
        alice.locator("#image-generate").click()
        expect(alice.locator("#image-status")).to_contain_text("Done", timeout=30_000)
        alice.locator("#image-lora-panel").click()
        alice.locator("#image-lora input").click()
        expect(alice.get_by_role("option", name="alicediscs")).to_be_visible()

        bob = visitor("bob", "b-pw")
        bob.get_by_role("tab", name="Image").click()
        bob.locator("#image-prompt textarea").fill("a disc <lora:alicediscs:1>")
        bob.locator("#image-generate").click()
        expect(bob.get_by_text("There is no LoRA called 'alicediscs'").first).to_be_visible(timeout=15_000)
        bob.locator("#image-lora-panel").click()
        bob.locator("#image-lora input").click()
        expect(bob.get_by_role("option", name="alicediscs")).to_have_count(0)
