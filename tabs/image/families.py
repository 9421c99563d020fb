"""The Image tab's model families as data: how each is recognised, its defaults, its samplers, which adapters exist
for it, how its latents become a live preview, how it takes guidance, and the repo its single-file checkpoints
take their configs from. Every place that needs to know "what kind of model is this" asks `family_of(base)`.

The UNet families (SD 1.x, 2.x, XL) are told apart by the text width their UNet cross-attends to; the transformer
(DiT) families by their pipeline class. A pipeline of a class the table does not know gets a family made from what
it has (flow-matching scheduler or not), so a custom model still runs with the samplers that fit it."""

from dataclasses import dataclass, field
from typing import Any

# How a family takes guidance. "cfg": classifier-free guidance (guidance_scale) with a negative prompt. "distilled":
# guidance is an input of the model (FLUX.1-dev's embedded guidance; FLUX.1-schnell ignores it), no negative prompt
# (Forge's "Distilled CFG Scale"). "true_cfg": Qwen-Image's true_cfg_scale with a negative prompt.
GUIDANCE_KINDS = ("cfg", "distilled", "true_cfg")

# Samplers by their AUTOMATIC1111 names -> (diffusers scheduler class, options over the model's scheduler config).
# Noise-prediction (UNet) models take the first table, flow-matching (DiT) models the second: the same name means
# the same method, made for each kind of model.
SAMPLERS = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": False}),  # latent diffusion's settings
    "UniPC": ("UniPCMultistepScheduler", {}),
}
FLOW = {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}
FLOW_SAMPLERS = {
    "Euler": ("FlowMatchEulerDiscreteScheduler", {}),
    "Heun": ("FlowMatchHeunDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", FLOW),
    "UniPC": ("UniPCMultistepScheduler", FLOW),
}
ALL_SAMPLERS = tuple(dict.fromkeys([*SAMPLERS, *FLOW_SAMPLERS]))

# Linear maps from latent channels to RGB for a preview with no extra model: the factors (and biases) that SD UIs
# use (ComfyUI's latent_formats), for latents as the pipelines hold them (scaled, shifted or normalised).
SD_RGB = (
    [
        [0.3512, 0.2297, 0.3227],
        [0.325, 0.4974, 0.235],
        [-0.2829, 0.1762, 0.2721],
        [-0.212, -0.2616, -0.7177],
    ],
    [0.0, 0.0, 0.0],
)
SDXL_RGB = (
    [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ],
    [0.1084, -0.0175, -0.0011],
)
SD3_RGB = (
    [
        [-0.0922, -0.0175, 0.0749],
        [0.0311, 0.0633, 0.0954],
        [0.1994, 0.0927, 0.0458],
        [0.0856, 0.0339, 0.0902],
        [0.0587, 0.0272, -0.0496],
        [-0.0006, 0.1104, 0.0309],
        [0.0978, 0.0306, 0.0427],
        [-0.0042, 0.1038, 0.1358],
        [-0.0194, 0.002, 0.0669],
        [-0.0488, 0.013, -0.0268],
        [0.0922, 0.0988, 0.0951],
        [-0.0278, 0.0524, -0.0542],
        [0.0332, 0.0456, 0.0895],
        [-0.0069, -0.003, -0.081],
        [-0.0596, -0.0465, -0.0293],
        [-0.1448, -0.1463, -0.1189],
    ],
    [0.2394, 0.2135, 0.1925],
)
FLUX_RGB = (
    [
        [-0.0346, 0.0244, 0.0681],
        [0.0034, 0.021, 0.0687],
        [0.0275, -0.0668, -0.0433],
        [-0.0174, 0.016, 0.0617],
        [0.0859, 0.0721, 0.0329],
        [0.0004, 0.0383, 0.0115],
        [0.0405, 0.0861, 0.0915],
        [-0.0236, -0.0185, -0.0259],
        [-0.0245, 0.025, 0.118],
        [0.1008, 0.0755, -0.0421],
        [-0.0515, 0.0201, 0.0011],
        [0.0428, -0.0012, -0.0036],
        [0.0817, 0.0765, 0.0749],
        [-0.1264, -0.0522, -0.1103],
        [-0.028, -0.0881, -0.0499],
        [-0.1262, -0.0982, -0.0778],
    ],
    [-0.0329, -0.0718, -0.0851],
)
WAN_RGB = (
    [
        [-0.1299, -0.1692, 0.2932],
        [0.0671, 0.0406, 0.0442],
        [0.3568, 0.2548, 0.1747],
        [0.0372, 0.2344, 0.142],
        [0.0313, 0.0189, -0.0328],
        [0.0296, -0.0956, -0.0665],
        [-0.3477, -0.4059, -0.2925],
        [0.0166, 0.1902, 0.1975],
        [-0.0412, 0.0267, -0.1364],
        [-0.1293, 0.074, 0.1636],
        [0.068, 0.3019, 0.1128],
        [0.0032, 0.0581, 0.0639],
        [-0.1251, 0.0927, 0.1699],
        [0.006, -0.0633, 0.0005],
        [0.3477, 0.2275, 0.295],
        [0.1984, 0.0913, 0.1861],
    ],
    [-0.1835, -0.0868, -0.336],
)  # Qwen-Image's VAE is Wan 2.1's
PREVIEWS = {"sd": SD_RGB, "sdxl": SDXL_RGB, "sd3": SD3_RGB, "flux": FLUX_RGB, "wan": WAN_RGB}

