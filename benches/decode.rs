//! Content decoders compared, in decoded bytes per second: gzip with
//! flate2 (parfetch's gzip path), zstd with the `zstd` crate (the C
//! library, parfetch's zstd path) and with `ruzstd` (pure Rust, the
//! alternative it was chosen over; `src/transport/encoding.rs` has the
//! figures). Each is fed the same document at its tool's default level
//! (gzip 6, zstd 3), as a server would send it.
//!
//! Documents: twitter.json, citm_catalog.json and canada.json from
//! `../shared/corpus/` when that folder exists beside the checkout, else a
//! generated 1 MB lap telemetry document.
//! Run: `cargo bench -p parfetch-benches --bench decode`.

#[path = "../tests/it/server.rs"]
mod server;

use std::hint::black_box;
use std::io::{Read, Write};
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn documents() -> Vec<(String, Vec<u8>)> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let mut docs: Vec<(String, Vec<u8>)> = ["twitter.json", "citm_catalog.json", "canada.json"]
        .iter()
        .filter_map(|file| {
            let bytes = std::fs::read(corpus.join(file)).ok()?;
            Some((file.trim_end_matches(".json").to_owned(), bytes))
        })
        .collect();
    if docs.is_empty() {
        docs.push(("laps_1MB".to_owned(), server::json_doc(1, 1 << 20)));
    }
    docs
}

/// Everything `reader` decodes.
fn drain(mut reader: impl Read) -> usize {
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    black_box(out.len())
}

fn decoders(c: &mut Criterion) {
    for (name, doc) in documents() {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&doc).unwrap();
        let gzip = gzip.finish().unwrap();
        let zstd = zstd::encode_all(&doc[..], 3).unwrap();
        println!(
            "{name}: {} bytes, {} as gzip, {} as zstd",
            doc.len(),
            gzip.len(),
            zstd.len()
        );
        let mut group = c.benchmark_group(format!("decode_{name}"));
        group.throughput(Throughput::Bytes(doc.len() as u64));
        group.sample_size(20);
        group.bench_function("gzip_flate2", |b| {
            b.iter(|| drain(flate2::read::MultiGzDecoder::new(&gzip[..])));
        });
        group.bench_function("zstd_c", |b| {
            b.iter(|| drain(zstd::stream::read::Decoder::with_buffer(&zstd[..]).unwrap()));
        });
        group.bench_function("zstd_ruzstd", |b| {
            b.iter(|| drain(ruzstd::decoding::StreamingDecoder::new(&zstd[..]).unwrap()));
        });
        group.finish();
    }
}

criterion_group!(benches, decoders);
criterion_main!(benches);
