//! Property tests of the request guard: it never panics, and whatever it
//! accepts is free of traversal, separators and control characters.

use cloudreve_dav::front::guard::{self, DEFAULT_MAX_HEADER_BYTES};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use proptest::prelude::*;

proptest! {
    #[test]
    fn accepted_paths_are_clean(raw in "/[a-zA-Z0-9%./\\\\\\x00-\\x1f ]{0,40}") {
        if guard::check_path(&raw).is_ok() {
            let decoded = percent_decode_str(&raw).decode_utf8();
            prop_assert!(decoded.is_ok());
            let decoded = decoded.unwrap_or_default();
            prop_assert!(!decoded.contains('\\'));
            prop_assert!(!decoded.chars().any(char::is_control));
            prop_assert!(decoded.split('/').all(|s| s != "." && s != ".."));
            // No encoded slash: decoding did not create new segments.
            prop_assert_eq!(decoded.matches('/').count(), raw.matches('/').count());
        }
    }

    #[test]
    fn encoded_ordinary_names_are_accepted(names in proptest::collection::vec("[^/\\\\\\x00-\\x1f\\x7f]{1,12}", 0..5)) {
        prop_assume!(names.iter().all(|n| n != "." && n != ".."));
        let path: String = names
            .iter()
            .map(|n| format!("/{}", utf8_percent_encode(n, NON_ALPHANUMERIC)))
            .collect();
        let path = if path.is_empty() { "/".to_owned() } else { path };
        prop_assert!(guard::check_path(&path).is_ok(), "{}", path);
    }

    #[test]
    fn arbitrary_headers_never_panic(
        name in prop::sample::select(vec!["if", "if-match", "if-none-match", "depth", "destination", "host"]),
        value in "[ -~]{0,60}",
    ) {
        let req = http::Request::builder()
            .method("PROPFIND")
            .uri("/a")
            .header("host", "h")
            .header(name, value.as_str())
            .body(());
        if let Ok(req) = req {
            let _ = guard::check_syntax(&req, DEFAULT_MAX_HEADER_BYTES);
            let _ = guard::check_policy(&req);
        }
    }
}
