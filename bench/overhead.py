"""Where the studio's time goes when it saves one picture, part by part, in this process.

    python bench/overhead.py [--size 512] [--runs 10]

Times each step of the one save path (core/saving.finish) on a picture of `--size` px: the invisible watermark,
the PNG encode with the recipe and XMP at zlib level 6 (Pillow's default) and at level 1, C2PA signing, the recipe
beside it, and the whole save; then a plain `image.save(path)` for comparison. Medians of `--runs`. The end-to-end
figure (an API call vs a direct diffusers call) is bench/image.py's.
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def median_seconds(call, runs: int) -> float:
    call()  # warm-up: imports, credentials made once per process
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import numpy as np
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from core import outputs, provenance, saving
    from core.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    settings = Settings(output_dir=work / "outputs", cache_dir=work / "cache")
    rng = np.random.default_rng(0)
    smooth = rng.integers(0, 255, (args.size // 16, args.size // 16, 3), dtype=np.uint8)
    picture = Image.fromarray(smooth).resize((args.size, args.size), Image.Resampling.BICUBIC)  # photo-like
    rgb = np.asarray(picture)
    recipe = outputs.base_recipe("image", "bench", prompt="a lighthouse", seed=1, steps=1)
    recipe["provenance"] = {"digital_source_type": provenance.IPTC + provenance.GENERATED, "watermark": "none"}
    creds = provenance.studio_credentials(settings)

    def png(level: int) -> bytes:
        info = PngInfo()
        info.add_itxt("studio_recipe", "{}" * 400)
        info.add_itxt("XML:com.adobe.xmp", provenance.xmp_packet(provenance.GENERATED), zip=False)
        out = io.BytesIO()
        picture.save(out, format="PNG", pnginfo=info, compress_level=level)
        return out.getvalue()

    def imwatermark_embed(rgb):
        from imwatermark import WatermarkEncoder

        encoder = WatermarkEncoder()
        encoder.set_watermark("bytes", provenance.WATERMARK_PAYLOAD)
        return encoder.encode(np.ascontiguousarray(rgb[..., ::-1]), "dwtDctSvd")

    encoded = png(6)
    parts = {
        "watermark (embed)": lambda: provenance.embed_watermark(rgb),
        "watermark (invisible-watermark's own loop)": lambda: imwatermark_embed(rgb),
        "PNG encode, zlib level 6": lambda: png(6),
        "PNG encode, zlib level 4 (ComfyUI's)": lambda: png(4),
        "PNG encode, zlib level 1 (the studio's)": lambda: png(1),
        "C2PA signing": lambda: provenance.sign(
            encoded,
            "image/png",
            creds,
            title="x.png",
            source_type=provenance.GENERATED,
            action="c2pa.created",
            recipe=recipe,
        ),  # fmt: skip
        "recipe JSON beside it": lambda: outputs.save_recipe(work / "r.png", recipe),
        "the whole save (saving.finish)": lambda: saving.finish(
            settings, "image", "bench", "png", dict(recipe), provenance.png_writer(picture)
        ),
        "plain image.save(path)": lambda: picture.save(work / "plain.png"),
    }
    print(f"{args.size}x{args.size} px, median of {args.runs} runs")
    for name, call in parts.items():
        print(f"  {name:44s} {median_seconds(call, args.runs) * 1000:7.1f} ms")
    print(f"  PNG size at level 6 / level 1: {len(png(6)) / 1e3:.0f} KB / {len(png(1)) / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
