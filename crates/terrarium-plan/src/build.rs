//! Debian packages for dependencies that are built from a source distribution with C in it: a
//! small table of what well-known packages need to compile (their `-dev` packages) and to run
//! (the libraries their extension modules link), plus the configuration's `build-packages`.
//! `terrarium build` also reads each built extension's `DT_NEEDED` to add runtime libraries the
//! table does not know; the generated Dockerfile relies on the table and the configuration.

use std::collections::BTreeSet;

use terrarium_project::{DependencySource, Group};

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
/// locked ones without a Linux x86_64 wheel, or declared ones that never publish one.
pub fn source_built(dependencies: &DependencySource) -> Vec<&'static KnownNeeds> {
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
            if let Some(needs) = known_needs(&name).filter(|n| n.source_only) {
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
        assert!(known_needs("psycopg2-binary").is_none());
        assert_eq!(
            requirement_name("PsycoPG2>=2.9 ; python_version > '3'"),
            "psycopg2"
        );
        assert_eq!(
            compiler_packages("3.11"),
            ["gcc", "g++", "make", "libc6-dev", "python3.11-dev"]
        );
    }
}
