"""The Video tab: tiny Wan pipelines of the real classes (text to video like Wan 2.1 1.3B; text or picture to video
like Wan 2.2 TI2V 5B) through the engine, the API and the CLI; what a user gets: an H.264 MP4 that browsers play, at
the frame count, size and frame rate asked, with its soundtrack, its label and its credentials."""

import json
import re
import threading

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from core.errors import Stopped, UserError
from core.models import make_cache
from tabs.verify.engine import verify_file
from tabs.video.engine import VideoParams, generate_video


def made(cache, settings, prompt="a fox in the snow", model="tiny:wan", **kwargs):
    options = {k: kwargs.pop(k) for k in ("first_frame", "soundtrack", "stop") if k in kwargs}
    params = VideoParams(prompt, **{"num_frames": 9, "fps": 8, "width": 64, "height": 64, "steps": 2, **kwargs})
    updates = list(generate_video(cache, settings.replace(tiny=True), params, model=model, **options))
    return updates[-1], updates


def frames_of(path):
    with av.open(str(path)) as f:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in f.decode(video=0)])


def streams_of(path):
    with av.open(str(path)) as f:
        return {s.type: s for s in f.streams}, {s.type: float(s.duration * s.time_base) for s in f.streams}


def test_a_video_is_an_h264_mp4_at_the_frames_size_and_rate_asked_with_its_label_and_recipe(shared_cache, settings):
    final, updates = made(shared_cache, settings, seed=3, steps=5)
    streams, seconds = streams_of(final.path)
    video = streams["video"].codec_context
    assert (video.name, video.pix_fmt, video.width, video.height) == ("h264", "yuv420p", 64, 64)
    assert float(streams["video"].average_rate) == 8 and abs(seconds["video"] - 9 / 8) < 0.01
    assert len(frames_of(final.path)) == 9 and "audio" not in streams
    assert [u.step for u in updates if not u.done][-1] == 5 and any(u.preview is not None for u in updates)
    assert final.status().startswith("Done: 1.1 s of video")
    recipe = json.loads(final.path.with_suffix(".json").read_text())
    assert recipe["mode"] == "text to video" and recipe["num_frames"] == 9 and recipe["labelled"] is True
    report = verify_file(final.path, settings)
    assert report["kind"] == "video" and report["content_credentials"]["state"] in ("Valid", "Trusted")
    unlabelled, _ = made(shared_cache, settings.replace(video_label=False), seed=3, steps=5)
    corner = (slice(None), slice(48, 64), slice(24, 64))  # the label's corner, bottom right
    a, b = frames_of(final.path), frames_of(unlabelled.path)
    assert np.abs(a[corner].astype(int) - b[corner].astype(int)).mean() > 10  # the label is there
    assert np.abs(a[:, :16, :16].astype(int) - b[:, :16, :16].astype(int)).mean() < 3  # and only there


def test_a_seed_repeats_a_video_and_another_seed_changes_it(shared_cache, settings):
    one, two, other = (frames_of(made(shared_cache, settings, seed=s)[0].path).astype(int) for s in (5, 5, 6))
    # The same seed: the same video. Exactly, run alone; late in the whole suite's big process a handful of pixels
    # once came out a few levels apart (the cause was not found: noted), so "the same" is "under a fifth of a level
    # on average", against more than half a level for another seed.
    assert np.abs(one - two).mean() < 0.2
    assert np.abs(one - other).mean() > 0.5  # (random weights: a grey, faint video)


def test_frames_and_size_are_made_what_wan_takes_and_the_user_is_told(shared_cache, settings):
    final, _ = made(shared_cache, settings, num_frames=11, width=70, height=64)
    assert len(frames_of(final.path)) == 9 and streams_of(final.path)[0]["video"].codec_context.width == 64
    assert "Frames made 9 (Wan takes 4k+1)." in final.status() and "width was made 64" in final.status()


