# Owns the misbehaving MCP stdio server the MCP client's fault tests run: `python3 misbehaving_mcp.py MODE [ARGS] [--ignore-eof] [--ignore-sigterm]`.
"""A small MCP server over stdio (newline-delimited JSON-RPC), standard library only.

It speaks enough of MCP to get through the handshake and then misbehaves on
purpose, chosen by MODE:

  normal          every tool does its named misbehaviour when called
  no-init         never answers anything (initialize included); reads and ignores stdin
  garbage-init    answers initialize with a line that is not JSON, then ignores everything
  many-tools N    normal, plus N tools t00000.. in tools/list (pages of 100)
  exit-at-start   "cannot start: missing config" on stderr, exit status 1
  changing        normal, plus `bump`: adds a tool added_<n>, sends
                  notifications/tools/list_changed, answers "bumped"
  cancellable     normal, plus `cancelled_ids`: the JSON list of request ids
                  notifications/cancelled named; a cancelled call is never answered
  progress        normal, plus `steps` (n, default 3): n notifications/progress
                  for the call's _meta.progressToken, 50 ms apart, then "done <n>"

Tools of every mode: ok, crash, hang, garbage, not_result, flood, huge, slow
(see TOOL_SPECS). Flags: --ignore-eof keeps the process alive after stdin
closes (to test kill escalation); --ignore-sigterm ignores SIGTERM.
Every line read and every misbehaviour is logged to stderr.
"""

import json
import os
import random
import signal
import sys
import threading
import time

PAGE_SIZE = 100
PROTOCOL_VERSIONS = ("2025-06-18", "2025-11-25")
DEFAULT_PROTOCOL_VERSION = "2025-11-25"
MODES = ("normal", "no-init", "garbage-init", "many-tools", "exit-at-start",
         "changing", "cancellable", "progress")

OBJECT = {"type": "object"}

# name -> (description, inputSchema)
TOOL_SPECS = {
    "ok": ("Answers the text 'ok'.", OBJECT),
    "crash": ("Exits the server with status 3 without answering.", OBJECT),
    "hang": ("Never answers.", OBJECT),
    "garbage": ("Writes a non-JSON line, then a response with neither result nor error.", OBJECT),
    "not_result": ("Answers with a result that is not a CallToolResult.", OBJECT),
    "flood": ("Sends `count` (default 10000) log and `count` unsolicited progress notifications, then 'flooded'.",
              {"type": "object", "properties": {"count": {"type": "integer", "minimum": 0}}}),
    "huge": ("Answers one text content of `bytes` (default 100000000) characters.",
             {"type": "object", "properties": {"bytes": {"type": "integer", "minimum": 0}}}),
    "slow": ("Sleeps `ms` milliseconds, then answers 'slept'.",
             {"type": "object", "properties": {"ms": {"type": "integer", "minimum": 0}}}),
}

out_lock = threading.Lock()
state_lock = threading.Lock()


def log(msg):
    sys.stderr.write("misbehaving: %s\n" % msg)
    sys.stderr.flush()


def write_raw(data):
    """Writes bytes that already end in a newline, as one unit."""
    with out_lock:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def send(msg):
    write_raw(json.dumps(msg, separators=(",", ":")).encode() + b"\n")


def result(rid, res):
    send({"jsonrpc": "2.0", "id": rid, "result": res})


