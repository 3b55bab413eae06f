//! Why a body is not the JSON asked for, in words a person knows.
//!
//! simd-json says where it stopped and gives a terse code
//! (`InternalError at character 0 ('<')`, the same code for an HTML page and
//! for a second NDJSON line). This turns the code, the place and the bytes
//! found there into a sentence: what was expected, and what came instead,
//! shown escaped and cut short (`"<!DOCTYPE html>\n<html>…"`).
//!
//! simd-json rewrites strings in place as it parses, so of a body that
//! failed only the bytes from the error on are as the server sent them: the
//! words quote those. Errors of its first pass (invalid UTF-8, a string that
//! never ends, a stray control character) come before any rewriting, so the
//! whole body is as sent, and serde_json's reading of it says what is wrong.

use simd_json::ErrorType;

use super::number;
use crate::error::Error;

/// How many characters of a body a message quotes.
const EXCERPT_CHARS: usize = 40;

/// What NDJSON, or anything after the document, amounts to.
const MORE_THAN_ONE: &str = "more than one JSON value (NDJSON, or data after the document)";

/// [`MORE_THAN_ONE`], with where the first value ends (`end`) and what
/// comes next (at `next`).
fn more_than_one(body: &[u8], end: usize, next: usize) -> (String, Option<usize>) {
    let then = excerpt(body.get(next..).unwrap_or_default());
    (
        format!("{MORE_THAN_ONE}: the first ends at byte {end}, then comes {then}"),
        Some(next),
    )
}

/// What went wrong with `body`, which simd-json refused with `error`: in
/// words, and the byte offset it is at, when known.
pub(crate) fn describe(error: &simd_json::Error, body: &[u8]) -> (String, Option<usize>) {
    let Some(character) = error.character() else {
        return first_pass(error.error(), body);
    };
    let at = error.index();
    let found = || found(body.get(at..).unwrap_or_default());
    let problem = match error.error() {
        ErrorType::InternalError | ErrorType::UnexpectedCharacter
            if Some(at) == first_token(body) =>
        {
            not_json(body.get(at..).unwrap_or_default())
        }
        ErrorType::InternalError if matches!(character, '}' | ']') && closes_a_value(body, at) => {
            match next_token(body, at.saturating_add(1)) {
                Some(next) => return more_than_one(body, at + 1, next),
                None => format!("unexpected {character:?}"),
            }
        }
        // A first value that is no array or object: simd-json says where
        // it starts; what follows it is found the same way.
        ErrorType::TrailingData => {
            let end = at + token_length(body.get(at..).unwrap_or_default());
            if let Some(next) = next_token(body, end) {
                return more_than_one(body, end, next);
            }
            MORE_THAN_ONE.to_owned()
        }
        ErrorType::DepthLimitExceeded => {
            "arrays and objects nested deeper than parfetch reads (1,024 levels)".to_owned()
        }
        // simd-json stops inside the number: quoted from its start, and
        // said to be out of range when the grammar has nothing against it.
        ErrorType::InvalidNumber | ErrorType::InvalidExponent => {
            let start = number_start(body, at);
            let number = body.get(start..).unwrap_or_default();
            let what = if number::is_number(&number[..number::token_len(number)]) {
                "a number out of range (valid JSON, but past what a 64-bit float holds)"
            } else {
                "a number that is not valid JSON"
            };
            return (format!("{what}: {}", excerpt(number)), Some(start));
        }
        // simd-json places these within their string, not the body: the
        // place is serde_json's, read on the body, and taken when it finds
        // the same fault (the bytes before it may have been rewritten).
        ErrorType::InvalidEscape
        | ErrorType::InvalidUnicodeEscape
        | ErrorType::InvalidUnicodeCodepoint
        | ErrorType::InvalidUtf8 => {
            let (words, offset) = serde_json_reading(body);
            let same = ["escape", "surrogate", "UTF-8"]
                .iter()
                .any(|fault| words.contains(fault));
            if same {
                return (words, offset);
            }
            let words = match error.error() {
                ErrorType::InvalidUnicodeCodepoint => {
                    "an invalid escape sequence in a string: half a UTF-16 surrogate pair, \
                     or no character at all"
                }
                _ => "an invalid escape sequence in a string",
            };
            return (words.to_owned(), None);
        }
        ErrorType::UnterminatedString => "a string that never ends".to_owned(),
        ErrorType::Eof => "the JSON ends too soon: the body is cut short".to_owned(),
        ErrorType::ExpectedObjectColon => {
            format!("expected ':' after an object's key, found {}", found())
        }
        _ if !matches!(character, '}' | ']') && is_last_token(body, at) => {
            "the JSON ends too soon: the body is cut short".to_owned()
        }
        // simd-json gives one code for "after `{` or `,`" (a key is due)
        // and "after a value" (a `,` or the end is due): the byte before
        // tells them apart.
        ErrorType::ExpectedObjectContent
        | ErrorType::ExpectedMapComma
        | ErrorType::ExpectedMapEnd
        | ErrorType::KeyMustBeAString
        | ErrorType::BadKeyType => match previous_token(body, at) {
            Some(b'{' | b',') => {
                format!(
                    "expected an object's key (a string) or '}}', found {}",
                    found()
                )
            }
            _ => format!("expected ',' or '}}' in an object, found {}", found()),
        },
        ErrorType::ExpectedArrayContent | ErrorType::ExpectedArrayComma => {
            match previous_token(body, at) {
                Some(b'[' | b',') => format!("expected a value or ']', found {}", found()),
                _ => format!("expected ',' or ']' in an array, found {}", found()),
            }
        }
        ErrorType::ExpectedTrue | ErrorType::ExpectedFalse | ErrorType::ExpectedNull => {
            format!("expected true, false or null, found {}", found())
        }
        // Where a value is due: after `:`, `,` or `[`.
        _ => match (previous_token(body, at), character) {
            (Some(b','), '}' | ']') => {
                format!("a trailing comma before {character:?} (JSON allows none)")
            }
            (Some(b':' | b',' | b'['), _) => format!("expected a value, found {}", found()),
            _ => format!("unexpected {}", found()),
        },
    };
    (problem, Some(at))
}

