//! Fetch strategies compared: 500 GETs of 2 KB JSON from a keep-alive
//! loopback server (the tests' and the demo's), with 0 ms and 10 ms of
//! simulated latency.
//!
//! - parfetch `fetch_many` at concurrency 1, 8, 32, 128;
//! - sequential ureq with one agent (the synchronous baseline);
//! - one std thread per request;
//! - rayon + a default-config ureq agent (3 idle connections per host: what
//!   the pool sizing buys);
//! - reqwest + tokio with `buffer_unordered(C)` (the async reference).
//!
//! Every strategy parses each body into a generic JSON value and drops it.
//! Run: `cargo bench --bench fetch`; chart: `cargo run -p parfetch-benches
//! --example chart`.

#[path = "../tests/it/server.rs"]
mod server;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::StreamExt;
use rayon::prelude::*;

use server::{json_doc, Reply, TestServer};

const REQUESTS: usize = 500;
const CONCURRENCY: [usize; 4] = [1, 8, 32, 128];

fn start(latency: Duration) -> (TestServer, Vec<String>) {
    let doc = json_doc(1, 2048);
    let server = TestServer::start(move |_| {
        let reply = Reply::json(200, doc.clone());
        if latency.is_zero() {
            reply
        } else {
            Reply::Delay(latency, Box::new(reply))
        }
    });
    let urls = (0..REQUESTS)
        .map(|i| server.url(&format!("/doc/{i}")))
        .collect();
    (server, urls)
}

fn parsed(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok()
}

fn ureq_get(agent: &ureq::Agent, url: &str) -> bool {
    agent
        .get(url)
        .call()
        .ok()
        .and_then(|mut response| response.body_mut().read_to_vec().ok())
        .is_some_and(|body| parsed(&body))
}

fn strategies(c: &mut Criterion) {
    for latency_ms in [0, 10] {
        let (_server, urls) = start(Duration::from_millis(latency_ms));
        let mut group = c.benchmark_group(format!("fetch_{latency_ms}ms"));
        group.throughput(Throughput::Elements(REQUESTS as u64));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(if latency_ms == 0 { 4 } else { 8 }));

        for concurrency in CONCURRENCY {
            let fetcher = parfetch::Fetcher::builder()
                .concurrency(concurrency)
                .build()
                .expect("fetcher");
            group.bench_with_input(
                BenchmarkId::new("parfetch", concurrency),
                &urls,
                |b, urls| {
                    b.iter(|| black_box(fetcher.fetch_many::<parfetch::Value>(urls)));
                },
            );

            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(concurrency)
                .build()
                .expect("pool");
            let default_agent = ureq::Agent::new_with_defaults();
            group.bench_with_input(
                BenchmarkId::new("rayon_ureq_default", concurrency),
                &urls,
                |b, urls| {
                    b.iter(|| {
                        pool.install(|| {
                            urls.par_iter()
                                .with_max_len(1)
                                .filter(|url| ureq_get(&default_agent, url))
                                .count()
                        })
                    });
                },
            );

            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(concurrency)
                .build()
                .expect("client");
            group.bench_with_input(
                BenchmarkId::new("reqwest_tokio", concurrency),
                &urls,
                |b, urls| {
                    b.iter(|| {
                        runtime.block_on(async {
                            futures_util::stream::iter(urls)
                                .map(|url| {
                                    let client = client.clone();
                                    async move {
                                        let body = client
                                            .get(url)
                                            .send()
                                            .await
                                            .ok()?
                                            .bytes()
                                            .await
                                            .ok()?;
                                        parsed(&body).then_some(())
                                    }
                                })
                                .buffer_unordered(concurrency)
                                .filter(|done| std::future::ready(done.is_some()))
                                .count()
                                .await
                        })
                    });
                },
            );
        }

        let agent = ureq::Agent::new_with_defaults();
        group.bench_with_input(BenchmarkId::new("sequential_ureq", 1), &urls, |b, urls| {
            b.iter(|| urls.iter().filter(|url| ureq_get(&agent, url)).count());
        });

        let shared_agent = ureq::Agent::new_with_defaults();
        group.bench_with_input(
            BenchmarkId::new("thread_per_request", REQUESTS),
            &urls,
            |b, urls| {
                b.iter(|| {
                    std::thread::scope(|scope| {
                        let handles: Vec<_> = urls
                            .iter()
                            .map(|url| scope.spawn(|| ureq_get(&shared_agent, url)))
                            .collect();
                        handles
                            .into_iter()
                            .map(std::thread::ScopedJoinHandle::join)
                            .filter(|joined| matches!(joined, Ok(true)))
                            .count()
                    })
                });
            },
        );
        group.finish();
    }
}

criterion_group!(benches, strategies);
criterion_main!(benches);
