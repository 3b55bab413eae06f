//! JSON parsing with simd-json, on the thread that fetched the body.
//!
//! simd-json parses in place (it rewrites the body's bytes), so a body is
//! parsed once and then dropped: no copy beyond the one read from the socket.
//! Its scratch buffers live in a thread-local and are reused from one document
//! to the next, except after very large documents, whose buffers are not
//! kept (32 threads each holding 64 MiB of scratch space would be a leak).
//!
//! Three paths, each measured against serde_json (see the README):
//! - [`Value`] goes through simd-json's own value builder, which is much
//!   faster than deserialising a generic value through serde;
//! - [`RawJson`] is checked by the same parser on a copy, and kept as sent;
//! - any other type goes through simd-json's serde deserializer; when it
//!   fails, the parsed tape is replayed with the path tracked, so that the
//!   error says where without the success path paying for it.
//!
//! Numbers past 64 bits parse, as floats, as serde_json and JSON's RFC 8259
//! allow (simd-json's `big-int-as-float`). An empty body is not a JSON text
//! (RFC 8259): a 200 with nothing is `InvalidJson` "no content". A response
//! that has no content by definition (a 204, a 205, the answer to a HEAD)
//! stands for JSON `null` to the types that take it (`Option<T>`, `()`,
//! [`Value`], [`RawJson`]) and is "no content" to the others
//! ([`no_content`]).

pub(crate) mod doc;
mod input;
mod number;
pub(crate) mod raw_json;
pub(crate) mod words;

use std::any::Any;

use serde::de::{Deserialize, DeserializeOwned};
use simd_json::tape::Tape;

use self::doc::Doc;
use self::raw_json::RawJson;
use self::words::JsonError;
use crate::error::Error;

/// An untyped JSON document: simd-json's owned value.
///
/// Use it with [`Fetcher::get_json`](crate::Fetcher::get_json) when the shape
/// of the document is not known in advance. It implements simd-json's
/// `ValueAccess` traits (`get`, `as_str`, ...), re-exported in
/// [`prelude`](crate::prelude).
pub type Value = simd_json::OwnedValue;

/// Parses `body` (rewriting it) into a `T`.
pub(crate) fn parse<T: DeserializeOwned + 'static>(body: &mut Vec<u8>) -> Result<T, JsonError> {
    let wanted = std::any::TypeId::of::<T>();
    // A `Doc` keeps the body: it takes it (and skips its own BOM).
    if wanted == std::any::TypeId::of::<Doc>() {
        return Doc::from_body(std::mem::take(body)).map(cast);
    }
    input::skip_bom(body);
    // `Value` has a faster path than serde's generic one.
    if wanted == std::any::TypeId::of::<Value>() {
        return input::with_buffers(body.len(), |buffers| {
            match simd_json::owned::to_value_with_buffers(body, buffers) {
                Ok(value) => Ok(cast(value)),
                Err(error) => Err(JsonError::parser(&error, body)),
            }
        });
    }
    if wanted == std::any::TypeId::of::<RawJson>() {
        return input::with_buffers(body.len(), |buffers| raw_json::check(body, buffers)).map(cast);
    }
    parse_typed(body)
}

/// `value` as the `T` it is (the caller checked the type).
fn cast<V: 'static, T: 'static>(value: V) -> T {
    let mut slot = Some(value);
    let typed = (&mut slot as &mut dyn Any).downcast_mut::<Option<T>>();
    // The types are equal: the downcast cannot fail.
    typed
        .and_then(Option::take)
        .unwrap_or_else(|| unreachable!("cast to another type"))
}

/// What an empty body (no content at all) is to `T`: `null` if `T` takes
/// it, else an error that says there was no content. Not JSON's rule (an
/// empty text is not JSON) but HTTP's: a 204 has a body of nothing.
pub(crate) fn no_content<T: DeserializeOwned + 'static>() -> Result<T, JsonError> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<RawJson>() {
        if let Some(null) = RawJson::from_checked(b"null") {
            return Ok(cast(null));
        }
    }
    serde_json::from_slice(b"null").map_err(|_| JsonError::problem("no content: the body is empty"))
}

/// What went wrong deserialising a `T`: serde's error, the path to where,
/// and what was found there.
type Failure = (simd_json::Error, Option<String>, Option<String>);

