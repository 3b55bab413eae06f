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

mod adversarial;
mod batch;
mod breaker;
mod cache;
mod cli;
mod conformance;
mod connections;
mod errors;
mod faults;
mod hardening;
mod hosts;
mod logs;
mod mocked;
mod retry;
mod review2;
mod server;
mod streaming;
mod tls;

use std::time::Duration;

/// A fetcher whose retries wait a millisecond instead of seconds.
fn quick() -> parfetch::FetcherBuilder {
    parfetch::Fetcher::builder()
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(20))
        .jitter(Duration::ZERO)
        .timeout(Duration::from_secs(10))
}
