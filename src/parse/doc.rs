//! A parsed document that keeps its body: no allocation per node.
//!
//! [`Value`] builds a tree: a `String` per string, a `Vec` per array, a map
//! per object, each freed again when the value is dropped. Measured on
//! 2 KB documents, that allocating and freeing was a fifth of the client's
//! time, more than the parse. A [`Doc`] keeps the body, whose strings
//! simd-json has unescaped in place, and one flat list of nodes (simd-json's
//! tape, with each string as a place in the body): two allocations
//! whatever the document, two frees when it is dropped, and strings read
//! without a copy.
//!
//! The list is walked to find a key or an index, as a tape is: `get` on
//! an object of `n` keys looks at up to `n` keys and skips their values
//! without reading them. For a document read once, field by field, that is
//! what a tree costs too, without the tree.

use std::fmt;

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use simd_json::StaticNode;

use super::words::JsonError;
use super::{input, Value};
use crate::error::Error;

/// A JSON document as fetched: the body and where each value is in it.
///
/// Ask for it like any other type, with
/// [`fetch_many::<Doc>`](crate::Fetcher::fetch_many),
/// [`get_json::<Doc>`](crate::Fetcher::get_json) or a batch; read it with
/// [`get`](Doc::get), [`pointer`](Doc::pointer) and the [`DocValue`]s they
/// return; turn it, or a part of it, into a [`Value`] or a typed value when
/// you want to keep one. It is `Send`, and dropping it frees two buffers.
///
/// ```
/// let doc = parfetch::Doc::parse(br#"{"driver":"VER","laps":[{"time":91.5}]}"#.to_vec())?;
/// assert_eq!(doc.get("driver").and_then(|d| d.as_str()), Some("VER"));
/// assert_eq!(doc.pointer("/laps/0/time").and_then(|t| t.as_f64()), Some(91.5));
/// let times: Vec<f64> = doc
///     .get("laps")
///     .into_iter()
///     .flat_map(|laps| laps.elements())
///     .filter_map(|lap| lap.get("time")?.as_f64())
///     .collect();
/// assert_eq!(times, [91.5]);
/// # Ok::<(), parfetch::Error>(())
/// ```
pub struct Doc {
    body: Vec<u8>,
    nodes: Vec<Node>,
}

/// One node of the list: a value, or the head of an array or an object
/// followed by its members (an object's alternate keys and values).
#[derive(Clone, Copy, Debug)]
enum Node {
    Static(StaticNode),
    /// A string: `len` bytes at `start` in the body, unescaped.
    Str {
        start: u32,
        len: u32,
    },
    /// `len` members, followed by `count` nodes in all (nested ones too).
    Array {
        len: u32,
        count: u32,
    },
    /// `len` keys, followed by `count` nodes in all (keys too).
    Object {
        len: u32,
        count: u32,
    },
}

impl Node {
    /// How many nodes this value takes, itself included.
    fn span(self) -> usize {
        match self {
            Node::Array { count, .. } | Node::Object { count, .. } => to_usize(count) + 1,
            Node::Static(_) | Node::Str { .. } => 1,
        }
    }
}

/// A value inside a [`Doc`]: a cheap, copyable view.
#[derive(Clone, Copy)]
pub struct DocValue<'a> {
    body: &'a [u8],
    /// This value's node, then the nodes nested in it.
    nodes: &'a [Node],
}

impl Doc {
    /// Parses `body`, keeping it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidJson`](crate::ErrorKind::InvalidJson) when the
    /// body is not JSON (saying where and why), or is over 4 GiB (a `Doc`
    /// counts in 32 bits; use [`Value`] for such a document).
    pub fn parse(body: Vec<u8>) -> Result<Doc, Error> {
        Doc::from_body(body).map_err(JsonError::into_error)
    }

    pub(crate) fn from_body(mut body: Vec<u8>) -> Result<Doc, JsonError> {
        if u32::try_from(body.len()).is_err() {
            return Err(JsonError::problem(
                "the document is over 4 GiB, more than a Doc holds: ask for a Value",
            ));
        }
        input::skip_bom(&mut body);
        let nodes = input::with_tape(&mut body, |tape, base| {
            // Sized once: collecting into an `Option` would grow the vector
            // by doubling, a copy of the nodes each time.
            let mut nodes = Vec::with_capacity(tape.0.len());
            for node in &tape.0 {
                nodes.push(own(*node, base)?);
            }
            Some(nodes)
        });
        match nodes {
            Ok(Some(nodes)) if !nodes.is_empty() => Ok(Doc { body, nodes }),
            // A string outside the body, or an empty tape: not what
            // simd-json gives, so said as such rather than read wrong.
            Ok(_) => Err(JsonError::problem(
                "the parser placed a string outside the body; ask for a Value",
            )),
            Err(error) => Err(JsonError::parser(&error, &body)),
        }
    }

