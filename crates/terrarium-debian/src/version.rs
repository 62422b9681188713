//! Debian package versions (`[epoch:]upstream[-revision]`) compared as dpkg compares them.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Debian version string with dpkg's ordering.
#[derive(Clone, Eq)]
pub struct Version {
    text: String,
    epoch: u64,
    upstream_start: usize,
    revision_start: Option<usize>,
}

/// A string that is not a Debian version.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a Debian version ([epoch:]upstream[-revision])")]
pub struct BadVersion(String);

impl Version {
    /// Parse `text`.
    pub fn parse(text: &str) -> Result<Self, BadVersion> {
        let bad = || BadVersion(text.to_owned());
        let text = text.trim();
        if text.is_empty() || text.contains(char::is_whitespace) {
            return Err(bad());
        }
        let (epoch, upstream_start) = match text.split_once(':') {
            Some((epoch, _)) => (epoch.parse().map_err(|_| bad())?, epoch.len() + 1),
            None => (0, 0),
        };
        let revision_start = text[upstream_start..]
            .rfind('-')
            .map(|i| upstream_start + i + 1);
        let upstream_end = revision_start.map_or(text.len(), |start| start - 1);
        let upstream = &text[upstream_start..upstream_end];
        if upstream.is_empty() || !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(Self {
            text: text.to_owned(),
            epoch,
            upstream_start,
            revision_start,
        })
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The upstream version: without epoch and Debian revision (`3.13.5` of `3.13.5-2`).
    pub fn upstream(&self) -> &str {
        let end = self
            .revision_start
            .map_or(self.text.len(), |start| start - 1);
        &self.text[self.upstream_start..end]
    }

    fn revision(&self) -> &str {
        self.revision_start.map_or("", |start| &self.text[start..])
    }
}

fn order(c: u8) -> i32 {
    match c {
        b'~' => -1,
        c if c.is_ascii_alphabetic() => i32::from(c),
        c => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`.
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = if i < a.len() { order(a[i]) } else { 0 };
            let bc = if j < b.len() { order(b[j]) } else { 0 };
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = i32::from(a[i]) - i32::from(b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream(), other.upstream()))
            .then_with(|| compare_part(self.revision(), other.revision()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Version::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn compares_like_dpkg() {
        let ascending = [
            "1.0~rc1",
            "1.0",
            "1.0-1",
            "1.0-1+deb12u1",
            "1.0-2",
            "1.0a",
            "1.0.1",
            "1.10",
            "2.36-9+deb12u9",
            "2.36-9+deb12u10",
            "1:0.1",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0"), v("1.00"));
        assert_eq!(v("0:1.0"), v("1.0"));
        assert!(v("3.11.2-6+deb12u6") > v("3.11.2-6"));
    }

    #[test]
    fn rejects_bad_versions() {
        for bad in ["", "a1", "x:1", "1 2", "-1"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }
}
