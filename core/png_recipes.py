"""Recipes inside PNGs: AUTOMATIC1111's "parameters" text (which its PNG Info tab and other tools read) and
the studio's complete JSON recipe ("studio_recipe"), written and read back."""

import contextlib
import json
import re
from pathlib import Path
from typing import Any

from core import checks, outputs
from core.errors import UserError

SAMPLER_NAMES = {
    "EulerDiscreteScheduler": "Euler",
    "EulerAncestralDiscreteScheduler": "Euler a",
    "DDIMScheduler": "DDIM",
    "PNDMScheduler": "PLMS",
    "LMSDiscreteScheduler": "LMS",
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "HeunDiscreteScheduler": "Heun",
    "LCMScheduler": "LCM",
    "UniPCMultistepScheduler": "UniPC",
    "FlowMatchEulerDiscreteScheduler": "Euler",  # the flow-matching models' own (FLUX.1, SD 3.5, Qwen-Image...)
    "FlowMatchHeunDiscreteScheduler": "Heun",
}


def sampler_name(scheduler: Any) -> str:
    """AUTOMATIC1111's name for a diffusers scheduler ("DPM++ 2M Karras"), or the class name where it has none."""
    name = type(scheduler).__name__
    karras = " Karras" if getattr(scheduler.config, "use_karras_sigmas", False) else ""
    return SAMPLER_NAMES.get(name, name) + karras


def a1111_parameters(recipe: dict) -> str:
    """The "parameters" text AUTOMATIC1111 writes, which its PNG Info tab and other tools read."""
    distilled = recipe.get("guidance_kind") == "distilled"  # Forge writes FLUX.1's as "Distilled CFG Scale"
    fields = {
        "Steps": recipe["steps"],
        "Sampler": recipe["sampler"],
        "CFG scale": 1 if distilled else recipe["guidance_scale"],
        **({"Distilled CFG Scale": recipe["guidance_scale"]} if distilled else {}),
        "Seed": recipe["seed"],
        "Size": f"{recipe['width']}x{recipe['height']}",
        "Model": recipe["model"],
    }
    if recipe["mode"] in ("image-to-image", "inpaint", "outpaint"):  # an edit with words repaints it all
        fields["Denoising strength"] = recipe["strength"]
    if recipe["mode"] in ("inpaint", "outpaint"):
        fields["Mask blur"] = recipe["mask_blur"]
    if recipe.get("loras"):  # AUTOMATIC1111's own field: the first 12 hex digits of each file's SHA-256
        fields["Lora hashes"] = (
            '"' + ", ".join(f"{lora['name']}: {lora['sha256'][:12]}" for lora in recipe["loras"]) + '"'
        )
    if recipe.get("embeddings"):  # likewise, for textual-inversion embeddings
        fields["TI hashes"] = '"' + ", ".join(f"{e['name']}: {e['sha256'][:12]}" for e in recipe["embeddings"]) + '"'
    units = [recipe["controlnet"]] if recipe.get("controlnet") else []
    for i, unit in enumerate(units):  # the ControlNet extension's field (one per unit), which its PNG Info reads
        fields[f"ControlNet {i}"] = (
            f'"Module: {unit["preprocessor"]}, Model: {unit["model"]}, Weight: {unit["scale"]:g}, '
            f'Guidance Start: {unit["start"]:g}, Guidance End: {unit["end"]:g}"'
        )
    fields["Version"] = outputs.STUDIO_NAME
    prompt = recipe.get("expanded_prompt", recipe["prompt"])  # what the model read: styles applied, wildcards drawn
    negative = recipe.get("expanded_negative_prompt", recipe["negative_prompt"])
    if recipe.get("negative_prompt_ignored"):  # the model read none (FLUX.1)
        negative = ""
    lines = [prompt]
    if negative:
        lines.append(f"Negative prompt: {negative}")
    lines.append(", ".join(f"{k}: {v}" for k, v in fields.items()))
    return "\n".join(lines)


def parse_a1111(text: str) -> dict:
    """Read AUTOMATIC1111's "parameters" text back into our field names (unknown fields are ignored)."""
    lines = text.strip().split("\n")
    settings_line = lines.pop() if lines and re.search(r"(^|, )Steps: \d+", lines[-1]) else ""
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    found = dict(re.findall(r'\s*([\w][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)', settings_line))
    out: dict[str, Any] = {"prompt": "\n".join(prompt).strip(), "negative_prompt": "\n".join(negative).strip()}
    for key, name, kind in (
        ("Steps", "steps", int),
        ("CFG scale", "guidance_scale", float),
        ("Distilled CFG Scale", "guidance_scale", float),  # after CFG scale: FLUX.1's guidance is this one
        ("Seed", "seed", int),
        ("Denoising strength", "strength", float),
    ):
        if key in found:
            try:
                out[name] = kind(found[key].strip())
            except ValueError:
                pass
    if "Size" in found and re.fullmatch(r"\d+x\d+", found["Size"].strip()):
        out["width"], out["height"] = (int(v) for v in found["Size"].strip().split("x"))
    if "Model" in found:
        out["model"] = found["Model"].strip()
    unit = found.get("ControlNet 0") or found.get("ControlNet", "")
    control = {k.strip(): v.strip() for k, v in re.findall(r"([\w ]+): ([^,]*)", unit.strip('"'))}
    if control.get("Module", "none").strip() not in ("none", ""):  # what the ControlNet did, for Restore
        module = control["Module"].strip().split("_")[0].lower()
        kinds = {"canny": "Canny", "openpose": "Pose", "pose": "Pose", "scribble": "Scribble"}
        with contextlib.suppress(ValueError):
            out["controlnet"] = {
                "type": kinds.get(module, module),
                "scale": float(control.get("Weight", 1)),
                "start": float(control.get("Guidance Start", 0)),
                "end": float(control.get("Guidance End", 1)),
            }
    if "Sampler" in found:  # newer AUTOMATIC1111 writes "Sampler: DPM++ 2M, Schedule type: Karras"
        karras = found.get("Schedule type", "").strip() == "Karras" and "Karras" not in found["Sampler"]
        out["sampler"] = found["Sampler"].strip() + (" Karras" if karras else "")
    return out


def read_recipe(path: str | Path) -> dict:
    """The recipe inside a PNG: ours (complete) if present, else AUTOMATIC1111's parameters."""
    checks.check_image_header(path, "PNG")  # its text chunks are read by decoding it: a bomb is refused first
    chunks = outputs.png_text(Path(path))
    if "studio_recipe" in chunks:
        try:
            return json.loads(chunks["studio_recipe"])
        except json.JSONDecodeError:
            pass
    if "parameters" in chunks:
        return parse_a1111(chunks["parameters"])
    raise UserError("This file carries no recipe: only PNGs saved by the studio or by AUTOMATIC1111 do.")
