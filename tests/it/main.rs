//! Integration tests: the fetcher against real loopback servers.
//!
//! One test binary (modules below), named by behaviour; shared helpers in
//! server.rs, support.rs and pki.rs. Nothing here reaches beyond
//! 127.0.0.1. How the suite is organised, and how to add a test:
//! docs/testing.md.

// Test code favours the plainest spelling over pedantic polish.
#![allow(
    clippy::cast_possible_truncation,
    clippy::format_push_string,
    clippy::items_after_statements,
    clippy::needless_pass_by_value,
    clippy::redundant_closure_for_method_calls
)]

// Helpers, no tests of their own (docs/testing.md says how to use them).
mod pki; // certificates made on the spot (rcgen), and a TLS server on loopback
mod server; // the keep-alive loopback server most tests talk to
mod support; // scripted servers, trickles, bounded fetches, event waits, log capture

// One file per behaviour: a test goes where a reader looking for that
// promise would look first.
mod batch; // batches and single fetches that succeed: results in order, types, stats, the iterator
mod breaker; // the circuit breaker's cycle, and what counts against it
mod cache; // the on-disk cache: what is stored and served, offline, damage, size, Vary, POST
mod cli; // the command's flags and output, end to end (`cli` feature)
mod cli_flags; // the command's settings: PARFETCH_* variables and curl-style flags (`cli` feature)
mod cli_io; // the command's URL lists, files and terminal output at their edges (`cli` feature)
mod cli_resume; // the command's resumable runs: kills, --resume, --failed (`cli` feature)
mod cli_shards; // the command's shards: schedulers' variables, --shard-by, GNU parallel (`cli` feature)
mod conformance; // RFC 9111, 9110 and 8259 rule by rule; each test names its section
mod connections; // keep-alive: reuse, and a stale pooled connection resent unseen
mod cookies; // the cookie jar: scope, size limits, redirects, sessions and the cache
mod docs; // README and docs/: links resolve, named files exist
mod encodings; // content encodings: every layer undone, bombs, empty and damaged bodies
mod errors; // each row of the error table: kind, status, attempts, retried or not
mod extremes; // settings and header values at their extremes: no panic, overflow or hang
mod faults; // the fault matrix: every fault alone and mixed into large batches
mod hosts; // what a host is, and what is kept per host: breakers, resolver, records
mod json; // Value, RawJson and serde types read the same bodies alike (RawJson keeps numbers past f64)
mod layers; // what each layer of src/ may import, and no import loops
mod logs; // what is logged, and that no secret is
mod memory; // what bounds memory: the budget of body bytes in flight, held until results are taken
mod messages; // the words of a bad body: what was expected, where, what came instead
mod methods; // requests as the server sees them: methods, query, bodies, idempotency, redirects
mod mocked; // exact request counts and shapes, as the server saw them
mod nesting; // batches started from callbacks, Deserialize impls, other fetchers, rayon
mod proxy; // proxies: forward and CONNECT, credentials, the environment as curl reads it
mod pushback; // servers that push back: a host's limit, its pauses, its retry budget, deadlines
mod real_servers; // Debian's nginx and tinyproxy, as users run them (`#[ignore]`d: .ci/run runs them)
mod redirects; // redirects: hop counts, loops, secrets left behind at another origin
mod responses; // what a success says besides its body: status, headers, final URL, attempts, cache
mod retry; // retries as the server sees them: counts, Retry-After, idempotency
mod secrets; // user info, credentials, sensitive headers: never shown, never on disk
mod serialised; // the figures (Stats, Progress, BatchStats...) as serde writes them
mod streaming; // batches as streams: order, progress, callbacks, deadline, cancel, limits
mod timeouts; // a timeout bounds everything it names, within 1.125 times
mod tls; // certificates, roots, client certificates, https never down to http
mod urls; // odd and malformed URLs: one result each

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
