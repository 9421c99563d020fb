"""Extras: seconds per megapixel (of output) for an upscale, tiled and whole, and seconds per face restored, with
random weights of the real models' sizes (Real-ESRGAN x4plus: RRDB 64 features x 23 blocks; realesr-general-x4v3:
compact 64 features x 32 convs; GFPGAN v1.4 at 512 px), built with spandrel's own classes: the real models' cost.

    python bench/extras.py [--size 256] [--tile 128] [--device cpu]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(fn, repeat: int = 2) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="the input picture's side in pixels")
    parser.add_argument("--tile", type=int, default=128, help="the tile for the tiled run (the studio uses 512)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    import torch
    from spandrel import ModelLoader
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.GFPGAN import GFPGAN

    from core import enhance

    torch.manual_seed(0)
    picture = (np.random.default_rng(0).random((args.size, args.size, 3)) * 255).astype(np.uint8)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}; input {args.size} px")
    shapes = {
        "Real-ESRGAN x4plus shape (RRDB 64x23)": ESRGAN(num_filters=64, num_blocks=23, scale=4),
        "realesr-general-x4v3 shape (compact 64x32)": Compact(num_feat=64, num_conv=32, upscale=4, act_type="prelu"),
    }
    for name, net in shapes.items():
        descriptor = ModelLoader(args.device).load_from_state_dict(net.state_dict()).eval()
        megapixels = (args.size * 4) ** 2 / 1e6
        whole = timed(lambda d=descriptor: enhance.upscale_tiles(d, picture, tile=10_000), repeat=1)
        tiled = timed(lambda d=descriptor: enhance.upscale_tiles(d, picture, tile=args.tile), repeat=1)
        print(f"{name}: {whole / megapixels:.2f} s per output megapixel whole, {tiled / megapixels:.2f} tiled "
              f"({args.tile} px tiles)")  # fmt: skip
    net = GFPGAN(out_size=512, num_style_feat=512, channel_multiplier=2, num_mlp=8, input_is_latent=True,
                 different_w=True, narrow=1, sft_half=True)  # fmt: skip
    loaded = enhance.Loaded(ModelLoader(args.device).load_from_state_dict(net.state_dict()).eval(), "GFPGAN", "")
    crop = picture[:1, :1].repeat(512, 0).repeat(512, 1)
    print(f"GFPGAN v1.4 shape: {timed(lambda: enhance._restore_crop(loaded, crop), repeat=1):.2f} s per face")


if __name__ == "__main__":
    main()
