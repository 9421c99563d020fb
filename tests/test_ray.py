"""The Image and Music engines on Ray Serve (STUDIO_RAY_ADDRESS): a real local Ray (loopback only) with the studio's
deployments of the tiny models (app.engines), the studio's front in this process. Results equal the in-process
ones for the same seed, batched requests each get their own seed's pictures, Stop reaches a replica, and a replica
killed mid-request costs one sentence, not the next request."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers import connect, running_studio
from PIL import Image

from core.errors import Stopped, UserError
from core.models import make_cache
from core.settings import Settings

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def cluster(tiny_text, tiny_image, tiny_music, tiny_dir, tmp_path_factory):
    """A local Ray with the engines deployed (two replicas of each), built from tiny settings."""
    import ray
    from ray import serve

    from app import engines
    from core import serving

    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}}
    )
    replica = Settings(tiny=True, offline=True, device="cpu", cache_dir=tiny_dir.parent)
    engines.deploy(replica, engines.Scale(replicas=2, cpus=0.16, max_batch=8))  # 6 engines x 2 on 2 CPUs
    front = replica.replace(ray_address="auto", output_dir=tmp_path_factory.mktemp("ray-front"))
    try:
        yield front
    finally:
        serving._handles.clear()
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def here(tiny_dir, tmp_path_factory):
    """The same settings, models in this process."""
    return Settings(
        tiny=True, offline=True, device="cpu", cache_dir=tiny_dir.parent, output_dir=tmp_path_factory.mktemp("here")
    )


def elsewhere(work, *args):
    """`work(*args)` on a thread of its own, as the studio's handlers run: Ray's blocking calls refuse a thread whose
    event loop runs (a browser test's, earlier in the session, leaves one in the main thread)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(work, *args).result()


def same(a, b) -> bool:
    """The same picture, but for the float rounding of a batched call (a few pixels off by a few levels); another
    seed's picture differs by tens of levels on average."""
    return np.abs(a - b).mean() < 0.5


def picture(settings, seed, prompt="a red boat", **params):
    return elsewhere(lambda: _picture(settings, seed, prompt, **params))


def _picture(settings, seed, prompt, model=None, **params):
    from tabs.image.engine import ImageParams, generate_image

    params = ImageParams(prompt, steps=2, seed=seed, width=64, height=64, **params)
    done = list(generate_image(make_cache(settings), settings, params, model=model))[-1]
    return [np.asarray(Image.open(path), dtype=np.int16) for path in done.images], done.recipe


def music(settings, seed, stop=None, duration=1.0):
    return elsewhere(lambda: _music(settings, seed, stop, duration))


def _music(settings, seed, stop, duration):
    import soundfile

    from tabs.music.engine import MusicParams, generate_music

    params = MusicParams("slow drums", duration=duration, seed=seed)
    done = list(generate_music(make_cache(settings), settings, params, stop=stop))[-1]
    return soundfile.read(done.path)[0], done.recipe


def test_a_picture_made_on_the_cluster_equals_the_one_made_here(cluster, here):
    there, recipe = picture(cluster, 11, num_images=2)
    mine, _ = picture(here, 11, num_images=2)
    assert len(there) == 2
    for a, b in zip(there, mine, strict=True):
        assert same(a, b)
    assert not same(there[0], there[1])  # image i draws from seed + i
    assert recipe["served_by"]["application"] == "studio-image" and recipe["seed"] == 11
    assert recipe["device"] == "cpu" and recipe["pipeline"] == "StableDiffusionPipeline"


def test_requests_batched_together_each_get_their_own_seed(cluster, here):
    seeds = [21, 22, 23, 24, 25, 26]
    with ThreadPoolExecutor(len(seeds)) as pool:
        made = list(pool.map(lambda seed: picture(cluster, seed, prompt=f"boat {seed}"), seeds))
    assert max(recipe["served_by"]["batch_size"] for _, recipe in made) >= 2, "no batch was formed"
    for seed, (pictures, recipe) in zip(seeds, made, strict=True):
        assert recipe["seed"] == seed and recipe["prompt"] == f"boat {seed}"
        mine, _ = picture(here, seed, prompt=f"boat {seed}")
        assert same(pictures[0], mine[0]), f"seed {seed} got another request's picture"


def test_flux_pictures_made_on_the_cluster_batched_or_not_equal_the_ones_made_here(cluster, here):
    """A transformer family through the engine on the cluster: its guidance arguments in a batched call too."""
    seeds = [31, 32, 33]
    with ThreadPoolExecutor(len(seeds)) as pool:
        made = list(pool.map(lambda seed: picture(cluster, seed, model="tiny:flux", guidance_scale=3.5), seeds))
    for seed, (pictures, recipe) in zip(seeds, made, strict=True):
        mine, _ = picture(here, seed, model="tiny:flux", guidance_scale=3.5)
        assert same(pictures[0], mine[0]) and recipe["family"] == "flux1" and recipe["pipeline"] == "FluxPipeline"


def test_music_made_on_the_cluster_equals_the_music_made_here(cluster, here):
    there, recipe = music(cluster, 5)
    mine, _ = music(here, 5)
    assert there.shape == mine.shape
    assert np.abs(there - mine).max() < 1e-3
    assert recipe["served_by"]["application"] == "studio-music"


def test_speech_made_on_the_cluster_equals_the_speech_made_here(cluster, here):
    """The voice engine on the cluster: the default voice (no download), seeded alike there and here."""
    import soundfile

    from tabs.voice.engine import SpeechParams, speak

    def said(settings, voice):
        done = list(speak(make_cache(settings), settings, SpeechParams("Hello there. Goodbye.", voice=voice, seed=4)))
        return soundfile.read(done[-1].path)[0], done[-1].recipe

    for voice in ("hibari:heart",):
        (there, recipe), (mine, _) = elsewhere(said, cluster, voice), elsewhere(said, here, voice)
        assert there.shape == mine.shape and np.abs(there - mine).max() < 1e-3, voice
        assert recipe["served_by"]["application"] == "studio-voice" and recipe["voice"] == voice


def test_a_video_made_on_the_cluster_equals_the_one_made_here(cluster, here):
    """The video engine on the cluster streams its steps and previews; the front saves the MP4 with its recipe."""
    import av

    from tabs.video.engine import VideoParams, generate_video

    def video(settings):
        params = VideoParams("waves at dusk", num_frames=9, width=64, height=64, steps=3, seed=6)
        updates = list(generate_video(make_cache(settings), settings, params))
        with av.open(str(updates[-1].path)) as f:
            frames = np.stack([frame.to_ndarray(format="rgb24") for frame in f.decode(video=0)])
        return frames, updates[-1].recipe, [u.step for u in updates if not u.done]

    (there, recipe, steps), (mine, _, _) = elsewhere(video, cluster), elsewhere(video, here)
    assert there.shape == mine.shape and np.abs(there.astype(int) - mine.astype(int)).mean() < 0.5
    assert recipe["served_by"]["application"] == "studio-video" and steps[-1] == 3


def test_a_face_swapped_on_the_cluster_equals_the_swap_made_here(cluster, here):
    from faces_helpers import ASTRONAUT, HOPPER

    from tabs.faceswap.engine import swap_face_image

    made = [
        elsewhere(
            lambda s=s: swap_face_image(make_cache(s), s, str(HOPPER), str(ASTRONAUT), consent=True, engine="classic")
        )
        for s in (cluster, here)
    ]
    there, mine = (np.asarray(Image.open(r.path), dtype=np.int16) for r in made)
    assert np.array_equal(there, mine)  # the classic engine is exact: the same pixels wherever it runs
    assert not np.array_equal(there, np.asarray(Image.open(ASTRONAUT), dtype=np.int16))  # a face was swapped
    assert made[0].recipe["served_by"]["application"] == "studio-faceswap" and made[0].summary["faces_swapped"] == 1
    with pytest.raises(UserError, match="No face was found in the target"):  # the replica's sentence, as it was
        blank = cluster.output_dir / "blank.png"
        Image.new("RGB", (128, 128), "white").save(blank)
        elsewhere(
            lambda: swap_face_image(
                make_cache(cluster), cluster, str(HOPPER), str(blank), consent=True, engine="classic"
            )
        )


def test_a_picture_enhanced_on_the_cluster_equals_the_one_enhanced_here(cluster, here):
    from faces_helpers import HOPPER

    from tabs.extras import ExtrasParams, enhance_picture

    params = ExtrasParams("tiny-compact-x4", scale=2, face_restorer="tiny-restoreformer")
    made = [
        elsewhere(lambda s=s: list(enhance_picture(make_cache(s), s, str(HOPPER), params))[-1])
        for s in (cluster, here)
    ]
    there, mine = (np.asarray(Image.open(u.path), dtype=np.int16) for u in made)
    assert there.shape == mine.shape and np.abs(there - mine).max() <= 2  # float rounding at most
    assert made[0].recipe["served_by"]["application"] == "studio-extras" and made[0].faces == made[1].faces == 1


def test_stop_reaches_the_replica_and_nothing_is_saved(cluster):
    from tabs.music.engine import MusicParams, generate_music

    stop = threading.Event()
    before = set(cluster.output_dir.rglob("*.wav"))

    def stopped_midway():
        params = MusicParams("long drums", duration=20, seed=1)
        for update in generate_music(make_cache(cluster), cluster, params, stop=stop):
            if update.seconds_done > 0:
                stop.set()

    with pytest.raises(Stopped):
        elsewhere(stopped_midway)
    assert set(cluster.output_dir.rglob("*.wav")) == before
    music(cluster, 6)  # the replica is free again


def test_a_replica_killed_mid_request_gives_a_sentence_and_the_next_request_works(cluster):
    import ray
    from ray.util import list_named_actors

    from tabs.music.engine import MusicParams, generate_music

    names = [a for a in list_named_actors(all_namespaces=True) if a["name"].startswith("SERVE_REPLICA::studio-music")]
    replicas = [ray.get_actor(a["name"], namespace=a["namespace"]) for a in names]
    assert replicas, list_named_actors(all_namespaces=True)

    def killed_midway():
        for update in generate_music(make_cache(cluster), cluster, MusicParams("drums", duration=20, seed=2)):
            if update.seconds_done > 0 and replicas:
                for replica in replicas:  # every music replica: whichever one runs this request dies
                    ray.kill(replica, no_restart=False)
                replicas.clear()

    with pytest.raises(UserError) as refused:
        elsewhere(killed_midway)
    assert "music engine on the Ray cluster" in str(refused.value) and "Try again" in str(refused.value)
    sound, _ = music(cluster, 7)  # Serve replaced the replica
    assert len(sound) > 0


def test_the_studio_api_through_a_cluster(cluster, tiny_dir, tmp_path):

    with running_studio(tiny_dir, tmp_path / "outputs", ray_address="auto") as (url, _demo, _settings):
        client = connect(url)
        result = client.predict(prompt="a lighthouse", steps=2, seed=4, api_name="/generate_image")
        saved = list((tmp_path / "outputs").rglob("*.png"))
        assert len(saved) == 1 and result[3] == 4
        recipe = json.loads(saved[0].with_suffix(".json").read_text())
        assert recipe["served_by"]["ray_address"] == "auto"
        with pytest.raises(Exception) as refused:
            client.predict(prompt="x", steps=2, width=65, api_name="/generate_image")
        assert "multiple of 8" in str(refused.value)  # checked by the front, before the cluster


def test_serve_models_says_what_is_wrong_in_a_sentence(capsys):
    from app.engines import main

    assert main(["--ray", "auto", "--engines", "image,train"]) == 2
    said = capsys.readouterr().err
    assert "--engines takes some of image, music, voice, faceswap, extras, video, not 'image,train'." in said
    assert main(["--ray", "auto", "--replicas", "0"]) == 2
    assert "--replicas and --max-batch must be at least 1" in capsys.readouterr().err
