//! Throughput, latency and memory figures for the guide
//! (docs/performance.md), each compared with other ways of doing the same
//! job in the same run.
//!
//! The server runs in a child process (this same binary, `serve`), so that
//! memory figures are the client's alone and both sides are separate
//! processes as in real life.
//!
//! ```text
//! cargo run --release -p parfetch-benches --example perf                 # everything below
//! cargo run --release -p parfetch-benches --example perf -- small        # 20,000 × 2 KB at C=32
//! cargo run --release -p parfetch-benches --example perf -- large        # 400 × 256 KB at C=16
//! cargo run --release -p parfetch-benches --example perf -- latency      # 2,000 with 20 ms latency at C=64
//! cargo run --release -p parfetch-benches --example perf -- memory 256   # peak RSS, 10,000 requests at C=256
//! cargo run --release -p parfetch-benches --example perf -- parse        # parse paths, one thread (`parse "parfetch::Doc" 2`: one path, 2 MB)
//! cargo run --release -p parfetch-benches --example perf -- stream       # peak RSS streaming 100,000 vs 1,000,000 at C=64
//! cargo run --release -p parfetch-benches --example perf -- huge         # peak RSS, 64 × 8 MB at C=64, each value dropped, vs reqwest+tokio
//! cargo run --release -p parfetch-benches --example perf -- overhead     # batch (progress, gates) vs fetch_many, 5,000 docs
//! cargo run --release -p parfetch-benches --example perf -- cache 10     # warm cache and 304 revalidation vs fetching, 5,000 docs, 10 ms latency
//! cargo run --release -p parfetch-benches --example perf -- cost 20000 value   # client CPU per request only, for A/B runs (value, doc, typed, bytes; each: for_each::<Doc>; each-bytes; rayon-bytes: get_bytes on a rayon pool)
//! cargo run --release -p parfetch-benches --example perf -- table      # host table: a lookup among 10 vs 100,000 hosts; inserts
//! cargo run --release -p parfetch-benches --example perf -- corpus 20   # parse ../shared/corpus (beside the checkout) into Value, one thread (for callgrind)
//! cargo run --release -p parfetch-benches --example perf -- hosts      # one GET to each of 2,000 / 20,000 / 100,000 hosts at C=64
//! cargo run --release -p parfetch-benches --example perf -- tls 400   # TLS set-up: roots loaded, handshakes with 1 / Mozilla's / the machine's roots
//! cargo run --release -p parfetch-benches --example perf -- serve 2048 20   # just the server (for wrk)
//! cargo run --release -p parfetch-benches --example perf -- serve 2048 20 mixed   # ... and /html, /ndjson, /missing, /error, /stall, /truncated, /number, /zstd
//! ```

// Figures are printed, not computed on: float conversions are fine here.
#![allow(clippy::cast_precision_loss)]

#[path = "../tests/it/pki.rs"]
#[allow(dead_code)]
mod pki;
#[path = "../examples/support/proc_self.rs"]
mod proc_self;
#[path = "../tests/it/server.rs"]
mod server;

use proc_self::{cpu_seconds, peak_rss_mb};

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rayon::prelude::*;
use serde::Deserialize;

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("serve") => serve(
            arg(1, 2048),
            arg(2, 0),
            args.get(3).map_or("plain", String::as_str),
        ),
        Some("cache") => cache(arg(1, 0)),
        Some("small") => small(),
        Some("parse") => {
            parse(args.get(1).map(String::as_str), arg(2, 200));
            Ok(())
        }
        Some("large") => large(),
        Some("latency") => latency(usize::try_from(arg(1, 2000))?),
        Some("latency-auto") => latency_auto(usize::try_from(arg(1, 2000))?),
        Some("memory") => memory(usize::try_from(arg(1, 256))?),
        Some("memory-client") => memory_client(&args[1], usize::try_from(arg(2, 256))?),
        Some("stream") => stream(),
        Some("huge") => huge(),
        Some("huge-client") => huge_client(&args[1], args.get(2).map_or("value", String::as_str)),
        Some("stream-client") => stream_client(
            &args[1],
            usize::try_from(arg(2, 100_000))?,
            args.get(3).is_some_and(|mode| mode == "bytes"),
        ),
        Some("overhead") => overhead(),
        Some("hosts") => hosts(&args[1..]),
        Some("corpus") => corpus(usize::try_from(arg(1, 20))?),
        Some("table") => {
            table();
            Ok(())
        }
        Some("cost") => cost(
            usize::try_from(arg(1, 20_000))?,
            args.get(2).map_or("value", String::as_str),
        ),
        Some("hosts-inside") => hosts_inside(&args[1..]),
        Some("tls") => tls(usize::try_from(arg(1, 400))?),
        Some("serve-any") => serve_any(),
        Some("hosts-client") => hosts_client(
            args.get(1).ok_or("port")?,
            usize::try_from(arg(2, 2000))?,
            args.get(3).is_some_and(|mode| mode == "one"),
        ),
        None => {
            small()?;
            large()?;
            latency(2000)?;
            for concurrency in [32, 128, 256] {
                memory(concurrency)?;
            }
            stream()?;
            overhead()?;
            cache(0)?;
            cache(10)?;
            parse(None, 200);
            Ok(())
        }
        Some(other) => Err(format!("unknown mode {other:?}").into()),
    }
}