UNET_ADAPTERS = frozenset({"lora", "embeddings", "controlnet", "ip_adapter"})


@dataclass(frozen=True)
class Family:
    key: str  # "sd15", "flux1", ...: what the recipe, LoRA checks and adapters tables say
    name: str  # in sentences: "FLUX.1"
    pipelines: tuple[str, ...] = ()  # pipeline classes (model_index.json's _class_name) that are this family
    text_width: int | None = None  # UNet families: the cross-attention width that tells SD 1.x, 2.x and XL apart
    flow: bool = False  # a flow-matching model: FLOW_SAMPLERS; else SAMPLERS
    samplers: tuple[str, ...] = tuple(SAMPLERS)  # the sampler names offered (besides "Model default")
    guidance: str = "cfg"  # one of GUIDANCE_KINDS
    adapters: frozenset = frozenset({"lora"})  # "lora", "embeddings" (textual inversion), "controlnet", "ip_adapter"
    preview: str = "sd"  # a key of PREVIEWS
    edit: bool = False  # an instruction-edit model: a picture and words in, the edited picture out
    needs_picture: bool = False  # it edits only (no text-to-image of its own)
    config_repo: str | None = None  # the reference repo whose configs a single-file checkpoint of this family loads
    max_sequence_length: int | None = None  # prompt tokens its T5/Qwen encoder reads (None: the pipeline's default)
    extra: dict = field(default_factory=dict)  # other arguments every call of this family takes

    @property
    def denoiser(self) -> str:
        return "unet" if self.text_width is not None else "transformer"

    def scheduler(self, sampler: str) -> tuple[str, dict]:
        return (FLOW_SAMPLERS if self.flow else SAMPLERS)[sampler]


