// js-wordfreq: word frequencies of a text, a tool plugin written in
// JavaScript and built with `jco componentize --bundle` (ComponentizeJS /
// StarlingMonkey). This file wires ./wordfreq.js to the plugin contract
// (wit/v0.1/plugin.wit, world `tool-plugin`).
//
// How the WIT types look from JavaScript (observed with jco 1.35.0 +
// componentize-js 0.23.0):
//   - names are camelCase: kv-get -> kvGet, input-schema -> inputSchema
//   - u64 is a BigInt both ways (ctx.timeoutMs, monotonicNow()); progress()
//     also accepts plain numbers
//   - option<T> is the value or undefined (absent fields are fine)
//   - list<u8> arrives as a Uint8Array; a Uint8Array or a plain array is accepted
//   - flags are an object of booleans: { readOnly: true, idempotent: true }
//   - variants and enums: { tag: "text", val: "..." } and "info"
//   - result<T, E> returned by the export: return T for ok; throw E for err
//     (see ToolError below); a host import that returns result<_, string>
//     throws an Error (ComponentError) whose `payload` is the string
import { config, kvGet, kvSet, log, monotonicNow, progress } from "agent:plugin/host@0.1.0";
import { countWords, formatTable, mergeCounts, pruneToFit, topWords } from "./wordfreq.js";

const TOOL = "js_word_frequencies";
// Values are at most 1 MiB; keep a margin for the JSON around the counts.
const MAX_CORPUS_BYTES = 1000 * 1000;
const CORPUS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

// Thrown to make invoke() return err(tool-error). The bindings use an own
// `payload` property of a thrown value as the error; a thrown Error without
// one (a TypeError, ...) is NOT a tool error: the call traps instead.
class ToolError extends Error {
  constructor(tag, message) {
    super(message);
    this.payload = { tag, val: message };
  }
}
const invalid = (message) => new ToolError("invalid-arguments", message);
const failed = (message) => new ToolError("failed", message);

const INPUT_SCHEMA = {
  type: "object",
  properties: {
    text: { type: "string", minLength: 1, maxLength: 4000000, description: "The text to count words in." },
    top: { type: "integer", minimum: 1, maximum: 500, description: "How many of the most frequent words to return (default from the plugin config, 10)." },
    min_length: { type: "integer", minimum: 1, maximum: 50, description: "Skip words shorter than this many characters (default 1)." },
    case_sensitive: { type: "boolean", description: "Count `The` and `the` separately (default false: case is folded)." },
    exclude_stop_words: { type: "boolean", description: "Skip common words such as `the`, `and` (default true; the list is in the plugin config)." },
    extra_stop_words: { type: "array", items: { type: "string", minLength: 1, maxLength: 100 }, maxItems: 1000, description: "More words to skip in this call." },
    skip_numbers: { type: "boolean", description: "Skip tokens made only of digits (default false)." },
    corpus: { type: "string", pattern: "^[A-Za-z0-9_.-]{1,64}$", description: "Add this text's counts to the named corpus kept across calls, and also return the corpus' top words." },
  },
  required: ["text"],
  additionalProperties: false,
};

const ROW = {
  type: "object",
  properties: { word: { type: "string" }, count: { type: "integer" }, share: { type: "number" } },
  required: ["word", "count", "share"],
};
const OUTPUT_SCHEMA = {
  type: "object",
  properties: {
    total_words: { type: "integer" },
    distinct_words: { type: "integer" },
    skipped: { type: "integer", description: "Tokens skipped as stop words, too short or numbers." },
    top: { type: "array", items: ROW },
    corpus: {
      type: "object",
      properties: {
        name: { type: "string" },
        calls: { type: "integer" },
        total_words: { type: "integer" },
        distinct_words: { type: "integer" },
        dropped_words: { type: "integer", description: "Rare words dropped to keep the stored corpus under 1 MB." },
        top: { type: "array", items: ROW },
      },
      required: ["name", "calls", "total_words", "distinct_words", "top"],
    },
  },
  required: ["total_words", "distinct_words", "skipped", "top"],
};

// NOTE: no host call may run at the top level of a module. ComponentizeJS
// runs the top level once at build time (Wizer snapshot), where there is no
// host; call config() etc. inside describe()/invoke().
export const tool = {
  describe() {
    return [
      {
        name: TOOL,
        title: "Word frequencies",
        description:
          "Count the words of a text and return the most frequent ones with their counts and share. " +
          "Words are Unicode letters/digits (any script), case is folded and common English stop words " +
          "are skipped unless told otherwise. Pass `corpus` to accumulate counts across calls.",
        inputSchema: JSON.stringify(INPUT_SCHEMA),
        outputSchema: JSON.stringify(OUTPUT_SCHEMA),
        // Not read-only or idempotent when `corpus` is used (it writes state).
        hints: { parallelSafe: false },
      },
    ];
  },

  invoke(name, argsJson, ctx) {
    try {
      if (name !== TOOL) throw invalid(`unknown tool '${name}'; this plugin has ${TOOL}`);
      return wordFrequencies(JSON.parse(argsJson), ctx);
    } catch (e) {
      // An unexpected exception traps the call; the bindings then print only
      // its message. Print the stack first so `agent-host -vv` shows where.
      if (!(e instanceof ToolError)) console.error(`js-wordfreq: unexpected ${e && e.stack ? `${e}\n${e.stack}` : e}`);
      throw e;
    }
  },
};

