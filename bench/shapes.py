"""Random-weight pipelines laid out like the fast models, for benchmarks that must not download anything.

    sd_turbo(folder, real=False)   SD-Turbo's layout (SD 2.1 UNet, 8x VAE, OpenCLIP-H text encoder); with real=True
                                   at its real size (865M-parameter UNet), else with tiny widths
    flux_schnell(real=False)       FLUX.1-schnell's layout (19 double + 38 single blocks, T5 + CLIP, 16-channel VAE)

Unlike core/tiny's test pipelines (a 2x VAE, so a 512 px picture denoises 256x256 latents), these keep the real
downsampling, so the compute at 512 px scales as the real model's does. Random weights make noise pictures: the
figures are about time, not looks. The tokenizer is core/tiny's small CLIP one (its ids fit any vocabulary).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    from core import tiny

    tiny._clip_tokenizer_files(folder / "_tokenizer_src")
    return CLIPTokenizer.from_pretrained(folder / "_tokenizer_src", model_max_length=77)


def _vae(latent_channels: int, widths: tuple[int, ...], groups: int, **extra: Any) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=list(widths),
        in_channels=3,
        out_channels=3,
        latent_channels=latent_channels,
        layers_per_block=2,
        norm_num_groups=groups,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        **extra,
    )


def sd_turbo(folder: Path, real: bool = False) -> Path:
    """A StableDiffusionPipeline saved to `folder` (safetensors, fp16 when real), SD-Turbo's layout."""
    import shutil

    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(folder)
    tokenizer = _tokenizer(folder)
    torch.manual_seed(0)
    widths, heads, text = ((320, 640, 1280, 1280), (5, 10, 20, 20), 1024) if real else ((32, 32, 64, 64), 2, 32)
    unet = UNet2DConditionModel(
        sample_size=64,
        block_out_channels=widths,
        attention_head_dim=heads,
        layers_per_block=2,
        cross_attention_dim=text,
        use_linear_projection=True,
        norm_num_groups=32 if real else 8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    vae = _vae(4, (128, 256, 512, 512) if real else (8, 16, 16, 16), 32 if real else 4)
    config = dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23)
    if not real:
        config = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            **config,
            hidden_act="gelu",
            vocab_size=49408,
            max_position_embeddings=77,
            projection_dim=512 if real else 32,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing", steps_offset=1
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if real:
        pipe.to(torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True, variant="fp16" if real else None)
    shutil.rmtree(folder / "_tokenizer_src")
    return folder


def flux_schnell(device: str, dtype: Any, real: bool = False) -> Any:
    """A FluxPipeline in memory on `device` in `dtype`, FLUX.1-schnell's layout: with real=True at its real size
    (12B-parameter transformer, T5-XXL and CLIP-L text encoders, the 16-channel VAE; about 34 GB in bf16), built
    on the device itself (random weights are drawn there, in seconds), else with tiny widths."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from core import tiny_dit

    scratch = Path(__import__("tempfile").mkdtemp(prefix="flux-shape-"))
    tokenizer, tokenizer_2 = tiny_dit._clip_tokenizer(scratch), tiny_dit._t5_tokenizer()
    if real:
        transformer = dict(num_layers=19, num_single_layers=38, attention_head_dim=128, num_attention_heads=24)
        transformer.update(joint_attention_dim=4096, pooled_projection_dim=768, axes_dims_rope=(16, 56, 56))
        clip = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12)
        t5 = dict(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24)
        vae = dict(widths=(128, 256, 512, 512), groups=32)
    else:
        transformer = dict(num_layers=2, num_single_layers=4, attention_head_dim=16, num_attention_heads=2)
        transformer.update(joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 6, 6))
        clip = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2)
        t5 = dict(d_model=32, d_ff=37, d_kv=8, num_heads=4, num_layers=2)
        vae = dict(widths=(8, 16, 16, 16), groups=4)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # drawn in the dtype it runs in: 12B parameters in float32 would not fit the card
    with torch.device(device):
        parts = dict(
            transformer=FluxTransformer2DModel(patch_size=1, in_channels=64, guidance_embeds=False, **transformer),
            text_encoder=CLIPTextModel(
                CLIPTextConfig(
                    **clip, vocab_size=49408, max_position_embeddings=77, projection_dim=clip["hidden_size"],
                    hidden_act="quick_gelu", bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                )
            ),
            text_encoder_2=T5EncoderModel(
                T5Config(
                    **t5, vocab_size=32128, feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1,
                    decoder_start_token_id=0,
                )
            ),
            vae=_vae(16, vae["widths"], vae["groups"], use_quant_conv=False, use_post_quant_conv=False,
                     shift_factor=0.1159, scaling_factor=0.3611),
        )  # fmt: skip
    torch.set_default_dtype(default)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)
    pipe = FluxPipeline(scheduler=scheduler, tokenizer=tokenizer, tokenizer_2=tokenizer_2, **parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_configs(pipe: Any, folder: Path) -> Path:
    """The pipeline's model_index.json, configs, tokenizers and scheduler in `folder`, without weights: enough to name
    the pipeline and its family (the weights stay in memory; bench/gpu.py gives the studio that very pipeline)."""
    folder = Path(folder)
    pipe.save_config(folder)
    for name, part in pipe.components.items():
        if part is None:
            continue
        if hasattr(part, "save_pretrained") and not hasattr(part, "parameters"):  # tokenizers, schedulers
            part.save_pretrained(folder / name)
        elif hasattr(part, "save_config"):
            part.save_config(folder / name)
        elif hasattr(part, "config"):
            part.config.save_pretrained(folder / name)
    return folder
