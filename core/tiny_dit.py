"""Tiny random-weight pipelines of the transformer (DiT) image families, built locally in seconds: FLUX.1, SD 3.5,
Z-Image and Qwen-Image, with the classes of the real checkpoints and diffusers' own test sizes (the
`get_dummy_components` of its pipeline tests), tokenizers made on this machine instead of the hub's test ones.
core.tiny registers them ("tiny:flux" ...); `--tiny` and the tests load them through the normal path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Qwen-Image drops the first 34 tokens of its prompt template (the system prompt) from the text encoder's output:
# the tokenizer must split that prefix into exactly 34 tokens, as Qwen's own does (one per word).
QWEN_IMAGE_PREFIX = (
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, spatial "
    "relationships of the objects and background:<|im_end|>\n<|im_start|>user\n"
)
QWEN_EDIT_PREFIX = (  # Qwen-Image-Edit's system prompt: 64 tokens with Qwen's tokenizer, dropped after encoding
    "<|im_start|>system\nDescribe the key features of the input image (color, shape, size, texture, objects, "
    "background), then explain how the user's text instruction should alter or modify the image. Generate a new "
    "image that meets the user's requirements while maintaining consistency with the original input where "
    "appropriate.<|im_end|>\n<|im_start|>user\n"
)
IMAGE_WORDS = (
    "a an the of in on with and at by photo painting watercolor portrait landscape city night day fox cat dog red "
    "blue green yellow light dark forest sea mountain house tree sky cloud snow sun moon girl man woman robot cozy "
    "detailed sharp soft style make it remove add cup"
).split()


def _t5_tokenizer() -> Any:
    """A T5 tokenizer (sentencepiece-style unigram pieces) over a small image vocabulary, without sentencepiece."""
    from transformers import T5Tokenizer

    letters = "abcdefghijklmnopqrstuvwxyz0123456789,."
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    vocab += [("\u2581" + w, -2.0 - i) for i, w in enumerate(IMAGE_WORDS)]
    vocab += [(c, -100.0 - i) for i, c in enumerate(letters)]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def _t5_encoder(vocab_size: int) -> Any:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=vocab_size, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4, pad_token_id=0,
        eos_token_id=1, decoder_start_token_id=0,
    )  # fmt: skip
    return T5EncoderModel(config)


def _clip_tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    from core.tiny import _clip_tokenizer_files

    _clip_tokenizer_files(folder)
    return CLIPTokenizer.from_pretrained(folder, model_max_length=77)


def _clip_encoder(tokenizer: Any, with_projection: bool = False) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tokenizer),
        max_position_embeddings=77, projection_dim=32, hidden_act="gelu",
    )  # fmt: skip
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)


def _qwen_tokenizer(edit: bool = False) -> Any:
    """A byte-level BPE with Qwen's ChatML and vision tokens, trained on the prompt template (so that its system
    prompt is one token per word, 34 in all, as with Qwen's own tokenizer) and on words of image prompts; with
    `edit`, on Qwen-Image-Edit's template too (64 tokens, as with Qwen's own)."""
    import random

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    rng = random.Random(0)  # a fixed corpus: the same tokenizer on every machine and Python version
    corpus = [QWEN_IMAGE_PREFIX] * 200 + [QWEN_EDIT_PREFIX] * 200 * edit
    corpus += [" ".join(rng.choices(IMAGE_WORDS, k=12)) for _ in range(400)]
    trainer = trainers.BpeTrainer(
        vocab_size=800 if edit else 600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    for template, length in ((QWEN_IMAGE_PREFIX, 34), (QWEN_EDIT_PREFIX, 64))[: 1 + edit]:
        prefix = len(tokenizer(template).input_ids)
        assert prefix == length, f"the tiny Qwen tokenizer splits a template into {prefix} tokens, not {length}"
    return tokenizer


def _small_vae() -> Any:
    """The AutoencoderKL of the tiny FLUX.1 and SD 3.5 pipelines: 4 latent channels, a factor of 2, SD3's shift and
    scale (diffusers' test sizes, one more block so that pictures are not latent-sized)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4, 8), layers_per_block=1,
        latent_channels=4, norm_num_groups=2, use_quant_conv=False, use_post_quant_conv=False,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        shift_factor=0.0609, scaling_factor=1.5035,
    )  # fmt: skip


