"""Settings: one frozen dataclass, read from STUDIO_* environment variables (flags override them in studio.py).

Every field has a comment; docs/settings.md lists them all (made from these comments by `python -m app.docs`).
Nothing here imports torch or gradio.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TEXT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
DEFAULT_IMAGE_MODEL = "stabilityai/sd-turbo"
DEFAULT_MUSIC_MODEL = "facebook/musicgen-small"
DEFAULT_VOICE_CLONE_MODEL = "nari-labs/Dia-1.6B-0626"
DEFAULT_VIDEO_MODEL = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
DEFAULT_TRAIN_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEFAULT_CAPTION_MODEL = "Salesforce/blip-image-captioning-base"

# Names that stand for the tiny random-weight models built by core/tiny.py (used by --tiny).
TINY_TEXT_MODEL = "tiny:qwen2"
TINY_IMAGE_MODEL = "tiny:stable-diffusion"
TINY_MUSIC_MODEL = "tiny:musicgen"
TINY_VOICE_CLONE_MODEL = "tiny:dia"
TINY_VIDEO_MODEL = "tiny:wan"
TINY_TRAIN_MODEL = "tiny:stable-diffusion"
TINY_CAPTION_MODEL = "tiny:blip"

LOOPBACK = {"127.0.0.1", "localhost", "::1"}  # host values that only this machine reaches
REMOTE_TABS = (
    "image",
    "music",
    "voice",
    "faceswap",
    "extras",
    "video",
)  # the tabs whose engines can run on a Ray cluster

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "studio"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"  # address the server binds (0.0.0.0 to serve a network)
    port: int = 7860  # TCP port of the web UI
    share: bool = False  # ask Gradio for a public *.gradio.live link
    device: str = "auto"  # auto | cpu | cuda | mps (auto: cuda, then mps, then cpu)
    offline: bool = False  # never contact the Hugging Face Hub; use cached or local models only
    tiny: bool = False  # use tiny random-weight models built locally (outputs are noise; for trying flows offline)
    text_model: str = DEFAULT_TEXT_MODEL  # hub id or local folder of the Text tab's default model
    image_model: str = DEFAULT_IMAGE_MODEL  # hub id or local folder of the Image tab's default model
    text_endpoint: str | None = None  # an OpenAI-compatible server (http://host:port/v1) that runs the Text tab
    text_api_key: str | None = None  # its API key, if it wants one (sent as a bearer token)
    music_model: str = DEFAULT_MUSIC_MODEL  # hub id or local folder of the Music tab's default model
    voice: str = "hibari:heart"  # the Voice tab's default voice (hibari:heart is inside the package: no download)
    voices_dir: Path = Path("models/voices")  # Piper voices (NAME.onnx + NAME.onnx.json) the Voice tab offers
    max_speech_chars: int = 5000  # longest text the Voice tab speaks at once, in characters
    voice_cloning: bool = True  # offer voice cloning (with the speaker's consent, audited); 0 turns it off
    voice_clone_model: str = DEFAULT_VOICE_CLONE_MODEL  # hub id or local folder of the cloning model (Dia)
    video_model: str = DEFAULT_VIDEO_MODEL  # hub id or local folder of the Video tab's default model (Wan)
    max_video_frames: int = 81  # most frames the Video tab makes at once (Wan's 5 s at 16 fps is 81)
    video_label: bool = True  # stamp a visible "AI-generated" label on generated videos (turn off for private use)
    training: bool = True  # offer LoRA training (the Train tab); 0 turns it off (public deployments that should not)
    train_model: str = DEFAULT_TRAIN_MODEL  # the Train tab's default base model (hub id or local folder)
    caption_model: str = DEFAULT_CAPTION_MODEL  # the model that captions training pictures (BLIP; hub id or folder)
    max_train_steps: int = 3000  # most steps one training may take
    memory_budget_gb: float | None = None  # memory for loaded models; unset: half the RAM (CPU), 85% of GPU memory
    output_dir: Path = Path("outputs")  # where results are saved, with their recipes
    cache_dir: Path = field(default_factory=_default_cache_dir)  # tiny models and other studio caches
    allow_custom_models: bool = False  # let users type any hub id (keep off on public deployments)
    lora_dir: Path = Path("models/lora")  # the LoRAs (.safetensors) the Image tab offers, used as <lora:name:0.8>
    embeddings_dir: Path = Path("models/embeddings")  # textual-inversion embeddings (.safetensors), used by name
    wildcards_dir: Path = Path("models/wildcards")  # name.txt files: __name__ in a prompt draws one of their lines
    controlnet_dir: Path = Path("models/controlnet")  # ControlNet folders (diffusers format) offered too
    checkpoint_dir: Path = Path("models/checkpoints")  # one-file models: SD checkpoints, transformers (Wan too), GGUF
    upscaler_dir: Path = Path("models/upscalers")  # upscaler weights (.safetensors, .pth) offered by file name
    face_restorer_dir: Path = Path("models/face_restorers")  # face restorers (GFPGAN, RestoreFormer...) by file name
    depth_model: str = "depth-anything/Depth-Anything-V2-Small-hf"  # finds depth for ControlNet (hub id or folder)
    ip_adapter: str | None = None  # an IP-Adapter folder (.safetensors + image_encoder/); unset: h94's for SD 1.5/SDXL
    styles_file: Path | None = None  # a JSON list of styles added to the built-in ones (assets/styles.json)
    max_prompt_chars: int = 4000  # longest prompt or message accepted, in characters
    max_new_tokens: int = 2048  # upper bound of the Text tab's "max new tokens" slider
    max_image_size: int = 1024  # largest image width or height in pixels (multiple of 8)
    faceswap_model_dir: Path | None = None  # folder with inswapper_128.onnx + w600k_r50.onnx (the neural engine)
    allow_model_downloads: bool = True  # users may fetch optional models (the neural face swap) after a licence yes
    faceswap_label: bool = True  # stamp a visible "AI-generated" label on face swaps (turn off for private use)
    max_video_seconds: float = 20.0  # longest target video the face swap accepts
    max_music_seconds: float = 30.0  # longest music the Music tab makes (MusicGen's own limit is 30 s)
    classroom: bool = False  # simplified controls, safe limits, "How it works" panels open, consent shown large
    c2pa_cert: Path | None = None  # PEM chain that signs content credentials (default: a local CA made on first run)
    c2pa_key: Path | None = None  # PEM private key for STUDIO_C2PA_CERT
    audioseal_dir: Path | None = (
        None  # folder with AudioSeal's generator_base.pth + detector_base.pth (audio watermark)
    )
    auth: str | None = None  # "user:password,user2:password2": require a login (classrooms, shared machines)
    admins: str | None = None  # logins of STUDIO_AUTH that may act for everyone (unload models, fetch engines)
    max_upload_mb: float = 50.0  # largest file a user may upload, in megabytes
    concurrency: int = 1  # jobs of one tab that run at the same time
    max_queue: int = 64  # requests waiting in the queue before new ones are told the studio is busy
    ray_address: str | None = None  # a Ray cluster (auto, ray://head:10001) that runs the engines (docs/scaling.md)
    remote_concurrency: int = 16  # requests of one tab sent at once to a text server or the cluster (they batch them)
    mcp: bool = False  # also serve every endpoint as an MCP tool (Gradio's MCP server at /gradio_api/mcp/)

    @property
    def memory_budget_bytes(self) -> int | None:
        return None if self.memory_budget_gb is None else int(self.memory_budget_gb * 1024**3)

    @property
    def public(self) -> bool:
        """Reachable by other people: a share link, or bound to an address other machines reach (a Space, a LAN)."""
        return self.share or self.host.strip().lower() not in LOOPBACK

    def is_operator(self, username: str | None) -> bool:
        """May `username` (the login, None without one) act for everyone: unload models, fetch an engine for all?
        With STUDIO_ADMINS, the logins listed there; without, anyone on a studio only this machine reaches."""
        if self.admins:
            return username is not None and username in {a.strip() for a in self.admins.split(",")}
        return not self.public

    def jobs_at_once(self, tab: str) -> int:
        """Requests of `tab` that run at once: `concurrency` for models in this process; `remote_concurrency` where
        the tab's model runs on a text server or a Ray cluster (the studio then only waits, and the server queues
        and batches what it gets)."""
        remote = self.text_endpoint if tab == "text" else self.ray_address if tab in REMOTE_TABS else None
        return self.remote_concurrency if remote else self.concurrency

    def model_for(self, kind: str) -> str:
        """The default model of a tab ("text", "image", "music", "voice_clone", "video", "train", "caption"),
        honouring --tiny."""
        if self.tiny:
            tiny = {"text": TINY_TEXT_MODEL, "image": TINY_IMAGE_MODEL, "music": TINY_MUSIC_MODEL}
            tiny.update(voice_clone=TINY_VOICE_CLONE_MODEL, video=TINY_VIDEO_MODEL, train=TINY_TRAIN_MODEL)
            return {**tiny, "caption": TINY_CAPTION_MODEL}[kind]
        return getattr(self, f"{kind}_model")

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


def _parse(name: str, raw: str, kind: type):
    if kind is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{name} must be 1/0, true/false, yes/no or on/off, not {raw!r}.")
    try:
        if kind is Path:
            return Path(raw).expanduser()
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a {kind.__name__}, not {raw!r}.") from None


_KINDS = {"str": str, "int": int, "bool": bool, "float": float, "Path": Path}
# Each field's type, read from its annotation ("Path | None" -> Path): one source of truth for the variables.
_TYPES = {f.name: _KINDS[str(f.type).split("|")[0].strip()] for f in dataclasses.fields(Settings)}


def env_name(field_name: str) -> str:
    return "STUDIO_" + field_name.upper()


def from_env(environ: dict[str, str] | None = None, **overrides) -> Settings:
    """Settings from STUDIO_* variables, then `overrides` (flags) on top. Bad values raise ValueError."""
    environ = os.environ if environ is None else environ
    values = {}
    for name, kind in _TYPES.items():
        raw = environ.get(env_name(name))
        if raw is not None and raw.strip() != "":
            values[name] = _parse(env_name(name), raw, kind)
    if "offline" not in values and environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        values["offline"] = True
    # Hugging Face Spaces (and other Gradio hosts) say where to bind through Gradio's own variables.
    if "host" not in values and environ.get("GRADIO_SERVER_NAME"):
        values["host"] = environ["GRADIO_SERVER_NAME"]
    if "port" not in values and environ.get("GRADIO_SERVER_PORT"):
        values["port"] = _parse("GRADIO_SERVER_PORT", environ["GRADIO_SERVER_PORT"], int)
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)
    validate(settings)
    return classroom_limits(settings)


def classroom_limits(s: Settings) -> Settings:
    """Classroom mode keeps every job short, so that a room of 30 shares one machine well."""
    if not s.classroom:
        return s
    return s.replace(
        max_new_tokens=min(s.max_new_tokens, 256),
        max_image_size=min(s.max_image_size, 512),
        max_music_seconds=min(s.max_music_seconds, 10),
        max_video_seconds=min(s.max_video_seconds, 10),
        max_prompt_chars=min(s.max_prompt_chars, 1000),
        max_speech_chars=min(s.max_speech_chars, 1000),
        max_video_frames=min(s.max_video_frames, 33),
        max_train_steps=min(s.max_train_steps, 300),
        allow_custom_models=False,
    )


def validate(s: Settings) -> None:
    if s.device not in {"auto", "cpu", "cuda", "mps"} and not s.device.startswith("cuda:"):
        raise ValueError(f"STUDIO_DEVICE must be auto, cpu, cuda, cuda:N or mps, not {s.device!r}.")
    if not 1 <= s.port <= 65535:
        raise ValueError(f"STUDIO_PORT must be between 1 and 65535, not {s.port}.")
    if s.memory_budget_gb is not None and s.memory_budget_gb <= 0:
        raise ValueError("STUDIO_MEMORY_BUDGET_GB must be a positive number of gigabytes.")
    if not 1 <= s.max_music_seconds <= 30:
        raise ValueError("STUDIO_MAX_MUSIC_SECONDS must be between 1 and 30 (MusicGen's limit).")
    if s.max_image_size < 64 or s.max_image_size % 8:
        raise ValueError("STUDIO_MAX_IMAGE_SIZE must be a multiple of 8, at least 64.")
    if (s.c2pa_cert is None) != (s.c2pa_key is None):
        raise ValueError("Set both STUDIO_C2PA_CERT and STUDIO_C2PA_KEY, or neither.")
    logins = {user for user, _ in auth_pairs(s) or []}
    if s.admins and not {a.strip() for a in s.admins.split(",")} <= logins:
        raise ValueError("STUDIO_ADMINS must name logins of STUDIO_AUTH (user names separated by commas).")
    if s.mcp and s.auth:  # Gradio's MCP server asks for no login: it would open what STUDIO_AUTH closes
        raise ValueError("STUDIO_MCP cannot be used with STUDIO_AUTH: Gradio's MCP server does not ask for the login.")
    numbers = ("max_prompt_chars", "max_speech_chars", "max_video_frames", "max_new_tokens", "concurrency")
    numbers += ("max_queue", "max_train_steps")
    numbers += ("remote_concurrency",)
    for name in numbers:
        if getattr(s, name) < 1:
            raise ValueError(f"{env_name(name)} must be at least 1.")


def auth_pairs(s: Settings) -> list[tuple[str, str]] | None:
    """STUDIO_AUTH as (user, password) pairs; None when no login is required."""
    if not s.auth:
        return None
    pairs = []
    for item in s.auth.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise ValueError("STUDIO_AUTH must be user:password pairs separated by commas, e.g. teacher:s3cret.")
        pairs.append((user, password))
    return pairs
