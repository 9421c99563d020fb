"""Image requests sent at once to the Ray Serve image engine, with and without batching: seconds and the ratio.

    python bench/ray_batch.py [--shape tiny|sd-turbo] [--requests 16] [--size 512] [--steps 1] [--max-batch 16]

--shape sd-turbo builds a pipeline with sd-turbo's real configuration (SD 2.1's UNet, VAE and OpenCLIP-H text
encoder sizes) and random weights, about 5 GB in float32: made for a GPU machine (fp16 there), slow on a CPU.
--shape tiny (the default) is the tests' tiny pipeline. A local Ray starts in this process with one image replica
(a whole GPU when there is one); the studio's own front sends --requests text-to-image requests at once (different
seeds, one shape), first with --max-batch, then with batching off (--max-batch 1), and prints the wall time of
each, the throughput ratio and the batch sizes Ray formed. Nothing leaves the machine.
"""

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parent.parent


def build_sd_turbo_shaped(folder: Path) -> Path:
    """A StableDiffusionPipeline with sd-turbo's sizes and random weights (no download)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from core import tiny

    if (folder / "model_index.json").exists():
        return folder
    tiny._clip_tokenizer_files(folder / "_tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "_tokenizer", model_max_length=77)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        cross_attention_dim=1024,
        attention_head_dim=(5, 10, 20, 20),
        use_linear_projection=True,
    )
    vae = AutoencoderKL(
        block_out_channels=[128, 256, 512, 512],
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=768,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23,
            projection_dim=512, hidden_act="gelu", vocab_size=49408, max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )  # fmt: skip
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing", steps_offset=1
    )
    StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(folder, safe_serialization=True)  # fmt: skip
    return folder


def burst(front, requests: int, size: int, steps: int) -> tuple[float, Counter]:
    """`requests` text-to-image requests at once through the studio's engine: (wall seconds, batch sizes)."""
    from core.models import make_cache
    from tabs.image.engine import ImageParams, generate_image

    def one(seed: int) -> int:
        params = ImageParams(f"a lighthouse, take {seed}", steps=steps, seed=seed, width=size, height=size)
        done = list(generate_image(make_cache(front), front, params))[-1]
        return done.recipe["served_by"]["batch_size"]

    start = time.perf_counter()
    with ThreadPoolExecutor(requests) as pool:
        sizes = list(pool.map(one, range(requests)))
    return time.perf_counter() - start, Counter(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["tiny", "sd-turbo"], default="tiny")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--work", help="folder for the built model (default: a temporary one)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import ray
    import torch
    from ray import serve

    from app import engines
    from core import serving, tiny
    from core.settings import Settings

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-ray-"))
    if args.shape == "tiny":
        model = tiny.ensure("tiny:stable-diffusion", work / "tiny")
    else:
        model = build_sd_turbo_shaped(work / "sd-turbo-shaped")
    gpu = torch.cuda.is_available()
    ray.init(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}})
    settings = Settings(image_model=str(model), offline=True, cache_dir=work, output_dir=work / "outputs")
    front = settings.replace(ray_address="auto")
    print(f"{args.requests} requests at once, {args.size} px, {args.steps} step(s), {args.shape} shape, "
          f"{'GPU: ' + torch.cuda.get_device_name() if gpu else 'CPU'}")  # fmt: skip
    seconds = {}
    for max_batch in (args.max_batch, 1):
        scale = engines.Scale(replicas=1, gpus=1.0 if gpu else 0.0, cpus=1, max_batch=max_batch)
        engines.deploy(settings, scale, kinds=("image",))
        serving._handles.clear()
        burst(front, 2, args.size, args.steps)  # warm up: the model loads, kernels compile
        seconds[max_batch], sizes = burst(front, args.requests, args.size, args.steps)
        formed = ", ".join(f"{n} request(s) in batches of {size}" for size, n in sorted(sizes.items()))
        print(f"max batch {max_batch:3d}: {seconds[max_batch]:7.2f} s, "
              f"{args.requests / seconds[max_batch]:.2f} requests/s ({formed})")  # fmt: skip
        serve.delete(serving.APPS["image"])
    print(f"batched / unbatched throughput: {seconds[1] / seconds[args.max_batch]:.2f}x")
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
