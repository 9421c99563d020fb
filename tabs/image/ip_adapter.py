"""IP-Adapter (an image prompt) for the Image tab: a reference picture whose style or subject the result takes, with a
scale. The adapter and its CLIP image encoder come from h94/IP-Adapter for the base model's family (downloaded on
first use), or from the operator's folder (STUDIO_IP_ADAPTER). They are held in the model cache; a run puts the
adapter into its pipeline with diffusers' load_ip_adapter and takes it out again afterwards (unload_ip_adapter), so
runs without a reference are exactly as before.
"""

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import checks
from core.device import import_lock, imported
from core.errors import UserError
from core.loras import IP_ADAPTER_USED
from core.models import ModelCache
from core.settings import Settings
from tabs.image import families

SETTING = "STUDIO_IP_ADAPTER"
SCALE = (0.0, 1.5)  # 0 = the reference does nothing; about 0.5-0.8 is usual


@dataclass(frozen=True)
class Source:
    """Where an IP-Adapter's files are: a hub repo (or folder), the weight file, and the image encoder's folder."""

    repo: str
    weight: str  # path of the adapter's safetensors file inside repo
    encoder: str  # folder of its CLIPVisionModelWithProjection inside repo

    @property
    def name(self) -> str:  # what the recipe and the Models panel call it
        return f"{self.repo}/{self.weight}" if not Path(self.repo).is_dir() else Path(self.repo).name


CURATED = {  # the base IP-Adapters (Apache-2.0) with ViT-H image encoders
    "sd15": Source("h94/IP-Adapter", "models/ip-adapter_sd15.safetensors", "models/image_encoder"),
    "sdxl": Source("h94/IP-Adapter", "sdxl_models/ip-adapter_sdxl_vit-h.safetensors", "models/image_encoder"),
    "tiny": Source("tiny:ip-adapter", "ip-adapter.safetensors", "image_encoder"),  # core.tiny, for --tiny
}


@dataclass(frozen=True)
class Reference:
    image: Any  # the reference picture: a file path or a PIL image
    scale: float = 0.6  # how much the result takes from it (set_ip_adapter_scale)


@dataclass
class Adapter:
    """An IP-Adapter in memory: its state dict (image projection and attention weights) and image encoder."""

    source: Source
    state_dict: dict
    encoder: Any

    @property
    def text_width(self) -> int:  # the UNet cross-attention width it was made for (4 image tokens of that width)
        return self.state_dict["image_proj"]["proj.weight"].shape[0] // 4


def check(settings: Settings, reference: Reference | None) -> Reference | None:
    if reference is None or reference.image in (None, "", []):
        return None
    from tabs.image.control import read_picture

    scale = float(checks.check_number(reference.scale, checks.named("ip_adapter_scale", "image prompt scale"), *SCALE))
    picture = read_picture(settings, reference.image, checks.named("ip_adapter_image", "reference picture"))
    return Reference(picture, scale)  # read (and checked) before any model loads


def source_for(settings: Settings, base: Any) -> Source:
    family = families.family_of(base)
    if family.denoiser == "transformer":
        raise UserError(
            f"An image prompt (IP-Adapter) needs a Stable Diffusion 1.5 or SDXL model here; {family.name} models "
            "take none in the studio yet. Choose Stable Diffusion 1.5 or SDXL-Turbo, or remove the image prompt."
        )
    if settings.ip_adapter:
        folder = Path(settings.ip_adapter).expanduser()
        weights = sorted(p.name for p in folder.glob("*.safetensors")) if folder.is_dir() else []
        if not weights or not (folder / "image_encoder").is_dir():
            raise UserError(
                f"{SETTING} must name a folder holding an IP-Adapter's .safetensors file and its image_encoder "
                f"folder; {settings.ip_adapter!r:.80} does not."
            )
        return Source(str(folder), weights[0], "image_encoder")
    if family.key not in CURATED:
        raise UserError(
            f"There is no IP-Adapter for {family.name} models (such as SD-Turbo) here: choose Stable "
            f"Diffusion 1.5 or SDXL-Turbo for an image prompt, or set {SETTING} to an IP-Adapter for this model."
        )
    return CURATED[family.key]


def _loader(source: Source):
    def load(folder: Path, device: str, dtype: Any) -> Adapter:
        with import_lock:
            from safetensors import safe_open
            from transformers import CLIPVisionModelWithProjection

        state: dict[str, dict] = {"image_proj": {}, "ip_adapter": {}}
        with safe_open(str(folder / source.weight), framework="pt", device="cpu") as f:
            for key in f.keys():
                part, _, rest = key.partition(".")
                if part in state:
                    state[part][rest] = f.get_tensor(key).to(device=device, dtype=dtype)
        if "proj.weight" not in state["image_proj"]:
            raise ValueError("not a base IP-Adapter (no image_proj.proj.weight)")
        encoder = CLIPVisionModelWithProjection.from_pretrained(folder / source.encoder, dtype=dtype)
        return Adapter(source, state, encoder.to(device))

    return load


@contextlib.contextmanager
def adapter(cache: ModelCache, settings: Settings, base: Any, progress: Any = None) -> Iterator[Adapter]:
    """The IP-Adapter for `base` from the cache (downloaded on first use), held for the block."""
    source = source_for(settings, base)
    patterns = [source.weight, f"{source.encoder}/config.json", f"{source.encoder}/model.safetensors"]
    with cache.model(
        "ip-adapter", source.repo, _loader(source), setting=SETTING, progress=progress, allow_patterns=patterns,
        name=source.name,
    ) as loaded:  # fmt: skip
        if loaded.text_width != base.unet.config.cross_attention_dim:
            raise UserError(
                f"The IP-Adapter {source.name!r} was made for {families.family_of(loaded.text_width).name} models, "
                f"not for this {families.family_of(base).name} model. Set {SETTING} to one made for this model."
            )
        yield loaded


@contextlib.contextmanager
def applied(base: Any, pipe: Any, loaded: Adapter | None, reference: Reference | None) -> Iterator[dict]:
    """For the block: the adapter in the run's pipeline `pipe` (around `base`'s modules), at the reference's scale;
    yields the pipeline's extra arguments. The adapter lives in the UNet's attention processors, which every run on
    `base` shares: the caller holds the run's turn (loras.turn), and once a model has had an IP-Adapter all its
    runs take turns, so no run ever meets another's adapter."""
    if loaded is None or reference is None:
        yield {}
        return
    (CLIPImageProcessor,) = imported("transformers", "CLIPImageProcessor")

    base.__dict__[IP_ADAPTER_USED] = True
    size = loaded.encoder.config.image_size
    extractor = CLIPImageProcessor(size=size, crop_size=size)
    pipe.register_modules(image_encoder=loaded.encoder, feature_extractor=extractor)
    pipe.load_ip_adapter(loaded.state_dict, subfolder="", weight_name="", image_encoder_folder=None)
    try:
        pipe.set_ip_adapter_scale(reference.scale)
        yield {"ip_adapter_image": reference.image}
    finally:
        pipe.unload_ip_adapter()  # the UNet's own attention processors back


def recipe(loaded: Adapter, reference: Reference) -> dict[str, Any]:
    return {
        "model": loaded.source.name,
        "scale": reference.scale,
        "image_sha256": hashlib.sha256(reference.image.tobytes()).hexdigest(),
    }
