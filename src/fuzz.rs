//! Entry points for the fuzz targets in `fuzz/`, and the replay of their
//! corpus in `cargo test`.
//!
//! The fuzzers reach code that is private on purpose (the JSON path, the
//! Retry-After parser, request checking, the caching and redirect rules),
//! so this module exists only when
//! compiled for fuzzing (`--cfg fuzzing`, which cargo-fuzz sets) or for the
//! crate's own tests. Each function takes raw bytes, runs one path the way a
//! fetch does, and panics if an invariant breaks: a panic is what the fuzzer
//! reports, and what the corpus replay test fails on.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use ureq::http::{self, HeaderMap, HeaderName, HeaderValue};

use crate::cache::{entry, rules, CacheSettings, Lookup};
use crate::error::{classify, ErrorKind};
use crate::origin::OriginRef;
use crate::parse::{self, Value};
use crate::policy::retry::{self, Decision, FailedAttempt, RetryPolicy};
use crate::redact;
use crate::request::Request;
use crate::transport::redirect;

/// A typical typed document: what a user's struct looks like.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // read only through Debug
struct Timing {
    lap: u32,
    time: f64,
    driver: String,
    sectors: Vec<f64>,
    pit: Option<bool>,
    #[serde(default)]
    notes: std::collections::HashMap<String, serde_json::Value>,
}

/// A response body on the way to a value: parsed as [`Value`], as a typed
/// struct, and as a list of them.
///
/// Invariants: parsing never panics; a failure is `InvalidJson` and renders;
/// a body parfetch accepts is JSON by serde_json's reading too (parfetch
/// never hands out a value made from something that is not JSON).
pub fn response_json(body: &[u8]) {
    match parse::parse::<Value>(&mut body.to_vec()) {
        Ok(_) => assert!(
            serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
                || nesting_depth(body) > 128,
            "parfetch accepted a body serde_json rejects"
        ),
        Err(error) => check_error(&error.into_error()),
    }
    if let Err(error) = parse::parse::<Timing>(&mut body.to_vec()) {
        check_error(&error.into_error());
    }
    if let Err(error) = parse::parse::<Vec<Timing>>(&mut body.to_vec()) {
        check_error(&error.into_error());
    }
}

fn check_error(error: &crate::Error) {
    assert_eq!(error.kind(), ErrorKind::InvalidJson);
    let _ = error.to_string();
}

/// serde_json stops at 128 levels, simd-json does not: a deeper document
/// is the one known disagreement.
fn nesting_depth(body: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for byte in body {
        match byte {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A Retry-After header value, parsed and fed to the retry rules.
///
/// Invariants: no panic; delta-seconds parse exactly; whatever the server
/// says, the delay the retry rules choose stays within `max_delay`, and a
/// longer wait asked for ends the request at once.
pub fn retry_after(value: &[u8]) {
    let Ok(text) = std::str::from_utf8(value) else {
        return;
    };
    let now = fixed_now();
    let parsed = retry::parse_retry_after(text, now);
    if let Ok(seconds) = text.trim().parse::<u64>() {
        assert_eq!(parsed, Some(Duration::from_secs(seconds)));
    }
    let policy = fuzz_policy();
    for status in [429, 503] {
        let failed = FailedAttempt {
            kind: ErrorKind::Status,
            status: Some(status),
            attempts: 1,
            idempotent: true,
            retry_after: parsed,
        };
        // A wait longer than max_retry_after is the caller's to schedule.
        let too_long = parsed.is_some_and(|wait| wait > policy.max_retry_after);
        match policy.decide(&failed, &mut policy.delays(), 0.5) {
            Decision::Retry { after, asked } => {
                assert!(!too_long, "retried though asked to wait {parsed:?}");
                assert_eq!(asked, parsed.is_some());
                // Never sooner than asked, and at most a tenth later.
                if let Some(wait) = parsed {
                    assert!(after >= wait && after <= wait + wait / 10, "{after:?}");
                } else {
                    assert!(after <= policy.max_delay, "{after:?}");
                }
            }
            Decision::GiveUp => assert!(too_long, "a first {status} must be retried"),
        }
    }
}

/// A URL and headers as a caller gives them: the first line is the URL,
/// each further line a `name: value` header (a line without `:` is a name
/// with an empty value). Lines are split on `\n` only, so `\r` and other
/// control bytes reach the checks.
///
/// Invariants: no panic; a request that passes the checks has an http(s)
/// URL with a host and no header value with CR, LF or NUL; its password
/// never shows in messages or `Debug`.
pub fn request_input(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let mut lines = text.split('\n');
    let url = lines.next().unwrap_or_default();
    let mut request = Request::get(url);
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        request = request.header(name, value);
    }
    let _ = format!("{request:?}");
    let checked = request.to_http(&[]);
    match checked {
        Ok(http) => {
            assert!(matches!(http.uri().scheme_str(), Some("http" | "https")));
            assert!(
                OriginRef::of_url(url).is_some(),
                "accepted {url:?} with no host to key on"
            );
            for value in http.headers().values() {
                assert!(
                    !value
                        .as_bytes()
                        .iter()
                        .any(|b| matches!(b, b'\r' | b'\n' | 0)),
                    "a header value with a line break was accepted"
                );
            }
            if let Some((user_info, _)) = http
                .uri()
                .authority()
                .and_then(|a| a.as_str().rsplit_once('@'))
                .filter(|(user_info, _)| user_info.len() >= 4)
            {
                // The same text may also appear in the path: count it.
                let needle = format!("{user_info}@");
                let written = url.matches(&needle).count();
                let redacted = redact::url(url).matches(&needle).count();
                let debug = format!("{:?}", Request::get(url)).matches(&needle).count();
                assert!(redacted < written, "user info shown in {url:?}");
                assert!(debug < written, "user info in Debug of {url:?}");
            }
        }
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::InvalidRequest);
            let _ = error.to_string();
        }
    }
}

