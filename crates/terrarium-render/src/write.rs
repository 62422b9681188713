//! Writing rendered files: all or nothing. Existing files are refused unless forced (secrets are
//! never overwritten), every file goes to a temporary name first and is renamed into place.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::RenderedFile;

/// Why files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Some files exist already and `force` was not given. Nothing was written.
    #[error("{} already exist{} in {}; nothing was written\n  fix: pass --force to overwrite them (your changes to them will be lost)",
        .existing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        if .existing.len() == 1 { "s" } else { "" },
        .dir.display())]
    Exists {
        /// The project directory.
        dir: PathBuf,
        /// The files that exist.
        existing: Vec<PathBuf>,
    },
    /// An I/O error while writing; files already renamed into place are listed.
    #[error("{}: cannot write: {source}", path.display())]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Created.
    Created(PathBuf),
    /// Replaced (with `force`).
    Overwritten(PathBuf),
    /// Left alone: a secrets file that exists already.
    Kept(PathBuf),
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Written::Created(path) => write!(f, "wrote {}", path.display()),
            Written::Overwritten(path) => write!(f, "overwrote {}", path.display()),
            Written::Kept(path) => write!(f, "kept {} (it holds secrets)", path.display()),
        }
    }
}

/// Write `files` under `dir`. Refuses (writing nothing) when any would overwrite an existing
/// file and `force` is false. Every file is written to a temporary file and renamed into place.
pub fn write_all(
    dir: &Path,
    files: &[RenderedFile],
    force: bool,
) -> Result<Vec<Written>, WriteError> {
    let existing: Vec<PathBuf> = files
        .iter()
        .filter(|f| !f.secret && dir.join(&f.path).exists())
        .map(|f| f.path.clone())
        .collect();
    if !existing.is_empty() && !force {
        return Err(WriteError::Exists {
            dir: dir.to_path_buf(),
            existing,
        });
    }
    // Stage every file first, so a failure leaves no new file in place.
    let mut staged = Vec::new();
    let mut outcomes = Vec::new();
    for file in files {
        let target = dir.join(&file.path);
        if file.secret && target.exists() {
            outcomes.push(Written::Kept(file.path.clone()));
            continue;
        }
        let parent = target.parent().unwrap_or(dir);
        let io = |source| WriteError::Io {
            path: file.path.clone(),
            source,
        };
        std::fs::create_dir_all(parent).map_err(io)?;
        let mut temp = tempfile::Builder::new()
            .prefix(".terrarium-")
            .tempfile_in(parent)
            .map_err(io)?;
        temp.write_all(file.contents.as_bytes()).map_err(io)?;
        temp.as_file().sync_all().map_err(io)?;
        set_mode(temp.path(), if file.secret { 0o600 } else { 0o644 }).map_err(io)?;
        let outcome = if target.exists() {
            Written::Overwritten(file.path.clone())
        } else {
            Written::Created(file.path.clone())
        };
        staged.push((temp, target, file.path.clone()));
        outcomes.push(outcome);
    }
    for (temp, target, rel) in staged {
        temp.persist(&target).map_err(|e| WriteError::Io {
            path: rel,
            source: e.error,
        })?;
    }
    Ok(outcomes)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, contents: &str, secret: bool) -> RenderedFile {
        RenderedFile {
            path: PathBuf::from(path),
            contents: contents.into(),
            secret,
        }
    }

    #[test]
    fn refuses_to_overwrite_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "mine").unwrap();
        let err = write_all(
            dir.path(),
            &[
                file("compose.yaml", "x", false),
                file("Dockerfile", "y", false),
            ],
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("Dockerfile already exists") && err.contains("--force"),
            "{err}"
        );
        assert!(!dir.path().join("compose.yaml").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn force_overwrites_but_keeps_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "mine").unwrap();
        std::fs::write(dir.path().join(".env"), "POSTGRES_PASSWORD=old").unwrap();
        let outcome = write_all(
            dir.path(),
            &[
                file("Dockerfile", "new", false),
                file(".env", "POSTGRES_PASSWORD=new", true),
                file("proxy/nginx.conf", "c", false),
            ],
            true,
        )
        .unwrap();
        assert_eq!(
            outcome,
            vec![
                Written::Overwritten("Dockerfile".into()),
                Written::Kept(".env".into()),
                Written::Created("proxy/nginx.conf".into())
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap(),
            "new"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".env")).unwrap(),
            "POSTGRES_PASSWORD=old"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".terrarium-"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
