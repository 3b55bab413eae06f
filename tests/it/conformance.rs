//! The standards, rule by rule: RFC 9111 (HTTP caching) as a private cache,
//! RFC 9110's dates, RFC 8259's JSON. Each test names its section.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parfetch::prelude::*;
use parfetch::{ErrorKind, Fetcher, FetcherBuilder, RawJson, Value};

use crate::server::{Reply, TestServer};

fn temp_dir(name: &str) -> PathBuf {
    crate::scratch_dir(&format!("conformance-{name}"))
}

fn cached(dir: &Path) -> FetcherBuilder {
    crate::quick().cache_dir(dir)
}

/// What each request asked: its path and If-None-Match.
type Asked = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A server answering `reply()` to every request, recording them.
fn server(reply: impl Fn() -> Reply + Send + Sync + 'static) -> (TestServer, Asked) {
    let asked: Asked = Arc::default();
    let server = TestServer::start({
        let asked = Arc::clone(&asked);
        move |request| {
            let inm = request.header("if-none-match").map(str::to_owned);
            asked.lock().unwrap().push((request.path.clone(), inm));
            reply()
        }
    });
    (server, asked)
}

fn ok_with(headers: &'static [(&'static str, &'static str)]) -> impl Fn() -> Reply {
    move || {
        let mut reply = Reply::json(200, r#"{"v":1}"#);
        for (name, value) in headers {
            reply = reply.with_header(*name, *value);
        }
        reply
    }
}

/// RFC 9111 §5.2: directive names are case-insensitive.
#[test]
fn rfc9111_5_2_directive_names_ignore_case() {
    let dir = temp_dir("case");
    let (fresh, asked) = server(ok_with(&[("cache-control", "Public, MAX-AGE=3600")]));
    let fetcher = cached(&dir).build().unwrap();
    for _ in 0..2 {
        fetcher.get_bytes(fresh.url("/a")).unwrap();
    }
    assert_eq!(asked.lock().unwrap().len(), 1, "MAX-AGE made it fresh");
    let (must_check, asked) = server(ok_with(&[
        ("cache-control", "NO-CACHE, max-age=3600"),
        ("etag", "\"e1\""),
    ]));
    for _ in 0..2 {
        fetcher.get_bytes(must_check.url("/b")).unwrap();
    }
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 2, "NO-CACHE made it revalidate");
    assert_eq!(asked[1].1.as_deref(), Some("\"e1\""));
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 9111 §5.1: an Age that is not a delta-seconds is invalid: ignored.
#[test]
fn rfc9111_5_1_an_invalid_age_is_ignored() {
    let dir = temp_dir("age");
    let (server, asked) = server(ok_with(&[
        ("cache-control", "max-age=60"),
        ("age", "100 seconds"),
    ]));
    let fetcher = cached(&dir).build().unwrap();
    for _ in 0..2 {
        fetcher.get_bytes(server.url("/a")).unwrap();
    }
    assert_eq!(
        asked.lock().unwrap().len(),
        1,
        "the Age of 100 was not trusted"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 9111 §5.3: an invalid Expires (irregular spacing, "0") is in the
/// past; and RFC 9110 §5.6.7: all three date forms are understood.
#[test]
fn rfc9111_5_3_expires_invalid_is_past_and_all_date_forms_count() {
    let dir = temp_dir("expires");
    let fetcher = cached(&dir).build().unwrap();
    for (expires, fresh) in [
        ("Sun,  06 Nov 2094 08:49:37 GMT", false),
        ("0", false),
        ("Thu, 31 Dec 2099 23:59:59 GMT", true),
        ("Thursday, 31-Dec-37 23:59:59 GMT", true),
        ("Thu Dec 31 23:59:59 2037", true),
    ] {
        let (server, asked) = server(move || {
            Reply::json(200, "{}")
                .with_header("expires", expires)
                .with_header("etag", "\"e\"")
        });
        for _ in 0..2 {
            fetcher.get_bytes(server.url("/e")).unwrap();
        }
        let requests = asked.lock().unwrap().len();
        assert_eq!(
            requests == 1,
            fresh,
            "Expires: {expires:?} ({requests} requests)"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 9111 §3 and §4: a stored response is served with the status it had.
#[test]
fn rfc9111_4_a_stored_203_is_served_as_203() {
    let dir = temp_dir("203");
    let (server, asked) =
        server(|| Reply::json(203, r#"{"v":1}"#).with_header("cache-control", "max-age=3600"));
    let fetcher = cached(&dir).build().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        fetcher
            .batch([server.url("/a")])
            .for_each_report_bytes(|_, report| statuses.push(report.status));
    }
    assert_eq!(statuses, [Some(203), Some(203)]);
    assert_eq!(asked.lock().unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 9111 §3 and §4.2.2: a 404 is stored (explicitly fresh, or
/// heuristically cacheable), and answers for its URL, offline too.
#[test]
fn rfc9111_4_2_2_a_404_is_stored_and_answers_offline() {
    let dir = temp_dir("404");
    let (gone, asked) = server(|| {
        Reply::json(404, r#"{"gone":true}"#).with_header("cache-control", "max-age=3600")
    });
    let fetcher = cached(&dir).build().unwrap();
    for _ in 0..2 {
        let error = fetcher.get_bytes(gone.url("/missing")).unwrap_err();
        assert_eq!(
            (error.kind(), error.status()),
            (ErrorKind::NotFound, Some(404))
        );
        assert_eq!(error.body_excerpt(), Some(r#"{"gone":true}"#));
    }
    assert_eq!(
        asked.lock().unwrap().len(),
        1,
        "the second was the stored 404"
    );
    // Known to be gone, even with no network at all.
    let offline = Fetcher::builder()
        .cache_dir(&dir)
        .offline(true)
        .build()
        .unwrap();
    let error = offline.get_bytes(gone.url("/missing")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    // A 500 is not cacheable by default, even with a switch on.
    let (failing, asked) = server(|| Reply::status(500));
    let always = cached(&dir)
        .cache_always_fresh(true)
        .max_retries(0)
        .build()
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            always.get_bytes(failing.url("/x")).unwrap_err().status(),
            Some(500)
        );
    }
    assert_eq!(asked.lock().unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 9111 §4.3.4: a 304 about the stored version (same ETag, or no
/// validator at all) refreshes it with its fields; one about another
/// version (another strong ETag) updates nothing, and the document is
/// fetched again, whole.
/// The same rule for a request that reads the cache but does not write it
/// (`CacheMode::ReadOnly`): a 304 naming another version is not taken as
/// the stored one's (its headers were dropped, so it could not be judged).
#[test]
fn rfc9111_4_3_4_a_read_only_request_judges_the_304_too() {
    let dir = temp_dir("304-read-only");
    let whole_answers = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = TestServer::start({
        let whole_answers = Arc::clone(&whole_answers);
        move |request| {
            if request.header("if-none-match").is_some() {
                return Reply::status(304).with_header("etag", "\"v2\"");
            }
            // The first whole answer is version 1, the later ones version 2.
            match whole_answers.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Reply::json(200, r#"{"v":1}"#)
                    .with_header("cache-control", "no-cache")
                    .with_header("etag", "\"v1\""),
                _ => Reply::json(200, r#"{"v":2}"#).with_header("etag", "\"v2\""),
            }
        }
    });
    let fetcher = cached(&dir).build().unwrap();
    let url = server.url("/doc");
    fetcher.get_bytes(url.as_str()).unwrap();
    let read_only = parfetch::Request::get(url.as_str()).cache_mode(parfetch::CacheMode::ReadOnly);
    assert_eq!(
        fetcher.get_bytes(read_only).unwrap(),
        br#"{"v":2}"#.to_vec(),
        "a 304 naming another version served the stored one"
    );
}

#[test]
fn rfc9111_4_3_4_a_304_updates_only_its_own_version() {
    for (not_modified, want) in [
        // Same ETag, a new lifetime: fresh from then on.
        (
            vec![("etag", "\"v1\""), ("cache-control", "max-age=3600")],
            vec![None, Some("\"v1\"")],
        ),
        // No validator: about the entry it was asked from.
        (
            vec![("cache-control", "max-age=3600")],
            vec![None, Some("\"v1\"")],
        ),
        // Another version: asked again without condition, every time.
        (
            vec![("etag", "\"v2\""), ("cache-control", "max-age=3600")],
            vec![None, Some("\"v1\""), None, Some("\"v1\""), None],
        ),
    ] {
        let dir = temp_dir("304");
        let asked: Asked = Arc::default();
        let server = TestServer::start({
            let asked = Arc::clone(&asked);
            let not_modified = not_modified.clone();
            move |request| {
                let inm = request.header("if-none-match").map(str::to_owned);
                asked
                    .lock()
                    .unwrap()
                    .push((request.path.clone(), inm.clone()));
                match inm.as_deref() {
                    None => Reply::json(200, r#"{"v":1}"#)
                        .with_header("cache-control", "no-cache")
                        .with_header("etag", "\"v1\""),
                    Some(_) => not_modified
                        .iter()
                        .fold(Reply::status(304), |reply, (name, value)| {
                            reply.with_header(*name, *value)
                        }),
                }
            }
        });
        let fetcher = cached(&dir).build().unwrap();
        for _ in 0..3 {
            assert_eq!(
                fetcher.get_bytes(server.url("/doc")).unwrap(),
                br#"{"v":1}"#
            );
        }
        let sent: Vec<Option<String>> = asked.lock().unwrap().iter().map(|a| a.1.clone()).collect();
        let want: Vec<Option<String>> = want.iter().map(|w| w.map(str::to_owned)).collect();
        assert_eq!(sent, want, "304 with {not_modified:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// RFC 9111 §5.2.2.3: must-understand lifts no-store for a status the
/// cache understands.
#[test]
fn rfc9111_5_2_2_3_must_understand() {
    let dir = temp_dir("must-understand");
    let (server, asked) = server(ok_with(&[(
        "cache-control",
        "must-understand, no-store, max-age=3600",
    )]));
    let fetcher = cached(&dir).build().unwrap();
    for _ in 0..2 {
        fetcher.get_bytes(server.url("/a")).unwrap();
    }
    assert_eq!(asked.lock().unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cache's size limit: the least recently used entries go first, and
/// what is left fits.
#[test]
fn cache_max_bytes_keeps_the_cache_under_its_limit() {
    let dir = temp_dir("max-bytes");
    let (server, _) = server(|| {
        Reply::json(200, format!("[{}]", "1,".repeat(500) + "1"))
            .with_header("cache-control", "max-age=3600")
    });
    let probe = cached(&dir).build().unwrap();
    probe.get_bytes(server.url("/probe")).unwrap();
    let one_entry = probe.cache().unwrap().size_on_disk().unwrap();
    probe.cache().unwrap().clear().unwrap();
    let limit = one_entry * 5 + one_entry / 2;
    let fetcher = cached(&dir).cache_max_bytes(limit).build().unwrap();
    fetcher.get_bytes(server.url("/kept")).unwrap();
    for i in 0..20 {
        // Used again and again: the most recently used stays.
        std::thread::sleep(Duration::from_millis(15));
        fetcher.get_bytes(server.url(&format!("/{i}"))).unwrap();
        fetcher.get_bytes(server.url("/kept")).unwrap();
    }
    let cache = fetcher.cache().unwrap();
    let size = cache.size_on_disk().unwrap();
    assert!(size <= limit, "{size} > {limit}");
    assert!(cache.entries().unwrap() >= 2);
    let hits_before = fetcher.stats().cache_hits;
    fetcher.get_bytes(server.url("/kept")).unwrap();
    assert_eq!(
        fetcher.stats().cache_hits,
        hits_before + 1,
        "the kept entry was evicted"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 8259 §6: numbers of any size are JSON; past 64 bits they are read
/// as floats, as serde_json does. (A number past a float's range, `1e400`,
/// is refused, as serde_json refuses it: RFC 8259 lets a parser set that
/// limit.)
#[test]
fn rfc8259_6_numbers_past_64_bits_parse() {
    let server = TestServer::start(|_| {
        Reply::json(
            200,
            r#"{"id": 123456789012345678901234567890, "n": -1.5e300}"#,
        )
    });
    let fetcher = crate::quick().build().unwrap();
    let value: Value = fetcher.get_json(server.url("/")).unwrap();
    assert_eq!(value["id"].as_f64(), Some(1.234_567_890_123_456_8e29));
    let raw: RawJson = fetcher.get_json(server.url("/")).unwrap();
    assert_eq!(
        raw.as_str(),
        r#"{"id":123456789012345678901234567890,"n":-1.5e300}"#
    );
}

/// An empty body (204, 205, an empty 200) is `null` to the types that take
/// it, and "no content" to the others.
#[test]
fn an_empty_body_is_null_or_no_content() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        a: u32,
    }
    for status in [200, 204, 205] {
        let server = TestServer::start(move |_| Reply::status(status));
        let fetcher = crate::quick().build().unwrap();
        let none: Option<Doc> = fetcher.get_json(server.url("/")).unwrap();
        assert!(none.is_none(), "{status}");
        let error = fetcher.get_json::<Doc>(server.url("/")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidJson, "{status}");
        assert!(error.to_string().contains("no content"), "{error}");
    }
}

/// A stop's message names the request once; its cause says what failed.
#[test]
fn an_error_names_its_request_once() {
    let server = TestServer::start(|_| Reply::status(503));
    let fetcher = crate::quick()
        .initial_backoff(Duration::from_secs(5))
        .max_backoff(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = server.url("/slow");
    let results = fetcher
        .batch([url.as_str()])
        .deadline(Duration::from_millis(500))
        .collect::<Value>();
    let error = results[0].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DeadlineExceeded);
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    assert_eq!(chain.matches(url.as_str()).count(), 1, "{chain}");
    assert!(chain.contains("503"), "{chain}");
}
