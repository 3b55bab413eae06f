//! Fetch many JSON documents over HTTP in parallel, from plain synchronous
//! Rust: no async runtime to learn, no result ever lost.
//!
//! A [`Fetcher`] holds a keep-alive connection pool (a [`ureq`] agent) and a
//! pool of worker threads ([`rayon`]). [`Fetcher::fetch_many`] runs a batch
//! of requests on those threads, each through a retry loop with backoff and
//! a per-host circuit breaker, parses each body with SIMD JSON (`simd-json`)
//! on the thread that fetched it, and returns one result per request, in
//! input order.
//!
//! Where the status and headers matter, [`Fetcher::send`] returns a
//! [`Response`]: the body, with the status, the headers, the final URL, the
//! attempts, the time taken and whether the cache answered; a batch's
//! [`iter`](Batch::iter) hands them over as they finish, to a plain `for`
//! loop that may stop early.
//!
//! ```no_run
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Laps {
//!     driver: String,
//!     times: Vec<f64>,
//! }
//!
//! let fetcher = parfetch::Fetcher::builder().concurrency(32).build()?;
//!
//! // One document, typed or untyped.
//! let ver: Laps = fetcher.get_json("https://cdn.example/laps/VER.json")?;
//! let drivers: parfetch::Value = fetcher.get_json("https://cdn.example/drivers.json")?;
//!
//! // Many documents: one result per URL, in the order given.
//! let urls: Vec<String> = (1..=20)
//!     .map(|n| format!("https://cdn.example/laps/{n}.json"))
//!     .collect();
//! for (url, result) in urls.iter().zip(fetcher.fetch_many::<Laps>(&urls)) {
//!     match result {
//!         Ok(laps) => println!("{url}: {} laps by {}", laps.times.len(), laps.driver),
//!         Err(error) if error.kind() == parfetch::ErrorKind::NotFound => {}
//!         Err(error) => eprintln!("{error}"),
//!     }
//! }
//! println!("{:?}", fetcher.stats());
//! # Ok::<(), parfetch::Error>(())
//! ```
//!
//! A complete program, runnable as it is: it starts a tiny server on
//! 127.0.0.1 (hidden lines) and fetches 100 documents from it.
//!
//! ```
//! # use std::io::{Read, Write};
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! # let addr = listener.local_addr().unwrap();
//! # std::thread::spawn(move || {
//! #     for mut stream in listener.incoming().flatten() {
//! #         std::thread::spawn(move || {
//! #             let mut request = [0u8; 2048];
//! #             while let Ok(n @ 1..) = stream.read(&mut request) {
//! #                 let path = String::from_utf8_lossy(&request[..n]);
//! #                 let lap = path.split(['/', ' ']).nth(3).unwrap_or("0");
//! #                 let body = format!(r#"{{"lap":{lap},"seconds":91.5}}"#);
//! #                 let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
//! #                 if stream.write_all((head + &body).as_bytes()).is_err() { break }
//! #             }
//! #         });
//! #     }
//! # });
//! use parfetch::prelude::*;
//!
//! let fetcher = parfetch::Fetcher::builder().concurrency(8).no_proxy().build()?;
//! let urls = (1..=100).map(|lap| format!("http://{addr}/laps/{lap}"));
//! let laps = fetcher.fetch_many::<parfetch::Value>(urls);
//!
//! assert_eq!(laps.len(), 100);
//! let third = laps[2].as_ref().expect("lap 3");
//! assert_eq!(third.get("lap").and_then(|v| v.as_u64()), Some(3));
//! assert!(fetcher.stats().connections_opened <= 8);
//! # Ok::<(), parfetch::Error>(())
//! ```
//!
//! # Defaults
//!
//! | setting | default |
//! |---|---|
//! | [`concurrency`](FetcherBuilder::concurrency) | 20 threads, so 20 requests in flight; each host's own limit falls when it pushes back (429, 503) and climbs back while answers are good; [`adaptive_concurrency`](FetcherBuilder::adaptive_concurrency) starts hosts at 32 and finds their limit |
//! | [`timeout`](FetcherBuilder::timeout) | 30 s per attempt, redirects and body included; [`connect_timeout`](FetcherBuilder::connect_timeout) 10 s |
//! | [`total_timeout`](FetcherBuilder::total_timeout) | none: a request may take all its attempts and waits; set, it bounds them all (per request, [`Request::deadline`]) |
//! | [`max_retries`](FetcherBuilder::max_retries) | 3, so at most 4 attempts |
//! | backoff | ×2 from 1 s, plus up to 1 s of jitter, capped at 60 s ([`max_backoff`](FetcherBuilder::max_backoff) under 1 s lowers the first delay too, unless [`initial_backoff`](FetcherBuilder::initial_backoff) is set) |
//! | Retry-After | honoured on 429 and 503 (seconds or HTTP date) up to [`max_retry_after`](FetcherBuilder::max_retry_after) (5 min); a longer one ends the request at once; it pauses the whole host only when the host refuses a request sent alone |
//! | [`breaker_threshold`](FetcherBuilder::breaker_threshold) | opens after 5 consecutive failures of a host (when half its recent requests failed too); its requests wait for the probe, within what their retries would take; open 1 s, doubling while probes fail, up to [`breaker_open_time`](FetcherBuilder::breaker_open_time) (60 s) |
//! | retry budget | while half of a host's recent requests fail, its retries are at most 20% of its requests (and 10 a second) |
//! | [`body_limit`](FetcherBuilder::body_limit) | 64 MiB |
//! | [`max_body_bytes_in_flight`](FetcherBuilder::max_body_bytes_in_flight) | 1 GiB of bodies read and not yet taken, for the whole fetcher |
//!
//! # Errors and retries
//!
//! Every failure is an [`Error`] with the URL, the attempts made, the status
//! (if any) and the cause in `source()`; its `Display` ends with the causes,
//! so `eprintln!("{error}")` says it all. Branch on [`Error::kind`]:
//!
//! | [`ErrorKind`] | when | retried |
//! |---|---|---|
//! | `NotFound` | 404, 410 | no |
//! | `Status` | another non-2xx status | 5xx but 501, 408, 429: yes; other 4xx, 501: no |
//! | `Network` | DNS, connect, reset, truncated body | yes |
//! | `Tls` | certificate or handshake failure | no |
//! | `Timeout` | an attempt ran past its timeout | yes |
//! | `InvalidJson` | not JSON, or not the requested type (with path or byte offset) | no |
//! | `BodyTooLarge` | body over the limit (counted after decompression), or a response head over 28 KiB or 127 header lines | no |
//! | `CircuitOpen` | the host's breaker is open; nothing was sent | no |
//! | `InvalidRequest` | bad URL or header; nothing was sent | no |
//! | `Redirect` | more than [`max_redirects`](FetcherBuilder::max_redirects) hops, a bad `Location`, or https redirected to http | no |
//! | `Offline` | offline mode and nothing usable in the cache; nothing was sent | no |
//! | `DeadlineExceeded`, `Cancelled` | the request's deadline or its batch's passed (the message says which), or the batch was cancelled, before the request finished | no |
//! | `InvalidConfig` | [`FetcherBuilder::build`] refused the settings | — |
//! | `Internal` | a panic on this request's way, caught: this request fails, no other | no |
//!
//! Requests are retried as RFC 9110 §9.2.2 says: `GET`, `HEAD`, `OPTIONS`,
//! `PUT` and `DELETE` are; `POST` and `PATCH` only when marked
//! [`idempotent`](Request::idempotent). A host's breaker counts 5xx,
//! timeouts and network errors, never 4xx.
//!
//! # Requests
//!
//! A URL (`&str`, `String`, [`url::Url`]) is a `GET`; a [`Request`] says
//! more: its [`Method`] ([`Request::new`], or [`Request::get`], `head`,
//! `post`, `put`, `patch`, `delete`), [`query`](Request::query) parameters
//! (escaped), a body ([`json`](Request::json), [`form`](Request::form) or
//! raw [`body`](Request::body), each with its Content-Type unless you set
//! your own), headers, its own [`timeout`](Request::timeout) per attempt
//! and [`deadline`](Request::deadline) in all. A body is sent again intact
//! on a retry and on a 307 or 308 redirect; a 301 or 302 after a `POST`,
//! and a 303 after anything but `HEAD`, continue as a `GET` without it.
//! An empty body is not JSON: a 200 with nothing is `InvalidJson` "no
//! content"; a 204, a 205 or the answer to a `HEAD` is `null` to the types
//! that take it (`Option<T>`, `()`, [`Value`]), and `get_bytes` returns an
//! empty `Vec` for all of them.
//!
//! # Proxies, certificates and cookies
//!
//! Proxies come from the environment as curl reads it (`http_proxy`,
//! `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`) unless
//! [`proxy`](FetcherBuilder::proxy) or [`no_proxy`](FetcherBuilder::no_proxy)
//! says otherwise; an error names the proxy when it is the proxy that
//! failed. Certificates are checked against Mozilla's roots, plus
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, plus the machine's store with
//! [`system_roots`](FetcherBuilder::system_roots), plus those
//! [`trust_root_certificates`](FetcherBuilder::trust_root_certificates)
//! adds; [`client_certificate`](FetcherBuilder::client_certificate) for
//! mutual TLS. Cookies are kept only with
//! [`cookie_store(true)`](FetcherBuilder::cookie_store).
//!
//! # Promises
//!
//! - **One result per request**, whatever a server sends: a panic on one
//!   request's way becomes that request's `Internal` error.
//! - **A timeout bounds what it names**: an attempt ends within 1.125 times
//!   its timeout (DNS, connect, TLS, a head sent byte by byte, the body,
//!   every redirect hop); durations up to `Duration::MAX` work.
//! - **Secrets stay secret**: URL user info, proxy credentials, cookies
//!   and sensitive headers (see [`FetcherBuilder::sensitive_header_name`]) never
//!   show in messages, logs or `Debug`, never reach the cache, and do not
//!   follow a redirect to another origin.
//! - **Batches nest**: a callback may start another batch on the same
//!   fetcher (see [`Batch`]).
//!
//! # Guide
//!
//! This is the API reference. The repository's guide, in `docs/`, has one
//! page per topic, each with the measured figures and the tests behind
//! its claims: `docs/batches.md` (streaming, progress, deadlines, limits,
//! every default), `docs/cache.md`, `docs/proxies-and-certificates.md`,
//! `docs/errors.md`, `docs/performance.md`, `docs/reliability.md`,
//! `docs/cli.md` (the `parfetch` command) and `docs/dependencies.md`;
//! `docs/README.md` is its index.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
mod cache;
mod cancel;
mod clock;
mod config;
mod engine;
mod error;
mod fetcher;
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzz;
mod origin;
mod parse;
mod policy;
mod redact;
mod request;
mod response;
mod stats;
mod transport;

pub use crate::batch::{Batch, BatchStats, Progress, Responses};
pub use crate::cache::Cache;
pub use crate::cancel::CancelToken;
pub use crate::config::FetcherBuilder;
pub use crate::error::{Error, ErrorKind};
pub use crate::fetcher::Fetcher;
pub use crate::parse::doc::{Doc, DocValue, Elements, Entries};
pub use crate::parse::raw_json::RawJson;
pub use crate::parse::Value;
pub use crate::request::{CacheMode, Method, Request};
pub use crate::response::{CacheStatus, Headers, Response};
pub use crate::stats::{BreakerState, HostStats};
pub use crate::stats::{Latency, Stats};

/// The traits that give [`Value`] its accessors (`get`, `as_str`, `as_f64`,
/// ...): `use parfetch::prelude::*;`.
pub mod prelude {
    pub use simd_json::prelude::*;
}
