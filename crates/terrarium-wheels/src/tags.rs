//! The target an image's wheels must run on, and wheel file names with their compatibility tags.

use std::fmt;
use std::str::FromStr;

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};
use terrarium_debian::Architecture;

use crate::error::Error;

/// Where wheels will run: Linux on one architecture (x86_64 or aarch64) with one CPython
/// release and one glibc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// CPython minor version (3.`minor`).
    pub python_minor: u32,
    /// The full CPython version, e.g. `3.11.2` (for `python_full_version` markers).
    pub python_full: String,
    /// glibc minor version (2.`glibc_minor`).
    pub glibc_minor: u32,
    /// The machine the wheels run on: their platform tags and `platform_machine` follow it.
    pub architecture: Architecture,
    /// Where the interpreter and site-packages are when not where Debian's CPython has them
    /// (a base image's own Python, e.g. `/usr/local/bin/python3.12`).
    pub layout: Option<PythonLayout>,
}

/// Where a Python that is not Debian's keeps its interpreter and its site-packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonLayout {
    /// The interpreter, absolute (`/usr/local/bin/python3.12`).
    pub interpreter: String,
    /// The site-packages directory wheels go into, without a leading `/`
    /// (`usr/local/lib/python3.12/site-packages`).
    pub site_packages: String,
}

impl Target {
    /// Debian 12 (bookworm) on amd64: CPython 3.11.2, glibc 2.36.
    pub fn bookworm() -> Self {
        Self {
            python_minor: 11,
            python_full: "3.11.2".into(),
            glibc_minor: 36,
            architecture: Architecture::Amd64,
            layout: None,
        }
    }

    /// Debian 13 (trixie) on amd64: CPython 3.13.5, glibc 2.41.
    pub fn trixie() -> Self {
        Self {
            python_minor: 13,
            python_full: "3.13.5".into(),
            glibc_minor: 41,
            architecture: Architecture::Amd64,
            layout: None,
        }
    }

    /// `3.11`.
    pub fn python_version(&self) -> String {
        format!("3.{}", self.python_minor)
    }

    /// The interpreter path inside the image, e.g. `/usr/bin/python3.11` (Debian's), or the
    /// base image's.
    pub fn interpreter(&self) -> String {
        match &self.layout {
            Some(layout) => layout.interpreter.clone(),
            None => format!("/usr/bin/python3.{}", self.python_minor),
        }
    }

    /// The site-packages directory wheels go into (without a leading `/`):
    /// `usr/local/lib/python3.X/dist-packages`, which Debian's `site` puts on `sys.path` ahead
    /// of the distro's own `/usr/lib/python3/dist-packages` (the place for locally installed,
    /// non-Debian packages; the runtime has no Debian Python packages to clash with).
    /// On a base image: its Python's own site-packages.
    pub fn site_packages(&self) -> String {
        match &self.layout {
            Some(layout) => layout.site_packages.clone(),
            None => format!("usr/local/lib/python3.{}/dist-packages", self.python_minor),
        }
    }

