"""The Image tab's model choices and their defaults (steps, guidance, size), and the presets built on them."""

from dataclasses import dataclass

from core.settings import TINY_IMAGE_MODEL, Settings


@dataclass(frozen=True)
class ModelDefaults:
    steps: int
    guidance: float
    size: int
    note: str = ""
    family: str = ""  # a key of families.FAMILIES ("" for a model only known once loaded)
    licence: str = ""  # shown with the note: what the model's licence allows


STABILITY = "Stability AI Community licence: free under USD 1M annual revenue; see its model card"
FLUX_NC = (
    "FLUX.1 [dev] Non-Commercial licence: personal and research use; the pictures may be used commercially, the "
    "model may not"
)
CURATED = {
    "stabilityai/sd-turbo": ModelDefaults(
        1, 0.0, 512, "SD-Turbo: 1-4 steps, guidance 0. Fast on a CPU.", "sd21", STABILITY
    ),
    "stabilityai/sdxl-turbo": ModelDefaults(
        1, 0.0, 512, "SDXL-Turbo: 1-4 steps, guidance 0. Sharper, heavier.", "sdxl", STABILITY
    ),
    "stabilityai/stable-diffusion-xl-base-1.0": ModelDefaults(
        30, 6.0, 1024, "SDXL 1.0: about 30 steps, guidance 5-7, 1024 px; the base most community checkpoints and "
        "LoRAs are made for (and the Train tab's SDXL base). About 7 GB in fp16: slow on a CPU.", "sdxl",
        "CreativeML Open RAIL++-M",
    ),
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ModelDefaults(
        25, 7.0, 512, "Stable Diffusion 1.5: about 25 steps, guidance 7. Slow on a CPU.", "sd15",
        "CreativeML OpenRAIL-M",
    ),
    "black-forest-labs/FLUX.1-schnell": ModelDefaults(
        4, 0.0, 1024, "FLUX.1 [schnell]: 4 steps, no guidance, no negative prompt. A 12B transformer and T5-XXL "
        "(about 34 GB in bf16): a GPU with 24 GB or more, or a GGUF file in the checkpoints folder.", "flux1",
        "Apache-2.0",
    ),
    "Tongyi-MAI/Z-Image-Turbo": ModelDefaults(
        9, 0.0, 1024, "Z-Image-Turbo: about 9 steps, guidance 0. A 6B transformer and Qwen3-4B (about 21 GB in "
        "bf16): a 16-24 GB GPU.", "z-image", "Apache-2.0",
    ),
    "Qwen/Qwen-Image": ModelDefaults(
        50, 4.0, 1024, "Qwen-Image: about 50 steps, true CFG 4; renders text in pictures well. A 20B transformer "
        "(about 58 GB with its text encoder in bf16): a large GPU or a GGUF file.", "qwen-image", "Apache-2.0",
    ),
    "stabilityai/stable-diffusion-3.5-medium": ModelDefaults(
        40, 4.5, 1024, "Stable Diffusion 3.5 Medium: about 40 steps, guidance 4.5. A 2.5B transformer, three text "
        "encoders (about 16 GB in bf16). Gated: accept its licence on the Hub and log in.", "sd35", STABILITY,
    ),
    "stabilityai/stable-diffusion-3.5-large-turbo": ModelDefaults(
        4, 0.0, 1024, "Stable Diffusion 3.5 Large Turbo: 4 steps, guidance 0. An 8B transformer, three text "
        "encoders (about 28 GB in bf16). Gated: accept its licence on the Hub and log in.", "sd35", STABILITY,
    ),
    "black-forest-labs/FLUX.1-dev": ModelDefaults(
        28, 3.5, 1024, "FLUX.1 [dev]: about 28 steps, distilled guidance 3.5, no negative prompt. Gated: accept "
        "its licence on the Hub and log in.", "flux1", FLUX_NC,
    ),
    "black-forest-labs/FLUX.1-Kontext-dev": ModelDefaults(
        28, 2.5, 1024, "FLUX.1 Kontext [dev]: edits with words. Put a picture under Image to image and say what to "
        "change (\"make it night\"); about 28 steps, guidance 2.5. Gated: accept its licence on the Hub.",
        "flux1-kontext", FLUX_NC,
    ),
    "Qwen/Qwen-Image-Edit": ModelDefaults(
        50, 4.0, 1024, "Qwen-Image-Edit: edits with words. Put a picture under Image to image and say what to "
        "change (\"remove the cup\"); about 50 steps, true CFG 4.", "qwen-image-edit", "Apache-2.0",
    ),
}  # fmt: skip
TINY_DEFAULTS = ModelDefaults(2, 0.0, 64, "Tiny random-weight model: the images are noise.", "tiny")
OTHER_DEFAULTS = ModelDefaults(25, 7.0, 512, "Custom model: Stable Diffusion defaults.")
# A whole community checkpoint of a UNet family (civitai-style, one file): the usual settings of its family, not
# those of the turbo model whose configs it borrows.
WHOLE_DEFAULTS = {"sd15": (25, 7.0, 512), "sd21": (25, 7.0, 768), "sdxl": (30, 6.0, 1024)}
CHECKPOINT_LICENCE = "the checkpoint's own: see the page you got it from"
# The tiny random-weight pipelines of each family (core.tiny, core.tiny_dit): --tiny offers them all.
TINY_FAMILIES = {
    "tiny:sdxl": ModelDefaults(2, 5.0, 64, "Tiny random-weight SDXL: the images are noise.", "tiny-sdxl"),
    "tiny:flux": ModelDefaults(2, 0.0, 64, "Tiny random-weight FLUX.1: the images are noise.", "flux1"),
    "tiny:sd3": ModelDefaults(2, 2.0, 64, "Tiny random-weight SD 3.5: the images are noise.", "sd35"),
    "tiny:z-image": ModelDefaults(2, 0.0, 64, "Tiny random-weight Z-Image: the images are noise.", "z-image"),
    "tiny:qwen-image": ModelDefaults(2, 1.0, 64, "Tiny random-weight Qwen-Image: the images are noise.", "qwen-image"),
    "tiny:flux-kontext": ModelDefaults(
        2, 1.0, 64, "Tiny random-weight FLUX.1 Kontext (edits with words): the images are noise.", "flux1-kontext"
    ),
    "tiny:qwen-image-edit": ModelDefaults(
        2, 1.0, 64, "Tiny random-weight Qwen-Image-Edit (edits with words): the images are noise.", "qwen-image-edit"
    ),
}
MAX_STEPS = 100
MAX_IMAGES = 4
PRESETS = ("Fast", "Balanced", "Quality")
EXAMPLES = [
    "a watercolor fox in a snowy forest, soft morning light",
    "a cozy reading nook with plants and warm lamps, isometric illustration",
    "a lighthouse on a cliff at dusk, dramatic clouds, oil painting",
]


