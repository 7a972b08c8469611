#!/usr/bin/env python3
"""Writes the initial seed inputs of each fuzz target (docs/fuzzing.md) to fuzz/corpus/<target>/.

Run from the repository root: python3 fuzz/seeds/make_seeds.py. The seeds are
the repository's own manifests and example config plus hand-written samples
of what each parser meets in practice; `cargo fuzz cmin` then keeps the ones
that add coverage.
"""

import glob
import hashlib
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- manifest: every manifest in the repository, plus edge cases ----
for path in glob.glob(os.path.join(ROOT, "plugins/*/manifest.toml")) + glob.glob(
    os.path.join(ROOT, "tests/plugins/*/manifest.toml")
) + glob.glob(os.path.join(ROOT, "examples/plugin-template/manifest.toml")):
    put("manifest", open(path, "rb").read())
put("manifest", '[plugin]\nname = "x"\nversion = "1.2.3-rc.1+build.5"\ndescription = "d"\n'
    '[capabilities]\ndirs = [{ path = "/w", access = "read" }, { path = "/o", access = "read-write" }]\n'
    'env = ["HOME"]\nnetwork = ["*", "example.com:443"]\n'
    '[limits]\nmemory_mb = 1\ntimeout_ms = 2\nfuel = 3\nmax_output_kb = 4\n'
    '[config]\nkey = "v"\nn = 1.5\nlist = [1, "a", true]\nnested = { a = { b = 1979-05-27T07:32:00Z } }\n')

# ---- config: the example config, plus every section ----
put("config", open(os.path.join(ROOT, "examples/agent-host.toml"), "rb").read())
put("config", 'plugin_dirs = ["p", "/abs"]\ndata_dir = "../d"\n'
    '[sandbox]\ndefault_memory_mb = 1\nmax_memory_mb = 4096\ndefault_timeout_ms = 1\nmax_timeout_ms = 1\n'
    'default_max_output_kb = 1\nmax_output_kb = 1\nfuel = true\nlog_capture_kb = 0\nmax_instances = 1\n'
    '[cache]\n[watch]\ndebounce_ms = 0\n'
    '[provider]\nkind = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:1"\napi_key_env = "K"\n'
    'script = "s.json"\ndeadline_secs = 1\nmax_retries = 0\nstream = false\n'
    '[agent]\nsystem_prompt = "hi"\nmax_turns = 1\nmax_parallel_tools = 1\ncontext_budget_tokens = 10\nkeep_recent_turns = 0\n'
    '[sessions]\nbatch_size = 0\nflush_interval_ms = 0\nlive_capacity = 0\nlive_ttl_secs = 0\n'
    '[grants.fs]\ndirs = [{ host = "work", guest = "/workspace", access = "read-write" }]\nenv = ["HOME"]\nnetwork = ["*"]\n'
    '[hooks]\ntimeout_ms = 1\nfuel = 5\nmax_fanout = 1\nmax_failures = 0\nmax_in_flight = 1\n'
    'default_coalesce_chunks = 0\ndefault_coalesce_ms = 0\n'
    '[extensions.audit]\nenabled = false\nfail_closed = true\npriority = -5\nconfig = { a = 1 }\n'
    '[extensions.audit.hooks.before-tool-call]\nenabled = true\ndelivery = "async"\nmin_interval_ms = 1\n'
    'every_n_turns = 2\ncoalesce_chunks = 3\ncoalesce_ms = 4\n')


# ---- sse: [cut count][cuts as u16 LE][body] ----
def sse(body, cuts=()):
    head = bytes([len(cuts)]) + b"".join(struct.pack("<H", c) for c in cuts)
    put("sse", head + body.encode())


def data(obj):
    return "data: " + json.dumps(obj) + "\n\n"


