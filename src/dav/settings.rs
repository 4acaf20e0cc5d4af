//! Settings types of the WebDAV layer (the configuration module fills
//! them in from file, environment and flags).

use anyhow::bail;
use serde::Deserialize;

/// What a WebDAV DELETE does upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteMode {
    /// Move into Cloudreve's trash (what Cloudreve's own /dav does).
    #[default]
    Trash,
    /// Delete permanently, skipping the trash.
    Permanent,
}

impl std::str::FromStr for DeleteMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trash" => Ok(Self::Trash),
            "permanent" => Ok(Self::Permanent),
            other => bail!("delete mode must be `trash` or `permanent`, not `{other}`"),
        }
    }
}

/// What the gateway does with junk files (see `dav::junk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JunkPolicy {
    /// `park` for accounts with Cloudreve's "disable system files" option,
    /// `off` for the others.
    #[default]
    Auto,
    /// No special treatment.
    Off,
    /// Stored upstream but left out of listings.
    Hide,
    /// Kept in the gateway's state directory, never sent upstream.
    Park,
    /// Writes refused with 403.
    Reject,
}

impl std::str::FromStr for JunkPolicy {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            "hide" => Ok(Self::Hide),
            "park" => Ok(Self::Park),
            "reject" => Ok(Self::Reject),
            other => {
                bail!("junk_files must be `auto`, `off`, `hide`, `park` or `reject`, not `{other}`")
            }
        }
    }
}