def _flux_parts(folder: Path) -> dict[str, Any]:
    """FLUX.1's parts at diffusers' test sizes: a FluxTransformer2DModel (16 packed channels: a 4-channel latent in
    2x2 patches), CLIP and T5 text encoders, an AutoencoderKL with Flux's shift and scale."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    tokenizer = _clip_tokenizer(folder / "_clip")
    tokenizer_2 = _t5_tokenizer()
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
    )  # fmt: skip
    torch.manual_seed(0)
    text_encoder = _clip_encoder(tokenizer)
    text_encoder_2 = _t5_encoder(len(tokenizer_2))
    vae = _small_vae()
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
        max_image_seq_len=4096,
    )  # fmt: skip
    return dict(
        transformer=transformer, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
        tokenizer_2=tokenizer_2, vae=vae, scheduler=scheduler, image_encoder=None, feature_extractor=None,
    )  # fmt: skip


def build_flux(folder: Path) -> Path:
    """A FluxPipeline like FLUX.1-schnell's."""
    import shutil

    from diffusers import FluxPipeline

    parts = _flux_parts(folder)
    FluxPipeline(**parts).save_pretrained(folder, safe_serialization=True)
    shutil.rmtree(folder / "_clip")
    return folder


def build_flux_kontext(folder: Path) -> Path:
    """A FluxKontextPipeline like FLUX.1 Kontext's (the same parts as FLUX.1: it reads the input picture as tokens
    beside the picture it makes)."""
    import shutil

    from diffusers import FluxKontextPipeline

    parts = _flux_parts(folder)
    FluxKontextPipeline(**parts).save_pretrained(folder, safe_serialization=True)
    shutil.rmtree(folder / "_clip")
    return folder


def build_sd3(folder: Path) -> Path:
    """A StableDiffusion3Pipeline like SD 3.5's: an SD3Transformer2DModel (2x2 patches of a 4-channel latent), two
    CLIP text encoders with projections and a T5, an AutoencoderKL."""
    import shutil

    import torch
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    tokenizer = _clip_tokenizer(folder / "_clip")
    tokenizer_3 = _t5_tokenizer()
    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=32, patch_size=2, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=4,
        caption_projection_dim=32, joint_attention_dim=32, pooled_projection_dim=64, out_channels=4,
    )  # fmt: skip
    torch.manual_seed(0)
    text_encoder = _clip_encoder(tokenizer, with_projection=True)
    torch.manual_seed(1)
    text_encoder_2 = _clip_encoder(tokenizer, with_projection=True)
    text_encoder_3 = _t5_encoder(len(tokenizer_3))
    vae = _small_vae()
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
        text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer,
        text_encoder_3=text_encoder_3, tokenizer_3=tokenizer_3,
    )  # fmt: skip
    pipe.save_pretrained(folder, safe_serialization=True)
    shutil.rmtree(folder / "_clip")
    return folder


