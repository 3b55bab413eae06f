//! Adversarial review of 51819a5 (content codings, JSON words, TLS words),
//! 810b48d (Cache-Control parsing) and 1990578 (timeout words).
//!
//! Each test is a "Found" bug: it failed on the code as reviewed, and says
//! what breaks, what is expected (RFC, curl, urllib3/requests) and where the
//! fault is.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parfetch::{ErrorKind, Value};

use crate::server::{Reply, TestServer};
use crate::support::{gzip, once, zlib};

/// A server answering every request with `reply`, counting the requests.
fn counting(reply: Reply) -> (TestServer, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start({
        let count = Arc::clone(&count);
        move |_| {
            count.fetch_add(1, Ordering::SeqCst);
            reply.clone()
        }
    });
    (server, count)
}

/// Found (now fixed): the excerpt of an error body sent with two content codings is
/// the compressed bytes. A 503 with `Content-Encoding: gzip, gzip` (or the
/// same coding on two header lines, or `deflate, gzip`) gives
/// `body_excerpt()` = `"\u{1f}\u{fffd}\u{8}..."`, while the same body on a
/// 200 is decoded (encoding.rs `decode` undoes every layer), and curl
/// (`--compressed`) and requests show `{"error":"database down"}` for both
/// (RFC 9110 §8.4: codings are listed in the order applied, all to undo).
/// At fault: src/encoding.rs:76-79 (`decode_start`: `let [coding] =
/// codings.as_slice() else { return start }` gives up on any list of more
/// than one coding).
#[test]
fn review5_error_body_with_stacked_codings_is_decoded_for_the_excerpt() {
    let words = br#"{"error":"database down"}"#;
    let server = TestServer::start(move |request| {
        let (lines, body): (&[&str], Vec<u8>) = match request.path.as_str() {
            "/one-line" => (&["gzip, gzip"], gzip(&gzip(words))),
            "/two-lines" => (&["gzip", "gzip"], gzip(&gzip(words))),
            _ => (&["deflate, gzip"], gzip(&zlib(words))),
        };
        let mut reply = Reply::json(503, body);
        for line in lines {
            reply = reply.with_header("content-encoding", *line);
        }
        reply
    });
    let fetcher = once();
    let mut wrong = Vec::new();
    for path in ["/one-line", "/two-lines", "/deflate-gzip"] {
        let error = fetcher.get_json::<Value>(server.url(path)).unwrap_err();
        if !error
            .body_excerpt()
            .is_some_and(|e| e.contains("database down"))
        {
            wrong.push(format!("{path}: {error}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Found (now fixed): after a UTF-8 BOM (skipped, src/json.rs:89-100), the NDJSON
/// message contradicts itself: `\u{feff}{"a":1}\n{"a":2}\n` reads "more than
/// one JSON value ...: the first ends at byte 7, then comes ... at byte 11".
/// The first value ends at byte 10 of the body (bytes 0-2 are the BOM);
/// json.rs says "offsets still count from the body's first byte", and the
/// trailing "at byte 11" does. (Python's json.loads on the text without BOM
/// says "Extra data: line 2 column 1 (char 8)", consistently relative.)
/// At fault: src/json.rs:91-99 shifts only `error.offset` by the BOM, not
/// the byte numbers written into `problem` by src/json_error.rs:40-44 and
/// :56-58 (`at + 1`, `end`), which count from after the BOM.
#[test]
fn review5_ndjson_after_a_bom_names_one_byte_offset() {
    let error = parfetch::RawJson::from_json(b"\xEF\xBB\xBF{\"a\":1}\n{\"a\":2}\n").unwrap_err();
    let message = error.to_string();
    assert_eq!(error.json_offset(), Some(11), "{message}");
    assert!(
        message.contains("the first ends at byte 10"),
        "the first value ends at byte 10 of the body (3 BOM bytes + 7): {message}"
    );
}

/// Found (regression of 810b48d; now fixed): a stray quote at the end of a
/// Cache-Control line now drops a well-formed `no-cache="a, b"` before it.
/// `Cache-Control: no-cache="set-cookie, x-id", max-age=60, ext="x` is
/// split at every comma (`no-cache="set-cookie`, ` x-id"`, ...), both halves
/// are dropped as malformed, and the response is served from the cache for
/// 60 s without revalidation; before 810b48d (and per RFC 9111 §5.2.2.4,
/// no-cache with field names: at least the listed fields must not be
/// reused unvalidated, and this cache applies it to the whole response,
/// rules.rs:457-462) it was revalidated. The commit's own promise, "a stray
/// quote hides no directive", is broken for every quoted list.
/// At fault: src/cache/rules.rs:563-565 (`split_list`: `if quoted {
/// members = value.split(',') }` re-splits the well-quoted members too);
/// the `no-store` safety net at :474-485 covers only `no-store`.
#[test]
fn review5_a_stray_quote_does_not_drop_a_quoted_no_cache() {
    let dir = crate::scratch_dir("review5-stray-quote-no-cache");
    let (server, count) = counting(
        Reply::json(200, br#"{"ok":true}"#.to_vec())
            .with_header(
                "cache-control",
                r#"no-cache="set-cookie, x-id", max-age=60, ext="x"#,
            )
            .with_header("etag", "\"v1\""),
    );
    let fetcher = crate::quick().cache_dir(&dir).build().unwrap();
    let url = server.url("/doc");
    let _: Value = fetcher.get_json(url.as_str()).unwrap();
    let _: Value = fetcher.get_json(url.as_str()).unwrap();
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "no-cache: the second fetch must revalidate, not be served from the cache"
    );
}

/// Found (now fixed): gzip followed by bytes that start with the gzip magic but are
/// not a whole member (a stream cut inside a second member's header, or
/// padding that happens to start 1f 8b) fails the whole response, though
/// its first member decoded whole: "the body is sent gzip-encoded but does
/// not decode". urllib3's GzipDecoder (requests) returns the first
/// member's data ("Allow trailing garbage acceptable in other gzip
/// clients": any error after the first member is swallowed), and curl
/// stops at the end of the first member. The module doc
/// (src/encoding.rs:8-9) promises bytes after a gzip stream that do not
/// start another are ignored "as curl does".
/// At fault: src/encoding.rs:117-135 (`gzip`: an error in a later member
/// is returned as `Damaged`, like one in the first).
#[test]
fn review5_gzip_with_a_broken_second_member_reads_as_urllib3_reads_it() {
    let mut body = gzip(br#"{"ok":true}"#);
    body.extend_from_slice(b"\x1f\x8b\x08\x00");
    let server = TestServer::start(move |_| {
        Reply::json(200, body.clone()).with_header("content-encoding", "gzip")
    });
    let value = once().get_json::<Value>(server.url("/x"));
    assert!(
        value.as_ref().is_ok_and(|v| v["ok"] == true),
        "{:?}",
        value.map_err(|e| e.to_string())
    );
}

/// Found (1990578's wording; now fixed): a connect-phase timeout is reported as the
/// attempt's. With `connect_timeout(300 ms)` and `timeout(5 s)`, an https
/// server that never answers the ClientHello ends the attempt after
/// 300 ms with "timed out (5s per attempt)": the 5 s named did not run
/// out, and the limit that did (connect_timeout) is not named. curl says
/// "Connection timed out after 300 milliseconds" (its --connect-timeout).
/// At fault: src/attempt.rs:411-428 (`into_error`: every Timeout gets
/// `Detail::Timeout(timeout)`, the attempt's, and the source
/// `ureq::Error::Timeout(Timeout::Connect)`, which says which, is dropped).
#[test]
fn review5_a_connect_timeout_names_the_connect_timeout() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream); // accepted, never answered
        }
    });
    let fetcher = crate::quick()
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_secs(5))
        .max_retries(0)
        .breaker_threshold(0)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let error = fetcher
        .get_bytes(format!("https://127.0.0.1:{port}/x"))
        .unwrap_err();
    let elapsed = started.elapsed();
    let message = error.to_string();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{message}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}: {message}");
    assert!(
        !message.contains("5s per attempt") && message.contains("300ms"),
        "ended after {elapsed:?} by the 300 ms connect timeout, yet: {message}"
    );
}

