"""Tiny random-weight models of the same classes as the studio's defaults, built locally in seconds.

`--tiny` uses them so that every flow can be tried with nothing downloaded (their outputs are noise), and the
tests build the very same models. Each builder writes a complete model folder (safetensors weights, configs,
tokenizer) that loads through the normal from_pretrained path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.device import import_lock

_build_lock = threading.RLock()  # re-entrant: a ControlNet's builder builds the tiny pipeline it copies


def default_dir() -> Path:
    from core.settings import _default_cache_dir

    return _default_cache_dir() / "tiny"


def _tokenizer_corpus() -> list[str]:
    """Local text to train a byte-level BPE on: the source of a few standard-library modules."""
    import argparse
    import inspect
    import json
    import textwrap

    return [inspect.getsource(m) for m in (argparse, json.decoder, textwrap, inspect)]


def build_text(folder: Path) -> Path:
    """A 2-layer Qwen2ForCausalLM with a byte-level BPE tokenizer and a ChatML chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_tokenizer_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def _clip_tokenizer_files(folder: Path) -> None:
    """vocab.json + merges.txt for CLIPTokenizer: the 256 byte-level symbols (also with </w>), a few merges."""
    import json

    from tokenizers.pre_tokenizers import ByteLevel

    symbols = sorted(ByteLevel.alphabet())
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>"), ("c", "a"), ("ca", "t</w>")]
    tokens = (
        symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    )
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")


def _unet_parts(folder: Path, unet_options: dict, text_options: dict) -> tuple[Any, Any, Any, Any]:
    """The parts the tiny UNet pipelines share, at diffusers' own test sizes, made in one order from seed 0: (the
    CLIP tokenizer, the UNet with `unet_options`, the VAE, a CLIPTextConfig with `text_options`)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTokenizer

    _clip_tokenizer_files(folder / "_tokenizer_src")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "_tokenizer_src", model_max_length=77)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=2, **unet_options,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=[4, 8], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=2,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
    )  # fmt: skip
    text = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tokenizer),
        max_position_embeddings=77, projection_dim=32, **text_options,
    )  # fmt: skip
    return tokenizer, unet, vae, text


def _save_unet_pipeline(pipe: Any, folder: Path) -> Path:
    pipe.save_pretrained(folder, safe_serialization=True)
    shutil.rmtree(folder / "_tokenizer_src")
    return folder


def build_image(folder: Path) -> Path:
    """A StableDiffusionPipeline like sd-turbo's (UNet2DConditionModel, AutoencoderKL, CLIPTextModel,
    CLIPTokenizer, EulerDiscreteScheduler with trailing timesteps), with diffusers' own tiny test sizes."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    folder = Path(folder)
    tokenizer, unet, vae, text = _unet_parts(folder, dict(cross_attention_dim=32), {})
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing", steps_offset=1
    )
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=CLIPTextModel(text), tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    return _save_unet_pipeline(pipe, folder)


