//! Writing rendered files: all or nothing. Existing files are refused unless forced (secrets are
//! never overwritten; a `.dockerignore` is merged), every file goes to a temporary name first and
//! is renamed into place, and when a rename fails the files already renamed are put back as they
//! were (restored, or removed when they are new).

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
    /// An existing file given terrarium's part, the project's own part kept.
    Merged(PathBuf),
    /// An existing file that has terrarium's part already.
    Unchanged(PathBuf),
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Written::Created(path) => write!(f, "wrote {}", path.display()),
            Written::Overwritten(path) => write!(f, "overwrote {}", path.display()),
            Written::Kept(path) => write!(f, "kept {} (it holds secrets)", path.display()),
            Written::Merged(path) => write!(
                f,
                "added terrarium's rules to {} (yours kept after them)",
                path.display()
            ),
            Written::Unchanged(path) => {
                write!(f, "kept {} (it has terrarium's rules)", path.display())
            }
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
        .filter(|f| !f.secret && f.merge.is_none() && dir.join(&f.path).exists())
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
        let mut contents = file.contents.clone();
        let mut merged = false;
        if let Some(merge) = file.merge
            && target.exists()
        {
            let existing = std::fs::read_to_string(&target).map_err(|source| WriteError::Io {
                path: file.path.clone(),
                source,
            })?;
            match merge.apply(&existing) {
                Some(text) => {
                    contents = text;
                    merged = true;
                }
                None => {
                    outcomes.push(Written::Unchanged(file.path.clone()));
                    continue;
                }
            }
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
        temp.write_all(contents.as_bytes()).map_err(io)?;
        temp.as_file().sync_all().map_err(io)?;
        set_mode(temp.path(), if file.secret { 0o600 } else { 0o644 }).map_err(io)?;
        let outcome = if merged {
            Written::Merged(file.path.clone())
        } else if target.exists() {
            Written::Overwritten(file.path.clone())
        } else {
            Written::Created(file.path.clone())
        };
        staged.push((temp, target, file.path.clone()));
        outcomes.push(outcome);
    }
    // What each target held before, to put back if a later rename fails.
    let mut done: Vec<(PathBuf, Option<Vec<u8>>)> = Vec::new();
    for (temp, target, rel) in staged {
        let before = std::fs::read(&target).ok();
        if let Err(err) = temp.persist(&target) {
            restore(&done);
            return Err(WriteError::Io {
                path: rel,
                source: err.error,
            });
        }
        done.push((target, before));
    }
    Ok(outcomes)
}

/// Put renamed files back as they were: the old contents where there were any, else no file.
/// Best effort: this runs only after a write already failed.
fn restore(done: &[(PathBuf, Option<Vec<u8>>)]) {
    for (target, before) in done.iter().rev() {
        match before {
            Some(bytes) => {
                let _ = std::fs::write(target, bytes);
            }
            None => {
                let _ = std::fs::remove_file(target);
            }
        }
    }
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
            merge: None,
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

    #[test]
    fn a_failed_rename_puts_back_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "old").unwrap();
        // A non-empty directory where a file should go: its rename fails.
        std::fs::create_dir_all(dir.path().join("sub/inside")).unwrap();
        let err = write_all(
            dir.path(),
            &[
                file("a.txt", "new", false),
                file("b.txt", "new", false),
                file("sub", "x", false),
            ],
            true,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("sub: cannot write"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
            "old"
        );
        assert!(!dir.path().join("b.txt").exists());
    }

    #[test]
    fn a_mergeable_file_is_merged_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "secrets.json\n").unwrap();
        let mut ignore = file(".dockerignore", "unused", false);
        ignore.merge = Some(crate::Merge::DockerIgnore);
        let written = write_all(dir.path(), &[ignore], false).unwrap();
        assert_eq!(written, [Written::Merged(PathBuf::from(".dockerignore"))]);
        let merged = std::fs::read_to_string(dir.path().join(".dockerignore")).unwrap();
        assert!(merged.contains("**/.env\n"), "{merged}");
        assert!(merged.ends_with("\nsecrets.json\n"), "{merged}");
    }
}
