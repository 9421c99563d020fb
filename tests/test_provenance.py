"""Every output says what it is: read back with independent readers (watermark decoder, exiftool, C2PA reader)."""

import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from faces_helpers import ASTRONAUT, HOPPER
from PIL import Image

from core import provenance, saving
from core.errors import UserError
from core.settings import Settings
from tabs.faceswap.engine import swap_face_image
from tabs.image.engine import ImageParams, generate_image
from tabs.music.engine import MusicParams, generate_music
from tabs.verify.engine import verify_file

EXIFTOOL = shutil.which("exiftool")


def exif(path) -> dict:
    out = subprocess.run([EXIFTOOL, "-j", "-G", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory, shared_cache, tiny_image, tiny_music, tiny_dir):
    """One output of each kind, made by the engines with the studio's save path."""
    out = tmp_path_factory.mktemp("made")
    s = Settings(
        image_model=str(tiny_image),
        music_model=str(tiny_music),
        output_dir=out / "outputs",
        cache_dir=out / "cache",
        device="cpu",
    )
    image = list(generate_image(shared_cache, s, ImageParams("a red fox", steps=2, width=256, height=256, seed=1)))[
        -1
    ].images[0]
    small = list(generate_image(shared_cache, s, ImageParams("a red fox", steps=2, width=64, height=64, seed=1)))[
        -1
    ].images[0]
    music = list(generate_music(shared_cache, s, MusicParams("calm piano", duration=1, seed=1)))[-1].path
    swap = swap_face_image(shared_cache, s, str(HOPPER), str(ASTRONAUT), consent=True).path
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 32))
    photo = Image.open(ASTRONAUT).convert("RGB").resize((64, 64))
    inpainted = list(
        generate_image(shared_cache, s, ImageParams("a hat", steps=2, strength=1, seed=1), init_image=photo, mask=mask)
    )[-1].images[0]
    return {"settings": s, "image": image, "small": small, "music": music, "swap": swap, "inpaint": inpainted}


def rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_images_carry_the_watermark_except_tiny_ones(made):
    assert provenance.read_watermark(rgb(made["image"]))["present"]
    assert provenance.read_watermark(rgb(made["swap"]))["payload"] == "GAIStu"
    assert not provenance.read_watermark(rgb(ASTRONAUT))["present"]  # a plain photo
    recipe = json.loads(made["small"].with_suffix(".json").read_text())
    assert recipe["provenance"]["watermark"].startswith("skipped")


def test_watermark_survives_jpeg_but_the_manifest_does_not(made, tmp_path):
    jpeg = tmp_path / "copy.jpg"
    Image.open(made["swap"]).convert("RGB").save(jpeg, quality=85)  # a photo (the tiny model's noise would not)
    assert provenance.read_watermark(rgb(jpeg))["present"]
    assert not provenance.read_c2pa(jpeg.read_bytes(), "image/jpeg")["present"]


@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool (Debian libimage-exiftool-perl) is installed by .ci/run")
def test_exiftool_reads_the_digital_source_type(made):
    assert exif(made["image"])["XMP:DigitalSourceType"].endswith("/trainedAlgorithmicMedia")
    assert exif(made["swap"])["XMP:DigitalSourceType"].endswith("/compositeWithTrainedAlgorithmicMedia")
    assert exif(made["inpaint"])["XMP:DigitalSourceType"].endswith("/compositeWithTrainedAlgorithmicMedia")
    tags = exif(made["music"])
    assert "AI-generated" in tags["RIFF:Copyright"] and json.loads(tags["RIFF:Comment"])["seed"] == 1


def test_content_credentials_read_back_valid_and_trusted(made):
    root = (made["settings"].cache_dir / "c2pa" / "root.pem").read_bytes()
    for key, mime, actions in (
        ("image", "image/png", ["c2pa.created"]),
        ("music", "audio/wav", ["c2pa.created"]),
        ("swap", "image/png", ["c2pa.created", "c2pa.edited"]),
        ("inpaint", "image/png", ["c2pa.created", "c2pa.edited"]),  # a photo, part of it repainted
    ):
        data = made[key].read_bytes()
        untrusted = provenance.read_c2pa(data, mime)
        assert untrusted["state"] == "Valid" and untrusted["issues"] == ["signingCredential.untrusted"]
        trusted = provenance.read_c2pa(data, mime, root)
        assert trusted["state"] == "Trusted", key
        assert [a["action"] for a in trusted["actions"]] == actions
    assert sf.info(made["music"]).frames == 32000  # the WAV still plays after signing


