//! The demo: what parfetch does, and how fast, with no internet needed.
//!
//! Starts a loopback server that serves lap-record JSON documents (4 KB
//! each) with a simulated network latency, then fetches 10, 50, 100 and 500
//! of them one after another and with `fetch_many`, and prints the speedup
//! and the fetcher's stats.
//!
//! ```text
//! cargo run --release --example demo -- [--latency-ms 20] [--concurrency 32] [--max-urls 500]
//! ```

// Figures are printed, not computed on: float conversions are fine here.
#![allow(clippy::cast_precision_loss)]

#[path = "../tests/it/server.rs"]
mod server;

use std::time::{Duration, Instant};

use serde::Deserialize;

use server::{json_doc, Reply, TestServer};

/// The shape of a served document.
#[derive(Deserialize)]
#[allow(dead_code)] // fields are read by the parser, not the demo
struct Stint {
    index: usize,
    driver: String,
    laps: Vec<LapRecord>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct LapRecord {
    lap: u32,
    time: f64,
    sector: Vec<f64>,
}

struct Options {
    latency: Duration,
    concurrency: usize,
    max_urls: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        latency: Duration::from_millis(20),
        concurrency: 32,
        max_urls: 500,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(format!("{flag} needs a whole number"))
        };
        match flag.as_str() {
            "--latency-ms" => options.latency = Duration::from_millis(value()?),
            "--concurrency" => options.concurrency = usize::try_from(value()?).unwrap_or(1),
            "--max-urls" => options.max_urls = usize::try_from(value()?).unwrap_or(0),
            "-h" | "--help" => {
                return Err("usage: demo [--latency-ms N] [--concurrency N] [--max-urls N]".into())
            }
            other => return Err(format!("unknown flag {other:?} (try --help)")),
        }
    }
    Ok(options)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let latency = options.latency;
    let server = TestServer::start(move |request| {
        let index = request
            .path
            .trim_start_matches("/laps/")
            .trim_end_matches(".json")
            .parse()
            .unwrap_or(0);
        Reply::Delay(latency, Box::new(Reply::json(200, json_doc(index, 4096))))
    });
    let fetcher = parfetch::Fetcher::builder()
        .concurrency(options.concurrency)
        .build()?;

    println!(
        "parfetch demo: 4 KB JSON lap records from a local server with {} ms latency, concurrency {}\n",
        latency.as_millis(),
        options.concurrency
    );
    println!(
        "{:>6}  {:>12}  {:>12}  {:>8}",
        "URLs", "sequential", "fetch_many", "speedup"
    );
    let mut total = 0;
    for count in [10, 50, 100, 500] {
        let count = count.min(options.max_urls);
        if count == 0 || count <= total {
            continue;
        }
        total = count;
        let urls: Vec<String> = (0..count)
            .map(|i| server.url(&format!("/laps/{i}.json")))
            .collect();

        let started = Instant::now();
        for url in &urls {
            let stint: Stint = fetcher.get_json(url.as_str())?;
            assert!(!stint.driver.is_empty());
        }
        let sequential = started.elapsed();

        let started = Instant::now();
        let results = fetcher.fetch_many::<Stint>(&urls);
        let parallel = started.elapsed();
        let failed = results.iter().filter(|r| r.is_err()).count();
        if failed > 0 {
            return Err(format!("{failed} of {count} requests failed").into());
        }
        println!(
            "{count:>6}  {:>10.0}ms  {:>10.0}ms  {:>7.1}x",
            sequential.as_secs_f64() * 1000.0,
            parallel.as_secs_f64() * 1000.0,
            sequential.as_secs_f64() / parallel.as_secs_f64()
        );
    }

    let stats = fetcher.stats();
    println!("\nfetcher stats:");
    println!(
        "  requests            {} ({} failed)",
        stats.requests, stats.failures
    );
    println!(
        "  attempts / retries  {} / {}",
        stats.attempts, stats.retries
    );
    println!(
        "  connections opened  {} (server accepted {})",
        stats.connections_opened,
        server.connections()
    );
    println!("  reuse ratio         {:.1}%", stats.reuse_ratio() * 100.0);
    println!(
        "  latency p50 / p95   {:.1} ms / {:.1} ms",
        stats.latency.p50.as_secs_f64() * 1000.0,
        stats.latency.p95.as_secs_f64() * 1000.0
    );
    println!(
        "  bytes received      {:.1} MB",
        stats.bytes_received as f64 / 1e6
    );
    Ok(())
}