    /// The marker environment of the target (PEP 508).
    pub fn marker_environment(&self) -> Result<MarkerEnvironment, Error> {
        let version = self.python_version();
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &self.python_full,
            os_name: "posix",
            platform_machine: self.architecture.machine(),
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &self.python_full,
            python_version: &version,
            sys_platform: "linux",
        })
        .map_err(|err| Error::Internal(format!("marker environment: {err}")))
    }

    /// The platform tags the target accepts, best first, as `packaging.tags` gives them:
    /// `manylinux_2_N_{machine}` from the target's glibc down to the oldest manylinux of the
    /// architecture, with the legacy aliases at their glibc. x86_64 goes down to 2.5
    /// (`manylinux2014` = 2.17, `manylinux2010` = 2.12, `manylinux1` = 2.5); aarch64 starts at
    /// 2.17 (`manylinux2014`, the first policy that has it). Never `musllinux`: the runtime is
    /// glibc's.
    fn platforms(&self) -> Vec<String> {
        let machine = self.architecture.machine();
        let oldest = match self.architecture {
            Architecture::Amd64 => 5,
            Architecture::Arm64 => 17,
        };
        let mut out = Vec::new();
        for minor in (oldest..=self.glibc_minor).rev() {
            out.push(format!("manylinux_2_{minor}_{machine}"));
            let legacy = match (minor, self.architecture) {
                (17, _) => Some("manylinux2014"),
                (12, Architecture::Amd64) => Some("manylinux2010"),
                (5, Architecture::Amd64) => Some("manylinux1"),
                _ => None,
            };
            if let Some(legacy) = legacy {
                out.push(format!("{legacy}_{machine}"));
            }
        }
        out
    }

    /// The platform tag of a wheel built here and not repaired (`linux_x86_64`,
    /// `linux_aarch64`).
    pub fn local_platform(&self) -> String {
        format!("linux_{}", self.architecture.machine())
    }

    /// Every (python, abi, platform) tag the target accepts, best first, in the order
    /// `packaging.tags.sys_tags()` gives for CPython: `cp3X-cp3X-*`, `cp3X-abi3-*`,
    /// `cp3X-none-*`, older `cp3Y-abi3-*`, `py3*-none-*`, then the `any` platform.
    pub fn supported_tags(&self) -> Vec<Tag> {
        let x = self.python_minor;
        let platforms = self.platforms();
        let mut tags = Vec::new();
        let mut push = |python: String, abi: &str, platform: &str| {
            tags.push(Tag {
                python,
                abi: abi.to_owned(),
                platform: platform.to_owned(),
            })
        };
        let cp = format!("cp3{x}");
        for abi in [cp.as_str(), "abi3", "none"] {
            for platform in &platforms {
                push(cp.clone(), abi, platform);
            }
        }
        for y in (2..x).rev() {
            for platform in &platforms {
                push(format!("cp3{y}"), "abi3", platform);
            }
        }
        let generic: Vec<String> = [format!("py3{x}"), "py3".into()]
            .into_iter()
            .chain((0..x).rev().map(|y| format!("py3{y}")))
            .collect();
        for python in &generic {
            for platform in &platforms {
                push(python.clone(), "none", platform);
            }
        }
        push(cp.clone(), "none", "any");
        for python in &generic {
            push(python.clone(), "none", "any");
        }
        tags
    }
}

/// One compatibility tag: `python-abi-platform`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    /// Python tag (`cp311`, `py3`).
    pub python: String,
    /// ABI tag (`cp311`, `abi3`, `none`).
    pub abi: String,
    /// Platform tag (`manylinux_2_17_x86_64`, `any`).
    pub platform: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// A wheel file name (`{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`) parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    /// The distribution name as written (escaped, e.g. `typing_extensions`).
    pub name: String,
    /// The version as written.
    pub version: String,
    /// The tags the wheel declares (compressed tag sets expanded).
    pub tags: Vec<Tag>,
    /// The file name.
    pub filename: String,
}

impl WheelName {
    /// The wheel's best priority on `supported` (lower is better); `None` when it does not run
    /// there.
    pub fn priority(&self, supported: &[Tag]) -> Option<usize> {
        self.tags
            .iter()
            .filter_map(|tag| supported.iter().position(|s| s == tag))
            .min()
    }

    /// The tags as `python-abi-platform` strings, for error messages.
    pub fn tag_summary(&self) -> String {
        let (_, rest) = self
            .filename
            .split_at(self.name.len() + self.version.len() + 1);
        rest.trim_start_matches('-')
            .trim_end_matches(".whl")
            .to_owned()
    }
}

impl FromStr for WheelName {
    type Err = Error;