def test_a_picture_opens_the_video_with_wan_2_2(shared_cache, settings, tmp_path):
    picture = tmp_path / "first.png"
    Image.new("RGB", (96, 64), (200, 40, 40)).save(picture)
    one, _ = made(shared_cache, settings, model="tiny:wan-ti2v", first_frame=str(picture), seed=1)
    other, _ = made(shared_cache, settings, model="tiny:wan-ti2v", first_frame=str(picture), seed=2)
    a, b = frames_of(one.path), frames_of(other.path)
    assert np.abs(a[0].astype(int) - b[0].astype(int)).mean() < 2  # the first frame is the picture's, whatever seed
    assert np.abs(a[1:].astype(int) - b[1:].astype(int)).mean() > 2  # the rest moves with the seed
    assert one.recipe["mode"] == "picture to video" and one.recipe["first_frame_sha256"]
    assert one.recipe["provenance"]["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")
    with pytest.raises(UserError, match=r"makes videos from text only: choose Wan2\.2-TI2V-5B"):
        made(shared_cache, settings, model="tiny:wan", first_frame=str(picture))


def test_a_wan_folder_of_ones_own_says_what_it_takes(shared_cache, settings, tiny_dir, tmp_path):
    """A custom folder (allowed on private studios) is read for what it is: a Wan 2.2 TI2V layout takes a picture and
    sizes in multiples of 32, a Wan 2.1 one refuses a picture with a sentence."""
    from core import tiny
    from tabs.video.engine import model_defaults

    ti2v, t2v = (str(tiny.ensure(name, tiny_dir)) for name in ("tiny:wan-ti2v", "tiny:wan"))
    assert model_defaults(ti2v).first_frame and not model_defaults(t2v).first_frame
    custom = settings.replace(allow_custom_models=True)
    picture = tmp_path / "first.png"
    Image.new("RGB", (64, 64), (20, 160, 40)).save(picture)
    final, _ = made(shared_cache, custom, model=ti2v, first_frame=str(picture), width=80, height=64, seed=1)
    assert final.recipe["mode"] == "picture to video" and final.recipe["width"] == 64
    assert "offload" not in final.recipe  # (on a CPU nothing is offloaded)
    with pytest.raises(UserError, match="makes videos from text only"):
        made(shared_cache, custom, model=t2v, first_frame=str(picture))


