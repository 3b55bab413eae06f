//! Integration tests: the fetcher against real loopback servers.
//!
//! One test binary (modules below), one shared server helper. Nothing here
//! reaches beyond 127.0.0.1.

// Test code favours the plainest spelling over pedantic polish.
#![allow(
    clippy::cast_possible_truncation,
    clippy::format_push_string,
    clippy::items_after_statements,
    clippy::needless_pass_by_value,
    clippy::redundant_closure_for_method_calls
)]

mod batch;
mod breaker;
mod cache;
mod cli;
mod cli_io;
mod conformance;
mod connections;
mod cookies;
mod encodings;
mod errors;
mod extremes;
mod faults;
mod hosts;
mod json;
mod logs;
mod messages;
mod mocked;
mod nesting;
mod pki;
mod proxy;
mod redirects;
mod retry;
mod secrets;
mod server;
mod streaming;
mod support;
mod timeouts;
mod tls;
mod urls;

use std::time::Duration;

/// A fetcher whose retries wait a millisecond instead of seconds.
fn quick() -> parfetch::FetcherBuilder {
    parfetch::Fetcher::builder()
        // The tests talk to 127.0.0.1: a proxy in the environment must
        // not stand in between (its tests set one on purpose).
        .no_proxy()
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(20))
        .jitter(Duration::ZERO)
        .timeout(Duration::from_secs(10))
}

/// A fresh, empty directory for one test (`name` unique among the tests).
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("parfetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
