"""The GAN lab's page: components and wiring. Training runs engine.train through core.jobs.run. Each browser
session has its own lab, kept in the model cache (core.models) like every model: leased while it trains or walks,
listed in the Models panel, unloaded when idle and memory is short (training then starts over)."""

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import gradio as gr

from core import checks, jobs, ui
from core.history import prepend, record
from core.models import ModelKey
from tabs.gan.engine import EXPLANATION, MAX_EPOCHS, GanLab, GanUpdate, grid_picture, train

TAB = "gan"


def lab_key(request: gr.Request | None) -> ModelKey:
    """The session's lab in the cache, under a digest of its session (the Models panel is shown to everyone)."""
    session = jobs.session_of(request) or "api"
    return ModelKey("gan", f"GAN lab {hashlib.sha256(session.encode()).hexdigest()[:8]}", None, "cpu", "float32")


def _layout() -> tuple:
    """(epochs, seed, train, stop, start over, status, walk slider, walked digits, samples, losses)."""
    gr.Markdown(EXPLANATION)
    with gr.Row():
        with gr.Column(scale=1):
            epochs = ui.slider(
                1, MAX_EPOCHS, param="epochs", value=60, step=1, label="Epochs to train (about 0.5 s each here)"
            )
            seed = ui.checked(gr.Number, "The seed must be a whole number.")(0, label="Seed", precision=0)
            with gr.Row():
                start = gr.Button("Train / Resume", variant="primary", elem_id="gan-train")
                stop = gr.Button("Stop", variant="stop", elem_id="gan-stop")
                reset = gr.Button("Start over", elem_id="gan-reset")
            status = gr.Markdown(elem_id="gan-status")
            walk = ui.slider(
                0,
                1,
                param="t",
                words="point of the walk",
                value=0,
                step=0.05,
                label="Walk the latent space: from one random input to another",
                elem_id="gan-walk",
            )
            walked = gr.Image(
                label="Every digit from the same point of the walk",
                interactive=False,
                height=120,
                elem_id="gan-walked",
            )
        with gr.Column(scale=1):
            samples = gr.Image(label="The generator's digits (rows 0-9)", interactive=False, elem_id="gan-samples")
            losses = gr.Image(label="Losses per epoch", interactive=False, elem_id="gan-losses")
    return epochs, seed, start, stop, reset, status, walk, walked, samples, losses


def lab_seed(seed: Any) -> int:
    """The seed of a new lab: blank is 0; anything else a whole number 0..2^32-1 (a sentence otherwise)."""
    return 0 if seed is None or seed == "" else int(checks.check_number(seed, "seed", 0, checks.MAX_SEED, True))


def build(ctx: ui.Context) -> None:
    settings = ctx.settings

    @contextlib.contextmanager
    def lab_for(request: gr.Request | None, seed: int = 0) -> Iterator[GanLab]:
        """This session's lab (a new one with `seed` if it has none), leased for the block."""
        with ctx.cache.acquire(lab_key(request), lambda: GanLab(seed=seed)) as lab:
            yield lab

    epochs, seed, start, stop, reset, status, walk, walked, samples, losses = _layout()

    @ui.user_errors
    def train_gan(
        request: gr.Request,
        progress=gr.Progress(),
        *,
        epochs: int,
        seed: int,
        history: list | None = None,
        ticket: str | None = None,
    ) -> Iterator[dict]:
        """Train this visitor's GAN for `epochs` more epochs (a new one from `seed` if it has none)."""

        def work(stop) -> Iterator[GanUpdate]:
            with lab_for(request, lab_seed(seed)) as lab:  # held while it trains
                yield from train(lab, epochs, settings, stop=stop, progress=progress)

        def show(u: GanUpdate) -> dict:
            shown = {samples: u.samples, losses: u.losses, status: u.status()}
            if u.saved is None:
                return shown
            files = [u.saved, u.saved.with_suffix(".json")]
            entry = record("GAN lab", f"digits after {u.epoch} epochs", files, preview=str(u.saved))
            return {
                **shown,
                status: u.status() + f" · saved {u.saved.name}",
                ctx.history: prepend(history, entry),
            }

        yield from jobs.run(ctx, request, TAB, ticket, work, show)

    jobs.queued(
        ctx,
        TAB,
        start.click,
        train_gan,
        {"epochs": epochs, "seed": seed, "history": ctx.history},
        [samples, losses, status, ctx.history],
        api_name="train_gan",
        concurrency_limit=settings.concurrency,
        concurrency_id=TAB,
        show_progress_on=[status],
        status=status,
    )

    jobs.wire_stop(ctx, stop, TAB, status, stopping="Paused: Train / Resume carries on.")

    @ui.user_errors
    def reset_ui(seed, request: gr.Request):
        seed = lab_seed(seed)
        if not ctx.cache.forget(lab_key(request)):
            raise gr.Error("The GAN is still training: press Stop first, then Start over.")
        with lab_for(request, seed):  # a new lab, with this seed
            pass
        return None, None, "A new, untrained GAN: press Train."

    reset.click(reset_ui, seed, [samples, losses, status], api_visibility="private")

    @ui.user_errors
    def gan_walk(t: float, request: gr.Request = None):
        """The generator's digits at one point t (0-1) of a walk through its latent space."""
        with lab_for(request) as lab:
            return grid_picture(lab.walk(float(t)), 10)

    walk.change(gan_walk, walk, walked, api_name="gan_walk", concurrency_id="gan-walk")