def build_sdxl(folder: Path) -> Path:
    """A StableDiffusionXLPipeline (a UNet told the pooled text and the size through "text_time" embeddings, two
    CLIP text encoders whose hidden states are joined, the second with a projection), at diffusers' own test sizes."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    folder = Path(folder)
    tokenizer, unet, vae, text = _unet_parts(
        folder,
        dict(attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
             addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), cross_attention_dim=64,
             projection_class_embeddings_input_dim=80),  # 80 = the 6 size numbers x 8 + the pooled text's 32
        dict(hidden_act="gelu"),
    )  # fmt: skip
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=CLIPTextModel(text), text_encoder_2=CLIPTextModelWithProjection(text),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler,
    )  # fmt: skip
    return _save_unet_pipeline(pipe, folder)


MUSIC_WORDS = (
    "lo fi hip hop with warm piano drums bass guitar calm upbeat jazz rock electronic ambient music song beat slow "
    "fast happy sad a and the of in"
).split()


def _music_configs(vocab_size: int) -> tuple[Any, Any, dict]:
    """(T5 text encoder config, EnCodec config at 32 kHz and 50 frames/s, decoder settings) like musicgen-small's."""
    from transformers import EncodecConfig, T5Config

    text_encoder = T5Config(
        vocab_size=vocab_size,
        d_model=32,
        d_ff=37,
        d_kv=8,
        num_layers=2,
        num_heads=4,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    audio_encoder = EncodecConfig(
        sampling_rate=32000,
        upsampling_ratios=[8, 5, 4, 4],
        # 4 codebooks of 64 codes at 50 frames/s: as many as the decoder reads (as in MusicGen)
        target_bandwidths=[1.2],
        codebook_size=64,
        num_filters=4,
        hidden_size=16,
        codebook_dim=16,
        num_residual_layers=1,
        num_lstm_layers=1,
        audio_channels=1,
    )
    decoder = dict(
        vocab_size=64,
        num_codebooks=4,
        pad_token_id=64,
        bos_token_id=64,
        decoder_start_token_id=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        ffn_dim=64,
        max_position_embeddings=2048,
    )
    return text_encoder, audio_encoder, decoder


def build_music(folder: Path, melody: bool = False) -> Path:
    """A MusicgenForConditionalGeneration like musicgen-small's (T5 text encoder, EnCodec at 32 kHz with 50 frames
    per second, a 4-codebook decoder) with a tiny T5 tokenizer, saved with its processor. With `melody`, a
    MusicgenMelodyForConditionalGeneration like musicgen-melody's (12 chroma bins), saved with its tokenizer."""
    import torch
    from transformers import (
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenMelodyConfig,
        MusicgenMelodyDecoderConfig,
        MusicgenMelodyForConditionalGeneration,
        MusicgenProcessor,
        T5Tokenizer,
    )

    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    vocab += [("\u2581" + w, -2.0 - i) for i, w in enumerate(MUSIC_WORDS)]
    vocab += [(c, -100.0 - i) for i, c in enumerate(letters)]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    torch.manual_seed(0)
    text_encoder, audio_encoder, decoder = _music_configs(len(tokenizer))
    if melody:
        config = MusicgenMelodyConfig(
            text_encoder=text_encoder,
            audio_encoder=audio_encoder,
            decoder=MusicgenMelodyDecoderConfig(**decoder),
            num_chroma=12,
            chroma_length=235,
        )
        model = MusicgenMelodyForConditionalGeneration(config).eval()
    else:
        config = MusicgenConfig(
            text_encoder=text_encoder, audio_encoder=audio_encoder, decoder=MusicgenDecoderConfig(**decoder)
        )
        model = MusicgenForConditionalGeneration(config).eval()
    with torch.no_grad():  # EnCodec's codebooks start as zeros: give them values, or every code sounds the same
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
    for name in ("decoder_start_token_id", "pad_token_id", "bos_token_id"):
        setattr(model.generation_config, name, 64)
    model.save_pretrained(folder, safe_serialization=True)
    if melody:  # the melody processor needs torchaudio; the studio computes chroma itself (tabs/music/clips.py)
        tokenizer.save_pretrained(folder)
    else:
        MusicgenProcessor(
            feature_extractor=EncodecFeatureExtractor(feature_size=1, sampling_rate=32000), tokenizer=tokenizer
        ).save_pretrained(folder)
    return folder


def build_vits(folder: Path) -> Path:
    """A tiny VITS text-to-speech model (transformers' VitsModel, MMS-TTS's class) reading letters as MMS-TTS's
    English voice does (no phonemizer): 16 kHz, ~160k random weights, so it speaks noise of a plausible length."""
    import json

    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    letters = ["<pad>", "<unk>", " "] + list("abcdefghijklmnopqrstuvwxyz'.,?!-")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(letters)}))
    tokenizer = VitsTokenizer(str(folder / "vocab.json"), phonemize=False, add_blank=True, normalize=True)
    torch.manual_seed(0)
    config = VitsConfig(
        vocab_size=len(letters), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64,
        flow_size=32, spectrogram_bins=65, upsample_initial_channel=32, upsample_rates=[8, 8, 4],
        upsample_kernel_sizes=[16, 16, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        duration_predictor_filter_channels=32, prior_encoder_num_flows=2, prior_encoder_num_wavenet_layers=2,
        posterior_encoder_num_wavenet_layers=2, depth_separable_num_layers=2, duration_predictor_num_flows=2,
        sampling_rate=16000, pad_token_id=0,
    )  # fmt: skip
    VitsModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_dia(folder: Path) -> Path:
    """A tiny Dia voice-cloning model (transformers' DiaForConditionalGeneration, nari-labs/Dia-1.6B's classes) with
    its processor, and its DAC codec in codec/ (the real one is descript/dac_44khz). Dia's processor fixes the token
    layout (9 codebooks of 1024, their delays, 44.1 kHz, hop 512), so only the widths shrink: ~0.8M weights."""
    import torch
    from transformers import (
        DacConfig,
        DacModel,
        DiaConfig,
        DiaFeatureExtractor,
        DiaForConditionalGeneration,
        DiaTokenizer,
        GenerationConfig,
    )  # fmt: skip

    torch.manual_seed(0)
    codec = DacConfig(
        encoder_hidden_size=4, decoder_hidden_size=32, downsampling_ratios=[2, 4, 8, 8], n_codebooks=9,
        codebook_size=1024, codebook_dim=8, sampling_rate=44100,
    )  # fmt: skip
    DacModel(codec).eval().save_pretrained(folder / "codec")
    layers = dict(intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, head_dim=16)
    config = DiaConfig(
        encoder_config=dict(
            hidden_size=32, num_key_value_heads=2, vocab_size=256, max_position_embeddings=256, **layers
        ),
        decoder_config=dict(
            hidden_size=32, num_key_value_heads=1, cross_num_attention_heads=2, cross_head_dim=16,
            cross_num_key_value_heads=2, cross_hidden_size=32, vocab_size=1028, num_channels=9,
            max_position_embeddings=1024, **layers,
        ),
        delay_pattern=[0, 8, 9, 10, 11, 12, 13, 14, 15],
    )  # fmt: skip
    model = DiaForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        do_sample=True, temperature=1.8, top_p=0.95, top_k=45, guidance_scale=3.0, max_new_tokens=64,
        bos_token_id=1026, eos_token_id=1024, pad_token_id=1025, decoder_start_token_id=1026,
    )  # fmt: skip
    model.save_pretrained(folder)
    DiaFeatureExtractor(sampling_rate=44100, hop_length=512).save_pretrained(folder)
    DiaTokenizer().save_pretrained(folder)
    return folder


