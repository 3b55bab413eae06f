//! JSON as the caller asks for it: `Value`, `Doc`, `RawJson` and a serde
//! type accept and refuse the same bodies alike (but for a number past
//! what an f64 holds: JSON text, which `RawJson` keeps as sent), a `Doc`
//! reads as the `Value` of the same body, and a `RawJson` inside a type
//! of the caller's is read as any other field. (The words of a bad body:
//! messages.rs.)

use std::sync::Arc;

use parfetch::{ErrorKind, RawJson, Request};

use crate::server::{Reply, TestServer};
use crate::support::always;

// From review 2 (issues 13 and 14).
/// Found (now fixed): README/docs: a `RawJson` is fetched "as any other type", and
/// "serialises ... so it can be embedded". Inside a type of the caller's
/// (`Option<RawJson>`, the type an empty body asks for; `Vec<RawJson>`; a
/// struct field), the body goes through simd-json's serde deserializer,
/// and `RawJson`'s `Deserialize` wants serde_json's `RawValue` token: every
/// such fetch fails with InvalidJson on valid JSON. At fault:
/// src/raw_json.rs `impl Deserialize for RawJson` (deserialize any value
/// and re-serialise it, or route types containing `RawJson` through
/// serde_json; at least document it).
#[test]
fn raw_json_inside_a_callers_type() {
    let (server, _) = always(200, r#"[{"b":1.50,"a":2}]"#, &[]);
    let fetcher = crate::quick().build().unwrap();
    let direct = fetcher.get_json::<RawJson>(server.url("/x")).unwrap();
    assert_eq!(direct.as_str(), r#"[{"b":1.50,"a":2}]"#);
    // Inside a type of the caller's, the value written out again: keys in
    // their order, numbers in their shortest form.
    let optional = fetcher
        .get_json::<Option<RawJson>>(server.url("/x"))
        .map(|raw| raw.map(|raw| raw.as_str().to_owned()))
        .map_err(|e| e.to_string());
    assert_eq!(optional, Ok(Some(r#"[{"b":1.5,"a":2}]"#.to_owned())));
    let listed = fetcher
        .get_json::<Vec<RawJson>>(server.url("/x"))
        .map(|raws| {
            raws.iter()
                .map(|raw| raw.as_str().to_owned())
                .collect::<Vec<_>>()
        })
        .map_err(|e| e.to_string());
    assert_eq!(listed, Ok(vec![r#"{"b":1.5,"a":2}"#.to_owned()]));
}

// From review 2 (issues 13 and 14).
/// Held: the same bodies are accepted or refused alike by `Value`,
/// `RawJson` and a serde type (BOM, form feed, NBSP, vertical tab, NUL,
/// trailing garbage, lone surrogates, 1,025-deep nesting, nothing but a
/// space), and what `RawJson` keeps is JSON serde_json reads back. (A
/// number out of an f64's range is where they part: the next test.)
#[test]
fn json_paths_agree() {
    let mut deep = vec![b'['; 1025];
    deep.extend(vec![b']'; 1025]);
    let bodies: Vec<Vec<u8>> = vec![
        b"\xEF\xBB\xBF{}".to_vec(),
        b"\x0c[1]".to_vec(),
        b"\xC2\xA0[1]".to_vec(),
        b"[1]\x0b".to_vec(),
        b"[1]\0".to_vec(),
        b"[1] x".to_vec(),
        br#"["\ud800"]"#.to_vec(),
        deep,
        b" ".to_vec(),
        b"[123456789012345678901234567890]".to_vec(),
        b"{\"a\":1,\"a\":2}".to_vec(),
        "[\"\u{2028}\"]".as_bytes().to_vec(),
        b"-0".to_vec(),
    ];
    let bodies = Arc::new(bodies);
    let server = TestServer::start({
        let bodies = Arc::clone(&bodies);
        move |request| {
            let i: usize = request.path.trim_start_matches('/').parse().unwrap();
            Reply::json(200, bodies[i].clone())
        }
    });
    let fetcher = crate::quick().build().unwrap();
    let mut wrong = Vec::new();
    for i in 0..bodies.len() {
        let url = server.url(&format!("/{i}"));
        let value = fetcher.get_json::<parfetch::Value>(url.as_str()).is_ok();
        let raw = fetcher.get_json::<RawJson>(url.as_str());
        let typed = fetcher.get_json::<serde_json::Value>(url.as_str()).is_ok();
        let doc = fetcher.get_json::<parfetch::Doc>(url.as_str()).is_ok();
        if doc != value {
            wrong.push(format!("{i}: value {value}, doc {doc}"));
        }
        if let Ok(raw) = &raw {
            if serde_json::from_str::<serde::de::IgnoredAny>(raw.as_str()).is_err() && i != 7 {
                wrong.push(format!("{i}: RawJson kept what is not JSON"));
            }
        }
        if value != raw.is_ok() || value != typed {
            wrong.push(format!(
                "{i}: value {value}, raw {}, typed {typed}",
                raw.is_ok()
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// A `Doc` is asked for as any other type, from one call, a list or a
/// batch, and reads as the `Value` of the same body.
#[test]
fn a_doc_reads_as_the_value_of_its_body() {
    let body = r#"{"id":7,"tags":["a","b\"c"],"nested":{"x":[1.5,null,true]}}"#;
    let (server, _) = always(200, body, &[]);
    let fetcher = crate::quick().build().unwrap();
    let urls: Vec<String> = (0..20).map(|i| server.url(&format!("/{i}"))).collect();
    let expected = fetcher
        .get_json::<parfetch::Value>(urls[0].as_str())
        .unwrap();
    let one = fetcher.get_json::<parfetch::Doc>(urls[0].as_str()).unwrap();
    assert_eq!(one.to_value(), expected);
    assert_eq!(
        one.pointer("/tags/1").and_then(|t| t.as_str()),
        Some("b\"c")
    );
    for doc in fetcher.fetch_many::<parfetch::Doc>(&urls) {
        assert_eq!(doc.unwrap().to_value(), expected);
    }
    let mut seen = 0;
    fetcher.batch(&urls).for_each::<parfetch::Doc>(|_, doc| {
        let doc = doc.unwrap();
        assert_eq!(
            doc.pointer("/nested/x/0").and_then(|x| x.as_f64()),
            Some(1.5)
        );
        seen += 1;
    });
    assert_eq!(seen, 20);
}

/// A `Doc` pointer's array index is RFC 6901's: decimal digits, no sign,
/// no leading zero. `/a/+1` names no member (serde_json's `pointer` says
/// the same), though Rust's `usize` parse takes `+1`.
// From the adversarial review of issue 26.
#[test]
fn a_doc_pointer_index_is_digits_only() {
    let doc = parfetch::Doc::parse(br#"{"a":[10,20,30],"":{"":7}}"#.to_vec()).unwrap();
    assert_eq!(doc.pointer("/a/1").and_then(|v| v.as_u64()), Some(20));
    for pointer in ["/a/+1", "/a/-0", "/a/ 1", "/a/01", "/a/"] {
        assert!(doc.pointer(pointer).is_none(), "{pointer} named a member");
    }
    // An empty key is a key: `//` is the "" member of the "" member.
    assert_eq!(doc.pointer("//").and_then(|v| v.as_u64()), Some(7));
}

/// `{"f":1e400}` is JSON text: RFC 8259's grammar takes any number of
/// digits in an exponent and leaves the range to the reader. `RawJson`
/// keeps it as sent; `Value` (which holds f64s) refuses it, saying it is
/// a number out of range, not a number that is not JSON. A number the
/// grammar refuses is refused by both.
// From issue 26: RawJson (and so the CLI) refused it.
#[test]
fn raw_json_takes_what_the_grammar_takes_and_value_says_why_not() {
    let server = crate::support::serve(vec![
        ("/huge", Reply::json(200, r#"{"f":1e400}"#)),
        ("/tiny", Reply::json(200, "[-1.5e-999, 1E+400, 0.0]")),
        ("/bad", Reply::json(200, r#"{"f":1e}"#)),
        ("/leading-zero", Reply::json(200, r#"{"f":01e400}"#)),
    ]);
    let fetcher = crate::quick().build().unwrap();
    let raw = |path: &str| fetcher.get_json::<RawJson>(server.url(path));
    assert_eq!(raw("/huge").unwrap().as_str(), r#"{"f":1e400}"#);
    assert_eq!(raw("/tiny").unwrap().as_str(), "[-1.5e-999,1E+400,0.0]");
    let error = fetcher
        .get_json::<parfetch::Value>(server.url("/huge"))
        .unwrap_err();
    assert_eq!(error.kind(), parfetch::ErrorKind::InvalidJson);
    let message = error.to_string();
    assert!(
        message.contains("a number out of range") && message.contains("1e400"),
        "{message}"
    );
    for path in ["/bad", "/leading-zero"] {
        let error = raw(path).unwrap_err();
        assert_eq!(error.kind(), parfetch::ErrorKind::InvalidJson, "{path}");
        let message = fetcher
            .get_json::<parfetch::Value>(server.url(path))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("a number that is not valid JSON"),
            "{path}: {message}"
        );
    }
    // The same from bytes in hand.
    assert_eq!(
        RawJson::from_json(b"[1e400]")
            .map(|raw| raw.into_string())
            .ok(),
        Some("[1e400]".to_owned())
    );
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Shape {
    a: u32,
}

/// RFC 8259 §2: a JSON text is a value; nothing is not one. A 200 (or any
/// success but 204 and 205) with an empty body is `InvalidJson` "no
/// content", whatever the type asked for, `Option` included; its bytes are
/// an empty `Vec`.
#[test]
fn an_empty_success_is_not_json() {
    for status in [200, 201, 203] {
        let server = TestServer::start(move |_| Reply::status(status));
        let fetcher = crate::quick().build().unwrap();
        let url = server.url("/empty");
        let errors = [
            fetcher.get_json::<Option<Shape>>(&url).unwrap_err(),
            fetcher.get_json::<parfetch::Value>(&url).unwrap_err(),
            fetcher.get_json::<RawJson>(&url).unwrap_err(),
            fetcher.get_json::<()>(&url).unwrap_err(),
        ];
        for error in errors {
            assert_eq!(error.kind(), ErrorKind::InvalidJson, "{status}: {error:?}");
            assert!(error.to_string().contains("no content"), "{error}");
            assert_eq!(error.attempts(), 1, "{error}");
        }
        assert_eq!(fetcher.get_bytes(&url).unwrap(), b"", "{status}");
    }
}

/// RFC 9110 §15.3.5, §15.3.6 and §9.3.2: a 204, a 205 and the answer to a
/// HEAD have no content by definition: JSON `null` to the types that take
/// it, "no content" to the others, an empty `Vec` as bytes.
#[test]
fn a_response_without_content_is_null() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/204" => Reply::status(204),
        "/205" => Reply::status(205),
        _ => Reply::status(200).with_header("content-length", "12"),
    });
    let fetcher = crate::quick().build().unwrap();
    let requests = [
        Request::get(server.url("/204")),
        Request::get(server.url("/205")),
        Request::head(server.url("/head")),
        Request::delete(server.url("/204")),
    ];
    for request in requests {
        let shown = format!("{} {}", request.method(), request.url());
        let none: Option<Shape> = fetcher.get_json(&request).unwrap();
        assert!(none.is_none(), "{shown}");
        let value: parfetch::Value = fetcher.get_json(&request).unwrap();
        assert_eq!(value, parfetch::Value::from(()), "{shown}");
        let raw: RawJson = fetcher.get_json(&request).unwrap();
        assert_eq!(raw.as_str(), "null", "{shown}");
        fetcher.get_json::<()>(&request).unwrap();
        let error = fetcher.get_json::<Shape>(&request).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidJson, "{shown}");
        assert!(error.to_string().contains("no content"), "{error}");
        assert_eq!(fetcher.get_bytes(&request).unwrap(), b"", "{shown}");
    }
}