/// The child: serves `json_doc(i, size)` at `/doc/i` after `latency_ms`,
/// prints its address, and on end of stdin prints its counters and exits.
fn serve(size: u64, latency_ms: u64, headers: &str) -> Result<()> {
    let size = usize::try_from(size)?;
    let latency = Duration::from_millis(latency_ms);
    let docs: Vec<Vec<u8>> = (0..64).map(|i| server::json_doc(i, size)).collect();
    let headers = headers.to_owned();
    let server = server::TestServer::start(move |request| {
        let i: usize = request
            .path
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let reply = match headers.as_str() {
            // Each way a URL can fail, at its own path (for a look at the
            // CLI's messages): the rest are documents.
            "mixed" => match request.path.rsplit('/').next().unwrap_or_default() {
                "html" => server::Reply::Respond {
                    status: 200,
                    headers: vec![("content-type".into(), "text/html".into())],
                    body: b"<!DOCTYPE html>\n<html><body>Please log in</body></html>".to_vec(),
                },
                "ndjson" => server::Reply::Respond {
                    status: 200,
                    headers: vec![("content-type".into(), "application/x-ndjson".into())],
                    body: b"{\"n\":1}\n{\"n\":2}\n".to_vec(),
                },
                "missing" => server::Reply::status(404),
                "error" => server::Reply::json(500, r#"{"error":"database down"}"#),
                "stall" => server::Reply::Stall(Duration::from_secs(120)),
                "truncated" => server::Reply::json(200, r#"{"laps":[1,2,"#),
                "number" => server::Reply::json(200, r#"{"big":1e999}"#),
                "zstd" => server::Reply::json(200, b"\x28\xb5\x2f\xfd\x00".to_vec())
                    .with_header("content-encoding", "zstd"),
                _ => server::Reply::json(200, docs[i % docs.len()].clone()),
            },
            // Cacheable for an hour.
            "fresh" => server::Reply::json(200, docs[i % docs.len()].clone())
                .with_header("cache-control", "max-age=3600"),
            // Always stale, with an ETag: every request is revalidated.
            "etag" if request.header("if-none-match") == Some("\"v1\"") => {
                server::Reply::status(304).with_header("etag", "\"v1\"")
            }
            "etag" => server::Reply::json(200, docs[i % docs.len()].clone())
                .with_header("cache-control", "no-cache")
                .with_header("etag", "\"v1\""),
            _ => server::Reply::json(200, docs[i % docs.len()].clone()),
        };
        if latency.is_zero() {
            reply
        } else {
            server::Reply::Delay(latency, Box::new(reply))
        }
    });
    println!("{}", server.url("/doc/"));
    serve_until_stdin_closes(&server)
}

/// Keeps `server` up until stdin closes, then prints what it saw.
fn serve_until_stdin_closes(server: &server::TestServer) -> Result<()> {
    std::io::stdout().flush()?;
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    println!(
        "connections {} requests {}",
        server.connections(),
        server.requests()
    );
    Ok(())
}

/// A server on every loopback address (127.x.y.z), for `hosts`.
fn serve_any() -> Result<()> {
    let doc = server::json_doc(0, 512);
    let server =
        server::TestServer::start_on("0.0.0.0:0", move |_| server::Reply::json(200, doc.clone()));
    println!("{}", server.addr().port());
    serve_until_stdin_closes(&server)
}

/// A server child process.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
    base: String,
}

impl Server {
    fn start(size: usize, latency_ms: u64) -> Result<Server> {
        Server::start_with(size, latency_ms, "plain")
    }

    fn start_with(size: usize, latency_ms: u64, headers: &str) -> Result<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve", &size.to_string(), &latency_ms.to_string(), headers])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut base = String::new();
        stdout.read_line(&mut base)?;
        Ok(Server {
            child,
            stdin,
            stdout,
            base: base.trim().to_owned(),
        })
    }

    fn urls(&self, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{}{i}", self.base)).collect()
    }

    /// Stops the server; returns the connections it accepted.
    fn stop(mut self) -> Result<usize> {
        drop(self.stdin.take());
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        self.child.wait()?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }
}

/// Runs `client` against a fresh server and prints one line of figures.
fn measure(
    label: &str,
    size: usize,
    latency_ms: u64,
    n: usize,
    client: impl FnOnce(&[String]) -> usize,
) -> Result<f64> {
    let server = Server::start(size, latency_ms)?;
    let urls = server.urls(n);
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let ok = client(&urls);
    // The server is another process: this is the client's CPU alone.
    let cpu = cpu_seconds() - cpu_before;
    let elapsed = started.elapsed();
    let connections = server.stop()?;
    let rate = n as f64 / elapsed.as_secs_f64();
    println!(
        "  {label:<44} {rate:>9.0} req/s  {:>7.1} µs CPU/request  {:>6.0} MB/s  {ok:>6}/{n} ok  {connections:>4} connections",
        cpu * 1e6 / n as f64,
        rate * size as f64 / 1e6
    );
    Ok(rate)
}

/// parfetch's `fetch_many::<Value>`, with the fetcher built before the
/// clock starts (a program builds it once).
fn parfetch_value(concurrency: usize) -> impl FnOnce(&[String]) -> usize {
    let fetcher = parfetch::Fetcher::builder()
        .concurrency(concurrency)
        .build()
        .expect("fetcher");
    move |urls| {
        let results = fetcher.fetch_many::<parfetch::Value>(urls);
        results.iter().filter(|r| r.is_ok()).count()
    }
}

/// reqwest + tokio, each body parsed by serde_json; the values kept (as
/// `fetch_many` keeps them: holding 20,000 parsed documents costs as much
/// as parsing them) or each dropped as it comes (as `for_each` does).
fn reqwest_tokio(concurrency: usize, keep: bool) -> impl FnOnce(&[String]) -> usize {
    move |urls| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(concurrency)
                .build()
                .expect("client");
            futures_util::stream::iter(urls)
                .map(|url| {
                    let client = client.clone();
                    async move {
                        let body = client.get(url).send().await.ok()?.bytes().await.ok()?;
                        let value = serde_json::from_slice::<serde_json::Value>(&body).ok()?;
                        Some(keep.then_some(value))
                    }
                })
                .buffer_unordered(concurrency)
                .collect::<Vec<_>>()
                .await
                .iter()
                .filter(|value| value.is_some())
                .count()
        })
    }
}