/// The secret the request of [`response_head`] carries: it must never
/// reach a cache entry.
const SECRET: &str = "SECRET-7d1f";

/// A response head from a server: the first line is the status line (the
/// first three digits in it are the status), each further line a
/// `name: value` header; lines the HTTP parser would refuse are dropped.
/// The head is fed through every rule that reads a response head: the
/// cache's (store, look up at several later times, refresh on a 304), the
/// retry rules (Retry-After, the status's class), and the redirect rules
/// (`Location` from an https page, for a POST with secrets).
///
/// Invariants: no panic; a stored entry round-trips, holds neither the
/// request's secret nor a `Set-Cookie`, is fresh no longer than it claims
/// and never for a `no-store` response; a retry waits at most
/// `max_backoff`, and a longer Retry-After ends the request; a redirect
/// leads to an http(s) URL with a host, never down to plain http, and
/// takes the secrets along only to the same origin.
pub fn response_head(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let mut lines = text.split('\n');
    let status_line = lines.next().unwrap_or_default();
    let status = status_of(status_line);
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_bytes(value.trim().as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    let now = fixed_now();
    cache_rules(status, &headers, now);
    retry_rules(status, &headers, now);
    redirect_rules(status, &headers);
}

/// The status in a status line: its first three digits in a row, else a
/// status made from its first byte.
fn status_of(line: &str) -> u16 {
    let digits: Vec<u16> = line
        .bytes()
        .map(|b| u16::from(b.wrapping_sub(b'0')))
        .collect();
    digits
        .windows(3)
        .find(|w| w.iter().all(|d| *d < 10))
        .map_or_else(
            || 100 + u16::from(line.bytes().next().unwrap_or(0)) % 500,
            |w| w[0] * 100 + w[1] * 10 + w[2],
        )
}

fn cache_rules(status: u16, headers: &HeaderMap, now: SystemTime) {
    let request = http::Request::get("http://user:pw@h/doc")
        .header("authorization", format!("Bearer {SECRET}"))
        .header("accept", "application/json")
        .body(())
        .unwrap_or_default();
    // Read naively (split at every comma): a quote, stray or not, must not
    // hide a `no-store`; `must-understand` lifts it for a status we know.
    let has = |name: &str| {
        headers
            .get_all("cache-control")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|directive| directive.trim().eq_ignore_ascii_case(name))
    };
    let no_store = has("no-store")
        && !(has("must-understand") && rules::UNDERSTOOD_STATUSES.contains(&status));
    // Our clock's times (a server sets none of them): now, and later.
    let later = [
        Duration::ZERO,
        Duration::from_secs(1),
        Duration::from_secs(86_400),
        Duration::from_secs(1 << 31),
    ];
    for (always_fresh, max_age) in [
        (false, None),
        (true, None),
        (false, Some(Duration::from_secs(60))),
    ] {
        let settings = CacheSettings {
            dir: std::path::PathBuf::new(),
            always_fresh,
            max_age,
            offline: false,
            max_bytes: None,
        };
        let url = "http://h/doc";
        let response = rules::Response {
            status,
            headers,
            is_sensitive: &redact::is_sensitive_by_default,
            undone: None,
        };
        let secret = [7; 32];
        let Some((meta, policy)) =
            rules::to_store(&request, url, &response, &settings, &secret, now)
        else {
            continue;
        };
        assert!(!no_store, "a no-store response was stored");
        assert!(meta.fresh_until_ms >= meta.stored_at_ms);
        assert_eq!(meta.url, "http://h/doc");
        let bytes = entry::encode(&meta, &policy, b"{}").expect("an entry encodes");
        let needle = SECRET.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the request's secret reached the entry"
        );
        assert!(
            !bytes.windows(7).any(|w| w == b":pw@h/d"),
            "user info reached the entry"
        );
        for after in later {
            let entry = entry::decode(bytes.clone()).expect("an entry round-trips");
            let when = now + after;
            let lookup = rules::lookup(entry, &request, &settings, &secret, when);
            if let Lookup::Fresh(_) = lookup {
                let claimed = u128::from(meta.fresh_until_ms.saturating_sub(meta.stored_at_ms));
                assert!(
                    always_fresh || max_age.is_some() || after.as_millis() <= claimed,
                    "fresh {after:?} after storing, claimed {claimed} ms"
                );
            }
            let entry = entry::decode(bytes.clone()).expect("an entry round-trips");
            let not_modified = rules::Response {
                status: 304,
                ..response
            };
            let _ = rules::refreshed(&request, url, &entry, &not_modified, &secret, when);
        }
    }
}

