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
// The command split in files by behaviour, as cli.rs grew past 600 lines:
// settings and curl-style flags, shards and schedulers, resumable runs.
mod cli_flags;
mod cli_resume;
mod cli_shards;
mod conformance;
mod connections;
mod cookies;
mod docs; // README and docs/: links resolve, named files exist
mod errors;
mod faults;
mod hardening;
mod hosts;
mod layers; // what each layer of src/ may import, and no import loops
mod logs;
mod messages;
mod mocked;
mod pki;
mod proxy;
mod retry;
mod review2;
mod review3;
mod review4;
mod review5;
mod server;
mod streaming;
mod support;
mod tls;

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
