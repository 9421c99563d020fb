"""Batching for the Image tab's engine on Ray Serve (app.engines): which requests can share one pipeline call, and
that call. Each picture still starts from its own request's seed, so a request gets the same pictures batched or
alone."""

import time
from typing import Any

from core import loras
from core.device import in_passing_thread
from core.models import ModelCache
from tabs.image import checkpoints, families
from tabs.image.pipelines import Rendered, base_pipeline, flagged_by_checker, pipeline_for, run_recipe, with_request


def batch_key(model_id: str, request: Any) -> tuple | None:
    """Requests with the same key can share one pipeline call (Ray Serve's batching): plain text to image with the
    same model, size, steps, guidance and sampler. None: this one runs alone (a picture, a guide, a LoRA or an
    embedding in it)."""
    if request.init is not None or request.control or request.reference or request.loras or request.embeddings:
        return None
    if model_id.endswith(checkpoints.SUFFIXES):  # a single-file checkpoint: the replica's own folder, run alone
        return None
    p = request.params
    return (model_id, p.width, p.height, p.steps, p.guidance_scale, p.sampler)


def render_batch(cache: ModelCache, model_id: str, requests: list) -> list:
    """Several plain text-to-image requests with one batch_key in one pipeline call: every image still draws its
    starting noise from its own generator (its request's seed + i), so each request gets its own seed's pictures."""
    import torch

    first = requests[0]
    with base_pipeline(cache, model_id) as base:
        pipe = pipeline_for(base, first)
        prompts, negatives, generators = [], [], []
        for r in requests:
            for i in range(r.params.num_images):
                prompts.append(r.model_prompt)
                negatives.append(r.model_negative)
                generators.append(torch.Generator("cpu").manual_seed(r.params.seed + i))
        p, start = first.params, time.perf_counter()
        family = families.family_of(base)
        guided = families.call_arguments(family, p.guidance_scale, negatives if any(negatives) else None)
        call = dict(prompt=prompts, generator=generators, **guided)
        call.update(num_inference_steps=p.steps, width=p.width, height=p.height)

        def run() -> Any:
            with torch.inference_mode():
                return pipe(**call)

        with loras.turn(base, False), loras.applied(base, pipe, []):
            output = in_passing_thread(run)  # see core.device: no OpenMP team kept on a long-lived thread
        seconds, flagged = time.perf_counter() - start, flagged_by_checker(output)
        made, at = [], 0
        for r in requests:
            recipe = with_request(run_recipe(model_id, base, pipe, r.params, r.mode, cache), r, {})
            n = r.params.num_images
            withheld = [i - at for i in flagged if at <= i < at + n]
            made.append(
                Rendered(output.images[at : at + n], [], recipe, seconds, batch_size=len(requests), withheld=withheld)
            )
            at += n
    return made