fn ureq_rayon(
    concurrency: usize,
    timeout: Option<Duration>,
    parse: bool,
) -> impl FnOnce(&[String]) -> usize {
    move |urls| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_idle_connections(concurrency * 2)
            .max_idle_connections_per_host(concurrency)
            .timeout_global(timeout)
            .build()
            .into();
        on_rayon(concurrency, urls, |url| {
            let body = agent
                .get(url)
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_vec().ok());
            body.is_some_and(|b| !parse || serde_json::from_slice::<serde_json::Value>(&b).is_ok())
        })
    }
}

fn reqwest_blocking_rayon(concurrency: usize) -> impl FnOnce(&[String]) -> usize {
    move |urls| {
        let client = reqwest::blocking::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .expect("client");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(concurrency)
            .build()
            .expect("pool");
        // Kept, as fetch_many keeps them.
        let values: Vec<Option<serde_json::Value>> = pool.install(|| {
            urls.par_iter()
                .with_max_len(1)
                .map(|url| {
                    let body = client
                        .get(url)
                        .send()
                        .and_then(reqwest::blocking::Response::bytes);
                    serde_json::from_slice(&body.ok()?).ok()
                })
                .collect()
        });
        values.iter().filter(|value| value.is_some()).count()
    }
}

fn small() -> Result<()> {
    println!("20,000 GETs of 2 KB JSON at concurrency 32, parsed into a generic value:");
    let n = 20_000;
    let reqwest = measure(
        "reqwest + tokio, buffer_unordered(32), kept",
        2048,
        0,
        n,
        reqwest_tokio(32, true),
    )?;
    let ours = measure(
        "parfetch fetch_many::<Value> (all kept)",
        2048,
        0,
        n,
        parfetch_value(32),
    )?;
    let doc_kept = measure("parfetch fetch_many::<Doc> (all kept)", 2048, 0, n, {
        let fetcher = parfetch::Fetcher::builder().concurrency(32).build()?;
        move |urls| {
            let results = fetcher.fetch_many::<parfetch::Doc>(urls);
            results.iter().filter(|r| r.is_ok()).count()
        }
    })?;
    let reqwest_streamed = measure(
        "reqwest + tokio, buffer_unordered(32), dropped",
        2048,
        0,
        n,
        reqwest_tokio(32, false),
    )?;
    let doc_streamed = measure("parfetch batch().for_each::<Doc>, dropped", 2048, 0, n, {
        let fetcher = parfetch::Fetcher::builder().concurrency(32).build()?;
        move |urls| {
            let mut ok = 0;
            fetcher
                .batch(urls)
                .for_each::<parfetch::Doc>(|_, result| ok += usize::from(result.is_ok()));
            ok
        }
    })?;
    let dropped = measure(
        "parfetch get_json::<Value> on rayon, dropped",
        2048,
        0,
        n,
        |urls| {
            let fetcher = parfetch::Fetcher::builder()
                .concurrency(32)
                .build()
                .expect("fetcher");
            on_rayon(32, urls, |url| {
                fetcher.get_json::<parfetch::Value>(url).is_ok()
            })
        },
    )?;
    let bare = measure(
        "ureq + rayon + serde_json, dropped",
        2048,
        0,
        n,
        ureq_rayon(32, None, true),
    )?;
    let timed = measure(
        "  same, with ureq timeout_global(30 s)",
        2048,
        0,
        n,
        ureq_rayon(32, Some(Duration::from_secs(30)), true),
    )?;
    let bytes = measure("parfetch get_bytes on rayon, dropped", 2048, 0, n, |urls| {
        let fetcher = parfetch::Fetcher::builder()
            .concurrency(32)
            .build()
            .expect("fetcher");
        on_rayon(32, urls, |url| fetcher.get_bytes(url).is_ok())
    })?;
    let bare_bytes = measure(
        "ureq + rayon, bytes, dropped",
        2048,
        0,
        n,
        ureq_rayon(32, None, false),
    )?;
    println!(
        "  parfetch fetch_many / reqwest+tokio        = {:.2}x",
        ours / reqwest
    );
    println!(
        "  parfetch Doc kept / reqwest+tokio kept     = {:.2}x",
        doc_kept / reqwest
    );
    println!(
        "  parfetch Doc streamed / reqwest+tokio      = {:.2}x",
        doc_streamed / reqwest_streamed
    );
    println!(
        "  parfetch get_json / bare ureq (both drop)  = {:.2}x",
        dropped / bare
    );
    println!(
        "  parfetch bytes / bare ureq (both drop)     = {:.2}x",
        bytes / bare_bytes
    );
    println!(
        "  ureq with timeout_global / without         = {:.2}x\n",
        timed / bare
    );
    Ok(())
}

/// Runs `fetch` for every URL on a rayon pool of `threads`; counts successes.
fn on_rayon(threads: usize, urls: &[String], fetch: impl Fn(&str) -> bool + Sync) -> usize {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    pool.install(|| {
        urls.par_iter()
            .with_max_len(1)
            .filter(|url| fetch(url))
            .count()
    })
}

fn large() -> Result<()> {
    println!("400 GETs of 256 KB JSON at concurrency 16, parsed into a generic value:");
    let size = 256 << 10;
    let blocking = measure(
        "reqwest blocking on rayon, serde_json, kept",
        size,
        0,
        400,
        reqwest_blocking_rayon(16),
    )?;
    let ours = measure(
        "parfetch fetch_many::<Value>",
        size,
        0,
        400,
        parfetch_value(16),
    )?;
    println!("  parfetch / reqwest blocking = {:.2}x\n", ours / blocking);
    Ok(())
}

