"""Seconds per denoising step of the transformer (DiT) families at their real width, with random weights.

    python bench/dit.py [--family flux1|z-image|all] [--size 512] [--device cpu|cuda]

A whole FLUX.1 transformer (12B parameters, 48 GB in float32) does not fit most machines, so this builds the real
block shapes with one and two blocks of each kind, times a forward pass of each at the picture's token count, and
adds the blocks up to the real depth (FLUX.1: 19 double-stream + 38 single-stream blocks; Z-Image: 30 layers). It
prints the figures; bench/README.md keeps the ones measured.
"""

import argparse
import statistics
import time

FLUX = dict(patch_size=1, in_channels=64, attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096,
            pooled_projection_dim=768, axes_dims_rope=(16, 56, 56))  # fmt: skip
Z_IMAGE = dict(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=3840, n_refiner_layers=2, n_heads=30,
               n_kv_heads=30, norm_eps=1e-5, qk_norm=True, cap_feat_dim=2560, rope_theta=256.0, t_scale=1000.0,
               axes_dims=[32, 48, 48], axes_lens=[1024, 512, 512])  # fmt: skip


def timed(call, runs: int = 3) -> float:
    call()  # warm-up
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def flux_step(size: int, device: str, dtype) -> tuple[float, str]:
    import torch
    from diffusers import FluxTransformer2DModel

    tokens, text = (size // 16) ** 2, 256

    def forward(double: int, single: int) -> float:
        model = FluxTransformer2DModel(num_layers=double, num_single_layers=single, **FLUX).to(device, dtype).eval()
        x = torch.randn(1, tokens, 64, device=device, dtype=dtype)
        ids = torch.zeros(tokens, 3, device=device)
        args = dict(hidden_states=x, encoder_hidden_states=torch.randn(1, text, 4096, device=device, dtype=dtype),
                    pooled_projections=torch.randn(1, 768, device=device, dtype=dtype),
                    timestep=torch.tensor([1.0], device=device), img_ids=ids,
                    txt_ids=torch.zeros(text, 3, device=device))  # fmt: skip
        with torch.inference_mode():
            result = timed(lambda: model(**args))
        return result

    one = forward(1, 1)
    double = forward(2, 1) - one
    single = forward(1, 2) - one
    step = one + 18 * double + 37 * single
    return step, f"double block {double:.2f} s, single block {single:.2f} s, {tokens} picture tokens"


def z_image_step(size: int, device: str, dtype) -> tuple[float, str]:
    import torch
    from diffusers import ZImageTransformer2DModel

    def forward(layers: int) -> float:
        model = ZImageTransformer2DModel(n_layers=layers, **Z_IMAGE).to(device, dtype).eval()
        latent = size // 8
        x = [torch.randn(16, 1, latent, latent, device=device, dtype=dtype)]
        caption = [torch.randn(128, 2560, device=device, dtype=dtype)]
        with torch.inference_mode():
            result = timed(lambda: model(x, torch.tensor([0.5], device=device), caption))
        return result

    one = forward(1)
    layer = forward(2) - one
    return one + 29 * layer, f"layer {layer:.2f} s, {(size // 16) ** 2} picture tokens"


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="all", choices=["flux1", "z-image", "all"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    for name, bench in (("flux1", flux_step), ("z-image", z_image_step)):
        if args.family in (name, "all"):
            step, detail = bench(args.size, args.device, dtype)
            print(f"{name}: {step:.1f} s per step at {args.size} px on {args.device} ({detail})")


if __name__ == "__main__":
    main()
