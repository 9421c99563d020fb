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
