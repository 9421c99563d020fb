"""The studio as a tool for agents: STUDIO_MCP=1 serves every endpoint through Gradio's MCP server. An MCP client
(the `mcp` package) lists the tools and calls them over streamable HTTP, as an agent would."""

import asyncio
import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import running_studio

MAIN = ("generate_image", "image_to_image", "generate_text", "generate_music", "swap_face", "verify")


@pytest.fixture(scope="module")
def mcp_server(tiny_text, tiny_image, tiny_music, tiny_dir, tmp_path_factory):
    with running_studio(tiny_dir, tmp_path_factory.mktemp("mcp-outputs"), mcp=True) as (url, demo, settings):
        yield {"url": url + "gradio_api/mcp/", "demo": demo, "settings": settings}


def session_call(url: str, work):
    """Run `work(session)` (a coroutine function) in an MCP client session with the studio."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def main():
        async with streamablehttp_client(url) as (read, write, _), ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)

    with ThreadPoolExecutor(1) as thread:  # its own event loop: a browser test's may be running in this thread
        return thread.submit(asyncio.run, main()).result()


def test_every_endpoint_is_a_tool_named_and_described_as_the_endpoint(mcp_server):
    async def listing(session):
        return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in session_call(mcp_server["url"], listing)}
    api = mcp_server["demo"].get_api_info()["named_endpoints"]
    assert set(tools) == {name.lstrip("/") for name in api}  # the API's names, not the handlers' (generate, ...)
    for name in MAIN:
        assert name in tools
    for tool in tools.values():
        assert len(tool.description) > 40, tool.name  # a description of its own, not just Gradio's upload hint
    image = tools["generate_image"].inputSchema
    assert image["properties"]["prompt"]["type"] == "string"
    assert image["properties"]["steps"]["type"] == "number"
    swap = tools["swap_face"]
    assert "consent" in swap.description and swap.inputSchema["properties"]["consent"]["type"] == "boolean"
    assert {"source_image", "target_image"} <= set(swap.inputSchema["required"])  # the pictures have no default


@pytest.mark.parametrize("with_progress", [False, True])
def test_an_agent_makes_a_picture_saved_with_its_recipe(mcp_server, with_progress):
    """With and without a progress token (the server answers each its own way); Gradio's MCP server failed both
    on an event that also updates the History (a gr.State), until app.tools mended it."""
    steps = []

    async def call(session):
        async def progress(done, total, message):
            steps.append(message)

        arguments = {"prompt": f"a lighthouse, progress {with_progress}", "steps": 2, "seed": 7}
        return await session.call_tool(
            "generate_image", arguments, progress_callback=progress if with_progress else None
        )

    result = session_call(mcp_server["url"], call)
    assert not result.isError, result.content
    said = " ".join(c.text for c in result.content if c.type == "text")
    assert "Done: 1 image(s)" in said and "seed 7" in said
    saved = [
        p for p in mcp_server["settings"].output_dir.rglob("*.png")
        if json.loads(p.with_suffix(".json").read_text())["prompt"].endswith(f"progress {with_progress}")
    ]  # fmt: skip
    assert len(saved) == 1, "the picture was not saved with its recipe"
    assert saved[0].name in said  # the tool's answer names the saved file
    assert json.loads(saved[0].with_suffix(".json").read_text())["seed"] == 7
    assert not with_progress or any("Step" in (m or "") for m in steps)


def test_an_agent_cannot_swap_a_face_without_consent(mcp_server):
    from faces_helpers import ASTRONAUT

    face = "data:image/jpeg;base64," + base64.b64encode(ASTRONAUT.read_bytes()).decode()

    async def call(session):
        return await session.call_tool("swap_face", {"source_image": face, "target_image": face, "consent": False})

    result = session_call(mcp_server["url"], call)
    assert result.isError
    text = " ".join(c.text for c in result.content if c.type == "text")
    assert "consent" in text.lower()
    assert not list(mcp_server["settings"].output_dir.rglob("*swap*.png"))


def test_without_the_setting_there_is_no_mcp_server(server):
    import httpx

    reply = httpx.get(server["url"] + "gradio_api/mcp/schema", timeout=10)
    assert reply.status_code == 404


def test_the_mcp_server_is_never_opened_beside_a_login():
    from core.settings import from_env

    with pytest.raises(ValueError, match="STUDIO_MCP cannot be used with STUDIO_AUTH"):
        from_env({"STUDIO_MCP": "1", "STUDIO_AUTH": "teacher:s3cret"})
    assert from_env({"STUDIO_MCP": "1"}).mcp
