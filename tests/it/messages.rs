//! What a person reads when a body is not the JSON asked for: each kind of
//! failure said in words (asserted on the kind and on key words, not whole
//! strings), the same in the library's `Display` and the CLI's lines; and
//! content encodings a server sends unasked.

use std::io::Write;

use parfetch::{ErrorKind, Value};
use serde::Deserialize;

use crate::server::{Reply, TestServer};
use crate::support::gzip;

/// A server answering `/<name>` with the body and headers of that case.
fn server() -> TestServer {
    TestServer::start(|request| {
        let json = |body: &[u8]| Reply::json(200, body.to_vec());
        match request.path.as_str() {
            "/html" => Reply::Respond {
                status: 200,
                headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
                body: b"<!DOCTYPE html>\n<html><head><title>Login</title></head></html>".to_vec(),
            },
            "/ndjson" => Reply::Respond {
                status: 200,
                headers: vec![("content-type".into(), "application/x-ndjson".into())],
                body: b"{\"n\":1,\"s\":\"a \\\"quoted\\\" word\"}\n{\"n\":2}\n{\"n\":3}\n".to_vec(),
            },
            "/truncated" => json(b"{\"laps\":[1,2,3"),
            "/deep" => json(&[vec![b'['; 5000], vec![b']'; 5000]].concat()),
            "/number" => json(b"{\"big\":1e999}"),
            "/utf8" => json(b"{\"name\":\"caf\xe9\"}"),
            "/typed" => json(br#"{"laps":[{"time":90.5},{"time":"slow"}]}"#),
            "/deflate" => Reply::json(200, deflate(br#"{"deflated":true}"#))
                .with_header("content-encoding", "deflate"),
            "/zstd" => Reply::json(200, b"\x28\xb5\x2f\xfd\x00\x00".to_vec())
                .with_header("content-encoding", "zstd"),
            "/gzip-twice" => Reply::json(200, gzip(&gzip(br#"{"twice":true}"#)))
                .with_header("content-encoding", "gzip, gzip"),
            _ => Reply::status(404),
        }
    })
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Laps {
    laps: Vec<Lap>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Lap {
    time: f64,
}

/// The message of `get_json::<Value>` on `path`, checked to be InvalidJson
/// and free of the parser's own codes.
fn message(server: &TestServer, path: &str) -> String {
    let fetcher = crate::quick().build().unwrap();
    let error = fetcher.get_json::<Value>(server.url(path)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidJson, "{path}: {error}");
    assert_eq!(error.attempts(), 1, "{path}: not retried");
    let message = error.to_string();
    for parser_speak in ["InternalError", "character", "InvalidUtf8", "Eof"] {
        assert!(!message.contains(parser_speak), "{path}: {message}");
    }
    assert!(
        std::error::Error::source(&error).is_none(),
        "{path}: the words are the message"
    );
    message
}

fn assert_words(message: &str, words: &[&str]) {
    for word in words {
        assert!(message.contains(word), "{message:?} lacks {word:?}");
    }
}

#[test]
fn each_kind_of_bad_body_is_said_in_words() {
    let server = server();
    let cases: [(&str, &[&str]); 6] = [
        (
            "/html",
            &[
                "the body is not JSON",
                "it starts with \"<!DOCTYPE html>\\n<html>",
                "content type text/html",
                "at byte 0",
            ],
        ),
        (
            "/ndjson",
            &[
                "more than one JSON value",
                "NDJSON",
                "the first ends at byte 31",
                "{\\\"n\\\":2}",
                "content type application/x-ndjson",
            ],
        ),
        ("/truncated", &["ends too soon", "cut short"]),
        ("/deep", &["nested deeper", "1,024"]),
        ("/number", &["a number", "out of range", "1e999"]),
        ("/utf8", &["invalid UTF-8", "at byte 12"]),
    ];
    for (path, words) in cases {
        assert_words(&message(&server, path), words);
    }
    // A JSON content type is no news: not repeated.
    assert!(!message(&server, "/truncated").contains("content type"));
}

#[test]
fn a_typed_target_says_what_it_expected_and_where() {
    let server = server();
    let fetcher = crate::quick().build().unwrap();
    let error = fetcher.get_json::<Laps>(server.url("/typed")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidJson);
    assert_eq!(error.json_path(), Some("laps[1].time"));
    assert_words(
        &error.to_string(),
        &[
            "expected a number, found the string \"slow\"",
            "at \"laps[1].time\"",
        ],
    );
}

#[test]
fn encodings_sent_unasked_are_decoded_or_named() {
    let server = server();
    let fetcher = crate::quick().build().unwrap();
    let value: Value = fetcher.get_json(server.url("/deflate")).unwrap();
    assert_eq!(value["deflated"], true);
    let value: Value = fetcher.get_json(server.url("/gzip-twice")).unwrap();
    assert_eq!(value["twice"], true);
    assert_words(
        &message(&server, "/zstd"),
        &["zstd-encoded", "which parfetch does not decode"],
    );
    // As bytes, the body that could not be decoded comes as it was sent.
    let bytes = fetcher.get_bytes(server.url("/zstd")).unwrap();
    assert!(bytes.starts_with(b"\x28\xb5\x2f\xfd"));
}

/// The command's JSON lines carry the same words, and nothing else after
/// them (no parser codes in a cause).
#[cfg(feature = "cli")]
#[test]
fn the_command_says_the_same() {
    use crate::cli::{lines, parfetch_with_env};
    let server = server();
    let urls: Vec<String> = ["/html", "/ndjson", "/deflate"]
        .iter()
        .map(|path| server.url(path))
        .collect();
    let mut args = vec!["--ordered", "-q"];
    args.extend(urls.iter().map(String::as_str));
    let output = parfetch_with_env(&args, &[], None);
    let lines = lines(&output);
    let html = lines[0]["error"]["message"].as_str().unwrap();
    let library = message(&server, "/html");
    assert_eq!(html, library, "the CLI and Display agree");
    assert_eq!(lines[0]["error"]["kind"], "InvalidJson");
    let ndjson = lines[1]["error"]["message"].as_str().unwrap();
    assert!(ndjson.contains("more than one JSON value"), "{ndjson}");
    assert_eq!(lines[2]["body"]["deflated"], true);
}