/// Where the number that ends at or after `at` starts.
fn number_start(body: &[u8], at: usize) -> usize {
    let before = body.get(..at).unwrap_or_default();
    let digits = before
        .iter()
        .rev()
        .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .count();
    at - digits
}

/// `text` with its control characters escaped (`\u{1b}`): what a server
/// sent must not reach a terminal raw through a message.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// An error simd-json gives without a place: of its first pass (the body
/// is as it was sent), or of a typed target that did not fit.
fn first_pass(error: &ErrorType, body: &[u8]) -> (String, Option<usize>) {
    let expected = |what: &str| (format!("expected {what}"), None);
    match error {
        ErrorType::InvalidUtf8 => {
            let at = std::str::from_utf8(body).err().map(|e| e.valid_up_to());
            (format!("invalid UTF-8{}", compressed_hint(body)), at)
        }
        ErrorType::Eof => ("only whitespace, no JSON value".to_owned(), None),
        ErrorType::Serde(message) => (printable(message), None),
        ErrorType::Unexpected(Some(want), Some(got)) => (
            format!("expected {want:?}, found {got:?}").to_lowercase(),
            None,
        ),
        ErrorType::ExpectedFloat | ErrorType::ExpectedNumber => expected("a number"),
        ErrorType::ExpectedInteger | ErrorType::ExpectedSigned | ErrorType::ExpectedUnsigned => {
            expected("a whole number in range")
        }
        ErrorType::ExpectedString => expected("a string"),
        ErrorType::ExpectedBoolean => expected("true or false"),
        ErrorType::ExpectedArray => expected("an array"),
        ErrorType::ExpectedMap => expected("an object"),
        ErrorType::ExpectedNull => expected("null"),
        ErrorType::ExpectedEnum => expected("one of the enum's variants"),
        _ => match first_token(body) {
            Some(at) if !starts_json(body.get(at).copied()) => {
                (not_json(body.get(at..).unwrap_or_default()), Some(at))
            }
            _ => serde_json_reading(body),
        },
    }
}

