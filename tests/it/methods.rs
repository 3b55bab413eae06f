//! Requests as the server sees them: each method sent as itself, query
//! parameters escaped, bodies with their content types, which methods are
//! retried (RFC 9110 §9.2.2), and bodies across retries and redirects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use parfetch::{ErrorKind, Method, Request};

use crate::server::{Reply, TestServer};

/// What the server saw of one request.
#[derive(Clone, Debug, Default)]
struct Seen {
    method: String,
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A server answering `reply(n, request)` to its n-th request on each path
/// (0-based), and recording everything it saw.
fn recording_server(
    reply: impl Fn(usize, &crate::server::Request) -> Reply + Send + Sync + 'static,
) -> (TestServer, Log) {
    let log: Log = Arc::default();
    let per_path: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let server = TestServer::start({
        let log = Arc::clone(&log);
        move |request| {
            log.lock().unwrap().push(Seen {
                method: request.method.clone(),
                path: request.path.clone(),
                content_type: request.header("content-type").map(str::to_owned),
                body: request.body.clone(),
            });
            let n = {
                let mut counts = per_path.lock().unwrap();
                let count = counts.entry(request.path.clone()).or_default();
                *count += 1;
                *count - 1
            };
            reply(n, request)
        }
    });
    (server, log)
}

/// A 200 answer fit for any method: a HEAD's says how long the body would
/// be and sends none.
fn ok(request: &crate::server::Request) -> Reply {
    if request.method == "HEAD" {
        Reply::status(200).with_header("content-length", "2")
    } else {
        Reply::json(200, "{}")
    }
}

fn seen(log: &Log) -> Vec<Seen> {
    log.lock().unwrap().clone()
}

#[test]
fn every_method_is_sent_as_itself() {
    let (server, log) = recording_server(|_, request| ok(request));
    let fetcher = crate::quick().build().unwrap();
    let url = server.url("/item");
    let requests = [
        (Request::get(&url), "GET"),
        (Request::head(&url), "HEAD"),
        (Request::post(&url), "POST"),
        (Request::put(&url), "PUT"),
        (Request::patch(&url), "PATCH"),
        (Request::delete(&url), "DELETE"),
        (Request::new(Method::Options, &url), "OPTIONS"),
    ];
    for (request, method) in requests {
        assert_eq!(request.method().as_str(), method);
        fetcher
            .get_bytes(request)
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let last = seen(&log).pop().unwrap();
        assert_eq!(last.method, method);
        assert!(last.body.is_empty(), "{method} sent a body: {last:?}");
    }
    assert_eq!(seen(&log).len(), 7);
}

#[test]
fn query_parameters_reach_the_server_escaped() {
    let (server, log) = recording_server(|_, request| ok(request));
    let fetcher = crate::quick().build().unwrap();
    let request = Request::get(server.url("/search?page=2#results"))
        .query("q", "laps & times=fast#1")
        .query("driver", "Pérez")
        .query("empty", "");
    fetcher.get_bytes(request).unwrap();
    assert_eq!(
        seen(&log)[0].path,
        "/search?page=2&q=laps+%26+times%3Dfast%231&driver=P%C3%A9rez&empty="
    );
}

#[test]
fn bodies_arrive_with_their_content_type() {
    let (server, log) = recording_server(|_, request| ok(request));
    let fetcher = crate::quick().build().unwrap();
    let url = server.url("/items");
    let cases = [
        (
            Request::post(&url).json(&serde_json::json!({"name": "a b", "n": [1, 2]})),
            "application/json",
            &br#"{"n":[1,2],"name":"a b"}"#[..],
        ),
        (
            Request::put(&url).form(&[("user", "ada"), ("pass", "p&ss w=rd")]),
            "application/x-www-form-urlencoded",
            b"user=ada&pass=p%26ss+w%3Drd",
        ),
        (
            Request::patch(&url).body(vec![0, 159, 255], "application/octet-stream"),
            "application/octet-stream",
            &[0, 159, 255],
        ),
        // The caller's own Content-Type wins over the body's.
        (
            Request::patch(&url)
                .header("Content-Type", "application/merge-patch+json")
                .json(&serde_json::json!({"name": null})),
            "application/merge-patch+json",
            br#"{"name":null}"#,
        ),
    ];
    for (request, content_type, body) in cases {
        let method = request.method();
        fetcher.get_bytes(request).unwrap();
        let last = seen(&log).pop().unwrap();
        assert_eq!(last.method, method.as_str());
        assert_eq!(last.content_type.as_deref(), Some(content_type), "{method}");
        assert_eq!(last.body, body, "{method}");
    }
}

#[test]
fn put_and_delete_are_retried_after_a_503() {
    let (server, log) = recording_server(|n, request| {
        if n == 0 {
            Reply::status(503)
        } else {
            ok(request)
        }
    });
    let fetcher = crate::quick().build().unwrap();
    fetcher
        .get_bytes(Request::put(server.url("/put")).json(&serde_json::json!({"v": 1})))
        .unwrap();
    fetcher
        .get_bytes(Request::delete(server.url("/delete")))
        .unwrap();
    let methods: Vec<(String, String)> = seen(&log)
        .into_iter()
        .map(|seen| (seen.method, seen.path))
        .collect();
    let pair = |method: &str, path: &str| (method.to_owned(), path.to_owned());
    assert_eq!(
        methods,
        [
            pair("PUT", "/put"),
            pair("PUT", "/put"),
            pair("DELETE", "/delete"),
            pair("DELETE", "/delete")
        ]
    );
}

#[test]
fn post_and_patch_are_retried_only_when_marked() {
    let (server, log) = recording_server(|_, _| Reply::status(503));
    let fetcher = crate::quick().max_retries(2).build().unwrap();
    let url = server.url("/x");
    for (request, attempts) in [
        (Request::post(&url).json(&1), 1),
        (Request::patch(&url).json(&1), 1),
        (Request::post(&url).json(&1).idempotent(true), 3),
        (Request::patch(&url).json(&1).idempotent(true), 3),
        // Marked not idempotent, even a GET is sent once.
        (Request::get(&url).idempotent(false), 1),
    ] {
        let method = request.method();
        let before = seen(&log).len();
        let error = fetcher.get_bytes(request).unwrap_err();
        assert_eq!(
            (error.kind(), error.status(), error.attempts()),
            (ErrorKind::Status, Some(503), attempts),
            "{method}"
        );
        assert_eq!(seen(&log).len() - before, attempts as usize, "{method}");
    }
}

#[test]
fn a_retry_resends_the_body_intact() {
    let (server, log) = recording_server(|n, request| {
        if n == 0 {
            Reply::status(503)
        } else {
            ok(request)
        }
    });
    let fetcher = crate::quick().build().unwrap();
    let body = "x".repeat(100_000);
    fetcher
        .get_bytes(Request::put(server.url("/big")).body(body.clone(), "text/plain"))
        .unwrap();
    let seen = seen(&log);
    assert_eq!(seen.len(), 2);
    for request in seen {
        assert_eq!(request.body, body.as_bytes());
        assert_eq!(request.content_type.as_deref(), Some("text/plain"));
    }
}

/// RFC 9110 §15.4: 307 and 308 keep the method and the body; 301 and 302
/// turn a POST (only) into a GET, and 303 anything but HEAD, without the
/// body or its Content-Type (as browsers and curl do).
#[test]
fn redirects_keep_or_drop_the_body_as_the_status_says() {
    let (server, log) = recording_server(|_, request| match request.path.strip_prefix("/moved/") {
        Some(status) => Reply::status(status.parse().unwrap()).with_header("location", "/to"),
        None => ok(request),
    });
    let fetcher = crate::quick().build().unwrap();
    let cases = [
        (Method::Post, 307, "POST", true),
        (Method::Put, 308, "PUT", true),
        (Method::Post, 301, "GET", false),
        (Method::Post, 302, "GET", false),
        (Method::Put, 302, "PUT", true),
        (Method::Patch, 303, "GET", false),
    ];
    for (method, status, then, keeps_body) in cases {
        let request = Request::new(method, server.url(&format!("/moved/{status}")))
            .json(&serde_json::json!({"k": "v"}))
            .idempotent(true);
        fetcher.get_bytes(request).unwrap();
        let last = seen(&log).pop().unwrap();
        assert_eq!(
            (last.path.as_str(), last.method.as_str()),
            ("/to", then),
            "{method} then {status}"
        );
        if keeps_body {
            assert_eq!(last.body, br#"{"k":"v"}"#, "{method} then {status}");
            assert_eq!(last.content_type.as_deref(), Some("application/json"));
        } else {
            assert!(last.body.is_empty(), "{method} then {status}: {last:?}");
            assert_eq!(last.content_type, None, "{method} then {status}");
        }
    }
}
