"""What a visitor can do with raw HTTP: forge the state a request carries, call private events directly, send
oversized and malformed values to every parameter of every event. Each attack gets a quick answer (a sentence or a
refusal, never a crash of ours), the server's memory stays bounded, other visitors are still served, and no file of
one visitor is ever reachable from another."""

import base64
import itertools
import json
import re
import struct
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from faces_helpers import ASTRONAUT, HOPPER
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers import connect, running_studio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.history import KEY_FILE, seals_for

CRASH = "Something went wrong on the server"  # the studio's words for an exception its checks let through
QUICK_S = 15  # the slowest answer any attack may get (the usual one takes milliseconds)


def bomb_png(width: int = 12000, height: int = 12000) -> bytes:
    """A valid 1-bit PNG of width x height pixels: about 18 KB that decode to 0.4 GB of RGB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\0" * ((width + 7) // 8 + 1) * height, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


BOMB_URL = "data:image/png;base64," + base64.b64encode(bomb_png()).decode()


def file_data(**fields) -> dict:
    return {**fields, "meta": {"_type": "gradio.FileData"}}


# Per kind of component: eight hostile values, one per attack round (oversized, wrong type, forged paths, bombs).
JUNK = {
    "text": ["x" * 200_000, None, 12, ["a"], {"a": 1}, "\0\ud800", "", "y" * 4001],
    "number": ["x", -1e308, 1e308, "nan", None, [1], 2**70, {"a": 1}],
    "choice": ["nope", None, 7, ["a"] * 1000, {"a": 1}, "", [None], 1.5],
    "bool": ["yes", None, 2, [], {"a": 1}, "false", 1, True],
    "file": [
        None,
        "/etc/passwd",
        file_data(path="/etc/passwd"),
        file_data(url=BOMB_URL, path=None),
        5,
        {"path": None},
        [file_data(path="/etc/passwd")],
        {"a": 1},
    ],
    "chat": [
        [{"role": "user", "content": ""}] * 4000,
        "x",
        [[[[]]]],
        None,
        [{"role": "x"}] * 10,
        [1, 2],
        {"a": 1},
        [{"role": "user", "content": [[["deep"]]]}],
    ],
    "gallery": [
        [{"image": file_data(path="/etc/passwd")}],
        "x",
        None,
        [None],
        [[1, 2]],
        {"a": 1},
        [{"image": None}],
        3,
    ],
    "editor": [
        {"background": file_data(url=BOMB_URL, path=None), "layers": [], "composite": None},
        None,
        "x",
        {"layers": "x"},
        1,
        [],
        {"background": 3},
        {"composite": file_data(url=BOMB_URL, path=None)},
    ],
    "any": ["x", None, 10**30, [[[[]]]], {"a": 1}, -1, "", [None] * 1000],
}
KIND = {
    "textbox": "text",
    "slider": "number",
    "number": "number",
    "dropdown": "choice",
    "radio": "choice",
    "checkboxgroup": "choice",
    "checkbox": "bool",
    "image": "file",
    "file": "file",
    "video": "file",
    "audio": "file",
    "chatbot": "chat",
    "gallery": "gallery",
    "imageeditor": "editor",
    "sketchpad": "editor",
}


class Raw:
    """A visitor with raw HTTP: any event by its index, any data, any session."""

    def __init__(self, url: str) -> None:
        self.url = url
        config = json.load(urllib.request.urlopen(url + "config", timeout=30))
        self.kinds = {c["id"]: c["type"] for c in config["components"]}
        self.events = config["dependencies"]

    def event(self, api_name: str) -> dict:
        (found,) = [e for e in self.events if e.get("api_name") == api_name]
        return found

    def post(self, event: dict, data: list, session: str = "raw-visitor") -> tuple[float, int, dict]:
        """(seconds, HTTP status, the answer as JSON) of one direct call of `event`."""
        body = json.dumps({"fn_index": event["id"], "data": data, "session_hash": session}).encode()
        request = urllib.request.Request(
            self.url + "gradio_api/run/predict", data=body, headers={"Content-Type": "application/json"}
        )
        start = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        try:
            answer = json.loads(text)
        except json.JSONDecodeError:
            answer = {"error": text[:300].decode(errors="replace")}
        return time.monotonic() - start, status, answer if isinstance(answer, dict) else {"data": answer}


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except urllib.error.URLError:  # nothing listening (yet)
        return 0


class PeakMemory:
    """The process's largest resident size while the block runs, above its size at the start or at the last
    reset() (the studio serves from this process)."""

    def __enter__(self):
        self.process, self._done = psutil.Process(), threading.Event()
        self.reset()

        def sample():
            while not self._done.wait(0.01):
                self.peak = max(self.peak, self.process.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

    def reset(self) -> None:
        self.base = self.peak = self.process.memory_info().rss

    @property
    def grew_mb(self) -> float:
        return (self.peak - self.base) / 1e6


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_dir, tiny_text, tiny_image, tiny_music):
    out = tmp_path_factory.mktemp("attacked") / "outputs"
    with running_studio(tiny_dir, out, concurrency=2, max_video_seconds=5) as (url, demo, settings):
        yield {"url": url, "settings": settings, "raw": Raw(url)}


@pytest.fixture(scope="module")
def victim(studio):
    """Another visitor's results: a picture (with its recipe) and a face swap (which writes the audit log)."""
    client = connect(studio["url"])
    client.predict(prompt="the victim's picture", seed=5, api_name="/generate_image")
    client.predict(
        source_image=handle_file(str(HOPPER)), target_image=handle_file(str(ASTRONAUT)), consent=True,
        api_name="/swap_face",
    )  # fmt: skip
    out = studio["settings"].output_dir.resolve()
    (picture,) = out.rglob("*the-victim*.png")
    swap = next(p for p in out.rglob("faceswap/**/*.png"))
    audit = out / "faceswap" / "audit.jsonl"
    assert audit.exists()
    return {"picture": picture, "recipe": picture.with_suffix(".json"), "swap": swap, "audit": audit}


