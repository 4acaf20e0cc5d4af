#![no_main]
//! libFuzzer target: see `cloudreve_dav::fuzzing::xml`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudreve_dav::fuzzing::xml(data));
