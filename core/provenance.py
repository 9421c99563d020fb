"""Every output says what it is: an invisible watermark, XMP with IPTC's digital source type, and a signed C2PA
manifest (content credentials); and the reverse, reading all of that back for the Verify tab.

The signing certificate: the operator's (STUDIO_C2PA_CERT + STUDIO_C2PA_KEY, PEM), or a local root CA and a
signing certificate the studio creates on first run under <cache_dir>/c2pa (c2pa refuses a lone self-signed
certificate). No timestamp authority is contacted. Heavy libraries load on first use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import outputs
from core.device import imported

WATERMARK_PAYLOAD = b"GAIStu"  # 48 bits: "Generative AI Studio"
WATERMARK_BITS = 48
WATERMARK_THRESHOLD = 44  # matching bits; chance false positives about 1e-9 (unmarked images score about 24)
WATERMARK_MIN_AREA = 256 * 256  # invisible-watermark refuses smaller images
WATERMARK_MAX_AREA = 4096 * 4096  # larger than any studio output: not worth decoding a watermark from
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
GENERATED = "trainedAlgorithmicMedia"
COMPOSITE = "compositeWithTrainedAlgorithmicMedia"
_lock = threading.Lock()


def xmp_packet(source_type: str) -> str:
    """The smallest valid XMP packet carrying IPTC's DigitalSourceType (exiftool -validate passes)."""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        f'Iptc4xmpExt:DigitalSourceType="{IPTC}{source_type}"/></rdf:RDF></x:xmpmeta>'
    )


# ------------------------------------------------------------------------------------------ watermark --------


