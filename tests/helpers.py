"""Plain helpers the tests share (conftest.py holds only fixtures and the tiers): a studio server on a free port,
a client for it, a neighbour drawing random numbers, one picture made in a browser page."""

import contextlib
import socket
from pathlib import Path

from core.settings import Settings


def connect(url: str):
    """A gradio_client for the studio at `url`, quiet and sending nothing anywhere else. Its first requests (the
    page's config and API description) have httpx's 5 s each: on a busy machine they are asked again, twice."""
    import httpx
    from gradio_client import Client

    for attempt in range(3):
        try:
            return Client(url, analytics_enabled=False, verbose=False)
        except httpx.TimeoutException:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_studio(tiny_dir: Path, output_dir: Path, warm: bool = False, **overrides):
    """A real studio server on a free port in --tiny mode (finding the tiny models this session built through the
    cache folder --tiny uses); yields (url, demo, settings) and closes it afterwards."""
    from app.server import build_app, launch
    from core.settings import classroom_limits

    settings = classroom_limits(
        Settings(
            host="127.0.0.1",
            port=free_port(),
            tiny=True,
            output_dir=output_dir,
            cache_dir=tiny_dir.parent,
            offline=True,
            device="cpu",
            **overrides,
        )
    )
    demo = build_app(settings)
    launch(demo, settings, block=False, warm=warm, quiet=True)
    try:
        yield f"http://127.0.0.1:{settings.port}/", demo, settings
    finally:
        demo.close()


@contextlib.contextmanager
def drawing_neighbour():
    """Another thread drawing from torch's global random generator all along, as a concurrent job would."""
    import threading

    import torch

    done = threading.Event()

    def draw():
        while not done.is_set():
            torch.rand(64)

    neighbour = threading.Thread(target=draw)
    neighbour.start()
    try:
        yield
    finally:
        done.set()
        neighbour.join()


def picture_made_in_page(page, url: str, prompt: str) -> None:
    """Open the studio in `page` and make one picture on the Image tab (a browser test's first step)."""
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-prompt textarea").fill(prompt)
    page.locator("#image-generate").click()
    expect(page.locator("#image-status")).to_contain_text("Done: 1 image(s)", timeout=30_000)


def lora_trained_in_page(page, pictures: list[str], name: str, steps: int) -> None:
    """On the open Train tab: the pictures uploaded (a row each in the captions table), then a LoRA called `name`
    with the trigger word "sks disc" trained for `steps` steps, until the status says it is done."""
    from playwright.sync_api import expect

    page.locator("#train-images input[type=file]").set_input_files(pictures)
    expect(page.locator("#train-captions")).to_contain_text(Path(pictures[-1]).name, timeout=15_000)
    page.locator("#train-name textarea, #train-name input").first.fill(name)
    page.locator("#train-trigger textarea, #train-trigger input").first.fill("sks disc")
    box = page.locator("#train-steps input[type=number]")
    box.fill(str(steps))
    box.press("Enter")
    page.locator("#train-start").click()
    expect(page.locator("#train-status")).to_contain_text(f"Done: {steps} steps", timeout=60_000)


class PageSession:
    """One browser session's requests, sent as the page sends them: each joins the queue in turn (join returns once
    the request is queued, so the order is theirs), and the session's event stream then brings every result."""

    def __init__(self, url: str) -> None:
        import uuid

        import httpx

        self.http = httpx.Client(base_url=url, timeout=300)
        self.config = self.http.get("/config").json()
        self.kinds = {c["id"]: c["type"] for c in self.config["components"]}
        self.named = self.http.get("/gradio_api/info").json()["named_endpoints"]
        self.session = uuid.uuid4().hex[:11]

    def join(self, api_name: str, **params) -> str:
        """Queue one request to `api_name` with `params` (the rest at their defaults); returns its event id."""
        dependency = next(d for d in self.config["dependencies"] if d.get("api_name") == api_name.lstrip("/"))
        defaults = [(p["parameter_name"], p.get("parameter_default")) for p in self.named[api_name]["parameters"]]
        values = iter(params.get(name, default) for name, default in defaults)
        data = [None if self.kinds[i] == "state" else next(values) for i in dependency["inputs"]]
        body = {"data": data, "fn_index": dependency["id"], "session_hash": self.session, "trigger_id": None}
        answer = self.http.post("/gradio_api/queue/join", json=body)
        answer.raise_for_status()
        return answer.json()["event_id"]

    def results(self, count: int) -> dict[str, dict]:
        """{event id: its "process_completed" message} for the next `count` requests of this session to finish."""
        import json

        done: dict[str, dict] = {}
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed":
                    done[message["event_id"]] = message
                    if len(done) == count:
                        break
        return done
