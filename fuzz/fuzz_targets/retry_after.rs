//! See `parfetch::fuzz::retry_after` for what this target feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parfetch::fuzz::retry_after(data));
