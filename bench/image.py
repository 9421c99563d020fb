"""Seconds per image through the studio's API versus a direct diffusers call, same pipeline and settings.

    python bench/image.py [--model FOLDER_OR_ID_OR_TINY] [--size 256] [--steps 8] [--runs 6] [--device cpu]

Without --model it builds the tiny local pipeline (random weights); `--model tiny:flux` (or tiny:sd3, tiny:z-image,
tiny:qwen-image) a tiny one of another family, `--model black-forest-labs/FLUX.1-schnell` a real one (on a GPU:
`--device cuda`). The direct call runs in this process with the family's own arguments (families.call_arguments),
as the studio passes them; the studio as its own server process (as users run it); after one warm-up each, the two
alternate, and the medians and their ratio are printed (goal: studio overhead within 5%).
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
    parser.add_argument("--model", help="a local folder or hub id (default: the tiny pipeline)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import torch
    from _server import start_studio
    from diffusers import DiffusionPipeline

    from core import tiny
    from tabs.image import families

    work = Path(tempfile.mkdtemp(prefix="bench-image-"))
    model = args.model or "tiny:stable-diffusion"
    if model.startswith("tiny:"):
        model = str(tiny.ensure(model, work / "tiny"))
    params = dict(
        prompt="a lighthouse on a cliff at sunset",
        steps=args.steps,
        guidance_scale=0.0,
        width=args.size,
        height=args.size,
        seed=1,
    )

    # the studio: its own server process, as users run it
    server, client = start_studio(
        {
            "STUDIO_IMAGE_MODEL": model,
            "STUDIO_OUTPUT_DIR": str(work / "outputs"),
            "STUDIO_DEVICE": args.device,
            "STUDIO_ALLOW_CUSTOM_MODELS": "1",
        }
    )
    # direct diffusers, in this process
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    pipe = DiffusionPipeline.from_pretrained(model, dtype=dtype, use_safetensors=True).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    family = families.family_of(pipe)

    def direct() -> None:
        pipe(
            prompt=params["prompt"],
            num_inference_steps=args.steps,
            width=args.size,
            height=args.size,
            generator=torch.Generator("cpu").manual_seed(1),
            **families.call_arguments(family, 0.0, None),
        )

    try:

        def studio() -> None:
            client.predict(**params, api_name="/generate_image")

        direct(), studio()  # warm-up: loads, first-call costs
        direct_times, studio_times = [], []
        for _ in range(args.runs):  # interleaved, so that the machine's own ups and downs hit both sides alike
            for fn, times in ((direct, direct_times), (studio, studio_times)):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait(timeout=30)

    d, s = statistics.median(direct_times), statistics.median(studio_times)
    print(
        f"model {model} ({family.name}), {args.size}x{args.size}, {args.steps} steps, {args.runs} runs, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"median: direct diffusers {d:.3f} s/image, studio API {s:.3f} s/image,   ratio {s / d:.3f} (goal <= 1.05)")
    print(f"per request the studio adds {s - d:.3f} s (HTTP, queue, previews, watermark + recipe + signing)")


if __name__ == "__main__":
    main()
