//! What the fetcher logs: retries and breaker changes, never secrets. Each
//! test captures its own thread's lines (`support::LogCapture`); other
//! tests log nothing.

use crate::server::{Reply, TestServer};
use crate::support::LogCapture;

/// The target of ureq-proto's trace-level dump of the raw bytes sent and read.
const WIRE_DUMP: &str = "ureq_proto::util: ";

// With the user name of review 1 (issue 12).
/// Retries and breaker changes are logged; no secret is (the caller's
/// headers, the URL's password and user name, even in part), at any level,
/// in parfetch's lines or its dependencies'.
///
/// Failed before the fix (review 1): ureq's own debug line named the first
/// character of the URL's user name (`U*****:******@127.0.0.1`), and at
/// trace level it logged the path and query in full. parfetch handed ureq
/// the URI with its user info (src/request.rs `to_http`); it strips it now.
#[test]
fn retries_and_breaker_changes_are_logged_without_secrets() {
    let capture = LogCapture::start();
    let server = TestServer::start(|_| Reply::status(503));
    let fetcher = crate::quick()
        .max_retries(1)
        .breaker_threshold(2)
        .header("authorization", "Bearer SECRET-TOKEN")
        .build()
        .unwrap();
    let url = server
        .url("/private.json")
        .replace("http://", "http://QSECRETUSER:PASSWORD@");
    let request = parfetch::Request::get(url).header("cookie", "session=SECRET-COOKIE");
    let error = fetcher.get_bytes(request.clone()).unwrap_err();
    assert_eq!(
        (error.status(), error.attempts()),
        (Some(503), 2),
        "{error}"
    );
    // A second request failing in a row opens the breaker (a request's
    // retries count once); its retry waits for the open second, goes as
    // the probe, and fails too: its own 503.
    let error = fetcher.get_bytes(request).unwrap_err();
    assert_eq!(
        (error.status(), error.attempts()),
        (Some(503), 2),
        "{error}"
    );
    let lines = capture.lines();
    let ours: Vec<&(log::Level, String)> = lines
        .iter()
        .filter(|(_, line)| line.contains("private.json") || line.contains(&server.host()))
        .collect();
    assert!(
        ours.iter()
            .any(|(level, line)| *level == log::Level::Warn && line.contains("retrying in")),
        "{ours:#?}"
    );
    assert!(
        ours.iter().any(|(level, line)| *level == log::Level::Warn
            && line.contains("circuit breaker")
            && line.contains("opened")),
        "{ours:#?}"
    );
    assert!(
        ours.iter().any(
            |(level, line)| *level == log::Level::Debug && line.contains("attempt 1 failed in")
        ),
        "{ours:#?}"
    );
    // ureq-proto's trace level is a hex dump of the bytes on the wire (as
    // `curl --trace`), secrets included; the README says so. Every other line,
    // at every level, must keep them out.
    for (_, line) in lines
        .iter()
        .filter(|(_, line)| !line.starts_with(WIRE_DUMP))
    {
        for secret in [
            "SECRET-TOKEN",
            "SECRET-COOKIE",
            "PASSWORD",
            "QSECRETUSER",
            "Q*****",
        ] {
            assert!(!line.contains(secret), "{line}");
        }
    }
}
