// Unit tests of the counting logic, run with plain Node (no build needed):
//   node --test plugins/js/wordfreq/tests/
import { test } from "node:test";
import assert from "node:assert/strict";
import { countWords, formatTable, mergeCounts, pruneToFit, topWords } from "../src/wordfreq.js";

test("counts Unicode words with case folding", () => {
  const r = countWords("The cat, THE Cat! Grüße кошка кошка 日本 don't state-of-the-art");
  assert.equal(r.counts.get("the"), 2);
  assert.equal(r.counts.get("cat"), 2);
  assert.equal(r.counts.get("grüße"), 1);
  assert.equal(r.counts.get("кошка"), 2);
  assert.equal(r.counts.get("日本"), 1);
  assert.equal(r.counts.get("don't"), 1);
  assert.equal(r.counts.get("state-of-the-art"), 1);
  assert.equal(r.totalWords, 10);
});

test("case sensitivity, stop words, minimum length, numbers", () => {
  const r = countWords("The the a cat 42 𝒳𝒴 x", {
    caseSensitive: true,
    stopWords: new Set(["the"]),
    minLength: 2,
    skipNumbers: true,
  });
  assert.deepEqual([...r.counts.keys()].sort(), ["The", "cat", "𝒳𝒴"]);
  assert.equal(r.skipped, 4); // the, a, 42, x
});

test("top words are ordered by count, then alphabetically", () => {
  const counts = new Map([["b", 2], ["a", 2], ["c", 5], ["d", 1]]);
  assert.deepEqual(topWords(counts, 3), [
    { word: "c", count: 5 },
    { word: "a", count: 2 },
    { word: "b", count: 2 },
  ]);
  assert.deepEqual(topWords({ x: 1, y: 3 }, 1), [{ word: "y", count: 3 }]);
});

test("progress and early stop", () => {
  const seen = [];
  const text = "word ".repeat(1000);
  const r = countWords(text, { progressEvery: 1000, onProgress: (d, t) => seen.push([d, t]), shouldStop: () => seen.length >= 2 });
  assert.equal(r.stopped, true);
  assert.equal(seen.length, 2);
  assert.ok(r.charsDone < text.length);
});

test("merge and prune keep the corpus under the limit", () => {
  const corpus = { calls: 1, total_words: 0, counts: {} };
  const big = new Map();
  for (let i = 0; i < 5000; i++) big.set(`word${i}`, i % 7 === 0 ? 10 : 1);
  mergeCounts(corpus.counts, big);
  const dropped = pruneToFit(corpus, 20000);
  assert.ok(dropped > 0);
  assert.equal(corpus.dropped_words, dropped);
  assert.ok(new TextEncoder().encode(JSON.stringify(corpus)).length <= 20000);
  // The frequent words survive.
  assert.equal(corpus.counts.word0, 10);
});

test("table", () => {
  assert.equal(formatTable([{ word: "ab", count: 3 }, { word: "c", count: 1 }], 4), "  1. ab       3   75.0%\n  2. c        1   25.0%");
});
