//! The figures as serde writes them (`serde::Serialize` with serde_json):
//! `Stats`, `HostStats`, `BreakerState`, `Latency`, `Progress` and
//! `BatchStats`, each under the field names of the Rust struct, durations
//! in seconds.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use crate::server::Reply;
use crate::support::serve;

/// The keys of the JSON object `json`, sorted.
fn keys(json: &Json) -> BTreeSet<&str> {
    json.as_object()
        .unwrap_or_else(|| panic!("not an object: {json}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

#[test]
fn the_figures_serialise_under_their_field_names() {
    let server = serve(vec![
        ("/ok", Reply::json(200, "[1,2,3]")),
        ("/busy", Reply::json(429, r#"{"error":"slow down"}"#)),
    ]);
    let fetcher = crate::quick().max_retries(0).build().unwrap();
    let mut last = None;
    let batch = fetcher
        .batch([server.url("/ok"), server.url("/busy")])
        .on_progress(|progress| last = Some(*progress))
        .for_each::<parfetch::Value>(|_, _| {});
    let stats = serde_json::to_value(fetcher.stats()).unwrap();
    assert_eq!(
        keys(&stats),
        set(&[
            "requests",
            "attempts",
            "retries",
            "successes",
            "failures",
            "bytes_received",
            "connections_opened",
            "stale_connections",
            "cache_hits",
            "cache_misses",
            "revalidations",
            "cache_bytes",
            "gate_waits",
            "gate_wait_time",
            "latency",
            "hosts",
            "failures_by_kind",
        ])
    );
    assert_eq!(
        (&stats["requests"], &stats["successes"], &stats["failures"]),
        (&Json::from(2), &Json::from(1), &Json::from(1))
    );
    assert_eq!(stats["bytes_received"], 7);
    // Only the kinds that occurred, by name.
    assert_eq!(
        stats["failures_by_kind"],
        serde_json::json!({ "Status": 1 })
    );
    assert!(stats["gate_wait_time"].is_f64(), "{stats}");

    let latency = &stats["latency"];
    assert_eq!(keys(latency), set(&["p50", "p95", "p99", "max"]));
    // Seconds: two loopback requests take more than nothing and far less
    // than a minute.
    let max = latency["max"].as_f64().expect("seconds, a float");
    assert!(max > 0.0 && max < 60.0, "{latency}");

    let host = stats["hosts"]
        .as_array()
        .and_then(|hosts| hosts.first())
        .unwrap_or_else(|| panic!("the host that answered 429 is listed: {stats}"));
    assert_eq!(
        keys(host),
        set(&[
            "host",
            "limit",
            "lowest_limit",
            "highest_limit",
            "throttled",
            "overloaded",
            "pauses",
            "breaker_opened",
            "retries_refused",
            "breaker",
        ])
    );
    assert_eq!(host["throttled"], 1);
    assert_eq!(host["breaker"], "Closed");
    assert_eq!(
        serde_json::to_value(parfetch::BreakerState::HalfOpen).unwrap(),
        "HalfOpen"
    );

    let progress = serde_json::to_value(last.expect("a final report")).unwrap();
    assert_eq!(
        keys(&progress),
        set(&[
            "requests",
            "total",
            "successes",
            "failures",
            "retries",
            "bytes_received",
            "elapsed",
        ])
    );
    assert_eq!(
        (
            &progress["requests"],
            &progress["total"],
            &progress["failures"]
        ),
        (&Json::from(2), &Json::from(2), &Json::from(1))
    );
    assert!(progress["elapsed"].is_f64(), "{progress}");

    let batch = serde_json::to_value(&batch).unwrap();
    assert_eq!(keys(&batch), set(&["stats", "elapsed"]));
    assert_eq!(keys(&batch["stats"]), keys(&stats));
    assert_eq!(batch["stats"]["requests"], 2);
    let elapsed = batch["elapsed"].as_f64().expect("seconds, a float");
    assert!(elapsed > 0.0 && elapsed < 60.0, "{batch}");
}
