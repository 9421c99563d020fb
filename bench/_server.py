"""Starting the studio as its own server process for the benchmarks, as users run it."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_studio(env: dict[str, str], timeout: float = 120):
    """(process, gradio_client.Client) for `python studio.py` with `env` added; terminate the process after. The
    server's log goes to a file named on stderr (and as proc.studio_log), to read when a request failed."""
    import tempfile

    from gradio_client import Client

    port = free_port()
    log = Path(tempfile.gettempdir()) / f"studio-bench-{port}.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "studio.py", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    print(f"the studio's log: {log}", file=sys.stderr)
    proc.studio_port, proc.studio_log = port, log
    deadline = time.monotonic() + timeout
    while True:
        try:
            return proc, Client(f"http://127.0.0.1:{port}/", analytics_enabled=False, verbose=False)
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.terminate()
                raise RuntimeError(f"the studio did not start (its log: {log})") from None
            time.sleep(0.1)


class PageClient:
    """Calls an API endpoint the way the studio's own page does (tests/helpers.PageSession: one session for all
    calls, the queue's join and its event stream read as events arrive, no polling), then fetches the first picture
    as the browser does.

    gradio_client polls its message queue every 50 ms and so adds 0.1-0.3 s of its own to each call; this client
    measures what a user in the browser waits for."""

    def __init__(self, port: int, api_name: str) -> None:
        sys.path.insert(0, str(ROOT / "tests"))
        from helpers import PageSession

        self.page, self.api_name = PageSession(f"http://127.0.0.1:{port}"), api_name

    def call(self, **params) -> tuple[list, bytes]:
        """(the outputs, the first picture's bytes); raises with the page's message on an error."""
        self.page.join(self.api_name, **params)
        (done,) = self.page.results(1).values()
        output = done.get("output") or {}
        if "data" not in output:
            raise RuntimeError(f"the call failed: {output}")
        pictures = [o for o in output["data"] if isinstance(o, list) and o and isinstance(o[0], dict)]
        first = pictures[0][0]["image"]["url"] if pictures else None
        return output["data"], self.page.http.get(first).content if first else b""