def test_a_changed_pixel_breaks_the_credentials(made, tmp_path):
    data = bytearray(made["image"].read_bytes())
    data[len(data) // 2] ^= 0x01
    broken = tmp_path / "broken.png"
    broken.write_bytes(bytes(data))
    assert provenance.read_c2pa(bytes(data), "image/png")["state"] == "Invalid"


def test_verify_reports_in_plain_words(made, tmp_path):
    s = made["settings"]
    image = verify_file(made["image"], s)
    assert image["summary"].startswith("**This file carries the studio's marks.**")
    assert image["content_credentials"]["state"] == "Trusted" and image["recipe"]["prompt"] == "a red fox"
    assert image["source_type"] == "trainedAlgorithmicMedia" and not image["from_face_swap"]
    swap = verify_file(made["swap"], s)
    assert swap["from_face_swap"] and "This came from a face swap" in swap["summary"]
    inpainted = verify_file(made["inpaint"], s)
    assert inpainted["source_type"] == "compositeWithTrainedAlgorithmicMedia" and not inpainted["from_face_swap"]
    assert "repainted by the model (inpainting) (25% of it)" in inpainted["summary"]
    music = verify_file(made["music"], s)
    assert music["kind"] == "audio" and music["recipe"]["seed"] == 1 and music["content_credentials"]["present"]
    plain = verify_file(ASTRONAUT, s)
    assert plain["summary"].startswith("**No sign that this file came from the studio**")
    assert not plain["watermark"]["present"] and not plain["content_credentials"]["present"]


def test_verify_bounds_the_work_a_big_image_costs(made, tmp_path):
    s = made["settings"]
    big = tmp_path / "big.png"
    Image.new("RGB", (5000, 4000), "white").save(big)  # 20 megapixels: larger than anything the studio makes
    report = verify_file(big, s)
    assert report["watermark"]["matching_bits"] is None
    assert "No watermark check: the image is larger than any the studio makes" in report["summary"]
    bomb = tmp_path / "bomb.png"
    Image.new("1", (9000, 8000)).save(bomb)  # 72 megapixels, a small file
    with pytest.raises(UserError, match="9000x8000 pixels; the studio accepts up to 64 megapixels"):
        verify_file(bomb, s)


def test_operator_certificates_are_used(made, tmp_path):
    from core.provenance import credentials

    own = credentials(tmp_path / "operator")  # stands in for an operator's own CA-issued chain and key
    cert, key = tmp_path / "operator" / "c2pa" / "chain.pem", tmp_path / "operator" / "c2pa" / "signer.key"
    s = made["settings"].replace(c2pa_cert=cert, c2pa_key=key, cache_dir=tmp_path / "elsewhere")
    saved = saving.finish(s, "image", "x", "png", {"tab": "image"}, provenance.png_writer(Image.open(made["image"])))
    assert provenance.read_c2pa(saved.path.read_bytes(), "image/png", own.root_pem)["state"] == "Trusted"
    assert not (tmp_path / "elsewhere" / "c2pa").exists()  # no local CA was made


@pytest.mark.parametrize("size", [(512, 512), (300, 258)])
def test_the_studios_watermark_encoder_equals_invisible_watermarks_own(size):
    """core.provenance embeds dwtDctSvd on all blocks at once; invisible-watermark's encoder, block by block, gives the
    very same pixels (sides that are not multiples of 4 too), and its decoder reads the payload."""
    from imwatermark import WatermarkDecoder, WatermarkEncoder

    rng = np.random.default_rng(1)
    small = Image.fromarray(rng.integers(0, 255, (size[1] // 16 + 1, size[0] // 16 + 1, 3), dtype=np.uint8))
    rgb = np.asarray(small.resize(size, Image.Resampling.BICUBIC))  # smooth, like a photo
    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", provenance.WATERMARK_PAYLOAD)
    theirs = encoder.encode(np.ascontiguousarray(rgb[..., ::-1]), "dwtDctSvd")[..., ::-1]
    ours, marked = provenance.embed_watermark(rgb)
    assert marked and np.array_equal(ours, theirs)
    bgr = np.ascontiguousarray(ours[..., ::-1])
    assert WatermarkDecoder("bytes", 48).decode(bgr, "dwtDctSvd") == provenance.WATERMARK_PAYLOAD


def test_the_studios_watermark_reader_agrees_with_invisible_watermarks_decoder():
    """read_watermark votes on all blocks at once; invisible-watermark's decoder, block by block, reads the same
    bits from a marked picture, the same picture through JPEG, and an unmarked one."""
    import io

    from imwatermark import WatermarkDecoder

    rng = np.random.default_rng(2)
    small = Image.fromarray(rng.integers(0, 255, (33, 33, 3), dtype=np.uint8))
    plain = np.asarray(small.resize((512, 512), Image.Resampling.BICUBIC))
    marked, _ = provenance.embed_watermark(plain)
    out = io.BytesIO()
    Image.fromarray(marked).save(out, format="JPEG", quality=80)
    jpeg = np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("RGB"))
    expected = np.unpackbits(np.frombuffer(provenance.WATERMARK_PAYLOAD, np.uint8))
    for rgb in (marked, jpeg, plain):
        theirs = WatermarkDecoder("bytes", 48).decode(np.ascontiguousarray(rgb[..., ::-1]), "dwtDctSvd")
        matching = int((np.unpackbits(np.frombuffer(bytes(theirs), np.uint8)) == expected).sum())
        assert provenance.read_watermark(rgb)["matching_bits"] == matching
    assert provenance.read_watermark(marked)["present"] and not provenance.read_watermark(plain)["present"]
