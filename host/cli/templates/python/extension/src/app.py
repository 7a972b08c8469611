"""{{name}}: an agent-host extension in Python.

An extension hooks into the agent loop: the host calls `on_event` at the
hook points `describe_extension` subscribes to, under a small time budget
(100 ms by default), and the outcome says what the loop does next.

This one, as a starting point:
  - before-tool-call (sync): blocks the tools named in the config's
    `blocked_tools`, and counts every call per tool in the key-value state
    (kv_*, kept across sessions) and per session in the session state
    (session_*, dropped with the session);
  - session-end (background): logs how many tool calls the session made.

componentize-py generates the module `wit_world` from wit/plugin.wit (the
contract, agent:plugin@{{contract}}) and calls the class `Extension` below.
To see the generated Python API, run
    .toolchain/bin/componentize-py -d wit -w extension-plugin bindings build/bindings
and read build/bindings/wit_world/.

How the contract looks in Python:
  - enums are enum.Enum (HookPoint.BEFORE_TOOL_CALL, Delivery.SYNC);
  - records are dataclasses (Subscription, Throttle, ...): give every field,
    None for an absent option;
  - the variant `outcome` is one class per case: Outcome_Continue(),
    Outcome_Patch(json_text), Outcome_Block(reason), Outcome_Inject(text)
    (`continue` is a Python keyword, hence the class name).

An exception escaping `on_event` fails the hook: the host logs the traceback,
skips the hook (the loop goes on as if it said continue) and switches it off
after a few failures in a row. Return an outcome instead.

This module is imported once at BUILD time and the initialised interpreter
is what the .wasm holds: do not call host.* at module level, only inside
methods. progress() is for tools; an extension has no use for it.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.extension import (
    Delivery,
    Event,
    ExtensionInfo,
    HookPoint,
    Outcome_Block,
    Outcome_Continue,
    Subscription,
    Throttle,
)
from wit_world.imports import host
from wit_world.imports.types import LogLevel

NO_THROTTLE = Throttle(min_interval_ms=None, every_n_turns=None, coalesce_chunks=None, coalesce_ms=None)


class Extension(exports.Extension):
    def describe_extension(self):
        # Called once per plugin version and cached: it must not depend on
        # configuration or state.
        return ExtensionInfo(
            priority=0,  # lower runs first
            subscriptions=[
                Subscription(point=HookPoint.BEFORE_TOOL_CALL, delivery=Delivery.SYNC, throttle=NO_THROTTLE),
                Subscription(point=HookPoint.SESSION_END, delivery=Delivery.BACKGROUND, throttle=NO_THROTTLE),
            ],
        )

    def on_event(self, event: Event):
        payload = json.loads(event.payload)  # a JSON object; docs/extensions.md lists its fields
        if event.point == HookPoint.BEFORE_TOOL_CALL:
            return self.before_tool_call(event, payload)
        if event.point == HookPoint.SESSION_END:
            raw = host.session_get("calls")
            calls = int(raw) if raw is not None else 0
            host.log(LogLevel.INFO, f"session {event.session_id} ended ({payload.get('outcome')}) after {calls} tool call(s)")
        return Outcome_Continue()

    def before_tool_call(self, event, payload):
        tool = payload["name"]
        # Memory may or may not survive between events: keep state in the
        # host. kv_*: kept across sessions; session_*: this session only
        # (outside a session, e.g. a direct `tools call`, there is none).
        total = count_add(host.kv_get, host.kv_set, f"calls/{tool}")
        if event.session_id is not None:
            count_add(host.session_get, host.session_set, "calls")
        host.log(LogLevel.DEBUG, f"tool {tool} called ({total} time(s) in all)")

        # config(): the manifest's [config] table as JSON text.
        blocked = json.loads(host.config()).get("blocked_tools", [])
        if tool in blocked:
            # The model gets this reason as the tool's (error) result.
            return Outcome_Block(f"the tool {tool} is switched off here by the {{name}} extension; do without it")
        return Outcome_Continue()


def count_add(get, set_, key):
    """Add one to a counter kept with get/set_ (kv or session); return it."""
    raw = get(key)  # bytes, or None when the key is not set
    value = (int(raw) if raw is not None else 0) + 1
    try:
        set_(key, str(value).encode())
    except Err as e:  # result<_, string>: e.value says which quota was hit
        host.log(LogLevel.WARN, f"could not store {key}: {e.value}")
    return value
