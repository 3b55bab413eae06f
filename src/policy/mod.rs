//! Policy: what to do about a host and a failure, decided without touching
//! the network.
//!
//! The retry rules of one request (`retry.rs`), and each host's record with
//! the governor that decides how many requests the host gets and when
//! (`host/`: its limit, pause, breaker, rate and retry budget).
//!
//! It may use the leaves only; never `transport/`, `engine/`, `config/` or
//! the public face: the engine asks, policy answers.

pub(crate) mod host;
pub(crate) mod retry;
