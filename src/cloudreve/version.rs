//! Which Cloudreve versions the gateway works with. The gateway is tested
//! against [`TESTED`]; anything from [`OLDEST_SUPPORTED`] on speaks the v4
//! API it relies on (the differences it meets on the way are handled in the
//! client, see `docs/UPSTREAM.md` §7). Older servers, Cloudreve v3 among
//! them, are refused at start with a clear message instead of failing
//! request by request.

/// The version every test runs against (`CLOUDREVE_BIN`) and the emulator
/// behaves as.
pub const TESTED: &str = "4.18.0";

/// The oldest version the gateway starts against.
pub const OLDEST_SUPPORTED: &str = "4.0.0";

/// What the gateway makes of an upstream's version string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// [`TESTED`] or newer.
    Tested,
    /// Supported, but older than [`TESTED`]: served, with a warning.
    Older,
    /// Refused; the message says why.
    Unsupported(String),
}

/// Parses the leading `major.minor.patch` of a version string such as
/// `4.18.0` or `4.18.0-pro` (missing parts count as 0).
pub fn parse(version: &str) -> Option<(u64, u64, u64)> {
    let core = version
        .trim()
        .trim_start_matches(['v', 'V'])
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>());
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    Some((major, minor, patch))
}

/// Classifies the version string `/site/ping` answered.
pub fn classify(version: &str) -> Support {
    let (Some(v), Some(oldest), Some(tested)) =
        (parse(version), parse(OLDEST_SUPPORTED), parse(TESTED))
    else {
        return Support::Unsupported(format!(
            "Cloudreve answered version {version:?}, which is not a version number"
        ));
    };
    if v < oldest {
        return Support::Unsupported(format!(
            "Cloudreve {version} is older than {OLDEST_SUPPORTED}, the oldest version this gateway supports (it needs the v4 API; tested with {TESTED})"
        ));
    }
    if v < tested {
        Support::Older
    } else {
        Support::Tested
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_classified() {
        assert_eq!(parse("4.18.0"), Some((4, 18, 0)));
        assert_eq!(parse("4.18.0-pro"), Some((4, 18, 0)));
        assert_eq!(parse("v4.2"), Some((4, 2, 0)));
        assert_eq!(parse("banana"), None);
        assert_eq!(classify("4.18.0"), Support::Tested);
        assert_eq!(classify("4.19.1"), Support::Tested);
        assert_eq!(classify("4.12.3"), Support::Older);
        assert!(matches!(classify("3.8.3"), Support::Unsupported(m) if m.contains("4.0.0")));
        assert!(matches!(classify(""), Support::Unsupported(_)));
    }
}
