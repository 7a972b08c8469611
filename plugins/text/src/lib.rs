//! plugin-text: the `word_count`, `regex_search` and `slugify` tools.

use agent_plugin_sdk::prelude::*;
use regex::RegexBuilder;

const DEFAULT_MAX_MATCHES: u64 = 100;
/// Bounds the compiled program so a pathological pattern fails cleanly
/// instead of exhausting the plugin's memory limit.
const REGEX_SIZE_LIMIT: usize = 4 << 20;

struct Text;

impl Plugin for Text {
    fn tools() -> Vec<ToolSpec> {
        let text_only = json!({
            "type": "object",
            "properties": { "text": { "type": "string" } },
            "required": ["text"],
            "additionalProperties": false
        });
        vec![
            ToolSpec::new(
                "word_count",
                "Count the words (runs of non-whitespace), lines, Unicode characters and UTF-8 bytes of a text.",
            )
            .title("Word count")
            .schema(text_only.clone())
            .output_schema(json!({
                "type": "object",
                "properties": {
                    "words": { "type": "integer" },
                    "lines": { "type": "integer" },
                    "chars": { "type": "integer" },
                    "bytes": { "type": "integer" }
                },
                "required": ["words", "lines", "chars", "bytes"]
            }))
            .read_only()
            .idempotent()
            .parallel_safe(),
            ToolSpec::new(
                "regex_search",
                "Find the matches of a regular expression (Rust regex syntax: no look-around or \
                 backreferences) in a text. Returns each match with its byte offsets and capture groups.",
            )
            .title("Regex search")
            .schema(json!({
                "type": "object",
                "properties": {
                    "pattern": { "type": "string", "minLength": 1, "description": "e.g. `(?i)\\bfoo\\w*`" },
                    "text": { "type": "string" },
                    "max_matches": {
                        "type": "integer", "minimum": 1, "maximum": 10000, "default": DEFAULT_MAX_MATCHES,
                        "description": "Stop after this many matches"
                    }
                },
                "required": ["pattern", "text"],
                "additionalProperties": false
            }))
            .output_schema(json!({
                "type": "object",
                "properties": {
                    "matches": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "start": { "type": "integer" },
                                "end": { "type": "integer" },
                                "text": { "type": "string" },
                                "groups": { "type": "array", "items": { "type": ["string", "null"] } }
                            },
                            "required": ["start", "end", "text"]
                        }
                    },
                    "count": { "type": "integer" },
                    "truncated": { "type": "boolean" }
                },
                "required": ["matches", "count", "truncated"]
            }))
            .read_only()
            .idempotent()
            .parallel_safe(),
            ToolSpec::new(
                "slugify",
                "Turn a title into a URL slug: lower case, accents folded, runs of anything else \
                 replaced by single hyphens (`Héllo, World!` -> `hello-world`).",
            )
            .title("Slugify")
            .schema(text_only)
            .output_schema(json!({
                "type": "object",
                "properties": { "slug": { "type": "string" } },
                "required": ["slug"]
            }))
            .read_only()
            .idempotent()
            .parallel_safe(),
        ]
    }

    fn call(name: &str, args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "word_count" => Ok(word_count(args.str_field("text")?)),
            "regex_search" => {
                let max = args
                    .opt_u64_field("max_matches")?
                    .unwrap_or(DEFAULT_MAX_MATCHES);
                regex_search(
                    args.str_field("pattern")?,
                    args.str_field("text")?,
                    max as usize,
                )
            }
            "slugify" => {
                let slug = slugify(args.str_field("text")?);
                Ok(Output::text(slug.clone()).with_structured(json!({ "slug": slug })))
            }
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Text);

fn word_count(text: &str) -> Output {
    let words = text.split_whitespace().count();
    let lines = text.lines().count();
    let chars = text.chars().count();
    let bytes = text.len();
    Output::text(format!(
        "{words} words, {lines} lines, {chars} characters, {bytes} bytes"
    ))
    .with_structured(json!({ "words": words, "lines": lines, "chars": chars, "bytes": bytes }))
}