/// Found (now fixed): offline, a stale entry whose response said `must-revalidate` is
/// served once a 304 without a Cache-Control field has refreshed it. The
/// 200 said `Cache-Control: max-age=1, must-revalidate`; the 304 carried
/// only ETag and Expires. RFC 9111 §4.3.4: the stored response's fields are
/// updated with the 304's, those it does not carry are kept, so
/// `must-revalidate` still holds, and §4.2.4 / §5.2.2.2: such a response
/// must not be served stale (engine.rs:285-288 honours it, from
/// `meta.must_revalidate`). http-cache-semantics' merged policy keeps it;
/// the meta does not.
/// At fault: src/cache/rules.rs:274-284 (`refreshed`: `..fresh` takes
/// `must_revalidate` from the 304's fields alone, where content_type,
/// undone and the validators fall back to the entry's).
#[test]
fn review5_must_revalidate_survives_a_304_refresh() {
    let dir = crate::scratch_dir("review5-must-revalidate-304");
    let server = TestServer::start(|request| {
        if request.header("if-none-match").is_some() {
            let expires =
                httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(1));
            Reply::status(304)
                .with_header("etag", "\"v1\"")
                .with_header("expires", expires)
        } else {
            Reply::json(200, br#"{"ok":true}"#.to_vec())
                .with_header("cache-control", "max-age=1, must-revalidate")
                .with_header("etag", "\"v1\"")
        }
    });
    let url = server.url("/doc");
    let online = crate::quick().cache_dir(&dir).build().unwrap();
    let _: Value = online.get_json(url.as_str()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _: Value = online.get_json(url.as_str()).unwrap(); // revalidated: 304
    assert_eq!(server.requests(), 2);
    std::thread::sleep(Duration::from_millis(2500));
    let offline = crate::quick()
        .cache_dir(&dir)
        .offline(true)
        .build()
        .unwrap();
    let answer = offline.get_json::<Value>(url.as_str());
    assert!(
        answer
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::Offline),
        "a stale must-revalidate entry was served offline: {:?}",
        answer.map_err(|e| e.to_string())
    );
    let message = answer.unwrap_err().to_string();
    assert!(
        message.contains("must not be served stale (must-revalidate)"),
        "{message}"
    );
}

