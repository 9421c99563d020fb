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
    """(process, gradio_client.Client) for `python studio.py` with `env` added; terminate the process after."""
    from gradio_client import Client

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "studio.py", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proc.studio_port = port
    deadline = time.monotonic() + timeout
    while True:
        try:
            return proc, Client(f"http://127.0.0.1:{port}/", analytics_enabled=False, verbose=False)
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.terminate()
                raise RuntimeError("the studio did not start") from None
            time.sleep(0.1)
