"""One LoRA training on one pipeline, as diffusers' own examples do it (examples/dreambooth/train_dreambooth_lora.py,
_sdxl.py, _sd3.py and _flux.py), on peft: a UNet family (SD 1.x/2.x: noise or velocity prediction, optionally a LoRA on
the CLIP text encoder too; SDXL, told its pooled text and sizes), SD 3.5 or FLUX.1 (flow matching: the velocity
noise - latents, logit-normal timesteps; FLUX packs its latents in 2x2 patches and is told its guidance).
The pictures are encoded once (the VAE is frozen); every draw (batch, noise, timesteps) comes from one seeded
generator, whose state a checkpoint keeps, so a resumed training goes on exactly where it stopped.
"""

from __future__ import annotations

from typing import Any

from core.device import imported

UNET_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
SD3_TARGETS = [
    "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj",
    "attn.to_add_out",
]  # fmt: skip
FLUX_TARGETS = [  # train_dreambooth_lora_flux.py's default: the double blocks' attention and feed-forwards
    "attn.to_k", "attn.to_q", "attn.to_v", "attn.to_out.0", "attn.add_k_proj", "attn.add_q_proj", "attn.add_v_proj",
    "attn.to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2",
]  # fmt: skip
KINDS = {"StableDiffusionPipeline": "unet", "StableDiffusionXLPipeline": "sdxl", "StableDiffusion3Pipeline": "sd3",
         "FluxPipeline": "flux"}  # fmt: skip
UNETS = ("unet", "sdxl")
FLUX_GUIDANCE = 1.0  # the guidance FLUX.1 [dev] is told in training (as diffusers' example: its distilled guidance)


