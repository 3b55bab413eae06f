//! Settings and header values at their extremes (`Duration::MAX`,
//! `u64::MAX`, dates in year 9999): taken in stride, never a panic, an
//! overflow or a hang.

use std::time::Duration;

use parfetch::{CancelToken, ErrorKind, Fetcher, Request};

use crate::server::{Reply, TestServer};
use crate::support::within;

// From review 1 (issue 12).
/// Held: extreme settings all at once either build and work, and a
/// FOREVER-long retry delay is cut by the deadline and by a cancel.
#[test]
fn extreme_settings_work_or_are_refused() {
    let fails = TestServer::start(|_| Reply::status(500));
    let works = TestServer::start(|_| Reply::json(200, "[1]"));
    let built = Fetcher::builder()
        .timeout(Duration::MAX)
        .connect_timeout(Duration::MAX)
        .initial_backoff(Duration::MAX)
        .max_backoff(Duration::MAX)
        .backoff_multiplier(f64::MAX)
        .jitter(Duration::MAX)
        .max_retries(u32::MAX)
        .breaker_threshold(u32::MAX)
        .breaker_open_time(Duration::MAX)
        .max_redirects(u32::MAX)
        .body_limit(u64::MAX)
        .rate_limit(u32::MAX)
        .rate_burst(u32::MAX)
        .max_per_host(usize::MAX)
        .build();
    let fetcher = match built {
        Ok(fetcher) => fetcher,
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error:?}");
            return;
        }
    };
    let outcome = within(Duration::from_secs(60), move || {
        let ok = fetcher.get_bytes(works.url("/a")).is_ok();
        let mut kinds = Vec::new();
        fetcher
            .batch([fails.url("/b")])
            .deadline(Duration::from_secs(2))
            .for_each_bytes(|_, r| kinds.push(r.unwrap_err().kind()));
        let token = CancelToken::new();
        let cancel = token.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            cancel.cancel();
        });
        fetcher
            .batch([fails.url("/c")])
            .cancel_token(token)
            .for_each_bytes(|_, r| kinds.push(r.unwrap_err().kind()));
        let tiny = crate::quick()
            .max_retries(0)
            .build()
            .unwrap()
            .get_bytes(Request::get(works.url("/d")).timeout(Duration::from_nanos(1)))
            .map(|_| ())
            .map_err(|e| e.kind());
        (ok, kinds, tiny)
    });
    let (ok, kinds, tiny) = outcome.expect("an extreme setting hung");
    assert!(ok);
    assert_eq!(kinds, [ErrorKind::DeadlineExceeded, ErrorKind::Cancelled]);
    assert!(matches!(tiny, Ok(()) | Err(ErrorKind::Timeout)), "{tiny:?}");
}
