//! Reading an image's layers for what is installed: Debian's `status.d` entries and
//! `copyright` files, Python's `.dist-info/METADATA`, and the release from `os-release`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};

use terrarium_image::{Cache, Image};

use crate::license::{debian_license, python_license};
use crate::{Ecosystem, Error, Hashes, Package, Sbom};

/// The most of one metadata file read (a copyright file is a few hundred KiB at worst).
const MAX_FILE: u64 = 4 << 20;

/// Bumped when the scan's output changes, so cached results are not reused.
const SCAN_VERSION: u32 = 4;

#[derive(Default)]
struct Found {
    status: Vec<(String, String)>,
    copyright: BTreeMap<String, String>,
    doc_links: BTreeMap<String, String>,
    metadata: Vec<(String, String)>,
    os_release: Option<String>,
    /// dpkg's own database (`var/lib/dpkg/status`) of the topmost layer that has one: an image
    /// built with apt (a base image) keeps its packages there, not in `status.d`.
    dpkg_status: Option<String>,
}

/// The most of dpkg's status file read (a few MB for a large image).
const MAX_STATUS: u64 = 64 << 20;

/// The stanzas of dpkg's status file for packages that are installed (not removed with their
/// configuration files left, not half-installed).
fn installed_stanzas(status: &str) -> Vec<&str> {
    status
        .split("\n\n")
        .map(str::trim)
        .filter(|stanza| {
            field(stanza, "Status").is_some_and(|s| {
                s.split_whitespace().collect::<Vec<_>>() == ["install", "ok", "installed"]
            })
        })
        .collect()
}

/// The purl's `upstream` of a binary package from its `Source:` field: `NAME` when the source
/// is named otherwise, `NAME@VERSION` when the source's version differs from the binary's
/// (`Source: bash (5.2.15-2)` of a binNMU `5.2.15-2+b13`), as syft writes it; `None` when the
/// source is the package itself at its version.
fn upstream(package: &str, source: &str) -> Option<String> {
    let mut parts = source.split_whitespace();
    let name = parts.next()?;
    match parts
        .next()
        .map(|v| v.trim_matches(|c| c == '(' || c == ')'))
    {
        Some(version) if !version.is_empty() => Some(format!("{name}@{version}")),
        _ => (name != package).then(|| name.to_owned()),
    }
}

/// `Key: value` fields of an RFC 822 stanza (the first line of each; continuations ignored).
fn field<'a>(stanza: &'a str, key: &str) -> Option<&'a str> {
    stanza.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

fn read_layers(cache: &Cache, image: &Image) -> Result<Found, Error> {
    let mut found = Found::default();
    for layer in &image.layers {
        let bad = |message: String| Error::Layer {
            digest: layer.digest,
            message,
        };
        let path = cache
            .get(&layer.digest)?
            .ok_or(terrarium_image::Error::MissingBlob(layer.digest))?;
        let file = File::open(&path).map_err(|err| bad(err.to_string()))?;
        let stream = layer
            .compression
            .decoder(BufReader::with_capacity(1 << 16, file))
            .map_err(|err| bad(err.to_string()))?;
        let mut archive = tar::Archive::new(stream);
        for entry in archive.entries().map_err(|err| bad(err.to_string()))? {
            let mut entry = entry.map_err(|err| bad(err.to_string()))?;
            let name = entry
                .path()
                .map_err(|err| bad(err.to_string()))?
                .to_string_lossy()
                .trim_start_matches("./")
                .trim_start_matches('/')
                .to_owned();
            let kind = entry.header().entry_type();
            let read = |entry: &mut tar::Entry<'_, _>| -> Result<String, Error> {
                let mut text = String::new();
                entry
                    .take(MAX_FILE)
                    .read_to_string(&mut text)
                    .map_err(|err| bad(format!("{name}: {err}")))?;
                Ok(text)
            };
            if let Some(package) = name.strip_prefix("var/lib/dpkg/status.d/") {
                // `NAME` is the stanza; `NAME.md5sums` (and other `.suffix` files dpkg keeps beside
                // it) are not, but package names may contain dots (`python3.13-minimal`).
                let aside = [".md5sums", ".list", ".conffiles", ".triggers", ".shlibs"]
                    .iter()
                    .any(|suffix| package.ends_with(suffix));
                if kind.is_file() && !aside && !package.contains('/') {
                    found.status.push((name.clone(), read(&mut entry)?));
                }
            } else if let Some(rest) = name.strip_prefix("usr/share/doc/") {
                if let Some(package) = rest.strip_suffix("/copyright")
                    && !package.contains('/')
                    && kind.is_file()
                {
                    found
                        .copyright
                        .insert(package.to_owned(), read(&mut entry)?);
                } else if !rest.contains('/')
                    && kind.is_symlink()
                    && let Ok(Some(target)) = entry.link_name()
                {
                    let target = target.to_string_lossy();
                    let target = target.trim_end_matches('/');
                    let target = target.rsplit('/').next().unwrap_or(target);
                    found.doc_links.insert(rest.to_owned(), target.to_owned());
                }
            } else if name == "var/lib/dpkg/status" && kind.is_file() {
                let mut text = String::new();
                (&mut entry)
                    .take(MAX_STATUS)
                    .read_to_string(&mut text)
                    .map_err(|err| bad(format!("{name}: {err}")))?;
                found.dpkg_status = Some(text);
            } else if name.ends_with(".dist-info/METADATA") && kind.is_file() {
                found.metadata.push((name.clone(), read(&mut entry)?));
            } else if (name == "etc/os-release" || name == "usr/lib/os-release") && kind.is_file() {
                found.os_release = Some(read(&mut entry)?);
            }
        }
    }
    Ok(found)
}

