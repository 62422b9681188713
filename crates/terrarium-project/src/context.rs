//! The build context: which of the project's files a build sees, decided by `.dockerignore`
//! rules with Docker's own semantics, so `terrarium build` and `docker build` copy the same files.
//!
//! Docker's rules differ from `.gitignore`'s, which is why this is not the `ignore` crate's
//! gitignore matcher: every pattern is anchored at the context root (`build` is `./build`
//! only, never `pkg/build`), `**` spans any number of directories, the last matching rule wins,
//! a rule that matches a directory matches everything under it, and a `!` rule can re-include a
//! file inside an excluded directory. Patterns are cleaned like Go's `filepath.Clean` and a
//! leading `/` is dropped, as `docker build` does. Globs are compiled with `globset`, with `*`
//! and `?` not crossing `/`, into one set: most rules are literals, extensions or prefixes that
//! need no regex, and the others share one.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::DetectError;

/// An ordered set of `.dockerignore` rules.
#[derive(Debug, Clone, Default)]
pub struct ContextRules {
    /// The rules' patterns, in order.
    set: GlobSet,
    /// For each rule, whether it is a `!pattern` (re-includes what earlier rules excluded).
    negated: Vec<bool>,
}

/// A file, directory or symlink of the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// The path relative to the project root, `/`-separated.
    pub path: String,
    /// Where it is on disk.
    pub source: PathBuf,
    /// What it is.
    pub kind: ContextKind,
}

/// The kind of a [`ContextEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextKind {
    /// A directory.
    Directory,
    /// A regular file: its size and whether any execute bit is set.
    File {
        /// Size in bytes.
        size: u64,
        /// Any execute bit set.
        executable: bool,
    },
    /// A symbolic link and its target, as written.
    Symlink(String),
}

/// Clean a pattern like Go's `filepath.Clean` and drop a leading `/`, as Docker does.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !pattern.starts_with('/') {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

