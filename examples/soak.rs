//! Soak: 200,000 requests at concurrency 128 against a loopback server
//! that injects 5% faults (resets, truncated bodies, stalls, 5xx, 404,
//! invalid JSON), streamed with `Batch::for_each`.
//!
//! Reports: results accounted for (must equal requests, each index once),
//! open file descriptors before and after (must match), peak RSS at 50k,
//! 100k and 200k results (must stay flat), and panics (must be 0).
//!
//! ```text
//! cargo run --release --example soak [-- REQUESTS]
//! ```

// Figures are printed, not computed on: float conversions are fine here.
#![allow(clippy::cast_precision_loss)]

#[path = "support/proc_self.rs"]
mod proc_self;
#[path = "../tests/it/server.rs"]
mod server;

use proc_self::peak_rss_mb;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use server::{json_doc, Reply, TestServer};

/// The fault for request `index`: about 5% of requests, spread by a hash.
fn reply(index: usize) -> Reply {
    let roll = index.wrapping_mul(2_654_435_761) % 1000;
    match roll {
        0..=9 => Reply::ResetNow,
        10..=19 => Reply::Truncated {
            declared_len: 600,
            body: b"{\"laps\":[".to_vec(),
        },
        20..=24 => Reply::StallBody {
            declared_len: 600,
            first: b"{".to_vec(),
            stall: Duration::from_secs(2),
        },
        25..=34 => Reply::status(503),
        35..=41 => Reply::status(404),
        42..=49 => Reply::json(200, "{\"laps\": [1, 2,, 3]}"),
        _ => Reply::json(200, json_doc(index, 512)),
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// The child process: serves faults until its standard input closes.
fn serve() {
    let server = TestServer::start(|request| {
        let index = request.path.rsplit('/').next().and_then(|n| n.parse().ok());
        reply(index.unwrap_or(0))
    });
    println!("{}", server.url("/doc/"));
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("serve") {
        serve();
        return Ok(());
    }
    let count: usize = arg.and_then(|n| n.parse().ok()).unwrap_or(200_000);
    // `bytes` as a second argument streams raw bodies instead of values.
    let bytes = std::env::args().nth(2).as_deref() == Some("bytes");
    let panics = Arc::new(AtomicUsize::new(0));
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new({
        let panics = Arc::clone(&panics);
        move |info| {
            panics.fetch_add(1, Ordering::SeqCst);
            default_hook(info);
        }
    }));

    // The server runs in a process of its own, so that the file descriptors
    // and memory measured here are the client's alone.
    let mut server = std::process::Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = server.stdout.take().ok_or("no stdout from the server")?;
    let mut base = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut base)?;
    let base = base.trim().to_owned();
    // Every protection at its defaults (the breaker, the host's limit, the
    // retry budget): a server failing 5% of requests is not down, and its
    // limit and breaker must leave it so. Only the time scale is short.
    let fetcher = parfetch::Fetcher::builder()
        .concurrency(128)
        .timeout(Duration::from_millis(500))
        .max_retries(2)
        .initial_backoff(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(50))
        .jitter(Duration::from_millis(5))
        .build()?;
    let fds_before = open_fds();
    let started = Instant::now();

    let mut seen = vec![false; count];
    let (mut accounted, mut twice, mut ok) = (0usize, 0usize, 0usize);
    let mut checkpoints = Vec::new();
    let mut failures = std::collections::BTreeMap::<String, usize>::new();
    let mut account = |index: usize, result: Result<(), parfetch::Error>| {
        if std::mem::replace(&mut seen[index], true) {
            twice += 1;
        }
        accounted += 1;
        match result {
            Ok(()) => ok += 1,
            Err(error) => *failures.entry(format!("{:?}", error.kind())).or_default() += 1,
        }
        if [50_000, 100_000, 200_000].contains(&accounted) {
            checkpoints.push((accounted, peak_rss_mb()));
        }
    };
    let batch = fetcher.batch((0..count).map(|i| format!("{base}{i}")));
    let stats = if bytes {
        batch.for_each_bytes(|index, result| account(index, result.map(drop)))
    } else {
        batch.for_each::<parfetch::Value>(|index, result| account(index, result.map(drop)))
    };
    let elapsed = started.elapsed();
    drop(fetcher); // its idle connections close with it
    let fds_after = open_fds();
    drop(server.stdin.take());
    server.wait()?;

    println!(
        "soak: {count} requests at concurrency 128, ~5% injected faults, in {:.1} s ({:.0} req/s)",
        elapsed.as_secs_f64(),
        stats.requests_per_second()
    );
    println!(
        "  results accounted     {accounted} of {count} (each index once: {})",
        twice == 0 && seen.iter().all(|&s| s)
    );
    println!(
        "  ok / failed           {ok} / {} {failures:?}",
        accounted - ok
    );
    println!("  retries               {}", stats.stats.retries);
    for host in &stats.stats.hosts {
        println!(
            "  host {}  limit {} (lowest {}), {} overloaded, breaker opened {}",
            host.host, host.limit, host.lowest_limit, host.overloaded, host.breaker_opened
        );
    }
    println!("  open fds before/after {fds_before} / {fds_after}");
    for (at, rss) in &checkpoints {
        println!("  peak RSS at {at:>7}   {rss:.1} MB");
    }
    println!("  panics                {}", panics.load(Ordering::SeqCst));
    let flat = checkpoints
        .first()
        .zip(checkpoints.last())
        .is_none_or(|(first, last)| last.1 <= first.1 * 1.10);
    let good = accounted == count
        && twice == 0
        && fds_after <= fds_before
        && flat
        && panics.load(Ordering::SeqCst) == 0;
    println!(
        "  verdict               {}",
        if good { "PASS" } else { "FAIL" }
    );
    if good {
        Ok(())
    } else {
        Err("the soak found a broken promise".into())
    }
}
