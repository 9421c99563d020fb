"""Hardened defaults: file routes serve only the studio's own files, logins, upload limits, Verify over the API."""

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from faces_helpers import ASTRONAUT
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers import connect, running_studio

from core.settings import Settings


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../../../../etc/passwd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/proc/self/environ"],
)
def test_file_routes_refuse_paths_outside_the_studio(server, path):
    assert status(f"{server['url']}gradio_api/file={path}") in (403, 404)


def test_results_reach_their_user_but_are_not_served_by_their_path(server, client, tiny_dir):
    """A result goes to the page (and API client) through Gradio's cache under an unguessable name; the saved file
    itself, like a model's files, cannot be fetched by its path on the server."""
    assert status(f"{server['url']}gradio_api/file={tiny_dir / 'qwen2' / 'config.json'}") in (403, 404)
    outputs = server["settings"].output_dir.resolve()
    escape = f"{outputs}/../../../../etc/passwd"
    assert status(f"{server['url']}gradio_api/file={escape}") in (403, 404)
    _preview, gallery, *_ = client.predict(prompt="served by the cache", seed=1, api_name="/generate_image")
    item = gallery[0]["image"]
    received = Path(item if isinstance(item, str) else item["path"]).read_bytes()
    (saved,) = [p for p in outputs.rglob("*served-by-the-cache*.png")]
    assert saved.read_bytes() == received  # the user got exactly what was saved, watermark and credentials included
    assert status(f"{server['url']}gradio_api/file={saved}") in (403, 404)


def test_only_an_output_folder_outside_the_working_and_temp_folders_is_served_by_path(tmp_path):
    from app.server import served_paths

    assert not any("outputs" in p for p in served_paths(Settings(output_dir=Path("outputs"))))  # under the cwd
    assert not any("out" in Path(p).name for p in served_paths(Settings(output_dir=tmp_path / "out")))  # temp
    assert "/srv/studio-outputs" in served_paths(Settings(output_dir=Path("/srv/studio-outputs")))  # a volume


def test_the_face_swap_audit_log_is_never_served(server):
    """The audit log sits in the output folder (served by path when that lies outside the working and temp
    folders), but it is the operator's record: when and with which inputs (hashes) swaps were made. Nobody gets it
    over HTTP, even knowing its path."""
    log = server["settings"].output_dir.resolve() / "faceswap" / "audit.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    assert status(f"{server['url']}gradio_api/file={log}") in (403, 404)


def test_verify_over_the_api(client):
    summary, report = client.predict(file=handle_file(str(ASTRONAUT)), api_name="/verify")
    assert summary.startswith("**No sign that this file came from the studio**") and report["kind"] == "image"
    _p, gallery, *_ = client.predict(prompt="verify me", width=256, height=256, seed=3, api_name="/generate_image")
    made = gallery[0]["image"] if isinstance(gallery[0]["image"], str) else gallery[0]["image"]["path"]
    summary, report = client.predict(file=handle_file(made), api_name="/verify")
    assert report["watermark"]["present"] and report["content_credentials"]["state"] == "Trusted"
    with pytest.raises(AppError, match="not a file the Verify tab can read"):
        client.predict(file=handle_file(__file__), api_name="/verify")


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory, tiny_dir):
    out = tmp_path_factory.mktemp("locked") / "outputs"
    with running_studio(tiny_dir, out, auth="teacher:s3cret,student:pw", max_upload_mb=0.05) as (url, _, _):
        yield url


def test_a_login_is_required_when_auth_is_set(locked_server):
    with pytest.raises(Exception, match="(?i)login|auth|401|403|credentials"):
        connect(locked_server).predict(prompt="hi", api_name="/generate_text")
    client = Client(locked_server, auth=("teacher", "s3cret"), analytics_enabled=False, verbose=False)
    assert isinstance(client.predict(prompt="hi", max_new_tokens=2, api_name="/generate_text"), str)


def test_uploads_over_the_limit_are_refused(locked_server, tmp_path):
    client = Client(locked_server, auth=("student", "pw"), analytics_enabled=False, verbose=False)
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200_000)
    with pytest.raises(Exception, match="(?i)size|large|413"):
        client.predict(file=handle_file(str(big)), api_name="/verify")


