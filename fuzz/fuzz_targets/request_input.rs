//! See `parfetch::fuzz::request_input` for what this target feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parfetch::fuzz::request_input(data));