    /// The document's top value.
    pub fn root(&self) -> DocValue<'_> {
        DocValue {
            body: &self.body,
            nodes: &self.nodes,
        }
    }

    /// The top object's value for `key`, if the top value is an object
    /// that has it.
    pub fn get(&self, key: &str) -> Option<DocValue<'_>> {
        self.root().get(key)
    }

    /// The value at a JSON Pointer (RFC 6901), such as `/laps/0/time`;
    /// `""` is the whole document.
    pub fn pointer(&self, pointer: &str) -> Option<DocValue<'_>> {
        self.root().pointer(pointer)
    }

    /// The whole document as a [`Value`] (a tree: it allocates per node).
    pub fn to_value(&self) -> Value {
        self.root().to_value()
    }

    /// The whole document as a `T`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidJson`](crate::ErrorKind::InvalidJson) when the
    /// document does not have `T`'s shape.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.root().deserialize()
    }
}

impl<'a> DocValue<'a> {
    fn head(self) -> Node {
        // A view always holds its own node.
        self.nodes
            .first()
            .copied()
            .unwrap_or(Node::Static(StaticNode::Null))
    }

    fn at(self, index: usize) -> Option<DocValue<'a>> {
        let span = self.nodes.get(index)?.span();
        Some(DocValue {
            body: self.body,
            nodes: self.nodes.get(index..index.checked_add(span)?)?,
        })
    }

    /// Whether it is `null`.
    pub fn is_null(self) -> bool {
        matches!(self.head(), Node::Static(StaticNode::Null))
    }

    /// The boolean, if it is one.
    pub fn as_bool(self) -> Option<bool> {
        match self.head() {
            Node::Static(StaticNode::Bool(b)) => Some(b),
            _ => None,
        }
    }

    /// The number as an `i64`, if it is an integer that fits.
    pub fn as_i64(self) -> Option<i64> {
        match self.head() {
            Node::Static(StaticNode::I64(n)) => Some(n),
            Node::Static(StaticNode::U64(n)) => i64::try_from(n).ok(),
            _ => None,
        }
    }

    /// The number as a `u64`, if it is a non-negative integer that fits.
    pub fn as_u64(self) -> Option<u64> {
        match self.head() {
            Node::Static(StaticNode::U64(n)) => Some(n),
            Node::Static(StaticNode::I64(n)) => u64::try_from(n).ok(),
            _ => None,
        }
    }

    /// The number as an `f64`, if it is a number (an integer too).
    pub fn as_f64(self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        match self.head() {
            Node::Static(StaticNode::F64(n)) => Some(n),
            Node::Static(StaticNode::I64(n)) => Some(n as f64),
            Node::Static(StaticNode::U64(n)) => Some(n as f64),
            _ => None,
        }
    }

    /// The string, if it is one: read from the body, not copied.
    pub fn as_str(self) -> Option<&'a str> {
        str_at(self.body, self.head())
    }

    /// The number of members of an array or keys of an object; `None` for
    /// other values.
    pub fn len(self) -> Option<usize> {
        match self.head() {
            Node::Array { len, .. } | Node::Object { len, .. } => Some(to_usize(len)),
            _ => None,
        }
    }

    /// Whether it is an empty array or an empty object; `None` for other
    /// values.
    pub fn is_empty(self) -> Option<bool> {
        self.len().map(|len| len == 0)
    }

    /// The object's value for `key` (the first, if a key repeats).
    pub fn get(self, key: &str) -> Option<DocValue<'a>> {
        self.entries().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The array's member at `index`.
    pub fn get_index(self, index: usize) -> Option<DocValue<'a>> {
        self.elements().nth(index)
    }

    /// The value at a JSON Pointer (RFC 6901) from this one: `/a/0/b`,
    /// with `~1` for `/` and `~0` for `~` in a key.
    pub fn pointer(self, pointer: &str) -> Option<DocValue<'a>> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/').try_fold(self, |value, token| {
            let key = token.replace("~1", "/").replace("~0", "~");
            match value.head() {
                Node::Array { .. } => {
                    // RFC 6901: decimal digits, no leading zero (Rust's
                    // parse would take `+1` too).
                    let digits = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
                    let simple = digits && (key == "0" || !key.starts_with('0'));
                    let index = key.parse::<usize>().ok().filter(|_| simple)?;
                    value.get_index(index)
                }
                _ => value.get(&key),
            }
        })
    }

    /// The array's members, in order; nothing if it is not an array.
    pub fn elements(self) -> Elements<'a> {
        let (len, rest) = match self.head() {
            Node::Array { len, .. } => (to_usize(len), self.nodes.get(1..).unwrap_or(&[])),
            _ => (0, &[][..]),
        };
        Elements {
            body: self.body,
            rest,
            left: len,
        }
    }

    /// The object's keys and values, in the document's order; nothing if
    /// it is not an object.
    pub fn entries(self) -> Entries<'a> {
        let (len, rest) = match self.head() {
            Node::Object { len, .. } => (to_usize(len), self.nodes.get(1..).unwrap_or(&[])),
            _ => (0, &[][..]),
        };
        Entries {
            inner: Elements {
                body: self.body,
                rest,
                left: len.saturating_mul(2),
            },
        }
    }

    /// This value as a [`Value`] (a tree: it allocates per node).
    pub fn to_value(self) -> Value {
        // A tape from simd-json always makes a Value.
        self.deserialize()
            .unwrap_or(Value::Static(StaticNode::Null))
    }

    /// This value as a `T`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidJson`](crate::ErrorKind::InvalidJson) when the
    /// value does not have `T`'s shape.
    pub fn deserialize<T: DeserializeOwned>(self) -> Result<T, Error> {
        let tape: Option<Vec<simd_json::Node<'a>>> =
            self.nodes.iter().map(|node| self.borrowed(*node)).collect();
        let tape = tape.ok_or_else(|| {
            JsonError::problem("a string in the document is not UTF-8").into_error()
        })?;
        let mut deserializer = simd_json::Deserializer::from_tape(simd_json::tape::Tape(tape));
        T::deserialize(&mut deserializer)
            .map_err(|error| JsonError::problem(&error.to_string()).into_error())
    }

    /// `node` as simd-json's, its string borrowed from the body.
    fn borrowed(self, node: Node) -> Option<simd_json::Node<'a>> {
        Some(match node {
            Node::Static(s) => simd_json::Node::Static(s),
            Node::Str { .. } => simd_json::Node::String(str_at(self.body, node)?),
            Node::Array { len, count } => simd_json::Node::Array {
                len: to_usize(len),
                count: to_usize(count),
            },
            Node::Object { len, count } => simd_json::Node::Object {
                len: to_usize(len),
                count: to_usize(count),
            },
        })
    }
}

