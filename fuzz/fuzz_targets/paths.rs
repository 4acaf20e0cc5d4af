#![no_main]
//! libFuzzer target: see `cloudreve_dav::fuzzing::paths`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudreve_dav::fuzzing::paths(data));
