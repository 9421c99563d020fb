"""Previews of a video as it forms: the middle frame, decoded alone (one latent frame decodes to one picture: a
fraction of a whole decode). Wan's UniPC sampler keeps its estimate of the finished video; LTX-Video's Euler sampler
does not, so its estimate comes from two steps' latents, which LTX also packs as tokens."""

from __future__ import annotations

from typing import Any

from core.device import imported


def flow_estimate(pipe: Any, i: int, latents: Any, before: Any) -> Any:
    """The finished video as a flow-matching (Euler) sampler sees it after step i: from this step's latents and the
    last step's, the velocity, then x0 = x - sigma * v. Without the last step's latents, the latents themselves."""
    if before is None:
        return latents
    sigmas = pipe.scheduler.sigmas
    now, then = float(sigmas[i + 1]), float(sigmas[i])
    velocity = (latents - before) / (now - then)
    return latents - now * velocity


def ltx_middle_frame(pipe: Any, packed: Any, params: Any) -> Any:
    """LTX-Video's middle frame as it stands: its latents are packed as tokens (batch, frames*rows*columns, channels),
    so they are unpacked and denormalised first; one latent frame decodes alone."""
    from PIL import Image

    torch = imported("torch")
    frames = (params.num_frames - 1) // pipe.vae_temporal_compression_ratio + 1
    rows, columns = (side // pipe.vae_spatial_compression_ratio for side in (params.height, params.width))
    latents = pipe._unpack_latents(
        packed, frames, rows, columns, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
    )
    vae = pipe.vae
    latents = pipe._denormalize_latents(latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
    middle = latents[:, :, frames // 2 : frames // 2 + 1].to(vae.dtype)
    when = torch.tensor([0.05], device=middle.device, dtype=middle.dtype) if vae.config.timestep_conditioning else None
    with torch.inference_mode():
        picture = vae.decode(middle, when, return_dict=False)[0][0, :, 0]
    rgb = ((picture.float().clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).byte().cpu().numpy()
    return Image.fromarray(rgb)


def wan_middle_frame(pipe: Any, latents: Any) -> Any:
    """The middle frame of the video as it stands, decoded alone (the causal VAE decodes one latent frame as one
    picture: a fraction of a full decode)."""
    from PIL import Image

    torch = imported("torch")
    vae = pipe.vae
    middle = latents[:, :, latents.shape[2] // 2 : latents.shape[2] // 2 + 1].to(vae.dtype)
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1).to(middle)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1).to(middle)
    with torch.inference_mode():
        picture = vae.decode(middle * std + mean, return_dict=False)[0][0, :, 0]
    rgb = ((picture.float().clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).byte().cpu().numpy()
    return Image.fromarray(rgb)
