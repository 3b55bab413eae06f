//! How long counting the URL lines of a file takes, for the progress bar's
//! total: `cargo run --release --features cli --example count_lines -- FILE`
//! (with no FILE, 10 million lines are written to a temporary file first).

// Figures are printed, not computed on.
#![allow(clippy::cast_precision_loss)]

#[path = "../src/bin/parfetch/count.rs"]
mod count;

use std::io::Write;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let path = if let Some(path) = std::env::args().nth(1) {
        std::path::PathBuf::from(path)
    } else {
        let path = std::env::temp_dir().join("parfetch-10M-urls.txt");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for i in 0..10_000_000u64 {
            writeln!(file, "https://cdn.example.com/laps/{i}.json")?;
        }
        file.flush()?;
        path
    };
    let bytes = std::fs::metadata(&path)?.len();
    for _ in 0..3 {
        let started = Instant::now();
        let lines = count::url_lines(std::fs::File::open(&path)?, 0, 1)?;
        let elapsed = started.elapsed();
        println!(
            "{lines} URL lines ({:.0} MB) counted in {:.0} ms: {:.1} million lines/s",
            bytes as f64 / 1e6,
            elapsed.as_secs_f64() * 1e3,
            lines as f64 / elapsed.as_secs_f64() / 1e6
        );
    }
    Ok(())
}