/// serde_json's word on a body simd-json refused before rewriting it: its
/// message, without its line and column, which become a byte offset.
fn serde_json_reading(body: &[u8]) -> (String, Option<usize>) {
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Ok(_) => ("not JSON as parfetch reads it".to_owned(), None),
        Err(error) => {
            let message = error.to_string();
            let words = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(words, _)| words);
            (
                format!("{}{}", serde_json_in_words(words), compressed_hint(body)),
                byte_offset(body, error.line(), error.column()),
            )
        }
    }
}

/// serde_json's syntax messages in the words of the others here; any other
/// (a typed target's, which already reads well) as it is, made printable.
fn serde_json_in_words(message: &str) -> String {
    let words = match message {
        "EOF while parsing a string" => {
            "the JSON ends too soon: the body is cut short inside a string"
        }
        m if m.starts_with("EOF while parsing") => "the JSON ends too soon: the body is cut short",
        m if m.starts_with("control character") => {
            "a control character inside a string (JSON wants it escaped, as \\n or \\u0000)"
        }
        "expected value" => "expected a value",
        "expected ident" => "expected true, false or null",
        "expected `:`" => "expected ':' after an object's key",
        "expected `,` or `]`" => "expected ',' or ']' in an array",
        "expected `,` or `}`" => "expected ',' or '}' in an object",
        "key must be a string" => "an object's key must be a string",
        "invalid escape" => "an invalid escape sequence in a string",
        "unexpected end of hex escape" => {
            "an invalid escape sequence in a string: \\u takes four hex digits"
        }
        "lone leading surrogate in hex escape" | "invalid unicode code point" => {
            "a string holds invalid UTF-8, or an escape of half a UTF-16 surrogate pair"
        }
        "invalid number" => "a number that is not valid JSON",
        "number out of range" => "a number that is out of range",
        "trailing comma" => "a trailing comma (JSON allows none)",
        "trailing characters" => MORE_THAN_ONE,
        "recursion limit exceeded" => "nested too deep",
        other => return printable(other),
    };
    words.to_owned()
}

/// The byte offset of a 1-based `line` and `column` (serde_json's, which
/// counts bytes).
fn byte_offset(body: &[u8], line: usize, column: usize) -> Option<usize> {
    let line_start = if line <= 1 {
        0
    } else {
        body.iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .nth(line - 2)
            .map(|(at, _)| at + 1)?
    };
    Some(
        line_start
            .saturating_add(column.saturating_sub(1))
            .min(body.len()),
    )
}

/// What a value found where another was expected is: "the string
/// \"slow\"", "the number 12", "an object {\"a\":…}".
pub(crate) fn found_value(value: &simd_json::OwnedValue) -> String {
    use simd_json::prelude::*;
    let json = simd_json::to_string(value).unwrap_or_default();
    let shown = excerpt(json.as_bytes());
    match value.value_type() {
        simd_json::ValueType::String => {
            format!(
                "the string {}",
                excerpt(value.as_str().unwrap_or_default().as_bytes())
            )
        }
        simd_json::ValueType::Object => format!("an object {shown}"),
        simd_json::ValueType::Array => format!("an array {shown}"),
        simd_json::ValueType::Null => "null".to_owned(),
        simd_json::ValueType::Bool => json,
        _ => format!("the number {json}"),
    }
}

/// "the body is not JSON: it starts with ..." for a body whose first token
/// (at `start`) cannot start a JSON value.
fn not_json(start: &[u8]) -> String {
    format!(
        "the body is not JSON{}: it starts with {}",
        compressed_hint(start),
        excerpt(start)
    )
}

