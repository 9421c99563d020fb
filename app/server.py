"""build_app(settings) -> gr.Blocks, and launch(). The tabs come from tabs.TABS; nothing heavy is imported here."""

from __future__ import annotations

import importlib
import logging
import threading
from pathlib import Path

import gradio as gr

from app import handoffs, limits, speed, tools
from core import checks, history, jobs, ui
from core.device import import_lock
from core.models import ModelCache, make_cache
from core.settings import Settings, auth_pairs

log = logging.getLogger("studio")

TITLE = "Generative AI Studio"
WARM_IMPORTS = (
    ("torch", ()),
    ("transformers", ("AutoModelForCausalLM", "AutoTokenizer", "TextIteratorStreamer", "StoppingCriteria")),
    ("diffusers", ("AutoPipelineForText2Image", "AutoPipelineForImage2Image")),
)
CSS_PATH = Path(__file__).resolve().parent.parent / "assets" / "studio.css"


def _banner(settings: Settings) -> str:
    notes = []
    if settings.tiny:
        notes.append(
            "**Tiny mode:** every tab uses a tiny model with random weights, built on this machine. "
            "Everything works, but **the outputs are noise**. Restart without `--tiny` for real models."
        )
    if settings.classroom:
        notes.append("**Classroom mode:** simple controls, short jobs, and a *How it works* panel open on every tab.")
    if settings.offline:
        notes.append("**Offline:** models load only from local folders or the local Hugging Face cache.")
    return "\n\n".join(notes)


# Gradio's BrowserState encrypts what a page keeps in localStorage with this, and publishes it in /config: it
# protects nothing, and is fixed so that a History survives a restart. History entries carry their own seals
# (core.history), made with a key that never leaves the server.
BROWSER_STATE_SECRET = "studio-history-is-sealed-by-the-server"


def build_app(settings: Settings, cache: ModelCache | None = None, tabs: tuple | None = None) -> gr.Blocks:
    """The studio with every tab of tabs.TABS (or only `tabs`, (title, module) pairs: a tab run on its own)."""
    from tabs import TABS

    tabs = TABS if tabs is None else tabs
    cache = cache or make_cache(settings)
    checks.limit_pillow()  # no Image.open anywhere in this process decodes a picture past the studio's limit
    speed.install()  # component schemas derived once, not on every progress update
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        # The queue first: Gradio builds its server app again at each queue() call, and once more when the page is
        # done; set here, on an empty page, that costs nothing (0.2 s of startup with ten tabs when set after).
        demo.queue(max_size=settings.max_queue, default_concurrency_limit=settings.concurrency)
        gr.Markdown(
            f"# {TITLE}\nImages, text, music, speech, video and face swaps in one place. Every output is saved with "
            "the recipe that made it.",
            elem_id="studio-header",
        )
        banner = _banner(settings)
        if banner:
            gr.Markdown(banner, elem_id="studio-banner")
        ctx = ui.Context(settings=settings, cache=cache, stops=jobs.Stops(), history=gr.State([]))
        # The History survives a page reload and a restart of the studio; what comes back is checked (core.history).
        stored = gr.BrowserState([], storage_key="studio-history", secret=BROWSER_STATE_SECRET)
        seals = history.seals_for(settings)
        with gr.Tabs() as ctx.tabs:
            for title, module in tabs:
                with gr.Tab(title, id=module.__name__.split(".")[-1]):
                    module.build(ctx)

        def restore_history(kept):  # what the browser kept: only the entries sealed for it come back
            kept = seals.check(kept)
            return (kept, *history.views(kept))

        with gr.Row():
            with gr.Column():
                history_table, history_files = history.build_panel(ctx.history, seals)
            with gr.Column():
                ui.build_model_panel(cache, settings)
        handoffs.wire(ctx)
        demo.load(
            restore_history,
            stored,
            [ctx.history, history_table, history_files],
            api_visibility="private",
            queue=False,
        )
        ctx.history.change(seals.seal, ctx.history, stored, api_visibility="private", queue=False)
    tools.describe(demo, tools.tools(module for _, module in tabs))  # each endpoint named and described (MCP)
    demo.studio_cache = cache  # for tests and benchmarks that look at loads
    return demo


def warm_imports() -> threading.Thread:
    """Import the heavy libraries in the background once the UI is serving, so a first request waits less."""

    def work() -> None:
        for name, attrs in WARM_IMPORTS:
            try:
                with import_lock:
                    module = importlib.import_module(name)
                    for attr in attrs:
                        getattr(module, attr)
            except Exception:  # a missing optional library is reported when a tab needs it
                log.debug("warm import of %s failed", name, exc_info=True)

    thread = threading.Thread(target=work, name="warm-imports", daemon=True)
    thread.start()
    return thread


def served_paths(settings: Settings) -> list[str]:
    """Folders Gradio may serve files from by their path. Results reach the page through Gradio's own cache under
    unguessable names; Gradio takes files into that cache from the working and temp folders by itself, so the output
    folder is listed only when it lies elsewhere (say a mounted volume), where a restored History needs it. Listed
    folders are served to anyone who knows a file's path."""
    import tempfile

    out = settings.output_dir.resolve()
    taken_anyway = [Path.cwd().resolve(), Path(tempfile.gettempdir()).resolve()]
    assets = Path(__file__).resolve().parent.parent / "assets"
    return [str(assets)] + ([] if any(out.is_relative_to(p) for p in taken_anyway) else [str(out)])


def launch(demo: gr.Blocks, settings: Settings, block: bool = True, warm: bool = True, **kwargs):
    """Serve the app; then import the heavy libraries in the background (warm); then wait (block) if asked."""
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    if settings.mcp:
        tools.fix_gradio_mcp_outputs()
    result = demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        allowed_paths=served_paths(settings),
        blocked_paths=[str(p) for p in history.blocked_paths(settings)],  # the audit log and the studio's keys
        auth=auth_pairs(settings),
        auth_message="This studio asks for a login (STUDIO_AUTH)." if settings.auth else None,
        max_file_size=int(settings.max_upload_mb * 1024 * 1024),
        css_paths=[CSS_PATH] if CSS_PATH.exists() else None,
        footer_links=["api", "settings"],
        prevent_thread_lock=True,
        mcp_server=settings.mcp,
        app_kwargs={"middleware": [limits.middleware(settings.max_upload_mb)]},
        **kwargs,
    )
    if warm:
        warm_imports()
    if block:
        demo.block_thread()
    return result
