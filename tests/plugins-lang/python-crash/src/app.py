"""python-crash: a tool plugin whose tools fail the ways Python code fails.

For the host's tests and docs: each tool shows what the guest writes to
stderr and what the host reports when a Python plugin goes wrong, next to one
tool (`py_crash_tool_error`) that fails properly, with a tool error the model
can read.

  py_crash_raise        uncaught ZeroDivisionError four calls deep
  py_crash_key_error    uncaught KeyError from a dict lookup in a helper
  py_crash_type_error   uncaught TypeError (None + 1), the classic slip
  py_crash_exit         sys.exit(3) inside a tool: SystemExit is an exception too
  py_crash_recursion    unbounded recursion: RecursionError in the interpreter
  py_crash_stack        the same after sys.setrecursionlimit(10**6): Python 3.14 keeps
                        frames on the heap, so the memory cap is hit first
  py_crash_memory       a list that outgrows the memory cap: MemoryError
  py_crash_loop         `while True: pass`: the host's deadline stops it
  py_crash_bad_return   returns a dict where ToolOutput is expected
  py_crash_bad_err      raises Err("a plain string") instead of Err(ToolError_...)
  py_crash_print        prints to stdout and stderr, then raises
  py_crash_tool_error   the right way: raise Err(ToolError_Failed(...))
"""

import json
import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import (
    ContentPart_Text,
    LogLevel,
    ToolError_Failed,
    ToolHints,
    ToolOutput,
    ToolSpec,
)

TOOLS = {
    "py_crash_raise": "Divides by zero four calls deep and lets the ZeroDivisionError escape.",
    "py_crash_key_error": "Looks up a missing key in a helper and lets the KeyError escape.",
    "py_crash_type_error": "Adds 1 to None and lets the TypeError escape.",
    "py_crash_exit": "Calls sys.exit(3).",
    "py_crash_recursion": "Recurses without end.",
    "py_crash_stack": "Raises the recursion limit to a million and recurses without end.",
    "py_crash_memory": "Grows a list past the memory cap.",
    "py_crash_loop": "Loops forever.",
    "py_crash_bad_return": "Returns a dict instead of a ToolOutput.",
    "py_crash_bad_err": "Raises Err with a plain string instead of a ToolError case.",
    "py_crash_print": "Prints to stdout and stderr, then raises RuntimeError.",
    "py_crash_tool_error": "Fails properly, with a tool error (failed) the model can read.",
}


# --- helpers, so the tracebacks have several frames -----------------------

def average(values):
    return divide(total(values), count(values))


def divide(a, b):
    return a / b


def total(values):
    return sum(values)


def count(values):
    return len(values)


def average_of_report(report):
    return average(report["values"])


def lookup_unit(config, name):
    return config["units"][name]


def unit_for(name):
    config = {"units": {"length": "m", "mass": "kg"}}
    return lookup_unit(config, name)


def next_id(last):
    return last + 1


def depth(n):
    return depth(n + 1) + 1


class Tool(exports.Tool):
    def describe(self):
        schema = json.dumps({"type": "object", "additionalProperties": False})
        return [
            ToolSpec(name=name, title=None, description=text, input_schema=schema,
                     output_schema=None, hints=ToolHints.READ_ONLY)
            for name, text in TOOLS.items()
        ]

    def invoke(self, name, args_json, ctx):
        host.log(LogLevel.INFO, f"{name}: about to fail")
        if name == "py_crash_raise":
            return ok(average_of_report({"values": []}))
        if name == "py_crash_key_error":
            return ok(unit_for("temperature"))
        if name == "py_crash_type_error":
            return ok(next_id(None))
        if name == "py_crash_exit":
            sys.exit(3)
        if name == "py_crash_recursion":
            return ok(depth(0))
        if name == "py_crash_stack":
            sys.setrecursionlimit(10**6)
            return ok(depth(0))
        if name == "py_crash_memory":
            hoard = []
            while True:
                hoard.append(bytearray(1024 * 1024))
        if name == "py_crash_loop":
            while True:
                pass
        if name == "py_crash_bad_return":
            return {"content": "not a ToolOutput"}
        if name == "py_crash_bad_err":
            raise Err("a plain string, not a ToolError case")
        if name == "py_crash_print":
            print("py_crash_print: a line on stdout")
            print("py_crash_print: a line on stderr", file=sys.stderr)
            raise RuntimeError("py_crash_print: giving up after printing")
        if name == "py_crash_tool_error":
            raise Err(ToolError_Failed("py_crash_tool_error: the widget service answered 503; try again later"))
        raise Err(ToolError_Failed(f"unknown tool {name!r}"))


def ok(value):
    return ToolOutput(content=[ContentPart_Text(str(value))], structured=None)