fn latency(n: usize) -> Result<()> {
    println!("{n} GETs with 20 ms server latency at concurrency 64 (ideal: 3,200 req/s):");
    let bytes = measure(
        "parfetch fetch_many_bytes (like wrk: no parse)",
        2048,
        20,
        n,
        {
            let fetcher = parfetch::Fetcher::builder().concurrency(64).build()?;
            move |urls| {
                fetcher
                    .fetch_many_bytes(urls)
                    .iter()
                    .filter(|r| r.is_ok())
                    .count()
            }
        },
    )?;
    let parsed = measure(
        "parfetch fetch_many::<Value>",
        2048,
        20,
        n,
        parfetch_value(64),
    )?;
    let doc = measure("parfetch fetch_many::<Doc>", 2048, 20, n, {
        let fetcher = parfetch::Fetcher::builder().concurrency(64).build()?;
        move |urls| {
            let results = fetcher.fetch_many::<parfetch::Doc>(urls);
            results.iter().filter(|r| r.is_ok()).count()
        }
    })?;
    // The batch's last round is partly empty: n requests take ceil(n / 64) rounds.
    let ceiling = n as f64 / (n.div_ceil(64) * 64) as f64 * 100.0;
    println!(
        "  of the 64-connection ideal: bytes {:.1}%, Value {:.1}%, Doc {:.1}% (this batch size can reach {ceiling:.1}%); \
         compare with `wrk -t2 -c64 -d8s URL` against `perf serve 2048 20`\n",
        bytes / 3200.0 * 100.0,
        parsed / 3200.0 * 100.0,
        doc / 3200.0 * 100.0
    );
    Ok(())
}

