"""Hand-offs between tabs: what one tab made becomes the next tab's input, with one click.

Tabs fill their slots of ctx.shared (core.ui.Handoffs) while they build; wire() connects them once all tabs exist
(a tab built first cannot see one built later). A slot whose tab is absent stays None and wires nothing.
"""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

from core import ui
from tabs.image.gallery import chosen_or_first

EXPAND_SYSTEM = {
    "image": "You write prompts for an image generator. Rewrite the user's idea as one vivid, concrete prompt: "
    "subject, setting, style, lighting, composition. Reply with the prompt only, under 60 words.",
    "music": "You write descriptions for a music generator. Rewrite the user's idea as one short description: "
    "genre, mood, instruments, tempo. Reply with the description only, under 40 words.",
}


def last_answer(chat: list[dict] | None, then: str = "use the answer as an image prompt") -> str:
    from tabs.text.engine import message_text

    for message in reversed(chat or []):
        if message.get("role") == "assistant" and message_text(message.get("content")).strip():
            return message_text(message.get("content")).strip()
    raise gr.Error(f"There is no answer yet: chat first, then {then}.")


def spoken_form(markdown: str) -> str:
    """A chat answer as text to read aloud: no code blocks, link targets or Markdown marks (** _ # > ` |)."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [words](address) -> words
    text = re.sub(r"^\s*(#+|>|[-*+]|\d+[.)])\s+", "", text, flags=re.M)  # headings, quotes, list marks
    return re.sub(r"[*_`|]+", "", text).strip()


def wire(ctx: ui.Context) -> None:
    s, tabs = ctx.shared, ctx.tabs

    def go(tab: str) -> Any:
        return gr.Tabs(selected=tab)

    def ready(*slots: Any) -> bool:
        return all(slot is not None for slot in slots)

    if ready(s.text_chat, s.text_to_image, s.image_prompt):
        s.text_to_image.click(
            lambda chat: (last_answer(chat), go("image")),
            s.text_chat,
            [s.image_prompt, tabs],
            api_visibility="private",
            queue=False,
        )
    if ready(s.text_chat, s.text_to_voice, s.voice_text, s.voice_speak):  # Read aloud: the answer, spoken at once
        handed = s.text_to_voice.click(
            lambda chat: (spoken_form(last_answer(chat, "read it aloud")), go("voice")),
            s.text_chat,
            [s.voice_text, tabs],
            api_visibility="private",
            queue=False,
        )
        s.voice_speak(handed.success)

    def music_made(path: str | None):
        if not path:
            raise gr.Error("Make some music in the Music tab first; then it can go here.")
        return path

    for button, box in ((s.voice_use_music, s.voice_music), (s.video_use_music, s.video_soundtrack)):
        if ready(button, s.music_result, box):
            button.click(music_made, s.music_result, box, api_visibility="private", queue=False)
    if ready(s.image_to_video, s.image_selected, s.image_gallery, s.video_first_frame):

        def to_video(selected: str | None, items: list | None):
            return chosen_or_first(selected, items, "animate it in the Video tab"), go("video")

        s.image_to_video.click(
            ui.user_errors(to_video), [s.image_selected, s.image_gallery], [s.video_first_frame, tabs],
            api_visibility="private", queue=False,
        )  # fmt: skip
    if ready(s.video_to_faceswap, s.video_result, s.faceswap_target_video):

        def video_made(path: str | None):
            if not path:
                raise gr.Error("Make a video first; then a face can be swapped in it.")
            return path, go("faceswap")

        s.video_to_faceswap.click(
            video_made, s.video_result, [s.faceswap_target_video, tabs], api_visibility="private", queue=False
        )
    if ready(s.video_to_image, s.video_result, s.video_frame, s.image_init, s.image_init_panel):
        from tabs.video.media import video_frame

        def frame_to_image(path: str | None, number: int):
            if not path:
                raise gr.Error("Make a video first; then one of its frames can go to the Image tab.")
            picture = video_frame(path, number, ctx.settings.max_video_frames)
            return picture, gr.Accordion(open=True), go("image")

        s.video_to_image.click(
            ui.user_errors(frame_to_image), [s.video_result, s.video_frame], [s.image_init, s.image_init_panel, tabs],
            api_visibility="private", queue=False,
        )  # fmt: skip
    if ready(s.train_add_results, s.image_gallery, s.train_images):

        def add_results(items: list | None, chosen: list | None):
            from tabs.image.gallery import item_path

            if not items:
                raise gr.Error("The Image tab has no results yet: make some pictures there first.")
            have = [c["path"] if isinstance(c, dict) else c for c in (chosen or [])]
            return have + [item_path(i) for i in items if item_path(i) not in have]

        s.train_add_results.click(
            add_results, [s.image_gallery, s.train_images], s.train_images, api_visibility="private", queue=False
        )
    if ready(s.train_to_image, s.train_made, s.image_prompt, s.image_model):

        def lora_to_image(made: dict | None, prompt: str):
            if not made:
                raise gr.Error("Train a LoRA first; then it can be used on the Image tab.")
            tag = f"<lora:{made['name']}:1>"
            words = ", ".join(x for x in (made.get("trigger"), (prompt or "").strip()) if x)
            return f"{words} {tag}".strip(), made["base"], go("image")

        s.train_to_image.click(
            lora_to_image, [s.train_made, s.image_prompt], [s.image_prompt, s.image_model, tabs],
            api_visibility="private", queue=False,
        )  # fmt: skip
    if ready(s.image_to_music, s.image_prompt, s.music_prompt):

        def soundtrack(prompt: str):
            if not (prompt or "").strip():
                raise gr.Error("Write an image prompt first: it becomes the music's description.")
            return f"A soundtrack for this scene: {prompt.strip()}", go("music")

        s.image_to_music.click(
            soundtrack, s.image_prompt, [s.music_prompt, tabs], api_visibility="private", queue=False
        )
    if ready(s.image_to_faceswap, s.image_selected, s.image_gallery, s.faceswap_target):

        def to_faceswap(selected: str | None, items: list | None):
            return chosen_or_first(selected, items, "use it as the face swap's target"), go("faceswap")

        s.image_to_faceswap.click(
            ui.user_errors(to_faceswap),
            [s.image_selected, s.image_gallery],
            [s.faceswap_target, tabs],
            api_visibility="private",
            queue=False,
        )
    if ready(s.image_to_extras, s.image_selected, s.image_gallery, s.extras_image):

        def to_extras(selected: str | None, items: list | None):
            return chosen_or_first(selected, items, "upscale it in Extras"), go("extras")

        s.image_to_extras.click(
            ui.user_errors(to_extras),
            [s.image_selected, s.image_gallery],
            [s.extras_image, tabs],
            api_visibility="private",
            queue=False,
        )
    for kind, button, prompt in (("image", s.image_expand, s.image_prompt), ("music", s.music_expand, s.music_prompt)):
        if ready(button, prompt):
            _wire_expand(ctx, kind, button, prompt)


def _wire_expand(ctx: ui.Context, kind: str, button: Any, prompt: Any) -> None:
    """ "Expand prompt": the text model rewrites the idea in `prompt` as a richer one (/expand_<kind>_prompt)."""

    def expand(text: str) -> str:
        from tabs.text.engine import TextParams, generate_text

        *_, final = generate_text(
            ctx.cache,
            ctx.settings,
            text,
            system_prompt=EXPAND_SYSTEM[kind],
            params=TextParams(max_new_tokens=120, temperature=0.7),
        )
        return final.text.strip() or text

    def expand_image_prompt(text: str) -> str:
        """A richer image prompt for a short idea, written by the text model."""
        return expand(text)

    def expand_music_prompt(text: str) -> str:
        """A richer music description for a short idea, written by the text model."""
        return expand(text)

    button.click(
        ui.user_errors(expand_image_prompt if kind == "image" else expand_music_prompt),
        prompt,
        prompt,
        api_name=f"expand_{kind}_prompt",
        concurrency_id="text",
        concurrency_limit=ctx.settings.jobs_at_once("text"),
    )
