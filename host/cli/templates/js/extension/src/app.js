// {{name}}: an agent-host extension written in JavaScript.
//
// The contract is wit/plugin.wit (package agent:plugin@{{contract}}, world
// `extension-plugin`): this module exports `extension` with
// describeExtension() and onEvent(), and may call the host functions
// imported below. `make` turns it into build/{{name}}.wasm with
// `jco componentize`. docs/extensions.md of agent-host lists every hook
// point, its payload and which fields a patch may change.
//
// This example, at `after-tool-call`, shortens tool outputs longer than
// config `max_output_chars` (a patch), counts calls per tool in the plugin's
// key-value store, and at `session-end` logs how many calls the session saw.
//
// How WIT types look in JavaScript:
//   enums (hook-point, delivery) -> strings: "after-tool-call", "sync"
//   option<u32>/option<u64>      -> a number / a BigInt, or undefined
//   variant outcome              -> { tag: "continue" } or { tag: "patch", val: "{...}" }
//   list<u8>                     -> Uint8Array
import { config, kvGet, kvSet, log, sessionGet, sessionSet } from "agent:plugin/host@{{contract}}";

// NOTE: code at the top level of a module runs once, at BUILD time (the
// engine is snapshotted with Wizer): never call the host there.

const CONTINUE = { tag: "continue" };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const extension = {
  // Priority (lower runs first) and the hook points this extension wants.
  // Called once per plugin version and cached: it must not depend on
  // config or state.
  describeExtension() {
    return {
      priority: 100,
      subscriptions: [
        // sync: the agent loop waits for the outcome (within the hook budget,
        // 100 ms by default), so a patch can change what the model sees.
        { point: "after-tool-call", delivery: "sync", throttle: {} },
        // background: fire and forget, the outcome is ignored.
        // Throttle fields are optional; u64 ones are BigInts (minIntervalMs: 1000n).
        { point: "session-end", delivery: "background", throttle: {} },
      ],
    };
  },

  // One event: { point, sessionId (or undefined), turn, payload (JSON text) }.
  // A thrown exception is a failed hook: the loop goes on as if it had
  // answered `continue`, and a hook that fails 3 times in a row is switched
  // off for the session.
  onEvent(event) {
    try {
      const payload = JSON.parse(event.payload);
      switch (event.point) {
        case "after-tool-call":
          return afterToolCall(payload, event);
        case "session-end":
          log("info", `session ${event.sessionId ?? "-"} ended (${payload.outcome}) after ${readCount(event)} tool call(s)`);
          return CONTINUE;
        default:
          return CONTINUE;
      }
    } catch (e) {
      // The bindings print only the message of an uncaught exception; print
      // the stack too so `agent-host -vv` shows where it came from.
      console.error(`{{name}}: ${e}\n${e?.stack ?? ""}`);
      throw e;
    }
  },
};

function afterToolCall(payload, event) {
  // Per-plugin state, kept across sessions: calls per tool.
  const key = `calls/${payload.name}`;
  const stored = kvGet(key); // Uint8Array, or undefined when missing
  const calls = (stored ? Number(decoder.decode(stored)) : 0) + 1;
  try {
    kvSet(key, encoder.encode(String(calls)));
  } catch (e) {
    // A host error (result<_, string>) is thrown; e.payload is its text.
    log("warn", `could not count calls of ${payload.name}: ${e.payload ?? e.message}`);
  }
  // Per-session state (only inside an agent session; outside, sessionSet throws).
  if (event.sessionId !== undefined) {
    try {
      sessionSet("tool-calls", encoder.encode(String(readCount(event) + 1)));
    } catch (e) {
      log("warn", `session state: ${e.payload ?? e.message}`);
    }
  }

  const cfg = JSON.parse(config());
  const max = Number.isInteger(cfg.max_output_chars) ? cfg.max_output_chars : 4000;
  if (typeof payload.output === "string" && payload.output.length > max) {
    log("debug", `shortening the output of ${payload.name} from ${payload.output.length} to ${max} characters`);
    const output = `${payload.output.slice(0, max)}\n[... ${payload.output.length - max} more characters cut by {{name}}]`;
    // A patch is a JSON object whose fields replace the payload's fields.
    return { tag: "patch", val: JSON.stringify({ output }) };
  }
  return CONTINUE;
}

function readCount(event) {
  if (event.sessionId === undefined) return 0;
  const stored = sessionGet("tool-calls");
  return stored ? Number(decoder.decode(stored)) : 0;
}
