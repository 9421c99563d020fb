"""The voices the Voice tab offers, and the three engines that speak them, each loaded once through the ModelCache.

- **hibari** (`hibari-tts`, Apache-2.0 code and weights): a Kokoro-82M voice distilled to an 8 MB ONNX model that
  runs ~40x faster than real time on one CPU core. Its "heart" voice is inside the package, so the studio speaks
  with no download at all (offline, --tiny, a fresh Space); four more voices come from the Hub on first use.
- **VITS** through transformers' VitsModel: Meta's MMS-TTS voices (one model per language; CC-BY-NC 4.0, so
  shown with that licence) from the Hub, or any VITS folder/hub id the operator allows.
- **Piper** voices (VITS exported to ONNX: `NAME.onnx` + `NAME.onnx.json`) from STUDIO_VOICES_DIR, run with plain
  onnxruntime. English voices are phonemised with hibari's own G2P (a port of misaki, no GPL code), mapped to the
  espeak-ng phonemes Piper voices were trained on; other languages need the espeak-ng program (run as a separate
  process, never linked).
Every engine turns one sentence into float32 samples; engine.py splits text, keeps order, progress and Stop.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import hub
from core.device import import_lock, imported
from core.errors import ModelUnavailable, UserError
from core.models import ModelCache, ModelKey
from core.settings import Settings

SETTING = "STUDIO_VOICE"
HIBARI = "hibari:"  # prefix of the hibari voices' ids ("hibari:heart")
PIPER = "piper:"  # prefix of the Piper voices' ids ("piper:en_US-joe-medium", the file's name)
HIBARI_REPO = "maureesewilliams/hibari"  # where hibari-tts keeps its other voices (voices/<file>.onnx)
HIBARI_LICENCE = "Apache-2.0 (hibari-tts: code and weights; distilled from Kokoro-82M, Apache-2.0)"
MMS_LICENCE = "CC-BY-NC 4.0 (Meta's MMS-TTS weights): not for commercial use"
# Meta's MMS-TTS voices for languages written in the Latin alphabet (others need uroman), one model each.
MMS = {
    "facebook/mms-tts-eng": "en",
    "facebook/mms-tts-fra": "fr",
    "facebook/mms-tts-spa": "es",
    "facebook/mms-tts-por": "pt",
    "facebook/mms-tts-nld": "nl",
}
LANGUAGES = {
    "en-US": "English (US)",
    "en-GB": "English (UK)",
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
}
MAX_CONFIG_BYTES = 1_000_000  # a Piper voice's .onnx.json is ~5-20 kB; larger is not one


@dataclass(frozen=True)
class Voice:
    id: str  # what the API's `voice` takes: "hibari:heart", "piper:NAME", a VITS hub id or folder, "tiny:vits"
    engine: str  # "hibari" | "vits" | "piper"
    language: str  # a language code: "en-US", "fr"
    label: str  # what the page shows
    licence: str
    where: str  # built in, downloaded on first use, or the operator's file

    @property
    def language_name(self) -> str:
        return language_name(self.language)


def language_name(code: str) -> str:
    return LANGUAGES.get(code) or LANGUAGES.get(code.split("-")[0]) or code


def hibari_registry() -> dict[str, dict]:
    with import_lock:
        from hibari.voices import VOICES
    return VOICES


def hibari_voices() -> list[Voice]:
    voices = []
    for name, v in hibari_registry().items():
        where = "built in (no download)" if v.get("bundled") else f"downloaded once ({v['bytes'] / 1e6:.0f} MB)"
        label = f"{name.capitalize()} · {language_name(v['language'])}, {v['gender']} · hibari"
        voices.append(Voice(HIBARI + name, "hibari", v["language"], label, HIBARI_LICENCE, where))
    return voices


def vits_voices(settings: Settings) -> list[Voice]:
    if settings.tiny:
        return [Voice("tiny:vits", "vits", "en", "Tiny VITS · English · random weights (noise)", "none", "built here")]
    return [
        Voice(repo, "vits", code, f"MMS {language_name(code)} · VITS (non-commercial)", MMS_LICENCE, "downloaded once")
        for repo, code in MMS.items()
    ]


def piper_voices(folder: Path | None) -> list[Voice]:
    """The Piper voices in `folder`: each NAME.onnx with its NAME.onnx.json, by file name."""
    if folder is None or not Path(folder).is_dir():
        return []
    voices = []
    for model in sorted(Path(folder).glob("*.onnx")):
        config = _piper_config(model)
        if config is None:
            continue
        code = (config.get("language") or {}).get("code") or (config.get("espeak") or {}).get("voice") or "en"
        code = str(code).replace("_", "-")
        label = f"{model.stem} · {language_name(code)} · Piper"
        voices.append(Voice(PIPER + model.stem, "piper", code, label, "the voice's own (see its MODEL_CARD)", "yours"))
    return voices


def _piper_config(model: Path) -> dict | None:
    path = model.with_name(model.name + ".json")
    try:
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) and isinstance(config.get("phoneme_id_map"), dict) else None


def catalogue(settings: Settings) -> list[Voice]:
    """Every voice offered, the default (STUDIO_VOICE) first."""
    voices = hibari_voices() + piper_voices(settings.voices_dir) + vits_voices(settings)
    first = [v for v in voices if v.id == settings.voice]
    if not first and settings.voice and not settings.voice.startswith((HIBARI, PIPER)):  # the operator's VITS model
        label, where = f"{settings.voice} · VITS", "set by STUDIO_VOICE"
        first = [Voice(settings.voice, "vits", "", label, "the model's own", where)]
    return first + [v for v in voices if v.id != settings.voice]


def find(settings: Settings, voice_id: str) -> Voice:
    """The voice called `voice_id`; any VITS hub id or folder where the operator allows custom models."""
    for voice in catalogue(settings):
        if voice.id == voice_id:
            return voice
    custom = settings.allow_custom_models and not voice_id.startswith((HIBARI, PIPER))
    if custom and (voice_id.startswith("tiny:vits") or "/" in voice_id or hub.looks_like_path(voice_id)):
        return Voice(voice_id, "vits", "", voice_id, "the model's own", "a model you named")
    raise UserError(
        f"There is no voice called '{voice_id:.80}' here. Pick one from the list (voice), e.g. "
        f"'{catalogue(settings)[0].id}'; Piper voices are NAME.onnx + NAME.onnx.json files in STUDIO_VOICES_DIR."
    )


# -- speakers: one sentence in, float32 samples out -------------------------------------------------------------
class HibariSpeaker:
    engine = "hibari"

    def __init__(self, model_path: str, name: str, threads: int) -> None:
        with import_lock:
            from hibari import Hibari

        self.tts = Hibari(voice=name, model=model_path, threads=threads)
        self.resident_bytes = os.path.getsize(model_path)  # for the cache's budget and the Models panel
        self.rate = int(self.tts.sample_rate)
        self.tts.g2p  # noqa: B018 (the G2P loads here, once, not in the first request's sentence)

    def say(self, sentence: str, speed: float, rng: Any) -> Any:
        import numpy as np

        parts = [self.tts.from_ids(self.tts.ids(ps), speed, rng) for ps in self.tts.phonemize(sentence)]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)


class VitsSpeaker:
    engine = "vits"
    _rng_lock = threading.Lock()  # VITS draws its noise from torch's global generator: one seeded draw at a time

    def __init__(self, folder: Path, device: str) -> None:
        with import_lock:
            from transformers import AutoTokenizer, VitsModel

        self.tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        if getattr(self.tokenizer, "phonemize", False):
            raise UserError(
                "This VITS voice reads phonemes made by espeak through the phonemizer package, which the studio "
                "does not run; choose an MMS-TTS voice (they read letters) or a Piper voice."
            )
        safe = any(Path(folder).glob("*.safetensors"))
        model = VitsModel.from_pretrained(folder, use_safetensors=safe, weights_only=True, trust_remote_code=False)
        self.model = model.to(device).eval()
        self.rate = int(self.model.config.sampling_rate)

    def say(self, sentence: str, speed: float, rng: Any) -> Any:
        torch = imported("torch")
        text = sentence.lower() if getattr(self.tokenizer, "normalize", False) else sentence
        if getattr(self.tokenizer, "is_uroman", False):
            text = _uroman(text)
        inputs = self.tokenizer(text, return_tensors="pt").to(self.model.device)
        if inputs["input_ids"].shape[-1] < 2:
            return imported("numpy").zeros(0, "float32")
        seed = int(rng.integers(2**31))
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with self._rng_lock, torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            self.model.speaking_rate = speed
            wave = self.model(**inputs).waveform[0]
        return wave.float().cpu().numpy()


def _uroman(text: str) -> str:
    try:
        with import_lock:
            import uroman
    except ImportError:
        raise UserError(
            "This voice reads romanised text: install the uroman package (pip install uroman) to use it."
        ) from None
    return uroman.Uroman().romanize_string(text)


# hibari's G2P writes misaki's phonemes (Kokoro's alphabet); Piper voices were trained on espeak-ng's IPA.
MISAKI_TO_ESPEAK = [
    ("ɔɹ", "oːɹ"), ("ɜɹ", "ɜː"), ("əɹ", "ɚ"), ("ᵊ", "ə"), ("A", "eɪ"), ("I", "aɪ"), ("O", "oʊ"), ("W", "aʊ"),
    ("Y", "ɔɪ"), ("ʤ", "dʒ"), ("ʧ", "tʃ"), ("ɑ", "ɑː"), ("ɔ", "ɔː"), ("u", "uː"), ("T", "ɾ"), ("ɐ", "ə"),
]  # fmt: skip


def misaki_to_espeak(phonemes: str) -> str:
    for a, b in MISAKI_TO_ESPEAK:
        phonemes = phonemes.replace(a, b)
    return re.sub(r"([ˈˌ])i", r"\1iː", phonemes)  # a stressed i is long in espeak


class PiperSpeaker:
    engine = "piper"

    def __init__(self, model: Path, threads: int) -> None:
        import onnxruntime as ort

        self.config = _piper_config(model)
        if self.config is None:
            raise UserError(f"The Piper voice {model.stem} has no readable {model.name}.json beside it.")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.resident_bytes = model.stat().st_size  # for the cache's budget and the Models panel
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.rate = int((self.config.get("audio") or {}).get("sample_rate") or 22050)
        self.ids = {k: list(v) for k, v in self.config["phoneme_id_map"].items() if isinstance(v, list)}
        inference = self.config.get("inference") or {}
        self.scales = [float(inference.get(k, d)) for k, d in (("noise_scale", 0.667), ("length_scale", 1.0))]
        self.noise_w = float(inference.get("noise_w", 0.8))
        self.espeak_voice = str((self.config.get("espeak") or {}).get("voice") or "en-us")
        self.by_letters = self.config.get("phoneme_type") == "text"
        self._g2p = None

    def phonemes(self, sentence: str) -> str:
        if self.by_letters:
            return sentence
        if self.espeak_voice.lower().startswith("en"):
            if self._g2p is None:
                with import_lock:
                    from hibari.g2p import G2P
                self._g2p = G2P(british=self.espeak_voice.lower() in ("en-gb", "en-gb-x-rp", "en-gb-scotland"))
            return misaki_to_espeak(self._g2p(sentence))
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            raise UserError(
                f"This Piper voice speaks '{self.espeak_voice}', whose phonemes come from the espeak-ng program: "
                "install it (apt install espeak-ng, brew install espeak-ng) or choose an English voice."
            )
        done = subprocess.run(  # a separate process: espeak-ng is GPL-3 and is never linked into the studio
            [espeak, "-q", "--ipa", "-v", self.espeak_voice, "--", sentence],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        return " ".join(line.strip() for line in done.stdout.splitlines() if line.strip())

    def say(self, sentence: str, speed: float, rng: Any) -> Any:
        import numpy as np

        pad, ids = self.ids.get("_", [0]), [*self.ids.get("^", [1]), *self.ids.get("_", [0])]
        for symbol in unicodedata.normalize("NFD", self.phonemes(sentence)):
            if symbol in self.ids:
                ids += self.ids[symbol] + pad
        ids += self.ids.get("$", [2])
        if len(ids) < 5:
            return np.zeros(0, np.float32)
        feed = {
            "input": np.asarray([ids], np.int64),
            "input_lengths": np.asarray([len(ids)], np.int64),
            "scales": np.asarray([self.scales[0], self.scales[1] / speed, self.noise_w], np.float32),
        }
        if "sid" in self.inputs:
            feed["sid"] = np.asarray([0], np.int64)
        return np.asarray(self.session.run(None, feed)[0], np.float32).reshape(-1)


def vits_patterns(files: dict | None) -> list[str]:
    """A VITS repo's configs and tokenizer, and its weights: model.safetensors where the repo has it, else
    pytorch_model.bin, read with torch's weights_only loading (tensors only)."""
    has_safetensors = files is None or any(name.endswith(".safetensors") for name in files)
    return hub.ALLOW_PATTERNS + ([] if has_safetensors else ["pytorch_model*.bin"])


