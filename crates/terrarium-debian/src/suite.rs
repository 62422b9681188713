//! Which Debian: [`Distro`] (bullseye, bookworm, trixie, forky), [`Suite`] (a distro's release
//! or security pocket), [`Architecture`] and the [`Mirror`] to fetch from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Debian release terrarium builds images from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Distro {
    /// Debian 11, CPython 3.9: both are past their end of life (no more security fixes), and
    /// terrarium builds on it only for projects whose pins need a Python that old.
    Bullseye,
    /// Debian 12, CPython 3.11.
    Bookworm,
    /// Debian 13, CPython 3.13.
    Trixie,
    /// Debian 14 while it is testing, CPython 3.14 (its default `python3`). A moving target:
    /// `terrarium.lock` pins what a build got.
    Forky,
}

impl Distro {
    /// Every supported distro.
    pub const ALL: [Distro; 4] = [
        Distro::Bullseye,
        Distro::Bookworm,
        Distro::Trixie,
        Distro::Forky,
    ];

    /// The codename, e.g. `bookworm`.
    pub fn codename(self) -> &'static str {
        match self {
            Distro::Bullseye => "bullseye",
            Distro::Bookworm => "bookworm",
            Distro::Trixie => "trixie",
            Distro::Forky => "forky",
        }
    }

    /// The Debian version number, e.g. `12`.
    pub fn version_id(self) -> &'static str {
        match self {
            Distro::Bullseye => "11",
            Distro::Bookworm => "12",
            Distro::Trixie => "13",
            Distro::Forky => "14",
        }
    }

    /// The CPython `major.minor` the distro ships, e.g. `3.11`: the one place that knows
    /// which Debian release gives which Python.
    pub fn python_version(self) -> &'static str {
        match self {
            Distro::Bullseye => "3.9",
            Distro::Bookworm => "3.11",
            Distro::Trixie => "3.13",
            Distro::Forky => "3.14",
        }
    }

    /// The day Debian's security support for the distro ended (long-term support included),
    /// when it has: its packages no longer get security fixes.
    pub fn end_of_life(self) -> Option<&'static str> {
        match self {
            Distro::Bullseye => Some("2026-08-31"),
            Distro::Bookworm | Distro::Trixie | Distro::Forky => None,
        }
    }

    /// The CPython the distro ships as `(major, minor)`.
    pub fn python(self) -> (u64, u64) {
        let (major, minor) = self.python_version().split_once('.').unwrap_or_default();
        (
            major.parse().unwrap_or_default(),
            minor.parse().unwrap_or_default(),
        )
    }

    /// The distro that ships CPython `major.minor`, if terrarium builds on one.
    pub fn for_python(major: u64, minor: u64) -> Option<Distro> {
        Distro::ALL
            .into_iter()
            .find(|d| d.python() == (major, minor))
    }

    /// The packages a distroless-style Python runtime is resolved from: the interpreter, its
    /// standard library, time zones, /etc/services and friends, and the CA bundle.
    pub fn runtime_roots(self) -> Vec<String> {
        let python = self.python_version();
        vec![
            format!("python{python}-minimal"),
            format!("libpython{python}-stdlib"),
            "tzdata".into(),
            "netbase".into(),
            "ca-certificates".into(),
        ]
    }

    /// The suites packages come from, in increasing precedence: the release, then security
    /// updates.
    pub fn suites(self) -> [Suite; 2] {
        [
            Suite {
                distro: self,
                pocket: Pocket::Release,
            },
            Suite {
                distro: self,
                pocket: Pocket::Security,
            },
        ]
    }
}

impl fmt::Display for Distro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.codename())
    }
}

/// An unknown distro or suite name.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown Debian suite `{0}` (supported: bullseye, bullseye-security, bookworm, bookworm-security, trixie, trixie-security, forky, forky-security)"
)]
pub struct UnknownSuite(String);

impl FromStr for Distro {
    type Err = UnknownSuite;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Distro::ALL
            .into_iter()
            .find(|distro| distro.codename() == text)
            .ok_or_else(|| UnknownSuite(text.to_owned()))
    }
}

/// Which part of a distro's archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pocket {
    /// The release itself (with point-release updates), from the main archive.
    Release,
    /// Security updates, from the security archive.
    Security,
}

/// A suite: one signed `InRelease` with its own Packages indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Suite {
    /// The distro.
    pub distro: Distro,
    /// Release or security.
    pub pocket: Pocket,
}

