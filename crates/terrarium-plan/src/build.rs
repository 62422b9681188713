//! Debian packages for dependencies that are built from a source distribution with C in it: a
//! small table of what well-known packages need to compile (their `-dev` packages) and to run
//! (the libraries their extension modules link), plus the configuration's `build-packages`.
//! `terrarium build` also reads each built extension's `DT_NEEDED` to add runtime libraries the
//! table does not know; the generated Dockerfile relies on the table and the configuration.

use std::collections::BTreeSet;

use terrarium_project::{DependencySource, Group};

use crate::python::{PinnedRelease, wheel_pythons};

/// What building one package from source needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownNeeds {
    /// The normalized distribution name.
    pub package: &'static str,
    /// Debian packages its build needs besides a C compiler and Python's headers.
    pub build: &'static [&'static str],
    /// Debian packages its extension modules load at run time (beyond the Python runtime).
    pub runtime: &'static [&'static str],
    /// Whether it never publishes a Linux wheel (so it is built from source whatever the lock).
    pub source_only: bool,
    /// Whether it embeds Python (links `libpython3.X.so`, which a statically linked interpreter
    /// such as Debian's does not come with).
    pub embeds_python: bool,
}

/// The packages terrarium knows the build needs of.
pub const KNOWN_NEEDS: &[KnownNeeds] = &[
    KnownNeeds {
        package: "psycopg2",
        build: &["libpq-dev"],
        runtime: &["libpq5"],
        source_only: true,
        embeds_python: false,
    },
    // Built from its sdist (a release without a wheel for the chosen Python), the binary
    // package compiles against the system's libpq like psycopg2.
    KnownNeeds {
        package: "psycopg2-binary",
        build: &["libpq-dev"],
        runtime: &["libpq5"],
        source_only: false,
        embeds_python: false,
    },
    KnownNeeds {
        package: "uwsgi",
        build: &["libpcre2-dev", "libssl-dev"],
        runtime: &[],
        source_only: true,
        embeds_python: true,
    },
    KnownNeeds {
        package: "mysqlclient",
        build: &["libmariadb-dev", "pkg-config"],
        runtime: &["libmariadb3"],
        source_only: true,
        embeds_python: false,
    },
    KnownNeeds {
        package: "lxml",
        build: &["libxml2-dev", "libxslt1-dev"],
        runtime: &["libxml2", "libxslt1.1"],
        source_only: false,
        embeds_python: false,
    },
    KnownNeeds {
        package: "pygraphviz",
        build: &["libgraphviz-dev", "pkg-config"],
        runtime: &["libcgraph6", "libgvc6"],
        source_only: true,
        embeds_python: false,
    },
    KnownNeeds {
        package: "cffi",
        build: &["libffi-dev"],
        runtime: &[],
        source_only: false,
        embeds_python: false,
    },
];

/// The table's entry for `package` (a normalized name).
pub fn known_needs(package: &str) -> Option<&'static KnownNeeds> {
    KNOWN_NEEDS.iter().find(|needs| needs.package == package)
}

/// The parts of CPython's own standard library that Debian ships apart and that every build
/// from source gets, C or pure Python: `distutils` for 3.9 and 3.11 (bullseye's and
/// bookworm's `python3-distutils`;
/// the official image has it). Old sdists' `setup.py`, run by the setuptools of their era,
/// import it; 3.12 removed it from CPython itself.
pub fn stdlib_build_packages(python_version: &str) -> Vec<String> {
    match python_version {
        "3.9" | "3.11" => vec!["python3-distutils".into()],
        _ => Vec::new(),
    }
}

/// The Debian packages every native C build needs on a Debian runtime of CPython
/// `python_version` (`3.11`): the compiler, `make`, libc's headers and Python's.
pub fn compiler_packages(python_version: &str) -> Vec<String> {
    vec![
        "gcc".into(),
        // C++ extensions (greenlet, …) are as common among sdists as C ones.
        "g++".into(),
        "make".into(),
        "libc6-dev".into(),
        format!("python{python_version}-dev"),
    ]
}

/// What a Dockerfile's build stage installs to compile: the official Python images already
/// have Python's headers.
pub const DOCKER_COMPILER_PACKAGES: &[&str] = &["gcc", "g++", "libc6-dev", "make"];

