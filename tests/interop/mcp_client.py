"""Owns the MCP interop scenario run by the official MCP Python SDK (mcp 2.3.0) as the client.

Connects to an `agent-host mcp serve` over stdio or Streamable HTTP, runs one
fixed scenario against the test plugins `echo` and `shapes`, and prints ONE
JSON object on stdout saying what the SDK observed. tests/it/mcp_python.rs
asserts on that object; keeping the assertions in Rust keeps this script a
plain observer, so a server bug shows up as a wrong value, not as a Python
traceback the test has to parse.

    mcp_client.py [--protocol P] --stdio -- COMMAND [ARGS...]
    mcp_client.py [--protocol P] --http URL [--token TOKEN]

What mcp 2.3.0 negotiates (read from its source, mcp/client/session.py,
mcp/client/_probe.py, mcp_types/version.py):
- `ClientSession.initialize()` always offers 2025-11-25 (LATEST_HANDSHAKE_VERSION)
  and accepts any handshake-era version the server answers with
  (2024-11-05 .. 2025-11-25). There is no parameter for the offer, so
  `--protocol 2025-06-18` sends the same InitializeRequest with that version
  through `send_request` and installs the result with the public
  `ClientSession.adopt()`, then sends `notifications/initialized`, which is
  exactly what `initialize()` does.
- The 2026-07-28 stateless era is supported: `ClientSession.discover()` sends
  `server/discover` (its `_meta` carries io.modelcontextprotocol/protocolVersion,
  clientInfo, clientCapabilities) and adopts the result; every later request is
  then stamped with that `_meta` plus the `MCP-Protocol-Version`, `Mcp-Method`
  and (tools/call) `Mcp-Name` headers, and there is no initialize, no
  `notifications/initialized`, no Mcp-Session-Id and no GET stream.
- `--protocol auto` (the default) is what `mcp.Client(mode="auto")` does:
  probe `server/discover` at 2026-07-28 and fall back to `initialize()` on any
  JSON-RPC error (mcp.client._probe.negotiate_auto, private but the SDK's own
  connect policy).

Cancelling: the SDK has no cancel() call; cancelling the anyio scope around a
pending `call_tool` makes the dispatcher send `notifications/cancelled`
(handshake era, and stdio at 2026-07-28) or abort the request's POST
(Streamable HTTP at 2026-07-28, where closing the stream is the signal).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from importlib import metadata
from typing import Any

import anyio
import mcp_types as types
from mcp.client._probe import negotiate_auto
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

PROTOCOLS = ("auto", "2025-06-18", "2025-11-25", "2026-07-28")

# A hang guard, not a measurement: the wait for shapes_wait's first progress
# and each request are bounded so a silent server ends the run with an
# observation ("no progress") instead of blocking the Rust test forever.
HANG_GUARD_SECONDS = 30.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    transport = parser.add_mutually_exclusive_group(required=True)
    transport.add_argument("--stdio", action="store_true", help="spawn the server; its command follows --")
    transport.add_argument("--http", metavar="URL", help="Streamable HTTP endpoint: http://127.0.0.1:PORT/mcp")
    parser.add_argument("--token", help="bearer token for --http")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="auto")
    parser.add_argument("command", nargs="*", help="with --stdio: the server command and its arguments")
    args = parser.parse_args(argv)
    if args.stdio and not args.command:
        parser.error("--stdio needs the server command after --")
    if args.http and args.command:
        parser.error("--http takes no command")
    if args.token and not args.http:
        parser.error("--token is for --http")
    return args


async def connect(session: ClientSession, protocol: str) -> None:
    """Negotiates `protocol` the way the SDK itself would for that choice."""
    if protocol == "auto":
        await negotiate_auto(session)
    elif protocol == "2025-11-25":
        await session.initialize()
    elif protocol == "2026-07-28":
        await session.discover()
    else:
        # initialize() with another offer: the same request, adopt() and
        # notification it sends, since it hard-codes LATEST_HANDSHAKE_VERSION.
        result = await session.send_request(
            types.InitializeRequest(
                params=types.InitializeRequestParams(
                    protocol_version=protocol,
                    capabilities=types.ClientCapabilities(),
                    client_info=types.Implementation(name="agent-host-interop", version="0"),
                )
            ),
            types.InitializeResult,
        )
        session.adopt(result)
        await session.send_notification(types.InitializedNotification())


def content_summary(block: Any) -> dict[str, Any]:
    """The parts of one content block the test checks, by its wire names."""
    summary: dict[str, Any] = {"type": block.type}
    if isinstance(block, types.TextContent):
        summary["text"] = block.text
    elif isinstance(block, types.ImageContent | types.AudioContent):
        summary["mimeType"] = block.mime_type
        summary["dataLen"] = len(block.data)
    elif isinstance(block, types.EmbeddedResource):
        resource = block.resource
        summary["uri"] = str(resource.uri)
        summary["mimeType"] = resource.mime_type
        summary["blob"] = isinstance(resource, types.BlobResourceContents)
    return summary


def result_summary(result: types.CallToolResult) -> dict[str, Any]:
    texts = [b.text for b in result.content if isinstance(b, types.TextContent)]
    return {
        "isError": bool(result.is_error),
        "text": "".join(texts),
        "content": [content_summary(b) for b in result.content],
        "structuredContent": result.structured_content,
    }


def error_summary(err: MCPError) -> dict[str, Any]:
    return {"raised": "MCPError", "code": err.code, "message": err.message}


async def call(session: ClientSession, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One tools/call: the result, or the JSON-RPC error the SDK raised."""
    try:
        result = await session.call_tool(name, arguments)
    except MCPError as err:
        return error_summary(err)
    return {"raised": None, **result_summary(result)}


