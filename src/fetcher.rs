//! The fetcher: a connection pool and a thread pool, shared by its clones.

use std::fmt;
use std::sync::Arc;

use rayon::prelude::*;
use serde::de::DeserializeOwned;

use crate::breaker::{BreakerState, Breakers};
use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::{FetcherBuilder, Settings};
use crate::error::Error;
use crate::exchange::Ctx;
use crate::json;
use crate::limit::Limits;
use crate::pools::Pools;
use crate::request::Request;
use crate::stats::{Recorder, Stats};

/// Fetches JSON documents over HTTP, one at a time or many in parallel.
///
/// A fetcher owns a keep-alive connection pool (a `ureq` agent) and a thread
/// pool of [`concurrency`](FetcherBuilder::concurrency) threads that batches
/// run on. It is cheap to clone (clones share both pools, the circuit
/// breakers and the stats) and can be used from any thread.
///
/// ```no_run
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Laps { driver: String, times: Vec<f64> }
///
/// let fetcher = parfetch::Fetcher::builder().concurrency(32).build()?;
/// let urls = ["VER", "HAM", "LEC"].map(|d| format!("https://cdn.example/laps/{d}.json"));
/// for (url, laps) in urls.iter().zip(fetcher.fetch_many::<Laps>(&urls)) {
///     match laps {
///         Ok(laps) => println!("{}: {} laps", laps.driver, laps.times.len()),
///         Err(error) => eprintln!("{url}: {error}"),
///     }
/// }
/// # Ok::<(), parfetch::Error>(())
/// ```
#[derive(Clone)]
pub struct Fetcher {
    shared: Arc<Shared>,
}

/// What the clones of a fetcher share.
pub(crate) struct Shared {
    pub(crate) agent: ureq::Agent,
    pub(crate) settings: Settings,
    pub(crate) breakers: Breakers,
    pub(crate) limits: Limits,
    pub(crate) cache: Option<Cache>,
    pub(crate) stats: Arc<Recorder>,
    pub(crate) clock: Arc<dyn Clock>,
    pools: Pools,
}

impl Fetcher {
    /// A builder with the default settings (see [`FetcherBuilder`]).
    pub fn builder() -> FetcherBuilder {
        FetcherBuilder::default()
    }

    /// A fetcher with the default settings overridden by the `PARFETCH_*`
    /// environment variables (see [`FetcherBuilder::from_env`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) when a
    /// variable does not parse or gives an impossible setting.
    pub fn from_env() -> Result<Fetcher, Error> {
        FetcherBuilder::default().from_env().build()
    }

    pub(crate) fn from_parts(
        builder: &FetcherBuilder,
        settings: Settings,
    ) -> Result<Fetcher, Error> {
        let pools = Pools::new(builder.concurrency)?;
        let stats = Arc::new(Recorder::default());
        let agent = crate::agent::build(
            &crate::agent::AgentSettings {
                concurrency: builder.concurrency,
                timeout: settings.timeout,
                connect_timeout: settings.connect_timeout,
                user_agent: &builder.user_agent,
                tls: settings.tls.clone(),
            },
            Arc::clone(&stats),
        );
        let breakers = Breakers::new(
            builder.breaker_threshold,
            crate::clock::capped(builder.breaker_open_time),
            Arc::clone(&builder.clock),
        );
        let cache = match settings.cache.clone() {
            Some(cache) => Some(
                Cache::open(cache)
                    .map_err(|e| Error::config("cannot open the cache directory").with_source(e))?,
            ),
            None => None,
        };
        let limits = Limits::new(
            settings.rate,
            settings.max_per_host,
            settings.retry.jitter,
            Arc::clone(&builder.clock),
        );
        Ok(Fetcher {
            shared: Arc::new(Shared {
                agent,
                settings,
                breakers,
                limits,
                cache,
                stats,
                clock: Arc::clone(&builder.clock),
                pools,
            }),
        })
    }