/// The project's main dependencies that the table knows and that will be built from source:
/// locked ones without a Linux x86_64 wheel, declared ones that never publish one, and
/// releases pinned with `==` whose wheels (`pinned`, from the index) don't serve `python`.
pub fn source_built(
    dependencies: &DependencySource,
    pinned: &[PinnedRelease],
    python: (u64, u64),
) -> Vec<&'static KnownNeeds> {
    let mut found: BTreeSet<&'static str> = BTreeSet::new();
    if let Some(lock) = dependencies.lock() {
        for package in lock.packages.iter().filter(|p| p.group == Group::Main) {
            let Some(needs) = known_needs(package.name.as_str()) else {
                continue;
            };
            let linux_wheel = package.artifacts.iter().any(|artifact| {
                artifact.filename.as_deref().is_some_and(|f| {
                    f.ends_with(".whl")
                        && f.contains("x86_64")
                        && (f.contains("manylinux") || f.contains("linux_x86_64"))
                })
            });
            if needs.source_only || !linux_wheel {
                found.insert(needs.package);
            }
        }
    } else {
        let names: Vec<String> = match dependencies {
            DependencySource::Requirements { file, .. } => file
                .requirements
                .iter()
                .map(|r| r.name.as_str().to_owned())
                .collect(),
            DependencySource::Unlocked { requirements, .. } => {
                requirements.iter().map(|r| requirement_name(r)).collect()
            }
            _ => Vec::new(),
        };
        for name in names {
            let Some(needs) = known_needs(&name) else {
                continue;
            };
            let no_wheel = || {
                pinned.iter().any(|pin| {
                    pin.name.as_str() == name
                        && !pin.dev
                        && pin.has_sdist
                        && wheel_pythons(pin.wheels.iter().map(String::as_str))
                            .is_some_and(|pythons| !pythons.contains(&python))
                })
            };
            if needs.source_only || no_wheel() {
                found.insert(needs.package);
            }
        }
    }
    found.into_iter().filter_map(known_needs).collect()
}

/// The normalized name at the start of a PEP 508 requirement.
fn requirement_name(text: &str) -> String {
    let name: String = text
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    terrarium_project::PackageName::new(&name)
        .as_str()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_and_names() {
        assert_eq!(
            known_needs("psycopg2").map(|n| n.build),
            Some(&["libpq-dev"][..])
        );
        assert_eq!(
            known_needs("psycopg2-binary").map(|n| (n.source_only, n.runtime)),
            Some((false, &["libpq5"][..]))
        );
        assert_eq!(
            requirement_name("PsycoPG2>=2.9 ; python_version > '3'"),
            "psycopg2"
        );
        assert_eq!(
            compiler_packages("3.11"),
            ["gcc", "g++", "make", "libc6-dev", "python3.11-dev"]
        );
    }

    #[test]
    fn a_pin_without_a_wheel_for_the_python_is_built_with_its_needs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("requirements.txt"),
            "psycopg2-binary==2.8.5\nlxml==5.3.0\n",
        )
        .unwrap();
        let project = terrarium_project::detect(dir.path()).unwrap();
        let pin = |name: &str, wheels: &[&str]| PinnedRelease {
            name: terrarium_project::PackageName::new(name),
            version: "1".into(),
            source: terrarium_project::Source::line("requirements.txt", 1),
            wheels: wheels.iter().map(|w| (*w).to_owned()).collect(),
            has_sdist: true,
            uploaded: None,
            dev: false,
            range: None,
        };
        let pinned = [
            pin(
                "psycopg2-binary",
                &["psycopg2_binary-2.8.5-cp38-cp38-manylinux1_x86_64.whl"],
            ),
            pin(
                "lxml",
                &["lxml-5.3.0-cp311-cp311-manylinux_2_28_x86_64.whl"],
            ),
        ];
        let built = |python| -> Vec<&str> {
            source_built(&project.dependencies, &pinned, python)
                .iter()
                .map(|n| n.package)
                .collect()
        };
        assert_eq!(built((3, 11)), ["psycopg2-binary"]);
        assert_eq!(built((3, 8)), ["lxml"]);
    }
}