def _hibari_file(cache: ModelCache, name: str, progress: Any) -> str:
    """The path of hibari voice `name`'s ONNX file: in the package, in hibari's own cache, or from the Hub once
    (checked against the SHA-256 hibari's registry gives)."""
    with import_lock:
        from hibari.voices import sha256_of, voice_path

    entry = hibari_registry()[name]
    try:
        return voice_path(name, download_missing=False)
    except FileNotFoundError:
        pass
    pattern = f"voices/{entry['file']}"
    try:
        options = dict(setting=SETTING, offline=cache.offline, allow_patterns=[pattern])
        folder = hub.resolve(HIBARI_REPO, before_download=_say(progress), **options)
    except ModelUnavailable as exc:
        raise ModelUnavailable(
            f"The voice hibari:{name} comes from the Hugging Face Hub on first use ({entry['bytes'] / 1e6:.0f} MB), "
            f"and that failed: {exc} Choose hibari:heart, which needs no download, or put {entry['file']} into "
            f"{hibari_home()}."
        ) from None
    path = folder / pattern
    if not path.is_file() or sha256_of(path) != entry["sha256"]:
        raise UserError(f"The voice file for '{name}' from {HIBARI_REPO} is not the one hibari-tts expects.")
    return str(path)


def hibari_home() -> str:
    with import_lock:
        from hibari.voices import cache_dir
    return cache_dir()


