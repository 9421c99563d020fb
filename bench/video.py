"""Seconds per denoising step of Wan 2.1 1.3B's or LTX-Video 0.9.1's transformer at its real width (random
weights), with and without classifier-free guidance, and the studio's own cost per frame (the labelled H.264 MP4 it
writes).

    python bench/video.py [--model wan|ltx] [--width 832] [--height 480] [--frames 9] [--device cpu|cuda]
                           [--skip-model]

A step's cost grows with the latent tokens: (frames - 1) / 4 + 1 latent frames of (width / 16) x (height / 16)
patches. On a CPU the real size takes minutes per step; smaller sizes and fewer frames give a figure sooner.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WAN_1_3B = dict(  # Wan-AI/Wan2.1-T2V-1.3B-Diffusers' transformer/config.json
    patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
    text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
    eps=1e-6,
)  # fmt: skip


def step_seconds(width: int, height: int, frames: int, device: str) -> None:
    import torch
    from diffusers import WanTransformer3DModel

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    model = WanTransformer3DModel(**WAN_1_3B).to(device, dtype).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e9
    latent = torch.randn(1, 16, (frames - 1) // 4 + 1, height // 8, width // 8, device=device, dtype=dtype)
    text = torch.randn(1, 512, 4096, device=device, dtype=dtype)  # Wan pads the prompt to 512 tokens
    timestep = torch.tensor([500], device=device)
    with torch.inference_mode():
        model(latent, timestep, text, return_dict=False)  # warm up
        start = time.perf_counter()
        model(latent, timestep, text, return_dict=False)
        one = time.perf_counter() - start
    tokens = latent.shape[2] * (height // 16) * (width // 16)
    print(
        f"Wan 2.1 1.3B ({params:.2f}B, {str(dtype).replace('torch.', '')}, {device}) at {width}x{height}, "
        f"{frames} frames ({tokens} tokens): {one:.1f} s per step without guidance, ~{2 * one:.1f} s with it "
        f"(guidance runs the model twice); 50 steps ~ {100 * one / 60:.0f} min"
    )


def ltx_step_seconds(width: int, height: int, frames: int, device: str) -> None:
    """LTX-Video 0.9.1 (2B; diffusers' LTXVideoTransformer3DModel defaults are its config): 128 latent channels,
    32x spatial and 8x temporal compression, so far fewer tokens than Wan at the same size."""
    import torch
    from diffusers import LTXVideoTransformer3DModel

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    model = LTXVideoTransformer3DModel().to(device, dtype).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e9
    f, h, w = (frames - 1) // 8 + 1, height // 32, width // 32
    latent = torch.randn(1, f * h * w, 128, device=device, dtype=dtype)
    text = torch.randn(1, 128, 4096, device=device, dtype=dtype)  # LTX pads the prompt to 128 tokens
    mask = torch.ones(1, 128, device=device)
    timestep = torch.tensor([500.0], device=device)
    call = dict(num_frames=f, height=h, width=w, rope_interpolation_scale=(8 / 24, 32, 32), return_dict=False)
    with torch.inference_mode():
        model(latent, text, timestep, mask, **call)  # warm up
        start = time.perf_counter()
        model(latent, text, timestep, mask, **call)
        one = time.perf_counter() - start
    print(
        f"LTX-Video 0.9.1 ({params:.2f}B, {str(dtype).replace('torch.', '')}, {device}) at {width}x{height}, "
        f"{frames} frames ({f * h * w} tokens): {one:.1f} s per step without guidance, ~{2 * one:.1f} s with it; "
        f"50 steps ~ {100 * one / 60:.0f} min"
    )


def mp4_seconds(width: int, height: int, frames: int) -> None:
    import numpy as np

    from tabs.video.media import write_mp4

    x, y = np.meshgrid(np.arange(width), np.arange(height))  # a gradient that moves: like a video, not like noise
    video = np.stack([np.stack([(x + 4 * t) % 256, (y + 2 * t) % 256, (x + y) % 256], -1) for t in range(frames)])
    video = video.astype(np.uint8)
    path = Path(tempfile.mkdtemp()) / "bench.mp4"
    start = time.perf_counter()
    write_mp4(video, path, 16, None, label=True)
    seconds = time.perf_counter() - start
    print(f"labelled H.264 MP4, {frames} frames of {width}x{height}: {1000 * seconds / frames:.0f} ms per frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["wan", "ltx"], default="wan")
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-model", action="store_true", help="only the MP4 writing")
    args = parser.parse_args()
    mp4_seconds(args.width, args.height, 81)
    if not args.skip_model:
        (ltx_step_seconds if args.model == "ltx" else step_seconds)(args.width, args.height, args.frames, args.device)


if __name__ == "__main__":
    main()
