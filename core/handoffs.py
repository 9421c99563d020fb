"""Hand-offs between tabs: what one tab made becomes the next tab's input, with one click.

Tabs put the components they offer in ctx.shared by name while they build; wire() connects them once all tabs
exist (a tab built first cannot see one built later).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from core import ui

EXPAND_SYSTEM = {
    "image": "You write prompts for an image generator. Rewrite the user's idea as one vivid, concrete prompt: "
    "subject, setting, style, lighting, composition. Reply with the prompt only, under 60 words.",
    "music": "You write descriptions for a music generator. Rewrite the user's idea as one short description: "
    "genre, mood, instruments, tempo. Reply with the description only, under 40 words.",
}


def last_answer(chat: list[dict] | None) -> str:
    from tabs.text import message_text

    for message in reversed(chat or []):
        if message.get("role") == "assistant" and message_text(message.get("content")).strip():
            return message_text(message.get("content")).strip()
    raise gr.Error("There is no answer yet: chat first, then use the answer as an image prompt.")


def first_or_selected(selected: str | None, gallery: list | None) -> str:
    if selected:
        return selected
    if gallery:
        item = gallery[0]
        item = item[0] if isinstance(item, (list, tuple)) else item
        if isinstance(item, dict):
            item = item.get("image", item)
            item = item.get("path", item) if isinstance(item, dict) else item
        return str(item)
    raise gr.Error("Generate an image first.")


def wire(ctx: ui.Context) -> None:
    s, tabs = ctx.shared, ctx.tabs

    def go(tab: str) -> Any:
        return gr.Tabs(selected=tab)

    if {"text_chat", "text_to_image", "image_prompt"} <= s.keys():
        s["text_to_image"].click(
            lambda chat: (last_answer(chat), go("image")),
            s["text_chat"],
            [s["image_prompt"], tabs],
            api_visibility="private",
            queue=False,
        )
    if {"image_to_music", "image_prompt", "music_prompt"} <= s.keys():

        def soundtrack(prompt: str):
            if not (prompt or "").strip():
                raise gr.Error("Write an image prompt first: it becomes the music's description.")
            return f"A soundtrack for this scene: {prompt.strip()}", go("music")

        s["image_to_music"].click(
            soundtrack, s["image_prompt"], [s["music_prompt"], tabs], api_visibility="private", queue=False
        )
    if {"image_to_faceswap", "image_selected", "image_gallery", "faceswap_target"} <= s.keys():
        s["image_to_faceswap"].click(
            lambda sel, gal: (first_or_selected(sel, gal), go("faceswap")),
            [s["image_selected"], s["image_gallery"]],
            [s["faceswap_target"], tabs],
            api_visibility="private",
            queue=False,
        )
    for kind in ("image", "music"):
        button, prompt = s.get(f"{kind}_expand"), s.get(f"{kind}_prompt")
        if button is None or prompt is None:
            continue

        def expand(text: str, kind: str = kind) -> str:
            from tabs.text import TextParams, generate_text

            *_, final = generate_text(
                ctx.cache,
                ctx.settings,
                text,
                system_prompt=EXPAND_SYSTEM[kind],
                params=TextParams(max_new_tokens=120, temperature=0.7),
            )
            return final.text.strip() or text

        button.click(
            ui.user_errors(expand),
            prompt,
            prompt,
            api_name=f"expand_{kind}_prompt",
            concurrency_id="text",
            concurrency_limit=ctx.settings.concurrency,
        )