/// Whether `byte` can start a JSON value.
fn starts_json(byte: Option<u8>) -> bool {
    matches!(
        byte,
        Some(b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
    )
}

/// ", which looks gzip-compressed" and the like, for bytes that start as
/// compressed data does.
fn compressed_hint(body: &[u8]) -> &'static str {
    match body {
        [0xff, 0xfe, ..]
        | [0xfe, 0xff, ..]
        | [b'{' | b'[' | b'"', 0, ..]
        | [0, b'{' | b'[' | b'"', ..] => " (it looks UTF-16, and JSON is UTF-8)",
        [0x1f, 0x8b, ..] => " (it looks gzip-compressed)",
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] => " (it looks deflate-compressed)",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => " (it looks zstd-compressed)",
        _ => "",
    }
}

/// Whether the `}` or `]` at `at` closes a value rather than standing
/// where a value should be (after a `:` or a `,`).
fn closes_a_value(body: &[u8], at: usize) -> bool {
    previous_token(body, at).is_some_and(|b| !matches!(b, b':' | b','))
}

/// The last byte before `at` that is not JSON whitespace: a value's last
/// byte or a structural character, never one the parser rewrote.
fn previous_token(body: &[u8], at: usize) -> Option<u8> {
    let before = body.get(..at).unwrap_or_default();
    before
        .iter()
        .rev()
        .find(|b| !is_json_whitespace(**b))
        .copied()
}

/// Whether the token at `at` is the body's last (so a document still open
/// there was cut short). The bytes from `at` on are as sent.
fn is_last_token(body: &[u8], at: usize) -> bool {
    match body.get(at..).filter(|rest| !rest.is_empty()) {
        Some(rest) => next_token(body, at + token_length(rest)).is_none(),
        None => true,
    }
}

/// The length of the token `rest` starts with: a string, a structural
/// character, or a number or literal.
fn token_length(rest: &[u8]) -> usize {
    match rest.first() {
        Some(b'"') => {
            let mut escaped = false;
            rest.iter()
                .enumerate()
                .skip(1)
                .find(|(_, b)| {
                    let closes = !escaped && **b == b'"';
                    escaped = !escaped && **b == b'\\';
                    closes
                })
                .map_or(rest.len(), |(i, _)| i + 1)
        }
        Some(b'{' | b'}' | b'[' | b']' | b',' | b':') => 1,
        _ => rest
            .iter()
            .position(|b| is_json_whitespace(*b) || b"{}[],:\"".contains(b))
            .unwrap_or(rest.len()),
    }
}

/// The offset of the first byte that is not JSON whitespace, from `from`.
fn next_token(body: &[u8], from: usize) -> Option<usize> {
    let rest = body.get(from..)?;
    rest.iter()
        .position(|b| !is_json_whitespace(*b))
        .map(|i| from + i)
}

fn first_token(body: &[u8]) -> Option<usize> {
    next_token(body, 0)
}

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// What was found: an excerpt, or "the end of the body".
fn found(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        "the end of the body".to_owned()
    } else {
        excerpt(bytes)
    }
}

/// The first characters of `bytes`, quoted and escaped (control characters,
/// quotes, invalid UTF-8 as U+FFFD), with `…` when there is more.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let window = bytes.get(..EXCERPT_CHARS * 4).unwrap_or(bytes);
    let text = String::from_utf8_lossy(window);
    let (short, cut) = crate::error::clip(&text, EXCERPT_CHARS);
    let more = cut || window.len() < bytes.len();
    format!("{short:?}{}", if more { "…" } else { "" })
}

/// Why a body did not parse: what, in words, and where.
#[derive(Debug)]
pub(crate) struct JsonError {
    pub(crate) path: Option<String>,
    pub(crate) offset: Option<usize>,
    pub(crate) problem: String,
}

impl JsonError {
    /// The error simd-json's `source` on `body` (as the parser left it)
    /// amounts to.
    pub(crate) fn parser(source: &simd_json::Error, body: &[u8]) -> JsonError {
        let (problem, offset) = describe(source, body);
        JsonError {
            path: None,
            offset,
            problem,
        }
    }

    pub(crate) fn problem(problem: &str) -> JsonError {
        JsonError {
            path: None,
            offset: None,
            problem: problem.to_owned(),
        }
    }