    /// Fetches one document and returns its body, decompressed.
    ///
    /// # Errors
    ///
    /// Any [`ErrorKind`](crate::ErrorKind) but `InvalidJson`, after the
    /// retries the error allows.
    pub fn get_bytes(&self, request: impl Into<Request>) -> Result<Vec<u8>, Error> {
        self.shared
            .fetch(&request.into(), &Ctx::default(), Ok)
            .result
    }

    /// Fetches one JSON document and parses it into a `T`: a type of yours
    /// that implements `Deserialize`, or [`Value`](crate::Value) for an
    /// untyped document.
    ///
    /// # Errors
    ///
    /// Any [`ErrorKind`](crate::ErrorKind), after the retries the error
    /// allows; [`ErrorKind::InvalidJson`](crate::ErrorKind::InvalidJson) says
    /// where the document went wrong.
    pub fn get_json<T>(&self, request: impl Into<Request>) -> Result<T, Error>
    where
        T: DeserializeOwned + 'static,
    {
        self.shared
            .fetch(&request.into(), &Ctx::default(), parse_body::<T>)
            .result
    }

    /// Fetches and parses many documents in parallel, on the fetcher's
    /// [`concurrency`](FetcherBuilder::concurrency) threads, and returns one
    /// result per request, in input order. A failure never stops the batch.
    ///
    /// The requests are collected before the batch starts, and all results
    /// are kept until it ends.
    pub fn fetch_many<T>(
        &self,
        requests: impl IntoIterator<Item = impl Into<Request>>,
    ) -> Vec<Result<T, Error>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.run_batch(requests, parse_body::<T>)
    }

    /// Like [`fetch_many`](Fetcher::fetch_many), but returns the raw bodies.
    pub fn fetch_many_bytes(
        &self,
        requests: impl IntoIterator<Item = impl Into<Request>>,
    ) -> Vec<Result<Vec<u8>, Error>> {
        self.run_batch(requests, Ok)
    }

    fn run_batch<T: Send>(
        &self,
        requests: impl IntoIterator<Item = impl Into<Request>>,
        finish: fn(Vec<u8>) -> Result<T, Error>,
    ) -> Vec<Result<T, Error>> {
        let requests: Vec<Request> = requests.into_iter().map(Into::into).collect();
        let shared = &*self.shared;
        let pool = match shared.pools.for_this_thread() {
            Ok(pool) => pool,
            Err(reason) => return requests.iter().map(|r| Err(r.refused(&reason))).collect(),
        };
        pool.threads.install(|| {
            requests
                .par_iter()
                // One request per task, so that a slow one never holds back
                // a chunk of others queued behind it on the same thread.
                .with_max_len(1)
                .map(|request| shared.fetch(request, &Ctx::default(), finish).result)
                .collect()
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The fetcher's on-disk cache, if it has one
    /// ([`cache_dir`](FetcherBuilder::cache_dir)): its size, its entries,
    /// and ways to clear it.
    pub fn cache(&self) -> Option<&Cache> {
        self.shared.cache.as_ref()
    }

    /// A snapshot of the fetcher's counters since it was built.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// The state of the circuit breaker of `host`: `host` or `host:port` as
    /// written in the URLs (`"cdn.example"`, `"127.0.0.1:8080"`). A host
    /// never fetched from is `Closed`.
    pub fn breaker_state(&self, host: &str) -> BreakerState {
        self.shared.breakers.state(host)
    }

    /// Closes every circuit breaker, as if no request had failed.
    pub fn reset_breakers(&self) {
        self.shared.breakers.reset();
    }
}

pub(crate) fn parse_body<T: DeserializeOwned + 'static>(mut body: Vec<u8>) -> Result<T, Error> {
    json::parse(&mut body).map_err(json::JsonError::into_error)
}

impl Shared {
    /// The number of worker threads, which is the concurrency.
    pub(crate) fn concurrency(&self) -> usize {
        self.pools.threads()
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("concurrency", &self.shared.concurrency())
            .field("timeout", &self.shared.settings.timeout)
            .field("max_retries", &self.shared.settings.retry.max_retries)
            .finish_non_exhaustive()
    }
}
