"""Seconds per image through the studio versus a direct diffusers call, same pipeline and settings, and where the
difference goes.

    python bench/image.py [--model FOLDER_OR_ID_OR_TINY] [--size 512] [--steps 1] [--runs 8] [--device cpu]

Without --model it builds a small random-weight pipeline laid out like SD-Turbo (bench/shapes.py: the real 8x VAE,
so 512 px costs what it should, about 0.8 s on a 2-core CPU); `--model tiny:stable-diffusion` the tests' one,
`--model tiny:flux` (or tiny:sd3, tiny:z-image, tiny:qwen-image) a tiny one of another family,
`--model black-forest-labs/FLUX.1-schnell` a real one (on a GPU: `--device cuda`).
Four ways to one picture, alternated after one warm-up each, medians printed:

- direct: diffusers called in this process with the family's own arguments (families.call_arguments), then a plain
  `image.save(path)` (what a script would do);
- engine: the studio's engine in this process (checks, previews, watermark, PNG with recipe, C2PA, recipe JSON);
- page: the studio as its own server process (as users run it), called as its page calls it (one session, the
  queue's event stream, the picture then fetched);
- gradio_client: the same server through gradio_client (it polls every 50 ms, so it adds a little of its own).

"studio adds" = page - direct (goal for the fast path: at most 0.1 s at 512 px); engine - direct is the studio's own
work around the model, page - engine the queue, HTTP and the transfer. bench/overhead.py splits the save.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a local folder, hub id or tiny:NAME (default: SD-Turbo-shaped, small)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import torch
    from _server import PageClient, start_studio
    from diffusers import DiffusionPipeline

    from core import tiny
    from core.models import make_cache
    from core.settings import from_env
    from tabs.image import engine, families

    work = Path(tempfile.mkdtemp(prefix="bench-image-"))
    model = args.model
    if not model:
        import shapes

        model = str(shapes.sd_turbo(work / "sd-turbo-shaped"))
    elif model.startswith("tiny:"):
        model = str(tiny.ensure(model, work / "tiny"))
    params = dict(
        prompt="a lighthouse on a cliff at sunset",
        steps=args.steps,
        guidance_scale=0.0,
        width=args.size,
        height=args.size,
        seed=1,
    )
    env = {
        "STUDIO_IMAGE_MODEL": model,
        "STUDIO_OUTPUT_DIR": str(work / "outputs"),
        "STUDIO_DEVICE": args.device,
        "STUDIO_ALLOW_CUSTOM_MODELS": "1",
    }

    # the studio: its own server process, as users run it
    server, client = start_studio(env)
    page = PageClient(server.studio_port, "/generate_image")
    # direct diffusers, in this process
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    pipe = DiffusionPipeline.from_pretrained(model, dtype=dtype, use_safetensors=True).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    family = families.family_of(pipe)
    # the studio's engine, in this process
    settings = from_env({**os.environ, **env, "STUDIO_OUTPUT_DIR": str(work / "engine-outputs")})
    cache = make_cache(settings)
    image_params = engine.ImageParams(**params)

    def direct() -> None:
        picture = pipe(
            prompt=params["prompt"],
            num_inference_steps=args.steps,
            width=args.size,
            height=args.size,
            generator=torch.Generator("cpu").manual_seed(1),
            **families.call_arguments(family, 0.0, None),
        ).images[0]
        picture.save(work / "direct.png")

    def in_process() -> None:
        for _ in engine.generate_image(cache, settings, image_params, model=model):
            pass

    def through_page() -> None:
        page.call(**params)

    def through_gradio_client() -> None:
        client.predict(**params, api_name="/generate_image")

    ways = {"direct": direct, "engine": in_process, "page": through_page, "gradio_client": through_gradio_client}
    times: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for fn in ways.values():  # warm-up: loads, first-call costs
            fn()
        for _ in range(args.runs):  # interleaved, so that the machine's own ups and downs hit all alike
            for name, fn in ways.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait(timeout=30)

    m = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"model {model} ({family.name}), {args.size}x{args.size}, {args.steps} steps, {args.runs} runs, "
        f"device {args.device}, torch threads {torch.get_num_threads()}"
    )
    for name in ways:
        print(f"  {name:14s} {m[name]:.3f} s/image (median)")
    print(
        f"the studio adds {m['page'] - m['direct']:.3f} s per picture as its page sees it (goal <= 0.1 s at 512 px): "
        f"{m['engine'] - m['direct']:.3f} s its engine's own work around the model (checks, previews, provenance, "
        f"save vs a plain save), {m['page'] - m['engine']:.3f} s the queue, HTTP and the transfer; "
        f"ratio {m['page'] / m['direct']:.3f}; gradio_client adds another {m['gradio_client'] - m['page']:.3f} s"
    )


if __name__ == "__main__":
    main()