def _say(progress: Any) -> Any:
    def before(download: hub.Download) -> None:
        if progress and download.missing:
            progress(0.0, f"Downloading the voice ({download.bytes / 1e6:.0f} MB, once)…")

    return before


@contextmanager
def speaker(cache: ModelCache, settings: Settings, voice: Voice, progress: Any = None) -> Iterator[Any]:
    """The loaded engine for `voice`, from the cache (loaded once, shared by every request)."""
    threads = min(4, os.cpu_count() or 1)  # onnxruntime's threads: more than 4 buy nothing for one sentence
    if voice.engine == "vits":
        options = dict(setting=SETTING, progress=progress, allow_patterns=vits_patterns)
        with cache.model("voice", voice.id, lambda folder, device, dtype: VitsSpeaker(folder, device), **options) as s:
            yield s
        return
    if voice.engine == "hibari":
        name = voice.id.removeprefix(HIBARI)
        path = _hibari_file(cache, name, progress)
        key, load = ModelKey("voice", voice.id, None, "cpu", "int8"), lambda: HibariSpeaker(path, name, threads)
    else:
        model = Path(settings.voices_dir) / (voice.id.removeprefix(PIPER) + ".onnx")
        key, load = ModelKey("voice", str(model), None, "cpu", "float32"), lambda: PiperSpeaker(model, threads)
    with cache.acquire(key, load) as s:
        yield s
