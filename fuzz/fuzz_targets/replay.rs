//! Fuzz target: see `buildwatch::hostile::replay` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| buildwatch::hostile::replay(data));