fn parse_typed<T: DeserializeOwned>(body: &mut Vec<u8>) -> Result<T, JsonError> {
    // The tape borrows the body while it lives; a failure is described
    // from the body once it is dropped.
    let parsed = input::with_tape(body, |tape, _| {
        let mut deserializer =
            simd_json::Deserializer::from_tape(Tape(std::mem::take(&mut tape.0)));
        let outcome = match T::deserialize(&mut deserializer) {
            Ok(value) => Ok(value),
            Err(source) => Err(describe_failure::<T>(&mut deserializer, source)),
        };
        tape.0 = deserializer.into_tape().0;
        outcome
    });
    let (source, path, found) = match parsed {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(failure)) => failure,
        Err(error) => return Err(JsonError::parser(&error, body)),
    };
    let mut error = JsonError {
        path,
        ..JsonError::parser(&source, body)
    };
    if let Some(found) = found.filter(|_| error.problem.starts_with("expected ")) {
        error.problem = format!("{}, found {found}", error.problem);
    }
    Err(error)
}

/// Where a `T` failed, and what was there: tracking the path costs as much
/// as the parse itself, so it is done only now, by replaying the parsed
/// tape (the body's text may have been rewritten in place and cannot be
/// parsed again).
fn describe_failure<T: DeserializeOwned>(
    deserializer: &mut simd_json::Deserializer<'_>,
    source: simd_json::Error,
) -> Failure {
    deserializer.restart();
    let path = serde_path_to_error::deserialize::<_, T>(&mut *deserializer)
        .err()
        .map(|error| error.path().clone());
    // And what is there, for the message (failures only: it builds the
    // whole document).
    deserializer.restart();
    let found = path.as_ref().and_then(|path| {
        let document = Value::deserialize(&mut *deserializer).ok()?;
        at_path(&document, path).map(words::found_value)
    });
    (source, path.map(|path| path.to_string()), found)
}

/// The value at `path` in `document`, segment by segment (a key may hold
/// dots or brackets).
fn at_path<'v>(document: &'v Value, path: &serde_path_to_error::Path) -> Option<&'v Value> {
    use serde_path_to_error::Segment;
    use simd_json::prelude::*;
    let mut value = document;
    for segment in path {
        value = match segment {
            Segment::Seq { index } => value.get_idx(*index)?,
            Segment::Map { key } => value.get(key.as_str())?,
            // An externally tagged enum: `{"Variant": ...}`, or a bare
            // string (a unit variant) that is the value itself.
            Segment::Enum { variant } => value.get(variant.as_str()).unwrap_or(value),
            Segment::Unknown => return None,
        };
    }
    Some(value)
}

/// A fetched body, as the function that makes it a value gets it.
pub(crate) struct Content {
    pub(crate) bytes: Vec<u8>,
    /// The response has no content by definition (a 204 or a 205, or the
    /// answer to a HEAD): its empty body stands for JSON `null`.
    pub(crate) none_by_definition: bool,
}

/// The body as it came: what `get_bytes` returns (empty for a response
/// without content, whatever its status). A `Result` to be a finisher as
/// [`parse_body`] is.
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn bytes(content: Content) -> Result<Vec<u8>, Error> {
    Ok(content.bytes)
}

