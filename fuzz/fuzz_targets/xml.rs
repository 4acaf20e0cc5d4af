#![no_main]
//! libFuzzer target: see `cloudreve_dav::fuzzing::xml`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cloudreve_dav::front::auth::parse_basic(&http::HeaderValue::from_bytes(data).unwrap_or(http::HeaderValue::from_static("")));
});