/// The string `node` is, read from `body`; `None` if it is no string.
fn str_at(body: &[u8], node: Node) -> Option<&str> {
    let Node::Str { start, len } = node else {
        return None;
    };
    let start = to_usize(start);
    std::str::from_utf8(body.get(start..start.checked_add(to_usize(len))?)?).ok()
}

/// An array's members ([`DocValue::elements`]).
#[derive(Clone)]
pub struct Elements<'a> {
    body: &'a [u8],
    rest: &'a [Node],
    left: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = DocValue<'a>;

    fn next(&mut self) -> Option<DocValue<'a>> {
        if self.left == 0 {
            return None;
        }
        let value = DocValue {
            body: self.body,
            nodes: self.rest,
        }
        .at(0)?;
        self.rest = self.rest.get(value.nodes.len()..).unwrap_or(&[]);
        self.left -= 1;
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// An object's keys and values ([`DocValue::entries`]).
#[derive(Clone)]
pub struct Entries<'a> {
    inner: Elements<'a>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a str, DocValue<'a>);

    fn next(&mut self) -> Option<(&'a str, DocValue<'a>)> {
        let key = self.inner.next()?.as_str()?;
        let value = self.inner.next()?;
        Some((key, value))
    }
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.root(), f)
    }
}

impl fmt::Debug for DocValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_value(), f)
    }
}

/// A `Doc` inside a type deserialised some other way (a field of a
/// struct): read as a [`Value`] and written back to text to be parsed.
/// The direct way, `fetch_many::<Doc>` and the like, skips all that.
impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Doc, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let text = simd_json::to_vec(&value).map_err(serde::de::Error::custom)?;
        Doc::from_body(text).map_err(|error| serde::de::Error::custom(error.problem))
    }
}

