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
    """Calls an API endpoint the way the studio's own page does: one session for all calls, the queue's join and its
    event stream read as events arrive (no polling), then the first picture fetched as the browser fetches it.

    gradio_client polls its message queue every 50 ms and so adds 0.1-0.3 s of its own to each call; this client
    measures what a user in the browser waits for."""

    def __init__(self, port: int, api_name: str) -> None:
        import uuid

        import httpx

        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
        config = self.http.get("/config").json()
        dependency = next(d for d in config["dependencies"] if d.get("api_name") == api_name.lstrip("/"))
        self.fn_index, self.inputs = dependency["id"], dependency["inputs"]
        self.kinds = {c["id"]: c["type"] for c in config["components"]}
        info = self.http.get("/gradio_api/info").json()["named_endpoints"][api_name]["parameters"]
        self.parameters = [(p["parameter_name"], p.get("parameter_default")) for p in info]
        self.session = uuid.uuid4().hex[:11]

    def call(self, **params) -> tuple[list, bytes]:
        """(the outputs, the first picture's bytes); raises with the page's message on an error."""
        import json

        values = iter(params.get(name, default) for name, default in self.parameters)
        data = [None if self.kinds[i] == "state" else next(values) for i in self.inputs]
        body = {"data": data, "fn_index": self.fn_index, "session_hash": self.session, "trigger_id": None}
        self.http.post("/gradio_api/queue/join", json=body).raise_for_status()
        output = None
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed":
                    output = message.get("output") or {}
                    break
        if not output or "data" not in output:
            raise RuntimeError(f"the call failed: {output}")
        pictures = [o for o in output["data"] if isinstance(o, list) and o and isinstance(o[0], dict)]
        first = pictures[0][0]["image"]["url"] if pictures else None
        return output["data"], self.http.get(first).content if first else b""
