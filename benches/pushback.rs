//! How parfetch behaves when servers push back: each figure of the README's
//! "Servers that push back" table, printed side by side in one run.
//!
//! ```text
//! cargo run --release -p parfetch-benches --example pushback            # all but the outage
//! cargo run --release -p parfetch-benches --example pushback -- capacity # an API with a capacity: 429 beyond 16
//! cargo run --release -p parfetch-benches --example pushback -- queue    # the same, queueing instead of refusing
//! cargo run --release -p parfetch-benches --example pushback -- healthy  # 20 ms latency, no limit: auto vs fixed
//! cargo run --release -p parfetch-benches --example pushback -- blip     # 0.3 s of 503 at the start
//! cargo run --release -p parfetch-benches --example pushback -- outage   # 503 for 30 s under 10,000 URLs
//! ```
//!
//! Every server runs on 127.0.0.1 in this process (so the client and the
//! server share the machine, as in the issue's measurements). Each
//! configuration gets a fresh server and a fresh fetcher; a run is repeated
//! `ROUNDS` times, interleaved, and the medians are printed.

// Figures are printed, not computed on: float conversions are fine here.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

#[path = "../tests/it/server.rs"]
mod server;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use parfetch::{Fetcher, Value};

use server::{Reply, TestServer};

/// Rounds of each configuration, interleaved; medians are printed.
const ROUNDS: usize = 3;

/// What a server takes at once, and how long each request takes.
const CAPACITY: usize = 16;
const WORK: Duration = Duration::from_millis(20);

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".to_owned());
    match what.as_str() {
        "capacity" => capacity(),
        "queue" => queue(),
        "healthy" => healthy(),
        "blip" => blip(),
        "outage" => outage(),
        "all" => {
            capacity();
            queue();
            healthy();
            blip();
        }
        other => eprintln!("unknown mode {other:?}: capacity, queue, healthy, blip, outage or all"),
    }
}

/// A concurrency to run with: a fixed number, or adaptive up to 256.
#[derive(Clone, Copy)]
enum Concurrency {
    Fixed(usize),
    Auto,
}

impl Concurrency {
    fn label(self) -> String {
        match self {
            Concurrency::Fixed(n) => format!("-c {n}"),
            Concurrency::Auto => "-c auto".to_owned(),
        }
    }

    fn fetcher(self) -> parfetch::FetcherBuilder {
        let builder = Fetcher::builder().no_proxy().max_retries(10);
        match self {
            Concurrency::Fixed(n) => builder.concurrency(n),
            Concurrency::Auto => builder.concurrency(256).adaptive_concurrency(true),
        }
    }
}