    pub(crate) fn into_error(self) -> Error {
        Error::invalid_json(self.problem, self.path, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words simd-json's error on `body` becomes, as `parse` finds it.
    fn words(body: &[u8]) -> (String, Option<usize>) {
        let mut copy = body.to_vec();
        let error = simd_json::to_owned_value(&mut copy).unwrap_err();
        describe(&error, &copy)
    }

    #[test]
    fn each_failure_is_said_in_words() {
        let cases: [(&[u8], &str, Option<usize>); 21] = [
            (
                b"<!DOCTYPE html>\n<html><body>Oops</body></html>",
                "the body is not JSON: it starts with \"<!DOCTYPE html>\\n<html><body>Oops</body><\"…",
                Some(0),
            ),
            (
                b"  Internal Server Error",
                "the body is not JSON: it starts with \"Internal Server Error\"",
                Some(2),
            ),
            (
                b"{\"a\":\"x\\\"y\"}\n{\"a\":2}\n",
                "more than one JSON value (NDJSON, or data after the document): the first \
                 ends at byte 12, then comes \"{\\\"a\\\":2}\\n\"",
                Some(13),
            ),
            (b"1\n2\n", "more than one JSON value", Some(2)),
            (
                b"[1, 2e999]",
                "a number out of range (valid JSON, but past what a 64-bit float holds): \"2e999]\"",
                Some(4),
            ),
            (
                b"[1, 2e]",
                "a number that is not valid JSON: \"2e]\"",
                Some(4),
            ),
            (b"[1,]", "a trailing comma before ']'", Some(3)),
            (
                b"{\"a\" 1}",
                "expected ':' after an object's key, found \"1}\"",
                Some(5),
            ),
            (
                b"{\"a\":1 \"b\":2}",
                "expected ',' or '}' in an object",
                Some(7),
            ),
            (b"[1 2]", "expected ',' or ']' in an array", Some(3)),
            (b"[tru]", "expected true, false or null", Some(1)),
            (b"{\"a\":[1,2", "ends too soon", None),
            (b"[\"\xff\"]", "invalid UTF-8", Some(2)),
            (
                b"\x1f\x8b\x08\x00\x00",
                "invalid UTF-8 (it looks gzip-compressed)",
                Some(1),
            ),
            (b"[\"never ends]", "the JSON ends too soon: the body is cut short inside a string", Some(12)),
            // Wordings JSONTestSuite's files brought out (serde_json's
            // messages, said as the others are).
            (b"[\"a\x00\"]", "a control character inside a string", None),
            (b"[\"\\x\"]", "an invalid escape sequence in a string", Some(3)),
            (b"[\"\\uD800\"]", "half a UTF-16 surrogate pair", None),
            (b"[\"\\u12\"]", "an invalid escape sequence in a string", None),
            (b"[\x00\"\x00]\x00", "(it looks UTF-16, and JSON is UTF-8)", None),
            (b"\"", "the JSON ends too soon: the body is cut short inside a string", None),
        ];
        let mut wrong = Vec::new();
        for (body, want, at) in cases {
            let (problem, offset) = words(body);
            let body = String::from_utf8_lossy(body);
            if !problem.contains(want) || problem.contains("InternalError") {
                wrong.push(format!("{body:?}: {problem:?} lacks {want:?}"));
            }
            if at.is_some() && offset != at {
                wrong.push(format!("{body:?}: {problem:?} at {offset:?}, not {at:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        let mut deep = vec![b'['; 2000];
        deep.extend(vec![b']'; 2000]);
        assert!(
            words(&deep).0.contains("nested deeper"),
            "{:?}",
            words(&deep)
        );
    }

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt(b"ok"), "\"ok\"");
        assert_eq!(excerpt(b"a\"b\x07\r\n"), "\"a\\\"b\\u{7}\\r\\n\"");
        assert_eq!(excerpt(&[b'x'; 100]), format!("\"{}\"…", "x".repeat(40)));
        assert_eq!(excerpt(b"\xff\xfe"), "\"\u{fffd}\u{fffd}\"");
        assert_eq!(found(b""), "the end of the body");
    }
}