/// `perf latency`'s workload at fixed concurrencies and with adaptive
/// concurrency (up to 256), medians of 5 interleaved rounds: does `-c
/// auto` find what the best fixed number gets? (`PERF_ROUNDS=n` for more
/// or fewer rounds, `PERF_ONLY=128` for one fixed number alone.)
fn latency_auto(n: usize) -> Result<()> {
    println!(
        "{n} GETs with 20 ms server latency, fixed concurrencies and adaptive (medians of 5):"
    );
    let configs: [(&str, Option<usize>); 5] = [
        ("-c 32", Some(32)),
        ("-c 64", Some(64)),
        ("-c 128", Some(128)),
        ("-c 256", Some(256)),
        ("-c auto (up to 256)", None),
    ];
    let rounds = std::env::var("PERF_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let only: Option<usize> = std::env::var("PERF_ONLY").ok().and_then(|c| c.parse().ok());
    let configs: Vec<(&str, Option<usize>)> = configs
        .into_iter()
        .filter(|(_, c)| only.is_none() || *c == only)
        .collect();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for _ in 0..rounds {
        for (i, (label, concurrency)) in configs.iter().enumerate() {
            let builder = parfetch::Fetcher::builder();
            let fetcher = match concurrency {
                Some(c) => builder.concurrency(*c),
                None => builder.concurrency(256).adaptive_concurrency(true),
            }
            .build()?;
            let rate = measure(label, 2048, 20, n, move |urls| {
                fetcher
                    .fetch_many::<parfetch::Value>(urls)
                    .iter()
                    .filter(|r| r.is_ok())
                    .count()
            })?;
            rates[i].push(rate);
        }
    }
    let medians: Vec<f64> = rates
        .into_iter()
        .map(|mut r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect();
    let fixed = configs.iter().filter(|(_, c)| c.is_some()).count();
    let best = medians[..fixed].iter().copied().fold(0.0, f64::max);
    for ((label, _), rate) in configs.iter().zip(&medians) {
        println!(
            "  {label:<22} {rate:>9.0} req/s  {:>5.2}x the best fixed",
            rate / best
        );
    }
    Ok(())
}

/// Runs the memory client in a process of its own, so its peak RSS is only
/// the client's.
fn memory(concurrency: usize) -> Result<()> {
    let server = Server::start(512, 1)?;
    let output = Command::new(std::env::current_exe()?)
        .args(["memory-client", &server.base, &concurrency.to_string()])
        .output()?;
    server.stop()?;
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    Ok(())
}

/// Streams 100,000 and then 1,000,000 requests in completion order, each in
/// a process of its own, and compares their peak RSS: raw bodies, then
/// generic values.
fn stream() -> Result<()> {
    println!("streaming in completion order at concurrency 64, each result dropped:");
    for mode in ["bytes", "value"] {
        let mut peaks = Vec::new();
        for count in [100_000, 1_000_000] {
            let server = Server::start(512, 0)?;
            let output = Command::new(std::env::current_exe()?)
                .args(["stream-client", &server.base, &count.to_string(), mode])
                .output()?;
            server.stop()?;
            let line = String::from_utf8_lossy(&output.stdout).to_string();
            print!("{line}");
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
            let peak = line
                .split("peak RSS ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|mb| mb.parse::<f64>().ok());
            peaks.push(peak.unwrap_or(0.0));
        }
        println!(
            "  {mode}: peak RSS 1,000,000 / 100,000 = {:.3}",
            peaks[1] / peaks[0]
        );
    }
    println!();
    Ok(())
}

fn stream_client(base: &str, count: usize, bytes: bool) -> Result<()> {
    let fetcher = parfetch::Fetcher::builder().concurrency(64).build()?;
    let urls = (0..count).map(|i| format!("{base}{i}"));
    let mut ok = 0;
    let batch = fetcher.batch(urls);
    let stats = if bytes {
        batch.for_each_bytes(|_, result| ok += usize::from(result.is_ok()))
    } else {
        batch.for_each::<parfetch::Value>(|_, result| ok += usize::from(result.is_ok()))
    };
    let what = if bytes {
        "for_each_bytes"
    } else {
        "for_each::<Value>"
    };
    println!(
        "  {what:<18} {count:>9} requests: {ok} ok, {:>6.0} req/s, peak RSS {:.1} MB",
        stats.requests_per_second(),
        peak_rss_mb()
    );
    Ok(())
}

/// Peak RSS for large documents: 64 GETs of 8 MB at C=64, each parsed
/// and dropped as it comes, each client in a process of its own.
fn huge() -> Result<()> {
    println!("64 GETs of 8 MB JSON at concurrency 64, each value dropped as it comes:");
    for who in ["value", "doc", "bytes", "reqwest-tokio"] {
        let server = Server::start(8 << 20, 0)?;
        let output = Command::new(std::env::current_exe()?)
            .args(["huge-client", &server.base, who])
            .output()?;
        server.stop()?;
        print!("{}", String::from_utf8_lossy(&output.stdout));
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
    }
    println!();
    Ok(())
}

fn huge_client(base: &str, who: &str) -> Result<()> {
    const COUNT: usize = 64;
    let urls: Vec<String> = (0..COUNT).map(|i| format!("{base}{i}")).collect();
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let mut ok = 0;
    let label = match who {
        "reqwest-tokio" => {
            ok = reqwest_tokio(COUNT, false)(&urls);
            "reqwest + tokio, serde_json::Value"
        }
        "doc" => {
            let fetcher = parfetch::Fetcher::builder().concurrency(COUNT).build()?;
            fetcher
                .batch(&urls)
                .for_each::<parfetch::Doc>(|_, result| ok += usize::from(result.is_ok()));
            "parfetch for_each::<Doc>"
        }
        "bytes" => {
            let fetcher = parfetch::Fetcher::builder().concurrency(COUNT).build()?;
            fetcher
                .batch(&urls)
                .for_each_bytes(|_, result| ok += usize::from(result.is_ok()));
            "parfetch for_each_bytes"
        }
        _ => {
            let fetcher = parfetch::Fetcher::builder().concurrency(COUNT).build()?;
            fetcher
                .batch(&urls)
                .for_each::<parfetch::Value>(|_, result| ok += usize::from(result.is_ok()));
            "parfetch for_each::<Value>"
        }
    };
    println!(
        "  {label:<36} peak RSS {:>7.1} MB, {:>6.1} ms CPU/request, {:.1} s ({ok}/{COUNT} ok)",
        peak_rss_mb(),
        (cpu_seconds() - cpu_before) * 1e3 / COUNT as f64,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A batch (with a progress callback, and the host gates it always has)
/// against a plain fetch_many, on one server, alternating, 7 rounds each.
fn overhead() -> Result<()> {
    println!("5,000 small documents at concurrency 32: batch with progress vs plain fetch_many (median of 7):");
    let server = Server::start(512, 0)?;
    let urls = server.urls(5000);
    let fetcher = parfetch::Fetcher::builder().concurrency(32).build()?;
    let (mut plain, mut batch) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let started = Instant::now();
        let results = fetcher.fetch_many::<parfetch::Value>(&urls);
        assert!(results.iter().all(Result::is_ok));
        plain.push(5000.0 / started.elapsed().as_secs_f64());
        let started = Instant::now();
        let mut reports = 0;
        let results = fetcher
            .batch(&urls)
            .on_progress(|_| reports += 1)
            .collect::<parfetch::Value>()
            .0;
        assert!(results.iter().all(Result::is_ok) && reports > 0);
        batch.push(5000.0 / started.elapsed().as_secs_f64());
    }
    server.stop()?;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (plain, batch) = (median(&mut plain), median(&mut batch));
    println!("  fetch_many::<Value>                           {plain:>9.0} req/s");
    println!("  batch().on_progress().collect::<Value>()      {batch:>9.0} req/s");
    println!("  batch / fetch_many = {:.3}\n", batch / plain);
    Ok(())
}

/// 5,000 small documents at concurrency 32: from the server, from a warm
/// cache, and revalidated (304) against it; median of 5 runs each, parsed
/// into values and as raw bodies.
fn cache(latency_ms: u64) -> Result<()> {
    println!(
        "5,000 × 512 B documents at concurrency 32, cache vs server with {latency_ms} ms of \
         latency (median of 5):"
    );
    let dir = std::env::temp_dir().join(format!("parfetch-perf-cache-{}", std::process::id()));
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Rate, and this process's CPU time per request (the server's is not
    // counted: it runs in a child process).
    let run = |fetcher: &parfetch::Fetcher, urls: &[String], parse: bool| {
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let ok = if parse {
            fetcher
                .fetch_many::<parfetch::Value>(urls)
                .iter()
                .all(Result::is_ok)
        } else {
            fetcher.fetch_many_bytes(urls).iter().all(Result::is_ok)
        };
        assert!(ok);
        let rate = 5000.0 / started.elapsed().as_secs_f64();
        (rate, (cpu_seconds() - cpu) / 5000.0 * 1e6)
    };
    for headers in ["fresh", "etag"] {
        let _ = std::fs::remove_dir_all(&dir);
        let server = Server::start_with(512, latency_ms, headers)?;
        let urls = server.urls(5000);
        let plain = parfetch::Fetcher::builder().concurrency(32).build()?;
        let cached = parfetch::Fetcher::builder()
            .concurrency(32)
            .cache_dir(&dir)
            .build()?;
        run(&cached, &urls, false); // fills the cache
        for parse in [true, false] {
            let (mut network, mut from_cache) = (Vec::new(), Vec::new());
            let (mut network_cpu, mut cache_cpu) = (0.0, 0.0);
            for _ in 0..5 {
                let (rate, cpu) = run(&plain, &urls, parse);
                network.push(rate);
                network_cpu += cpu / 5.0;
                let (rate, cpu) = run(&cached, &urls, parse);
                from_cache.push(rate);
                cache_cpu += cpu / 5.0;
            }
            let (network, from_cache) = (median(network), median(from_cache));
            let what = match (headers, parse) {
                ("fresh", true) => "warm cache, fetch_many::<Value>",
                ("fresh", false) => "warm cache, fetch_many_bytes",
                (_, true) => "304 each, fetch_many::<Value>",
                (_, false) => "304 each, fetch_many_bytes",
            };
            println!(
                "  {what:<34} {from_cache:>9.0} req/s vs server {network:>9.0} req/s = {:.2}x; \
                 client CPU {cache_cpu:>5.1} vs {network_cpu:>5.1} µs/request",
                from_cache / network
            );
        }
        let stats = cached.stats();
        println!(
            "    (hits {}, revalidations {}, server connections {})",
            stats.cache_hits,
            stats.revalidations,
            server.stop()?
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    Ok(())
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Small {
    index: usize,
    driver: String,
}

fn memory_client(base: &str, concurrency: usize) -> Result<()> {
    let fetcher = parfetch::Fetcher::builder()
        .concurrency(concurrency)
        .build()?;
    let urls = (0..10_000).map(|i| format!("{base}{i}"));
    let started = Instant::now();
    let results = fetcher.fetch_many::<Small>(urls);
    let ok = results.iter().filter(|r| r.is_ok()).count();

    println!(
        "  peak RSS at concurrency {concurrency:>3}, 10,000 requests into a small struct: {:>6.1} MB ({ok} ok, {:.1} s, {} connections)",
        peak_rss_mb(),
        started.elapsed().as_secs_f64(),
        fetcher.stats().connections_opened
    );
    Ok(())
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct DocT {
    index: usize,
    driver: String,
    laps: Vec<LapT>,
}
#[derive(Deserialize)]
#[allow(dead_code)]
struct LapT {
    lap: u32,
    time: f64,
    sector: Vec<f64>,
}

/// The parse paths parfetch could take, on one thread, per document: it
/// uses simd-json's owned value for `Value` and simd-json's serde path for
/// typed targets, tracking the error path only after a failure. The
/// simd-json paths reuse scratch buffers, as parfetch does per thread.
/// `only`: one path by its label (`-` for all), for counting its
/// instructions alone (callgrind); `megabytes`: how much each path parses.
fn parse(only: Option<&str>, megabytes: u64) {
    println!("parse paths, one thread, lap-telemetry documents:");
    let only = only.filter(|label| *label != "-");
    let buffers = std::cell::RefCell::new(simd_json::Buffers::new(16 << 10));
    for size in [2048usize, 256 << 10] {
        let doc = server::json_doc(1, size);
        let iters = (usize::try_from(megabytes).unwrap_or(200) * 1_000_000 / size).max(50);
        let time = |label: &str, f: &dyn Fn(&mut Vec<u8>) -> bool| {
            if only.is_some_and(|only| only != label) {
                return;
            }
            let mut ok = 0;
            let started = Instant::now();
            for _ in 0..iters {
                let mut body = doc.clone();
                if f(&mut body) {
                    ok += 1;
                }
            }
            let per = started.elapsed().as_secs_f64() / iters as f64;
            println!(
                "  {size:>7} B {label:<34} {:>8.2} us/doc {:>7.0} MB/s ({ok})",
                per * 1e6,
                size as f64 / per / 1e6
            );
        };
        time("serde_json::Value", &|b| {
            serde_json::from_slice::<serde_json::Value>(b).is_ok()
        });
        time("serde_json typed", &|b| {
            serde_json::from_slice::<DocT>(b).is_ok()
        });
        time("simd owned", &|b| {
            simd_json::owned::to_value_with_buffers(b, &mut buffers.borrow_mut()).is_ok()
        });
        time("simd borrowed", &|b| {
            simd_json::to_borrowed_value(b).is_ok()
        });
        time("parfetch::Doc", &|b| {
            parfetch::Doc::parse(std::mem::take(b)).is_ok()
        });
        time("simd serde typed", &|b| {
            simd_json::Deserializer::from_slice_with_buffers(b, &mut buffers.borrow_mut())
                .is_ok_and(|mut de| DocT::deserialize(&mut de).is_ok())
        });
        time("simd serde typed, path tracked", &|b| {
            let mut buffers = buffers.borrow_mut();
            let Ok(mut de) = simd_json::Deserializer::from_slice_with_buffers(b, &mut buffers)
            else {
                return false;
            };
            serde_path_to_error::deserialize::<_, DocT>(&mut de).is_ok()
        });
        time("simd serde -> serde_json::Value", &|b| {
            simd_json::from_slice::<serde_json::Value>(b).is_ok()
        });
    }
}

/// One GET to each of N distinct hosts (127.x.y.z, one server answering
/// them all) at concurrency 64, against N GETs to one host: time per
/// request and the client's peak RSS. The whole run happens in a network
/// namespace of its own (`unshare -rn`), so that the server can answer
/// every loopback address and nothing leaves the machine.
fn hosts(counts: &[String]) -> Result<()> {
    let status = Command::new("unshare")
        .args([
            "-rn",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" hosts-inside \"$@\"",
        ])
        .arg(std::env::current_exe()?)
        .args(counts)
        .status()
        .map_err(|e| format!("cannot run unshare (util-linux) for a private network: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the run in a private network namespace failed: {status}").into())
    }
}

fn hosts_inside(counts: &[String]) -> Result<()> {
    let counts: Vec<usize> = if counts.is_empty() {
        vec![2_000, 20_000, 100_000]
    } else {
        counts.iter().filter_map(|n| n.parse().ok()).collect()
    };
    println!(
        "one GET of 512 B to each of N hosts at C=64, vs N GETs to one host (its own namespace):"
    );
    for n in counts {
        for one in [true, false] {
            let mut child = Command::new(std::env::current_exe()?)
                .arg("serve-any")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
            let mut port = String::new();
            stdout.read_line(&mut port)?;
            let mode = if one { "one" } else { "many" };
            let output = Command::new(std::env::current_exe()?)
                .args(["hosts-client", port.trim(), &n.to_string(), mode])
                .output()?;
            drop(child.stdin.take());
            child.wait()?;
            print!("{}", String::from_utf8_lossy(&output.stdout));
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
        }
    }
    Ok(())
}

fn hosts_client(port: &str, n: usize, one_host: bool) -> Result<()> {
    let fetcher = parfetch::Fetcher::builder()
        .concurrency(64)
        .max_retries(0)
        .build()?;
    let urls = (0..n).map(|i| {
        if one_host {
            format!("http://127.0.0.1:{port}/doc/{i}")
        } else {
            // 127.1.0.0 and up: a distinct address per request.
            let (a, b, c) = (1 + i / 65_536, (i / 256) % 256, i % 256);
            format!("http://127.{a}.{b}.{c}:{port}/doc/{i}")
        }
    });
    let started = Instant::now();
    let mut ok = 0;
    fetcher
        .batch(urls)
        .for_each_bytes(|_, result| ok += usize::from(result.is_ok()));
    let elapsed = started.elapsed();
    let label = if one_host { "1 host" } else { "distinct hosts" };
    println!(
        "  {n:>7} requests, {label:<14} {:>8.2} s {:>7.1} µs/request  peak RSS {:>6.1} MB  ({ok} ok)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n as f64,
        peak_rss_mb(),
    );
    Ok(())
}

/// The client's CPU time per request for `n` GETs of 2 KB at C=32, parsed
/// into `Value` (`value`), `Doc` (`doc`) or a struct (`typed`), or kept
/// as bytes (`bytes`): steadier than a rate
/// on a shared machine, for comparing two builds side by side.
fn cost(n: usize, mode: &str) -> Result<()> {
    let server = Server::start(2048, 0)?;
    let urls = server.urls(n);
    let fetcher = parfetch::Fetcher::builder().concurrency(32).build()?;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let ok = if mode == "bytes" {
        fetcher
            .fetch_many_bytes(&urls)
            .iter()
            .filter(|r| r.is_ok())
            .count()
    } else if mode == "typed" {
        fetcher
            .fetch_many::<DocT>(&urls)
            .iter()
            .filter(|r| r.is_ok())
            .count()
    } else if mode == "rayon-bytes" {
        on_rayon(32, &urls, |url| fetcher.get_bytes(url).is_ok())
    } else if mode == "each-bytes" {
        let mut ok = 0;
        fetcher
            .batch(&urls)
            .for_each_bytes(|_, result| ok += usize::from(result.is_ok()));
        ok
    } else if mode == "each" {
        let mut ok = 0;
        fetcher
            .batch(&urls)
            .for_each::<parfetch::Doc>(|_, result| ok += usize::from(result.is_ok()));
        ok
    } else if mode == "doc" {
        fetcher
            .fetch_many::<parfetch::Doc>(&urls)
            .iter()
            .filter(|r| r.is_ok())
            .count()
    } else {
        fetcher
            .fetch_many::<parfetch::Value>(&urls)
            .iter()
            .filter(|r| r.is_ok())
            .count()
    };
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    server.stop()?;
    println!(
        "  cost {mode}: {:>6.2} µs CPU/request, {:>7.0} req/s ({ok}/{n} ok, {} connections)",
        cpu * 1e6 / n as f64,
        n as f64 / elapsed.as_secs_f64(),
        fetcher.stats().connections_opened
    );
    Ok(())
}

/// What trusting more roots costs: building a fetcher (the roots parsed
/// once), and `n` GETs each on a new TLS connection (a TLS server on
/// loopback that closes after each answer), one at a time, with the
/// fetcher's timeout and with a request's own (which makes ureq look its
/// TLS set-up up per connection). Raw ureq agents with 1, Mozilla's and
/// the machine's roots first, then parfetch's settings.
fn tls(n: usize) -> Result<()> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let ca = pki::Ca::new("perf CA");
    let server = pki::TlsServer::start(&ca.server(), None, pki::ok_json(r#"{"tls":1}"#));
    let url = format!("{}/x", server.base);
    let ca_pem = ca.pem();
    let ca_der: Vec<Certificate<'static>> = ureq::tls::parse_pem(ca_pem.as_bytes())
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    let mozilla: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()))
        .collect();
    let started = Instant::now();
    let machine: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    println!(
        "TLS, {n} GETs one at a time, each on a new connection \
         (SSL_CERT_FILE={:?}, SSL_CERT_DIR={:?}):",
        std::env::var("SSL_CERT_FILE").ok(),
        std::env::var("SSL_CERT_DIR").ok()
    );
    println!(
        "  the machine's store: {} certificates, read in {:.1} ms",
        machine.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let with = |extra: &[Certificate<'static>]| {
        let mut roots = extra.to_vec();
        roots.extend(ca_der.iter().cloned());
        roots
    };
    let rows: [(&str, Vec<Certificate<'static>>); 3] = [
        ("ureq, 1 root", with(&[])),
        ("ureq, Mozilla's + 1", with(&mozilla)),
        (
            "ureq, Mozilla's + machine's + 1",
            with(&[mozilla.clone(), machine].concat()),
        ),
    ];
    for (name, roots) in rows {
        let count = roots.len();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::new_with_certs(&roots))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        for own_timeout in [true, false] {
            let started = Instant::now();
            for _ in 0..n {
                let request = agent.get(&url);
                let response = if own_timeout {
                    request
                        .config()
                        .timeout_global(Some(Duration::from_secs(20)))
                        .build()
                        .call()
                } else {
                    request.call()
                };
                response?.body_mut().read_to_vec()?;
            }
            let per = started.elapsed().as_secs_f64() * 1e3 / n as f64;
            let timeout = if own_timeout {
                "own timeout"
            } else {
                "agent's"
            };
            println!("  {name:<34} ({count:>3} roots), {timeout:<11}: {per:>6.3} ms/request");
        }
    }
    let builders: [(&str, parfetch::FetcherBuilder); 2] = [
        (
            "parfetch, trust_root_certificates",
            parfetch::Fetcher::builder().trust_root_certificates(ca_pem.clone()),
        ),
        (
            "parfetch, + system_roots(true)",
            parfetch::Fetcher::builder()
                .trust_root_certificates(ca_pem.clone())
                .system_roots(true),
        ),
    ];
    for (name, builder) in builders {
        let started = Instant::now();
        let fetcher = builder.no_proxy().build()?;
        let build_ms = started.elapsed().as_secs_f64() * 1e3;
        for own_timeout in [true, false] {
            let started = Instant::now();
            for _ in 0..n {
                let request = parfetch::Request::get(&url);
                let request = if own_timeout {
                    request.timeout(Duration::from_secs(20))
                } else {
                    request
                };
                fetcher.get_bytes(request)?;
            }
            let per = started.elapsed().as_secs_f64() * 1e3 / n as f64;
            let timeout = if own_timeout {
                "own timeout"
            } else {
                "fetcher's"
            };
            println!(
                "  {name:<34} (built in {build_ms:>5.1} ms), {timeout:<11}: {per:>6.3} ms/request"
            );
        }
    }
    Ok(())
}

/// Parses each file of `../shared/corpus` into a `Value` `rounds` times on
/// one thread, with buffers reused as parfetch does: a fixed amount of
/// work, so that `valgrind --tool=callgrind` counts the same instructions
/// from run to run, for comparing two builds (simd-json features, say).
fn corpus(rounds: usize) -> Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let mut buffers = simd_json::Buffers::new(16 << 10);
    for file in ["twitter.json", "citm_catalog.json", "canada.json"] {
        let bytes = std::fs::read(dir.join(file))?;
        let started = Instant::now();
        for _ in 0..rounds {
            let mut copy = bytes.clone();
            let value = simd_json::owned::to_value_with_buffers(&mut copy, &mut buffers)?;
            std::hint::black_box(value);
        }
        let per_doc = started.elapsed().as_secs_f64() / rounds as f64;
        println!(
            "  {file:<18} {:>8.2} ms/doc {:>7.0} MB/s",
            per_doc * 1e3,
            bytes.len() as f64 / per_doc / 1e6
        );
    }
    Ok(())
}

/// The host table's two designs, with a key shaped like parfetch's
/// (scheme, port, name): today's lock-free `papaya` map, and the
/// copy-on-write map behind an `ArcSwap` it replaced. A lookup of one busy
/// host among 10 and among 100,000, and the time to add that many hosts.
fn table() {
    use std::collections::HashMap;
    use std::hash::{Hash, Hasher};
    use std::sync::Arc;

    #[derive(Clone, PartialEq, Eq)]
    struct Key {
        https: bool,
        port: u16,
        name: Box<str>,
    }
    impl Hash for Key {
        fn hash<H: Hasher>(&self, state: &mut H) {
            (self.https, self.port, &*self.name).hash(state);
        }
    }
    const LOOKUPS: usize = 2_000_000;
    let key = |i: usize| Key {
        https: false,
        port: 80,
        name: format!("127.{}.{}.{}", 1 + i / 65_536, (i / 256) % 256, i % 256).into(),
    };
    println!("host table: one lookup of a busy host, and adding every host:");
    for n in [10, 100_000] {
        let keys: Vec<Key> = (0..n).map(key).collect();
        let lock_free = papaya::HashMap::new();
        let started = Instant::now();
        for (i, k) in keys.iter().enumerate() {
            lock_free.pin().insert(k.clone(), i);
        }
        let lock_free_insert = started.elapsed();
        // Copy-on-write costs n² to fill: at most 20,000 hosts are added.
        let copied = arc_swap::ArcSwap::from_pointee(HashMap::<Key, Arc<usize>>::new());
        let cow_n = n.min(20_000);
        let started = Instant::now();
        for (i, k) in keys.iter().take(cow_n).enumerate() {
            let mut map = HashMap::clone(&copied.load());
            map.insert(k.clone(), Arc::new(i));
            copied.store(Arc::new(map));
        }
        let cow_insert = started.elapsed();
        let busy = &keys[..10.min(n)];
        let time = |lookup: &dyn Fn(&Key) -> usize| {
            let started = Instant::now();
            let mut sum = 0;
            for i in 0..LOOKUPS {
                sum += lookup(&busy[i % busy.len()]);
            }
            std::hint::black_box(sum);
            started.elapsed().as_nanos() as f64 / LOOKUPS as f64
        };
        let lock_free_lookup = time(&|k| *lock_free.pin().get(k).unwrap_or(&0));
        let cow_lookup = time(&|k| copied.load().get(k).map_or(0, |v| **v));
        println!(
            "  {n:>7} hosts: lookup {lock_free_lookup:>5.1} ns (papaya) vs {cow_lookup:>5.1} ns \
             (copy-on-write); adding them {:>9.1} ms vs {:>9.1} ms for {cow_n}",
            lock_free_insert.as_secs_f64() * 1e3,
            cow_insert.as_secs_f64() * 1e3,
        );
    }
}
