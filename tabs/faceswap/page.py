"""The Face swap tab's page: consent first, then components and wiring. Swaps come from engine.swap_face_image and
video.swap_face_video (through core.jobs.run)."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from core import enhance, faces, jobs, ui
from core.history import prepend, record
from tabs.faceswap import neural, video
from tabs.faceswap.engine import (
    CONSENT_TEXT,
    FACE_UNREADABLE,
    UNREADABLE_IMAGE,
    UNREADABLE_VIDEO,
    preview_faces,
    swap_face_image,
)
from tabs.faceswap.video import VideoUpdate

TAB = "faceswap"
ASSETS = Path(__file__).resolve().parent.parent.parent / "assets" / "faces"


@dataclass
class Page:
    """The tab's components, by name (those named after an API parameter are its inputs)."""

    source_image: Any = None
    target_image: Any = None
    target_video: Any = None
    consent: Any = None
    face_index: Any = None
    engine: Any = None
    region: Any = None  # what of the target's face is painted (faces.REGIONS)
    face_enhancer: Any = None  # a face restorer run on each swapped face (core.enhance), or None
    enhance_blend: Any = None
    swap: Any = None
    swap_video: Any = None
    stop: Any = None
    faces_preview: Any = None
    result: Any = None
    result_video: Any = None
    summary_box: Any = None
    summary_json: Any = None
    how: Any = None  # the face mesh picture for "How it works" (a State)


def build(ctx: ui.Context) -> None:
    settings, page = ctx.settings, Page()
    consent_note = (
        f"Swap only faces you have the right to use. Every swap needs the box ticked: “{CONSENT_TEXT}” "
        "Each swap is recorded in a local audit log (no images)."
    )
    if settings.classroom:
        gr.Markdown(f"## ✋ Consent first\n### {consent_note}", elem_id="faceswap-consent-note")
    else:
        gr.Markdown(f"**Consent first.** {consent_note}", elem_id="faceswap-consent-note")
    with gr.Row():
        with gr.Column():
            _inputs(ctx, page)
        with gr.Column():
            page.faces_preview = gr.Image(
                label="Faces found in the target", interactive=False, height=260, elem_id="faceswap-faces"
            )
            page.result = gr.Image(
                label="Result", type="filepath", format="png", interactive=False, elem_id="faceswap-result"
            )
            page.result_video = gr.Video(label="Result video", interactive=False, elem_id="faceswap-result-video")
            page.summary_box = gr.Markdown(elem_id="faceswap-summary")
            page.summary_json = gr.JSON(label="Summary", open=False)
    page.how = _how_it_works(settings.classroom)
    _wire(ctx, page)


