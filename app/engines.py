"""The Image, Music, Voice, Video, Face swap and Extras engines as Ray Serve deployments, and `python studio.py
serve-models`, which deploys them.

A replica holds its own model cache (on its GPU, or CPU) and runs the tab's render step (render_image,
render_music, render_video, render_swap in each tab's engine) for the studio's front, which checks, saves and
labels what comes back (core.serving). Plain text-to-image requests that agree on model, size, steps, guidance and
sampler are batched into one pipeline call (@serve.batch); every other request streams its steps and previews.
Replicas read LoRAs, embeddings and wildcards from the folders their settings name (the same paths on one machine; a
shared volume on a cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from core import serving
from core.models import make_cache
from core.settings import REMOTE_TABS, Settings, from_env

ENGINES = REMOTE_TABS  # the engines a cluster can run (core.serving.APPS)
MAX_BATCH = 8  # image requests one pipeline call may serve
BATCH_WAIT_S = 0.1  # how long a replica waits for more requests to batch with the first


class _Replica:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings.replace(ray_address=None)  # a replica runs its models itself
        self.cache = make_cache(self.settings)


class ImageEngine(_Replica):
    """One replica of the image engine."""

    async def render(self, model_id: str, request: Any):
        from tabs.image.engine import render_image

        async for item in serving.drive(
            lambda stop, progress: render_image(self.cache, self.settings, model_id, request, stop, progress)
        ):
            yield item

    async def batched(self, items: list[tuple[str, Any]]) -> list[Any]:
        """Up to max_batch requests that arrived together: each group with one batch_key in one pipeline call."""
        from tabs.image.batch import batch_key, render_batch

        groups: dict[tuple, list[int]] = {}
        for i, (model_id, request) in enumerate(items):
            groups.setdefault(batch_key(model_id, request), []).append(i)
        made: list[Any] = [None] * len(items)
        for key, members in groups.items():
            group = [items[i][1] for i in members]
            try:
                results = await asyncio.to_thread(render_batch, self.cache, key[0], group)
            except Exception as exc:  # noqa: BLE001  (each request of the group gets the error as its result)
                results = [exc] * len(members)
            for i, result in zip(members, results, strict=True):
                made[i] = result
        return made


class MusicEngine(_Replica):
    """One replica of the music engine (MusicGen samples with one generator per request, so no batching)."""

    async def render(self, model_id: str, params: Any, clip: Any, source: Any):
        from tabs.music.engine import render_music

        async for item in serving.drive(
            lambda stop, progress: render_music(self.cache, model_id, params, clip, source, stop, progress)
        ):
            yield item


class VoiceEngine(_Replica):
    """One replica of the voice engine (each request speaks its sentences in turn, with its own seeded noise)."""

    async def render(self, params: Any):
        from tabs.voice.engine import render_speech

        async for item in serving.drive(
            lambda stop, progress: render_speech(self.cache, self.settings, params, stop, progress)
        ):
            yield item


class VideoEngine(_Replica):
    """One replica of the video engine: one video at a time (a video fills a GPU), its steps and previews streamed."""

    async def render(self, model_id: str, params: Any, picture: Any, chosen: list, notes: tuple):
        from tabs.video.engine import render_video

        async for item in serving.drive(
            lambda stop, progress: render_video(
                self.cache, self.settings, model_id, params, picture, chosen, stop, progress, notes
            )
        ):
            yield item


class FaceSwapEngine(_Replica):
    """One replica of the face swap engine (pictures; a video's frames are swapped by the front). It swaps on one
    thread of its own, one picture at a time: mediapipe's face graphs are made once per thread (core.faces), and a
    swap keeps a CPU core busy; more replicas swap more at once."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="faceswap")

    async def swap(self, source: Any, target: Any, engine: str, region: str, face_index: Any) -> Any:
        from tabs.faceswap.engine import render_swap

        work = partial(render_swap, self.cache, self.settings, source, target, engine, region, face_index)
        return await asyncio.get_running_loop().run_in_executor(self.thread, work)


class ExtrasEngine(_Replica):
    """One replica of the extras engine: upscalers and face restorers (core.enhance)."""

    async def render(self, picture: Any, params: Any):
        from tabs.extras.engine import render_extras

        async for item in serving.drive(
            lambda stop, progress: render_extras(self.cache, self.settings, picture, params, stop, progress)
        ):
            yield item


@dataclass(frozen=True)
class Scale:
    """How each engine is deployed."""

    replicas: int = 1  # replicas of each engine (with autoscale: the least)
    max_replicas: int = 0  # autoscaling up to this many replicas (0: a fixed number)
    gpus: float = 0.0  # GPUs per replica (a fraction shares one GPU between replicas: 0.5 = two on one GPU)
    cpus: float = 1.0  # CPUs per replica
    max_batch: int = MAX_BATCH  # image requests per pipeline call


def applications(settings: Settings, scale: Scale, kinds: tuple[str, ...] = ENGINES) -> dict[str, Any]:
    """{Serve application name: bound deployment} for each engine of `kinds`."""
    from ray import serve

    # Requests a replica takes at once; the others wait in Ray's queue for the first free replica. The image engine
    # takes enough to fill two batches; music and face swaps one: two MusicGen runs on one replica only share its
    # device, and one that waits behind them on a replica waits longer than in the queue (measured: p95 41 s).
    at_once = {"image": 2 * scale.max_batch, "music": 1, "voice": 1, "faceswap": 1, "extras": 1, "video": 1}
    engine = {
        "image": _with_batching(ImageEngine),
        "music": MusicEngine,
        "voice": VoiceEngine,
        "faceswap": FaceSwapEngine,
        "extras": ExtrasEngine,
        "video": VideoEngine,
    }
    apps = {}
    for kind in kinds:
        options: dict[str, Any] = {"ray_actor_options": {"num_cpus": scale.cpus, "num_gpus": scale.gpus}}
        if scale.max_replicas > scale.replicas:  # more replicas while requests wait (queued or running, each)
            options["autoscaling_config"] = {
                "min_replicas": scale.replicas,
                "max_replicas": scale.max_replicas,
                "target_ongoing_requests": max(2, at_once[kind] // 2),
            }
        else:
            options["num_replicas"] = scale.replicas
        deployment = serve.deployment(name=kind, max_ongoing_requests=at_once[kind], **options)(engine[kind])
        extra = (scale.max_batch,) if kind == "image" else ()
        apps[serving.APPS[kind]] = deployment.bind(settings, *extra)
    return apps


def _with_batching(engine: type) -> type:
    """ImageEngine with its `batched` method under @serve.batch (ray is imported only when engines are deployed)."""
    from ray import serve

    class BatchingImageEngine(engine):
        batched = serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)(engine.batched)

        def __init__(self, settings: Settings, max_batch: int = MAX_BATCH) -> None:
            super().__init__(settings)
            self.batched.set_max_batch_size(max_batch)

        async def render_batched(self, model_id: str, request: Any) -> Any:
            """One plain text-to-image request, batched with others that arrive with it (tabs.image.batch_key)."""
            result = await self.batched((model_id, request))
            if isinstance(result, Exception):
                raise result
            return result

    BatchingImageEngine.__name__ = BatchingImageEngine.__qualname__ = "ImageEngine"
    return BatchingImageEngine


def deploy(settings: Settings, scale: Scale, kinds: tuple[str, ...] = ENGINES) -> list[str]:
    """Deploy (or update) the engines of `kinds` on the cluster the process is connected to; returns their Serve
    applications."""
    from ray import serve

    apps = applications(settings, scale, kinds)
    for name, app in apps.items():
        serve.run(app, name=name, route_prefix=None, blocking=False)
    for name in apps:  # wait until each answers
        serve.get_app_handle(name)
    return list(apps)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="studio.py serve-models",
        description="Deploy the studio's image, music, voice, video, face swap and extras engines on a Ray cluster as "
        "Ray Serve applications. Then start the studio with STUDIO_RAY_ADDRESS set to the same address. Model "
        "settings (STUDIO_IMAGE_MODEL, STUDIO_LORA_DIR, STUDIO_TINY, ...) are read from this command's environment.",
    )
    p.add_argument(
        "--ray", required=True, help="the cluster: auto (a `ray start --head` on this machine), ray://HEAD:10001"
    )
    p.add_argument("--replicas", type=int, default=1, help="replicas of each engine (default 1)")
    p.add_argument("--max-replicas", type=int, default=0, help="autoscale each engine up to this many replicas")
    p.add_argument(
        "--gpus", type=float, help="GPUs per replica (default: the cluster's GPUs shared by all replicas, at most 1)"
    )
    p.add_argument("--engines", default=",".join(ENGINES), help=f"the engines to deploy (default {','.join(ENGINES)})")
    p.add_argument("--cpus", type=float, default=1.0, help="CPUs per replica (default 1)")
    p.add_argument("--max-batch", type=int, default=MAX_BATCH, help=f"image requests per batch (default {MAX_BATCH})")
    p.add_argument("--tiny", action="store_true", help="tiny random-weight models (outputs are noise; for trying it)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="device on the replicas (default auto)")
    return p


def main(argv: list[str]) -> int:
    """`python studio.py serve-models --ray ADDRESS [...]`."""
    args = _parser().parse_args(argv)
    try:
        settings = from_env(tiny=args.tiny or None, device=args.device)
        kinds = tuple(k.strip() for k in args.engines.split(",") if k.strip())
        if not kinds or set(kinds) - set(ENGINES):
            raise ValueError(f"--engines takes some of {', '.join(ENGINES)}, not {args.engines!r}.")
        if min(args.replicas, args.max_batch) < 1 or args.cpus < 0 or (args.gpus or 0) < 0:
            raise ValueError("--replicas and --max-batch must be at least 1; --cpus and --gpus 0 or more.")
        serving.connect(args.ray)
        import ray

        gpus = args.gpus
        if gpus is None:  # every replica gets a share of the cluster's GPUs (a whole one at most)
            gpus = min(
                1.0, ray.cluster_resources().get("GPU", 0) / (len(kinds) * max(args.replicas, args.max_replicas))
            )
        scale = Scale(args.replicas, args.max_replicas, gpus, args.cpus, args.max_batch)
        names = deploy(settings, scale, kinds)
    except Exception as exc:  # noqa: BLE001  (a sentence, not a stack trace)
        print(f"studio.py serve-models: {exc}", file=sys.stderr)
        return 2
    print(f"Deployed {', '.join(names)} on {args.ray} ({scale}). Start the studio with STUDIO_RAY_ADDRESS={args.ray}.")
    return 0