def embed_watermark(rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """(image, marked): the studio's payload in the DWT-DCT-SVD domain (survives PNG and JPEG saves, not resizing
    or cropping). Images under 256x256 pixels are returned unmarked."""
    if rgb.shape[0] * rgb.shape[1] < WATERMARK_MIN_AREA:
        return rgb, False
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    return np.ascontiguousarray(_dwt_dct_svd(bgr, WATERMARK_PAYLOAD)[..., ::-1]), True


PNG_LEVEL = 1  # zlib level of the studio's PNGs: 4x faster to write than Pillow's 6 at 512 px, files ~15% larger
WATERMARK_SCALE = 36  # invisible-watermark's dwtDctSvd strength, on the U channel only (its default scales 0, 36, 0)
_DCT4 = np.array(
    [[np.sqrt((1 if k == 0 else 2) / 4) * np.cos((2 * n + 1) * k * np.pi / 8) for n in range(4)] for k in range(4)]
)  # the orthonormal 4-point DCT-II matrix: cv2.dct(block) == _DCT4 @ block @ _DCT4.T


def _blocks(bgr: np.ndarray) -> tuple[Any, ...]:
    """(YUV picture, the U channel's DWT approximation, its other bands, its 4x4 blocks in raster order, the block
    grid's shape), as invisible-watermark's dwtDctSvd cuts them."""
    import cv2
    import pywt

    rows, cols = bgr.shape[:2]
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    ca1, bands = pywt.dwt2(yuv[: rows // 4 * 4, : cols // 4 * 4, 1], "haar")
    br, bc = ca1.shape[0] // 4, ca1.shape[1] // 4
    blocks = ca1[: br * 4, : bc * 4].reshape(br, 4, bc, 4).transpose(0, 2, 1, 3).reshape(-1, 4, 4)
    return yuv, ca1, bands, blocks, (br, bc)


def _read_dwt_dct_svd(bgr: np.ndarray, length: int) -> np.ndarray:
    """The `length` bits invisible-watermark's dwtDctSvd decoder reads (imwatermark.dwtDctSvd.EmbedDwtDctSvd.decode),
    from all blocks at once: each block votes for bit n mod length by its first singular value's phase."""
    _yuv, _ca1, _bands, blocks, _grid = _blocks(bgr)
    first = np.linalg.svd(_DCT4 @ blocks @ _DCT4.T, compute_uv=False)[:, 0]
    votes = ((first % WATERMARK_SCALE) > WATERMARK_SCALE * 0.5).astype(np.float64)
    which = np.arange(len(blocks)) % length
    means = np.array([votes[which == bit].mean() for bit in range(length)])
    return (means * 255 > 127).astype(np.uint8)


def _dwt_dct_svd(bgr: np.ndarray, payload: bytes) -> np.ndarray:
    """invisible-watermark's dwtDctSvd embedding (imwatermark.dwtDctSvd.EmbedDwtDctSvd.encode), the same arithmetic
    on all 4x4 blocks at once instead of one Python call per block: 5x faster at 512 px (bench/overhead.py), and
    read back by its own decoder (tests/test_provenance.py compares the two encoders)."""
    import cv2
    import pywt

    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8)).astype(np.float64)
    rows, cols = bgr.shape[:2]
    yuv, ca1, (h1, v1, d1), blocks, (br, bc) = _blocks(bgr)
    u, s, v = np.linalg.svd(_DCT4 @ blocks @ _DCT4.T)
    wm = bits[np.arange(len(blocks)) % len(bits)]  # block n (in raster order) carries bit n mod 48
    s[:, 0] = (s[:, 0] // WATERMARK_SCALE + 0.25 + 0.5 * wm) * WATERMARK_SCALE
    marked = _DCT4.T @ (u @ (s[:, :, None] * v)) @ _DCT4
    ca1[: br * 4, : bc * 4] = marked.reshape(br, bc, 4, 4).transpose(0, 2, 1, 3).reshape(br * 4, bc * 4)
    yuv[: rows // 4 * 4, : cols // 4 * 4, 1] = pywt.idwt2((ca1, (v1, h1, d1)), "haar")  # (sic: v1, h1 as it does)
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)


def read_watermark(rgb: np.ndarray) -> dict:
    """{"present": bool, "matching_bits": n, "payload": str | None}."""
    if rgb.shape[0] * rgb.shape[1] < WATERMARK_MIN_AREA:
        return {
            "present": False,
            "matching_bits": None,
            "payload": None,
            "note": "the image is too small to carry one",
        }
    if rgb.shape[0] * rgb.shape[1] > WATERMARK_MAX_AREA:  # decoding it would take minutes, for nothing
        return {
            "present": False,
            "matching_bits": None,
            "payload": None,
            "note": "the image is larger than any the studio makes",
        }
    bits = _read_dwt_dct_svd(np.ascontiguousarray(rgb[..., ::-1]), WATERMARK_BITS)
    expected = np.unpackbits(np.frombuffer(WATERMARK_PAYLOAD, np.uint8))
    matching = int((bits == expected).sum())
    present = matching >= WATERMARK_THRESHOLD
    return {"present": present, "matching_bits": matching, "payload": WATERMARK_PAYLOAD.decode() if present else None}


# ---------------------------------------------------------------------------------------------- C2PA ---------


@dataclass(frozen=True)
class Credentials:
    chain_pem: bytes  # signing certificate first, then its issuer(s)
    key_pem: bytes
    root_pem: bytes | None  # the local root CA (a trust anchor for Verify), None for operator certificates


def _make_local_ca(folder: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Generative AI Studio local root"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Generative AI Studio"),
        ]
    )
    leaf_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Generative AI Studio signer"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Generative AI Studio"),
        ]
    )
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(leaf_name)
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    folder.mkdir(parents=True, exist_ok=True)
    outputs.atomic_write(folder / "root.pem", pem(root))
    outputs.atomic_write(folder / "chain.pem", pem(leaf) + pem(root))
    outputs.atomic_write(folder / "signer.key", key_pem)
    (folder / "signer.key").chmod(0o600)


def credentials(cache_dir: Path, cert: Path | None = None, key: Path | None = None) -> Credentials:
    if cert and key:
        return Credentials(Path(cert).read_bytes(), Path(key).read_bytes(), None)
    folder = Path(cache_dir) / "c2pa"
    with _lock:
        if not (folder / "signer.key").exists():
            _make_local_ca(folder)
    return Credentials(
        (folder / "chain.pem").read_bytes(), (folder / "signer.key").read_bytes(), (folder / "root.pem").read_bytes()
    )


def sign(
    data: bytes,
    mime: str,
    creds: Credentials,
    *,
    title: str,
    source_type: str,
    action: str,
    recipe: dict | None = None,
) -> bytes:
    """`data` with a signed C2PA manifest: the action (c2pa.created / c2pa.edited), the digital source type, the
    studio as the generator, and a digest of the recipe. Offline: no timestamp authority."""
    c2pa = imported("c2pa")

    manifest = {
        "claim_generator_info": [{"name": outputs.STUDIO_NAME, "version": "0.1"}],
        "title": title[:200],
        "format": mime,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": name,
                            "digitalSourceType": IPTC + source_type,
                            "softwareAgent": {"name": outputs.STUDIO_NAME},
                        }
                        for name in dict.fromkeys(["c2pa.created", action])  # C2PA: the first must be "created"
                    ]
                },
            },
            {"label": "org.generative-ai-studio.recipe", "data": {"summary": _recipe_summary(recipe or {})}},
        ],
    }
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, creds.chain_pem, creds.key_pem, None)
    signer = c2pa.Signer.from_info(info)
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    builder = c2pa.Builder(manifest, context=context)
    out = io.BytesIO()
    builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()