def _inputs(ctx: ui.Context, page: Page) -> None:
    settings = ctx.settings
    ready = neural.neural_paths(settings) is not None  # the neural engine's files are there (never downloads)
    engines = ["auto", "classic"] + (["neural"] if ready else [])
    page.source_image = ui.checked(gr.Image, UNREADABLE_IMAGE.format("source image"), "source image (source_image)")(
        label="Source face", type="filepath", elem_id="faceswap-source", sources=["upload", "clipboard"]
    )
    with gr.Tabs():
        with gr.Tab("Image"):
            page.target_image = ui.checked(
                gr.Image, UNREADABLE_IMAGE.format("target image"), "target image (target_image)"
            )(label="Target image", type="filepath", elem_id="faceswap-target", sources=["upload", "clipboard"])
            page.swap = gr.Button("Swap", variant="primary", elem_id="faceswap-swap")
            ctx.shared.faceswap_target = page.target_image
        with gr.Tab("Video"):
            page.target_video = ui.checked(gr.Video, UNREADABLE_VIDEO)(
                label=f"Target video (up to {settings.max_video_seconds:g} s)",
                elem_id="faceswap-video",
                sources=["upload"],
            )
            ctx.shared.faceswap_target_video = page.target_video
            with gr.Row():
                page.swap_video = gr.Button("Swap every frame", variant="primary", elem_id="faceswap-swap-video")
                page.stop = gr.Button("Stop", variant="stop")
    page.consent = gr.Checkbox(False, label=CONSENT_TEXT, elem_id="faceswap-consent")
    with gr.Row():
        page.face_index = ui.checked(gr.Number, FACE_UNREADABLE)(
            -1, label="Face to swap (-1 = all; numbers on the preview)", precision=0
        )
        page.engine = ui.choice(
            gr.Radio, engines, param="engine", value="auto", label="Engine", visible=not settings.classroom
        )
    page.region = ui.choice(
        gr.Radio,
        list(faces.REGIONS),
        param="region",
        words="face region",
        value="whole face",
        label="Face region",
        info="Keep the target's own eyes (and glasses) or mouth: the swap paints the rest of the face.",
        elem_id="faceswap-region",
    )
    with gr.Row():
        page.face_enhancer = ui.choice(
            gr.Dropdown, [enhance.NONE, *enhance.restorer_choices(settings)], param="face_enhancer",
            words="face enhancer", value=enhance.NONE, label="Enhance the swapped face",
            info="A face restorer (see the Extras tab) sharpens each swapped face.", elem_id="faceswap-enhancer",
        )  # fmt: skip
        page.enhance_blend = ui.slider(
            0, 1, param="enhance_blend", words="enhance blend", value=1.0, step=0.05,
            label="Enhance blend (0: the swap as it is)", elem_id="faceswap-enhance-blend",
        )  # fmt: skip
    _neural_panel(ctx, page, ready)
    gr.Examples(
        [[str(ASSETS / "grace_hopper.jpg"), str(ASSETS / "astronaut.jpg")]],
        [page.source_image, page.target_image],
        label="Public-domain faces to try",
    )


