//! See `parfetch::fuzz::response_head` for what this target feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parfetch::fuzz::response_head(data));
