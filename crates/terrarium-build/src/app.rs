//! The app layer: the project's own files under /app (root-owned, read-only to the service),
//! its data directories owned by the service user, and, for a packaged project, the project
//! installed: a `.pth` that puts its import root on `sys.path`, its `.dist-info` and its
//! console scripts.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use terrarium_image::{Content, Entry, LayerPath, LayerTree, Ownership};
use terrarium_plan::Plan;
use terrarium_project::Project;
use terrarium_wheels::{Target, launcher};

use crate::error::{BuildError, io_error};

/// Where the project's code goes.
pub const APP_DIR: &str = "app";

/// Names never copied into the image: version control, virtual environments, caches, build
/// output, secrets and terrarium's own files (L22, L06).
const EXCLUDED_NAMES: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".idea",
    ".vscode",
    "node_modules",
    "build",
    "dist",
    ".dockerignore",
    "terrarium.lock",
    ".DS_Store",
];

fn excluded(name: &str) -> bool {
    EXCLUDED_NAMES.contains(&name)
        || name.starts_with(".env")
        || name.ends_with(".pyc")
        || name.ends_with(".egg-info")
        || name.ends_with(".pem")
        || name.ends_with(".key")
        || name.starts_with("id_rsa")
        || name.starts_with("Dockerfile")
        || name.starts_with("compose.")
        || name.starts_with("docker-compose")
}

fn layer_path(text: &str) -> Result<LayerPath, BuildError> {
    Ok(LayerPath::new(text)?)
}

/// Add `dir` (recursively) at `at`, normalizing modes (0755 directories and executables, 0644
/// other files) so the layer does not depend on the umask.
fn add_tree(tree: &mut LayerTree, dir: &Path, at: &LayerPath) -> Result<(), BuildError> {
    tree.insert(Entry::directory(at.clone(), 0o755), Content::Empty);
    let mut children: Vec<_> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_error(dir))?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let name = child.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if excluded(name) {
            continue;
        }
        let path = child.path();
        let meta = std::fs::symlink_metadata(&path).map_err(io_error(&path))?;
        let target = at.join(name)?;
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&path).map_err(io_error(&path))?;
            tree.insert(
                Entry::symlink(target, link.to_string_lossy()),
                Content::Empty,
            );
        } else if meta.is_dir() {
            if path.join("pyvenv.cfg").is_file() {
                continue;
            }
            add_tree(tree, &path, &target)?;
        } else if meta.is_file() {
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            tree.insert(Entry::file(target, meta.len(), mode), Content::Path(path));
        }
    }
    Ok(())
}

/// The project's version from pyproject.toml (`[project].version` or `[tool.poetry].version`).
pub(crate) fn project_version(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("pyproject.toml")).ok()?;
    let value: toml::Table = toml::from_str(&text).ok()?;
    let from = |table: Option<&toml::Value>| table?.get("version")?.as_str().map(str::to_owned);
    from(value.get("project")).or_else(|| from(value.get("tool").and_then(|t| t.get("poetry"))))
}

/// The app layer's tree for `plan` and `project` on `target`.
pub fn app_tree(plan: &Plan, project: &Project, target: &Target) -> Result<LayerTree, BuildError> {
    let mut tree = LayerTree::new();
    add_tree(&mut tree, &project.root, &layer_path(APP_DIR)?)?;
    for volume in &plan.volumes.value {
        let dir = volume.path.trim_matches('/');
        if !dir.is_empty() {
            tree.insert(
                Entry::directory(layer_path(dir)?, 0o755).owned_by(Ownership::nonroot()),
                Content::Empty,
            );
        }
    }
    if plan.install_project.value
        && let Some(package) = &project.package
    {
        install_project(&mut tree, plan, project, package.src_layout, target)?;
    }
    Ok(tree)
}

/// The project "installed" in place: what an editable install gives, without a build backend.
fn install_project(
    tree: &mut LayerTree,
    plan: &Plan,
    project: &Project,
    src_layout: bool,
    target: &Target,
) -> Result<(), BuildError> {
    let site = target.site_packages();
    let dist = plan
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>();
    let version = project_version(&project.root).unwrap_or_else(|| "0".into());
    let import_root = if src_layout { "/app/src" } else { "/app" };
    let dist_info = format!("{site}/{dist}-{version}.dist-info");
    tree.insert_bytes(
        layer_path(&format!("{site}/{dist}.pth"))?,
        0o644,
        format!("{import_root}\n").into_bytes(),
    );
    tree.insert_bytes(
        layer_path(&format!("{dist_info}/METADATA"))?,
        0o644,
        format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {version}\n",
            plan.name
        )
        .into_bytes(),
    );
    tree.insert_bytes(
        layer_path(&format!("{dist_info}/INSTALLER"))?,
        0o644,
        b"terrarium\n".to_vec(),
    );
    let mut entry_points = String::from("[console_scripts]\n");
    for script in &project.scripts {
        let script = &script.value;
        if let Some(text) = launcher(&target.interpreter(), &script.target)
            && !script.name.contains('/')
        {
            tree.insert_bytes(
                layer_path(&format!("usr/local/bin/{}", script.name))?,
                0o755,
                text.into_bytes(),
            );
            entry_points.push_str(&format!("{} = {}\n", script.name, script.target));
        }
    }
    tree.insert_bytes(
        layer_path(&format!("{dist_info}/entry_points.txt"))?,
        0o644,
        entry_points.into_bytes(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_out_secrets_caches_and_build_output() {
        for name in [
            ".env",
            ".env.local",
            ".git",
            "__pycache__",
            "x.pyc",
            "build",
            "key.pem",
            "Dockerfile.dev",
            "terrarium.lock",
        ] {
            assert!(excluded(name), "{name}");
        }
        for name in ["app.py", "static", "templates", "environment.py"] {
            assert!(!excluded(name), "{name}");
        }
    }
}
