//! Package URLs (purl spec): `pkg:deb/debian/NAME@VERSION?arch=…&distro=debian-12` and
//! `pkg:pypi/NAME@VERSION`, with the version percent-encoded as the spec asks.

use crate::{Ecosystem, Package, normalize_python_name};

/// Percent-encode everything but unreserved characters (and `:` for Debian epochs).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b".-_~:".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The purl of `package`; `distro_version` is Debian's release number.
pub(crate) fn purl(package: &Package, distro_version: Option<&str>) -> String {
    match &package.ecosystem {
        Ecosystem::Debian {
            architecture,
            source,
        } => {
            let mut purl = format!(
                "pkg:deb/debian/{}@{}?arch={}",
                encode(&package.name),
                encode(&package.version),
                encode(architecture)
            );
            if let Some(version) = distro_version {
                purl.push_str(&format!("&distro=debian-{}", encode(version)));
            }
            if let Some(source) = source {
                purl.push_str(&format!("&upstream={}", encode(source)));
            }
            purl
        }
        Ecosystem::Python => format!(
            "pkg:pypi/{}@{}",
            encode(&normalize_python_name(&package.name)),
            encode(&package.version)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(ecosystem: Ecosystem, name: &str, version: &str) -> Package {
        Package {
            ecosystem,
            name: name.into(),
            version: version.into(),
            license: None,
            sha256: None,
            evidence: String::new(),
        }
    }

    #[test]
    fn debian_and_pypi_purls() {
        let deb = package(
            Ecosystem::Debian {
                architecture: "amd64".into(),
                source: Some("glibc".into()),
            },
            "libc6",
            "2.36-9+deb12u4",
        );
        assert_eq!(
            purl(&deb, Some("12")),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
        );
        let py = package(Ecosystem::Python, "Flask_Login", "0.6.3");
        assert_eq!(purl(&py, None), "pkg:pypi/flask-login@0.6.3");
    }
}