def _neural_panel(ctx: ui.Context, page: Page, ready: bool) -> None:
    """The neural engine, one click away: its licence, a yes, then the download (with progress), never silently."""
    settings = ctx.settings
    size = sum(source.megabytes for source in neural.SOURCES)
    repos = ", ".join(f"`{source.repo}`" for source in neural.SOURCES)
    with gr.Accordion(
        "Neural engine (sharper faces): " + ("ready" if ready else "download once"),
        open=False,
        visible=not settings.classroom,
        elem_id="faceswap-neural-panel",
    ):
        gr.Markdown(
            f"{neural.LICENCE} The files ({size} MB) come from the Hugging Face Hub ({repos}) and run only if their "
            "SHA-256 matches the published files."
            + ("" if settings.allow_model_downloads else " **Downloads are turned off on this studio.**")
        )
        accept = gr.Checkbox(False, label=neural.ACCEPT, elem_id="faceswap-neural-accept")
        get = gr.Button("Download the neural engine", elem_id="faceswap-neural-get", interactive=not ready)
        note = gr.Markdown(elem_id="faceswap-neural-note")

    @ui.user_errors
    def get_neural_engine(accept_licence: bool, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        ui.operator_only(settings, request, "Accepting a licence and downloading an engine")
        neural.download(settings, accept_licence, progress)
        ready_note = "The neural engine is ready: it is now chosen under Engine (auto picks it too)."
        return gr.Radio(choices=["auto", "classic", "neural"], value="neural"), ready_note

    get.click(get_neural_engine, accept, [page.engine, note], api_name="get_neural_engine", concurrency_id="downloads")


def _how_it_works(open_: bool) -> Any:
    with gr.Accordion("How it works: the face mesh", open=open_, elem_id="faceswap-how"):
        gr.Markdown(
            "The studio finds 468 points on each face and joins them into triangles. Each triangle of the "
            "source face is stretched onto the matching triangle of the target face, then the colours are "
            "matched and the edges blended. Source, target, and the result (found again):"
        )
        mesh = gr.Image(
            label="Mesh and triangles: source, target, result", interactive=False, elem_id="faceswap-how-mesh"
        )
    how = gr.State(None)
    how.change(lambda picture: picture, how, mesh, api_visibility="private", queue=False)
    return how


def _wire(ctx: ui.Context, page: Page) -> None:
    settings, cache = ctx.settings, ctx.cache

    @ui.user_errors
    def find(target_path):
        if not target_path:
            return None, ""
        picture, count = preview_faces(cache, target_path)
        return picture, f"{count} face(s) found in the target." if count else "No face found in the target."

    page.target_image.change(find, page.target_image, [page.faces_preview, page.summary_box], api_visibility="private")

    @ui.user_errors
    def swap_face(
        source_image: str | None,
        target_image: str | None,
        consent: bool,
        face_index: int = -1,
        engine: str = "auto",
        region: str = "whole face",
        face_enhancer: str = enhance.NONE,
        enhance_blend: float = 1.0,
        history: list | None = None,
    ) -> tuple:
        """The face of source_image on the faces of target_image (consent must be true)."""
        r = swap_face_image(
            cache, settings, source_image, target_image, consent=consent, face_index=face_index, engine=engine,
            region=region, face_enhancer=face_enhancer, enhance_blend=enhance_blend,
        )  # fmt: skip
        summary = f"{r.summary['faces_swapped']} face(s), {r.summary['engine']} engine"
        entry = record("Face swap", summary, [r.path, r.path.with_suffix(".json")], preview=str(r.path))
        text = (
            f"Swapped {r.summary['faces_swapped']} of {r.summary['faces_found']} face(s) with the "
            f"**{r.summary['engine']}** engine. " + " ".join(r.summary["notes"])
        )
        return str(r.path), text, r.summary, prepend(history, entry), r.mesh

    common = dict(concurrency_limit=settings.jobs_at_once(TAB), concurrency_id=TAB)
    page.swap.click(
        swap_face,
        [
            page.source_image,
            page.target_image,
            page.consent,
            page.face_index,
            page.engine,
            page.region,
            page.face_enhancer,
            page.enhance_blend,
            ctx.history,
        ],  # fmt: skip
        [page.result, page.summary_box, page.summary_json, ctx.history, page.how],
        api_name="swap_face",
        **common,
    )

    @ui.user_errors
    def swap_face_video(
        request: gr.Request,
        progress=gr.Progress(),
        *,
        source_image: str | None,
        target_video: str | None,
        consent: bool,
        face_index: int,
        engine: str,
        region: str,
        face_enhancer: str,
        enhance_blend: float,
        ticket: str | None = None,
        history: list | None = None,
    ) -> Iterator[dict]:
        """The face of source_image on the faces of every frame of target_video (consent must be true)."""
        options = dict(consent=consent, face_index=face_index, engine=engine, region=region)
        options.update(face_enhancer=face_enhancer, enhance_blend=enhance_blend)

        def work(stop) -> Iterator[VideoUpdate]:
            return video.swap_face_video(
                cache, settings, source_image, target_video, stop=stop, progress=progress, **options
            )

        def show(u: VideoUpdate) -> dict:
            if u.result is None:
                return {page.summary_box: u.status()}
            r = u.result
            entry = record("Face swap", f"video, {r.summary['frames']} frames", [r.path, r.path.with_suffix(".json")])
            return {
                page.result_video: str(r.path),
                page.summary_box: u.status(),
                page.summary_json: r.summary,
                ctx.history: prepend(history, entry),
            }

        yield from jobs.run(ctx, request, TAB, ticket, work, show)

    names = ("source_image", "target_video", "consent", "face_index", "engine", "region", "face_enhancer")
    names += ("enhance_blend",)
    jobs.queued(
        ctx,
        TAB,
        page.swap_video.click,
        swap_face_video,
        {**{name: getattr(page, name) for name in names}, "history": ctx.history},
        [page.result_video, page.summary_box, page.summary_json, ctx.history],
        api_name="swap_face_video",
        show_progress_on=[page.summary_box],
        status=page.summary_box,
        concurrency_limit=settings.concurrency,  # videos are swapped in this process, even with a Ray cluster
        concurrency_id="faceswap-video",
    )
    jobs.wire_stop(ctx, page.stop, TAB, page.summary_box)
