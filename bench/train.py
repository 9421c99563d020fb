"""Seconds per LoRA training step of Stable Diffusion 1.5's or SDXL's UNet at its real size (random weights, the
studio's own Trainer recipe: a rank-r LoRA on the attention projections, forward and backward, AdamW; SDXL told its
pooled text and sizes), on the CPU or a GPU.

    python bench/train.py [--model sd15|sdxl] [--resolution 512] [--rank 16] [--batch 1] [--steps 3]
                          [--device cpu|cuda]

The text encoder and VAE are left out: the studio encodes the pictures once, so each step is the UNet's.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SD15_UNET = dict(  # stable-diffusion-v1-5's unet/config.json
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8,
)  # fmt: skip
SDXL_UNET = dict(  # stable-diffusion-xl-base-1.0's unet/config.json (2.6B parameters)
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20), cross_attention_dim=2048, use_linear_projection=True,
    addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("sd15", "sdxl"), default="sd15")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig

    from tabs.train.trainer import UNET_TARGETS

    device = args.device
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    xl = args.model == "sdxl"
    unet = UNet2DConditionModel(**(SDXL_UNET if xl else SD15_UNET)).to(device, dtype)
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.rank, init_lora_weights="gaussian",
                                target_modules=UNET_TARGETS))  # fmt: skip
    trainable = [p for p in unet.parameters() if p.requires_grad]
    for p in trainable:
        p.data = p.data.float()
    if device.startswith("cuda"):
        unet.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    side = args.resolution // 8
    latents = torch.randn(args.batch, 4, side, side, device=device, dtype=dtype)
    text = torch.randn(args.batch, 77, 2048 if xl else 768, device=device, dtype=dtype)
    extra = {}
    if xl:  # the pooled text (1280) and the six sizes, as the Trainer tells SDXL
        sizes = torch.tensor([[args.resolution, args.resolution, 0, 0, args.resolution, args.resolution]] * args.batch)
        extra["added_cond_kwargs"] = {"text_embeds": torch.randn(args.batch, 1280, device=device, dtype=dtype),
                                      "time_ids": sizes.to(device, dtype)}  # fmt: skip
    timings = []
    for _ in range(args.steps + 1):  # the first step warms up
        start = time.perf_counter()
        t = torch.randint(0, 1000, (args.batch,), device=device)
        with torch.autocast("cuda", dtype=dtype, enabled=device.startswith("cuda")):
            pred = unet(latents, t, text, **extra).sample
        loss = torch.nn.functional.mse_loss(pred.float(), latents.float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    per_step = sum(timings[1:]) / args.steps
    lora = sum(p.numel() for p in trainable) / 1e6
    total = sum(p.numel() for p in unet.parameters()) / 1e9
    print(
        f"{'SDXL' if xl else 'SD 1.5'} UNet ({total:.2f}B, {str(dtype).replace('torch.', '')}, {device}), "
        f"LoRA rank {args.rank} "
        f"({lora:.1f}M trainable), {args.resolution} px, batch {args.batch}: {per_step:.1f} s per step; "
        f"1000 steps ~ {1000 * per_step / 3600:.1f} h"
    )


if __name__ == "__main__":
    main()