def test_a_soundtrack_is_muxed_under_the_video_for_its_length(shared_cache, settings, tmp_path):
    music = tmp_path / "music.wav"
    t = np.arange(5 * 32000) / 32000
    sf.write(music, (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 32000)
    final, _ = made(shared_cache, settings, soundtrack=str(music), num_frames=17, fps=8)
    streams, seconds = streams_of(final.path)
    assert streams["audio"].codec_context.name == "aac"
    assert abs(seconds["audio"] - 17 / 8) < 1 / 8 and abs(seconds["video"] - 17 / 8) < 0.01  # cut to the video
    with av.open(str(final.path)) as f:
        sound = np.concatenate([frame.to_ndarray().reshape(-1) for frame in f.decode(audio=0)])
    assert np.sqrt(np.mean(sound**2)) > 0.1  # the music is heard, not silence
    assert final.recipe["soundtrack"]["seconds"] == 5.0


def test_a_frame_of_a_video_can_be_taken_out_for_the_image_tab(shared_cache, settings, tmp_path):
    from tabs.video.media import video_frame

    final, _ = made(shared_cache, settings, seed=7)
    frames = frames_of(final.path)
    assert np.array_equal(np.asarray(video_frame(final.path, 4, 81)), frames[3])
    with pytest.raises(UserError, match=r"The video has 9 frames; choose a frame \(frame\) from 1 to 9"):
        video_frame(final.path, 20, 81)
    with pytest.raises(UserError, match=r"between 1 and 81"):
        video_frame(final.path, 200, 81)
    with pytest.raises(UserError, match="could not be read"):
        video_frame(__file__, 1, 81)


def test_a_soundtrack_goes_under_a_finished_video_without_touching_its_frames(shared_cache, settings, tmp_path):
    from tabs.video.soundtrack import add_soundtrack

    final, _ = made(shared_cache, settings, num_frames=17, fps=8, seed=2)
    music = tmp_path / "music.wav"
    t = np.arange(3 * 32000) / 32000
    sf.write(music, (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 32000)
    tiny = settings.replace(tiny=True)
    given = list(add_soundtrack(shared_cache, tiny, final.path, soundtrack=str(music)))[-1]
    streams, seconds = streams_of(given.path)
    assert streams["audio"].codec_context.name == "aac" and abs(seconds["audio"] - 17 / 8) < 1 / 8
    assert np.array_equal(frames_of(given.path), frames_of(final.path))  # the frames were copied, not re-encoded
    assert given.recipe["soundtrack"]["source"] == "given" and given.recipe["video_sha256"]
    assert given.recipe["provenance"]["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")
    composed = list(add_soundtrack(shared_cache, tiny, final.path, music_prompt="calm piano", seed=3))
    assert any("Composing the soundtrack" in u.said for u in composed[:-1])
    last = composed[-1]
    assert streams_of(last.path)[0]["audio"].codec_context.name == "aac"
    assert last.recipe["soundtrack"]["source"] == "composed"
    assert last.recipe["soundtrack"]["recipe"]["prompt"] == "calm piano"
    assert last.recipe["soundtrack"]["recipe"]["duration"] >= 17 / 8  # music as long as the video
    assert verify_file(last.path, settings)["content_credentials"]["state"] in ("Valid", "Trusted")
    with pytest.raises(UserError, match=r"music description \(music_prompt\) is empty"):
        list(add_soundtrack(shared_cache, tiny, final.path))
    with pytest.raises(UserError, match=r"The video \(video\) could not be read"):
        list(add_soundtrack(shared_cache, tiny, music, music_prompt="x"))


@pytest.mark.parametrize(("codec", "suffix"), [("libvpx-vp9", "webm"), ("mpeg4", "mp4")])
def test_a_video_of_another_codec_gets_its_soundtrack_re_encoded(shared_cache, settings, tmp_path, monkeypatch,
                                                                 codec, suffix):  # fmt: skip
    """A WebM (VP9) or an MPEG-4 Part 2 video, as phones and screen recorders make: its frames re-encoded as H.264
    (every browser plays it), the same frames (within the codecs' loss), the soundtrack under them."""
    from fractions import Fraction

    from tabs.video import soundtrack
    from tabs.video.soundtrack import add_soundtrack

    source = tmp_path / f"given.{suffix}"
    colours = np.array([[(i * 15) % 256, 255 - (i * 15) % 256, 80] for i in range(12)], np.uint8)
    with av.open(str(source), "w") as out:
        stream = out.add_stream(codec, rate=Fraction(6))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i, colour in enumerate(colours):
            frame = av.VideoFrame.from_ndarray(np.broadcast_to(colour, (48, 64, 3)).copy(), "rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    music = tmp_path / "music.wav"
    sf.write(music, (0.4 * np.sin(2 * np.pi * 220 * np.arange(3 * 32000) / 32000)).astype(np.float32), 32000)
    given = list(add_soundtrack(shared_cache, settings, source, soundtrack=str(music)))[-1]
    streams, seconds = streams_of(given.path)
    assert streams["video"].codec_context.name == "h264" and streams["audio"].codec_context.name == "aac"
    assert abs(seconds["video"] - 2.0) < 0.01 and abs(seconds["audio"] - 2.0) < 0.1  # 12 frames at 6 fps
    frames = frames_of(given.path)
    assert len(frames) == 12 and frames.shape[1:] == (48, 64, 3)
    assert np.abs(frames.mean(axis=(1, 2)) - colours).max() < 12  # each frame's colour, through two lossy codecs
    assert given.recipe["frames"].startswith("decoded from the given video")
    monkeypatch.setattr(soundtrack, "REENCODE_PIXELS", 11 * 64 * 48)  # the bound on what is decoded holds
    with pytest.raises(UserError, match="re-encoding it would decode"):
        list(add_soundtrack(shared_cache, settings, source, soundtrack=str(music)))


def test_ltx_video_makes_8k_plus_1_frames_from_text_or_a_picture_with_previews(shared_cache, settings, tmp_path):
    final, updates = made(shared_cache, settings, model="tiny:ltx", num_frames=13, steps=5, seed=4)
    assert len(frames_of(final.path)) == 9 and "Frames made 9 (LTX-Video takes 8k+1)." in final.status()
    assert any(u.preview is not None for u in updates)  # its packed latents are unpacked for the preview
    assert final.recipe["family"] == "LTX-Video" and final.recipe["licence"].startswith("none")
    again, _ = made(shared_cache, settings, model="tiny:ltx", seed=4, steps=5)
    assert np.array_equal(frames_of(again.path), frames_of(final.path))
    picture = tmp_path / "first.png"
    Image.new("RGB", (64, 64), (220, 200, 30)).save(picture)
    one, _ = made(shared_cache, settings, model="tiny:ltx", first_frame=str(picture), seed=1)
    other, _ = made(shared_cache, settings, model="tiny:ltx", first_frame=str(picture), seed=2)
    a, b = frames_of(one.path), frames_of(other.path)
    assert np.abs(a[0].astype(int) - b[0].astype(int)).mean() < np.abs(a[1:].astype(int) - b[1:].astype(int)).mean()
    assert one.recipe["mode"] == "picture to video"
    with pytest.raises(UserError, match="The width must be between 32"):
        made(shared_cache, settings, model="tiny:ltx", width=16)


@pytest.fixture(scope="module")
def video_loras(tmp_path_factory, tiny_dir):
    """wanstyle.safetensors: a peft LoRA on the tiny Wan transformer (diffusers' format); ltxstyle: one on the
    tiny LTX-Video transformer."""
    import torch
    from diffusers import LTXPipeline, LTXVideoTransformer3DModel, WanPipeline, WanTransformer3DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from core import tiny

    folder = tmp_path_factory.mktemp("video-loras")
    for name, pipeline, model_class, tiny_name in (
        ("wanstyle", WanPipeline, WanTransformer3DModel, "tiny:wan"),
        ("ltxstyle", LTXPipeline, LTXVideoTransformer3DModel, "tiny:ltx"),
    ):
        torch.manual_seed(0)
        transformer = model_class.from_pretrained(tiny.ensure(tiny_name, tiny_dir) / "transformer")
        transformer.add_adapter(
            LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
        )
        with torch.no_grad():
            for key, weight in transformer.named_parameters():
                if "lora_B" in key:
                    weight.mul_(20)  # random weights at the test's scale barely move a tiny model's frames
        pipeline.save_lora_weights(
            folder, transformer_lora_layers=get_peft_model_state_dict(transformer), weight_name=f"{name}.safetensors"
        )
    return folder


def test_a_video_lora_changes_the_video_and_weight_zero_does_not(shared_cache, settings, video_loras):
    with_loras = settings.replace(lora_dir=video_loras)
    plain = frames_of(made(shared_cache, with_loras, seed=9)[0].path).astype(int)
    styled, _ = made(shared_cache, with_loras, "a fox in the snow <lora:wanstyle:1>", seed=9)
    zero, _ = made(shared_cache, with_loras, "a fox in the snow <lora:wanstyle:0>", seed=9)
    moved = np.abs(frames_of(styled.path).astype(int) - plain).mean()
    assert moved > 0.5  # the LoRA moved the video (a tiny model's 2 steps: about as much as another seed does)
    assert np.abs(frames_of(zero.path).astype(int) - plain).mean() < 0.2  # weight 0: the video without it
    assert styled.recipe["loras"][0]["name"] == "wanstyle" and styled.recipe["prompt"].endswith("<lora:wanstyle:1>")
    after = frames_of(made(shared_cache, with_loras, seed=9)[0].path).astype(int)
    assert np.abs(after - plain).mean() < 0.2  # the next run without it: off again
    with pytest.raises(UserError, match="The LoRA 'ltxstyle' does not fit this model.* This is a Wan model"):
        made(shared_cache, with_loras, "a fox <lora:ltxstyle:1>")
    ltx_plain = frames_of(made(shared_cache, with_loras, model="tiny:ltx", seed=9)[0].path).astype(int)
    ltx_styled, _ = made(shared_cache, with_loras, "a fox in the snow <lora:ltxstyle:1>", model="tiny:ltx", seed=9)
    assert np.abs(frames_of(ltx_styled.path).astype(int) - ltx_plain).mean() > 0.5
    with pytest.raises(UserError, match="There is no LoRA called 'nothere'"):
        made(shared_cache, with_loras, "a fox <lora:nothere:1>")


def test_wan_22_a14b_runs_its_two_experts_and_a_lora_reaches_both(shared_cache, settings, video_loras, tmp_path):
    """Wan 2.2 A14B's mixture of experts: the high-noise expert for the first steps, the low-noise one once the
    timestep falls under the boundary; both take a LoRA (Wan 2.1 LoRAs are used on both); weight 0 is none; a
    high/low-noise pair goes one to each expert."""
    import shutil

    from core.loras import check_loras

    with_loras = settings.replace(lora_dir=video_loras)
    plain, _ = made(shared_cache, with_loras, model="tiny:wan-a14b", seed=9, steps=4)
    assert plain.recipe["experts"]["boundary_ratio"] == 0.875
    with shared_cache.model("video", "tiny:wan-a14b", lambda *a: None, setting="x") as pipe:
        seen = []
        hooks = [part.register_forward_hook(lambda m, i, o, n=name: seen.append(n))
                 for name, part in (("high", pipe.transformer), ("low", pipe.transformer_2))]  # fmt: skip
    try:
        made(shared_cache, with_loras, model="tiny:wan-a14b", seed=9, steps=4)
    finally:
        for hook in hooks:
            hook.remove()
    assert "high" in seen and "low" in seen and seen.index("low") > seen.index("high")  # high noise first
    styled, _ = made(shared_cache, with_loras, "a fox in the snow <lora:wanstyle:1>", model="tiny:wan-a14b", seed=9,
                     steps=4)  # fmt: skip
    zero, _ = made(shared_cache, with_loras, "a fox in the snow <lora:wanstyle:0>", model="tiny:wan-a14b", seed=9,
                   steps=4)  # fmt: skip
    base = frames_of(plain.path).astype(int)
    assert np.abs(frames_of(styled.path).astype(int) - base).mean() > 0.5
    assert np.abs(frames_of(zero.path).astype(int) - base).mean() < 0.2
    with shared_cache.model("video", "tiny:wan-a14b", lambda *a: None, setting="x") as pipe:
        adapters = pipe.get_list_adapters()
    assert adapters.get("transformer") and adapters.get("transformer_2") == adapters["transformer"]
    # A published pair (..._high_noise / ..._low_noise, lightx2v's _HIGH / _LOW): each goes into its own expert.
    with_loras = with_loras.replace(lora_dir=tmp_path)
    for expert in ("high", "low"):
        shutil.copy(video_loras / "wanstyle.safetensors", tmp_path / f"wanstyle_{expert}_noise.safetensors")
    pair = "a fox in the snow <lora:wanstyle_high_noise:1> <lora:wanstyle_low_noise:1>"
    paired, _ = made(shared_cache, with_loras, pair, model="tiny:wan-a14b", seed=9, steps=4)
    assert np.abs(frames_of(paired.path).astype(int) - frames_of(styled.path).astype(int)).mean() < 0.2  # the same
    with shared_cache.model("video", "tiny:wan-a14b", lambda *a: None, setting="x") as pipe:
        adapters = pipe.get_list_adapters()
    high, low = ({lora.adapter for lora in check_loras(with_loras, f"<lora:wanstyle_{e}_noise:1>")[1]} for e in
                 ("high", "low"))  # fmt: skip
    assert high <= set(adapters["transformer"]) and not high & set(adapters["transformer_2"])
    assert low <= set(adapters["transformer_2"]) and not low & set(adapters["transformer"])


def test_a_gguf_wan_transformer_runs_quantised_in_the_pipeline_of_its_repo(shared_cache, settings, tiny_dir, tmp_path):
    """Wan 14B in about 10 GB is a city96-style GGUF file: here the tiny Wan's transformer as Q8_0, curated
    (downloaded like the real one) or dropped into the checkpoints folder; the Image tab does not offer it."""
    import shutil

    from core import tiny
    from tabs.image.choices import model_choices as image_choices
    from tabs.video.engine import model_choices

    plain = frames_of(made(shared_cache, settings, seed=3)[0].path).astype(int)
    curated, _ = made(shared_cache, settings, model="tiny:wan-gguf", seed=3)
    assert (
        curated.recipe["checkpoint"]["quantization"] == "gguf" and curated.recipe["checkpoint"]["base"] == "tiny:wan"
    )
    assert np.abs(frames_of(curated.path).astype(int) - plain).mean() < 2  # the file's weights (Q8_0) ran
    with shared_cache.model(
        "video", "tiny:wan", lambda *a: None, setting="x", name="checkpoint:tiny:wan-gguf"
    ) as pipe:
        kinds = {type(p).__name__ for p in pipe.transformer.parameters()}
    assert "GGUFParameter" in kinds  # it stays quantised in memory
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shutil.copy(tiny.ensure("tiny:wan-gguf", tiny_dir) / "tiny-wan-Q8_0.gguf", folder / "my-wan-Q8_0.gguf")
    own = settings.replace(checkpoint_dir=folder, tiny=True)
    assert "my-wan-Q8_0.gguf" in model_choices(own) and "my-wan-Q8_0.gguf" not in image_choices(own)
    dropped, _ = made(shared_cache, own, model="my-wan-Q8_0.gguf", seed=3)
    assert np.abs(frames_of(dropped.path).astype(int) - frames_of(curated.path).astype(int)).mean() < 0.2  # the same
    assert (
        dropped.recipe["checkpoint"]["file"] == "my-wan-Q8_0.gguf"
        and len(dropped.recipe["checkpoint"]["sha256"]) == 64
    )
    # The memory budget counts the file's transformer: refused in a sentence before any download or load.
    size = (folder / "my-wan-Q8_0.gguf").stat().st_size
    small = make_cache(own.replace(memory_budget_gb=size / 2 / 1024**3))
    with pytest.raises(UserError, match=r"my-wan-Q8_0.gguf' needs about .* \(its transformer file alone\)"):
        made(small, own, model="my-wan-Q8_0.gguf", seed=3)
    assert small.snapshot() == []


def test_stop_ends_at_the_next_step_and_saves_nothing(shared_cache, settings):
    stop = threading.Event()
    run = generate_video(
        shared_cache, settings.replace(tiny=True), VideoParams("waves", num_frames=9, width=64, height=64, steps=40),
        model="tiny:wan", stop=stop,
    )  # fmt: skip
    next(run)
    stop.set()
    with pytest.raises(Stopped):
        list(run)
    assert not (settings.output_dir / "video").exists() or not list((settings.output_dir / "video").rglob("*.mp4"))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"prompt": ""}, "The description (prompt) is empty"),
        ({"num_frames": 200}, "The frames (num_frames) must be between 5 and 81; got 200."),
        ({"fps": 0}, "The frame rate (fps) must be between 4 and 30; got 0."),
        ({"width": 4000}, "The width must be between 16 and 1024; got 4000."),
        ({"steps": 0}, "The steps must be between 1 and 100; got 0."),
        ({"first_frame": __file__}, "The first frame is not a picture the studio can read"),
    ],
)
def test_bad_input_is_one_sentence_naming_the_field(shared_cache, settings, kwargs, fragment):
    model = "tiny:wan-ti2v" if "first_frame" in kwargs else "tiny:wan"
    with pytest.raises(UserError, match=re.escape(fragment)):
        made(shared_cache, settings, model=model, **kwargs)