DIT = dict(flow=True, adapters=frozenset({"lora"}))
FAMILIES = {
    family.key: family
    for family in [
        Family("sd15", "Stable Diffusion 1.x", ("StableDiffusionPipeline",), text_width=768, adapters=UNET_ADAPTERS,
               config_repo="stable-diffusion-v1-5/stable-diffusion-v1-5"),
        Family("sd21", "Stable Diffusion 2.x", ("StableDiffusionPipeline",), text_width=1024,
               adapters=frozenset({"lora", "embeddings"}), config_repo="stabilityai/sd-turbo"),
        Family("sdxl", "SDXL", ("StableDiffusionXLPipeline",), text_width=2048, adapters=UNET_ADAPTERS, preview="sdxl",
               config_repo="stabilityai/sdxl-turbo"),
        Family("tiny", "tiny test", ("StableDiffusionPipeline",), text_width=32, adapters=UNET_ADAPTERS),
        Family("tiny-sdxl", "tiny test SDXL", ("StableDiffusionXLPipeline",), text_width=64,
               adapters=frozenset({"lora"}), preview="sdxl"),
        Family("sd35", "Stable Diffusion 3.5", ("StableDiffusion3Pipeline",), **DIT, preview="sd3",
               samplers=("Euler", "Heun", "DPM++ 2M", "UniPC"), config_repo="stabilityai/stable-diffusion-3.5-medium",
               max_sequence_length=256),
        Family("flux1", "FLUX.1", ("FluxPipeline",), **DIT, preview="flux", guidance="distilled",
               samplers=("Euler", "DPM++ 2M", "UniPC"), config_repo="black-forest-labs/FLUX.1-schnell",
               max_sequence_length=256),
        Family("flux1-kontext", "FLUX.1 Kontext", ("FluxKontextPipeline",), **DIT, preview="flux",
               guidance="distilled", samplers=("Euler", "DPM++ 2M", "UniPC"), edit=True,
               config_repo="black-forest-labs/FLUX.1-Kontext-dev", max_sequence_length=256),
        Family("qwen-image", "Qwen-Image", ("QwenImagePipeline",), **DIT, preview="wan", guidance="true_cfg",
               samplers=("Euler", "UniPC"), config_repo="Qwen/Qwen-Image"),
        Family("qwen-image-edit", "Qwen-Image-Edit", ("QwenImageEditPipeline", "QwenImageEditPlusPipeline"), **DIT,
               preview="wan", guidance="true_cfg", samplers=("Euler", "UniPC"), edit=True, needs_picture=True,
               config_repo="Qwen/Qwen-Image-Edit"),
        Family("z-image", "Z-Image", ("ZImagePipeline",), **DIT, preview="flux", samplers=("Euler",),
               config_repo="Tongyi-MAI/Z-Image-Turbo"),
    ]
}  # fmt: skip
BY_WIDTH = {f.text_width: f for f in FAMILIES.values() if f.text_width is not None}


def family_of(base: Any) -> Family:
    """The family of a loaded pipeline (or of a UNet's cross-attention width, an int)."""
    if isinstance(base, int):
        return BY_WIDTH.get(base) or Family("other-unet", "other", text_width=base)
    unet = getattr(base, "unet", None)
    if unet is not None:
        width = unet.config.cross_attention_dim
        known = BY_WIDTH.get(width)
        return known or Family("other-unet", "other Stable Diffusion", text_width=width)
    name = type(base).__name__
    for family in FAMILIES.values():
        if name in family.pipelines:
            return family
    flow = "FlowMatch" in type(getattr(base, "scheduler", None)).__name__
    return Family("other", name.removesuffix("Pipeline"), flow=flow, samplers=("Euler",) if flow else tuple(SAMPLERS))


def call_arguments(family: Family, guidance: float, negative: str | list | None) -> dict[str, Any]:
    """The guidance and negative-prompt arguments of a pipeline call, in the family's own terms (see GUIDANCE_KINDS).
    `negative`: the negative prompt(s), "" or None for none."""
    args: dict[str, Any] = dict(family.extra)
    if family.max_sequence_length:
        args["max_sequence_length"] = family.max_sequence_length
    if family.guidance == "distilled":  # the model's embedded guidance; no negative prompt (true CFG stays off)
        return dict(args, guidance_scale=guidance)
    if family.guidance == "true_cfg":  # Qwen-Image: true CFG needs a negative prompt; " " where none is given
        if guidance > 1 and not negative:
            negative = " "
        return dict(args, true_cfg_scale=max(guidance, 1.0), negative_prompt=negative or None)
    return dict(args, guidance_scale=guidance, negative_prompt=negative or None)


def uses_negative(family: Family) -> bool:
    return family.guidance != "distilled"
