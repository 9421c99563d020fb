"""Captions for the Train tab's pictures, written by a captioning model (BLIP, through transformers; no remote
code): a picture that came with a caption keeps it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import hub
from core.device import import_lock, imported
from core.models import ModelCache
from core.settings import Settings
from tabs.train import dataset


def load_captioner(folder: Path, device: str, dtype: Any) -> Any:
    with import_lock:
        from transformers import BlipForConditionalGeneration, BlipProcessor

    processor = BlipProcessor.from_pretrained(folder, local_files_only=True)
    model = BlipForConditionalGeneration.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    return processor, model.to(device).eval()


def caption_images(cache: ModelCache, settings: Settings, images: Any) -> list[list[str]]:
    """[picture name, caption] for each picture of `images` (pictures and zips), by the captioning model (BLIP);
    a picture that came with a caption (a .txt beside it in a zip) keeps it."""
    pictures = dataset.gather(images, minimum=1)
    wanting = [p for p in pictures if not p.caption]
    if wanting:
        torch = imported("torch")
        options = dict(setting="STUDIO_CAPTION_MODEL", dtype=torch.float32, allow_patterns=hub.ALLOW_PATTERNS)
        with cache.model("caption", settings.model_for("caption"), load_captioner, **options) as (processor, model):
            for start in range(0, len(wanting), 8):
                group = wanting[start : start + 8]
                inputs = processor(images=[p.image for p in group], return_tensors="pt").to(model.device)
                with torch.inference_mode():
                    made = model.generate(**inputs, max_new_tokens=30)
                for picture, text in zip(group, processor.batch_decode(made, skip_special_tokens=True), strict=True):
                    picture.caption = text.strip()
    return [[p.name, p.caption] for p in pictures]