def restore(raw: Raw, kept: list, session: str) -> tuple[list, list]:
    """What the page load's private event makes of a History the browser hands back: (table rows, files)."""
    _, status, answer = raw.post(raw.event("restore_history"), [kept], session)
    assert status == 200, answer
    _, table, files = answer["data"]
    return table["data"], [f["path"] if isinstance(f, dict) else f for f in files or []]


def test_a_forged_history_reaches_no_file_of_another_visitor(studio, victim):
    raw, settings = studio["raw"], studio["settings"]
    key = settings.cache_dir / KEY_FILE
    theirs = [str(victim[k]) for k in ("picture", "recipe", "swap", "audit")] + [str(key)]
    fields = {"time": "12:00:00", "tab": "Image", "summary": "theirs", "preview": str(victim["picture"])}
    forged = [
        {**fields, "files": theirs},  # no seal
        {**fields, "files": theirs, "seal": "0" * 64},  # a made-up seal
        {**fields, "files": theirs, "seal": seals_for(settings).seal([{**fields, "files": []}])[0]["seal"]},  # another
    ]
    for n, entry in enumerate(forged):
        table, files = restore(raw, [entry], f"attacker-{n}")
        assert table == [] and files == []
        _, status, answer = raw.post(raw.event("zip"), [None], f"attacker-{n}")  # the History zip of that session
        assert status != 200 and "history is empty" in str(answer.get("error")), answer
    # The same check lets a History the studio sealed come back whole (so the refusals above are the seal's doing).
    sealed = seals_for(settings).seal([{**fields, "files": theirs}])
    table, files = restore(raw, sealed, "the-victim-after-a-reload")
    assert table == [["12:00:00", "Image", "theirs"]]
    assert len(files) == 3  # the picture, its recipe, the swap; never the audit log or the key


def test_hand_offs_take_no_path_the_visitor_did_not_upload(studio, victim):
    """The gallery a hand-off reads comes from the page, so a forged one may name any file: Gradio refuses every
    path that is not an upload of this server, and the studio returns nothing."""
    raw = studio["raw"]
    gallery = [{"image": file_data(path=str(victim["picture"])), "caption": None}]
    hand_offs = [e for e in raw.events if "gallery" in [raw.kinds[i] for i in e["inputs"]]]
    assert len(hand_offs) >= 4  # use as input, as control picture, in the face swap; the gallery's own select
    for event in hand_offs:
        data = [gallery if raw.kinds[i] == "gallery" else None for i in event["inputs"]]
        _, status, answer = raw.post(event, data, "hand-off-attacker")
        assert status != 200 and "data" not in answer, (event["api_name"], answer)