/// Found (now fixed): `--summary-json` on the URL list through another name (a hard
/// link or a symlink) truncates the list before the run: `parfetch -i
/// urls.txt --summary-json link.txt` fetches nothing, exits 0 and leaves
/// urls.txt holding the summary. review4's fix was to refuse a summary
/// file that is the input or output ("compare canonical paths, or the
/// device and inode once both exist"); only the parent directory is
/// canonicalized, so two names of one file are taken for two files.
/// At fault: src/bin/parfetch/main.rs:282-294 (`same_file` joins the
/// canonical parent with the file name, never resolving the file itself
/// nor comparing dev/inode), then :161 `File::create` truncates.
#[cfg(feature = "cli")]
#[test]
fn review5_summary_json_through_a_link_does_not_destroy_the_url_list() {
    let server = TestServer::start(|_| Reply::json(200, br#"{"ok":true}"#.to_vec()));
    let dir = crate::scratch_dir("review5-summary-link");
    let urls = dir.join("urls.txt");
    let url = server.url("/a");
    let mut wrong = Vec::new();
    let mut links = vec![("hard", dir.join("hard.txt"))];
    #[cfg(unix)]
    links.push(("sym", dir.join("sym.txt")));
    for (kind, link) in links {
        std::fs::write(&urls, format!("{url}\n")).unwrap();
        let _ = std::fs::remove_file(&link);
        if kind == "hard" {
            std::fs::hard_link(&urls, &link).unwrap();
        } else {
            #[cfg(unix)]
            std::os::unix::fs::symlink(&urls, &link).unwrap();
        }
        let output = crate::cli::parfetch_with_env(
            &[
                "-q",
                "-i",
                urls.to_str().unwrap(),
                "--summary-json",
                link.to_str().unwrap(),
            ],
            &[],
            None,
        );
        let left = std::fs::read_to_string(&urls).unwrap_or_default();
        if !left.contains(&url) {
            wrong.push(format!(
                "{kind} link: exit {:?}, urls.txt now holds:\n{left}",
                output.status.code()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