def chunk(delta, finish=None):
    return data({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


openai_text = chunk({"content": "Hel"}) + chunk({"content": "lo ✓"}) + chunk({}, "stop") + data(
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}) + "data: [DONE]\n\n"
sse(openai_text)
sse(openai_text, (1, 7, 40, 41))
openai_tools = (
    chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "calc", "arguments": "{\"a\""}}]})
    + chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "echo", "arguments": ""}}]})
    + chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]})
    + chunk({"tool_calls": [{"id": "c3", "function": {"name": "x"}}]})
    + chunk({}, "tool_calls") + "data: [DONE]\r\n\r\n")
sse(openai_tools)
sse(data({"error": {"message": "overloaded"}}))
sse(": comment\r\nid: 1\rretry: 5\n" + chunk({"content": "x"}, "length"))


def ev(name, obj):
    return "event: " + name + "\ndata: " + json.dumps(obj) + "\n\n"


anthropic = (
    "\ufeff" + ev("message_start", {"type": "message_start", "message": {"usage": {
        "input_tokens": 5, "cache_read_input_tokens": 2, "output_tokens": 1}}})
    + ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "a"}})
    + ev("ping", {"type": "ping"})
    + ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "b"}})
    + ev("content_block_stop", {"type": "content_block_stop", "index": 0})
    + ev("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "calc", "input": {}}})
    + ev("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"x\":"}})
    + ev("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "2}"}})
    + ev("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {"type": "thinking"}})
    + ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}})
    + ev("message_stop", {"type": "message_stop"}))
sse(anthropic)
sse(anthropic, (3, 100, 200, 201, 202))
sse(ev("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}))
sse(json.dumps({"choices": [{"message": {"content": "hi", "tool_calls": [
    {"id": "a", "function": {"name": "f", "arguments": "{}"}},
    {"function": {"name": "g", "arguments": {"k": [1, 2]}}}]}, "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2}}))

# ---- schema: <schema> NUL <arguments> ----
def schema(s, args):
    put("schema", json.dumps(s) + "\0" + json.dumps(args))


obj = {"type": "object", "properties": {
    "text": {"type": "string", "maxLength": 5, "minLength": 1, "pattern": "^[a-z]+$"},
    "n": {"type": "integer", "minimum": 1, "maximum": 10, "multipleOf": 2},
    "f": {"type": "number", "exclusiveMinimum": 0},
    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "maxItems": 3},
    "mode": {"enum": ["a", "b"]}, "c": {"const": 1},
    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
    "when": {"type": "string", "format": "date-time"}},
    "required": ["text"], "additionalProperties": False}
schema(obj, {"text": "ab", "n": 2, "tags": ["x"], "mode": "a"})
schema(obj, {"text": 5, "n": 0, "extra": 1, "tags": ["x", "x", "y", "z"]})
schema({"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/b"}, {"type": "null"}]}, "b": {"oneOf": [{"type": "string"}, {"not": {"type": "number"}}]}},
        "allOf": [{"$ref": "#/$defs/a"}], "if": {"type": "object"}, "then": {"required": ["x"]}, "else": {"type": "boolean"}},
       {"x": "y"})
schema({"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "propertyNames": {"maxLength": 4},
        "dependentRequired": {"a": ["b"]}, "minProperties": 1}, {"x-a": 1, "a": 2})
schema({"type": "array", "prefixItems": [{"type": "integer"}], "contains": {"type": "string"}, "minContains": 1}, [1, "s"])
schema(True, {})
schema({"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"n": {"type": "integer"}},
        "properties": {"a": {"$ref": "#/definitions/n"}}}, {"a": 1.5})

# ---- guest_values: raw bytes read by arbitrary::Unstructured ----
for seed in [b"", b"\x00" * 64, b"\x01" * 64, b"\x02" * 64, b"\x03" * 64, bytes(range(256)),
             b"\x01\x03\x02\x01{\"a\":[1,2,{\"b\":null}]}\x05text\x00", b"\x03\x01{\"output\":\"x\"}\x08"]:
    put("guest_values", seed)
