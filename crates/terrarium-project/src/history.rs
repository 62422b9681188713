//! What earlier work says about the project: when its dependency declarations last changed
//! (their era, for requirements it does not pin) and which Python the last `terrarium build`
//! chose (so the next one does not flip).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Fact, Source};

/// The commit time of the last commit that touched `files` (relative to `root`), asked of
/// `git` when `root` is inside a work tree. Anything missing (no repository, no git, a file
/// never committed) gives `None`: the era then comes from elsewhere.
pub(crate) fn last_change(root: &Path, files: &[PathBuf]) -> Option<Fact<jiff::Timestamp>> {
    if files.is_empty() || !inside_work_tree(root) {
        return None;
    }
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["log", "-1", "--format=%H %ct", "--"])
        .args(files)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let (commit, seconds) = text.trim().split_once(' ')?;
    let moment = jiff::Timestamp::from_second(seconds.parse().ok()?).ok()?;
    let short = commit.get(..12).unwrap_or(commit);
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    Some(Fact::new(
        moment,
        Source::file(format!("git commit {short} ({})", names.join(", "))),
    ))
}

fn inside_work_tree(root: &Path) -> bool {
    let Ok(start) = std::fs::canonicalize(root) else {
        return false;
    };
    start.ancestors().any(|dir| dir.join(".git").exists())
}

/// What the last `terrarium build` left at the top of `terrarium.lock` for the next plan:
/// the file is read once for every key.
#[derive(Debug, Default)]
pub(crate) struct Locked {
    /// The Python (`3.11`) the last build chose.
    pub python: Option<Fact<String>>,
    /// The packages the last build's resolution took from after the cut-off, with the upload
    /// time of each file taken (`exclude-newer-package = ["greenlet=2022-08-25T19:33:51Z"]`):
    /// uv's `--exclude-newer-package` values. Entries that don't read as `NAME=MOMENT` are
    /// skipped.
    pub exclude_newer_package: Option<Fact<Vec<(String, jiff::Timestamp)>>>,
}

/// Read [`Locked`] from `root`'s `terrarium.lock` (nothing when there is none). Only the keys
/// before the first table are read: the rest of the file belongs to the build.
pub(crate) fn locked(root: &Path) -> Locked {
    let file = Path::new("terrarium.lock");
    let Ok(text) = std::fs::read_to_string(root.join(file)) else {
        return Locked::default();
    };
    let top: Vec<&str> = text
        .lines()
        .take_while(|line| !line.trim_start().starts_with('['))
        .collect();
    let Ok(table) = toml::from_str::<toml::Table>(&top.join("\n")) else {
        return Locked::default();
    };
    let key = |key: &str| {
        let value = table.get(key)?;
        let line = top.iter().position(|line| {
            line.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })?;
        Some((value, Source::line(file, line + 1)))
    };
    let python = key("python").and_then(|(value, source)| {
        let value = value.as_str()?;
        let valid = value.split_once('.').is_some_and(|(major, minor)| {
            major.parse::<u64>().is_ok() && minor.parse::<u64>().is_ok()
        });
        valid.then(|| Fact::new(value.to_owned(), source))
    });
    let exclude_newer_package = key("exclude-newer-package").and_then(|(value, source)| {
        let entries = value
            .as_array()?
            .iter()
            .filter_map(|entry| {
                let (name, moment) = entry.as_str()?.split_once('=')?;
                Some((name.to_owned(), moment.parse().ok()?))
            })
            .collect::<Vec<_>>();
        (!entries.is_empty()).then(|| Fact::new(entries, source))
    });
    Locked {
        python,
        exclude_newer_package,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_locked_python_only_from_the_top() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("terrarium.lock"),
            "# header\nversion = 1\npython = \"3.11\"\n\n[distro.bookworm]\n",
        )
        .unwrap();
        let fact = locked(dir.path()).python.unwrap();
        assert_eq!(fact.value, "3.11");
        assert_eq!(fact.source.line, Some(3));
        std::fs::write(
            dir.path().join("terrarium.lock"),
            "version = 1\n[distro.bookworm]\npython = \"3.11\"\n",
        )
        .unwrap();
        assert!(locked(dir.path()).python.is_none());
    }

    #[test]
    fn reads_the_packages_that_gave_way_from_the_top() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("terrarium.lock"),
            "# header\nversion = 1\npython = \"3.11\"\nexclude-newer-package = [\"greenlet=2022-08-25T19:33:51Z\", \"bad\", \"sqlalchemy=2022-09-07T01:02:03Z\"]\n\n[distro.bookworm]\nexclude-newer-package = [\"x=2020-01-01T00:00:00Z\"]\n",
        )
        .unwrap();
        let fact = locked(dir.path()).exclude_newer_package.unwrap();
        let names: Vec<String> = fact
            .value
            .iter()
            .map(|(name, moment)| format!("{name}={moment}"))
            .collect();
        assert_eq!(
            names,
            [
                "greenlet=2022-08-25T19:33:51Z",
                "sqlalchemy=2022-09-07T01:02:03Z"
            ]
        );
        assert_eq!(fact.source.line, Some(4));
        std::fs::write(dir.path().join("terrarium.lock"), "version = 1\n").unwrap();
        assert!(locked(dir.path()).exclude_newer_package.is_none());
    }

    #[test]
    fn last_change_is_the_commit_time_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("requirements.txt"), "flask==2.0.1\n").unwrap();
        std::fs::write(root.join("app.py"), "x = 1\n").unwrap();
        let git = |args: &[&str], date: &str| {
            let status = Command::new("git")
                .arg("-C")
                .arg(root)
                .args(args)
                .env("GIT_AUTHOR_DATE", date)
                .env("GIT_COMMITTER_DATE", date)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
                .status()
                .unwrap();
            assert!(status.success());
        };
        assert!(last_change(root, &[PathBuf::from("requirements.txt")]).is_none());
        git(&["init", "-q"], "2021-06-01T10:00:00Z");
        git(&["add", "."], "2021-06-01T10:00:00Z");
        git(&["commit", "-qm", "one"], "2021-06-01T10:00:00Z");
        std::fs::write(root.join("app.py"), "x = 2\n").unwrap();
        git(&["commit", "-qam", "two"], "2023-01-01T10:00:00Z");
        let fact = last_change(root, &[PathBuf::from("requirements.txt")]).unwrap();
        assert_eq!(fact.value.to_string(), "2021-06-01T10:00:00Z");
        assert!(
            fact.source
                .file
                .display()
                .to_string()
                .starts_with("git commit ")
        );
    }
}