class Trainer:
    """A LoRA (rank r, alpha r) on `pipe`'s denoiser, trained in float32 whatever the pipeline's dtype."""

    def __init__(self, pipe: Any, rank: int, text_encoder: bool, device: str, seed: int = 0) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        torch = imported("torch")
        self.pipe, self.device, self.kind = pipe, device, KINDS[type(pipe).__name__]
        self.text_encoder = text_encoder and self.kind == "unet"
        self.denoiser = pipe.unet if self.kind in UNETS else pipe.transformer
        for part in (self.denoiser, pipe.vae, *self._encoders()):
            part.requires_grad_(False)
        config = dict(r=rank, lora_alpha=rank, init_lora_weights="gaussian")
        targets = {"unet": UNET_TARGETS, "sdxl": UNET_TARGETS, "sd3": SD3_TARGETS, "flux": FLUX_TARGETS}[self.kind]
        with torch.random.fork_rng(devices=[]):  # the LoRA's first weights follow the seed, and only this one
            torch.manual_seed(seed)
            self.denoiser.add_adapter(LoraConfig(**config, target_modules=targets))
            if self.text_encoder:  # transformers' add_adapter wants a newer peft than PyPI has: peft's own injection
                inject_adapter_in_model(LoraConfig(**config, target_modules=TEXT_TARGETS), pipe.text_encoder)
        self.parts = [self.denoiser] + ([pipe.text_encoder] if self.text_encoder else [])
        self.trainable = [p for part in self.parts for p in part.parameters() if p.requires_grad]
        for p in self.trainable:  # half-precision weights, float32 LoRA (diffusers' cast_training_params)
            p.data = p.data.to(torch.float32)
        if device.startswith("cuda"):
            self.denoiser.enable_gradient_checkpointing()
        self.latents: list = []  # one latent per picture
        self.sizes: list[tuple[int, int]] = []  # each picture's (width, height) in training
        self.embeddings = self.pooled = None
        self.prompts: list[str] = []
        if self.kind in UNETS:  # the noise schedule the model was trained with (DDPM's, from its scheduler's config)
            from diffusers import DDPMScheduler

            self.schedule = DDPMScheduler.from_config(pipe.scheduler.config)
        else:  # flow matching: the shifted sigmas of its own scheduler, at every training timestep
            from diffusers import FlowMatchEulerDiscreteScheduler

            self.schedule = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)

    def _encoders(self) -> list:
        names = ("text_encoder", "text_encoder_2", "text_encoder_3")
        return [getattr(self.pipe, n) for n in names if getattr(self.pipe, n, None) is not None]

    # -- the pictures, once ------------------------------------------------------------------------------------
    def encode(self, pictures: list, prompts: list[str]) -> None:
        """The pictures (PIL, each at its bucket's size: see dataset.buckets) as latents, and the prompts'
        embeddings where the text encoder stays frozen."""
        import numpy as np

        torch = imported("torch")
        vae = self.pipe.vae
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        self.sizes = [p.size for p in pictures]
        self.latents = [None] * len(pictures)
        for size in dict.fromkeys(self.sizes):  # the pictures of one size together, four at a time
            chosen = [i for i, s in enumerate(self.sizes) if s == size]
            for start in range(0, len(chosen), 4):
                part = chosen[start : start + 4]
                pixels = np.stack([np.asarray(pictures[i], dtype=np.float32) / 127.5 - 1 for i in part])
                with torch.no_grad(), self._vae_in_float32() as vae:
                    x = torch.from_numpy(pixels.transpose(0, 3, 1, 2)).to(self.device, vae.dtype)
                    latents = ((vae.encode(x).latent_dist.mode() - shift) * vae.config.scaling_factor).float()
                for i, latent in zip(part, latents, strict=True):
                    self.latents[i] = latent
        self.prompts = prompts
        if not self.text_encoder:
            self.embeddings, self.pooled = self._embed(prompts, grad=False)

    def _vae_in_float32(self) -> Any:
        """The VAE, in float32 for the block where its config asks (SDXL's overflows in float16: force_upcast)."""
        import contextlib

        torch = imported("torch")
        vae = self.pipe.vae

        @contextlib.contextmanager
        def upcast():
            dtype = vae.dtype
            if getattr(vae.config, "force_upcast", False) and dtype == torch.float16:
                vae.to(torch.float32)
            try:
                yield vae
            finally:
                vae.to(dtype)

        return upcast()

    def _embed(self, prompts: list[str], grad: bool) -> tuple[Any, Any]:
        torch = imported("torch")
        with torch.set_grad_enabled(grad):
            if self.kind == "unet":
                tok = self.pipe.tokenizer
                ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
                          return_tensors="pt").input_ids.to(self.device)  # fmt: skip
                return self.pipe.text_encoder(ids)[0].float(), None
            if self.kind == "sdxl":  # both CLIPs' penultimate states joined; the second one's pooled projection
                embeds, _, pooled, _ = self.pipe.encode_prompt(
                    prompts, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False
                )
                return embeds.float(), pooled.float()
            if self.kind == "flux":  # (its text positions are all zeros: made again in each step)
                embeds, pooled, _ = self.pipe.encode_prompt(
                    prompts, prompts, device=self.device, max_sequence_length=128
                )
                return embeds.float(), pooled.float()
            embeds, _, pooled, _ = self.pipe.encode_prompt(
                prompts, prompts, prompts, device=self.device, do_classifier_free_guidance=False,
                max_sequence_length=77,
            )  # fmt: skip
            return embeds.float(), pooled.float()

    # -- one step -------------------------------------------------------------------------------------------
    def loss(self, batch: int, generator: Any) -> Any:
        """The loss of one batch drawn with `generator` (on the CPU: the same draws on every device)."""
        torch = imported("torch")
        order = torch.randperm(len(self.latents), generator=generator).tolist()
        size = self.sizes[order[0]]  # one batch, one bucket: the first drawn picture's, filled from the draw's order
        index = torch.tensor([i for i in order if self.sizes[i] == size][:batch])
        x0 = torch.stack([self.latents[i] for i in index.tolist()])
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        if self.text_encoder:
            embeddings, pooled = self._embed([self.prompts[i] for i in index.tolist()], grad=True)
        else:
            embeddings = self.embeddings[index.to(self.embeddings.device)]
            pooled = None if self.pooled is None else self.pooled[index.to(self.pooled.device)]
        dtype = self.denoiser.dtype
        schedule = self.schedule
        if self.kind in UNETS:
            t = torch.randint(0, schedule.config.num_train_timesteps, (len(x0),), generator=generator).to(x0.device)
            noisy = schedule.add_noise(x0, noise, t)
            velocity = schedule.config.prediction_type == "v_prediction"
            target = schedule.get_velocity(x0, noise, t) if velocity else noise
            extra = {}
            if self.kind == "sdxl":  # SDXL is told the pooled text and the sizes: (original, crop corner, target)
                height, width = (n * self.pipe.vae_scale_factor for n in x0.shape[-2:])
                sizes = torch.tensor([[height, width, 0, 0, height, width]] * len(x0), device=x0.device)
                extra["added_cond_kwargs"] = {"text_embeds": pooled.to(dtype), "time_ids": sizes.to(dtype)}
            with self._autocast():
                pred = self.denoiser(noisy.to(dtype), t, embeddings.to(dtype), **extra).sample
        else:
            u = torch.sigmoid(torch.randn(len(x0), generator=generator))  # logit-normal timesteps (SD3's paper)
            at = (u * schedule.config.num_train_timesteps).long().clamp(max=schedule.config.num_train_timesteps - 1)
            sigma = schedule.sigmas[at].to(x0).view(-1, 1, 1, 1)
            noisy = (1 - sigma) * x0 + sigma * noise
            target = noise - x0
            if self.kind == "flux":
                return self._flux_loss(noisy, target, sigma, embeddings, pooled)
            with self._autocast():
                pred = self.denoiser(
                    hidden_states=noisy.to(dtype), timestep=schedule.timesteps[at].to(x0.device),
                    encoder_hidden_states=embeddings.to(dtype), pooled_projections=pooled.to(dtype),
                    return_dict=False,
                )[0]  # fmt: skip
        return torch.nn.functional.mse_loss(pred.float(), target.float())

    def _flux_loss(self, noisy: Any, target: Any, sigma: Any, embeddings: Any, pooled: Any) -> Any:
        """FLUX.1's step: the latents packed in 2x2 patches with their positions, the timestep as a fraction, the
        guidance where the model takes one; its prediction unpacked to the latents' shape."""
        from diffusers import FluxPipeline

        torch = imported("torch")
        dtype = self.denoiser.dtype
        batch, channels, rows, columns = noisy.shape
        packed = FluxPipeline._pack_latents(noisy, batch, channels, rows, columns).to(dtype)
        positions = FluxPipeline._prepare_latent_image_ids(batch, rows // 2, columns // 2, noisy.device, dtype)
        text_positions = torch.zeros(embeddings.shape[1], 3, device=noisy.device, dtype=dtype)
        guidance = None
        if getattr(self.denoiser.config, "guidance_embeds", False):
            guidance = torch.full((batch,), FLUX_GUIDANCE, device=noisy.device, dtype=torch.float32)
        with self._autocast():
            pred = self.denoiser(
                hidden_states=packed, timestep=sigma.view(-1).to(dtype), guidance=guidance,
                pooled_projections=pooled.to(dtype), encoder_hidden_states=embeddings.to(dtype),
                txt_ids=text_positions, img_ids=positions, return_dict=False,
            )[0]  # fmt: skip
        scale = self.pipe.vae_scale_factor
        pred = FluxPipeline._unpack_latents(pred, rows * scale, columns * scale, scale)
        return torch.nn.functional.mse_loss(pred.float(), target.float())

    def _autocast(self) -> Any:
        import contextlib

        torch = imported("torch")
        if self.device.startswith("cuda") and self.denoiser.dtype != torch.float32:
            return torch.autocast("cuda", dtype=self.denoiser.dtype)
        return contextlib.nullcontext()

    # -- the LoRA's weights ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The LoRA's tensors in peft's names, prefixed by the part they belong to (unet., text_encoder.,
        transformer.)."""
        from peft.utils import get_peft_model_state_dict

        prefix = "unet" if self.kind in UNETS else "transformer"
        state = {f"{prefix}.{k}": v for k, v in get_peft_model_state_dict(self.denoiser).items()}
        if self.text_encoder:
            state.update(
                {f"text_encoder.{k}": v for k, v in get_peft_model_state_dict(self.pipe.text_encoder).items()}
            )
        return {k: v.detach().float().cpu().contiguous() for k, v in state.items()}

    def load_state(self, state: dict[str, Any]) -> None:
        from peft.utils import set_peft_model_state_dict

        prefix = "unet." if self.kind in UNETS else "transformer."
        set_peft_model_state_dict(
            self.denoiser, {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        )
        if self.text_encoder:
            cut = len("text_encoder.")
            te = {k[cut:]: v for k, v in state.items() if k.startswith("text_encoder.")}
            set_peft_model_state_dict(self.pipe.text_encoder, te)

    def lora_file_tensors(self) -> dict[str, Any]:
        """The tensors of the finished LoRA file: Kohya's names for the UNet families (what AUTOMATIC1111, ComfyUI
        and civitai read; diffusers reads them too), diffusers' own for SD 3.5 (what ComfyUI and diffusers read)."""
        state = self.state()
        if self.kind in UNETS:
            from diffusers.utils import convert_state_dict_to_kohya

            kohya = convert_state_dict_to_kohya(state)
            # transformers 5's CLIP has no `text_model` level; SD 1.x tools expect it in the names
            return {
                k.replace("lora_te1_encoder_", "lora_te_text_model_encoder_"): v.contiguous() for k, v in kohya.items()
            }
        return state

    # -- a sample picture --------------------------------------------------------------------------------------
    def sample(self, prompt: str, seed: int, side: int, steps: int, guidance: float) -> Any:
        """A picture from the model as it is now; None where the base model's safety checker withheld it."""
        torch = imported("torch")
        for part in self.parts:
            part.eval()
        try:
            with torch.no_grad():
                generator = torch.Generator("cpu").manual_seed(seed)
                made = self.pipe(
                    prompt, num_inference_steps=steps, guidance_scale=guidance, height=side, width=side,
                    generator=generator,
                )  # fmt: skip
                flagged = getattr(made, "nsfw_content_detected", None)  # SD 1.5's safety checker blacks these out
                return None if flagged and flagged[0] else made.images[0]
        finally:
            for part in self.parts:
                part.train()