    fn from_str(filename: &str) -> Result<Self, Error> {
        let bad = || Error::BadWheelName(filename.to_owned());
        let stem = filename.strip_suffix(".whl").ok_or_else(bad)?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, python, abi, platform) = match parts.as_slice() {
            [name, version, python, abi, platform] => (name, version, python, abi, platform),
            [name, version, _build, python, abi, platform] => {
                (name, version, python, abi, platform)
            }
            _ => return Err(bad()),
        };
        if name.is_empty() || version.is_empty() {
            return Err(bad());
        }
        let mut tags = Vec::new();
        for python in python.split('.') {
            for abi in abi.split('.') {
                for platform in platform.split('.') {
                    tags.push(Tag {
                        python: python.to_owned(),
                        abi: abi.to_owned(),
                        platform: platform.to_owned(),
                    });
                }
            }
        }
        Ok(Self {
            name: (*name).to_owned(),
            version: (*version).to_owned(),
            tags,
            filename: filename.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn priority(target: &Target, filename: &str) -> Option<usize> {
        filename
            .parse::<WheelName>()
            .unwrap()
            .priority(&target.supported_tags())
    }

    #[test]
    fn ranks_wheels_like_pip() {
        let t = Target::bookworm();
        let native = priority(
            &t,
            "markupsafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        let newer_glibc = priority(&t, "x-1.0-cp311-cp311-manylinux_2_34_x86_64.whl").unwrap();
        let abi3 = priority(&t, "x-1.0-cp38-abi3-manylinux2014_x86_64.whl").unwrap();
        let pure = priority(&t, "flask-3.1.2-py3-none-any.whl").unwrap();
        let py2_py3 = priority(&t, "six-1.16.0-py2.py3-none-any.whl").unwrap();
        assert!(
            newer_glibc < native && native < abi3 && abi3 < pure,
            "{native} {abi3}"
        );
        assert_eq!(pure, py2_py3);
        for incompatible in [
            "x-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
            "x-1.0-cp311-cp311-manylinux_2_39_x86_64.whl",
            "x-1.0-cp311-cp311-musllinux_1_2_x86_64.whl",
            "x-1.0-cp311-cp311-manylinux_2_17_aarch64.whl",
            "x-1.0-cp311-cp311-win_amd64.whl",
            "x-1.0-py2-none-any.whl",
        ] {
            assert_eq!(priority(&t, incompatible), None, "{incompatible}");
        }
        let trixie = Target::trixie();
        assert!(priority(&trixie, "x-1.0-cp313-cp313-manylinux_2_39_x86_64.whl").is_some());
        assert!(priority(&trixie, "x-1.0-cp311-abi3-manylinux_2_39_x86_64.whl").is_some());
    }

    #[test]
    fn aarch64_takes_aarch64_manylinux_wheels_only() {
        let t = Target {
            architecture: Architecture::Arm64,
            ..Target::bookworm()
        };
        let newest = priority(&t, "x-1.0-cp311-cp311-manylinux_2_36_aarch64.whl").unwrap();
        let native = priority(
            &t,
            "markupsafe-3.0.2-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        )
        .unwrap();
        let legacy = priority(&t, "x-1.0-cp311-cp311-manylinux2014_aarch64.whl").unwrap();
        let abi3 = priority(&t, "x-1.0-cp38-abi3-manylinux_2_28_aarch64.whl").unwrap();
        let pure = priority(&t, "flask-3.1.2-py3-none-any.whl").unwrap();
        assert!(newest < native && native < abi3 && abi3 < pure);
        assert_eq!(
            legacy,
            native + 1,
            "manylinux2014 comes right after manylinux_2_17"
        );
        for incompatible in [
            "x-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "x-1.0-cp311-cp311-musllinux_1_2_aarch64.whl",
            "x-1.0-cp311-cp311-manylinux_2_39_aarch64.whl",
            // aarch64 has no policy older than manylinux2014.
            "x-1.0-cp311-cp311-manylinux_2_12_aarch64.whl",
            "x-1.0-cp311-cp311-manylinux2010_aarch64.whl",
            "x-1.0-cp311-cp311-manylinux1_aarch64.whl",
            "x-1.0-cp311-cp311-linux_aarch64.whl",
            "x-1.0-cp311-cp311-macosx_11_0_arm64.whl",
        ] {
            assert_eq!(priority(&t, incompatible), None, "{incompatible}");
        }
        let tags = t.supported_tags();
        assert!(tags.iter().all(|tag| tag.platform == "any"
            || tag.platform.ends_with("_aarch64") && tag.platform.starts_with("manylinux")));
        assert_eq!(t.local_platform(), "linux_aarch64");
        let env = t.marker_environment().unwrap();
        let marker: pep508_rs::MarkerTree = "platform_machine == 'aarch64'".parse().unwrap();
        assert!(marker.evaluate(&env, &[]));
        let marker: pep508_rs::MarkerTree = "platform_machine == 'x86_64'".parse().unwrap();
        assert!(!marker.evaluate(&env, &[]));
    }

    #[test]
    fn parses_names_with_build_tags_and_rejects_others() {
        let w: WheelName = "pkg-1.0-1-py3-none-any.whl".parse().unwrap();
        assert_eq!((w.name.as_str(), w.version.as_str()), ("pkg", "1.0"));
        assert_eq!(w.tag_summary(), "1-py3-none-any");
        for bad in [
            "pkg-1.0.tar.gz",
            "pkg-py3-none-any.whl",
            "a-b-c-d-e-f-g.whl",
        ] {
            assert!(bad.parse::<WheelName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn marker_environment_evaluates() {
        let env = Target::bookworm().marker_environment().unwrap();
        let marker: pep508_rs::MarkerTree = "python_version < '3.12' and sys_platform == 'linux'"
            .parse()
            .unwrap();
        assert!(marker.evaluate(&env, &[]));
        let marker: pep508_rs::MarkerTree = "sys_platform == 'win32'".parse().unwrap();
        assert!(!marker.evaluate(&env, &[]));
    }
}
