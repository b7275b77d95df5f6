//! Fuzz target: sensor records; see `buildwatch::hostile::records` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| buildwatch::hostile::records(data));
