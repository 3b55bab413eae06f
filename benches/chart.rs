//! Draws the chart and table of docs/performance.md from `cargo bench
//! --bench fetch`.
//!
//! Reads criterion's estimates under `target/criterion/fetch_{0,10}ms/`
//! (in `CARGO_TARGET_DIR` when set, as criterion does), writes
//! `docs/fetch-throughput.svg` (throughput against concurrency for each
//! strategy, one panel per latency), and prints a Markdown table. Both
//! paths are the workspace's, wherever the command runs.
//!
//! ```text
//! cargo bench --bench fetch && cargo run -p parfetch-benches --example chart
//! ```

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

/// Requests per benchmark iteration (`benches/fetch.rs`).
const REQUESTS: f64 = 500.0;
const STRATEGIES: [&str; 5] = [
    "parfetch",
    "reqwest_tokio",
    "rayon_ureq_default",
    "sequential_ureq",
    "thread_per_request",
];

/// Requests per second by strategy and concurrency, for one latency.
type Figures = BTreeMap<&'static str, Vec<(u32, f64)>>;

/// The workspace's root (this crate is its `benches/`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(latency_ms: u32) -> Result<Figures, Box<dyn Error>> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    let group = target
        .join("criterion")
        .join(format!("fetch_{latency_ms}ms"));
    let mut figures = Figures::new();
    for strategy in STRATEGIES {
        let Ok(entries) = std::fs::read_dir(group.join(strategy)) else {
            continue;
        };
        let mut points = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Ok(concurrency) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let estimates: serde_json::Value =
                serde_json::from_slice(&std::fs::read(entry.path().join("new/estimates.json"))?)?;
            let nanos = estimates["mean"]["point_estimate"]
                .as_f64()
                .ok_or("no mean estimate")?;
            points.push((concurrency, REQUESTS / (nanos / 1e9)));
        }
        points.sort_by_key(|&(concurrency, _)| concurrency);
        figures.insert(strategy, points);
    }
    if figures.is_empty() {
        return Err(format!(
            "no results under {}: run `cargo bench --bench fetch` first",
            group.display()
        )
        .into());
    }
    Ok(figures)
}

fn main() -> Result<(), Box<dyn Error>> {
    let panels = [(0, read(0)?), (10, read(10)?)];
    let path = workspace().join("docs/fetch-throughput.svg");
    let root = SVGBackend::new(&path, (1000, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, (latency, figures)) in root.split_evenly((1, 2)).iter().zip(&panels) {
        let top = figures
            .values()
            .flatten()
            .map(|&(_, rate)| rate)
            .fold(0.0_f64, f64::max);
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("500 × 2 KB JSON, {latency} ms server latency"),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d((1u32..600u32).log_scale(), 0.0..top * 1.1)?;
        chart
            .configure_mesh()
            .x_desc("concurrency")
            .y_desc("requests / s")
            .y_label_formatter(&|rate| format!("{rate:.0}"))
            .draw()?;
        for (i, (strategy, points)) in figures.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(*strategy)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(
                points
                    .iter()
                    .map(|&point| Circle::new(point, 4, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            // Out of the way of the curves: they peak at the left at 0 ms.
            .position(if *latency == 0 {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::UpperLeft
            })
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    eprintln!("wrote {}", path.display());

    println!("| strategy | concurrency | 0 ms: req/s | 10 ms: req/s |");
    println!("|---|---:|---:|---:|");
    let (zero, ten) = (&panels[0].1, &panels[1].1);
    for strategy in STRATEGIES {
        for &(concurrency, rate) in zero.get(strategy).into_iter().flatten() {
            let slow = ten
                .get(strategy)
                .and_then(|points| points.iter().find(|(c, _)| *c == concurrency))
                .map_or(String::from("–"), |(_, rate)| format!("{rate:.0}"));
            println!("| {strategy} | {concurrency} | {rate:.0} | {slow} |");
        }
    }
    Ok(())
}