def error(rid, code, message):
    send({"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}})


def text(t):
    return {"content": [{"type": "text", "text": t}]}


class Server:
    def __init__(self, mode, extra_tools):
        self.mode = mode
        self.extra_tools = extra_tools  # many-tools: N
        self.added = []  # changing: names of the bumped-in tools
        self.cancelled = []  # cancellable: request ids, in arrival order

    # -- tools/list ------------------------------------------------------
    def tool_list(self):
        tools = [{"name": "t%05d" % i, "description": "Extra tool %d; answers its name." % i,
                  "inputSchema": OBJECT} for i in range(self.extra_tools)]
        tools += [{"name": n, "description": d, "inputSchema": s} for n, (d, s) in TOOL_SPECS.items()]
        if self.mode == "changing":
            tools.append({"name": "bump", "description": "Adds a tool and sends list_changed.", "inputSchema": OBJECT})
            with state_lock:
                tools += [{"name": n, "description": "Added by bump; answers its name.", "inputSchema": OBJECT}
                          for n in self.added]
        if self.mode == "cancellable":
            tools.append({"name": "cancelled_ids", "description": "The request ids cancelled so far, as JSON text.",
                          "inputSchema": OBJECT})
        if self.mode == "progress":
            tools.append({"name": "steps", "description": "Sends n progress notifications 50 ms apart.",
                          "inputSchema": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}})
        return tools

    def list_tools(self, rid, params):
        tools = self.tool_list()
        cursor = params.get("cursor")
        start = 0
        if cursor is not None:
            if not (isinstance(cursor, str) and cursor.startswith("off:") and cursor[4:].isdigit()
                    and int(cursor[4:]) <= len(tools)):
                return error(rid, -32602, "Invalid cursor")
            start = int(cursor[4:])
        page = {"tools": tools[start:start + PAGE_SIZE]}
        if start + PAGE_SIZE < len(tools):
            page["nextCursor"] = "off:%d" % (start + PAGE_SIZE)
        result(rid, page)

    # -- tools/call ------------------------------------------------------
    def answer(self, rid, res):
        """Answers a call unless it was cancelled (cancellable mode only)."""
        if self.mode == "cancellable":
            with state_lock:
                if rid in self.cancelled:
                    log("not answering cancelled request %r" % (rid,))
                    return
        result(rid, res)

    def call_tool_checked(self, rid, params):
        try:
            self.call_tool(rid, params)
        except (TypeError, ValueError, AttributeError) as e:  # bad arguments, e.g. {"ms": "x"}
            log("tools/call id=%r: bad arguments: %s" % (rid, e))
            error(rid, -32602, "Invalid params: %s" % e)

    def call_tool(self, rid, params):
        name = params.get("name")
        args = params.get("arguments") or {}
        meta = params.get("_meta") or {}
        known = {t["name"] for t in self.tool_list()}
        if name not in known:
            return error(rid, -32602, "Unknown tool: %s" % (name,))
        log("tools/call %s id=%r" % (name, rid))
        if name == "ok":
            self.answer(rid, text("ok"))
        elif name == "crash":
            sys.stderr.write("crashing\n")
            sys.stderr.flush()
            out_lock.acquire()  # no other thread is mid-line on stdout
            os._exit(3)
        elif name == "hang":
            log("hanging on request %r forever" % (rid,))
        elif name == "garbage":
            write_raw(b"{this is not json\n")
            send({"jsonrpc": "2.0", "id": rid})
        elif name == "not_result":
            self.answer(rid, {"content": "not a list", "isError": "maybe"})
        elif name == "flood":
            count = int(args.get("count", 10000))
            token = "unsolicited-%016x" % random.getrandbits(64)
            for i in range(count):
                send({"jsonrpc": "2.0", "method": "notifications/message",
                      "params": {"level": "info", "logger": "misbehaving", "data": "flood %d" % i}})
            for i in range(count):
                send({"jsonrpc": "2.0", "method": "notifications/progress",
                      "params": {"progressToken": token, "progress": i + 1, "total": count}})
            log("flooded %d+%d notifications (progressToken %s)" % (count, count, token))
            self.answer(rid, text("flooded"))
        elif name == "huge":
            self.huge(rid, int(args.get("bytes", 100_000_000)))
        elif name == "slow":
            time.sleep(max(0, int(args.get("ms", 1000))) / 1000.0)
            self.answer(rid, text("slept"))
        elif name == "bump":
            with state_lock:
                new = "added_%d" % (len(self.added) + 1)
                self.added.append(new)
            send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            self.answer(rid, text("bumped"))
        elif name in self.added:
            self.answer(rid, text(name))
        elif name == "cancelled_ids":
            with state_lock:
                ids = list(self.cancelled)
            self.answer(rid, text(json.dumps(ids)))
        elif name == "steps":
            n = int(args.get("n", 3))
            token = meta.get("progressToken")
            for i in range(1, n + 1):
                time.sleep(0.05)
                if token is not None:
                    send({"jsonrpc": "2.0", "method": "notifications/progress",
                          "params": {"progressToken": token, "progress": i, "total": n, "message": "step %d" % i}})
            self.answer(rid, text("done %d" % n))
        else:  # t00000...
            self.answer(rid, text(name))

    def huge(self, rid, size):
        head = ('{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"'
                % json.dumps(rid)).encode()
        tail = b'"}]}}\n'
        chunk = b"x" * (1 << 20)
        with out_lock:
            w = sys.stdout.buffer
            w.write(head)
            left = size
            while left > 0:
                w.write(chunk if left >= len(chunk) else chunk[:left])
                left -= len(chunk)
            w.write(tail)
            w.flush()
        log("sent a %d-byte text result" % size)

    # -- dispatch ----------------------------------------------------------
    def handle(self, msg):
        method = msg.get("method")
        rid = msg.get("id")
        params = msg.get("params") or {}
        is_request = "id" in msg and method is not None
        if method is None:
            log("ignoring a response from the client: %s" % json.dumps(msg)[:200])
            return
        if self.mode == "no-init":
            return
        if self.mode == "garbage-init":
            if method == "initialize":
                write_raw(b"<<< this is not JSON-RPC >>>\n")
            return
        if method == "initialize":
            requested = params.get("protocolVersion")
            version = requested if requested in PROTOCOL_VERSIONS else DEFAULT_PROTOCOL_VERSION
            result(rid, {"protocolVersion": version, "capabilities": {"tools": {"listChanged": True}},
                         "serverInfo": {"name": "misbehaving", "version": "1"}})
        elif method == "notifications/cancelled":
            if self.mode == "cancellable":
                with state_lock:
                    self.cancelled.append(params.get("requestId"))
        elif method.startswith("notifications/"):
            pass
        elif method == "ping":
            result(rid, {})
        elif method == "tools/list":
            self.list_tools(rid, params)
        elif method == "tools/call":
            threading.Thread(target=self.call_tool_checked, args=(rid, params), daemon=True).start()
        elif is_request:
            error(rid, -32601, "Method not found")


def main(argv):
    flags = {a for a in argv if a.startswith("--")}
    args = [a for a in argv if not a.startswith("--")]
    unknown = flags - {"--ignore-eof", "--ignore-sigterm"}
    if not args or args[0] not in MODES or unknown:
        sys.stderr.write("usage: misbehaving_mcp.py %s [N] [--ignore-eof] [--ignore-sigterm]\n" % "|".join(MODES))
        return 2
    mode = args[0]
    if mode == "exit-at-start":
        sys.stderr.write("cannot start: missing config\n")
        sys.stderr.flush()
        return 1
    extra = 0
    if mode == "many-tools":
        if len(args) < 2 or not args[1].isdigit():
            sys.stderr.write("usage: misbehaving_mcp.py many-tools N\n")
            return 2
        extra = int(args[1])
    if "--ignore-sigterm" in flags:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    server = Server(mode, extra)
    log("started in mode %s (pid %d)" % (" ".join(args), os.getpid()))
    for line in sys.stdin.buffer:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            log("unparsable line: %r" % line[:200])
            if mode not in ("no-init", "garbage-init"):
                send({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
            continue
        if not isinstance(msg, dict):
            log("not a JSON-RPC object: %r" % line[:200])
            if mode not in ("no-init", "garbage-init"):
                send({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}})
            continue
        log("<- %s id=%r" % (msg.get("method", "(response)"), msg.get("id")))
        server.handle(msg)
    log("stdin closed")
    if "--ignore-eof" in flags:
        while True:
            time.sleep(3600)
    # Calls still in flight (slow, hang, steps) are dropped unanswered: the
    # client is gone. Exit without waiting for their threads.
    with out_lock:
        sys.stdout.buffer.flush()
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
