"""UI parts every tab shares: error wrapping, checked inputs, the hand-off slots and the model panel (the run path and
Stop are in core.jobs, the History in core.history)."""

from __future__ import annotations

import errno
import functools
import inspect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from core.checked import bounded, checked, chosen  # noqa: F401  (checked: used by the tabs as ui.checked)
from core.device import is_out_of_memory, memory_now
from core.errors import UserError
from core.models import ModelCache
from core.settings import Settings

log = logging.getLogger("studio.ui")


def _to_gradio_error(exc: BaseException) -> gr.Error:
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, UserError):
        return gr.Error(str(exc), print_exception=False)
    if is_out_of_memory(exc):
        asked = re.search(r"[Tt]ried to allocate ([\d.]+ ?[KMGT]i?B)", str(exc))  # torch says how much it wanted
        wanted = f"it asked for {asked.group(1)} more; " if asked else ""
        return gr.Error(
            f"The studio ran out of memory for this request ({wanted}{memory_now()}). Try a smaller size, fewer "
            "images or a shorter output, a GGUF-quantised model, or unload other models in the Models panel.",
            print_exception=False,
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return gr.Error(
            "The disk is full: the result could not be saved. Free some space and try again.", print_exception=False
        )
    log.exception("unexpected error", exc_info=exc)
    return gr.Error(
        f"Something went wrong on the server ({type(exc).__name__}); the details are in its log. "
        "Other requests are not affected: try again.",
        print_exception=False,
    )


def user_errors(fn: Callable) -> Callable:
    """Turn UserError into a gr.Error sentence, and anything unexpected into a short one (traceback to the log)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise _to_gradio_error(exc) from None

        return gen

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise _to_gradio_error(exc) from None

    return call


def slider(minimum: float, maximum: float, *, param: str, words: str | None = None, unit: str = "", **kwargs):
    """gr.Slider whose refusals (a word, a value out of range, sent through the API) name the input by its API
    parameter `param` (and `words`), its range in `unit` and what was given."""
    from core.checks import named

    component = bounded(gr.Slider)(minimum, maximum, **kwargs)
    component.what, component.unit = named(param, words), unit
    return component


def choice(component: type, *args, param: str, words: str | None = None, **kwargs):
    """A gr.Dropdown, gr.Radio or gr.CheckboxGroup whose refusal names the input by its API parameter `param`."""
    from core.checks import named

    made = chosen(component)(*args, **kwargs)
    made.what = named(param, words)
    return made


def model_dropdown(
    settings: Settings, choices: list[str], elem_id: str | None = None, label: str = "Model", param: str = "model"
) -> gr.Dropdown:
    """A tab's Model box: the curated choices (the first chosen), any hub id or folder only where the operator allows
    custom models, hidden in classroom mode; a refusal names its API parameter `param`."""
    return choice(
        gr.Dropdown,
        param=param,
        visible=not settings.classroom,
        choices=choices,
        value=choices[0],
        label=label,
        allow_custom_value=settings.allow_custom_models,
        info="A hub id or local folder." if settings.allow_custom_models else None,
        elem_id=elem_id,
    )


def seed_used_box(elem_id: str) -> gr.Number:
    """The "Seed used" box, hidden until a run fills it: Gradio's Number shows an empty value as 0, which reads as a
    seed that was used."""
    box = gr.Number(label="Seed used", interactive=False, precision=0, elem_id=elem_id, visible=False)
    box.change(lambda: gr.Number(visible=True), None, box, api_visibility="private", queue=False)
    return box


def lora_picker(settings: Settings, prompt: Any, prefix: str, history: Any = None) -> None:
    """LoRAs from the LoRA folder, added to `prompt` as AUTOMATIC1111's <lora:name:weight> (several at once); the
    Image and Video tabs each have one (elem_ids `<prefix>-lora`, `-lora-weight`, `-lora-add`). With `history` (the
    History state), the LoRAs this visitor trained on a shared studio join the list (core.loras.own)."""
    from core import loras

    with gr.Accordion("LoRA", open=False, visible=not settings.classroom, elem_id=f"{prefix}-lora-panel"):
        names = list(loras.available(settings))
        gr.Markdown(
            f"Styles and subjects trained on top of a model: the .safetensors files in `{settings.lora_dir}` "
            "(STUDIO_LORA_DIR)"
            + (", and the LoRAs you trained on the Train tab" if history is not None else "")
            + ". Each is added to the prompt as `<lora:name:weight>`, as in AUTOMATIC1111; edit the weight there, or "
            "remove the tag to stop using it. A LoRA works with the family it was made for."
        )
        with gr.Row():
            chosen = gr.Dropdown(names, value=names[0] if names else None, label="LoRA", elem_id=f"{prefix}-lora")
            weight = gr.Slider(-2, 2, value=0.8, step=0.05, label="Weight", elem_id=f"{prefix}-lora-weight")
        add = gr.Button("Add to the prompt", size="sm", elem_id=f"{prefix}-lora-add")

    def offered(kept: list | None) -> dict:
        return {**loras.available(settings), **(loras.own(settings, kept) if history is not None else {})}

    def refresh(kept: list | None = None):  # files added to the folder (or trained here) since the page opened
        return gr.Dropdown(choices=list(offered(kept)))

    def add_tag(text: str, name: str | None, value: float, kept: list | None = None) -> str:
        """The tag, after the LoRA's trigger words where it has some (from its metadata) and the prompt lacks them."""
        if not name:
            raise gr.Error(f"There is no LoRA yet: put .safetensors LoRA files in {settings.lora_dir}.")
        text = (text or "").rstrip()
        path = offered(kept).get(name)
        trigger = loras.trigger_of(path) if path else ""
        if trigger and trigger.lower() not in text.lower():
            text = f"{trigger}, {text}" if text else trigger
        return f"{text} <lora:{name}:{value:g}>".strip()

    kept = [history] if history is not None else []
    chosen.focus(refresh, kept, chosen, api_visibility="private", queue=False)
    add.click(add_tag, [prompt, chosen, weight, *kept], prompt, api_visibility="private", queue=False)


@dataclass
class Handoffs:
    """Components one tab offers another (set while the tabs build, each by the tab that owns it); app.handoffs
    wires them once every tab exists. A slot left None (its tab absent) wires nothing."""

    text_chat: Any = None  # the Text tab's chat
    text_to_image: Any = None  # its "Use as image prompt" button
    text_to_voice: Any = None  # its "Read aloud" button
    image_prompt: Any = None
    image_gallery: Any = None
    image_selected: Any = None  # the path of the result chosen in the gallery
    image_expand: Any = None  # "Expand prompt" (the text model writes a richer prompt)
    image_to_music: Any = None
    image_to_faceswap: Any = None
    music_prompt: Any = None
    music_expand: Any = None
    music_result: Any = None  # the Music tab's result (a WAV path)
    voice_text: Any = None  # the Voice tab's text box (Read aloud puts text there)
    voice_speak: Any = None  # voice_speak(trigger): the Voice tab speaks its text box when `trigger` fires
    voice_music: Any = None  # the music its narrated track goes over
    voice_use_music: Any = None  # its "Use the Music tab's result" button
    image_to_video: Any = None  # the Image tab's "Animate this picture" button
    video_first_frame: Any = None  # the Video tab's first frame
    video_soundtrack: Any = None  # its soundtrack
    video_use_music: Any = None  # its "Use the Music tab's result" button
    video_result: Any = None  # its result (an MP4 path)
    video_to_faceswap: Any = None  # its "Swap a face in this video" button
    video_frame: Any = None  # its "Frame" slider (which frame goes to the Image tab)
    video_to_image: Any = None  # its "Send this frame to the Image tab" button
    image_init: Any = None  # the Image tab's input picture (image to image)
    image_model: Any = None  # the Image tab's model box
    train_images: Any = None  # the Train tab's pictures
    train_add_results: Any = None  # its "Add the Image tab's results" button
    train_to_image: Any = None  # its "Use it on the Image tab" button
    train_made: Any = None  # the LoRA it made (a State: name, trigger, base)
    image_init_panel: Any = None  # the accordion that holds it
    faceswap_target_video: Any = None  # the Face swap tab's target video
    faceswap_target: Any = None
    image_to_extras: Any = None  # the Image tab's "Enhance in Extras" button
    extras_image: Any = None  # the Extras tab's picture


@dataclass
class Context:
    """What build() of every tab receives."""

    settings: Settings
    cache: ModelCache
    stops: Any  # core.jobs.Stops
    history: gr.State  # list of history entries (dicts), newest first, kept in the browser across reloads
    tabs: gr.Tabs | None = None  # to switch tabs in hand-offs
    shared: Handoffs = field(default_factory=Handoffs)  # components tabs offer to each other


def operator_only(settings: Settings, request: Any, action: str) -> None:
    """Refuse `action` (it affects every user) unless the caller is the studio's operator (Settings.is_operator)."""
    if not settings.is_operator(getattr(request, "username", None)):
        raise UserError(
            f"{action} affects everyone using this studio, so on a shared studio only its operator may do it "
            "(a login listed in STUDIO_ADMINS)."
        )


def build_model_panel(cache: ModelCache, settings: Settings) -> None:
    def models() -> tuple[list[list[Any]], str]:
        """The models held in memory (tab, model, device, dtype, MB, in use) and a line about the budget."""
        snap = cache.snapshot()
        table = [
            [m["kind"], m["model"], m["device"], m["dtype"], m["megabytes"], "yes" if m["in_use"] else "no"]
            for m in snap
        ]
        if not cache.device_picked:
            note = "No model loaded yet: the first request of each tab loads its model."
        else:
            note = (
                f"{len(snap)} model(s) loaded, {cache.used_bytes() / 1e6:.0f} MB of a "
                f"{cache.budget_bytes / 1e6:.0f} MB budget on {cache.device}."
            )
        return table, note

    @user_errors
    def unload_models(request: gr.Request) -> tuple[list[list[Any]], str]:
        """Unload every idle model (the operator's: it affects everyone); then the models left."""
        operator_only(settings, request, "Unloading models")
        unloaded, kept = cache.unload()
        table, note = models()
        kept_note = f" {kept} in use right now stayed loaded." if kept else ""
        return table, f"Unloaded {unloaded} model(s).{kept_note} " + note

    with gr.Accordion("Models", open=False, elem_id="model-panel"):
        table = gr.Dataframe(
            headers=["Tab", "Model", "Device", "Dtype", "MB", "In use"],
            value=[],
            interactive=False,
            elem_id="model-table",
        )
        note = gr.Markdown()
        with gr.Row():
            refresh = gr.Button("Refresh", size="sm")
            shown = bool(settings.admins) or not settings.public  # where someone may use it (see operator_only)
            unload_btn = gr.Button("Unload all idle models", size="sm", variant="stop", visible=shown)
    refresh.click(models, None, [table, note], api_name="models", queue=False)
    unload_btn.click(unload_models, None, [table, note], api_name="unload_models")