/// The clock the targets read (November 2023), fixed so that a run repeats.
fn fixed_now() -> SystemTime {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(1_700_000_000))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The retry policy the targets check their delays against.
fn fuzz_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_millis(100),
        multiplier: 2.0,
        max_delay: Duration::from_secs(60),
        max_retry_after: Duration::from_secs(300),
        jitter: Duration::from_millis(100),
    }
}

fn retry_rules(status: u16, headers: &HeaderMap, now: SystemTime) {
    let policy = fuzz_policy();
    let retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry::parse_retry_after(v, now));
    let kind = classify::classify_status(status).unwrap_or(ErrorKind::Status);
    let failed = FailedAttempt {
        kind,
        status: Some(status),
        attempts: 1,
        idempotent: true,
        retry_after,
    };
    let asked = retry::asked_to_wait(Some(status), retry_after);
    let asked_too_long = asked.is_some_and(|wait| wait > policy.max_retry_after);
    match policy.decide(&failed, &mut policy.delays(), 0.999) {
        Decision::Retry { after, .. } => {
            let most = asked.map_or(policy.max_delay, |wait| wait + wait / 10);
            assert!(after <= most, "{after:?}");
            assert!(!asked_too_long, "retried before the server's Retry-After");
            assert!(classify::is_retryable(kind, Some(status)));
        }
        Decision::GiveUp => {
            assert!(asked_too_long || !classify::is_retryable(kind, Some(status)));
        }
    }
}

fn redirect_rules(status: u16, headers: &HeaderMap) {
    let from = "https://h/a/b";
    let location = headers
        .get(http::header::LOCATION)
        .map(HeaderValue::as_bytes);
    let Ok(Some(hop)) = redirect::next_hop(from, "POST", status, location) else {
        return;
    };
    assert!(redirect::is_redirect(status));
    let uri: http::Uri = hop.url.parse().expect("a hop's URL is a URI");
    assert_eq!(uri.scheme_str(), Some("https"), "{}", hop.url);
    assert!(uri.host().is_some_and(|h| !h.is_empty()), "{}", hop.url);
    let mut request = http::Request::post(from)
        .header("authorization", "Bearer x")
        .header("x-trace", "t")
        .body(&b"{}"[..])
        .unwrap_or_default();
    let applied = redirect::apply(
        &hop.url,
        hop.becomes_get,
        hop.keeps_secrets,
        &mut request,
        redact::is_sensitive_by_default,
    );
    assert!(applied.is_some(), "{}", hop.url);
    assert_eq!(
        request.headers().contains_key("authorization"),
        hop.keeps_secrets
    );
    if hop.keeps_secrets {
        assert_eq!(uri.host(), Some("h"));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every input the fuzzers kept (their minimized corpus, and each crash
    /// they found) still passes.
    #[test]
    fn fuzz_corpus_replays() {
        type Target = fn(&[u8]);
        let targets: [(&str, Target); 4] = [
            ("response_json", super::response_json),
            ("retry_after", super::retry_after),
            ("request_input", super::request_input),
            ("response_head", super::response_head),
        ];
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        for (target, run) in targets {
            let mut replayed = 0;
            for kind in ["corpus", "regressions"] {
                let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
                    continue;
                };
                for file in dir {
                    // A fuzzer running beside the tests may remove a file
                    // between the listing and the read.
                    let Ok(input) = file.and_then(|file| std::fs::read(file.path())) else {
                        continue;
                    };
                    run(&input);
                    replayed += 1;
                }
            }
            assert!(replayed > 0, "no corpus for {target} under {root:?}");
        }
    }
}
