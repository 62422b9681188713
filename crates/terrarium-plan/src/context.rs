//! What the build context leaves out: terrarium's `.dockerignore` rules, then the project's own.
//! `terrarium init` writes these rules, `terrarium run`/`dev` give them to BuildKit beside a
//! generated Dockerfile, and `terrarium build` applies them to the app layer, so every path
//! copies the same files (L06, L22).

use terrarium_project::{Project, Source};

use crate::{Decision, Origin};

/// terrarium's rules, in sections with the reason for each. Patterns use Docker's semantics:
/// anchored at the context root (`build` is only `./build`), `**/` for any depth.
pub const DEFAULT_IGNORES: &[(&str, &[&str])] = &[
    (
        "Secrets, at any depth (L22)",
        &[
            "**/.env",
            "**/.env.*",
            "**/*.pem",
            "**/*.key",
            "**/id_rsa*",
            "**/id_ed25519*",
            "**/id_ecdsa*",
        ],
    ),
    (
        "Version control and editors",
        &["**/.git", ".hg", ".svn", ".idea", ".vscode", "**/.DS_Store"],
    ),
    (
        "Virtualenvs: the image installs into its own site-packages (L04)",
        &["**/.venv", "venv"],
    ),
    (
        "Caches and build output (only at the root: a package named build stays)",
        &[
            "**/__pycache__",
            "**/*.py[cod]",
            "**/.pytest_cache",
            ".mypy_cache",
            ".ruff_cache",
            ".tox",
            ".nox",
            ".coverage",
            "htmlcov",
            "build",
            "dist",
            "**/*.egg-info",
            "node_modules",
        ],
    ),
    (
        "Container files: changing them should not rebuild the source layer (L06)",
        &[
            "Dockerfile*",
            ".dockerignore",
            "compose*.y*ml",
            "docker-compose*.y*ml",
            "terrarium.lock",
        ],
    ),
];

/// The rules of the build context: terrarium's, then the project's `.dockerignore` (whose
/// rules win, `!` included).
pub(crate) fn decide_context(project: &Project) -> Decision<Vec<String>> {
    let mut rules: Vec<String> = DEFAULT_IGNORES
        .iter()
        .flat_map(|(_, patterns)| patterns.iter().map(|p| (*p).to_owned()))
        .collect();
    match &project.dockerignore {
        Some(own) => {
            // A rule repeated before any `!` rule changes nothing (the `.dockerignore` that
            // `terrarium init` wrote repeats all of terrarium's): keep the list short.
            let mut reincluded = false;
            for line in own.value.iter().map(|line| line.trim()) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                reincluded |= line.starts_with('!');
                if reincluded || !rules.iter().any(|r| r == line) {
                    rules.push(line.to_owned());
                }
            }
            Decision::new(
                rules,
                Origin::Detected,
                "terrarium's rules (secrets, VCS, virtualenvs, caches, build output), then the \
                 project's .dockerignore, whose rules win",
                vec![own.source.clone()],
            )
        }
        None => Decision::new(
            rules,
            Origin::Default,
            "terrarium's rules: secrets, VCS, virtualenvs, caches, build output and the \
             container files stay out of the image (L06, L22)",
            Vec::<Source>::new(),
        ),
    }
}
