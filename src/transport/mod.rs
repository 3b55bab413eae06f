//! The transport: one HTTP exchange, from the request head to the whole
//! decoded body.
//!
//! Everything that touches the network lives here: the ureq agents and
//! their connection pools (`agent.rs`), the connector that bounds every
//! read and write by the attempt's time (`timed.rs`), name resolution
//! (`resolver.rs`), proxies (`proxy.rs`, `forward.rs`), TLS (`tls.rs`),
//! cookies (`cookies.rs`), content encodings (`encoding.rs`), redirects
//! (`redirect.rs`), and one attempt that ties them together (`attempt.rs`).
//!
//! It may use the leaves (`origin`, `error`, `request`, `redact`, `clock`,
//! `cancel`, `stats`) and the per-host record of `policy/` (where resolved
//! addresses are kept); never `engine/`, `parse/`, or the public face.

pub(crate) mod agent;
pub(crate) mod attempt;
pub(crate) mod cookies;
pub(crate) mod encoding;
pub(crate) mod proxy;
pub(crate) mod redirect;
pub(crate) mod tls;
