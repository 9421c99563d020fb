"""Verify tab: drop in an image, audio or video file and read what it says about itself, in plain words:
the studio's invisible watermark, the embedded recipe, the digital source type, and the C2PA content credentials.
"""

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from core import checks, provenance
from core.errors import UserError
from core.models import ModelCache
from core.settings import Settings

MAX_VERIFY_BYTES = 200 * 1024 * 1024
DAMAGED = "The file says it is {mime} but could not be decoded; it may be damaged."
SOURCE_TYPES = {
    provenance.GENERATED: "made entirely by a generative model",
    provenance.COMPOSITE: (
        "real media combined with generated content (a face swap, a repainted photo, a continued recording)"
    ),
}


def _kind(data: bytes) -> tuple[str, str] | None:
    """(kind, mime) from the file's first bytes."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image", "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image", "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image", "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio", "audio/wav"
    if data[4:8] == b"ftyp":
        return "video", "video/mp4"
    return None


def _source_type(text: str) -> str | None:
    match = re.search(r"DigitalSourceType[=>\"']+\s*" + re.escape(provenance.IPTC) + r"(\w+)", text or "")
    return match.group(1) if match else None


def _image_facts(path: Path) -> dict:
    with checks.open_image_file(path, "image", DAMAGED.format(mime="an image")) as im:
        text = {k: v for k, v in getattr(im, "text", {}).items() if isinstance(v, str)}
        xmp = im.info.get("xmp") or text.get("XML:com.adobe.xmp") or ""
        if isinstance(xmp, bytes):
            xmp = xmp.decode("utf-8", "replace")
        rgb = np.asarray(im.convert("RGB"))
    recipe = None
    if "studio_recipe" in text:
        try:
            recipe = json.loads(text["studio_recipe"])
        except json.JSONDecodeError:
            recipe = None
    return {
        "watermark": provenance.read_watermark(rgb),
        "recipe": recipe,
        "parameters": text.get("parameters"),
        "source_type": _source_type(xmp),
    }


def _audio_facts(path: Path) -> dict:
    import soundfile as sf

    with sf.SoundFile(path) as f:
        tags = f.copy_metadata()
    recipe = None
    if tags.get("comment", "").startswith("{"):
        try:
            recipe = {"prompt": tags.get("title"), **json.loads(tags["comment"])}
        except json.JSONDecodeError:
            recipe = None
    return {"watermark": None, "recipe": recipe, "statement": tags.get("copyright"), "source_type": None}


def verify_file(path: Any, settings: Settings, cache: Any = None) -> dict:
    """A report on one file: what it is, whether the studio marked it, and whether its credentials hold."""
    if not path:
        raise UserError("Add a file to verify.")
    path = Path(path)
    try:
        if path.stat().st_size > MAX_VERIFY_BYTES:
            raise UserError("The file is larger than 200 MB: the Verify tab reads images, audio and short videos.")
        data = path.read_bytes()
    except OSError:
        raise UserError("The file could not be read.") from None
    kind = _kind(data)
    if kind is None:
        raise UserError("This is not a file the Verify tab can read: use a PNG, JPEG, WebP, WAV or MP4.")
    kind_name, mime = kind
    facts: dict = {"kind": kind_name, "format": mime}
    try:
        if kind_name == "image":
            facts |= _image_facts(path)
        elif kind_name == "audio":
            facts |= _audio_facts(path)
            if provenance.audioseal_present(settings.audioseal_dir):
                import soundfile as sf

                audio, rate = sf.read(path, dtype="float32", always_2d=True)
                cache = cache or ModelCache(device="cpu")  # the studio's own, or one for this call alone
                with provenance.audioseal_model(cache, settings.audioseal_dir, detector=True) as detector:
                    facts["watermark"] = provenance.audioseal_detect(audio.mean(1), rate, detector)
    except UserError:
        raise
    except Exception:
        raise UserError(DAMAGED.format(mime=mime)) from None
    root = Path(settings.cache_dir) / "c2pa" / "root.pem"
    facts["content_credentials"] = provenance.read_c2pa(data, mime, root.read_bytes() if root.exists() else None)
    credentials = facts["content_credentials"]
    if not facts.get("source_type") and credentials.get("present"):
        for action in credentials.get("actions", []):
            facts["source_type"] = (action.get("digitalSourceType") or "").replace(provenance.IPTC, "") or None
    recipe = facts.get("recipe") or {}
    # a composite too, but of a picture and a repainted (inpaint) or added (outpaint) part
    facts["inpainted"] = recipe.get("mode") in ("inpaint", "outpaint")
    facts["continued"] = recipe.get("mode") == "continue"  # a composite too: a clip, then what the model added
    facts["cloned_voice"] = recipe.get("mode") == "clone"  # a composite: a real person's voice saying new words
    facts["narrated"] = recipe.get("mode") == "narrate"  # a composite: speech mixed over music
    others = facts["inpainted"] or facts["continued"] or facts["cloned_voice"] or facts["narrated"]
    facts["from_face_swap"] = recipe.get("tab") == "faceswap" or (
        facts.get("source_type") == provenance.COMPOSITE and not others
    )
    facts["summary"] = summarise(facts)
    return facts


def summarise(f: dict) -> str:
    lines = []
    wm, cred, recipe = f.get("watermark"), f["content_credentials"], f.get("recipe")
    if wm and "score" in wm:  # AudioSeal, for audio
        lines.append(
            f"{'✅' if wm['present'] else '❌'} AudioSeal watermark: detection score {wm['score']:.2f} "
            f"(0.5 or more means present)."
        )
    elif wm and wm.get("present"):
        lines.append(
            f"✅ The studio's invisible watermark is present (payload “{wm['payload']}”, "
            f"{wm['matching_bits']}/48 bits match)."
        )
    elif wm and wm.get("matching_bits") is not None:
        lines.append(f"❌ No studio watermark ({wm['matching_bits']}/48 bits match, chance level is about 24).")
    elif wm:
        lines.append(f"➖ No watermark check: {wm.get('note', 'not possible for this file')}.")
    if cred.get("present"):
        state = cred["state"]
        meaning = {
            "Trusted": "valid, and signed by this studio's own certificate",
            "Valid": "valid (signed; the signer is not on this machine's trust list)",
            "Invalid": "INVALID: the file was changed after it was signed, or the signature is broken",
        }
        lines.append(
            f"{'✅' if state in ('Trusted', 'Valid') else '⚠️'} Content credentials (C2PA): "
            f"{meaning.get(state, state)}. Generator: {', '.join(cred.get('generator') or ['unknown'])}."
        )
    else:
        lines.append("❌ No content credentials (C2PA manifest).")
    if f.get("source_type"):
        described = SOURCE_TYPES.get(f["source_type"], f["source_type"])
        lines.append(f"🏷️ Digital source type: {f['source_type']}: {described}.")
    if recipe:
        what = recipe.get("prompt") or recipe.get("engine") or ""
        lines.append(
            f"📜 Recipe inside: {recipe.get('tab', f['kind'])} made with {recipe.get('model', 'a model')}"
            + (f", “{what[:120]}”" if what else "")
            + (f", seed {recipe['seed']}" if "seed" in recipe else "")
            + "."
        )
    elif f.get("parameters"):
        lines.append("📜 AUTOMATIC1111-style generation parameters inside (not from this studio).")
    if f.get("from_face_swap"):
        lines.append("🎭 This came from a face swap.")
    if f.get("inpainted"):
        share = (recipe or {}).get("mask_area")
        part = f" ({share:.0%} of it)" if isinstance(share, (int, float)) else ""
        if (recipe or {}).get("mode") == "outpaint":
            lines.append(f"🖼️ A picture was extended by the model (outpainting){part}; the rest is the original.")
        else:
            lines.append(
                f"🖌️ Part of a picture was repainted by the model (inpainting){part}; the rest is the original."
            )
    if f.get("continued"):
        given = ((recipe or {}).get("continued_from") or {}).get("seconds")
        part = f"the first {given:g} s are" if isinstance(given, (int, float)) else "it opens with"
        lines.append(f"🎵 The model continued a clip: {part} the clip it was given, the rest is generated.")
    if f.get("cloned_voice"):
        lines.append("🧬 A cloned voice: a real person's voice (from a recording given with consent) saying new text.")
    if f.get("narrated"):
        lines.append("🎙️ A narrated track: speech mixed over music.")
    marked = (wm or {}).get("present") or cred.get("present") or recipe
    verdict = (
        "**This file carries the studio's marks.**"
        if marked
        else "**No sign that this file came from the studio** (no watermark, no content credentials, no recipe). "
        "Marks do not survive screenshots, re-encoding, resizing or cropping, so absence is not proof."
    )
    return "\n\n".join([verdict] + lines)
