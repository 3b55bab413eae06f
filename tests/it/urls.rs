//! URLs as callers write them: malformed or odd ones each get one result
//! of their own, and a scheme is read in any case.

use std::time::Duration;

use parfetch::{ErrorKind, Value};

use crate::server::{Reply, TestServer};
use crate::support::within;

// From review 1 (issue 12).
/// Held: malformed and odd URLs in one batch: one result each, in order,
/// never a panic; the good ones among them work, one with its scheme in
/// upper case (`HTTP://`) too: schemes are case-insensitive.
#[test]
fn odd_urls_in_a_batch_each_get_one_result() {
    let server = TestServer::start(|_| Reply::json(200, "1"));
    let port = server.addr().port();
    let long_path = "a".repeat(200_000);
    let urls: Vec<String> = vec![
        format!("http://127.0.0.1:{port}/ok"),
        "http://[::1".into(),
        "http://127.0.0.1:99999/".into(),
        "http://127.0.0.1:65536/".into(),
        "http://127.0.0.1:/x".into(),
        "http://@/".into(),
        "http://a@b@/".into(),
        "http://:80/".into(),
        "https://".into(),
        "http://".into(),
        "://".into(),
        String::new(),
        "http://\u{0}/".into(),
        "http://caf\u{e9}.localhost/".into(),
        format!("http://127.0.0.1:{port}/{long_path}"),
        format!("http://[fe80::1%25lo]:{port}/"),
        format!("http://127.0.0.1:{port}/%ff%00?\u{1F600}#frag"),
        format!("HTTP://127.0.0.1:{port}/upper"),
        "http://127.0.0.1:1/refused".into(),
        format!("http://127.0.0.1:{port}/ok2"),
    ];
    let fetcher = crate::quick()
        .timeout(Duration::from_secs(5))
        .max_retries(0)
        .build()
        .unwrap();
    let results = within(Duration::from_secs(60), {
        let (fetcher, urls) = (fetcher.clone(), urls.clone());
        move || fetcher.fetch_many_bytes(&urls)
    })
    .expect("fetch_many hung");
    assert_eq!(results.len(), urls.len());
    // The good ones among the odd, an upper-case scheme among them.
    for i in [0, 17, urls.len() - 1] {
        assert_eq!(
            results[i].as_ref().map(Vec::as_slice).ok(),
            Some(&b"1"[..]),
            "{}: {:?}",
            urls[i],
            results[i]
        );
    }
    let collected = within(Duration::from_secs(60), {
        let urls = urls.clone();
        move || fetcher.batch(urls).collect::<Value>().0
    })
    .expect("batch hung");
    assert_eq!(collected.len(), urls.len());
    for (url, result) in urls.iter().zip(&results) {
        if let Err(error) = result {
            assert_ne!(error.kind(), ErrorKind::Internal, "{url:.60}: {error}");
        }
    }
}

/// A batch takes what a caller has at hand: an array or a `Vec` of `&str`
/// by reference, `String`s, and `url::Url`s, owned or borrowed.
// From issue 26: `fetch_many(&["…"])` and `url::Url` did not compile.
#[test]
// The borrows are the point: callers write them.
#[allow(clippy::needless_borrows_for_generic_args)]
fn a_batch_takes_strs_strings_and_urls() {
    let server = TestServer::start(|_| Reply::json(200, "{}"));
    let fetcher = crate::quick().build().unwrap();
    let (a, b) = (server.url("/a"), server.url("/b"));
    let strs = [a.as_str(), b.as_str()];
    let parsed: Vec<url::Url> = strs.iter().map(|s| url::Url::parse(s).unwrap()).collect();
    let counts = [
        fetcher.fetch_many_bytes(&strs).len(),
        fetcher.fetch_many_bytes(&strs.to_vec()).len(),
        fetcher.fetch_many_bytes(vec![a.clone(), b.clone()]).len(),
        fetcher.fetch_many_bytes(&parsed).len(),
        fetcher.fetch_many_bytes(parsed.clone()).len(),
    ];
    assert_eq!(counts, [2; 5]);
    assert_eq!(server.requests(), 10);
}