/// What one run came to.
#[derive(Clone, Default)]
struct Run {
    per_second: f64,
    failed: u64,
    /// URLs the server answered 429 at least once, of all.
    refused_share: f64,
    /// Answers 429 in all.
    refused: u64,
    p50: Duration,
    limits: String,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `urls` through a fetcher made by `concurrency`, against whatever
/// serves them; `refused` counts what the server refused meanwhile.
fn run(concurrency: Concurrency, urls: &[String], refused: &Refused) -> Run {
    let fetcher = concurrency.fetcher().build().unwrap();
    let mut failed = 0;
    let started = Instant::now();
    let stats = fetcher
        .batch(urls)
        .for_each::<Value>(|_, result| failed += u64::from(result.is_err()));
    let elapsed = started.elapsed();
    let hosts = fetcher.stats().hosts;
    let limits = hosts
        .iter()
        .map(|h| {
            format!(
                "limit {} ({}..{})",
                h.limit, h.lowest_limit, h.highest_limit
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (count, paths) = refused.take();
    Run {
        per_second: urls.len() as f64 / elapsed.as_secs_f64(),
        failed,
        refused_share: paths as f64 / urls.len() as f64,
        refused: count,
        p50: stats.stats.latency.p50,
        limits,
    }
}

/// What a server refused: answers, and the URLs that got one.
#[derive(Default)]
struct Refused {
    count: AtomicU64,
    paths: Mutex<HashSet<String>>,
}

impl Refused {
    fn note(&self, path: &str) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.paths.lock().unwrap().insert(path.to_owned());
    }

    fn take(&self) -> (u64, usize) {
        let paths = std::mem::take(&mut *self.paths.lock().unwrap()).len();
        (self.count.swap(0, Ordering::Relaxed), paths)
    }
}

fn urls(server: &TestServer, n: usize) -> Vec<String> {
    (0..n).map(|i| server.url(&format!("/doc/{i}"))).collect()
}

fn doc() -> Reply {
    Reply::json(200, r#"{"ok":true,"laps":[1,2,3]}"#)
}

/// An API that serves `CAPACITY` requests at once and answers the rest
/// `429` with `Retry-After: 1`.
fn capacity_server(refused: Arc<Refused>) -> TestServer {
    let active = Arc::new(AtomicU64::new(0));
    TestServer::start(move |request| {
        if active.fetch_add(1, Ordering::SeqCst) >= CAPACITY as u64 {
            active.fetch_sub(1, Ordering::SeqCst);
            refused.note(&request.path);
            return Reply::status(429).with_header("retry-after", "1");
        }
        std::thread::sleep(WORK);
        active.fetch_sub(1, Ordering::SeqCst);
        doc()
    })
}

/// The same API, queueing what it cannot serve at once: latency grows.
/// `times` gets each request's time at the server, queue and work.
fn queue_server(times: Arc<Mutex<Vec<Duration>>>) -> TestServer {
    let slots = Arc::new((Mutex::new(0usize), Condvar::new()));
    TestServer::start(move |_| {
        let arrived = Instant::now();
        let (busy, freed) = &*slots;
        let mut busy_now = freed
            .wait_while(busy.lock().unwrap(), |n| *n >= CAPACITY)
            .unwrap();
        *busy_now += 1;
        drop(busy_now);
        std::thread::sleep(WORK);
        *busy.lock().unwrap() -= 1;
        freed.notify_one();
        times.lock().unwrap().push(arrived.elapsed());
        doc()
    })
}

/// Runs each of `configs` `ROUNDS` times, interleaved, against a fresh
/// server each time; the medians of each.
fn rounds(
    configs: &[Concurrency],
    n: usize,
    mut server: impl FnMut(Arc<Refused>) -> TestServer,
) -> Vec<(Concurrency, Run)> {
    let mut all: BTreeMap<usize, Vec<Run>> = BTreeMap::new();
    for _ in 0..ROUNDS {
        for (i, config) in configs.iter().enumerate() {
            let refused = Arc::new(Refused::default());
            let server = server(Arc::clone(&refused));
            let urls = urls(&server, n);
            all.entry(i)
                .or_default()
                .push(run(*config, &urls, &refused));
        }
    }
    all.into_iter()
        .map(|(i, runs)| {
            let pick = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
            let summary = Run {
                per_second: pick(|r| r.per_second),
                failed: runs.iter().map(|r| r.failed).max().unwrap_or(0),
                refused_share: pick(|r| r.refused_share),
                refused: pick(|r| r.refused as f64) as u64,
                p50: Duration::from_secs_f64(pick(|r| r.p50.as_secs_f64())),
                limits: runs.last().map(|r| r.limits.clone()).unwrap_or_default(),
            };
            (configs[i], summary)
        })
        .collect()
}

fn capacity() {
    println!(
        "\nAn API with a capacity: {CAPACITY} at once ({} ms each), 429 + Retry-After: 1 \
         beyond; 2,000 URLs, max_retries 10; medians of {ROUNDS} interleaved rounds",
        WORK.as_millis()
    );
    println!(
        "  {:<9} {:>9} {:>10} {:>8} {:>12} {:>7}  limit at the end (lowest..highest)",
        "", "URLs/s", "vs -c 16", "429s", "URLs 429'd", "failed"
    );
    let configs = [
        Concurrency::Fixed(16),
        Concurrency::Fixed(32),
        Concurrency::Fixed(64),
        Concurrency::Auto,
    ];
    let results = rounds(&configs, 2000, capacity_server);
    let base = results[0].1.per_second;
    for (config, run) in &results {
        println!(
            "  {:<9} {:>9.0} {:>9.2}x {:>8} {:>11.1}% {:>7}  {}",
            config.label(),
            run.per_second,
            run.per_second / base,
            run.refused,
            run.refused_share * 100.0,
            run.failed,
            run.limits
        );
    }
}

fn queue() {
    println!(
        "\nThe same API queueing instead of refusing ({CAPACITY} at once, the rest wait): \
         2,000 URLs; unloaded latency {} ms",
        WORK.as_millis()
    );
    println!(
        "  {:<9} {:>9} {:>14} {:>14} {:>7}  limit at the end",
        "", "URLs/s", "vs best fixed", "at server (ms)", "failed"
    );
    let configs = [
        Concurrency::Fixed(16),
        Concurrency::Fixed(32),
        Concurrency::Fixed(64),
        Concurrency::Auto,
    ];
    let times: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut medians: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut config_of_round = 0;
    let results = rounds(&configs, 2000, |_| {
        // The last run's times, now that it is over.
        let mut taken = std::mem::take(&mut *times.lock().unwrap());
        if !taken.is_empty() {
            taken.sort();
            let at = (config_of_round + configs.len() - 1) % configs.len();
            medians
                .entry(at)
                .or_default()
                .push(taken[taken.len() / 2].as_secs_f64());
        }
        config_of_round = (config_of_round + 1) % configs.len();
        queue_server(Arc::clone(&times))
    });
    let mut last = std::mem::take(&mut *times.lock().unwrap());
    last.sort();
    if let Some(median) = last.get(last.len() / 2) {
        medians
            .entry(configs.len() - 1)
            .or_default()
            .push(median.as_secs_f64());
    }
    let best = results[..3]
        .iter()
        .map(|(_, r)| r.per_second)
        .fold(0.0, f64::max);
    for (i, (config, run)) in results.iter().enumerate() {
        let at_server = median(medians.remove(&i).unwrap_or_else(|| vec![f64::NAN]));
        println!(
            "  {:<9} {:>9.0} {:>13.2}x {:>14.1} {:>7}  {}",
            config.label(),
            run.per_second,
            run.per_second / best,
            at_server * 1e3,
            run.failed,
            run.limits
        );
    }
    println!("  (median time at the server, its queue included; unloaded: the work alone)");
}

fn healthy() {
    println!("\nA healthy server, 20 ms latency, no limit (as `perf latency`): 2,000 × 2 KB");
    println!(
        "  {:<9} {:>9} {:>14} {:>12}",
        "", "URLs/s", "vs best fixed", "median (ms)"
    );
    let configs = [
        Concurrency::Fixed(16),
        Concurrency::Fixed(64),
        Concurrency::Fixed(128),
        Concurrency::Fixed(256),
        Concurrency::Auto,
    ];
    let body = "x".repeat(2000);
    let doc = format!(r#"{{"ok":true,"pad":"{body}"}}"#);
    let results = rounds(&configs, 2000, |_| {
        let doc = doc.clone();
        TestServer::start(move |_| {
            Reply::Delay(
                Duration::from_millis(20),
                Box::new(Reply::json(200, doc.clone())),
            )
        })
    });
    let best = results[..4]
        .iter()
        .map(|(_, r)| r.per_second)
        .fold(0.0, f64::max);
    for (config, run) in &results {
        println!(
            "  {:<9} {:>9.0} {:>13.2}x {:>12.1}",
            config.label(),
            run.per_second,
            run.per_second / best,
            run.p50.as_secs_f64() * 1e3,
        );
    }
}

/// A server that answers 503 (no Retry-After) for `down` after its first
/// request, then serves; it counts the requests of that time, and the URLs
/// they were for.
fn down_for(down: Duration, during: Arc<(AtomicU64, Mutex<HashSet<String>>)>) -> TestServer {
    let first = Arc::new(Mutex::new(None::<Instant>));
    TestServer::start(move |request| {
        let started = *first.lock().unwrap().get_or_insert_with(Instant::now);
        if started.elapsed() < down {
            during.0.fetch_add(1, Ordering::Relaxed);
            during.1.lock().unwrap().insert(request.path.clone());
            return Reply::status(503);
        }
        doc()
    })
}

/// Runs `n` URLs at concurrency `c`, defaults otherwise, against a host
/// down for `down` at the start.
fn outage_run(down: Duration, n: usize, c: usize) {
    let during = Arc::new((AtomicU64::new(0), Mutex::new(HashSet::new())));
    let server = down_for(down, Arc::clone(&during));
    let fetcher = Fetcher::builder()
        .no_proxy()
        .concurrency(c)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    fetcher
        .batch(urls(&server, n))
        .for_each::<Value>(|_, result| {
            let outcome = match result {
                Ok(_) => "ok".to_owned(),
                Err(error) => format!("{:?}", error.kind()),
            };
            *outcomes.entry(outcome).or_default() += 1;
        });
    let elapsed = started.elapsed();
    let sent = during.0.load(Ordering::Relaxed);
    let distinct = during.1.lock().unwrap().len();
    println!(
        "  {n} URLs at -c {c}, defaults: {outcomes:?} in {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  while it was down: {sent} requests for {distinct} URLs ({:.2} per URL)",
        sent as f64 / distinct.max(1) as f64
    );
    for host in fetcher.stats().hosts {
        println!(
            "  {}: limit {} (lowest {}), breaker opened {} times, {} retries refused",
            host.host, host.limit, host.lowest_limit, host.breaker_opened, host.retries_refused
        );
    }
}

fn blip() {
    println!("\nA blip: 503 for the first 0.3 s (a deploy, a cold cache)");
    outage_run(Duration::from_millis(300), 500, 16);
}

fn outage() {
    println!("\nAn outage: 503 to everything for 30 s");
    outage_run(Duration::from_secs(30), 10_000, 20);
}