fn regex_search(pattern: &str, text: &str, max: usize) -> Result<Output, ToolError> {
    let regex = RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|err| {
            ToolError::invalid_arguments(format!(
                "`pattern` is not a valid regular expression: {err}"
            ))
        })?;
    let mut matches = Vec::new();
    let mut truncated = false;
    for caps in regex.captures_iter(text) {
        if matches.len() == max {
            truncated = true;
            break;
        }
        let whole = caps.get(0).expect("group 0 is the whole match");
        let mut entry =
            json!({ "start": whole.start(), "end": whole.end(), "text": whole.as_str() });
        if caps.len() > 1 {
            let groups: Vec<Value> = caps
                .iter()
                .skip(1)
                .map(|group| group.map_or(Value::Null, |g| Value::String(g.as_str().to_owned())))
                .collect();
            entry["groups"] = Value::Array(groups);
        }
        matches.push(entry);
    }
    let count = matches.len();
    let mut summary = match count {
        0 => "no matches".to_owned(),
        1 => "1 match".to_owned(),
        n => format!("{n} matches"),
    };
    if truncated {
        summary.push_str(&format!(
            " (stopped at max_matches = {max}; there are more)"
        ));
    }
    let structured = json!({ "matches": matches, "count": count, "truncated": truncated });
    Ok(Output::text(summary)
        .with_json(structured.clone())
        .with_structured(structured))
}

fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    // A separator is only written before the next kept character, so
    // leading and trailing separators disappear and runs collapse.
    let mut pending_hyphen = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        let mut buf = [0u8; 4];
        let piece = match fold_latin(c) {
            Some(ascii) => ascii,
            // Letters of other scripts stay: an empty slug for a Greek or
            // Japanese title would be worse than a non-ASCII one.
            None if c.is_alphanumeric() => c.encode_utf8(&mut buf),
            None => {
                pending_hyphen = true;
                continue;
            }
        };
        if pending_hyphen && !slug.is_empty() {
            slug.push('-');
        }
        pending_hyphen = false;
        slug.push_str(piece);
    }
    slug
}

/// ASCII spellings of the accented Latin letters that titles commonly carry.
fn fold_latin(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'ł' | 'ľ' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ß' => "ss",
        'ť' | 'ţ' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Héllo, World!"), "hello-world");
        assert_eq!(slugify("  --Already-a-slug--  "), "already-a-slug");
        assert_eq!(slugify("Straße & Œuvre 2024"), "strasse-oeuvre-2024");
        assert_eq!(slugify("Ελληνικά κείμενα"), "ελληνικά-κείμενα");
        assert_eq!(slugify("!!!"), "");
    }

    #[test]
    fn counts() {
        let out = word_count("one two\nthree é\n");
        assert_eq!(
            out.structured,
            Some(json!({"words": 4, "lines": 2, "chars": 16, "bytes": 17}))
        );
        assert_eq!(
            word_count("").structured,
            Some(json!({"words": 0, "lines": 0, "chars": 0, "bytes": 0}))
        );
    }

    #[test]
    fn regex_matches_and_errors() {
        let out = regex_search(r"(\w)(\d)?", "a1 b", 10).unwrap();
        let s = out.structured.unwrap();
        assert_eq!(s["count"], 2);
        assert_eq!(
            s["matches"][0],
            json!({"start": 0, "end": 2, "text": "a1", "groups": ["a", "1"]})
        );
        assert_eq!(s["matches"][1]["groups"], json!(["b", null]));
        let out = regex_search("a", "aaaa", 2).unwrap();
        assert_eq!(out.structured.unwrap()["truncated"], true);
        let err = regex_search("(unclosed", "x", 1).unwrap_err();
        assert_eq!(
            err.kind(),
            agent_plugin_sdk::ToolErrorKind::InvalidArguments
        );
        assert!(err.message().contains("unclosed group"), "{err}");
    }
}