def test_saved_files_the_audit_log_and_keys_are_never_served(studio, victim):
    url, cache = studio["url"], studio["settings"].cache_dir
    secrets = [cache / KEY_FILE, cache / "c2pa" / "signer.key", victim["audit"], victim["picture"]]
    for path in secrets:
        assert path.exists()
        assert status_of(f"{url}gradio_api/file={path}") in (403, 404), path


def check_answer(name: str, round_: int, seconds: float, status: int, answer: dict) -> None:
    """A quick refusal (in words, or Gradio's own refusal of a malformed payload), or values that happened to be
    valid doing their work; never a crash of ours."""
    said = str(answer.get("error") or "")
    assert seconds < (QUICK_S if status != 200 else 90), f"{name} (round {round_}) took {seconds:.1f} s"
    assert CRASH not in said and "Traceback" not in said, f"{name} (round {round_}): {said}"
    assert status in (200, 422, 500), f"{name} (round {round_}): HTTP {status}"


def test_every_event_answers_junk_quickly_in_bounded_memory_and_others_are_served(studio, victim):
    """Every event of the page (private or not, 100+) gets eight rounds of hostile values, one per parameter, four
    events at a time (as several visitors would send them); meanwhile another visitor chats and gets every answer.
    The memory check is per group of four: any one decompression bomb among them grows the server by 400+ MB."""
    raw, url = studio["raw"], studio["url"]
    other = connect(url)
    answers, stop = [], threading.Event()

    def another_visitor():
        while not stop.is_set():
            answers.append(other.predict(prompt="still there?", max_new_tokens=2, api_name="/generate_text"))

    visitor, most = threading.Thread(target=another_visitor), (0.0, "")
    with PeakMemory() as memory:
        visitor.start()
        try:

            def attack(event, round_):
                data = [JUNK[KIND.get(raw.kinds[i], "any")][round_] for i in event["inputs"]]
                check_answer(event.get("api_name"), round_, *raw.post(event, data, f"junk-{event['id']}-{round_}"))

            with ThreadPoolExecutor(4) as pool:
                for round_ in range(8):
                    taking = [e for e in raw.events if e["inputs"] or round_ == 0]  # no inputs: one round says all
                    for at in range(0, len(taking), 4):
                        group = taking[at : at + 4]
                        memory.reset()
                        list(pool.map(attack, group, [round_] * len(group)))  # re-raises the first failure
                        names = ", ".join(str(e.get("api_name")) for e in group)
                        most = max(most, (memory.grew_mb, f"{names} (round {round_})"))
        finally:
            stop.set()
            visitor.join()
    assert most[0] < 150, f"the server grew by {most[0]:.0f} MB while answering {most[1]}"  # a bomb: 400+ MB
    assert answers and all(isinstance(a, str) for a in answers)
    assert victim["picture"].exists() and victim["audit"].exists()


def test_bombs_and_floods_are_refused_from_their_header_in_bounded_memory(studio, tmp_path):
    client = connect(studio["url"])
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    from test_bad_input_matrix import huge_png

    huge_png(tmp_path / "huge.png")
    renamed = tmp_path / "archive.png"
    with zipfile.ZipFile(renamed, "w") as z:
        z.writestr("a.txt", "not a video")
    cases = [
        ({"source_image": handle_file(str(HOPPER)), "target_image": handle_file(str(bomb)), "consent": True},
         "/swap_face", "target image (target_image) is 12000x12000 pixels"),
        ({"control_image": handle_file(str(bomb)), "control_type": "Canny"}, "/control_map", "is 12000x12000"),
        ({"image": handle_file(str(bomb)), "prompt": "x"}, "/image_to_image", "(image) is 12000x12000"),
        ({"file": handle_file(str(tmp_path / "huge.png"))}, "/restore_image_settings", "PNG is 20000x20000 pixels"),
        ({"source_image": handle_file(str(HOPPER)), "target_video": handle_file(str(renamed)), "consent": True},
         "/swap_face_video", "not a video the studio can read"),
        ({"prompt": "a", "x_type": "Seed", "x_values": "9007199254740992-9007199254740993"}, "/xyz_plot",
         "must be between 0 and 4294967295"),
        ({"prompt": "a", "x_type": "Seed", "x_values": "1-100," * 10_000}, "/xyz_plot", "the limit is 2,000"),
    ]  # fmt: skip
    with PeakMemory() as memory:
        for kwargs, api_name, sentence in cases:
            memory.reset()
            start = time.monotonic()
            with pytest.raises(AppError, match=re.escape(sentence)):
                client.predict(**kwargs, api_name=api_name)
            assert time.monotonic() - start < 5, api_name
            assert memory.grew_mb < 100, f"{api_name}: the server grew by {memory.grew_mb:.0f} MB"  # a bomb: 400+
    start = time.monotonic()  # a chat of 4,000 empty turns is fitted to the context in a few tokenisations
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": ""} for i in range(4000)]
    assert isinstance(client.predict(prompt="hi", history=history, max_new_tokens=2, api_name="/generate_text"), str)
    assert time.monotonic() - start < 10