def build_z_image(folder: Path) -> Path:
    """A ZImagePipeline like Z-Image-Turbo's: a ZImageTransformer2DModel, a Qwen3 text encoder, an AutoencoderKL
    with 16 latent channels."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = _qwen_tokenizer()
    torch.manual_seed(0)
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=2, n_refiner_layers=1,
        n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True, cap_feat_dim=16, rope_theta=256.0, t_scale=1000.0,
        axes_dims=[8, 4, 4], axes_lens=[256, 32, 32],
    )  # fmt: skip
    with torch.no_grad():  # these start as torch.empty: give them values, or two runs differ
        transformer.x_pad_token.copy_(torch.ones_like(transformer.x_pad_token))
        transformer.cap_pad_token.copy_(torch.ones_like(transformer.cap_pad_token))
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=[32, 64], layers_per_block=1,
        latent_channels=16, norm_num_groups=32, sample_size=32, scaling_factor=0.3611, shift_factor=0.1159,
    )  # fmt: skip
    torch.manual_seed(0)
    text_encoder = Qwen3Model(
        Qwen3Config(
            hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
            vocab_size=len(tokenizer), max_position_embeddings=512,
        )
    )  # fmt: skip
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    pipe = ZImagePipeline(
        transformer=transformer, vae=vae, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def _qwen_parts(edit: bool = False) -> dict[str, Any]:
    """Qwen-Image's parts at test sizes: a QwenImageTransformer2DModel, a Qwen2.5-VL text encoder (with its vision
    tower: the edit model shows it the input picture), the Qwen-Image VAE (a Wan-style causal 3D VAE)."""
    import torch
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tokenizer = _qwen_tokenizer(edit)
    ids = tokenizer.convert_tokens_to_ids
    torch.manual_seed(0)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
    )  # fmt: skip
    torch.manual_seed(0)
    vae = AutoencoderKLQwenImage(
        base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    )  # fmt: skip
    torch.manual_seed(0)
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "rope_theta": 1000000.0, "vocab_size": len(tokenizer),
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        },
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16, vocab_size=len(tokenizer), vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"), vision_token_id=ids("<|image_pad|>"),
        image_token_id=ids("<|image_pad|>"),
    )  # fmt: skip
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9, base_image_seq_len=256,
        max_image_seq_len=8192, shift_terminal=0.02,
    )  # fmt: skip
    return dict(transformer=transformer, vae=vae, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer)


def build_qwen_image(folder: Path) -> Path:
    """A QwenImagePipeline like Qwen-Image's."""
    from diffusers import QwenImagePipeline

    QwenImagePipeline(**_qwen_parts()).save_pretrained(folder, safe_serialization=True)
    return folder


def build_qwen_image_edit(folder: Path) -> Path:
    """A QwenImageEditPipeline like Qwen-Image-Edit's: Qwen-Image's parts, and a Qwen2-VL processor that turns the
    input picture into vision tokens for the text encoder (small pictures: a few dozen tokens)."""
    from diffusers import QwenImageEditPipeline
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    parts = _qwen_parts(edit=True)
    pixels = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112)
    processor = Qwen2VLProcessor(
        image_processor=pixels, tokenizer=parts["tokenizer"], video_processor=Qwen2VLVideoProcessor()
    )
    QwenImageEditPipeline(**parts, processor=processor).save_pretrained(folder, safe_serialization=True)
    return folder


# -- video: Wan (text to video; Wan 2.2 TI2V also picture to video) ------------------------------------------------
def _umt5_encoder(vocab_size: int) -> Any:
    """UMT5EncoderModel, the real Wan text encoder's class, as wide as the tiny transformer's text_dim (32)."""
    from transformers import UMT5Config, UMT5EncoderModel

    config = UMT5Config(
        vocab_size=vocab_size, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )  # fmt: skip
    return UMT5EncoderModel(config).eval()


