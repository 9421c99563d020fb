"""The fast path on a GPU: seconds per picture, studio versus diffusers, with the real-size fast models' layouts.

    python bench/gpu.py [--size 512] [--runs 5] [--only sd-turbo|flux-schnell] [--device cuda] [--small]

Nothing here needs the network: the pipelines are random-weight ones laid out like SD-Turbo (865M-parameter UNet,
fp16) and FLUX.1-schnell (12B-parameter transformer and T5-XXL, bf16; about 34 GB, so an 80 GB card), built on the
card (bench/shapes.py). For each it prints, as medians of --runs after a warm-up:

- direct: diffusers' own call (1 picture, then a batch of 4: images/s), in fp16 and bf16 (SD-Turbo), with PyTorch's
  SDPA attention (diffusers' default) and, for comparison, diffusers' classic attention;
- engine: the studio's engine in this process on the same pipeline (checks, previews, watermark, PNG with recipe,
  C2PA, recipe JSON), 1 picture and 4;
- page (SD-Turbo): the studio as its own server on the card, called as its page calls it (bench/_server.PageClient).

`--small` builds the same layouts with tiny widths, to try the script on a CPU (`--device cpu --small`); its figures
mean nothing. A few minutes in all on an H100; record the figures in bench/README.md with the card's name.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PROMPT = "a lighthouse on a cliff at sunset, oil painting"
START = time.perf_counter()


def say(line: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f} s] {line}", flush=True)


def median_seconds(runs: int, call, *args) -> float:
    call(*args)  # warm-up: kernels picked, caches filled
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def direct_call(pipe, size: int, steps: int, batch: int, family) -> None:
    import torch

    from tabs.image import families

    pipe(
        prompt=PROMPT,
        num_inference_steps=steps,
        width=size,
        height=size,
        num_images_per_prompt=batch,
        generator=torch.Generator("cpu").manual_seed(1),
        **families.call_arguments(family, 0.0, None),
    )


def engine_call(cache, settings, model: str, size: int, steps: int, batch: int) -> None:
    from tabs.image import engine

    params = engine.ImageParams(PROMPT, steps=steps, width=size, height=size, seed=1, num_images=batch)
    for _ in engine.generate_image(cache, settings, params, model=model):
        pass


def report(rows: list[tuple[str, float, int]]) -> None:
    print(f"\n{'way':58s} {'s/call':>8s} {'images/s':>9s}")
    for name, seconds, batch in rows:
        print(f"{name:58s} {seconds:8.3f} {batch / seconds:9.2f}")
    print(flush=True)


def sd_turbo(args, work: Path) -> None:
    import shapes
    import torch
    from diffusers import DiffusionPipeline
    from diffusers.models.attention_processor import AttnProcessor

    from core.models import make_cache
    from core.settings import from_env
    from tabs.image import families

    say("SD-Turbo layout: building and saving the random-weight pipeline")
    folder = shapes.sd_turbo(work / "sd-turbo", real=not args.small)
    steps, rows = 1, []
    for dtype in (torch.float16, torch.bfloat16) if args.device.startswith("cuda") else (torch.float32,):
        pipe = DiffusionPipeline.from_pretrained(folder, dtype=dtype, use_safetensors=True, variant=args.variant)
        pipe.to(args.device).set_progress_bar_config(disable=True)
        family, name = families.family_of(pipe), str(dtype).replace("torch.", "")
        for batch in (1, 4):
            seconds = median_seconds(args.runs, direct_call, pipe, args.size, steps, batch, family)
            rows.append((f"direct, {name}, SDPA, batch {batch}", seconds, batch))
        pipe.unet.set_attn_processor(AttnProcessor())
        pipe.vae.set_attn_processor(AttnProcessor())
        seconds = median_seconds(args.runs, direct_call, pipe, args.size, steps, 1, family)
        rows.append((f"direct, {name}, classic attention, batch 1", seconds, 1))
        pipe.to("cpu")  # the card's memory for the next one
        say(f"direct {name} done")
    env = {"STUDIO_OUTPUT_DIR": str(work / "outputs"), "STUDIO_DEVICE": args.device, "STUDIO_ALLOW_CUSTOM_MODELS": "1"}
    settings = from_env({**os.environ, **env})
    cache = make_cache(settings)
    for batch in (1, 4):
        seconds = median_seconds(args.runs, engine_call, cache, settings, str(folder), args.size, steps, batch)
        rows.append((f"studio engine, {str(cache.dtype).replace('torch.', '')}, batch {batch}", seconds, batch))
    cache.unload()
    say("engine done; now the studio as a server")
    from _server import PageClient, start_studio

    server, _client = start_studio({**env, "STUDIO_IMAGE_MODEL": str(folder)}, timeout=300)
    try:
        page = PageClient(server.studio_port, "/generate_image")
        params = dict(prompt=PROMPT, steps=steps, guidance_scale=0.0, width=args.size, height=args.size, seed=1)
        seconds = median_seconds(args.runs, lambda: page.call(**params))
        rows.append(("studio page (HTTP, queue, picture fetched), batch 1", seconds, 1))
    finally:
        server.terminate()
        server.wait(timeout=60)
    report(rows)


def flux_schnell(args, work: Path) -> None:
    import shapes
    import torch

    from core.models import ModelKey, make_cache
    from core.settings import from_env
    from tabs.image import families

    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    say("FLUX.1-schnell layout: building the random-weight pipeline on the device")
    pipe = shapes.flux_schnell(args.device, dtype, real=not args.small)
    family, steps, rows = families.family_of(pipe), 4, []
    say(f"built: {sum(p.numel() for p in pipe.transformer.parameters()) / 1e9:.2f}B transformer parameters")
    for batch in (1, 4):
        seconds = median_seconds(args.runs, direct_call, pipe, args.size, steps, batch, family)
        rows.append((f"direct, {str(dtype).replace('torch.', '')}, SDPA, batch {batch}", seconds, batch))
    say("direct done")
    # the studio's engine on this very pipeline: its folder holds the configs, the cache holds the pipeline
    folder = shapes.save_configs(pipe, work / "flux-schnell")
    env = {"STUDIO_OUTPUT_DIR": str(work / "outputs"), "STUDIO_DEVICE": args.device, "STUDIO_ALLOW_CUSTOM_MODELS": "1"}
    settings = from_env({**os.environ, **env})
    cache = make_cache(settings)
    key = ModelKey("image", str(folder), None, cache.device, str(cache.dtype).replace("torch.", ""))
    with cache.acquire(key, lambda: pipe):
        pass
    for batch in (1, 4):
        seconds = median_seconds(args.runs, engine_call, cache, settings, str(folder), args.size, steps, batch)
        rows.append((f"studio engine, {str(dtype).replace('torch.', '')}, batch {batch}", seconds, batch))
    report(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=("sd-turbo", "flux-schnell"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="tiny widths, to try the script on a CPU")
    args = parser.parse_args()
    args.variant = None if args.small else "fp16"
    import torch

    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            sys.exit("No CUDA device: run with --device cpu --small to try the script here.")
        props = torch.cuda.get_device_properties(0)
        say(f"{props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}")
    work = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    if args.only in (None, "sd-turbo"):
        sd_turbo(args, work)
    if args.only in (None, "flux-schnell"):
        flux_schnell(args, work)
    say("done")


if __name__ == "__main__":
    main()