def _recipe_summary(recipe: dict) -> dict:
    keys = (
        "tab",
        "model",
        "revision",
        "mode",
        "prompt",
        "seed",
        "steps",
        "guidance_scale",
        "width",
        "height",
        "duration",
        "engine",
        "created",
    )
    return {k: (recipe[k][:500] if isinstance(recipe.get(k), str) else recipe[k]) for k in keys if k in recipe}


def read_c2pa(data: bytes, mime: str, root_pem: bytes | None = None) -> dict:
    """{"present", "state" (Valid / Trusted / Invalid), "actions", "generator", "errors"} in plain values."""
    c2pa = imported("c2pa")

    try:
        context = None
        if root_pem:
            context = c2pa.Context.from_dict(
                {"trust": {"user_anchors": root_pem.decode()}, "verify": {"verify_trust": True}}
            )
        reader = (
            c2pa.Reader(mime, io.BytesIO(data), context=context) if context else c2pa.Reader(mime, io.BytesIO(data))
        )
        report = json.loads(reader.json())
    except Exception as exc:  # ManifestNotFound and friends
        name = type(exc).__name__
        if "NotFound" in name or "not found" in str(exc).lower():
            return {"present": False, "state": None}
        return {"present": False, "state": "Unreadable", "errors": [str(exc)[:200]]}
    active = report.get("manifests", {}).get(report.get("active_manifest", ""), {})
    actions = []
    for assertion in active.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            actions += assertion.get("data", {}).get("actions", [])
    statuses = report.get("validation_status") or []
    failures = [s.get("code", "") for s in statuses if "untrusted" not in s.get("code", "")]
    state = report.get("validation_state") or ("Invalid" if failures else "Valid")
    return {
        "present": True,
        "state": state,
        "generator": [g.get("name") for g in active.get("claim_generator_info", [])],
        "actions": [{"action": a.get("action"), "digitalSourceType": a.get("digitalSourceType")} for a in actions],
        "issues": [s.get("code") for s in statuses],
    }


# ------------------------------------------------------------------------------------ the save path ---------


@functools.lru_cache(maxsize=4)
def _cached_credentials(cache_dir: Path, cert: Path | None, key: Path | None) -> Credentials:
    return credentials(cache_dir, cert, key)


def studio_credentials(settings: Any) -> Credentials:
    return _cached_credentials(Path(settings.cache_dir), settings.c2pa_cert, settings.c2pa_key)


