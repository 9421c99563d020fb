"""Load: N simulated users (each its own gradio_client session) for T seconds against a running studio, mixing
all tabs, with think time. Prints requests done, errors (must be 0), latency and queue wait per tab, the
server's peak memory, and whether any temporary or partial file was left behind.

    python bench/load.py [--users 16] [--seconds 90] [--tiny | --models] [--text-endpoint URL] [--ray]

By default the studio runs with --tiny (tiny local models); --models uses the real default models instead.
--text-endpoint sends the Text tab to an OpenAI-compatible server (e.g. `transformers serve --continuous-batching`).
--ray starts a local Ray head, deploys the image and music engines there (`studio.py serve-models`, --replicas of
each) and runs the Image and Music tabs through it; it prints the batch sizes Ray formed (from the recipes).
Traffic goes only to 127.0.0.1, and every loop is bounded in time.
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT / "assets" / "faces"


def requests_for(rng: random.Random):
    """(tab, api_name, kwargs) for one request, chosen at random among the tabs."""
    from gradio_client import handle_file

    tab = rng.choice(["text", "text", "image", "image", "music", "faceswap", "verify"])
    if tab == "text":
        return (
            tab,
            "/generate_text",
            {"prompt": rng.choice(["Hello!", "Tell me a joke", "Why is the sky blue?"]), "max_new_tokens": 32},
        )
    if tab == "image":
        return tab, "/generate_image", {"prompt": "a lighthouse at dusk", "seed": rng.randrange(1000)}
    if tab == "music":
        return tab, "/generate_music", {"prompt": "calm piano", "duration": rng.choice([1, 2])}
    if tab == "faceswap":
        return (
            tab,
            "/swap_face",
            {
                "source_image": handle_file(str(FACES / "grace_hopper.jpg")),
                "target_image": handle_file(str(FACES / "astronaut.jpg")),
                "consent": True,
            },
        )
    return tab, "/verify", {"file": handle_file(str(FACES / "astronaut.jpg"))}


def user(url: str, seed: int, until: float, results: list, lock: threading.Lock) -> None:
    from gradio_client import Client
    from gradio_client.utils import Status

    rng = random.Random(seed)
    client = Client(url, analytics_enabled=False, verbose=False)
    while time.monotonic() < until:
        tab, api, kwargs = requests_for(rng)
        start = time.monotonic()
        started = None
        error = None
        try:
            job = client.submit(**kwargs, api_name=api)
            while not job.done():
                if started is None and job.status().code == Status.PROCESSING:
                    started = time.monotonic()
                time.sleep(0.05)
            job.result()
        except Exception as exc:
            error = f"{type(exc).__name__}: {str(exc)[:120]}"
        end = time.monotonic()
        with lock:
            results.append({"tab": tab, "latency": end - start, "wait": (started or end) - start, "error": error})
        time.sleep(rng.uniform(0.5, 2.0))  # think time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--models", action="store_true", help="the real default models instead of --tiny")
    parser.add_argument("--text-endpoint", help="an OpenAI-compatible server (http://host:port/v1) for the Text tab")
    parser.add_argument("--ray", action="store_true", help="the image and music engines on a local Ray Serve")
    parser.add_argument("--replicas", type=int, default=2, help="with --ray: replicas of each engine")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    import psutil
    from _server import start_studio

    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    outputs, temp = work / "outputs", work / "gradio-tmp"
    env = {
        "STUDIO_OUTPUT_DIR": str(outputs),
        "GRADIO_TEMP_DIR": str(temp),
        "STUDIO_DEVICE": "cpu",
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "0" if args.models else "1"),
    }
    if not args.models:
        env["STUDIO_TINY"] = "1"
    if args.text_endpoint:
        env["STUDIO_TEXT_ENDPOINT"] = args.text_endpoint
    if args.ray:
        _start_ray(env, args.replicas)
        env["STUDIO_RAY_ADDRESS"] = "auto"
    server, client = start_studio(env)
    if args.ray:
        _warm_up(client, args.replicas)
    proc = psutil.Process(server.pid)
    peak = [0]
    stop_watch = threading.Event()

    def watch() -> None:
        while not stop_watch.is_set():
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    results: list[dict] = []
    lock = threading.Lock()
    until = time.monotonic() + args.seconds
    threads = [
        threading.Thread(target=user, args=(f"http://127.0.0.1:{_port(server)}/", i, until, results, lock))
        for i in range(args.users)
    ]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=args.seconds + 600)
    wall = time.monotonic() - began
    stop_watch.set()
    server.terminate()
    server.wait(timeout=30)
    if args.ray:
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)

    errors = [r for r in results if r["error"]]
    print(
        f"{args.users} users, {args.seconds:g} s ({wall:.0f} s with the last requests), "
        f"{'real models' if args.models else 'tiny models'}"
        f"{', text on ' + args.text_endpoint if args.text_endpoint else ''}"
        f"{f', image and music on Ray Serve ({args.replicas} replicas each)' if args.ray else ''}: "
        f"{len(results)} requests, {len(errors)} errors, {len(results) / wall:.2f} requests/s"
    )
    by_tab = defaultdict(list)
    for r in results:
        by_tab[r["tab"]].append(r)
    print(f"{'tab':10} {'n':>4} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'wait p50':>9} {'wait p95':>9}")
    for tab, rows in sorted(by_tab.items()):
        lat = sorted(r["latency"] for r in rows)
        wait = sorted(r["wait"] for r in rows)
        p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
        print(
            f"{tab:10} {len(rows):4d} {statistics.median(lat):7.2f} {p(lat, 0.95):7.2f} {lat[-1]:7.2f} "
            f"{statistics.median(wait):9.2f} {p(wait, 0.95):9.2f}"
        )
    print(f"server peak RSS: {peak[0] / 1e6:.0f} MB")
    leftovers = [p for p in outputs.rglob("*") if p.name.startswith((".tmp-", ".probe-"))] if outputs.exists() else []
    unsaved = [
        p
        for p in (Path(tempfile.gettempdir()) / "studio-unsaved").rglob("*")
        if p.is_file() and p.stat().st_mtime > time.time() - wall - 60
    ]
    print(
        f"partial files left in outputs: {len(leftovers)}; results that fell back to the temporary folder: "
        f"{len(unsaved)}"
    )
    if args.ray:
        print(f"image batch sizes Ray formed (requests per pipeline call): {_batch_sizes(outputs, wall)}")
    for e in errors[:10]:
        print("error:", e["tab"], e["error"])
    if errors:
        print(f"the server's log, with each error's traceback: {server.studio_log}")


def _start_ray(env: dict, replicas: int) -> None:
    """A local Ray head (this machine's cores), then the engines deployed on it with the studio's own command."""
    ray = str(Path(sys.executable).parent / "ray")
    subprocess.run([ray, "start", "--head", "--disable-usage-stats", "--include-dashboard=false"], check=True)
    deploy = [sys.executable, str(ROOT / "studio.py"), "serve-models", "--ray", "auto", "--replicas", str(replicas)]
    deploy += ["--cpus", "0.19"] + ([] if env.get("STUDIO_TINY") is None else ["--tiny"])  # 5 engines x 2: 2 cores
    subprocess.run(deploy, check=True, env={**os.environ, **env})


def _warm_up(client, replicas: int) -> None:
    """One request per replica of each engine before the clock starts: a replica loads its model on first use."""
    rng = random.Random(0)
    picks = {"image": None, "music": None, "faceswap": None}
    while any(v is None for v in picks.values()):
        tab, api, kwargs = requests_for(rng)
        if tab in picks and picks[tab] is None:
            picks[tab] = (api, kwargs)
    jobs = [client.submit(**kwargs, api_name=api) for api, kwargs in picks.values() for _ in range(2 * replicas)]
    for job in jobs:
        job.result()


def _batch_sizes(outputs: Path, wall: float) -> dict[int, int]:
    """{batch size: pictures made in batches of that size}, read from the recipes saved in the last `wall` s."""
    import json

    sizes: dict[int, int] = defaultdict(int)
    since = time.time() - wall - 5
    for recipe in (outputs / "image").rglob("*.json") if outputs.exists() else []:
        if recipe.stat().st_mtime < since:  # a warm-up request's
            continue
        served = json.loads(recipe.read_text()).get("served_by") or {}
        sizes[served.get("batch_size", 1)] += 1
    return dict(sorted(sizes.items()))


def _port(server) -> int:
    return server.studio_port


if __name__ == "__main__":
    main()
