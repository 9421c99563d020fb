"""Table-driven: bad input across every tab and the API. Each gets one clear sentence (asserted), no traceback,
nothing saved, and the server keeps answering."""

import struct
import zlib

import pytest
from faces_helpers import ASTRONAUT, HOPPER, make_video
from gradio_client import handle_file
from gradio_client.exceptions import AppError


def huge_png(path, width=20000, height=20000):
    """A valid PNG header that declares 20000x20000 pixels (a decompression bomb; the file itself is tiny)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "text.png").write_text("this is text, not a picture")
    (d / "empty.png").write_bytes(b"")
    good_png = ASTRONAUT.read_bytes()
    (d / "truncated.jpg").write_bytes(good_png[: len(good_png) // 3])
    from PIL import Image

    Image.open(ASTRONAUT).save(d / "full.png")
    (d / "truncated.png").write_bytes((d / "full.png").read_bytes()[:5000])
    huge_png(d / "huge.png")
    (d / "empty.wav").write_bytes(b"")
    (d / "header-only.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    (d / "text.wav").write_text("not audio")
    (d / "text.mp4").write_text("not a video")
    (d / "empty.mp4").write_bytes(b"")
    clip = make_video(d / "clip.mp4", frames=4)
    (d / "truncated.mp4").write_bytes(clip.read_bytes()[:1500])
    (d / "notes.txt").write_text("hello")
    import numpy as np
    import soundfile as sf

    sf.write(d / "short.wav", np.zeros(8000, dtype=np.float32), 16000)  # half a second of silence
    return d


F = "FILE:"  # rows name their files with this prefix; the test turns them into uploads

ROWS = [
    # text
    ("/generate_text", {"prompt": ""}, "message (prompt) is empty"),
    ("/generate_text", {"prompt": "   \n\t  "}, "message (prompt) is empty"),
    ("/generate_text", {"prompt": "\u200b\u200b\u2060"}, "message (prompt) is empty"),
    ("/generate_text", {"prompt": "x" * 100_000}, "limit is 4,000"),
    ("/generate_text", {"prompt": "hi", "temperature": -1}, "temperature must be between 0 and 2; got -1."),
    ("/generate_text", {"prompt": "hi", "temperature": 1e300}, "temperature must be between 0 and 2; got 1e+300."),
    (
        "/generate_text",
        {"prompt": "hi", "max_new_tokens": 0},
        "max new tokens (max_new_tokens) must be between 1 and 2048; got 0.",
    ),
    ("/generate_text", {"prompt": "hi", "max_new_tokens": 10**12}, "must be between 1 and 2048; got 1000000000000."),
    ("/generate_text", {"prompt": "hi", "max_new_tokens": "many"}, "must be a number between 1 and 2048; got 'many'"),
    (
        "/generate_text",
        {"prompt": "hi", "top_k": 2.5},
        "top-k (top_k) must be a whole number between 0 and 1000; got 2.5.",
    ),
    ("/generate_text", {"prompt": "hi", "top_p": 0}, "top-p (top_p) must be between 0.01 and 1; got 0."),
    ("/generate_text", {"prompt": "hi", "seed": -5}, "seed must be between 0 and 4294967295; got -5."),
    (
        "/generate_text",
        {"prompt": "hi", "seed": "lucky"},
        "seed must be a number between 0 and 4294967295; got 'lucky'",
    ),
    ("/generate_text", {"prompt": "hi", "model": "../../etc/passwd"}, "not offered here"),
    ("/generate_text", {"prompt": "hi", "model": "someone/remote-code"}, "not offered here"),
    ("/generate_text", {"prompt": ["a", "list"]}, "message (prompt) must be text"),
    (
        "/generate_text",
        {"prompt": "hi", "system_prompt": "s" * 5000},
        "system prompt (system_prompt) is 5,000 characters",
    ),
    # image
    ("/generate_image", {"prompt": ""}, "prompt is empty"),
    ("/generate_image", {"prompt": "x" * 100_000}, "limit is 4,000"),
    ("/generate_image", {"prompt": "a cat", "width": 100}, "not a multiple of 8"),
    ("/generate_image", {"prompt": "a cat", "width": -64}, "width must be between 64 and 1024; got -64."),
    ("/generate_image", {"prompt": "a cat", "height": 20000}, "height must be between 64 and 1024; got 20000."),
    ("/generate_image", {"prompt": "a cat", "steps": 0}, "number of steps (steps) must be between 1 and 100; got 0."),
    ("/generate_image", {"prompt": "a cat", "seed": "lucky"}, "seed must be a whole number"),
    (
        "/generate_image",
        {"prompt": "a cat", "steps": "many"},
        "(steps) must be a number between 1 and 100; got 'many'",
    ),
    (
        "/generate_music",
        {"prompt": "beat", "top_k": "all"},
        "top-k (top_k) must be a number between 0 and 500; got 'all'",
    ),
    ("/generate_image", {"prompt": "a cat", "model": "../../secrets"}, "must be one of the offered choices"),
    (
        "/generate_image",
        {"prompt": "a cat", "sampler": "Euler z"},
        "sampler must be one of the offered choices (Model default, Euler",
    ),
    ("/generate_image", {"prompt": "x", "control_image": F + "text.png"}, "is not an image the studio can read"),
    ("/generate_image", {"prompt": "x", "control_image": F + "full.png", "control_type": "Edges"}, "one of"),
    ("/generate_image", {"prompt": "x", "control_image": F + "full.png", "control_scale": 9}, "between 0 and 2"),
    ("/generate_image", {"prompt": "x", "control_image": F + "full.png", "control_model": "../x"}, "offered choices"),
    (
        "/generate_image",
        {"prompt": "x", "ip_adapter_image": F + "huge.png"},
        "(ip_adapter_image) is 20000x20000 pixels",
    ),
    ("/generate_image", {"prompt": "x", "ip_adapter_image": F + "full.png", "ip_adapter_scale": -1}, "between 0"),
    ("/control_map", {"control_type": "Pose", "control_image": F + "truncated.png"}, "not an image"),
    ("/image_to_image", {"prompt": "x", "image": F + "text.png"}, "not an image the studio can read"),
    ("/image_to_image", {"prompt": "x", "image": F + "empty.png"}, "not an image the studio can read"),
    ("/image_to_image", {"prompt": "x", "image": F + "truncated.png"}, "not an image the studio can read"),
    ("/image_to_image", {"prompt": "x", "image": F + "truncated.jpg"}, "not an image the studio can read"),
    ("/image_to_image", {"prompt": "x", "image": F + "huge.png"}, "input image (image) is 20000x20000 pixels; the"),
    ("/image_to_image", {"image": F + "full.png", "prompt": ""}, "prompt is empty"),
    ("/restore_image_settings", {"file": F + "full.png"}, "carries no recipe"),
    ("/outpaint", {"prompt": "x", "outpaint_sides": ["Left"], "image": F + "text.png"}, "not an image"),
    (
        "/outpaint",
        {"image": F + "full.png", "prompt": "x", "outpaint_sides": []},
        "Choose the sides to extend (outpaint_sides)",
    ),
    (
        "/outpaint",
        {"image": F + "full.png", "prompt": "x", "outpaint_pixels": 10**9},
        "must be between 8 and 512; got 1000000000.",
    ),
    ("/outpaint", {"prompt": "x", "image": None}, "Add an input image to extend"),
    ("/upscale", {"prompt": "x", "image": F + "truncated.png"}, "not an image the studio can read"),
    ("/upscale", {"image": F + "full.png", "prompt": ""}, "prompt is empty"),  # a photo: no recipe to take it from
    ("/inpaint", {"prompt": "x", "image": {"background": F + "text.png", "layers": [F + "full.png"]}}, "not an image"),
    (
        "/inpaint",
        {"prompt": "x", "image": {"background": F + "huge.png", "layers": [F + "full.png"]}},
        "image to inpaint (image) is 20000x20000 pixels",
    ),
    (
        "/inpaint",
        {"prompt": "x", "image": {"background": F + "full.png", "layers": [F + "empty.png"]}},
        "not an image",
    ),
    ("/inpaint", {"prompt": "x", "image": {"background": F + "full.png", "layers": []}}, "paint over the part"),
    ("/inpaint", {"prompt": "x", "image": {"background": None, "layers": []}}, "Add an image to inpaint"),
    # music
    ("/generate_music", {"prompt": ""}, "description (prompt) is empty"),
    ("/generate_music", {"prompt": "beat", "duration": 0}, "The duration must be between 1 and 30 seconds; got 0."),
    (
        "/generate_music",
        {"prompt": "beat", "duration": 600},
        "The duration must be between 1 and 30 seconds; got 600.",
    ),
    ("/generate_music", {"prompt": "beat", "seed": "x"}, "seed must be a whole number"),
    (
        "/generate_music",
        {"prompt": "beat", "model": "tiny:musicgen-melody", "melody": F + "text.wav"},
        "not an audio file the studio can read",
    ),
    (
        "/generate_music",
        {"prompt": "beat", "model": "tiny:musicgen-melody", "melody": F + "empty.wav"},
        "not an audio file the studio can read",
    ),
    (
        "/generate_music",
        {"prompt": "beat", "model": "tiny:musicgen-melody", "melody": F + "header-only.wav"},
        "not an audio file the studio can read",
    ),
    ("/generate_music", {"prompt": "beat", "melody": F + "full.png"}, "not an audio file the studio can read"),
    ("/continue_music", {"prompt": "beat", "continue_from": F + "text.wav"}, "not an audio file the studio can read"),
    ("/continue_music", {"prompt": "beat", "continue_from": F + "empty.wav"}, "not an audio file the studio can read"),
    ("/continue_music", {"prompt": "beat", "continue_from": F + "notes.txt"}, "not an audio file the studio can read"),
    ("/continue_music", {"prompt": "beat", "continue_from": F + "short.wav"}, "shorter than 1 s"),
    (
        "/continue_music",
        {"continue_from": F + "short.wav", "prompt": ""},
        "description (prompt) is empty",
    ),  # no recipe inside
    # voice
    ("/speak", {"text": ""}, "The text is empty"),
    ("/speak", {"text": "Hi.", "voice": "nobody"}, "There is no voice called 'nobody'"),
    ("/speak", {"text": "Hi.", "speed": 5}, "The speed must be between 0.5 and 2"),
    ("/narrate", {"speech": F + "short.wav", "music": F + "text.wav"}, "not an audio file the studio can read"),
    ("/narrate", {"speech": F + "short.wav", "music": F + "short.wav", "duck_db": 50}, "between 0 and 30 dB"),
    (
        "/clone_voice",
        {"text": "Hi.", "reference": F + "short.wav", "reference_text": "Hello.", "consent": False},
        "Tick the consent box",
    ),
    (
        "/clone_voice",
        {"text": "Hi.", "reference_text": "Hello.", "consent": True, "reference": F + "short.wav"},
        "give at least 3 s",
    ),
    (
        "/clone_voice",
        {"text": "Hi.", "reference": F + "short.wav", "consent": True, "reference_text": ""},
        "is empty",
    ),
    # video
    ("/generate_video", {"prompt": ""}, "The description (prompt) is empty"),
    ("/generate_video", {"prompt": "waves", "num_frames": 500}, "must be between 5 and 81"),
    ("/generate_video", {"prompt": "waves", "model": "tiny:wan-ti2v", "first_frame": F + "text.png"}, "not a picture"),
    ("/generate_video", {"prompt": "waves", "soundtrack": F + "text.wav"}, "not an audio file the studio can read"),
    ("/add_soundtrack", {"music_prompt": "piano", "video": F + "text.mp4"}, "could not be read"),
    ("/train_lora", {"name": "ok", "images": [F + "full.png"] * 2}, "Give at least 5 pictures"),
    ("/train_lora", {"name": "ok", "images": [F + "full.png"] * 4 + [F + "text.png"]}, "not a picture the studio"),
    ("/train_lora", {"images": [F + "full.png"] * 5, "name": "../up"}, "becomes the LoRA's file name"),
    ("/caption_images", {"images": [F + "truncated.png"]}, "not a picture the studio can read"),
    ("/add_soundtrack", {"video": F + "clip.mp4", "music_prompt": ""}, "is empty"),
    ("/add_soundtrack", {"video": F + "clip.mp4", "soundtrack": F + "text.wav"}, "not an audio file"),
    # face swap
    (
        "/swap_face",
        {"source_image": F + "hopper", "target_image": F + "astronaut", "consent": False},
        "Tick the consent box",
    ),
    (
        "/swap_face",
        {"target_image": F + "astronaut", "consent": True, "source_image": F + "text.png"},
        "source image is not an image",
    ),
    (
        "/swap_face",
        {"source_image": F + "hopper", "consent": True, "target_image": F + "empty.png"},
        "target image is not an image",
    ),
    (
        "/swap_face",
        {"source_image": F + "hopper", "consent": True, "target_image": F + "huge.png"},
        "target image (target_image) is 20000x20000 pixels; the studio accepts up to 64",
    ),
    (
        "/swap_face",
        {"source_image": F + "hopper", "target_image": F + "astronaut", "consent": True, "face_index": 7},
        "no face 7 in the target",
    ),
    (
        "/swap_face_video",
        {"source_image": F + "hopper", "consent": True, "target_video": F + "text.mp4"},
        "not a video the studio can read",
    ),
    (
        "/swap_face_video",
        {"source_image": F + "hopper", "consent": True, "target_video": F + "empty.mp4"},
        "not a video the studio can read",
    ),
    (
        "/swap_face_video",
        {"source_image": F + "hopper", "consent": True, "target_video": F + "truncated.mp4"},
        "not a video the studio can read",
    ),
    (
        "/swap_face_video",
        {"source_image": F + "hopper", "target_video": F + "clip.mp4", "consent": None},
        "Tick the consent box",
    ),
    ("/get_neural_engine", {"accept_licence": False}, "Tick the licence box first"),
    (
        "/swap_face",
        {"source_image": F + "hopper", "target_image": F + "full.png", "consent": True, "face_enhancer": "GFPGAN v9"},
        "face enhancer (face_enhancer) must be one of",
    ),  # fmt: skip
    # extras
    ("/extras", {"upscaler": "tiny-compact-x4", "image": F + "text.png"}, "not an image the studio can read"),
    ("/extras", {"upscaler": "tiny-compact-x4", "image": F + "huge.png"}, "(image) is 20000x20000 pixels"),
    ("/extras", {"image": F + "full.png", "upscaler": "tiny-compact-x4", "scale": 9}, "scale must be between 1 and 8"),
    ("/extras", {"image": F + "full.png", "upscaler": "tiny-compact-x4", "target_width": 8}, "is not larger than"),
    ("/extras", {"image": F + "full.png", "upscaler": "tiny-compact-x4", "target_height": -5}, "between 0 and 8192"),
    ("/extras", {"image": F + "full.png", "upscaler": "../../etc/passwd"}, "upscaler must be one of"),
    ("/extras", {"image": F + "full.png", "upscaler": "None", "scale": 1}, "there is nothing to do"),
    ("/extras", {"upscaler": "tiny-compact-x4", "image": None}, "Add a picture first"),
    ("/upscale", {"image": F + "full.png", "prompt": "x", "upscaler": "4x-Nowhere"}, "upscaler must be one of"),
    # verify
    ("/verify", {"file": F + "notes.txt"}, "not a file the Verify tab can read"),
    ("/verify", {"file": F + "empty.png"}, "not a file the Verify tab can read"),
    ("/verify", {"file": F + "truncated.png"}, "could not be decoded"),
]


def resolve(value, files):
    if isinstance(value, dict):  # the image editor's value: {"background": ..., "layers": [...], "composite": ...}
        return {"composite": None, **{k: resolve(v, files) for k, v in value.items()}}
    if isinstance(value, list):
        return [resolve(v, files) for v in value]
    if isinstance(value, str) and value.startswith(F):
        name = value[len(F) :]
        path = {"hopper": HOPPER, "astronaut": ASTRONAUT}.get(name, files / name)
        return handle_file(str(path))
    return value


def saved_files(server):
    out = server["settings"].output_dir
    return sorted(p for p in out.rglob("*") if p.is_file() and p.name != "audit.jsonl") if out.exists() else []


def test_the_matrix_has_at_least_forty_rows():
    assert len(ROWS) >= 40 and len({r[0] for r in ROWS}) >= 8


NAMED = {  # rows whose sentence names the input in other words than its parameter
    "/restore_image_settings": "file",  # "This file carries no recipe"
    "/verify": "file",
    "/get_neural_engine": "licence",  # "Tick the licence box first"
}


def named_in(message: str, param: str) -> bool:
    """The sentence names the parameter: as written (max_new_tokens) or in words (target image)."""
    words = {"top_k": "top-k", "top_p": "top-p"}.get(param, param.replace("_", " "))
    return param in message or words in message.lower()


@pytest.fixture(scope="module")
def one_client(server):
    """One client for the whole matrix (each costs a second: the page's config and API description)."""
    from helpers import connect

    return connect(server["url"])


@pytest.mark.parametrize(("api", "kwargs", "fragment"), ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_bad_input_gets_one_sentence(one_client, server, files, api, kwargs, fragment):
    client = one_client
    before = saved_files(server)
    with pytest.raises(AppError) as err:
        client.predict(**{k: resolve(v, files) for k, v in kwargs.items()}, api_name=api)
    message = str(err.value)
    assert fragment.lower() in message.lower(), message
    bad = NAMED.get(api, list(kwargs)[-1])  # a row's bad argument comes last
    assert named_in(message, bad), f"the sentence does not name {bad!r}: {message}"
    assert "Traceback" not in message and 'File "' not in message and len(message) < 400
    assert saved_files(server) == before
    assert client.predict(api_name="/models")  # the server still answers
