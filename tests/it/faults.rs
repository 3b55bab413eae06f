//! The fault matrix: every fault a server (or a caller) can throw, alone and
//! mixed into large batches, must give its documented result: exactly one
//! result per request, in order, and no panic.

use std::collections::HashMap;
use std::io::Write;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use proptest::prelude::*;

use parfetch::{ErrorKind, Fetcher, Request, Value};

use crate::server::{Reply, TestServer};

/// Declares the faults once: the enum, and `ALL`, the list the tests walk.
macro_rules! faults {
    ($($fault:ident),* $(,)?) => {
        /// One way for a request to go wrong (or right).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Fault {
            $($fault),*
        }

        const ALL: &[Fault] = &[$(Fault::$fault),*];
    };
}

faults! {
    Fine,
    Refused,
    ResetBeforeStatus,
    ResetMidBody,
    LongerContentLength,
    ChunkedCutOff,
    HeadersNeverFinish,
    BodyStalls,
    StormThenOk,
    TooManyRequestsSeconds,
    TooManyRequestsDate,
    TooManyRequestsGarbage,
    NotFound,
    Gone,
    BadRequest,
    Unauthorized,
    Forbidden,
    InvalidJson,
    TruncatedJson,
    DeepNesting,
    HugeNumbers,
    OverLimitWithLength,
    OverLimitChunked,
    GzipBomb,
    RedirectLoop,
    HugeHeaders,
    HeaderInjection,
}

use Fault::*;

const LIMIT: u64 = 300 << 10;

impl Fault {
    /// The documented outcomes (`Ok(())` for a success), each with the
    /// attempts it takes.
    fn expected(self) -> &'static [(Result<(), ErrorKind>, RangeInclusive<u32>)] {
        use ErrorKind::{
            BodyTooLarge, CircuitOpen, InvalidRequest, Network, Redirect, Status, Timeout,
        };
        match self {
            Fine => &[(Ok(()), 1..=1)],
            // Beyond u64 and f64: a float, an infinity or an error, never a panic.
            HugeNumbers => &[(Ok(()), 1..=1), (Err(ErrorKind::InvalidJson), 1..=1)],
            // Retried, and answered the second or third time: a Retry-After
            // is waited out whole (1 s, 2 s), a garbled one is a backoff.
            TooManyRequestsSeconds | TooManyRequestsDate | TooManyRequestsGarbage => {
                &[(Ok(()), 2..=2)]
            }
            StormThenOk => &[(Ok(()), 3..=3)],
            // A host that refuses every connection opens its breaker: the
            // requests it holds past their patience end with their own
            // last failure, or unsent; its retry budget may cut retries.
            Refused => &[(Err(Network), 1..=4), (Err(CircuitOpen), 0..=0)],
            // The fault host answers most requests well: its retries are
            // not budgeted (see `check` for its breaker).
            ResetBeforeStatus | ResetMidBody | LongerContentLength | ChunkedCutOff => {
                &[(Err(Network), 4..=4)]
            }
            HeadersNeverFinish | BodyStalls => &[(Err(Timeout), 4..=4)],
            NotFound | Gone => &[(Err(ErrorKind::NotFound), 1..=1)],
            BadRequest | Unauthorized | Forbidden => &[(Err(Status), 1..=1)],
            InvalidJson | TruncatedJson | DeepNesting => &[(Err(ErrorKind::InvalidJson), 1..=1)],
            OverLimitWithLength | OverLimitChunked | GzipBomb | HugeHeaders => {
                &[(Err(BodyTooLarge), 1..=1)]
            }
            RedirectLoop => &[(Err(Redirect), 1..=1)],
            HeaderInjection => &[(Err(InvalidRequest), 0..=0)],
        }
    }

    /// The kind of a failed attempt of a fault that is retried: what the
    /// request ends with if it is held back before its retries are done.
    fn failure(self) -> Option<ErrorKind> {
        match self {
            Refused | ResetBeforeStatus | ResetMidBody | LongerContentLength | ChunkedCutOff => {
                Some(ErrorKind::Network)
            }
            HeadersNeverFinish | BodyStalls => Some(ErrorKind::Timeout),
            StormThenOk | TooManyRequestsSeconds | TooManyRequestsDate | TooManyRequestsGarbage => {
                Some(ErrorKind::Status)
            }
            _ => None,
        }
    }

    fn reply(self, attempt: usize) -> Reply {
        let json = |body: &str| Reply::json(200, body.to_owned());
        match self {
            Fine | Refused | HeaderInjection => json(r#"{"ok":true}"#),
            ResetBeforeStatus => Reply::ResetNow,
            ResetMidBody => Reply::Truncated {
                declared_len: 2000,
                body: br#"{"laps":[1,2,"#.to_vec(),
            },
            LongerContentLength => Reply::Truncated {
                declared_len: 100,
                body: br#"{"a":1}"#.to_vec(),
            },
            ChunkedCutOff => Reply::CloseAfter(Box::new(Reply::Raw(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\n{\"laps\":[1,2,"
                    .to_vec(),
            ))),
            HeadersNeverFinish => Reply::Raw(b"HTTP/1.1 200 OK\r\ncontent-le".to_vec()),
            BodyStalls => Reply::StallBody {
                declared_len: 100,
                first: br#"{"a":"#.to_vec(),
                stall: Duration::from_secs(5),
            },
            StormThenOk if attempt < 2 => Reply::status([500, 502, 503][attempt % 3]),
            TooManyRequestsSeconds if attempt == 0 => {
                Reply::status(429).with_header("retry-after", "1")
            }
            TooManyRequestsDate if attempt == 0 => Reply::status(503).with_header(
                "retry-after",
                httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2)),
            ),
            TooManyRequestsGarbage if attempt == 0 => {
                Reply::status(429).with_header("retry-after", "soon-ish")
            }
            StormThenOk | TooManyRequestsSeconds | TooManyRequestsDate | TooManyRequestsGarbage => {
                json(r#"{"recovered":true}"#)
            }
            NotFound => Reply::status(404),
            Gone => Reply::status(410),
            BadRequest => Reply::json(400, r#"{"error":"bad id"}"#),
            Unauthorized => Reply::status(401),
            Forbidden => Reply::status(403),
            InvalidJson => json(r#"{"a": [1, 2,, 3]}"#),
            TruncatedJson => json(r#"{"laps": [{"lap": 1, "time": 9"#),
            DeepNesting => Reply::json(200, [vec![b'['; 100_000], vec![b']'; 100_000]].concat()),
            HugeNumbers => json(
                r#"{"big": 18446744073709551616, "bigger": 1e400, "neg": -99999999999999999999}"#,
            ),
            OverLimitWithLength => Reply::json(200, vec![b' '; LIMIT as usize + 1000]),
            OverLimitChunked => {
                let mut raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                for _ in 0..40 {
                    raw.extend_from_slice(b"2710\r\n");
                    raw.extend(std::iter::repeat_n(b' ', 10_000));
                    raw.extend_from_slice(b"\r\n");
                }
                raw.extend_from_slice(b"0\r\n\r\n");
                Reply::Raw(raw)
            }
            GzipBomb => Reply::json(200, gzip_bomb()).with_header("content-encoding", "gzip"),
            RedirectLoop => Reply::status(302).with_header("location", "/loop"),
            HugeHeaders => Reply::json(200, "{}").with_header("x-huge", "h".repeat(1 << 20)),
        }
    }
}

/// 10 MB of zeros, gzipped to about 10 KB.
fn gzip_bomb() -> Vec<u8> {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&vec![0u8; 10 << 20]).unwrap();
        encoder.finish().unwrap()
    })
    .clone()
}

