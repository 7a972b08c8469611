// {{name}}: an agent-host tool plugin written in JavaScript.
//
// The contract is wit/plugin.wit (package agent:plugin@{{contract}}, world
// `tool-plugin`): this module exports `tool` with describe() and invoke(),
// and may call the host functions imported below. `make` turns it into
// build/{{name}}.wasm with `jco componentize`.
//
// How WIT types look in JavaScript:
//   kebab-case names       -> camelCase (kv-get -> kvGet, input-schema -> inputSchema)
//   u64 (timeout-ms, ...)  -> BigInt: 5000n. Never mix with numbers (5000n / 1000 throws)
//   option<T>              -> the value, or undefined (leave the field out)
//   list<u8>               -> Uint8Array
//   flags (tool-hints)     -> { readOnly: true, idempotent: true, ... }
//   variant / enum         -> { tag: "text", val: "..." } / "info"
//   result<T, E> (invoke)  -> return T; throw E to return an error (see toolError)
import { config, kvGet, kvSet, log, progress } from "agent:plugin/host@{{contract}}";

// NOTE: code at the top level of a module runs once, at BUILD time (the
// engine is snapshotted with Wizer). Calling the host, Math.random() or
// crypto there fails the build, and Date.now() would be the build's time.
// Do such things inside describe() / invoke().

const TOOL = "{{snake}}_greet";

// Throw this to make invoke() return a tool-error: the model sees the
// message and can correct itself. The bindings take the error from an own
// `payload` property ({ tag, val }). Anything else thrown (a TypeError, a
// plain Error) is a crash: the call traps and only the message reaches the log.
function toolError(tag, message) {
  // tag: "invalid-arguments" | "failed" | "denied"
  const e = new Error(message);
  e.payload = { tag, val: message };
  return e;
}

export const tool = {
  // Every tool this plugin offers. Called once per plugin version (the host
  // caches it), so it must not depend on arguments, config or state.
  describe() {
    return [
      {
        name: TOOL,
        title: "Greet",
        description: "Greet someone by name, one or more times. Counts how many greetings it has made.",
        // JSON Schema of the arguments, as JSON text. The host validates
        // every call against it, so invoke() can rely on it.
        inputSchema: JSON.stringify({
          type: "object",
          properties: {
            name: { type: "string", minLength: 1, maxLength: 100 },
            excited: { type: "boolean", default: false },
            times: { type: "integer", minimum: 1, maximum: 100, default: 1 },
          },
          required: ["name"],
          additionalProperties: false,
        }),
        // Optional: the schema of `structured` in the result.
        outputSchema: JSON.stringify({
          type: "object",
          properties: { greeting: { type: "string" }, count: { type: "integer" } },
          required: ["greeting", "count"],
        }),
        hints: { idempotent: false, readOnly: false },
      },
    ];
  },

  // Run the tool `name` with `argsJson` (already validated against the
  // schema). ctx = { callId, sessionId (string or undefined), timeoutMs (BigInt) }.
  invoke(name, argsJson, ctx) {
    try {
      switch (name) {
        case TOOL:
          return greet(JSON.parse(argsJson), ctx);
        default:
          throw toolError("invalid-arguments", `unknown tool '${name}'`);
      }
    } catch (e) {
      // A crash traps the call and the bindings print only e's message.
      // Print the stack first, so `agent-host -vv tools call ...` shows where.
      // (Line numbers refer to the bundled module, not to src/ files.)
      const isToolError = e !== null && typeof e === "object" && ("payload" in e || "tag" in e);
      if (!isToolError) console.error(`${name} crashed: ${e}\n${e?.stack ?? ""}`);
      throw e;
    }
  },
};

function greet(args, ctx) {
  // config() is the manifest's [config] table as JSON text ("{}" if none).
  const cfg = JSON.parse(config());
  const word = typeof cfg.greeting === "string" ? cfg.greeting : "Hello";
  const times = args.times ?? 1;
  if (args.name.trim() === "") throw toolError("invalid-arguments", "`name` must not be blank");

  const lines = [];
  for (let i = 1; i <= times; i++) {
    lines.push(`${word}, ${args.name}${args.excited ? "!" : "."}`);
    // Long calls report progress (done, total?, message?); u64 -> BigInt.
    progress(BigInt(i), BigInt(times), `greeting ${i} of ${times}`);
  }

  // Each call runs in a fresh instance: the host's key-value store is the
  // only state that survives between calls. Values are bytes (Uint8Array);
  // kvGet returns undefined for a missing key; kvSet throws when a limit is
  // hit (e.payload is the host's message).
  const stored = kvGet("greetings");
  const count = (stored ? Number(new TextDecoder().decode(stored)) : 0) + times;
  try {
    kvSet("greetings", new TextEncoder().encode(String(count)));
  } catch (e) {
    throw toolError("failed", `could not save the greeting count: ${e.payload ?? e.message}`);
  }

  // log() goes to the host's log (see it with -v / -vv), never to the user.
  log("debug", `greeting #${count} (call ${ctx.callId}, budget ${ctx.timeoutMs} ms)`);

  const greeting = lines.join("\n");
  return {
    content: [{ tag: "text", val: greeting }],
    structured: JSON.stringify({ greeting, count }),
  };
}