/// List what `image` installs. `name` is the image's name, `created` its creation time.
pub fn scan(
    cache: &Cache,
    image: &Image,
    hashes: &Hashes,
    name: &str,
    created: &str,
) -> Result<Sbom, Error> {
    let mut found = read_layers(cache, image)?;
    if let Some(status) = found.dpkg_status.take() {
        for stanza in installed_stanzas(&status) {
            found
                .status
                .push(("var/lib/dpkg/status".to_owned(), stanza.to_owned()));
        }
    }
    let mut packages = Vec::new();
    for (path, stanza) in &found.status {
        let (Some(package), Some(version)) = (field(stanza, "Package"), field(stanza, "Version"))
        else {
            continue;
        };
        let architecture = field(stanza, "Architecture").unwrap_or("all").to_owned();
        let source = field(stanza, "Source").and_then(|s| upstream(package, s));
        let copyright = found.copyright.get(package).or_else(|| {
            found
                .doc_links
                .get(package)
                .and_then(|target| found.copyright.get(target))
        });
        let ecosystem = Ecosystem::Debian {
            architecture,
            source,
        };
        packages.push(Package {
            sha256: hashes.lookup(&ecosystem, package, version),
            ecosystem,
            name: package.to_owned(),
            version: version.to_owned(),
            license: copyright.and_then(|text| debian_license(text)),
            evidence: format!("/{path}"),
        });
    }
    for (path, metadata) in &found.metadata {
        // Headers end at the first blank line; the description follows.
        let headers = metadata.split("\n\n").next().unwrap_or("");
        let (Some(dist), Some(version)) = (field(headers, "Name"), field(headers, "Version"))
        else {
            continue;
        };
        packages.push(Package {
            sha256: hashes.lookup(&Ecosystem::Python, dist, version),
            ecosystem: Ecosystem::Python,
            name: dist.to_owned(),
            version: version.to_owned(),
            license: python_license(headers),
            evidence: format!("/{path}"),
        });
    }
    let python = |p: &Package| matches!(p.ecosystem, Ecosystem::Python);
    packages
        .sort_by(|a, b| (python(a), &a.name, &a.version).cmp(&(python(b), &b.name, &b.version)));
    packages
        .dedup_by(|a, b| a.ecosystem == b.ecosystem && a.name == b.name && a.version == b.version);
    let distro_version = found.os_release.as_deref().and_then(|text| {
        text.lines()
            .find_map(|line| line.strip_prefix("VERSION_ID="))
            .map(|v| v.trim_matches('"').to_owned())
    });
    Ok(Sbom {
        name: name.to_owned(),
        digest: image.digest(),
        created: created.to_owned(),
        distro_version,
        packages,
    })
}

/// [`scan`], remembered in the cache by image digest: reading the layers again costs a
/// decompression of every layer, a remembered result a small file read.
pub fn scan_cached(
    cache: &Cache,
    image: &Image,
    hashes: &Hashes,
    name: &str,
    created: &str,
) -> Result<Sbom, Error> {
    let key = format!("sbom/v{SCAN_VERSION}/{}", image.digest().hex());
    if let Some(bytes) = cache.read_meta(&key)?
        && let Ok(sbom) = serde_json::from_slice::<Sbom>(&bytes)
        && sbom.name == name
        && sbom.created == created
    {
        return Ok(sbom);
    }
    let sbom = scan(cache, image, hashes, name, created)?;
    if let Ok(bytes) = serde_json::to_vec(&sbom) {
        cache.write_meta(&key, &bytes)?;
    }
    Ok(sbom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stanza_fields() {
        let stanza = "Package: libc6\nStatus: install ok installed\nSource: glibc (2.36-9)\nVersion: 2.36-9\n";
        assert_eq!(field(stanza, "Package"), Some("libc6"));
        assert_eq!(field(stanza, "Source"), Some("glibc (2.36-9)"));
        assert_eq!(field(stanza, "Missing"), None);
    }

    #[test]
    fn upstream_names_the_source_and_its_version_when_they_differ() {
        assert_eq!(upstream("libc6", "glibc"), Some("glibc".into()));
        assert_eq!(
            upstream("bash", "bash (5.2.15-2)"),
            Some("bash@5.2.15-2".into())
        );
        assert_eq!(upstream("bash", "bash"), None);
    }

    #[test]
    fn reads_installed_packages_from_dpkg_status() {
        let status = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n\n\
                      Package: old\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                      Package: python3.11\nStatus: install ok installed\nVersion: 3.11.2-6\n";
        let names: Vec<&str> = installed_stanzas(status)
            .into_iter()
            .filter_map(|s| field(s, "Package"))
            .collect();
        assert_eq!(names, ["libc6", "python3.11"]);
    }
}
