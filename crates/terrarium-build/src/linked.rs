//! System libraries that binary wheels link without shipping them. The manylinux policies
//! (PEP 600 and the older PEP 513/571/599 lists) let a wheel link a short list of libraries
//! every mainstream Linux has (`libstdc++.so.6`, `libgcc_s.so.1`, `libcrypt.so.1`, X11, GL,
//! GLib) and vendor everything else: a full distribution has them, a runtime assembled from
//! a handful of Debian packages does not. Each binary wheel's ELF files are read once (their
//! `DT_NEEDED`), the libraries found in this table become Debian packages, and those the
//! runtime lacks join the system layer. greenlet, pandas and Pillow's AVIF plugin link
//! libstdc++, for instance.

use std::collections::BTreeMap;
use std::path::PathBuf;

use terrarium_debian::Distro;
use terrarium_wheels::{Pin, elf_needed, is_sdist};

use crate::error::{BuildError, io_error};
use crate::lockfile::LinkedLibrary;

/// The Debian package that ships a library the manylinux policy lets wheels link, on `distro`
/// (GLib's package was renamed for the 64-bit `time_t` transition after bookworm).
pub(crate) fn policy_package(distro: Distro, soname: &str) -> Option<&'static str> {
    let glib = if matches!(distro, Distro::Bullseye | Distro::Bookworm) {
        "libglib2.0-0"
    } else {
        "libglib2.0-0t64"
    };
    Some(match soname {
        "libstdc++.so.6" => "libstdc++6",
        "libgcc_s.so.1" => "libgcc-s1",
        "libcrypt.so.1" => "libcrypt1",
        "libX11.so.6" => "libx11-6",
        "libXext.so.6" => "libxext6",
        "libXrender.so.1" => "libxrender1",
        "libICE.so.6" => "libice6",
        "libSM.so.6" => "libsm6",
        "libGL.so.1" => "libgl1",
        "libglib-2.0.so.0" | "libgobject-2.0.so.0" | "libgthread-2.0.so.0" => glib,
        _ => return None,
    })
}

/// Whether a wheel's file name says it holds compiled code for Linux.
fn is_linux_binary(filename: &str) -> bool {
    !is_sdist(filename) && filename.contains("linux")
}

/// The policy libraries the binary wheels among `pins` link (`paths`: the fetched wheels, in
/// the same order), with the packages that ship them on `distro`, sorted.
pub(crate) fn linked_libraries(
    distro: Distro,
    pins: &[Pin],
    paths: &[PathBuf],
) -> Result<Vec<LinkedLibrary>, BuildError> {
    let mut found: BTreeMap<(&'static str, String), Vec<String>> = BTreeMap::new();
    for (pin, path) in pins.iter().zip(paths) {
        let wheel = std::fs::File::open(path).map_err(io_error(path))?;
        for soname in elf_needed(std::io::BufReader::new(wheel), &pin.filename)? {
            if let Some(package) = policy_package(distro, &soname) {
                found
                    .entry((package, soname))
                    .or_default()
                    .push(format!("{} {}", pin.name, pin.version));
            }
        }
    }
    Ok(found
        .into_iter()
        .map(|((package, soname), by)| LinkedLibrary {
            package: package.to_owned(),
            soname,
            by,
        })
        .collect())
}

/// The pins whose wheels may link system libraries: Linux binary wheels only.
pub(crate) fn binary_wheels(pins: &[Pin]) -> Vec<Pin> {
    pins.iter()
        .filter(|pin| is_linux_binary(&pin.filename))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_libraries_by_distro() {
        assert_eq!(
            policy_package(Distro::Trixie, "libstdc++.so.6"),
            Some("libstdc++6")
        );
        assert_eq!(
            policy_package(Distro::Bookworm, "libglib-2.0.so.0"),
            Some("libglib2.0-0")
        );
        assert_eq!(
            policy_package(Distro::Trixie, "libgobject-2.0.so.0"),
            Some("libglib2.0-0t64")
        );
        // Vendored by auditwheel, or part of glibc: never added.
        assert_eq!(
            policy_package(Distro::Trixie, "libjpeg-8296d2fa.so.62.4.0"),
            None
        );
        assert_eq!(policy_package(Distro::Trixie, "libc.so.6"), None);
        assert!(is_linux_binary(
            "greenlet-3.2.4-cp313-cp313-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
        ));
        assert!(!is_linux_binary("flask-3.1.2-py3-none-any.whl"));
        assert!(!is_linux_binary("uwsgi-2.0.31.tar.gz"));
    }
}