def build_controlnet(folder: Path) -> Path:
    """A ControlNetModel made from the tiny pipeline's UNet (ControlNetModel.from_unet, as ControlNets are trained),
    its zero convolutions given random weights as training would: a fresh copy's zeros would change nothing."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(ensure("tiny:stable-diffusion", Path(folder).parent) / "unet")
    torch.manual_seed(1)  # the same weights whatever ran before (from_unet initialises its new layers at random)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8))
    for weight in controlnet.controlnet_cond_embedding.conv_out.parameters():  # strong enough that the map matters
        torch.nn.init.normal_(weight, std=3.0)
    for module in [controlnet.controlnet_mid_block, *controlnet.controlnet_down_blocks]:
        for weight in module.parameters():
            torch.nn.init.normal_(weight, std=0.5)
    controlnet.save_pretrained(folder, safe_serialization=True)
    return Path(folder)


def build_ip_adapter(folder: Path) -> Path:
    """An IP-Adapter for the tiny pipeline in h94/IP-Adapter's layout: ip-adapter.safetensors (the image projection
    and each cross-attention's to_k_ip/to_v_ip, numbered as the original checkpoints are) and image_encoder/ (a
    CLIPVisionModelWithProjection)."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    unet = UNet2DConditionModel.from_pretrained(ensure("tiny:stable-diffusion", Path(folder).parent) / "unet")
    torch.manual_seed(2)
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, image_size=32,
            patch_size=8, projection_dim=32,
        )
    )  # fmt: skip
    encoder.save_pretrained(Path(folder) / "image_encoder", safe_serialization=True)
    cross, channels = unet.config.cross_attention_dim, unet.config.block_out_channels
    tensors = {
        "image_proj.proj.weight": torch.randn(4 * cross, encoder.config.projection_dim),
        "image_proj.proj.bias": torch.randn(4 * cross),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    key = 1  # IP-Adapter numbers every attention processor, self-attention included: cross-attentions are odd
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        block, index = name.split(".")[:2]
        if block == "mid_block":
            hidden = channels[-1]
        else:
            hidden = (list(reversed(channels)) if block == "up_blocks" else channels)[int(index)]
        for part in ("to_k_ip", "to_v_ip"):
            tensors[f"ip_adapter.{key}.{part}.weight"] = torch.randn(hidden, cross)
        key += 2
    save_file({k: v.contiguous() for k, v in tensors.items()}, Path(folder) / "ip-adapter.safetensors")
    return Path(folder)


def build_depth(folder: Path) -> Path:
    """A DepthAnythingForDepthEstimation like Depth Anything V2 Small's (a DINOv2 backbone, DPT neck and head) at a
    tiny width, with its DPT image processor (70 px inputs)."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    backbone = Dinov2Config(
        hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32, image_size=518,
        patch_size=14, out_indices=[1, 2, 3, 4], reshape_hidden_states=False,
    )  # fmt: skip
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=16, patch_size=14, neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16, head_hidden_size=8, depth_estimation_type="relative",
    )  # fmt: skip
    torch.manual_seed(3)
    DepthAnythingForDepthEstimation(config).save_pretrained(folder, safe_serialization=True)
    DPTImageProcessor(
        size={"height": 70, "width": 70}, keep_aspect_ratio=True, ensure_multiple_of=14,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)  # fmt: skip
    return Path(folder)


def build_upscalers(folder: Path) -> Path:
    """Two upscalers in an operator's folder layout, with spandrel's own architecture classes at tiny sizes: the
    compact SRVGG net of realesr-general-x4v3 (x4, safetensors; its output is the input enlarged plus a learned
    change, so it looks like the picture) and an ESRGAN RRDB net (x2, a .pth of tensors as Real-ESRGAN ships)."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    compact = Compact(num_in_ch=3, num_out_ch=3, num_feat=4, num_conv=1, upscale=4, act_type="prelu")
    save_file({k: v.contiguous() for k, v in compact.state_dict().items()}, folder / "tiny-compact-x4.safetensors")
    esrgan = ESRGAN(in_nc=3, out_nc=3, num_filters=4, num_blocks=1, scale=2)
    torch.save({"params_ema": esrgan.state_dict()}, folder / "tiny-esrgan-x2.pth")
    return folder


def build_face_restorers(folder: Path) -> Path:
    """A face restorer in an operator's folder layout: spandrel's RestoreFormer at a tiny size (512 px faces)."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.RestoreFormer import RestoreFormer

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = RestoreFormer(
        n_embed=16, embed_dim=8, ch=32, ch_mult=(1, 1), num_res_blocks=1, z_channels=32, enable_mid=False
    )
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, folder / "tiny-restoreformer.safetensors")
    return folder


def build_blip(folder: Path) -> Path:
    """A BLIP captioner of the real classes (BlipForConditionalGeneration + BlipProcessor, as
    Salesforce/blip-image-captioning-base) at toy size: BERT WordPiece vocabulary made here, "[DEC]" as its start."""
    import torch
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    words = "a an the of in on with and photo picture red blue green yellow circle square white background".split()
    letters = list("abcdefghijklmnopqrstuvwxyz")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *letters, *("##" + c for c in letters)]
    vocab = list(dict.fromkeys([*vocab, ".", ",", "[DEC]"]))  # no duplicates: every id below the vocabulary size
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast.from_pretrained(folder, bos_token="[DEC]", model_max_length=64)
    (folder / "vocab.txt").unlink()
    text = dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        encoder_hidden_size=32, max_position_embeddings=64, bos_token_id=tokenizer.bos_token_id,
        sep_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id,
    )  # fmt: skip
    vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                  patch_size=8)  # fmt: skip
    torch.manual_seed(0)
    config = BlipConfig(text_config=text, vision_config=vision, projection_dim=32, image_text_hidden_size=32)
    BlipForConditionalGeneration(config).eval().save_pretrained(folder)
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    processor.save_pretrained(folder)
    return folder


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "tiny:blip": build_blip,
    "tiny:depth-anything": build_depth,
    "tiny:controlnet": build_controlnet,
    "tiny:ip-adapter": build_ip_adapter,
    "tiny:musicgen": build_music,
    "tiny:musicgen-melody": lambda folder: build_music(folder, melody=True),
    "tiny:qwen2": build_text,
    "tiny:stable-diffusion": build_image,
    "tiny:sdxl": build_sdxl,
    "tiny:upscalers": build_upscalers,
    "tiny:vits": build_vits,
    "tiny:dia": build_dia,
    "tiny:face-restorers": build_face_restorers,
    # the transformer (DiT) image families (core/tiny_dit.py)
    "tiny:flux": lambda folder: _dit("build_flux", folder),
    "tiny:flux-kontext": lambda folder: _dit("build_flux_kontext", folder),
    "tiny:sd3": lambda folder: _dit("build_sd3", folder),
    "tiny:z-image": lambda folder: _dit("build_z_image", folder),
    "tiny:qwen-image": lambda folder: _dit("build_qwen_image", folder),
    "tiny:qwen-image-edit": lambda folder: _dit("build_qwen_image_edit", folder),
    # video (core/tiny_dit.py too)
    "tiny:wan": lambda folder: _dit("build_wan", folder),
    "tiny:wan-ti2v": lambda folder: _dit("build_wan_ti2v", folder),
    "tiny:wan-a14b": lambda folder: _dit("build_wan_a14b", folder),
    "tiny:ltx": lambda folder: _dit("build_ltx", folder),
    "tiny:wan-gguf": lambda folder: _dit("build_wan_gguf", folder),
}


def _dit(builder: str, folder: Path) -> Path:
    from core import tiny_dit

    return getattr(tiny_dit, builder)(folder)


def ensure(name: str, root: Path) -> Path:
    """The folder of tiny model `name` under `root`, built on first use (atomically: build, then rename)."""
    if name not in BUILDERS:
        raise ValueError(f"Unknown tiny model {name!r}; known: {', '.join(BUILDERS)}.")
    folder = Path(root) / name.split(":", 1)[1]
    if (folder / ".complete").exists():
        return folder
    with _build_lock:
        if (folder / ".complete").exists():
            return folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
        try:
            with import_lock:  # builds import transformers and diffusers (see core.device)
                BUILDERS[name](tmp)
            (tmp / ".complete").write_text("built by core/tiny.py\n")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
