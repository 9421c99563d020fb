"""Seconds per image with LoRAs on one loaded pipeline: none, the first image with a LoRA (it loads the adapter),
the same LoRA again, other weights, two LoRAs, none again; and how many times the base model was loaded (once).

    python bench/lora.py [--model FOLDER_OR_ID] [--lora FILE.safetensors] [--size 256] [--steps 8] [--runs 3]

Without --model it builds the tiny local pipeline and, without --lora, a tiny random LoRA for it (peft) in both
diffusers' and Kohya's key layouts. Runs through the studio's own engine (generate_image) in this process.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def tiny_loras(unet_folder: Path, folder: Path) -> None:
    """a.safetensors (diffusers' layout) and b.safetensors (Kohya's), random non-zero weights, for the tiny UNet."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(unet_folder)
    torch.manual_seed(0)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False))
    weights = get_peft_model_state_dict(unet)
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=weights, weight_name="a.safetensors")
    kohya = {}
    for key, value in weights.items():
        module, kind = key.rsplit(".lora_", 1)
        name = "lora_unet_" + module.replace(".", "_")
        kohya[f"{name}.lora_{'down' if kind.startswith('A') else 'up'}.weight"] = value.contiguous() * 0.5
        kohya[f"{name}.alpha"] = torch.tensor(4.0)
    save_file(kohya, folder / "b.safetensors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a local folder or hub id (default: the tiny pipeline)")
    parser.add_argument("--lora", help="a LoRA file for that model (default: tiny random ones)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from core import tiny
    from core.models import ModelCache
    from core.settings import Settings
    from tabs.image.engine import ImageParams, generate_image

    work = Path(tempfile.mkdtemp(prefix="bench-lora-"))
    model = args.model or str(tiny.ensure("tiny:stable-diffusion", work / "tiny"))
    loras = work / "loras"
    loras.mkdir()
    if args.lora:
        (loras / "a.safetensors").symlink_to(Path(args.lora).resolve())
        (loras / "b.safetensors").symlink_to(Path(args.lora).resolve())
    else:
        tiny_loras(Path(model) / "unet", loras)
    settings = Settings(
        image_model=model, output_dir=work / "out", cache_dir=work, lora_dir=loras, device="cpu", offline=True
    )
    cache = ModelCache(device="cpu", offline=True)

    def seconds(prompt: str) -> float:
        params = ImageParams(prompt, steps=args.steps, width=args.size, height=args.size, seed=1)
        start = time.perf_counter()
        list(generate_image(cache, settings, params))
        return time.perf_counter() - start

    prompt = "a lighthouse on a cliff at sunset"
    seconds(prompt)  # warm-up: the model loads
    first = seconds(prompt + " <lora:a:1>")  # loads the adapter into the pipeline
    rows = {"first image with a LoRA (loads it)": [first]}
    for label, text in (
        ("no LoRA", prompt),
        ("the same LoRA", prompt + " <lora:a:1>"),
        ("other weight (0.4)", prompt + " <lora:a:0.4>"),
        ("no LoRA again", prompt),
    ):
        rows[label] = [seconds(text) for _ in range(args.runs)]
    seconds(prompt + " <lora:b:1>")  # loads the second adapter
    rows["two LoRAs at once"] = [seconds(prompt + " <lora:a:0.6> <lora:b:0.6>") for _ in range(args.runs)]
    print(f"model {model}, {args.size}x{args.size}, {args.steps} steps, median of {args.runs} runs")
    for label, times in rows.items():
        print(f"  {label:<36} {statistics.median(times):.3f} s/image")
    print(f"base model loads: {cache.loads} (switching LoRAs or weights reloads nothing)")


if __name__ == "__main__":
    main()
