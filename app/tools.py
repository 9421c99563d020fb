"""Every public API endpoint as a described tool, named as the endpoint: what Gradio's MCP server (STUDIO_MCP=1)
offers agents, and what the API page shows.

Gradio names an MCP tool after the Python handler, so every endpoint has a handler of its own, named as the
endpoint, with its parameters by name (describe checks the names); its description comes from the tab that owns it
(each tab package's TOOLS)."""

from __future__ import annotations

from collections.abc import Iterable

# The studio's own endpoints (outside the tabs): the Models panel and the prompt hand-offs (app.handoffs).
TOOLS = {
    "models": "List the models the studio holds in memory now (tab, model, device, size, idle or in use).",
    "unload_models": "Unload every idle model to free memory (a model in use stays); returns the models left.",
    "expand_image_prompt": "Let the text model turn a short idea (text) into a richer image prompt.",
    "expand_music_prompt": "Let the text model turn a short idea (text) into a richer music prompt.",
}


def tools(modules: Iterable) -> dict[str, str]:
    """{endpoint: description} of the studio and of each tab package in `modules` (its TOOLS, if it has any)."""
    described = dict(TOOLS)
    for module in modules:
        described.update(getattr(module, "TOOLS", {}))
    return described


def describe(demo, described: dict[str, str]) -> None:
    """Give each public endpoint of `demo` its description (tests/test_mcp.py asks that every tool has one). Gradio
    names an MCP tool after the endpoint's handler, so each endpoint's handler is a function of that name: a tab that
    breaks the rule fails here, at build time."""
    for block_fn in demo.fns.values():
        name = block_fn.api_name
        if not name or block_fn.api_visibility != "public":
            continue
        handler = getattr(block_fn.fn, "__name__", name)
        if handler != name:
            raise ValueError(f"The handler of the endpoint /{name} is called {handler}: name it {name}.")
        if name in described:
            block_fn.api_description = described[name]


def fix_gradio_mcp_outputs() -> None:
    """Gradio 6's MCP server fails every tool whose event also updates gr.State outputs (our History, ...): it pops
    them by position while the list shrinks ("pop index out of range"), and without a progress token it takes a
    multi-output result (which has no State values) for one output. Mended here, once, before the server starts;
    the MCP tests call such tools both ways, so a Gradio that changes this shows at once."""
    from anyio.to_thread import run_sync
    from gradio.components import State
    from gradio.mcp import GradioMCPServer

    if getattr(GradioMCPServer, "studio_mended", False):
        return

    async def without_progress(self, job) -> list:
        result = await run_sync(job.result)  # gradio_client: a tuple of the outputs that are not State, or one value
        return list(result) if isinstance(result, tuple) else [result]

    def pop_returned_state(components, data) -> list:
        if len(data) != len(components):  # the client's result: the States are already left out
            return list(data)
        return [value for value, component in zip(data, components, strict=True) if not isinstance(component, State)]

    GradioMCPServer._execute_tool_without_progress = without_progress
    GradioMCPServer.pop_returned_state = staticmethod(pop_returned_state)
    GradioMCPServer.studio_mended = True
