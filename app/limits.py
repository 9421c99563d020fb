"""Request bodies bounded before the app reads them. Gradio and FastAPI read a request's whole body (a JSON event, a
login form, an MCP call) into memory before any check of the studio's runs, so one visitor's 2 GB body could take
the server's memory from everyone. BodyLimit, an ASGI middleware in front of Gradio's app, refuses a body past its
limit with 413 and a sentence: from its Content-Length before a byte is read, or, for a body sent in chunks with no
length, as soon as the bytes received pass the limit."""

from __future__ import annotations

import json
from typing import Any

MB = 1024 * 1024
EVENT_LIMIT_MB = 16  # an event's JSON (a chat of 1 M characters is at most about 6 MB escaped); logins; the API


class _TooLarge(Exception):
    pass


def limit_for(path: str, upload_mb: float) -> int:
    """The most bytes a request to `path` may send: a file upload (one file per request: Gradio's own limit,
    STUDIO_MAX_UPLOAD_MB, counts the file) or an MCP call (which may carry a file inline, base64) its file's size and
    room for the envelope; anything else EVENT_LIMIT_MB."""
    if path.rstrip("/").endswith("/upload") or "/mcp" in path:
        return int(upload_mb * MB * 4 / 3) + MB
    return EVENT_LIMIT_MB * MB


def sentence(limit: int, upload_mb: float) -> str:
    return (
        f"The request is larger than the {limit / MB:.0f} MB the studio takes (files: at most {upload_mb:g} MB each, "
        "STUDIO_MAX_UPLOAD_MB). Send a smaller file or less text."
    )


class BodyLimit:
    """ASGI middleware: a request body past limit_for(path) answers 413 with a sentence, unread."""

    def __init__(self, app: Any, upload_mb: float) -> None:
        self.app, self.upload_mb = app, upload_mb

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope.get("path", ""), self.upload_mb)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
            await self._refuse(send, limit)
            return
        received, started, refused = 0, False, False

        async def counted() -> dict:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started and not refused:  # answered here: the app may turn the error into its own 400
                        refused = True
                        await self._refuse(send, limit)
                    raise _TooLarge
            return message

        async def watched(message: dict) -> None:
            nonlocal started
            if refused:  # the app's own answer to the cut-off body: already answered
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            pass  # answered (or the answer had begun: the connection just ends)

    async def _refuse(self, send: Any, limit: int) -> None:
        text = sentence(limit, self.upload_mb)
        body = json.dumps({"detail": text, "error": text}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def middleware(upload_mb: float) -> Any:
    """BodyLimit as FastAPI takes it (Gradio's launch(app_kwargs={"middleware": [...]}))."""
    from starlette.middleware import Middleware

    return Middleware(BodyLimit, upload_mb=upload_mb)
