// js-crash: a deliberately failing tool plugin. Each tool fails in one of
// JavaScript's typical ways, so the host's handling (and the text the guest
// writes to stderr) can be checked; js_crash_tool_error fails the proper way,
// with a tool-error the model can read, for contrast.
//
// Nothing here catches: an exception that leaves invoke() and is not a
// tool-error makes the ComponentJS bindings print a line to stderr and abort,
// which the host sees as a trap.
import { log } from "agent:plugin/host@0.1.0";

const TOOLS = {
  js_crash_type_error: "Reads a property of undefined three calls deep (TypeError).",
  js_crash_throw: "Throws a plain Error.",
  js_crash_recursion: "Recurses without end (InternalError: too much recursion).",
  js_crash_bigint: "Mixes the u64 timeout (a BigInt) with a Number (TypeError).",
  js_crash_tool_error: "Returns a proper tool-error (failed), not a crash.",
};

function loadSettings(doc) {
  // doc.settings is undefined: reading .retries from it throws.
  return doc.settings.retries;
}
function parseDocument(args) {
  return loadSettings({ name: args.name ?? "doc" });
}
function handle(args) {
  return parseDocument(args) + 1;
}

function depth(n) {
  return depth(n + 1) + 1;
}

export const tool = {
  describe() {
    return Object.entries(TOOLS).map(([name, description]) => ({
      name,
      description,
      inputSchema: JSON.stringify({ type: "object", properties: { name: { type: "string" } } }),
      hints: { readOnly: true, idempotent: true },
    }));
  },

  invoke(name, argsJson, ctx) {
    const args = JSON.parse(argsJson);
    log("info", `about to fail in ${name}`);
    switch (name) {
      case "js_crash_type_error":
        return { content: [{ tag: "text", val: String(handle(args)) }] };
      case "js_crash_throw":
        throw new Error("js-crash: something went wrong on purpose");
      case "js_crash_recursion":
        return { content: [{ tag: "text", val: String(depth(0)) }] };
      case "js_crash_bigint": {
        // ctx.timeoutMs is a BigInt (WIT u64): BigInt / Number throws.
        const seconds = ctx.timeoutMs / 1000;
        return { content: [{ tag: "text", val: `budget ${seconds} s` }] };
      }
      case "js_crash_tool_error":
        // The proper way to fail: throw the tool-error variant itself
        // (or anything with an own `payload` property holding it).
        throw { tag: "failed", val: "js-crash: the tool ran and could not do the job (a tool-error, on purpose)" };
    }
    throw { tag: "invalid-arguments", val: `unknown tool '${name}'` };
  },
};