impl ContextRules {
    /// Rules from `.dockerignore` lines; `file` names the file in errors (each with its line).
    pub fn parse<'a>(
        lines: impl IntoIterator<Item = &'a str>,
        file: &Path,
    ) -> Result<Self, DetectError> {
        let mut set = GlobSetBuilder::new();
        let mut negated = Vec::new();
        for (index, line) in lines.into_iter().enumerate() {
            let text = line.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let (is_negated, pattern) = match text.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, text),
            };
            let pattern = clean(pattern);
            let glob = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|err| {
                    DetectError::malformed(
                        file,
                        Some(index + 1),
                        format!("`{text}` is not a valid pattern: {}", err.kind()),
                        "fix the pattern (Docker's .dockerignore syntax: *, ?, [a-z], ** and !)",
                    )
                })?;
            set.add(glob);
            negated.push(is_negated);
        }
        let set = set.build().map_err(|err| {
            DetectError::malformed(
                file,
                None,
                format!("its patterns can't be compiled together: {err}"),
                "use fewer or simpler patterns",
            )
        })?;
        Ok(Self { set, negated })
    }

    /// Whether the path (relative, `/`-separated) is left out of the context: the last rule
    /// that matches it or one of its parent directories decides.
    pub fn excludes(&self, path: &str) -> bool {
        let parents = path.match_indices('/').map(|(at, _)| &path[..at]);
        let mut matched = Vec::new();
        let mut last = None;
        for candidate in std::iter::once(path).chain(parents) {
            self.set.matches_into(candidate, &mut matched);
            last = last.max(matched.last().copied());
        }
        last.and_then(|rule| self.negated.get(rule))
            .is_some_and(|negated| !negated)
    }

    /// Every entry of the context under `root`, sorted by path (parents before children).
    /// An excluded directory is skipped whole unless a `!` rule may re-include something in
    /// it; a directory is kept when anything in it is.
    pub fn walk(&self, root: &Path) -> Result<Vec<ContextEntry>, DetectError> {
        let may_reinclude = self.negated.iter().any(|negated| *negated);
        let mut entries = Vec::new();
        self.walk_dir(root, "", may_reinclude, &mut entries)?;
        Ok(entries)
    }

    /// Lay the context out under `to`: directories made, symlinks recreated, files copied, or
    /// hard-linked where the file system allows when `link` is true (only for readers: a
    /// command writing to a hard-linked file would change the project's own). What a build
    /// that runs in a directory (a classic `docker build`, a build step) sees.
    pub fn materialize(
        &self,
        root: &Path,
        to: &Path,
        link: bool,
    ) -> Result<Vec<ContextEntry>, DetectError> {
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DetectError::Read { path, source }
        };
        std::fs::create_dir_all(to).map_err(failed(to))?;
        let entries = self.walk(root)?;
        for entry in &entries {
            let target = to.join(&entry.path);
            match &entry.kind {
                ContextKind::Directory => {
                    std::fs::create_dir_all(&target).map_err(failed(&target))?;
                }
                ContextKind::Symlink(link) => {
                    std::os::unix::fs::symlink(link, &target).map_err(failed(&target))?;
                }
                ContextKind::File { .. } => {
                    if !link || std::fs::hard_link(&entry.source, &target).is_err() {
                        std::fs::copy(&entry.source, &target).map_err(failed(&target))?;
                    }
                }
            }
        }
        Ok(entries)
    }

    fn walk_dir(
        &self,
        dir: &Path,
        prefix: &str,
        may_reinclude: bool,
        out: &mut Vec<ContextEntry>,
    ) -> Result<(), DetectError> {
        let read_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DetectError::Read { path, source }
        };
        let mut children: Vec<_> = std::fs::read_dir(dir)
            .map_err(read_error(dir))?
            .collect::<Result<_, _>>()
            .map_err(read_error(dir))?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let name = child.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let path = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            };
            let source = child.path();
            let meta = std::fs::symlink_metadata(&source).map_err(read_error(&source))?;
            let excluded = self.excludes(&path);
            if meta.is_dir() {
                if excluded && !may_reinclude {
                    continue;
                }
                let at = out.len();
                self.walk_dir(&source, &path, may_reinclude, out)?;
                if !excluded || out.len() > at {
                    out.insert(
                        at,
                        ContextEntry {
                            path,
                            source,
                            kind: ContextKind::Directory,
                        },
                    );
                }
                continue;
            }
            if excluded {
                continue;
            }
            let kind = if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&source).map_err(read_error(&source))?;
                ContextKind::Symlink(target.to_string_lossy().into_owned())
            } else if meta.is_file() {
                use std::os::unix::fs::PermissionsExt;
                ContextKind::File {
                    size: meta.len(),
                    executable: meta.permissions().mode() & 0o111 != 0,
                }
            } else {
                continue; // sockets, fifos and devices are never part of a context
            };
            out.push(ContextEntry { path, source, kind });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> ContextRules {
        ContextRules::parse(text.lines(), Path::new(".dockerignore")).unwrap()
    }

    #[test]
    fn patterns_are_anchored_at_the_root() {
        let r = rules("build\ndist/\n/node_modules\n");
        assert!(r.excludes("build"));
        assert!(r.excludes("build/lib/x.py"));
        assert!(r.excludes("dist/a.whl"));
        assert!(r.excludes("node_modules/x"));
        assert!(!r.excludes("pkg/build/mod.py"));
        assert!(!r.excludes("pkg/dist"));
    }

    #[test]
    fn double_star_spans_directories_and_star_does_not() {
        let r = rules("**/__pycache__\n*.pyc\n**/.env\n");
        assert!(r.excludes("__pycache__/a.pyc"));
        assert!(r.excludes("a/b/__pycache__/c.pyc"));
        assert!(r.excludes("x.pyc"));
        assert!(!r.excludes("a/x.pyc"));
        assert!(r.excludes(".env"));
        assert!(r.excludes("config/.env"));
    }

    #[test]
    fn the_last_matching_rule_wins_and_can_reinclude_inside_excluded_dirs() {
        let r = rules("docs\n!docs/README.md\n");
        assert!(!r.excludes("docs/README.md"));
        assert!(r.excludes("docs/other.txt"));
        let r = rules("*.md\n!README.md\n");
        assert!(!r.excludes("README.md"));
        assert!(r.excludes("CHANGES.md"));
    }

    #[test]
    fn comments_blank_lines_and_cleaning() {
        let r = rules("# comment\n\n  ./secrets//keys/  \n");
        assert!(r.excludes("secrets/keys/id"));
        assert!(!r.excludes("secrets/other"));
    }

    #[test]
    fn a_bad_pattern_names_its_line() {
        let err = ContextRules::parse(["ok", "[z-a"], Path::new("p/.dockerignore")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("p/.dockerignore:2:"), "{text}");
    }

    #[test]
    fn walk_keeps_parents_of_reincluded_files_and_sorts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "app.py",
            ".env",
            "pkg/build/mod.py",
            "build/out.txt",
            "docs/README.md",
            "docs/notes.txt",
            ".git/HEAD",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let r = rules(".env\n.git\nbuild\ndocs\n!docs/README.md\n");
        let paths: Vec<String> = r.walk(root).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "app.py",
                "docs",
                "docs/README.md",
                "pkg",
                "pkg/build",
                "pkg/build/mod.py"
            ]
        );
    }
}
