//! A JSON document as the server sent it.
//!
//! Parsing into a [`Value`](crate::Value) and writing it out again loses what
//! the server wrote: simd-json's objects keep their keys in order only up to
//! a few dozen, `1.0` comes back as `1.0` or `1`, a 30-digit number as a
//! float. A script that saves documents (the CLI's JSON lines, a mirror)
//! wants them as they came, identical from one run to the next. So a
//! [`RawJson`] is the body itself, checked to be JSON by the same parser a
//! `Value` uses, with only the whitespace between tokens taken out: keys,
//! their order, numbers and string escapes stay byte for byte.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer};
use serde::ser::{self, Serialize, Serializer};
use simd_json::Buffers;

use super::input::{self, Strings};
use super::number;
use super::words::JsonError;

/// A JSON document as the server sent it: checked to be JSON, on one line
/// (the whitespace between tokens removed), every key, number and string
/// spelled as it came. A number is checked against JSON's grammar only:
/// `1e400` is kept as sent, though a [`Value`](crate::Value) refuses it
/// (it is past what an `f64` holds). Fetch one as any other type:
/// `fetcher.get_json::<parfetch::RawJson>(url)`.
///
/// It serialises as the JSON it holds (with serde_json), so it can be
/// embedded in a document of yours unchanged.
///
/// ```
/// let raw = parfetch::RawJson::from_json(br#"{ "b": 1.50, "a": [1, 2e3] }"#).unwrap();
/// assert_eq!(raw.as_str(), r#"{"b":1.50,"a":[1,2e3]}"#);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawJson(String);

impl RawJson {
    /// Checks that `json` is one JSON document (as [`Value`](crate::Value)
    /// parsing would) and keeps it without the whitespace between tokens.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidJson`](crate::ErrorKind::InvalidJson), saying
    /// where, when it is not JSON.
    pub fn from_json(json: &[u8]) -> Result<RawJson, crate::Error> {
        let mut json = json.to_vec();
        input::skip_bom(&mut json);
        input::with_buffers(json.len(), |buffers| check(&json, buffers))
            .map_err(JsonError::into_error)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// `json`, already checked to be a JSON document, without the
    /// whitespace between its tokens. `None` if it is not UTF-8 after all.
    pub(crate) fn from_checked(json: &[u8]) -> Option<RawJson> {
        RawJson::minified_into(json, Vec::with_capacity(json.len()))
    }

    /// [`RawJson::from_checked`], written into `room` (emptied first):
    /// strings are copied as they are, escapes included.
    fn minified_into(json: &[u8], mut room: Vec<u8>) -> Option<RawJson> {
        room.clear();
        let mut strings = Strings::default();
        for &byte in json {
            if strings.holds(byte) || !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                room.push(byte);
            }
        }
        String::from_utf8(room).ok().map(RawJson)
    }
}

/// `body` as a [`RawJson`], if it is one JSON document: checked by
/// simd-json on a copy (it rewrites what it parses), with `buffers`.
///
/// A number is checked against JSON's grammar, not the range of an `f64`
/// (`1e400` is JSON text, RFC 8259 §6): when simd-json refuses a body, it
/// is checked again with every number the grammar accepts written as `0`,
/// so that only a fault other than a number's range refuses it.
pub(crate) fn check(body: &[u8], buffers: &mut Buffers) -> Result<RawJson, JsonError> {
    let mut copy = body.to_vec();
    if let Err(error) = simd_json::Deserializer::from_slice_with_buffers(&mut copy, buffers) {
        let mut zeroed = body.to_vec();
        number::zero_numbers(&mut zeroed);
        if zeroed == body {
            return Err(JsonError::parser(&error, body));
        }
        // A number's range aside, it fails there (offsets hold): that is
        // the fault to name, not a number it would keep.
        if let Err(fault) = simd_json::Deserializer::from_slice_with_buffers(&mut zeroed, buffers) {
            return Err(JsonError::parser(&fault, body));
        }
    }
    // The copy simd-json rewrote takes the text as sent, minified: one
    // copy of the body, not two.
    RawJson::minified_into(body, copy).ok_or_else(|| JsonError::problem("invalid UTF-8"))
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawJson").field(&self.0).finish()
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // serde_json writes a RawValue as the text it holds.
        serde_json::value::RawValue::from_string(self.0.clone())
            .map_err(ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    /// From serde_json, the JSON text as it is at this point (its raw
    /// value). From another deserializer (parfetch reading your own type
    /// that holds a `RawJson`, with simd-json), the value written out
    /// again: the same JSON, keys in their order, numbers in their
    /// shortest form (`1.50` becomes `1.5`). parfetch's own fetches of a
    /// whole `RawJson` keep the text as sent.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawJson, D::Error> {
        // The name serde_json answers with its raw value (as its own
        // `RawValue` asks); any other deserializer sees a newtype.
        deserializer.deserialize_newtype_struct(SERDE_JSON_RAW_VALUE, RawJsonVisitor)
    }
}

