//! Exact request counts and request shapes, as the server saw them.
//!
//! (These used mockito; the loopback server of `server.rs` checks the same
//! things, and its own dev-dependency stack, tokio and hyper among them, no
//! longer slows the first `cargo run --example demo`.)

use std::sync::{Arc, Mutex, PoisonError};

use parfetch::ErrorKind;

use crate::server::{Reply, Request, TestServer};

/// A server answering every request with `reply`, and the requests it got.
fn recording(reply: Reply) -> (TestServer, Arc<Mutex<Vec<Request>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = TestServer::start({
        let seen = Arc::clone(&seen);
        move |request| {
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(request.clone());
            reply.clone()
        }
    });
    (server, seen)
}

/// What the server got: (method, path) of each request, in order.
fn lines(seen: &Mutex<Vec<Request>>) -> Vec<(String, String)> {
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|request| (request.method.clone(), request.path.clone()))
        .collect()
}

#[test]
fn not_found_is_requested_exactly_once() {
    let (server, seen) = recording(Reply::status(404));
    let fetcher = crate::quick().build().unwrap();
    let error = fetcher.get_bytes(server.url("/gone.json")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(lines(&seen), [("GET".into(), "/gone.json".into())]);
}

#[test]
fn server_errors_are_requested_one_plus_retries_times() {
    let (server, seen) = recording(Reply::status(502));
    let fetcher = crate::quick().max_retries(2).build().unwrap();
    let error = fetcher.get_bytes(server.url("/flaky.json")).unwrap_err();
    assert_eq!((error.status(), error.attempts()), (Some(502), 3));
    assert_eq!(
        lines(&seen),
        vec![("GET".to_string(), "/flaky.json".to_string()); 3]
    );
}

#[test]
fn requests_carry_the_default_and_own_headers() {
    let (server, seen) = recording(Reply::json(200, r#"{"laps":[1,2]}"#));
    let fetcher = crate::quick().header("x-api-key", "k").build().unwrap();
    let value: parfetch::Value = fetcher.get_json(server.url("/laps.json")).unwrap();
    assert_eq!(value["laps"][1], 2);

    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    let [request] = seen.as_slice() else {
        panic!("expected one request, got {}", seen.len());
    };
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/laps.json")
    );
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("x-api-key"), Some("k"));
    let agent = request.header("user-agent").unwrap_or_default();
    assert!(agent.starts_with("parfetch/"), "user-agent {agent:?}");
    let encodings = request.header("accept-encoding").unwrap_or_default();
    assert!(encodings.contains("gzip"), "accept-encoding {encodings:?}");
}
