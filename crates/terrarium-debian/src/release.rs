//! The signed `Release` (the text inside `InRelease`): which suite it describes, when it
//! expires, and the sha256 and size of every index file.

use std::collections::BTreeMap;

use terrarium_image::Digest;

use crate::deb822;
use crate::error::Error;

/// An index file listed in a Release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexFile {
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256.
    pub sha256: Digest,
}

/// A verified Release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `Suite:` (e.g. `oldstable`).
    pub suite: String,
    /// `Codename:` (e.g. `bookworm` or `bookworm-security`).
    pub codename: String,
    /// `Date:` as written.
    pub date: String,
    /// `Valid-Until:` as written, when present.
    pub valid_until: Option<String>,
    /// Whether files can be fetched under `by-hash/SHA256/<hex>`.
    pub acquire_by_hash: bool,
    files: BTreeMap<String, IndexFile>,
}

impl Release {
    /// Parse the signed text of an InRelease; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, Error> {
        let stanzas = deb822::parse_all(text, file)?;
        let parse_err = |message: String| Error::Parse {
            file: file.to_owned(),
            message,
        };
        let stanza = stanzas
            .first()
            .ok_or_else(|| parse_err("empty Release".into()))?;
        let field = |name: &str| stanza.get(name).map(str::to_owned);
        let mut files = BTreeMap::new();
        for line in stanza.get("SHA256").unwrap_or("").lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [hash, size, name] = parts[..] else {
                return Err(parse_err(format!("malformed SHA256 line `{line}`")));
            };
            let sha256 = Digest::from_hex(hash).map_err(|err| parse_err(err.to_string()))?;
            let size = size
                .parse()
                .map_err(|_| parse_err(format!("bad size in SHA256 line `{line}`")))?;
            files.insert(name.to_owned(), IndexFile { size, sha256 });
        }
        if files.is_empty() {
            return Err(parse_err("Release lists no SHA256 checksums".into()));
        }
        Ok(Self {
            suite: field("Suite").unwrap_or_default(),
            codename: field("Codename")
                .ok_or_else(|| parse_err("Release has no Codename".into()))?,
            date: field("Date").unwrap_or_default(),
            valid_until: field("Valid-Until"),
            acquire_by_hash: stanza
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            files,
        })
    }

    /// The listed file at `path` (relative to `dists/<suite>/`).
    pub fn file(&self, path: &str) -> Option<&IndexFile> {
        self.files.get(path)
    }

    /// Seconds since 1970 when the Release expires, when it has `Valid-Until`.
    pub fn valid_until_epoch(&self) -> Result<Option<u64>, Error> {
        self.valid_until
            .as_deref()
            .map(|text| {
                parse_rfc2822(text).ok_or_else(|| Error::Parse {
                    file: "Release".into(),
                    message: format!("bad Valid-Until date `{text}`"),
                })
            })
            .transpose()
    }
}

/// Parse dates like `Sat, 11 Jul 2026 10:16:37 UTC` into seconds since 1970.
fn parse_rfc2822(text: &str) -> Option<u64> {
    let text = text.split_once(',').map_or(text, |(_, rest)| rest).trim();
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [day, month, year, time, zone] = parts[..] else {
        return None;
    };
    if !matches!(zone, "UTC" | "GMT" | "+0000" | "Z") {
        return None;
    }
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as u64
        + 1;
    let (day, year): (u64, u64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms[..] else { return None };
    if year < 1970 || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let (y, mp) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates() {
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_rfc2822("Tue, 14 Nov 2023 22:13:20 UTC"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc2822("Tue, 14 Nov 2023 22:13:20 +0200"), None);
        assert_eq!(parse_rfc2822("garbage"), None);
    }

    #[test]
    fn parses_release() {
        let text = "Origin: Debian\nCodename: bookworm\nAcquire-By-Hash: yes\nSHA256:\n 0000000000000000000000000000000000000000000000000000000000000000 12 main/binary-amd64/Packages.xz\n";
        let release = Release::parse(text, "InRelease").unwrap();
        assert!(release.acquire_by_hash);
        assert_eq!(
            release.file("main/binary-amd64/Packages.xz").unwrap().size,
            12
        );
        assert!(Release::parse("Codename: x\nSHA256:\n zz 1 f\n", "InRelease").is_err());
        assert!(Release::parse("Codename: x\n", "InRelease").is_err());
    }
}