def test_bad_auth_setting_is_a_sentence():
    from core.settings import from_env

    with pytest.raises(ValueError, match="user:password pairs"):
        from_env({"STUDIO_AUTH": "nopassword"})
    with pytest.raises(ValueError, match="both STUDIO_C2PA_CERT and STUDIO_C2PA_KEY"):
        from_env({"STUDIO_C2PA_CERT": "/x.pem"})


def test_a_forged_history_never_reaches_other_files_of_the_server(page, server):
    """The browser keeps the History and hands it back on load. An entry it forged (here, rewritten in flight)
    naming a key of the server or a result it never got is dropped whole, even when it copies a real entry's seal;
    only entries the studio sealed for it come back, and only those reach the History zip."""
    import io
    import json
    import zipfile

    from playwright.sync_api import expect

    from core.history import KEY_FILE, seals_for

    settings = server["settings"]
    secret = settings.cache_dir / KEY_FILE  # a real secret of this server
    assert secret.exists()
    folder = settings.output_dir / "image" / "forged-test"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kept.png").write_bytes(b"an output of the studio, made for this browser")
    (folder / "theirs.png").write_bytes(b"an output of the studio, made for someone else")
    fields = {"time": "00:00:00", "tab": "Image", "summary": "a sealed entry", "preview": None}
    (sealed,) = seals_for(settings).seal([{**fields, "files": [str(folder / "kept.png")]}])
    forged = [
        {**fields, "summary": "a forged entry", "files": [str(secret), str(folder / "theirs.png")]},
        {**sealed, "files": [str(folder / "kept.png"), str(folder / "theirs.png")]},  # a real seal, other files
        sealed,
    ]

    def forge(route):
        body = json.loads(route.request.post_data or "{}")
        if body.get("data") == [[]]:  # the page load handing back the history it keeps
            body["data"] = [forged]
            return route.continue_(post_data=json.dumps(body))
        return route.continue_()

    page.route("**/gradio_api/run/predict", forge)
    page.goto(server["url"])
    page.locator("#history-panel").get_by_text("History").first.click()
    table = page.locator("#history-table")
    expect(table).to_contain_text("a sealed entry", timeout=10_000)
    expect(table).not_to_contain_text("a forged entry")
    files = page.locator("#history-files")
    expect(files).to_contain_text("kept")
    expect(files).not_to_contain_text("theirs")
    expect(files).not_to_contain_text("history")
    page.locator("#history-zip").click()
    link = page.locator("#history-zip-file a").first
    expect(link).to_be_visible(timeout=20_000)
    with zipfile.ZipFile(io.BytesIO(page.request.get(link.get_attribute("href")).body())) as z:
        names = z.namelist()
        listed = json.loads(z.read("history.json"))
    assert sorted(names) == ["history.json", "image/kept.png"]
    assert [e["summary"] for e in listed] == ["a sealed entry"]


def test_a_history_from_the_browser_keeps_only_sealed_entries_and_studio_files(tmp_path):
    from core.history import Seals

    out = tmp_path / "outputs"
    made = out / "music" / "2026-01-01" / "song.wav"
    made.parent.mkdir(parents=True)
    made.write_bytes(b"RIFF")
    audit = out / "faceswap" / "audit.jsonl"
    audit.parent.mkdir(parents=True)
    audit.write_text("{}")
    link = out / "link-to-passwd"
    link.symlink_to("/etc/passwd")
    seals = Seals(b"k" * 32, [out], blocked=[audit])
    files = [str(made), str(link), str(audit)]
    entry = {"time": "1", "tab": "Music", "summary": "ok", "files": files, "preview": None}
    (sealed,) = seals.seal([entry])
    kept = seals.check(
        [
            sealed,
            {**sealed, "summary": "changed"},  # any change breaks the seal
            {**entry, "seal": "0" * 64},
            {**entry, "files": [str(out / ".." / ".." / "secret"), 42, None, "\0"], "seal": sealed["seal"]},
            "not an entry",
            {"summary": "x" * 10_000, "files": "not a list"},
        ]
    )
    assert [e["files"] for e in kept] == [[str(made.resolve())]]  # the link leaves the folder; the log is blocked
    assert Seals(b"another key".ljust(32), [out]).check([sealed]) == []  # another studio's seal
    assert seals.check("not a list") == [] and seals.check(None) == [] and seals.check([sealed] * 10**6)
