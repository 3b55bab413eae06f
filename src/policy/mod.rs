//! Policy: what to do about a host and a failure, decided without touching
//! the network.
//!
//! The retry rules (`retry.rs`), and the per-host record (`host.rs`) with
//! the rules kept in it: the circuit breaker (`breaker.rs`) and the gates
//! (`limit.rs`).
//!
//! It may use the leaves only; never `transport/`, `engine/`, `config/` or
//! the public face: the engine asks, policy answers.

pub(crate) mod breaker;
pub(crate) mod host;
pub(crate) mod limit;
pub(crate) mod retry;