def test_request_bodies_past_the_limit_are_refused_unread(studio):
    """Gradio reads a request's whole body before any check of the studio's: 100 MB sent to an event, declared or
    in chunks with no length, or as one upload, is refused with 413 and a sentence before it is read (or as soon as
    the chunks pass the limit), in bounded memory, and the studio serves the next visitor."""
    import httpx

    url, event = studio["url"], studio["raw"].event("generate_text")
    head, block, blocks = f'{{"fn_index": {event["id"]}, "data": ["'.encode(), b"a" * (1 << 20), 100

    def chunks():  # 100 MB made as it is sent, so that the memory measured is the server's (it serves from here)
        yield head
        yield from itertools.repeat(block, blocks)

    class Zeros:  # a 100 MB file, read as it is sent
        def __init__(self):
            self.left = blocks * len(block)

        def read(self, size=-1):
            size = self.left if size is None or size < 0 else min(size, self.left)
            self.left -= size
            return bytes(size)

    declared = {"Content-Length": str(len(head) + blocks * len(block)), "Content-Type": "application/json"}
    with PeakMemory() as memory:
        answers = [
            httpx.post(url + "gradio_api/run/predict", content=chunks(), headers=declared, timeout=60),
            httpx.post(url + "gradio_api/queue/join", content=chunks(), timeout=60),
            httpx.post(url + "gradio_api/upload", files={"files": ("big.png", Zeros())}, timeout=60),
        ]
    assert [answer.status_code for answer in answers] == [413, 413, 413], [a.text[:200] for a in answers]
    for answer in answers[:2]:
        assert "larger than the 16 MB the studio takes" in answer.json()["detail"]
    assert "exceeded maximum allowed size of 52428800 bytes" in answers[2].text  # Gradio's own, as the file streams
    assert memory.grew_mb < 60, f"the server grew by {memory.grew_mb:.0f} MB"
    assert isinstance(connect(url).predict(prompt="hi", max_new_tokens=2, api_name="/generate_text"), str)


PUBLIC = [  # every public endpoint but GAN training (whose valid values may ask for minutes of work)
    "generate_image", "image_to_image", "inpaint", "outpaint", "upscale", "xyz_plot", "control_map",
    "restore_image_settings", "generate_text", "generate_music", "continue_music", "swap_face", "swap_face_video",
    "gan_walk", "verify", "expand_image_prompt", "live_image", "keep_image", "speak",
    "narrate", "clone_voice", "generate_video", "add_soundtrack", "train_lora", "caption_images",
]  # fmt: skip


@pytest.mark.parametrize("api_name", PUBLIC)
def test_public_endpoints_answer_any_values_with_words(studio, api_name):
    """Property: whatever values a client sends to a public endpoint, the answer is quick and never a crash."""
    raw = studio["raw"]
    event = raw.event(api_name)
    values = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=300), st.lists(st.integers(), max_size=5),
        st.dictionaries(st.text(max_size=5), st.integers()),
        st.builds(lambda p: file_data(path=p), st.sampled_from(["/etc/passwd", "../../x", "", "/proc/self/environ"])),
    )  # fmt: skip

    @settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.lists(values, min_size=len(event["inputs"]), max_size=len(event["inputs"])))
    def attack(data):
        check_answer(api_name, -1, *raw.post(event, data, "hypothesis"))

    attack()