async def wait_and_cancel(session: ClientSession) -> dict[str, Any]:
    """Calls shapes_wait with a progress callback and cancels it after the first progress."""
    progress: list[dict[str, Any]] = []
    first = anyio.Event()
    outcome: dict[str, Any] = {"progress": progress, "cancelled": False, "ended": None}

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append({"progress": value, "total": total, "message": message})
        first.set()

    async def run_call() -> None:
        try:
            result = await session.call_tool("shapes_wait", {}, progress_callback=on_progress)
            outcome["ended"] = {"raised": None, **result_summary(result)}
        except MCPError as err:
            outcome["ended"] = error_summary(err)
        finally:
            first.set()  # a call that ends without progress must not park the wait below

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_call)
        with anyio.move_on_after(HANG_GUARD_SECONDS):
            await first.wait()
        if outcome["ended"] is None:
            outcome["cancelled"] = True
        tg.cancel_scope.cancel()
    return outcome


async def scenario(session: ClientSession, protocol: str, obs: dict[str, Any]) -> None:
    await connect(session, protocol)
    obs["protocol_version"] = session.protocol_version
    obs["era"] = "stateless" if session.discover_result is not None else "handshake"
    info = session.server_info
    obs["server_info"] = info.model_dump(mode="json", exclude_none=True) if info else None
    caps = session.server_capabilities
    obs["server_capabilities"] = caps.model_dump(by_alias=True, mode="json", exclude_none=True) if caps else None

    listing = await session.list_tools()
    tools = {tool.name: tool for tool in listing.tools}
    obs["tools"] = sorted(tools)
    if (echo := tools.get("echo")) is not None:
        obs["echo_tool"] = {
            "annotations": echo.annotations.model_dump(by_alias=True, mode="json", exclude_none=True)
            if echo.annotations
            else None,
            "inputSchema": echo.input_schema,
        }
    if (mixed := tools.get("shapes_mixed")) is not None:
        obs["shapes_mixed_tool"] = {"title": mixed.title, "hasOutputSchema": mixed.output_schema is not None}

    obs["echo"] = await call(session, "echo", {"text": "ab", "repeat": 3})
    # The SDK checks structuredContent against the listed outputSchema itself
    # (ClientSession.validate_tool_result) and raises RuntimeError on a mismatch;
    # that lands in obs["errors"]["scenario"].
    obs["shapes_mixed"] = await call(session, "shapes_mixed", {})
    obs["shapes_fail"] = {
        kind: await call(session, "shapes_fail", {"kind": kind}) for kind in ("failed", "denied", "invalid")
    }
    obs["schema_violation"] = await call(session, "echo", {"text": 5})
    obs["unknown_tool"] = await call(session, "no_such_tool", {})
    obs["shapes_wait"] = await wait_and_cancel(session)
    # The same session must keep working after a cancelled call.
    obs["echo_after_cancel"] = await call(session, "echo", {"text": "still here"})


def session_over(read: Any, write: Any) -> ClientSession:
    # Every request (initialize too) gives up after the hang guard: a server
    # that never answers becomes an MCPError in the observation, not a hang.
    return ClientSession(read, write, read_timeout_seconds=HANG_GUARD_SECONDS)


async def run(args: argparse.Namespace, obs: dict[str, Any]) -> None:
    if args.stdio:
        # stdio_client passes only HOME/PATH/... unless told; the Rust test
        # sets the server's environment on this process, so hand it all on.
        params = StdioServerParameters(command=args.command[0], args=args.command[1:], env=dict(os.environ))
        async with stdio_client(params) as (read, write), session_over(read, write) as session:
            await scenario(session, args.protocol, obs)
        return
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    http = create_mcp_http_client(headers=headers)
    # The HTTP exchanges as the SDK made them, so the test can check the
    # session header per era and a failure shows which request went wrong.
    exchanges: list[dict[str, Any]] = []
    obs["http"] = exchanges

    async def on_response(response: Any) -> None:
        request = response.request
        exchanges.append(
            {
                "method": request.method,
                "status": response.status_code,
                "contentType": response.headers.get("content-type"),
                "mcpMethod": request.headers.get("mcp-method"),
                "requestProtocolVersion": request.headers.get("mcp-protocol-version"),
                "requestSessionId": request.headers.get("mcp-session-id"),
                "responseSessionId": response.headers.get("mcp-session-id"),
            }
        )

    http.event_hooks = {"request": [], "response": [on_response]}
    async with (
        http,
        streamable_http_client(args.http, http_client=http) as (read, write),
        session_over(read, write) as session,
    ):
        await scenario(session, args.protocol, obs)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    obs: dict[str, Any] = {
        "sdk": {"mcp": metadata.version("mcp"), "mcp-types": metadata.version("mcp-types")},
        "transport": "stdio" if args.stdio else "http",
        "requested_protocol": args.protocol,
        "errors": {},
    }
    code = 0
    try:
        anyio.run(run, args, obs)
    except BaseException as exc:  # noqa: BLE001 - the observation must be printed whatever broke
        # An ExceptionGroup from a task group hides the cause; print the whole
        # traceback on stderr and name the innermost errors in the JSON.
        traceback.print_exc(file=sys.stderr)
        obs["errors"]["scenario"] = describe(exc)
        code = 1
    print(json.dumps(obs, sort_keys=True), flush=True)
    return code


def describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