impl Suite {
    /// The suite name as in `dists/<name>/`, e.g. `bookworm-security`.
    pub fn name(self) -> String {
        match self.pocket {
            Pocket::Release => self.distro.codename().to_owned(),
            Pocket::Security => format!("{}-security", self.distro.codename()),
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Suite {
    type Err = UnknownSuite;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (codename, pocket) = match text.strip_suffix("-security") {
            Some(codename) => (codename, Pocket::Security),
            None => (text, Pocket::Release),
        };
        let distro = codename
            .parse()
            .map_err(|_| UnknownSuite(text.to_owned()))?;
        Ok(Suite { distro, pocket })
    }
}

impl Serialize for Suite {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Suite {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Distro {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.codename())
    }
}

impl<'de> Deserialize<'de> for Distro {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A Debian machine architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// x86-64.
    Amd64,
    /// 64-bit ARM.
    Arm64,
}

impl Architecture {
    /// The Debian name, e.g. `amd64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Amd64 => "amd64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// The multiarch triplet, e.g. `x86_64-linux-gnu`.
    pub fn triplet(self) -> &'static str {
        match self {
            Architecture::Amd64 => "x86_64-linux-gnu",
            Architecture::Arm64 => "aarch64-linux-gnu",
        }
    }

    /// The machine name the kernel, Python's `platform.machine()` and wheel tags use
    /// (`x86_64`, `aarch64`).
    pub fn machine(self) -> &'static str {
        match self {
            Architecture::Amd64 => "x86_64",
            Architecture::Arm64 => "aarch64",
        }
    }

    /// The OCI platform of a Linux image for this architecture (`linux/amd64`, `linux/arm64`).
    pub fn platform(self) -> &'static str {
        match self {
            Architecture::Amd64 => "linux/amd64",
            Architecture::Arm64 => "linux/arm64",
        }
    }

    /// Every architecture terrarium builds images for.
    pub const ALL: [Architecture; 2] = [Architecture::Amd64, Architecture::Arm64];

    /// The architecture of the machine terrarium runs on (the one whose programs its sandbox
    /// can run); `None` on any other machine.
    pub fn host() -> Option<Architecture> {
        Architecture::ALL
            .into_iter()
            .find(|arch| arch.machine() == std::env::consts::ARCH)
    }
}

/// A platform that is not one terrarium builds for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a platform terrarium builds for (linux/amd64, linux/arm64)")]
pub struct UnknownPlatform(pub String);

impl FromStr for Architecture {
    type Err = UnknownPlatform;

    /// `linux/amd64`, `linux/arm64` (also `linux/arm64/v8`), or the bare architecture.
    fn from_str(text: &str) -> Result<Self, UnknownPlatform> {
        let trimmed = text.trim();
        let arch = trimmed.strip_prefix("linux/").unwrap_or(trimmed);
        match arch {
            "amd64" | "x86_64" => Ok(Architecture::Amd64),
            "arm64" | "arm64/v8" | "aarch64" => Ok(Architecture::Arm64),
            _ => Err(UnknownPlatform(text.to_owned())),
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the archives are: base URLs of the main and the security archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// Base URL of the main archive (`dists/`, `pool/` below it).
    pub main: String,
    /// Base URL of the security archive.
    pub security: String,
}

impl Default for Mirror {
    /// deb.debian.org over HTTPS (integrity comes from the signatures either way).
    fn default() -> Self {
        Self {
            main: "https://deb.debian.org/debian".into(),
            security: "https://deb.debian.org/debian-security".into(),
        }
    }
}

impl Mirror {
    /// The base URL serving `suite`.
    pub fn base(&self, suite: Suite) -> &str {
        let base = match suite.pocket {
            Pocket::Release => &self.main,
            Pocket::Security => &self.security,
        };
        base.trim_end_matches('/')
    }

    /// The URL of `path` (relative to the archive root) in `suite`'s archive.
    pub fn url(&self, suite: Suite, path: &str) -> String {
        format!("{}/{}", self.base(suite), path.trim_start_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_name_each_architecture() {
        for arch in Architecture::ALL {
            assert_eq!(arch.platform().parse::<Architecture>().unwrap(), arch);
            assert_eq!(arch.as_str().parse::<Architecture>().unwrap(), arch);
            assert_eq!(arch.machine().parse::<Architecture>().unwrap(), arch);
        }
        assert_eq!(
            "linux/arm64/v8".parse::<Architecture>().unwrap(),
            Architecture::Arm64
        );
        assert_eq!(Architecture::Arm64.machine(), "aarch64");
        for bad in ["linux/arm/v7", "windows/amd64", "linux/riscv64", ""] {
            let err = bad.parse::<Architecture>().unwrap_err().to_string();
            assert!(err.contains("linux/arm64"), "{err}");
        }
        assert_eq!(
            Architecture::host().map(Architecture::machine),
            Some(std::env::consts::ARCH)
        );
    }

    #[test]
    fn suite_names_round_trip() {
        for distro in Distro::ALL {
            for suite in distro.suites() {
                assert_eq!(suite.name().parse::<Suite>().unwrap(), suite);
            }
        }
        assert!("buster".parse::<Suite>().is_err());
        assert!("sid-security".parse::<Suite>().is_err());
        let mirror = Mirror::default();
        let security = Distro::Trixie.suites()[1];
        assert_eq!(
            mirror.url(security, "dists/trixie-security/InRelease"),
            "https://deb.debian.org/debian-security/dists/trixie-security/InRelease"
        );
    }

    #[test]
    fn each_distro_has_one_python() {
        for distro in Distro::ALL {
            let (major, minor) = distro.python();
            assert_eq!(format!("{major}.{minor}"), distro.python_version());
            assert_eq!(Distro::for_python(major, minor), Some(distro));
        }
        assert_eq!(Distro::for_python(3, 12), None);
    }
}