def _wan_parts(in_channels: int, flow_shift: float, vae_options: dict) -> dict:
    """A Wan pipeline's parts at diffusers' test sizes (tests/pipelines/wan), with the real checkpoints' scheduler
    (UniPC on flow sigmas, as scripts/convert_wan_to_diffusers.py writes it)."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel

    tokenizer = _t5_tokenizer()
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True], **vae_options
    )
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=in_channels,
        out_channels=in_channels, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )  # fmt: skip
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=flow_shift
    )
    return dict(
        vae=vae, scheduler=scheduler, transformer=transformer, transformer_2=None, tokenizer=tokenizer,
        text_encoder=_umt5_encoder(len(tokenizer)),
    )  # fmt: skip


def build_wan(folder: Path) -> Path:
    """WanPipeline laid out like Wan-AI/Wan2.1-T2V-1.3B-Diffusers: text to video, 16-channel VAE, 8x spatial."""
    from diffusers import WanPipeline

    WanPipeline(**_wan_parts(16, 3.0, dict(z_dim=16))).save_pretrained(folder, safe_serialization=True)
    return folder


def build_wan_a14b(folder: Path) -> Path:
    """Like Wan-AI/Wan2.2-T2V-A14B-Diffusers: two experts of one shape, the first (transformer) for the high-noise
    steps, the second (transformer_2) once the timestep falls under boundary_ratio x 1000 (0.875, its value)."""
    import torch
    from diffusers import WanPipeline, WanTransformer3DModel

    parts = _wan_parts(16, 3.0, dict(z_dim=16))
    torch.manual_seed(1)  # the second expert's own random weights
    parts["transformer_2"] = WanTransformer3DModel(**parts["transformer"].config)
    WanPipeline(**parts, boundary_ratio=0.875).save_pretrained(folder, safe_serialization=True)
    return folder


def build_wan_ti2v(folder: Path) -> Path:
    """Like Wan-AI/Wan2.2-TI2V-5B-Diffusers: WanPipeline(expand_timesteps=True) with the 48-channel Wan 2.2 VAE
    (16x spatial, sizes in multiples of 32); the same folder loads as WanImageToVideoPipeline for a first frame."""
    from diffusers import WanPipeline

    vae = dict(
        z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2, latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48, scale_factor_spatial=16, scale_factor_temporal=4,
    )  # fmt: skip
    pipe = WanPipeline(**_wan_parts(48, 5.0, vae), expand_timesteps=True)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


# -- video: LTX-Video (text to video; the same folder loads as LTXImageToVideoPipeline for a first frame) -----------
def build_ltx(folder: Path) -> Path:
    """LTXPipeline laid out like Lightricks/LTX-Video-0.9.1 (diffusers format) at diffusers' test sizes
    (tests/pipelines/ltx): a T5 encoder, LTX's causal video VAE (4x here; 32x spatial, 8x in time for real)."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    tokenizer = _t5_tokenizer()
    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
        cross_attention_dim=32, num_layers=1, caption_channels=32,
    )  # fmt: skip
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=False,
    )  # fmt: skip
    torch.manual_seed(0)
    parts = dict(
        transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(), tokenizer=tokenizer,
        text_encoder=_t5_encoder(len(tokenizer)).eval(),
    )  # fmt: skip
    LTXPipeline(**parts).save_pretrained(folder, safe_serialization=True)
    return folder


def _wan_original_name(key: str) -> str:
    """A diffusers WanTransformer3DModel tensor name in the original Wan layout (city96's GGUF files, ComfyUI):
    the inverse of diffusers' convert_wan_transformer_to_diffusers."""
    if key == "scale_shift_table":
        return "head.modulation"
    if key.startswith("proj_out."):
        return key.replace("proj_out.", "head.head.")
    for a, b in (
        ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
        ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
        ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
        ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
        ("condition_embedder.time_proj", "time_projection.1"),
        ("attn1", "self_attn"),
        ("attn2", "cross_attn"),
        (".to_out.0.", ".o."),
        (".to_q.", ".q."),
        (".to_k.", ".k."),
        (".to_v.", ".v."),
        ("ffn.net.0.proj", "ffn.0"),
        ("ffn.net.2", "ffn.2"),
        ("norm2", "norm__x"),
        ("norm3", "norm2"),
        ("norm__x", "norm3"),
    ):
        key = key.replace(a, b)
    return key.replace("scale_shift_table", "modulation")


def build_wan_gguf(folder: Path) -> Path:
    """tiny-wan-Q8_0.gguf: the tiny Wan's transformer (the same weights as tiny:wan) as a city96-style GGUF file, in
    the original Wan layout, its matrices whose rows split into blocks of 32 quantised to Q8_0 (gguf-py writes no
    K-quants), the rest in float16 (float32 for vectors)."""
    import gguf
    import numpy as np

    transformer = _wan_parts(16, 3.0, dict(z_dim=16))["transformer"]
    folder.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(folder / "tiny-wan-Q8_0.gguf"), arch="wan")
    q8 = gguf.GGMLQuantizationType.Q8_0
    for key, tensor in transformer.state_dict().items():
        name, values = _wan_original_name(key), tensor.float().numpy()
        if values.ndim == 2 and values.shape[-1] % 32 == 0 and "embedding" not in name:
            packed = gguf.quants.quantize(values, q8)
            writer.add_tensor(name, packed, raw_shape=packed.shape, raw_dtype=q8)
        else:
            writer.add_tensor(name, values.astype(np.float16 if values.ndim > 1 else np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return folder
