//! The builder's options as the caller gave them, each with its default:
//! the one list of the fetcher's settings.
//!
//! The list below declares [`Options`] (one field per setting), its
//! `Default` (the value after `=`) and the fields `Debug` shows, so a
//! setting cannot be added to one of them and missed in another. The
//! setters in `mod.rs` write these fields and say each default in their
//! doc; [`Settings::check`](super::Settings::check) turns them into the
//! checked settings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::policy::retry::RetryPolicy;
use crate::transport::proxy::ProxySetting;
use crate::transport::tls::TlsSettings;

/// Declares `Options` from one list of `name: Type = default` lines: the
/// struct, its `Default`, and [`Options::debug_fields`] in the list's order.
macro_rules! options {
    ($($(#[$doc:meta])* $name:ident: $type:ty = $default:expr,)*) => {
        /// What the builder's setters were told, unchecked.
        #[derive(Clone)]
        #[allow(clippy::struct_excessive_bools)] // each is one documented switch
        pub(crate) struct Options {
            $($(#[$doc])* pub(crate) $name: $type,)*
        }

        impl Default for Options {
            fn default() -> Options {
                Options { $($name: $default,)* }
            }
        }

        impl Options {
            /// Adds each option to `out`, by name, in the list's order.
            pub(crate) fn debug_fields(&self, out: &mut fmt::DebugStruct<'_, '_>) {
                $(out.field(stringify!($name), &self.$name);)*
            }
        }
    };
}

options! {
    concurrency: usize = 20,
    timeout: Duration = Duration::from_secs(30),
    connect_timeout: Duration = Duration::from_secs(10),
    total_timeout: Option<Duration> = None,
    /// `max_retries`, `initial_backoff`, `backoff_multiplier`,
    /// `max_backoff`, `max_retry_after` and `jitter`.
    retry: RetryPolicy = RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_secs(1),
        multiplier: 2.0,
        max_delay: Duration::from_secs(60),
        max_retry_after: Duration::from_secs(300),
        jitter: Duration::from_secs(1),
    },
    /// Name and value, as given; checked by `build`.
    headers: Vec<(String, String)> = Vec::new(),
    /// The names `sensitive_header_name` added to the built-in ones.
    sensitive_headers: Vec<String> = Vec::new(),
    user_agent: String = concat!("parfetch/", env!("CARGO_PKG_VERSION")).to_owned(),
    body_limit: u64 = 64 << 20,
    max_body_bytes_in_flight: u64 = crate::transport::body_budget::DEFAULT,
    adaptive_concurrency: bool = false,
    breaker_threshold: u32 = 5,
    breaker_open_time: Duration = Duration::from_secs(60),
    breaker_fail_fast: bool = false,
    max_redirects: u32 = 10,
    rate_limit: Option<u32> = None,
    rate_burst: Option<u32> = None,
    max_per_host: Option<usize> = None,
    cache_dir: Option<PathBuf> = None,
    cache_always_fresh: bool = false,
    cache_max_age: Option<Duration> = None,
    cache_max_bytes: Option<u64> = None,
    offline: bool = false,
    ci: bool = false,
    /// `system_roots`, `trust_root_certificates`, `client_certificate`
    /// and `danger_accept_invalid_certificates`.
    tls: TlsSettings = TlsSettings::default(),
    /// `proxy` or `no_proxy`; by default, the environment's variables.
    proxy: ProxySetting = ProxySetting::FromEnv,
    cookie_store: bool = false,
}
