//! Entry points for the fuzz targets in `fuzz/` (docs/fuzzing.md) on the provider decoders, built only with the `fuzzing` feature.
//!
//! Each function runs the code the host runs on a provider's response body,
//! delivered in arbitrary chunks. Nothing here is used by the normal build.

use std::collections::VecDeque;

use crate::anthropic::Messages;
use crate::http::decode_stream_for_fuzzing;
use crate::openai::{ChatCompletions, parse_completion};
use crate::sse::SseEvent;
use crate::{ProviderEvent, SseParser};

/// Splits `body` at `cuts` (byte offsets, any order, out-of-range ones
/// ignored): the chunks an HTTP body may arrive in.
pub fn chunks<'a>(body: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().copied().filter(|&c| c < body.len()).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        out.push(&body[start..cut]);
        start = cut;
    }
    out.push(&body[start..]);
    out
}

/// The events of an SSE body delivered in `chunks`, or the parser's error, in the order the host's `SseBody` yields them.
/// Lazy, like `SseBody`: a consumer that stops early never sees a later
/// error.
struct SseEvents<'a> {
    chunks: std::vec::IntoIter<&'a [u8]>,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
    ended: bool,
}

impl<'a> SseEvents<'a> {
    fn new(chunks: Vec<&'a [u8]>) -> Self {
        Self {
            chunks: chunks.into_iter(),
            parser: SseParser::new(),
            ready: VecDeque::new(),
            ended: false,
        }
    }
}

impl Iterator for SseEvents<'_> {
    type Item = Result<SseEvent, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            if self.ended {
                return None;
            }
            match self.chunks.next() {
                Some(chunk) => match self.parser.push(chunk) {
                    Ok(events) => self.ready.extend(events),
                    Err(err) => {
                        self.ended = true;
                        return Some(Err(err.to_string()));
                    }
                },
                None => {
                    self.ended = true;
                    self.ready.extend(self.parser.finish());
                }
            }
        }
    }
}

/// Every event of an SSE body delivered in `chunks`, as `(event, data)`,
/// or the first error.
pub fn sse_events(chunks: Vec<&[u8]>) -> Result<Vec<(String, String)>, String> {
    SseEvents::new(chunks)
        .map(|event| event.map(|event| (event.event, event.data)))
        .collect()
}

/// The OpenAI streamed decoder on an SSE body delivered in `chunks`.
pub fn openai_stream(chunks: Vec<&[u8]>) -> Result<Vec<ProviderEvent>, String> {
    let wire = ChatCompletions { stream: true };
    decode_stream_for_fuzzing(&wire, SseEvents::new(chunks))
}

/// The OpenAI decoder of a whole (non-streamed) response body.
pub fn openai_completion(body: &[u8]) -> Result<Vec<ProviderEvent>, String> {
    parse_completion(body)
}

/// The Anthropic streamed decoder on an SSE body delivered in `chunks`.
pub fn anthropic_stream(chunks: Vec<&[u8]>) -> Result<Vec<ProviderEvent>, String> {
    decode_stream_for_fuzzing(&Messages, SseEvents::new(chunks))
}
