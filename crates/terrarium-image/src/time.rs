//! [`Epoch`]: the single fixed timestamp of a reproducible build.

use std::fmt;

/// The environment variable that fixes build timestamps (reproducible-builds.org).
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// Seconds since 1970-01-01T00:00:00Z: every layer entry's mtime and the config's `created`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(u64);

/// `SOURCE_DATE_EPOCH` is set but is not a number of seconds.
#[derive(Debug, thiserror::Error)]
#[error("SOURCE_DATE_EPOCH=`{0}` is not a non-negative whole number of seconds since 1970")]
pub struct BadSourceDateEpoch(String);

impl Epoch {
    /// The given number of seconds since 1970.
    pub fn from_seconds(seconds: u64) -> Self {
        Self(seconds)
    }

    /// `SOURCE_DATE_EPOCH` when set, else 0 (1970-01-01).
    pub fn from_env() -> Result<Self, BadSourceDateEpoch> {
        match std::env::var(SOURCE_DATE_EPOCH) {
            Ok(text) if text.trim().is_empty() => Ok(Self(0)),
            Ok(text) => text
                .trim()
                .parse()
                .map(Self)
                .map_err(|_| BadSourceDateEpoch(text)),
            Err(std::env::VarError::NotPresent) => Ok(Self(0)),
            Err(std::env::VarError::NotUnicode(text)) => {
                Err(BadSourceDateEpoch(text.to_string_lossy().into_owned()))
            }
        }
    }

    /// Seconds since 1970.
    pub fn seconds(self) -> u64 {
        self.0
    }

    /// RFC 3339 in UTC, e.g. `1970-01-01T00:00:00Z`.
    pub fn rfc3339(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0 / 86_400;
        let secs = self.0 % 86_400;
        // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(Epoch::from_seconds(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Epoch::from_seconds(1_700_000_000).rfc3339(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            Epoch::from_seconds(951_782_400).rfc3339(),
            "2000-02-29T00:00:00Z"
        );
    }
}
