"""The Text tab on any OpenAI-compatible server (STUDIO_TEXT_ENDPOINT): vLLM, llama.cpp's server, Ollama, LM Studio,
Ray Serve LLM, `transformers serve`. The studio stays the front (checks, Stop, the transcript and its recipe); the
server runs the model, batching the room's requests. Streams `chat/completions` (server-sent events) with httpx."""

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from core.errors import UserError
from core.settings import Settings

SERVER_DEFAULT = "(the server's model)"  # the Model box's choice when STUDIO_TEXT_MODEL names none
CONNECT_S = 5.0  # seconds to open a connection; a dead server answers at once, a missing host within this
READ_S = 300.0  # seconds between two streamed pieces (a long prompt being read on a busy server)
EXTRAS = ("top_k", "repetition_penalty")  # sampling settings outside OpenAI's API: vLLM and llama.cpp take them
_models_seen: dict[str, tuple[float, list[str]]] = {}  # endpoint -> (when, the models /v1/models listed)


def endpoint(settings: Settings) -> str:
    return settings.text_endpoint.rstrip("/")


def _headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.text_api_key}"} if settings.text_api_key else {}


def _unreachable(settings: Settings, exc: Exception) -> UserError:
    return UserError(
        f"The text server at {endpoint(settings)} cannot be reached ({type(exc).__name__}). Start it, or check "
        "STUDIO_TEXT_ENDPOINT; the other tabs keep working."
    )


def served_models(settings: Settings) -> list[str]:
    """The models the server lists at /v1/models (remembered for 30 s)."""
    import httpx

    seen = _models_seen.get(endpoint(settings))
    if seen and time.monotonic() - seen[0] < 30:
        return seen[1]
    try:
        answer = httpx.get(f"{endpoint(settings)}/models", headers=_headers(settings), timeout=CONNECT_S)
        answer.raise_for_status()
        models = [m["id"] for m in answer.json()["data"]]
    except (httpx.HTTPError, OSError) as exc:
        raise _unreachable(settings, exc) from None
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"The text server at {endpoint(settings)} does not answer /models as an OpenAI-compatible server does. "
            "Check STUDIO_TEXT_ENDPOINT (it ends in /v1)."
        ) from None
    _models_seen[endpoint(settings)] = (time.monotonic(), models)
    return models


def model_name(settings: Settings, chosen: str) -> str:
    """The model to ask for: the one chosen (STUDIO_TEXT_MODEL), or the first the server lists."""
    if chosen and chosen != SERVER_DEFAULT:
        return chosen
    models = served_models(settings)
    if not models:
        raise UserError(f"The text server at {endpoint(settings)} lists no model: load one there first.")
    return models[0]


def _body(model: str, messages: list[dict], params: Any, continuing: bool, extras: bool) -> dict:
    body = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p if params.temperature > 0 else 1.0,
        "seed": params.seed,
    }
    if extras:  # refused by strict servers: then asked again without them (stream)
        body.update(top_k=params.top_k, repetition_penalty=params.repetition_penalty)
        if continuing:  # vLLM's way to go on with the last (assistant) message
            body.update(continue_final_message=True, add_generation_prompt=False)
    return body


def _refusal(settings: Settings, model: str, status: int, text: str) -> UserError:
    said = text.strip().replace("\n", " ")[:200]
    if status == 404 or "not found" in said.lower() or "does not exist" in said.lower():
        return UserError(
            f"The text server at {endpoint(settings)} has no model {model!r} ({said}). Set STUDIO_TEXT_MODEL to a "
            "model it serves."
        )
    return UserError(f"The text server at {endpoint(settings)} refused the request (HTTP {status}: {said}).")


def stream(
    settings: Settings, model: str, messages: list[dict], params: Any, stop: threading.Event, continuing: bool
) -> Iterator[tuple[str, dict]]:
    """(piece of the answer, facts) as the server streams them; facts: the model the server reports, the tokens it
    counted, the settings it was given. Stop closes the stream (the server then stops generating)."""
    import httpx

    url = f"{endpoint(settings)}/chat/completions"
    timeout = httpx.Timeout(READ_S, connect=CONNECT_S)
    for extras in (True, False):
        body = _body(model, messages, params, continuing, extras)
        facts: dict[str, Any] = {"passed": sorted(k for k in body if k not in ("messages", "stream"))}
        try:
            with httpx.stream("POST", url, json=body, headers=_headers(settings), timeout=timeout) as answer:
                if answer.status_code in (400, 422) and extras:
                    continue  # a strict server: again with OpenAI's own settings only
                if answer.status_code >= 400:
                    raise _refusal(settings, model, answer.status_code, answer.read().decode("utf-8", "replace"))
                yield from _events(settings, answer, stop, facts)
                return
        except httpx.HTTPError as exc:
            raise _unreachable(settings, exc) from None


def _events(settings: Settings, answer: Any, stop: threading.Event, facts: dict) -> Iterator[tuple[str, dict]]:
    """The server-sent events of one streamed answer, until [DONE], the stream's end or Stop."""
    pieces = 0
    for line in answer.iter_lines():
        if stop.is_set():
            return  # leaving the `with` closes the connection
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        try:
            event = json.loads(data)
            facts["model"] = event.get("model") or facts.get("model")
            if event.get("usage"):
                facts["tokens"] = event["usage"].get("completion_tokens")
            piece = "".join((c.get("delta") or {}).get("content") or "" for c in event.get("choices") or [])
        except (ValueError, AttributeError, TypeError):
            raise UserError(
                f"The text server at {endpoint(settings)} answered something that is not an OpenAI-compatible "
                f"stream ({data[:60]!r}). Check STUDIO_TEXT_ENDPOINT."
            ) from None
        if piece:
            pieces += 1
            facts["tokens_counted"] = pieces
            yield piece, facts
    yield "", facts