/// The newtype name for which serde_json hands over the raw text, as a map
/// of one entry keyed by this same name.
const SERDE_JSON_RAW_VALUE: &str = "$serde_json::private::RawValue";

struct RawJsonVisitor;

impl<'de> de::Visitor<'de> for RawJsonVisitor {
    type Value = RawJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RawJson, A::Error> {
        let key: Option<String> = map.next_key()?;
        if key.as_deref() != Some(SERDE_JSON_RAW_VALUE) {
            return Err(de::Error::custom("expected serde_json's raw value"));
        }
        let text: String = map.next_value()?;
        RawJson::from_checked(text.as_bytes())
            .ok_or_else(|| de::Error::custom("the JSON text is not UTF-8"))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<RawJson, D::Error> {
        let value = simd_json::OwnedValue::deserialize(deserializer)?;
        simd_json::to_string(&value)
            .map(RawJson)
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_goes_and_everything_else_stays() {
        let cases: [(&[u8], &str); 5] = [
            (
                b" { \"a\" : [ 1 , 2.50 , -0e+1 ] }\n",
                r#"{"a":[1,2.50,-0e+1]}"#,
            ),
            (
                br#"{"s": " spaced \" \\ \n out "}"#,
                r#"{"s":" spaced \" \\ \n out "}"#,
            ),
            (
                b"\t\r\n123456789012345678901234567890 ",
                "123456789012345678901234567890",
            ),
            (br#"{"z":1,"a":2,"m":3}"#, r#"{"z":1,"a":2,"m":3}"#),
            (
                "[\"caf\u{e9} \\u00e9\"]".as_bytes(),
                "[\"caf\u{e9} \\u00e9\"]",
            ),
        ];
        for (json, want) in cases {
            assert_eq!(RawJson::from_json(json).unwrap().as_str(), want);
        }
    }

    #[test]
    fn it_serialises_and_deserialises_as_json() {
        let raw = RawJson::from_json(br#"{ "k": [true, null] }"#).unwrap();
        let wrapped = serde_json::to_string(&serde_json::json!({ "body": raw })).unwrap();
        assert_eq!(wrapped, r#"{"body":{"k":[true,null]}}"#);
        let back: RawJson = serde_json::from_str(" [ 1.50 , 2 ] ").unwrap();
        assert_eq!(back.as_str(), "[1.50,2]");
        // Inside a type of yours, from serde_json: as sent.
        let inside: Vec<Option<RawJson>> = serde_json::from_str(r#"[{"b":1.50},null]"#).unwrap();
        assert_eq!(inside[0].as_ref().unwrap().as_str(), r#"{"b":1.50}"#);
        assert!(inside[1].is_none());
        // From simd-json: the same JSON, written again.
        let mut body = br#"[{"z":1.50,"a":[true]},null]"#.to_vec();
        let inside: Vec<Option<RawJson>> = simd_json::serde::from_slice(&mut body).unwrap();
        assert_eq!(
            inside[0].as_ref().unwrap().as_str(),
            r#"{"z":1.5,"a":[true]}"#
        );
        assert!(inside[1].is_none());
    }

    #[test]
    fn not_json_is_refused_with_where() {
        for bad in [
            &b"{\"a\":}"[..],
            b"[1,2",
            b"nul",
            b"{\"a\":1} x",
            b"\"\xff\"",
        ] {
            let error = RawJson::from_json(bad).unwrap_err();
            assert_eq!(error.kind(), crate::ErrorKind::InvalidJson, "{bad:?}");
        }
    }
}
