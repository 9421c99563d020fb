"""Seconds from process start to the UI answering HTTP 200: the studio versus a bare one-textbox Gradio app.

    python bench/startup.py [--runs 3]

Both are started the same way, alternately, in one run; prints each run, the medians and their ratio
(goal: ratio <= 1.2). Nothing here leaves the machine.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = """
import gradio as gr
with gr.Blocks() as demo:
    gr.Textbox()
demo.launch(server_name="127.0.0.1", server_port={port})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_200(cmd: list[str], port: int, env: dict, timeout: float = 120) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(f"{cmd} did not answer within {timeout} s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    env["STUDIO_OUTPUT_DIR"] = tempfile.mkdtemp(prefix="bench-startup-")
    bare_file = Path(tempfile.mkdtemp()) / "bare_app.py"
    studio_times, bare_times = [], []
    for i in range(args.runs):
        port = free_port()
        bare_file.write_text(BARE_APP.format(port=port))
        bare_times.append(time_to_200([sys.executable, str(bare_file)], port, env))
        port = free_port()
        studio_times.append(time_to_200([sys.executable, "studio.py", "--port", str(port)], port, env))
        print(f"run {i + 1}: bare gradio {bare_times[-1]:.2f} s, studio {studio_times[-1]:.2f} s")
    bare, studio = statistics.median(bare_times), statistics.median(studio_times)
    print(f"median: bare gradio {bare:.2f} s, studio {studio:.2f} s, ratio {studio / bare:.2f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