def test_admin_actions_are_the_operators_on_a_shared_studio(tmp_path, tiny_dir, tiny_text):
    from core.settings import Settings, from_env

    assert Settings().is_operator(None) and not Settings(host="0.0.0.0").is_operator(None)
    assert not Settings(share=True).is_operator(None)
    assert Settings(host="0.0.0.0", auth="t:p,s:q", admins="t").is_operator("t")
    assert not Settings(auth="t:p,s:q", admins="t").is_operator("s")
    with pytest.raises(ValueError, match="STUDIO_ADMINS must name logins of STUDIO_AUTH"):
        from_env({"STUDIO_AUTH": "t:p", "STUDIO_ADMINS": "someone"})
    with running_studio(tiny_dir, tmp_path / "out", auth="teacher:s3cret,student:pw", admins="teacher") as (url, *_):
        student = Client(url, auth=("student", "pw"), analytics_enabled=False, verbose=False)
        with pytest.raises(AppError, match="only its operator may do it"):
            student.predict(api_name="/unload_models")
        with pytest.raises(AppError, match="only its operator may do it"):
            student.predict(accept_licence=True, api_name="/get_neural_engine")
        teacher = Client(url, auth=("teacher", "s3cret"), analytics_enabled=False, verbose=False)
        _table, note = teacher.predict(api_name="/unload_models")
        assert note.startswith("Unloaded 0 model(s).")


def all_at_once(url: str, calls: list[tuple[str, dict]]) -> dict[str, str]:
    """Each (api_name, arguments) from a client of its own, all started together; "ok" or the error, per endpoint."""
    results = {}

    def call(api_name: str, kwargs: dict) -> None:
        kwargs = {k: handle_file(v) if k.endswith(("image", "file")) else v for k, v in kwargs.items()}
        kwargs = {k: [handle_file(p) for p in v] if k == "images" else v for k, v in kwargs.items()}
        try:
            connect(url).predict(**kwargs, api_name=api_name)
            results[api_name] = "ok"
        except Exception as exc:
            results[api_name] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=call, args=c) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    return results


def test_first_requests_of_every_tab_at_once_on_a_fresh_studio(tmp_path, tiny_dir):
    """A fresh server (its own process, nothing imported yet) gets the first request of every tab at the same
    moment, twice over: every one is answered (the lazy imports of transformers and diffusers once raced)."""
    import os
    import subprocess
    import sys

    from helpers import free_port

    root = Path(__file__).resolve().parent.parent
    calls = [
        ("/generate_text", {"prompt": "hi", "max_new_tokens": 2}),
        ("/generate_image", {"prompt": "a fox", "seed": 1}),
        ("/generate_music", {"prompt": "piano", "duration": 1}),
        ("/speak", {"text": "Hello there.", "voice": "tiny:vits"}),
        ("/generate_video", {"prompt": "a fox", "num_frames": 5, "width": 32, "height": 32, "steps": 1}),
        ("/swap_face", {"source_image": str(HOPPER), "target_image": str(ASTRONAUT), "consent": True}),
        ("/verify", {"file": str(ASTRONAUT)}),
        ("/caption_images", {"images": [str(ASTRONAUT)]}),
        ("/train_gan", {"epochs": 1, "seed": 0}),
        ("/control_map", {"control_image": str(ASTRONAUT), "control_type": "Canny"}),
        ("/expand_image_prompt", {"text": "a fox"}),
    ]
    for attempt in range(2):
        port, log = free_port(), tmp_path / f"server-{attempt}.log"
        env = {**os.environ, "STUDIO_CACHE_DIR": str(tiny_dir.parent), "STUDIO_OUTPUT_DIR": str(tmp_path / "out")}
        env["STUDIO_CONCURRENCY"] = "4"
        with open(log, "w") as sink:
            server = subprocess.Popen(
                [sys.executable, "studio.py", "--tiny", "--port", str(port)], cwd=root, env=env, stdout=sink,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + 120
            while status_of(url + "config") != 200:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
            results = all_at_once(url, calls)
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert results == {api_name: "ok" for api_name, _ in calls}, results
        assert "ImportError" not in log.read_text()
