//! The fetcher: the public face of the engine (`engine.rs`) its clones
//! share, which holds the connection pool, the worker pools (`pools.rs`),
//! the host table and the cache.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::cache::Cache;
use crate::config::{FetcherBuilder, Settings};
use crate::engine::{Engine, Scope};
use crate::error::Error;
use crate::parse::{bytes, parse_body};
use crate::request::Request;
use crate::response::Response;
use crate::stats::BreakerState;
use crate::stats::Stats;

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
    engine: Arc<Engine>,
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

    /// A fetcher running with checked `settings`.
    pub(crate) fn new(settings: Settings) -> Result<Fetcher, Error> {
        Ok(Fetcher {
            engine: Arc::new(Engine::new(settings)?),
        })
    }

    /// Sends one request and returns its [`Response`]: the body parsed
    /// into a `T` (a type of yours that implements `Deserialize`, or
    /// [`Value`](crate::Value)), with the status, the headers, the final
    /// URL, the attempts made, the time taken and whether the cache
    /// answered.
    ///
    /// ```
    /// # use std::io::{Read, Write};
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let addr = listener.local_addr().unwrap();
    /// # std::thread::spawn(move || {
    /// #     for mut stream in listener.incoming().flatten() {
    /// #         let mut request = [0u8; 2048];
    /// #         let _ = stream.read(&mut request);
    /// #         let body = r#"{"items":[1,2,3]}"#;
    /// #         let head = format!(
    /// #             "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
    /// #              link: <http://{addr}/items?page=2>; rel=\"next\"\r\n\
    /// #              link: <http://{addr}/items?page=9>; rel=\"last\"\r\n\
    /// #              connection: close\r\ncontent-length: {}\r\n\r\n",
    /// #             body.len()
    /// #         );
    /// #         let _ = stream.write_all((head + body).as_bytes());
    /// #     }
    /// # });
    /// use serde::Deserialize;
    ///
    /// #[derive(Deserialize)]
    /// struct Page {
    ///     items: Vec<u32>,
    /// }
    ///
    /// let fetcher = parfetch::Fetcher::builder().no_proxy().build()?;
    /// let response = fetcher.send::<Page>(format!("http://{addr}/items"))?;
    ///
    /// assert_eq!(response.status(), 200);
    /// assert_eq!(response.header("Content-Type"), Some("application/json"));
    /// // A header that repeats: every line, in order.
    /// let next = response
    ///     .headers()
    ///     .get_all("link")
    ///     .find(|link| link.ends_with(r#"rel="next""#));
    /// assert_eq!(next, Some(format!(r#"<http://{addr}/items?page=2>; rel="next""#).as_str()));
    /// assert_eq!(response.attempts(), 1);
    /// assert_eq!(response.cache_status(), parfetch::CacheStatus::Network);
    /// assert_eq!(response.into_body().items, [1, 2, 3]);
    /// # Ok::<(), parfetch::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Any [`ErrorKind`](crate::ErrorKind), after the retries the error
    /// allows; [`ErrorKind::InvalidJson`](crate::ErrorKind::InvalidJson) says
    /// where the document went wrong.
    pub fn send<T>(&self, request: impl Into<Request>) -> Result<Response<T>, Error>
    where
        T: DeserializeOwned + 'static,
    {
        self.engine
            .fetch(request.into(), &Scope::default(), parse_body::<T>)
    }

    /// Like [`send`](Fetcher::send), with the body as it came, decompressed.
    ///
    /// # Errors
    ///
    /// Any [`ErrorKind`](crate::ErrorKind), after the retries the error
    /// allows. The body is not parsed: `InvalidJson` here means a body that
    /// does not decompress (a corrupt gzip, deflate, brotli or zstd
    /// stream), which sending again would not change.
    pub fn send_bytes(&self, request: impl Into<Request>) -> Result<Response<Vec<u8>>, Error> {
        self.engine.fetch(request.into(), &Scope::default(), bytes)
    }

    /// Fetches one document and returns its body, decompressed: the body
    /// of [`send_bytes`](Fetcher::send_bytes).
    ///
    /// # Errors
    ///
    /// Any [`ErrorKind`](crate::ErrorKind), after the retries the error
    /// allows. The body is not parsed: `InvalidJson` here means a body that
    /// does not decompress (a corrupt gzip, deflate, brotli or zstd
    /// stream), which sending again would not change. A response without
    /// content (a 204, an empty 200, the answer to a `HEAD`) is an empty
    /// `Vec`.
    pub fn get_bytes(&self, request: impl Into<Request>) -> Result<Vec<u8>, Error> {
        self.engine
            .fetch(request.into(), &Scope::body_only(), bytes)
            .map(Response::into_body)
    }

    /// Fetches one JSON document and parses it into a `T`: a type of yours
    /// that implements `Deserialize`, or [`Value`](crate::Value) for an
    /// untyped document. The body of [`send`](Fetcher::send).
    ///
    /// # Errors
    ///
    /// Any [`ErrorKind`](crate::ErrorKind), after the retries the error
    /// allows; [`ErrorKind::InvalidJson`](crate::ErrorKind::InvalidJson) says
    /// where the document went wrong. An empty body is not JSON: a 200
    /// with nothing is `InvalidJson` "no content"; a 204, a 205 or the
    /// answer to a `HEAD` has no content by definition and is JSON `null`
    /// (so `Option<_>`, `()` or [`Value`](crate::Value) take it).
    pub fn get_json<T>(&self, request: impl Into<Request>) -> Result<T, Error>
    where
        T: DeserializeOwned + 'static,
    {
        self.engine
            .fetch(request.into(), &Scope::body_only(), parse_body::<T>)
            .map(Response::into_body)
    }

    /// Fetches and parses many documents in parallel, on the fetcher's
    /// [`concurrency`](FetcherBuilder::concurrency) threads, and returns one
    /// result per request, in input order. A failure never stops the batch.
    ///
    /// All results are kept until the batch ends (see [`Batch`](crate::Batch)
    /// for one that hands them over as they come).
    pub fn fetch_many<T>(
        &self,
        requests: impl IntoIterator<Item = impl Into<Request>>,
    ) -> Vec<Result<T, Error>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let requests: Vec<Request> = requests.into_iter().map(Into::into).collect();
        self.batch(requests).collect().0
    }

    /// Like [`fetch_many`](Fetcher::fetch_many), but returns the raw bodies.
    pub fn fetch_many_bytes(
        &self,
        requests: impl IntoIterator<Item = impl Into<Request>>,
    ) -> Vec<Result<Vec<u8>, Error>> {
        let requests: Vec<Request> = requests.into_iter().map(Into::into).collect();
        self.batch(requests).collect_bytes().0
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, to share with a batch's workers.
    pub(crate) fn engine_arc(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The fetcher's on-disk cache, if it has one
    /// ([`cache_dir`](FetcherBuilder::cache_dir)): its size, its entries,
    /// and ways to clear it.
    pub fn cache(&self) -> Option<&Cache> {
        self.engine.cache.as_ref()
    }

    /// A snapshot of the fetcher's counters since it was built, with the
    /// hosts that pushed back.
    pub fn stats(&self) -> Stats {
        let mut stats = self.engine.stats.snapshot();
        stats.hosts = self.engine.host_stats();
        stats
    }

    /// The state of the circuit breaker of a host, named by a URL
    /// (`"https://cdn.example/laps/1.json"`: its scheme, host and port), or
    /// by `host` or `host:port` (`"cdn.example"`, `"127.0.0.1:8080"`: the
    /// worst of its http and https breakers). Names are compared without
    /// case, and a missing port is the scheme's. A host never fetched from,
    /// or forgotten after 15 s idle with nothing to remember, is `Closed`.
    pub fn breaker_state(&self, host: &str) -> BreakerState {
        self.engine.breaker_state(host)
    }

    /// Closes every circuit breaker, as if no request had failed.
    pub fn reset_breakers(&self) {
        self.engine.reset_breakers();
    }
}

impl FetcherBuilder {
    /// Checks the settings and builds the fetcher: its thread pool and its
    /// connection pool.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) when a
    /// setting is impossible (zero concurrency, a zero timeout, a backoff
    /// multiplier below 1, an invalid header, a bad `PARFETCH_*` variable),
    /// or when the thread pool cannot be started.
    pub fn build(self) -> Result<Fetcher, Error> {
        Fetcher::new(self.check()?)
    }
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("concurrency", &self.engine.settings.concurrency)
            .field("timeout", &self.engine.settings.transport.timeout)
            .field("max_retries", &self.engine.settings.retry.max_retries)
            .finish_non_exhaustive()
    }
}