function readConfig() {
  let cfg;
  try {
    cfg = JSON.parse(config());
  } catch (e) {
    throw failed(`the plugin config is not JSON: ${e.message}`);
  }
  return {
    top: intOr(cfg.default_top, 10),
    minLength: intOr(cfg.min_length, 1),
    excludeStopWords: cfg.exclude_stop_words !== false,
    stopWords: Array.isArray(cfg.stop_words) ? cfg.stop_words.map(String) : [],
    progressEvery: intOr(cfg.progress_every, 65536),
  };
}

function intOr(v, fallback) {
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

function wordFrequencies(args, ctx) {
  const cfg = readConfig();
  const { text } = args;
  if (typeof text !== "string" || text.length === 0) throw invalid("`text` must be a non-empty string");
  const top = args.top ?? cfg.top;
  const minLength = args.min_length ?? cfg.minLength;
  const caseSensitive = args.case_sensitive === true;
  const fold = (w) => (caseSensitive ? w : w.toLowerCase());
  const stopWords = new Set();
  if (args.exclude_stop_words ?? cfg.excludeStopWords) cfg.stopWords.forEach((w) => stopWords.add(fold(w)));
  (args.extra_stop_words ?? []).forEach((w) => stopWords.add(fold(String(w))));
  if (args.corpus !== undefined && !CORPUS_NAME.test(args.corpus)) {
    throw invalid("`corpus` must be 1-64 characters of A-Z a-z 0-9 _ . -");
  }

  // u64 values are BigInts: keep the arithmetic in BigInt (mixing BigInt and
  // Number throws a TypeError). Stop at 80% of the call's budget so a huge
  // text gets a clear tool error instead of being killed by the host.
  const started = monotonicNow();
  const budgetNs = (ctx.timeoutMs * 1000000n * 8n) / 10n;
  const total = BigInt(text.length);
  const result = countWords(text, {
    minLength,
    caseSensitive,
    stopWords,
    skipNumbers: args.skip_numbers === true,
    progressEvery: cfg.progressEvery,
    onProgress: (done) => progress(BigInt(done), total, "counting words"),
    shouldStop: () => monotonicNow() - started > budgetNs,
  });
  const elapsedMs = Number(monotonicNow() - started) / 1e6;
  if (result.stopped) {
    throw failed(
      `ran out of time after ${result.charsDone} of ${text.length} characters ` +
        `(budget ${ctx.timeoutMs} ms); send a shorter text or split it across calls with \`corpus\``,
    );
  }
  if (text.length > cfg.progressEvery) progress(total, total, "done");
  log("debug", `${result.totalWords} words, ${result.counts.size} distinct, in ${elapsedMs.toFixed(1)} ms (call ${ctx.callId})`);

  const rows = withShare(topWords(result.counts, top), result.totalWords);
  const structured = {
    total_words: result.totalWords,
    distinct_words: result.counts.size,
    skipped: result.skipped,
    top: rows,
  };
  let text_out =
    `${result.totalWords} words, ${result.counts.size} distinct` +
    (result.skipped ? `, ${result.skipped} skipped` : "") +
    `. Top ${rows.length}:\n${formatTable(rows, result.totalWords)}`;

  if (args.corpus !== undefined) {
    const corpus = updateCorpus(args.corpus, result);
    const corpusRows = withShare(topWords(corpus.counts, top), corpus.total_words);
    structured.corpus = {
      name: args.corpus,
      calls: corpus.calls,
      total_words: corpus.total_words,
      distinct_words: Object.keys(corpus.counts).length,
      dropped_words: corpus.dropped_words ?? 0,
      top: corpusRows,
    };
    text_out +=
      `\n\nCorpus '${args.corpus}' after ${corpus.calls} call(s): ${corpus.total_words} words, ` +
      `${structured.corpus.distinct_words} distinct. Top ${corpusRows.length}:\n` +
      formatTable(corpusRows, corpus.total_words);
  }

  return {
    content: [{ tag: "text", val: text_out }],
    structured: JSON.stringify(structured),
  };
}

function withShare(rows, totalWords) {
  return rows.map((r) => ({ ...r, share: totalWords ? Math.round((1e4 * r.count) / totalWords) / 1e4 : 0 }));
}

// The corpus is one kv value, JSON { calls, total_words, counts: {word: n} }.
// kvGet returns a Uint8Array, or undefined when the key does not exist.
function updateCorpus(name, result) {
  const key = `corpus/${name}`;
  const stored = kvGet(key);
  let corpus = { calls: 0, total_words: 0, counts: {} };
  if (stored !== undefined) {
    try {
      corpus = JSON.parse(new TextDecoder().decode(stored));
    } catch (e) {
      log("warn", `corpus '${name}' held invalid JSON (${e.message}); starting it again`);
    }
  }
  corpus.calls += 1;
  corpus.total_words += result.totalWords;
  mergeCounts(corpus.counts, result.counts);
  const dropped = pruneToFit(corpus, MAX_CORPUS_BYTES);
  if (dropped) log("info", `corpus '${name}': dropped ${dropped} rare words to stay under ${MAX_CORPUS_BYTES} bytes`);
  try {
    kvSet(key, new TextEncoder().encode(JSON.stringify(corpus)));
  } catch (e) {
    // A host result<_, string> error: e.payload is the host's message
    // (which limit or quota was hit).
    throw failed(`could not store corpus '${name}': ${e.payload ?? e.message}`);
  }
  return corpus;
}