def visible_label(image: np.ndarray, text: str = "AI-generated") -> np.ndarray:
    """A small, legible label in the bottom-right corner of a picture or video frame (face swaps, videos)."""
    from PIL import Image, ImageDraw, ImageFont

    im = Image.fromarray(image)
    size = max(12, im.height // 32)
    draw = ImageDraw.Draw(im, "RGBA")
    while True:  # smaller on a small picture, so that the whole label fits in its bottom-right corner
        font = ImageFont.load_default(size=size)
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        if x1 - x0 + size <= 0.9 * im.width or size <= 6:
            break
        size -= 1
    pad = size // 3
    w, h = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    left, top = im.width - w - pad, im.height - h - pad
    draw.rectangle([left, top, left + w, top + h], fill=(0, 0, 0, 150))
    draw.text((left + pad - x0, top + pad - y0), text, font=font, fill=(255, 255, 255, 235))
    return np.asarray(im)


def png_writer(image: Any, chunks: dict[str, str] | None = None) -> Callable[[Path, dict], str]:
    """For saving.finish: writes `image` as a PNG carrying the invisible watermark, IPTC's source type in XMP, the
    text `chunks` and the whole recipe (`studio_recipe`, saying what watermark it carries); returns the watermark."""

    def write(path: Path, recipe: dict) -> str:
        from PIL import Image
        from PIL.PngImagePlugin import PngInfo

        marked, watermarked = embed_watermark(np.asarray(image.convert("RGB")))
        mark = WATERMARK_PAYLOAD.decode() if watermarked else "skipped: under 256x256 pixels"
        recipe = {**recipe, "provenance": {**recipe["provenance"], "watermark": mark}}  # the copy the PNG carries
        source_type = recipe["provenance"]["digital_source_type"].replace(IPTC, "")
        info = PngInfo()
        for key, value in {
            **(chunks or {}),
            "studio_recipe": json.dumps(recipe, ensure_ascii=False, default=str),
        }.items():
            info.add_itxt(key, value)
        info.add_itxt("XML:com.adobe.xmp", xmp_packet(source_type), zip=False)
        Image.fromarray(marked).save(path, format="PNG", pnginfo=info, compress_level=PNG_LEVEL)
        return mark

    return write


# ------------------------------------------------------------------------------------- audio (AudioSeal) ----

AUDIOSEAL_FILES = ("generator_base.pth", "detector_base.pth")  # from facebook/audioseal, put there by the operator
AUDIOSEAL_RATE = 16000
AUDIOSEAL_PAYLOAD = b"GA"  # 16 bits


def audioseal_present(folder: Path | None) -> bool:
    return bool(folder) and all((Path(folder) / name).is_file() for name in AUDIOSEAL_FILES)


def _audioseal_model(card: str, path: Path, detector: bool) -> Any:
    """An AudioSeal model built from the card bundled with the package and the operator's checkpoint, loaded
    with torch.load(weights_only=True): tensors and plain data only, never arbitrary pickled code."""
    # (loaded through ModelCache.acquire, which holds the import lock)
    import torch
    from audioseal.builder import AudioSealDetectorConfig, AudioSealWMConfig, create_detector, create_generator
    from audioseal.loader import AudioSeal, convert_state_dict_for_scriptable_model, load_local_model_config
    from omegaconf import DictConfig, OmegaConf

    torch.serialization.add_safe_globals([DictConfig])
    config = OmegaConf.to_container(load_local_model_config(card))
    config.pop("checkpoint", None)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if "xp.cfg" in checkpoint:
        config = {**OmegaConf.to_container(OmegaConf.create(checkpoint["xp.cfg"])), **config}
    state = checkpoint["best_state"]["model"] if "best_state" in checkpoint else checkpoint.get("model", checkpoint)
    kind = AudioSealDetectorConfig if detector else AudioSealWMConfig
    model = (create_detector if detector else create_generator)(AudioSeal.parse_config(config, kind, nbits=16))
    try:
        model.load_state_dict(state)
    except RuntimeError:  # checkpoints trained before audioseal's TorchScript update use older names
        model.load_state_dict(convert_state_dict_for_scriptable_model(state))
    return model.eval()


@contextlib.contextmanager
def audioseal_model(cache: Any, folder: Path, detector: bool = False) -> Iterator[Any]:
    """AudioSeal's generator (or detector) from the operator's folder, held in the model cache (core.models) for
    the length of the block: loaded once, on the CPU, and never unloaded while it marks or reads a file."""
    from core.models import ModelKey

    card = "audioseal_detector_16bits" if detector else "audioseal_wm_16bits"
    path = Path(folder) / AUDIOSEAL_FILES[1 if detector else 0]
    key = ModelKey("audioseal", str(path), None, "cpu", "float32")
    with cache.acquire(key, lambda: _audioseal_model(card, path, detector)) as model:
        yield model


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Mono `audio` (samples,) from `rate` to `target` Hz (polyphase filtering), as float32."""
    import math

    from scipy.signal import resample_poly

    if rate == target:
        return audio.astype(np.float32)
    g = math.gcd(rate, target)
    return resample_poly(audio, target // g, rate // g).astype(np.float32)


def audioseal_mark(audio: np.ndarray, rate: int, generator: Any) -> np.ndarray:
    """`audio` (samples,) with AudioSeal's watermark (from its `generator`, see audioseal_model) and the studio's
    16-bit payload, at its own rate."""
    import torch

    low = resample(audio, rate, AUDIOSEAL_RATE)
    bits = torch.tensor(np.unpackbits(np.frombuffer(AUDIOSEAL_PAYLOAD, np.uint8)), dtype=torch.int32)[None]
    with torch.inference_mode():
        mark = generator.get_watermark(torch.from_numpy(low)[None, None], AUDIOSEAL_RATE, message=bits)
    back = resample(mark[0, 0].numpy(), AUDIOSEAL_RATE, rate)[: len(audio)]
    return audio + np.pad(back, (0, len(audio) - len(back)))


def audioseal_detect(audio: np.ndarray, rate: int, detector: Any) -> dict:
    """{"present", "score" (0..1), "payload"} from AudioSeal's `detector` (see audioseal_model)."""
    import torch

    low = resample(audio, rate, AUDIOSEAL_RATE)
    with torch.inference_mode():
        score, message = detector.detect_watermark(torch.from_numpy(low)[None, None], AUDIOSEAL_RATE)
    score = float(score)
    payload = bytes(np.packbits(message[0].int().numpy().astype(np.uint8)))
    return {"present": score >= 0.5, "score": round(score, 3), "payload": payload.decode("latin-1")}
