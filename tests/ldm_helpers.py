"""A diffusers Stable Diffusion folder written as one checkpoint in the original (LDM) layout, as civitai's and
A1111's checkpoints are: the UNet under model.diffusion_model., the VAE under first_stage_model. (its attention as
1x1 convolutions), the CLIP text encoder under cond_stage_model.transformer.text_model. Any block counts (the tiny
pipeline's 2 levels of 1 layer as well as SD's 4 of 2), so that the tests' tiny pipeline makes one."""

import json
from pathlib import Path

RESNET = {"norm1.": "in_layers.0.", "conv1.": "in_layers.2.", "norm2.": "out_layers.0.", "conv2.": "out_layers.3.",
          "time_emb_proj.": "emb_layers.1.", "conv_shortcut.": "skip_connection."}  # fmt: skip
VAE_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def _renamed(key: str, prefixes: dict[str, str]) -> tuple[str, str] | None:
    """(the LDM prefix, the rest of the key) for the longest diffusers prefix of `key`, or None."""
    for hf in sorted(prefixes, key=len, reverse=True):
        if key.startswith(hf):
            return prefixes[hf], key[len(hf) :]
    return None


def unet_keys(state: dict, config: dict) -> dict:
    layers, levels = config["layers_per_block"], len(config["block_out_channels"])
    prefixes = {
        "time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
        "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2.",
        "mid_block.resnets.0.": "middle_block.0.", "mid_block.attentions.0.": "middle_block.1.",
        "mid_block.resnets.1.": "middle_block.2.",
    }  # fmt: skip
    for i in range(levels):
        for j in range(layers):
            prefixes[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{1 + i * (layers + 1) + j}.0."
            prefixes[f"down_blocks.{i}.attentions.{j}."] = f"input_blocks.{1 + i * (layers + 1) + j}.1."
        prefixes[f"down_blocks.{i}.downsamplers.0.conv."] = f"input_blocks.{(i + 1) * (layers + 1)}.0.op."
        upsampler = 2 if any(k.startswith(f"up_blocks.{i}.attentions.") for k in state) else 1
        prefixes[f"up_blocks.{i}.upsamplers.0."] = f"output_blocks.{i * (layers + 1) + layers}.{upsampler}."
        for j in range(layers + 1):
            prefixes[f"up_blocks.{i}.resnets.{j}."] = f"output_blocks.{i * (layers + 1) + j}.0."
            prefixes[f"up_blocks.{i}.attentions.{j}."] = f"output_blocks.{i * (layers + 1) + j}.1."
    out = {}
    for key, value in state.items():
        ldm, rest = _renamed(key, prefixes)
        if ".resnets." in key:
            rest = next((b + rest[len(a) :] for a, b in RESNET.items() if rest.startswith(a)), rest)
        out["model.diffusion_model." + ldm + rest] = value
    return out


def vae_keys(state: dict, config: dict) -> dict:
    layers, levels = config["layers_per_block"], len(config["block_out_channels"])
    prefixes = {}
    for part in ("encoder", "decoder"):
        prefixes.update({
            f"{part}.conv_in.": f"{part}.conv_in.", f"{part}.conv_out.": f"{part}.conv_out.",
            f"{part}.conv_norm_out.": f"{part}.norm_out.", f"{part}.mid_block.attentions.0.": f"{part}.mid.attn_1.",
            f"{part}.mid_block.resnets.0.": f"{part}.mid.block_1.",
            f"{part}.mid_block.resnets.1.": f"{part}.mid.block_2.",
        })  # fmt: skip
    for i in range(levels):
        for j in range(layers):
            prefixes[f"encoder.down_blocks.{i}.resnets.{j}."] = f"encoder.down.{i}.block.{j}."
        prefixes[f"encoder.down_blocks.{i}.downsamplers.0."] = f"encoder.down.{i}.downsample."
        for j in range(layers + 1):
            prefixes[f"decoder.up_blocks.{i}.resnets.{j}."] = f"decoder.up.{levels - 1 - i}.block.{j}."
        prefixes[f"decoder.up_blocks.{i}.upsamplers.0."] = f"decoder.up.{levels - 1 - i}.upsample."
    out = {}
    for key, value in state.items():
        renamed = _renamed(key, prefixes)
        ldm, rest = renamed if renamed else ("", key)  # quant_conv, post_quant_conv: the same names
        if ".attentions." in key:
            for a, b in VAE_ATTENTION.items():
                if rest.startswith(a):
                    rest = b + rest[len(a) :]
                    value = value[:, :, None, None] if value.ndim == 2 else value  # linear -> 1x1 convolution
        rest = rest.replace("conv_shortcut.", "nin_shortcut.")
        out["first_stage_model." + ldm + rest] = value
    return out


def text_keys(state: dict) -> dict:
    """transformers' CLIPTextModel (5.x has no text_model. level any more) in A1111's names."""
    prefix = "cond_stage_model.transformer."
    return {prefix + ("" if k.startswith("text_model.") else "text_model.") + k: v for k, v in state.items()}


def write_ldm_checkpoint(folder: Path, target: Path) -> Path:
    from safetensors.torch import load_file, save_file

    def config(part: str) -> dict:
        return json.loads((folder / part / "config.json").read_text())

    state = {
        **unet_keys(load_file(folder / "unet" / "diffusion_pytorch_model.safetensors"), config("unet")),
        **vae_keys(load_file(folder / "vae" / "diffusion_pytorch_model.safetensors"), config("vae")),
        **text_keys(load_file(folder / "text_encoder" / "model.safetensors")),
    }
    save_file({k: v.contiguous() for k, v in state.items()}, target)
    return target
