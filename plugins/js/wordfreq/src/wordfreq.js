// Word counting for the js-wordfreq plugin. Plain JavaScript with no host
// imports, so it also runs under Node (see ../tests/wordfreq.test.mjs).

// A word is a run of letters, combining marks and digits, optionally joined
// by an apostrophe or a hyphen ("don't", "state-of-the-art"). The engine in
// the component (StarlingMonkey) is built without ICU and cannot parse \p{...}
// itself; `jco componentize --bundle` rewrites these regex *literals* into
// plain character classes at build time. A `new RegExp("\\p{L}", "u")` built
// from a string would NOT be rewritten and fails at run time.
const WORD = /[\p{L}\p{M}\p{N}]+(?:['\u2019-][\p{L}\p{M}\p{N}]+)*/gu;
const DIGITS = /^[\p{N}'\u2019-]+$/u;

/**
 * Count the words of `text`.
 *
 * options:
 *   minLength      words shorter than this (in code points) are skipped
 *   caseSensitive  false folds case (toLowerCase), so "The" and "the" count once
 *   stopWords      a Set of words (already case-folded when caseSensitive is false) to skip
 *   skipNumbers    skip tokens made only of digits
 *   onProgress     called as onProgress(charsDone, charsTotal) about every `progressEvery` chars
 *   progressEvery  characters between progress reports (default 65536)
 *   shouldStop     called with the same rhythm; returning true stops counting early
 *
 * Returns { counts: Map<word, count>, totalWords, skipped, charsDone, stopped }.
 */
export function countWords(text, options = {}) {
  const {
    minLength = 1,
    caseSensitive = false,
    stopWords = new Set(),
    skipNumbers = false,
    onProgress,
    progressEvery = 65536,
    shouldStop,
  } = options;
  const counts = new Map();
  let totalWords = 0;
  let skipped = 0;
  let nextReport = progressEvery;
  let stopped = false;
  let charsDone = text.length;

  WORD.lastIndex = 0;
  for (let m = WORD.exec(text); m !== null; m = WORD.exec(text)) {
    if (m.index >= nextReport) {
      nextReport = m.index + progressEvery;
      if (onProgress) onProgress(m.index, text.length);
      if (shouldStop && shouldStop()) {
        stopped = true;
        charsDone = m.index;
        break;
      }
    }
    let word = caseSensitive ? m[0] : m[0].toLowerCase();
    if (shorterThan(word, minLength) || stopWords.has(word) || (skipNumbers && DIGITS.test(word))) {
      skipped += 1;
      continue;
    }
    totalWords += 1;
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  WORD.lastIndex = 0;
  return { counts, totalWords, skipped, charsDone, stopped };
}

// Length in code points, not UTF-16 units, so "𝒳𝒴" has length 2. Counted
// by hand: the string iterator (`for (const c of s)`) is about 20x slower in
// the component's interpreter than charCodeAt.
function codePointLength(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) n -= 1;
  }
  return n;
}

// Each code point is 1 or 2 UTF-16 units, so most words need no counting.
function shorterThan(s, min) {
  if (s.length >= 2 * min) return false;
  if (s.length < min) return true;
  return codePointLength(s) < min;
}

/**
 * The `top` most frequent entries of a Map or a plain object of counts,
 * most frequent first; ties in alphabetical (code unit) order so the result
 * is deterministic.
 */
export function topWords(counts, top) {
  const entries = counts instanceof Map ? [...counts] : Object.entries(counts);
  entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return entries.slice(0, top).map(([word, count]) => ({ word, count }));
}

/** Add the counts of a Map into a plain object (the stored corpus form). */
export function mergeCounts(into, counts) {
  for (const [word, count] of counts) {
    into[word] = (into[word] ?? 0) + count;
  }
  return into;
}

/**
 * Drop the rarest words of a corpus until its JSON fits in `maxBytes`.
 * Returns how many distinct words were dropped.
 */
export function pruneToFit(corpus, maxBytes, encoder = new TextEncoder()) {
  const size = () => encoder.encode(JSON.stringify(corpus)).length;
  let bytes = size();
  if (bytes <= maxBytes) return 0;
  const before = corpus.dropped_words ?? 0;
  // Rarest first; among equals drop the longest words first (they cost most).
  const order = Object.entries(corpus.counts).sort((a, b) => a[1] - b[1] || b[0].length - a[0].length);
  let dropped = 0;
  while (bytes > maxBytes && dropped < order.length) {
    // Drop entries until the estimate fits (each costs about `"word":count,`),
    // then measure again: the estimate ignores escapes.
    let estimate = bytes;
    while (estimate > maxBytes && dropped < order.length) {
      const [word, count] = order[dropped];
      estimate -= encoder.encode(JSON.stringify(word)).length + String(count).length + 2;
      delete corpus.counts[word];
      dropped += 1;
    }
    corpus.dropped_words = before + dropped;
    bytes = size();
  }
  return dropped;
}

/** A fixed-width text table of ranked words for the model to read. */
export function formatTable(rows, totalWords) {
  if (rows.length === 0) return "(no words)";
  const width = Math.max(...rows.map((r) => codePointLength(r.word)));
  return rows
    .map((r, i) => {
      const share = totalWords > 0 ? ((100 * r.count) / totalWords).toFixed(1) : "0.0";
      const pad = " ".repeat(width - codePointLength(r.word));
      return `${String(i + 1).padStart(3)}. ${r.word}${pad}  ${String(r.count).padStart(6)}  ${share.padStart(5)}%`;
    })
    .join("\n");
}