def model_defaults(model_id: str, settings: Settings | None = None) -> ModelDefaults:
    """A model's defaults; a single-file checkpoint (with `settings`) takes those of its family's reference model."""
    if model_id == TINY_IMAGE_MODEL:
        return TINY_DEFAULTS
    if settings is not None and model_id.endswith((".safetensors", ".gguf")):
        from tabs.image import checkpoints

        if model_id in checkpoints.available(settings):
            try:
                point = checkpoints.identify(settings, model_id)
            except Exception:  # an unreadable file: its sentence comes when it is used
                return OTHER_DEFAULTS
            base, d = point.base, model_defaults(point.base)
            if point.whole:
                from tabs.image.families import FAMILIES

                usual = (d.steps, d.guidance, d.size) if settings.tiny else WHOLE_DEFAULTS[point.family]
                steps, guidance, size = usual
                note = (f"{FAMILIES[point.family].name} checkpoint in one file: its own weights; configs and "
                        f"tokenizers come from {base}.")  # fmt: skip
                return ModelDefaults(steps, guidance, size, note, point.family, CHECKPOINT_LICENCE)
            return ModelDefaults(d.steps, d.guidance, d.size, f"Single-file checkpoint ({d.family}); the rest of the "
                                 f"pipeline comes from {base}. " + d.note, d.family, d.licence)  # fmt: skip
    return CURATED.get(model_id) or TINY_FAMILIES.get(model_id) or OTHER_DEFAULTS


def model_note(model_id: str, settings: Settings | None = None) -> str:
    """The note shown under the Model box: what the model is good at, its defaults, and its licence."""
    d = model_defaults(model_id, settings)
    return d.note + (f" Licence: {d.licence}." if d.licence else "")


def model_samplers(model_id: str, settings: Settings | None = None) -> list[str]:
    """The sampler choices for a model: its family's (flow-matching models have their own), else every one."""
    from tabs.image.families import ALL_SAMPLERS, FAMILIES

    family = FAMILIES.get(model_defaults(model_id, settings).family)
    return ["Model default", *(family.samplers if family else ALL_SAMPLERS)]


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
    from tabs.image import checkpoints

    first = settings.model_for("image")
    others = list(TINY_FAMILIES) if settings.tiny else list(CURATED)
    return [first] + [m for m in others if m != first] + list(checkpoints.available(settings))