/// Parses a fetched body into a `T`: the one way a body becomes a value.
pub(crate) fn parse_body<T: DeserializeOwned + 'static>(content: Content) -> Result<T, Error> {
    let Content {
        mut bytes,
        none_by_definition,
    } = content;
    let parsed = match (bytes.is_empty(), none_by_definition) {
        // No content by definition (a 204, say) is HTTP's `null`.
        (true, true) => no_content(),
        // An empty text is not JSON (RFC 8259), whatever the type.
        (true, false) => Err(JsonError::problem(
            "no content: the body is empty, and an empty body is not JSON",
        )),
        (false, _) => parse(&mut bytes),
    };
    parsed.map_err(JsonError::into_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde::Deserialize;
    use simd_json::prelude::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Lap {
        lap: u32,
        time: f64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Laps {
        driver: String,
        laps: Vec<Lap>,
    }

    #[test]
    fn parses_value_and_typed() {
        let doc = br#"{"driver":"VER","laps":[{"lap":1,"time":91.5},{"lap":2,"time":90.25}]}"#;
        let value: Value = parse(&mut doc.to_vec()).unwrap();
        assert_eq!(value.get("driver").and_then(|d| d.as_str()), Some("VER"));
        let laps: Laps = parse(&mut doc.to_vec()).unwrap();
        assert_eq!(
            laps.laps[1],
            Lap {
                lap: 2,
                time: 90.25
            }
        );
        let generic: serde_json::Value = parse(&mut doc.to_vec()).unwrap();
        assert_eq!(generic["laps"][0]["lap"], 1);
    }

    #[test]
    fn syntax_errors_have_an_offset() {
        let err = parse::<Value>(&mut br#"{"a": [1, 2,, 3]}"#.to_vec()).unwrap_err();
        assert!(err.offset.is_some(), "{err:?}");
        let err = parse::<Laps>(&mut b"not json".to_vec()).unwrap_err();
        assert!(err.offset.is_some(), "{err:?}");
    }

    #[test]
    fn type_errors_have_a_path() {
        let doc = br#"{"driver":"VER","laps":[{"lap":1,"time":91.5},{"lap":2,"time":"slow"}]}"#;
        let err = parse::<Laps>(&mut doc.to_vec()).unwrap_err();
        assert_eq!(err.path.as_deref(), Some("laps[1].time"));
    }

    #[test]
    fn empty_and_truncated_bodies_are_errors() {
        for body in [&b""[..], b"{", b"[1,2", b"\"abc", b"nul"] {
            assert!(parse::<Value>(&mut body.to_vec()).is_err(), "{body:?}");
            assert!(parse::<Vec<u32>>(&mut body.to_vec()).is_err(), "{body:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut doc = vec![b'['; 100_000];
        doc.extend(vec![b']'; 100_000]);
        assert!(parse::<Value>(&mut doc.clone()).is_err());
        assert!(parse::<serde_json::Value>(&mut doc).is_err());
    }

    #[test]
    fn large_documents_use_their_own_buffers() {
        let mut doc = b"[".to_vec();
        while doc.len() <= input::REUSE_LIMIT {
            doc.extend_from_slice(b"1234567890,");
        }
        doc.extend_from_slice(b"0]");
        let value: Value = parse(&mut doc).unwrap();
        assert!(value.as_array().is_some_and(|a| a.len() > 100_000));
    }

    /// Every JSONTestSuite case (tests/data/jsontestsuite) through every
    /// path: `y_` accepted, `n_` refused, `i_` either, never a panic.
    #[test]
    fn json_test_suite() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jsontestsuite");
        let mut wrong = Vec::new();
        let mut seen = 0;
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(expected) = name
                .strip_suffix(".json")
                .and_then(|stem| stem.split('_').next())
            else {
                continue;
            };
            let body = std::fs::read(&path).unwrap();
            seen += 1;
            let outcomes = [
                ("Value", parse::<Value>(&mut body.clone()).is_ok()),
                ("RawJson", parse::<RawJson>(&mut body.clone()).is_ok()),
                (
                    "serde_json::Value",
                    parse::<serde_json::Value>(&mut body.clone()).is_ok(),
                ),
            ];
            for (path_name, accepted) in outcomes {
                match (expected, accepted) {
                    ("y", false) => wrong.push(format!("{name}: {path_name} refused it")),
                    ("n", true) => wrong.push(format!("{name}: {path_name} accepted it")),
                    _ => {}
                }
            }
        }
        assert!(seen > 280, "only {seen} cases found in {}", dir.display());
        assert!(
            wrong.is_empty(),
            "{} wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn numbers_past_64_bits_are_floats() {
        let value: Value =
            parse(&mut br#"{"id": 123456789012345678901234567890}"#.to_vec()).unwrap();
        assert_eq!(
            value.get("id").and_then(ValueAsScalar::as_f64),
            Some(1.234_567_890_123_456_8e29)
        );
        let big: serde_json::Value =
            parse(&mut b"[-1e400, 18446744073709551616]".to_vec()).unwrap_or_default();
        let _ = big; // either a value or an error: never a panic
    }

    #[test]
    fn an_empty_body_is_null_where_null_fits() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            a: u32,
        }
        assert!(no_content::<Option<Doc>>().unwrap().is_none());
        assert_eq!(
            no_content::<Value>().unwrap(),
            Value::Static(simd_json::StaticNode::Null)
        );
        assert_eq!(no_content::<RawJson>().unwrap().as_str(), "null");
        no_content::<()>().unwrap();
        let error = no_content::<Doc>().unwrap_err().into_error();
        assert_eq!(error.kind(), ErrorKind::InvalidJson);
        assert!(error.to_string().contains("no content"), "{error}");
        // As JSON, nothing (or only spaces) is not a document.
        for empty in [&b""[..], b" \r\n"] {
            assert!(parse::<Option<Doc>>(&mut empty.to_vec()).is_err());
        }
    }
}
