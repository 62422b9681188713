//! The project's git revision and origin URL for the OCI labels, read from `.git` directly:
//! spawning `git` twice cost more than the whole warm rebuild.

use std::path::{Path, PathBuf};

/// What the labels need from git.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GitInfo {
    /// The commit HEAD points to.
    pub revision: Option<String>,
    /// `remote.origin.url`.
    pub origin: Option<String>,
}

/// Read the repository that contains `root`, if any. Anything unreadable is simply absent.
pub(crate) fn read(root: &Path) -> GitInfo {
    let Some(git_dir) = find_git_dir(root) else {
        return GitInfo::default();
    };
    // A worktree's gitdir names the common directory holding refs and config.
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|| git_dir.clone());
    GitInfo {
        revision: revision(&git_dir, &common),
        origin: origin(&common),
    }
}

fn find_git_dir(root: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(root).ok()?;
    for dir in start.ancestors() {
        let dot_git = dir.join(".git");
        if dot_git.is_dir() {
            return Some(dot_git);
        }
        if let Ok(text) = std::fs::read_to_string(&dot_git) {
            let target = text.trim().strip_prefix("gitdir:")?.trim().to_owned();
            return Some(dir.join(target));
        }
    }
    None
}

fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn revision(git_dir: &Path, common: &Path) -> Option<String> {
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref:").map(str::trim) else {
        return is_object_id(head).then(|| head.to_owned());
    };
    for dir in [git_dir, common] {
        if let Ok(id) = std::fs::read_to_string(dir.join(reference)) {
            let id = id.trim();
            if is_object_id(id) {
                return Some(id.to_owned());
            }
        }
    }
    let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (id, name) = line.split_once(' ')?;
        (name.trim() == reference && is_object_id(id)).then(|| id.to_owned())
    })
}

fn origin(common: &Path) -> Option<String> {
    let config = std::fs::read_to_string(common.join("config")).ok()?;
    let mut in_origin = false;
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            let section: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            in_origin = section == "[remote\"origin\"]";
        } else if in_origin
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "url"
        {
            return Some(value.trim().trim_matches('"').to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn agrees_with_git_for_loose_and_packed_refs_and_worktrees() {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path();
        git(dir, &["init", "-q", "-b", "main"]);
        git(dir, &["config", "user.email", "t@example.invalid"]);
        git(dir, &["config", "user.name", "t"]);
        git(
            dir,
            &[
                "remote",
                "add",
                "origin",
                "https://example.invalid/shop.git",
            ],
        );
        std::fs::create_dir(dir.join("svc")).unwrap();
        std::fs::write(dir.join("svc/app.py"), "x = 1\n").unwrap();
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", "one"]);
        let head = git(dir, &["rev-parse", "HEAD"]);
        let info = read(&dir.join("svc"));
        assert_eq!(info.revision.as_deref(), Some(head.as_str()));
        assert_eq!(
            info.origin.as_deref(),
            Some("https://example.invalid/shop.git")
        );

        git(dir, &["pack-refs", "--all"]);
        assert_eq!(
            read(dir).revision.as_deref(),
            Some(head.as_str()),
            "packed refs"
        );

        let worktree = dir.join("wt");
        git(
            dir,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "side",
                worktree.to_str().unwrap(),
            ],
        );
        let wt = read(&worktree);
        assert_eq!(wt.revision.as_deref(), Some(head.as_str()));
        assert_eq!(
            wt.origin.as_deref(),
            Some("https://example.invalid/shop.git")
        );

        git(dir, &["checkout", "-q", "--detach"]);
        assert_eq!(
            read(dir).revision.as_deref(),
            Some(head.as_str()),
            "detached HEAD"
        );
    }

    #[test]
    fn no_repository_means_no_labels() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            find_git_dir(dir.path()),
            None,
            "the system temp dir is not in a repository"
        );
        assert_eq!(read(dir.path()), GitInfo::default());
    }
}
