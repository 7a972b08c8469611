//! Incremental Server-Sent-Events parser: bytes in arbitrary chunks in, complete events out.
//!
//! Follows the WHATWG event-stream rules that matter to LLM APIs: lines end
//! in LF, CRLF or CR (a CRLF may be split across chunks); `:` starts a
//! comment; `event:` names the event; `data:` lines are joined with `\n`;
//! a blank line dispatches. Lines are decoded only once complete, so a
//! chunk boundary inside a UTF-8 character is harmless, and invalid UTF-8
//! becomes U+FFFD instead of an error.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, `message` when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Why a stream cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SseError {
    #[error(
        "an event-stream line is longer than {limit} bytes; the stream is not server-sent events"
    )]
    LineTooLong { limit: usize },
}

/// A line this long is not an LLM event: refusing it bounds the memory a
/// broken or hostile server can make us hold.
const DEFAULT_LINE_LIMIT: usize = 16 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parser state between chunks.
#[derive(Debug)]
pub(crate) struct SseParser {
    /// The current, not yet terminated line.
    line: Vec<u8>,
    /// The previous chunk ended in CR: a leading LF completes that CRLF.
    skip_lf: bool,
    /// No line has been completed yet (a leading BOM is dropped).
    first_line: bool,
    event: String,
    data: String,
    line_limit: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub(crate) fn new() -> Self {
        Self::with_line_limit(DEFAULT_LINE_LIMIT)
    }

    pub(crate) fn with_line_limit(line_limit: usize) -> Self {
        Self {
            line: Vec::new(),
            skip_lf: false,
            first_line: true,
            event: String::new(),
            data: String::new(),
            line_limit,
        }
    }

    /// Feeds the next chunk; returns the events it completed, in order.
    pub(crate) fn push(&mut self, mut chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        while !chunk.is_empty() {
            if self.skip_lf {
                self.skip_lf = false;
                if chunk[0] == b'\n' {
                    chunk = &chunk[1..];
                    continue;
                }
            }
            // CR and LF are ASCII and never occur inside a multi-byte UTF-8
            // sequence, so scanning raw bytes is safe.
            match chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.append(&chunk[..end])?;
                    self.skip_lf = chunk[end] == b'\r';
                    chunk = &chunk[end + 1..];
                    self.end_line(&mut events);
                }
                None => {
                    self.append(chunk)?;
                    chunk = &[];
                }
            }
        }
        Ok(events)
    }

    /// The stream ended. An unterminated last line is dropped (it may be
    /// cut short); an event whose fields are complete but that lacks the
    /// final blank line is dispatched, since some servers omit it.
    pub(crate) fn finish(&mut self) -> Option<SseEvent> {
        self.line.clear();
        self.skip_lf = false;
        self.dispatch()
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.line_limit {
            return Err(SseError::LineTooLong {
                limit: self.line_limit,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let mut raw = std::mem::take(&mut self.line);
        if std::mem::replace(&mut self.first_line, false) && raw.starts_with(BOM) {
            raw.drain(..BOM.len());
        }
        let line = String::from_utf8_lossy(&raw);
        if line.is_empty() {
            events.extend(self.dispatch());
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            // `id` and `retry` only matter to reconnecting browsers; unknown
            // fields are ignored by the spec.
            _ => {}
        }
        // Reuse the allocation for the next line.
        raw.clear();
        self.line = raw;
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the `\n` after the last data line
        Some(SseEvent {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> SseEvent {
        SseEvent {
            event: name.to_owned(),
            data: data.to_owned(),
        }
    }

    fn parse_in_pieces(bytes: &[u8], sizes: impl Fn(usize) -> usize) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        let mut rest = bytes;
        let mut step = 0;
        while !rest.is_empty() {
            let take = sizes(step).clamp(1, rest.len());
            events.extend(parser.push(&rest[..take]).unwrap());
            rest = &rest[take..];
            step += 1;
        }
        events.extend(parser.finish());
        events
    }

    const SAMPLE: &str = "\u{feff}: keep-alive comment\r\n\
        event: message_start\r\n\
        data: {\"a\":\"héllo wörld ✓ 🎉\"}\r\n\
        \r\n\
        data: first line\n\
        data: second line\n\
        data:no-space\n\
        data\n\
        \n\
        event: ping\n\
        \n\
        id: 7\n\
        retry: 10\n\
        data: [DONE]\r\r";

    fn sample_events() -> Vec<SseEvent> {
        vec![
            event("message_start", "{\"a\":\"héllo wörld ✓ 🎉\"}"),
            event("message", "first line\nsecond line\nno-space\n"),
            event("message", "[DONE]"),
        ]
    }

    #[test]
    fn whole_stream_at_once() {
        assert_eq!(
            parse_in_pieces(SAMPLE.as_bytes(), |_| usize::MAX),
            sample_events()
        );
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let bytes = SAMPLE.as_bytes();
        for split in 1..bytes.len() {
            let mut parser = SseParser::new();
            let mut events = parser.push(&bytes[..split]).unwrap();
            events.extend(parser.push(&bytes[split..]).unwrap());
            events.extend(parser.finish());
            assert_eq!(events, sample_events(), "split at byte {split}");
        }
    }

    #[test]
    fn byte_by_byte_and_uneven_chunks() {
        let bytes = SAMPLE.as_bytes();
        assert_eq!(parse_in_pieces(bytes, |_| 1), sample_events());
        assert_eq!(
            parse_in_pieces(bytes, |step| [3, 1, 7, 2, 5][step % 5]),
            sample_events()
        );
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"data: x\r").unwrap().is_empty());
        // The LF completes the CRLF; only the next CR/LF is the blank line.
        assert!(parser.push(b"\n").unwrap().is_empty());
        assert_eq!(parser.push(b"\r\n").unwrap(), vec![event("message", "x")]);
    }

    #[test]
    fn event_name_without_data_is_not_dispatched_and_is_reset() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"event: lonely\n\n").unwrap().is_empty());
        assert_eq!(
            parser.push(b"data: y\n\n").unwrap(),
            vec![event("message", "y")]
        );
    }

    #[test]
    fn empty_data_field_dispatches_empty_data() {
        let mut parser = SseParser::new();
        assert_eq!(
            parser.push(b"data:\n\n").unwrap(),
            vec![event("message", "")]
        );
    }

    #[test]
    fn unterminated_last_line_is_dropped_at_the_end() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"data: {\"cut").unwrap().is_empty());
        assert_eq!(parser.finish(), None);
        let mut parser = SseParser::new();
        assert!(parser.push(b"data: whole\n").unwrap().is_empty());
        assert_eq!(parser.finish(), Some(event("message", "whole")));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut parser = SseParser::new();
        assert_eq!(
            parser.push(b"data: a\xffb\n\n").unwrap(),
            vec![event("message", "a\u{fffd}b")]
        );
    }

    #[test]
    fn overlong_line_is_an_error() {
        let mut parser = SseParser::with_line_limit(8);
        assert!(parser.push(b"data: 12\n").is_ok());
        assert_eq!(
            parser.push(b"data: 123"),
            Err(SseError::LineTooLong { limit: 8 })
        );
    }
}