/// One server for every fault: `/{fault}/{id}`; it counts attempts per URL.
fn server() -> &'static (TestServer, String) {
    static SERVER: OnceLock<(TestServer, String)> = OnceLock::new();
    SERVER.get_or_init(|| {
        // Made before the server starts: compressing 10 MB in a debug build
        // would otherwise outlast the first request's timeout.
        gzip_bomb();
        let attempts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let server = TestServer::start(move |request| {
            let mut parts = request.path.trim_start_matches('/').split('/');
            let fault = parts
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| ALL.get(n));
            let Some(fault) = fault else {
                // The redirect loop lands here, and goes round again.
                return Reply::status(302).with_header("location", "/loop");
            };
            let attempt = {
                let mut attempts = attempts.lock().unwrap();
                let count = attempts.entry(request.path.clone()).or_default();
                *count += 1;
                *count - 1
            };
            fault.reply(attempt)
        });
        let refused = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        (server, refused)
    })
}

/// The stalls' own timeout: a fifth of how long they stall, so that they
/// time out however slow the machine, and quickly.
const STALL_TIMEOUT: Duration = Duration::from_secs(1);

fn request(fault: Fault, id: usize) -> Request {
    let (server, refused) = server();
    let index = ALL.iter().position(|f| *f == fault).unwrap();
    let path = format!("/{index}/{id}");
    match fault {
        Refused => Request::get(format!("{refused}{path}")),
        HeaderInjection => Request::get(server.url(&path)).header("x-note", "a\r\nx-injected: 1"),
        HeadersNeverFinish | BodyStalls => Request::get(server.url(&path)).timeout(STALL_TIMEOUT),
        _ => Request::get(server.url(&path)),
    }
}

/// A fetcher with every protection at its defaults (the breaker, the
/// host's limit and pause, the retry budget, Retry-After up to 5 minutes);
/// only the backoff is short, so that the matrix runs in seconds.
fn fetcher(concurrency: usize) -> Fetcher {
    crate::quick()
        .concurrency(concurrency)
        // Long enough that no healthy request times out on a loaded
        // machine, at 32 in flight in a debug build (a 10 MB gzip bomb
        // among them); the stalls have a timeout of their own.
        .timeout(Duration::from_secs(10))
        .body_limit(LIMIT)
        .build()
        .unwrap()
}