/// `node` with its string as a place in the body at `base`, or `None` if
/// the string is not in the body.
fn own(node: simd_json::Node<'_>, base: usize) -> Option<Node> {
    Some(match node {
        simd_json::Node::Static(s) => Node::Static(s),
        simd_json::Node::String("") => Node::Str { start: 0, len: 0 },
        simd_json::Node::String(s) => {
            let start = (s.as_ptr() as usize).checked_sub(base)?;
            Node::Str {
                start: u32::try_from(start).ok()?,
                len: u32::try_from(s.len()).ok()?,
            }
        }
        simd_json::Node::Array { len, count } => Node::Array {
            len: u32::try_from(len).ok()?,
            count: u32::try_from(count).ok()?,
        },
        simd_json::Node::Object { len, count } => Node::Object {
            len: u32::try_from(len).ok()?,
            count: u32::try_from(count).ok()?,
        },
    })
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    const LAPS: &[u8] =
        br#"{"driver":"VER","laps":[{"lap":1,"time":91.5},{"lap":2,"time":90.25}],"team":{"name":"Red \"Bull\""},"n":-3,"big":18446744073709551615,"ok":true,"none":null,"a/b":1,"m~n":2}"#;

    fn doc() -> Doc {
        Doc::parse(LAPS.to_vec()).unwrap()
    }

    #[test]
    fn reads_every_kind_of_value() {
        let doc = doc();
        assert_eq!(doc.get("driver").and_then(DocValue::as_str), Some("VER"));
        assert_eq!(
            doc.pointer("/team/name").and_then(DocValue::as_str),
            Some("Red \"Bull\"")
        );
        assert_eq!(doc.get("n").and_then(DocValue::as_i64), Some(-3));
        assert_eq!(doc.get("n").and_then(DocValue::as_u64), None);
        assert_eq!(doc.get("big").and_then(DocValue::as_u64), Some(u64::MAX));
        assert_eq!(doc.get("ok").and_then(DocValue::as_bool), Some(true));
        assert!(doc.get("none").is_some_and(DocValue::is_null));
        assert_eq!(doc.get("laps").and_then(DocValue::len), Some(2));
        assert!(doc.get("missing").is_none());
    }

    #[test]
    fn walks_arrays_objects_and_pointers() {
        let doc = doc();
        let times: Vec<f64> = doc
            .get("laps")
            .into_iter()
            .flat_map(DocValue::elements)
            .filter_map(|lap| lap.get("time")?.as_f64())
            .collect();
        assert_eq!(times, [91.5, 90.25]);
        let keys: Vec<&str> = doc.root().entries().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["driver", "laps", "team", "n", "big", "ok", "none", "a/b", "m~n"]
        );
        assert_eq!(
            doc.pointer("/laps/1/lap").and_then(DocValue::as_u64),
            Some(2)
        );
        assert_eq!(doc.pointer("/a~1b").and_then(DocValue::as_u64), Some(1));
        assert_eq!(doc.pointer("/m~0n").and_then(DocValue::as_u64), Some(2));
        assert!(
            doc.pointer("/laps/01").is_none(),
            "a leading zero is no index"
        );
        assert!(doc.pointer("/laps/2").is_none());
        assert!(doc.pointer("laps").is_none(), "a pointer starts with /");
        assert_eq!(doc.pointer("").and_then(DocValue::len), Some(9));
    }

    #[test]
    fn converts_to_a_value_and_to_types() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Lap {
            lap: u32,
            time: f64,
        }
        let doc = doc();
        let value: Value = simd_json::to_owned_value(&mut LAPS.to_vec()).unwrap();
        assert_eq!(doc.to_value(), value);
        let laps: Vec<Lap> = doc.get("laps").unwrap().deserialize().unwrap();
        assert_eq!(
            laps[1],
            Lap {
                lap: 2,
                time: 90.25
            }
        );
        let wrong = doc.get("driver").unwrap().deserialize::<u32>().unwrap_err();
        assert_eq!(wrong.kind(), crate::ErrorKind::InvalidJson);
        assert_eq!(
            value
                .get("team")
                .and_then(|t| t.get("name"))
                .and_then(|n| n.as_str()),
            Some("Red \"Bull\"")
        );
    }

    #[test]
    fn scalars_empty_containers_and_bad_json() {
        for (text, len) in [
            (&b"[]"[..], Some(0)),
            (b"{}", Some(0)),
            (b"\"\"", None),
            (b"7", None),
        ] {
            let doc = Doc::parse(text.to_vec()).unwrap();
            assert_eq!(doc.root().len(), len, "{:?}", std::str::from_utf8(text));
        }
        assert_eq!(
            Doc::parse(b"\"\"".to_vec()).unwrap().root().as_str(),
            Some("")
        );
        assert_eq!(
            Doc::parse(b"\xef\xbb\xbf[1]".to_vec())
                .unwrap()
                .root()
                .len(),
            Some(1)
        );
        let error = Doc::parse(br#"{"a":}"#.to_vec()).unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::InvalidJson);
        assert!(Doc::parse(Vec::new()).is_err());
    }

    #[test]
    fn a_doc_inside_a_struct_is_read_too() {
        #[derive(serde::Deserialize)]
        struct Outer {
            inner: Doc,
        }
        let outer: Outer = serde_json::from_str(r#"{"inner":{"x":[1,2]}}"#).unwrap();
        assert_eq!(
            outer.inner.pointer("/x/1").and_then(DocValue::as_u64),
            Some(2)
        );
    }
}
