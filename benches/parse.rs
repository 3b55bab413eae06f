//! JSON parse paths compared, in bytes per second:
//! - serde_json into its `Value`;
//! - simd-json into its owned value, with reused buffers (parfetch's `Value`
//!   path);
//! - serde_json into a typed struct;
//! - simd-json's serde deserializer into the same struct, with reused
//!   buffers (parfetch's typed path, as in `src/json.rs`);
//! - simd-json-derive into the same struct: simd-json's own typed path,
//!   which needs its own derive rather than serde's;
//! - simd-json's tape alone, no Rust value built: the ceiling any typed
//!   path on simd-json could reach.
//!
//! Documents: generated lap telemetry (2 KB and 1 MB), and the standard
//! twitter.json, citm_catalog.json and canada.json from `../shared/corpus/`
//! when that folder exists beside the checkout (skipped quietly otherwise).
//! Run: `cargo bench --bench parse`.

// The structs' field names are the documents'.
#![allow(clippy::struct_field_names)]

#[path = "../tests/it/server.rs"]
mod server;

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use simd_json::Buffers;

#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct Stint {
    index: u64,
    driver: String,
    laps: Vec<Lap>,
}

#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct Lap {
    lap: u32,
    time: f64,
    sector: Vec<f64>,
}

/// The parts of a Twitter search response that scripts read.
#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct Twitter {
    statuses: Vec<Status>,
    search_metadata: SearchMetadata,
}

#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct Status {
    id: u64,
    id_str: String,
    text: String,
    created_at: String,
    source: String,
    truncated: bool,
    user: User,
    retweet_count: u64,
    favorite_count: u64,
    lang: String,
    entities: Entities,
    in_reply_to_status_id: Option<u64>,
}

#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct User {
    id: u64,
    name: String,
    screen_name: String,
    location: String,
    description: String,
    followers_count: u64,
    friends_count: u64,
    statuses_count: u64,
    created_at: String,
    verified: bool,
}

#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct Entities {
    hashtags: Vec<Hashtag>,
    urls: Vec<Link>,
    user_mentions: Vec<Mention>,
}

#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct Hashtag {
    text: String,
    indices: Vec<u64>,
}

#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct Link {
    url: String,
    expanded_url: String,
    indices: Vec<u64>,
}

#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct Mention {
    screen_name: String,
    name: String,
    id: u64,
    indices: Vec<u64>,
}

#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct SearchMetadata {
    max_id: u64,
    count: u64,
    query: String,
}

/// canada.json: a GeoJSON feature collection of polygons.
#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct Canada {
    features: Vec<Feature>,
}

#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct Feature {
    geometry: Geometry,
}

#[derive(Deserialize, simd_json_derive::Deserialize)]
#[allow(dead_code)]
struct Geometry {
    coordinates: Vec<Vec<[f64; 2]>>,
}

/// A document and the typed parse that fits it, if any.
struct Doc {
    name: String,
    bytes: Vec<u8>,
    typed: Option<Typed>,
}

/// Typed parses through each parser, as plain functions.
struct Typed {
    serde: fn(&[u8]) -> bool,
    simd: fn(&mut [u8], &mut Buffers) -> bool,
    simd_derive: fn(&mut [u8], &mut Buffers) -> bool,
}

fn typed<T>() -> Typed
where
    T: DeserializeOwned + for<'input> simd_json_derive::Deserialize<'input>,
{
    Typed {
        serde: |bytes| serde_json::from_slice::<T>(bytes).is_ok(),
        simd: |bytes, buffers| {
            simd_json::Deserializer::from_slice_with_buffers(bytes, buffers)
                .is_ok_and(|mut deserializer| T::deserialize(&mut deserializer).is_ok())
        },
        simd_derive: |bytes, buffers| {
            <T as simd_json_derive::Deserialize>::from_slice_with_buffers(bytes, buffers).is_ok()
        },
    }
}

fn documents() -> Vec<Doc> {
    let mut docs = vec![
        Doc {
            name: "laps_2KB".into(),
            bytes: server::json_doc(1, 2 << 10),
            typed: Some(typed::<Stint>()),
        },
        Doc {
            name: "laps_1MB".into(),
            bytes: server::json_doc(1, 1 << 20),
            typed: Some(typed::<Stint>()),
        },
    ];
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    for (file, typed) in [
        ("twitter.json", Some(typed::<Twitter>())),
        ("citm_catalog.json", None),
        ("canada.json", Some(typed::<Canada>())),
    ] {
        if let Ok(bytes) = std::fs::read(corpus.join(file)) {
            docs.push(Doc {
                name: file.trim_end_matches(".json").into(),
                bytes,
                typed,
            });
        }
    }
    docs
}

fn parse_paths(c: &mut Criterion) {
    // parfetch keeps simd-json's scratch buffers per thread; so do these.
    let mut buffers = Buffers::new(16 << 10);
    for doc in documents() {
        let mut group = c.benchmark_group(format!("parse_{}", doc.name));
        group.throughput(Throughput::Bytes(doc.bytes.len() as u64));
        group.sample_size(if doc.bytes.len() > 100_000 { 20 } else { 50 });
        let bytes = &doc.bytes;
        // simd-json parses in place: each iteration gets a fresh copy, and
        // the serde_json runs pay for the same copy to keep it fair.
        let mut bench = |name: &str, parse: &mut dyn FnMut(&mut [u8]) -> bool| {
            group.bench_with_input(BenchmarkId::new(name, &doc.name), bytes, |b, bytes| {
                b.iter(|| {
                    let mut copy = bytes.clone();
                    black_box(parse(&mut copy))
                });
            });
        };
        bench("serde_json_value", &mut |bytes| {
            serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
        });
        bench("simd_owned_value", &mut |bytes| {
            simd_json::owned::to_value_with_buffers(bytes, &mut buffers).is_ok()
        });
        if let Some(typed) = &doc.typed {
            bench("serde_json_typed", &mut |bytes| (typed.serde)(bytes));
            bench("simd_typed", &mut |bytes| (typed.simd)(bytes, &mut buffers));
            bench("simd_derive_typed", &mut |bytes| {
                (typed.simd_derive)(bytes, &mut buffers)
            });
        }
        bench("simd_tape_only", &mut |bytes| {
            simd_json::Deserializer::from_slice_with_buffers(bytes, &mut buffers).is_ok()
        });
        group.finish();
    }
}

criterion_group!(benches, parse_paths);
criterion_main!(benches);