/// Checks that `results` are one per fault, in order, as documented, each
/// with the attempts counted for it (an error's own count, or the one its
/// report or the stats gave), successes included.
///
/// When the fault host's breaker opened (`fetcher`'s stats say so: a run of
/// failing faults in a row can do it, as it would for a host failing so),
/// what it documents holds too: a request it held back past its patience
/// ends with its own last failure, after fewer attempts, or unsent, as
/// `CircuitOpen`.
fn check(fetcher: &Fetcher, faults: &[Fault], results: &[(Result<Value, parfetch::Error>, u32)]) {
    assert_eq!(results.len(), faults.len());
    let (server, _) = server();
    let held = fetcher
        .stats()
        .hosts
        .iter()
        .any(|host| host.host.contains(&server.host()) && host.breaker_opened > 0);
    for (i, (fault, (result, attempts))) in faults.iter().zip(results).enumerate() {
        let outcome = result.as_ref().map(|_| ()).map_err(parfetch::Error::kind);
        let documented = fault
            .expected()
            .iter()
            .any(|(expected, range)| *expected == outcome && range.contains(attempts));
        let held_back = held
            && (outcome == Err(ErrorKind::CircuitOpen) && *attempts == 0
                || fault.failure().map(Err) == Some(outcome) && (1..=4).contains(attempts));
        assert!(
            documented || held_back,
            "request {i} ({fault:?}): {attempts} attempts: {result:?}"
        );
        if let Err(error) = result {
            assert_eq!(
                error.attempts(),
                *attempts,
                "request {i} ({fault:?}): {error:?}"
            );
            assert!(error.url().is_some());
        }
    }
}

/// The attempts `results` took between them.
fn attempts_of(results: &[(Result<Value, parfetch::Error>, u32)]) -> u64 {
    results
        .iter()
        .map(|(_, attempts)| u64::from(*attempts))
        .sum()
}

#[test]
fn each_fault_alone() {
    for (id, fault) in ALL.iter().copied().enumerate() {
        // Alone: a fetcher of its own, that has seen no other fault.
        let fetcher = fetcher(4);
        let result = fetcher.get_json::<Value>(request(fault, 1_000_000 + id));
        let attempts = u32::try_from(fetcher.stats().attempts).unwrap();
        check(&fetcher, &[fault], &[(result, attempts)]);
    }
}

#[test]
fn every_fault_mixed_into_a_batch_of_1000() {
    let fetcher = fetcher(32);
    let faults: Vec<Fault> = (0..1000).map(|i| ALL[i % ALL.len()]).collect();
    let requests: Vec<Request> = faults
        .iter()
        .enumerate()
        .map(|(i, f)| request(*f, 2_000_000 + i))
        .collect();
    let mut results: Vec<Option<(Result<Value, parfetch::Error>, u32)>> =
        (0..faults.len()).map(|_| None).collect();
    for (index, result) in fetcher.batch(requests).iter::<Value>() {
        assert!(results[index].is_none(), "two results for request {index}");
        let attempts = match &result {
            Ok(response) => response.attempts(),
            Err(error) => error.attempts(),
        };
        results[index] = Some((result.map(parfetch::Response::into_body), attempts));
    }
    let results: Vec<_> = results
        .into_iter()
        .map(|result| result.expect("one report per request"))
        .collect();
    check(&fetcher, &faults, &results);
    let stats = fetcher.stats();
    assert_eq!(stats.requests, 1000);
    assert_eq!(stats.successes + stats.failures, 1000);
    assert_eq!(stats.attempts, attempts_of(&results));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_mixes_keep_every_invariant(picks in prop::collection::vec(0..ALL.len(), 1..60), id in 0..1_000_000usize) {
        let faults: Vec<Fault> = picks.iter().map(|&n| ALL[n]).collect();
        let requests: Vec<Request> =
            faults.iter().enumerate().map(|(i, f)| request(*f, 10_000_000 + id * 100 + i)).collect();
        let fetcher = fetcher(16);
        let results = fetcher.fetch_many::<Value>(requests);
        // Each error counts its own attempts; the stats count them all.
        let results: Vec<_> = results
            .into_iter()
            .zip(&faults)
            .map(|(result, fault)| {
                let attempts = result.as_ref().map_or_else(parfetch::Error::attempts, |_| {
                    fault.expected().iter().find(|(outcome, _)| outcome.is_ok()).map_or(0, |(_, range)| *range.start())
                });
                (result, attempts)
            })
            .collect();
        check(&fetcher, &faults, &results);
        prop_assert_eq!(fetcher.stats().attempts, attempts_of(&results));
    }
}
