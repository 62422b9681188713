//! Finding the files to lint: explicit files as given, directories walked with .gitignore
//! respected.

use std::path::{Path, PathBuf};

use crate::error::LintError;
use crate::lint::FileKind;

/// The files to lint under `paths`, in a stable order, each with its kind.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<(PathBuf, FileKind)>, LintError> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_file() {
            out.push((path.clone(), FileKind::for_explicit(path)));
            continue;
        }
        if !path.exists() {
            return Err(LintError::Missing { path: path.clone() });
        }
        let mut found = Vec::new();
        let walker = ignore::WalkBuilder::new(path).require_git(false).build();
        for entry in walker {
            let entry = entry.map_err(|e| LintError::Walk {
                path: path.clone(),
                message: e.to_string(),
            })?;
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            if let Some(kind) =
                FileKind::from_name(entry.path()).or_else(|| FileKind::sniff(entry.path()))
            {
                found.push((strip_dot(entry.path()), kind));
            }
        }
        found.sort();
        out.extend(found);
    }
    out.dedup();
    Ok(out)
}

fn strip_dot(path: &Path) -> PathBuf {
    path.strip_prefix("./")
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_and_respects_gitignore() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for name in [
            "Dockerfile",
            "Dockerfile.dev",
            "api.Dockerfile",
            "compose.yaml",
            "docker-compose.prod.yml",
            "Containerfile",
            "README.md",
            "Dockerfile.dockerignore",
            "ignored/Dockerfile",
            "sub/compose.yml",
        ] {
            let p = root.join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, "x").expect("write");
        }
        std::fs::write(root.join(".gitignore"), "ignored/\n").expect("write");
        let found = discover(&[root.to_path_buf()]).expect("discover");
        let names: Vec<String> = found
            .iter()
            .map(|(p, _)| {
                p.strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "Containerfile",
                "Dockerfile",
                "Dockerfile.dev",
                "api.Dockerfile",
                "compose.yaml",
                "docker-compose.prod.yml",
                "sub/compose.yml"
            ]
        );
        assert_eq!(found[4].1, FileKind::Compose);
        assert!(matches!(
            discover(&[root.join("missing")]),
            Err(LintError::Missing { .. })
        ));
    }
}