def test_generate_video_through_the_api(client):
    video, _preview, status, seed, recipe = client.predict(
        prompt="a lighthouse at night", num_frames=9, width=64, height=64, steps=2, seed=4, api_name="/generate_video"
    )
    path = video["video"] if isinstance(video, dict) else video
    assert status.startswith("Done:") and seed == 4 and recipe["model"] == "tiny:wan"
    assert streams_of(path)[0]["video"].codec_context.name == "h264"


def test_add_soundtrack_through_the_api(client):
    from gradio_client import handle_file

    video, *_ = client.predict(
        prompt="rain", num_frames=9, width=64, height=64, steps=1, seed=1, api_name="/generate_video"
    )
    path = video["video"] if isinstance(video, dict) else video
    result, status, recipe = client.predict(
        video=handle_file(path), music_prompt="soft rain and piano", api_name="/add_soundtrack"
    )
    with_sound = result["video"] if isinstance(result, dict) else result
    assert status.startswith("Composed music added") and recipe["soundtrack"]["source"] == "composed"
    assert streams_of(with_sound)[0]["audio"].codec_context.name == "aac"


def test_cli_video(tiny_dir, tmp_path):
    from test_cli import cli

    done = cli(
        "video", "--prompt", "rain on a window", "--frames", "9", "--width", "64", "--height", "64", "--steps", "2",
        "--seed", "2", tiny_dir=tiny_dir, out=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (path,) = done.stdout.splitlines()
    assert "seed 2" in done.stderr and path.endswith(".mp4") and len(frames_of(path)) == 9
