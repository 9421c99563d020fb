"""The Image tab's model choices and their defaults (steps, guidance, size), and the presets built on them."""

from dataclasses import dataclass
from typing import Any

from core.settings import TINY_IMAGE_MODEL, Settings


@dataclass(frozen=True)
class ModelDefaults:
    steps: int
    guidance: float
    size: int
    note: str = ""


CURATED = {
    "stabilityai/sd-turbo": ModelDefaults(1, 0.0, 512, "SD-Turbo: 1-4 steps, guidance 0. Fast on a CPU."),
    "stabilityai/sdxl-turbo": ModelDefaults(1, 0.0, 512, "SDXL-Turbo: 1-4 steps, guidance 0. Sharper, heavier."),
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ModelDefaults(
        25, 7.0, 512, "Stable Diffusion 1.5: about 25 steps, guidance 7. Slow on a CPU."
    ),
}
TINY_DEFAULTS = ModelDefaults(2, 0.0, 64, "Tiny random-weight model: the images are noise.")
OTHER_DEFAULTS = ModelDefaults(25, 7.0, 512, "Custom model: Stable Diffusion defaults.")
# Base model families, told apart by the text embedding width the UNet cross-attends to. Adapters (LoRA, ControlNet,
# IP-Adapter) are made for one family. "tiny": the random-weight pipeline of core.tiny (--tiny and the tests).
FAMILIES = {768: "sd15", 1024: "sd21", 2048: "sdxl", 32: "tiny"}
FAMILY_NAMES = {"sd15": "Stable Diffusion 1.x", "sd21": "Stable Diffusion 2.x", "sdxl": "SDXL", "tiny": "tiny test"}
MAX_STEPS = 100
MAX_IMAGES = 4
PRESETS = ("Fast", "Balanced", "Quality")
EXAMPLES = [
    "a watercolor fox in a snowy forest, soft morning light",
    "a cozy reading nook with plants and warm lamps, isometric illustration",
    "a lighthouse on a cliff at dusk, dramatic clouds, oil painting",
]


def base_family(base: Any) -> str:
    """The family of a pipeline (or of a cross-attention width): "sd15", "sd21", "sdxl", "tiny", or "other"."""
    width = base if isinstance(base, int) else base.unet.config.cross_attention_dim
    return FAMILIES.get(width, "other")


def family_name(family: str) -> str:
    return FAMILY_NAMES.get(family, "other")


def model_defaults(model_id: str) -> ModelDefaults:
    if model_id == TINY_IMAGE_MODEL:
        return TINY_DEFAULTS
    return CURATED.get(model_id, OTHER_DEFAULTS)


def preset_values(name: str, model_id: str, size_max: int) -> tuple[int, float, int, str]:
    """(steps, guidance, size, what it trades) of a preset for a model, from the model's own defaults."""
    d = model_defaults(model_id)
    size = min(d.size, size_max)
    if name == "Fast":
        small = max(64, size * 3 // 4 // 8 * 8)
        return max(1, d.steps // 2), d.guidance, small, f"Fast: {max(1, d.steps // 2)} step(s) at {small} px, rougher."
    if name == "Quality":
        steps = min(MAX_STEPS, 4 if d.steps <= 2 else d.steps * 2)
        return steps, d.guidance, size, f"Quality: {steps} steps at {size} px, slower, finer detail."
    return d.steps, d.guidance, size, f"Balanced: the model's own defaults ({d.steps} step(s), {size} px)."


def model_choices(settings: Settings) -> list[str]:
    first = settings.model_for("image")
    return [first] + [m for m in CURATED if m != first and not settings.tiny]
