"""{{name}}: an agent-host tool plugin in Python.

componentize-py generates the module `wit_world` from wit/plugin.wit (the
contract, agent:plugin@{{contract}}) and calls the class `Tool` below for the
`tool` export. To see the generated Python API (every type and function, with
the contract's doc comments), run
    .toolchain/bin/componentize-py -d wit -w tool-plugin bindings build/bindings
and read build/bindings/wit_world/.

How the contract looks in Python:
  - records are dataclasses (ToolSpec, ToolOutput, ...); build them with all
    fields, keyword arguments read best;
  - variants are one class per case: ContentPart_Text("..."),
    ToolError_InvalidArguments("..."), ...;
  - flags are an enum.Flag: ToolHints.READ_ONLY | ToolHints.IDEMPOTENT, and
    ToolHints(0) for none;
  - option<T> is T or None; u64 is a plain int;
  - a `result<T, E>` return value is T; to return the error, raise
    Err(E) (from componentize_py_types). Imports returning a result (kv_set)
    raise Err(message) the same way.

Any other exception that escapes `invoke` is a crash: the traceback goes to
the host log and the call fails (the model only learns that it failed). Raise
Err(ToolError_...) for anything the model should read.

This module is imported once at BUILD time, and the initialised interpreter
is what the .wasm holds. The host imports are not there yet: do not call
host.* at module level (it traps and the build fails), only inside methods.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import (
    CallContext,
    ContentPart_Text,
    LogLevel,
    ToolError_Failed,
    ToolError_InvalidArguments,
    ToolHints,
    ToolOutput,
    ToolSpec,
)

TOOL_NAME = "{{snake}}"

# JSON Schema of the arguments. The host checks every call against it before
# invoke runs, so be strict: required fields, bounds, no extra properties.
INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "description": "Who to greet"},
        "times": {"type": "integer", "minimum": 1, "maximum": 10, "description": "How many greetings (default 1)"},
    },
    "required": ["name"],
    "additionalProperties": False,
}

# Optional JSON Schema of the structured result; the host checks it too.
OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {"greeting": {"type": "string"}, "count": {"type": "integer"}},
    "required": ["greeting", "count"],
}


class Tool(exports.Tool):
    def describe(self):
        # Called once per plugin version and cached: it must not depend on
        # arguments, configuration or state.
        return [
            ToolSpec(
                name=TOOL_NAME,
                title="Greeter",
                description="Greet someone by name and say how often they have been greeted before.",
                input_schema=json.dumps(INPUT_SCHEMA),
                output_schema=json.dumps(OUTPUT_SCHEMA),
                # Not read-only: it counts greetings in the key-value state.
                hints=ToolHints.PARALLEL_SAFE,
            )
        ]

    def invoke(self, name: str, args_json: str, ctx: CallContext) -> ToolOutput:
        if name != TOOL_NAME:
            raise Err(ToolError_InvalidArguments(f"unknown tool {name!r}"))
        args = json.loads(args_json)  # already validated against INPUT_SCHEMA
        who = args["name"].strip()
        times = args.get("times", 1)
        if not who:
            # A rule the schema cannot say: tell the model which field is wrong.
            raise Err(ToolError_InvalidArguments("`name` is only spaces; give a name"))

        # config(): the manifest's [config] table, as JSON text.
        config = json.loads(host.config())
        greeting = config.get("greeting", "Hello")
        if not isinstance(greeting, str):
            raise Err(ToolError_Failed("plugin config: `greeting` must be a string"))

        # kv_get/kv_set: state that outlives the call (every call gets a
        # fresh instance, so module globals do not). Values are bytes.
        key = "greeted/" + who
        raw = host.kv_get(key)  # bytes, or None when the key is not set
        count = (int(raw) if raw is not None else 0) + times
        try:
            host.kv_set(key, str(count).encode())
        except Err as e:  # result<_, string>: e.value says which limit was hit
            raise Err(ToolError_Failed(f"could not save the count: {e.value}"))

        # progress(done, total, message): for long calls; here one step per
        # greeting, to show it. total and message are optional (None).
        lines = []
        for i in range(times):
            lines.append(f"{greeting}, {who}!")
            host.progress(i + 1, times, f"greeting {i + 1} of {times}")

        # log(): a line in the host's log (`agent-host -v` shows it), never
        # on the user's terminal. print() goes to the log as well (stdout).
        host.log(LogLevel.INFO, f"greeted {who!r} {times} time(s), {count} in all (call {ctx.call_id})")

        lines.append(f"({who} has been greeted {count} time(s) so far.)")
        structured = {"greeting": lines[0], "count": count}
        return ToolOutput(content=[ContentPart_Text("\n".join(lines))], structured=json.dumps(structured))
