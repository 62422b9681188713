//! Pinned versions of everything terrarium puts into generated files (L13: no floating tags).

/// A CPython feature release terrarium knows a pinned base image for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownPython {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// The full patch release of the pinned official image.
    pub patch_release: &'static str,
    /// The day its first final release came out (`YYYY-MM-DD`): a project older than that
    /// was never run on it.
    pub released: &'static str,
    /// Whether CPython still fixes its security bugs, as of this release of terrarium (3.9
    /// ended in October 2025, 3.10 in October 2026): an ended release is never chosen over one
    /// that compiles what it lacks.
    pub maintained: bool,
}

impl KnownPython {
    /// Whether a Debian release terrarium builds on ships this CPython as a runtime.
    pub fn has_debian_runtime(&self) -> bool {
        terrarium_debian::Distro::for_python(self.major, self.minor).is_some()
    }
}

/// Known CPython releases in order of preference when nothing else decides: the newest mature
/// release first, the newest release after it (its wheels lag), then older ones.
pub const PYTHONS: [KnownPython; 6] = [
    KnownPython {
        major: 3,
        minor: 13,
        patch_release: "3.13.9",
        released: "2024-10-07",
        maintained: true,
    },
    KnownPython {
        major: 3,
        minor: 12,
        patch_release: "3.12.12",
        released: "2023-10-02",
        maintained: true,
    },
    KnownPython {
        major: 3,
        minor: 14,
        patch_release: "3.14.0",
        released: "2025-10-07",
        maintained: true,
    },
    KnownPython {
        major: 3,
        minor: 11,
        patch_release: "3.11.14",
        released: "2022-10-24",
        maintained: true,
    },
    KnownPython {
        major: 3,
        minor: 10,
        patch_release: "3.10.19",
        released: "2021-10-04",
        maintained: false,
    },
    KnownPython {
        major: 3,
        minor: 9,
        patch_release: "3.9.24",
        released: "2020-10-05",
        maintained: false,
    },
];

/// The Debian release of the official base images terrarium pins.
pub const BASE_DEBIAN: &str = "bookworm";

/// uv, installed in the build stage to export locks and install wheels fast.
pub const UV: &str = "0.13.9";
/// Poetry and its export plugin, to turn poetry.lock into hashed requirements in the build stage.
pub const POETRY: &str = "2.5.1";
/// The Poetry export plugin.
pub const POETRY_EXPORT: &str = "1.10.1";
/// Pipenv, to turn Pipfile.lock into hashed requirements in the build stage.
pub const PIPENV: &str = "2026.10.3";

/// The lock tools the build stage runs on the image's own Python: the pinned releases above,
/// or on CPython 3.9 the newest that still run there (Poetry 2.3, its export plugin 1.10 and
/// pipenv 2025.1 need 3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTools {
    /// Poetry.
    pub poetry: &'static str,
    /// The Poetry export plugin.
    pub poetry_export: &'static str,
    /// Pipenv.
    pub pipenv: &'static str,
}

/// The [`LockTools`] for CPython `major.minor`.
pub fn lock_tools(major: u64, minor: u64) -> LockTools {
    if (major, minor) < (3, 10) {
        LockTools {
            poetry: "2.2.1",
            poetry_export: "1.9.0",
            pipenv: "2025.0.4",
        }
    } else {
        LockTools {
            poetry: POETRY,
            poetry_export: POETRY_EXPORT,
            pipenv: PIPENV,
        }
    }
}
/// The sha256 of `setuptools-81.0.0-py3-none-any.whl`
/// ([`SETUPTOOLS_WITH_PKG_RESOURCES`](crate::SETUPTOOLS_WITH_PKG_RESOURCES)), for the
/// Dockerfile that adds it when a dependency imports `pkg_resources` undeclared.
pub const SETUPTOOLS_WITH_PKG_RESOURCES_SHA256: &str =
    "fdd925d5c5d9f62e4b74b30d6dd7828ce236fd6ed998a08d81de62ce5a6310d6";
/// gunicorn, added when a WSGI app has no server among its dependencies.
pub const GUNICORN: &str = "23.0.0";
/// uvicorn, added when an ASGI app has no server among its dependencies.
pub const UVICORN: &str = "0.34.0";
/// The reverse proxy image for compose (L03).
pub const NGINX_IMAGE: &str = "nginx:1.28.0-bookworm";
/// The PostgreSQL image for compose.
pub const POSTGRES_IMAGE: &str = "postgres:17.6-bookworm";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_tools_run_on_the_images_python() {
        assert_eq!(lock_tools(3, 9).poetry, "2.2.1");
        assert_eq!(lock_tools(3, 9).pipenv, "2025.0.4");
        assert_eq!(lock_tools(3, 13).poetry, POETRY);
        assert_eq!(lock_tools(3, 10).poetry_export, POETRY_EXPORT);
    }
}
