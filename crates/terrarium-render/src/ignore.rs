//! `.dockerignore`: keeps secrets, VCS data, virtualenvs, caches and build output out of the
//! build context (L22), and the Docker files themselves, so editing them doesn't bust the cache.
//! The rules are the plan's: `terrarium build` applies the same ones to its app layer.

use std::fmt::Write as _;

use terrarium_plan::{DEFAULT_IGNORES, Plan};
use terrarium_project::Workspace;

/// The heading line of terrarium's rules: a `.dockerignore` that has it has had them merged.
const HEADING: &str = "# Written by `terrarium init`: what never belongs in the build context.";

/// terrarium's rules by section, with their heading.
fn defaults() -> String {
    let mut out = format!(
        "{HEADING}\n# Docker's syntax: patterns start at the context root, **/ matches any depth.\n"
    );
    for (why, patterns) in DEFAULT_IGNORES {
        let _ = writeln!(out, "# {why}");
        for pattern in *patterns {
            let _ = writeln!(out, "{pattern}");
        }
    }
    out
}

/// A project's `.dockerignore` with terrarium's rules before its own (kept as written, so
/// they still win: the last matching rule decides); `None` when every one of terrarium's rules
/// is there already.
pub(crate) fn merge_dockerignore(existing: &str) -> Option<String> {
    let lines: Vec<&str> = existing.lines().map(str::trim).collect();
    let complete = DEFAULT_IGNORES
        .iter()
        .flat_map(|(_, patterns)| patterns.iter())
        .all(|pattern| lines.contains(pattern));
    if complete {
        return None;
    }
    Some(format!(
        "{}# The project's own rules, as they were (they win over the ones above)\n{existing}{}",
        defaults(),
        if existing.ends_with('\n') || existing.is_empty() {
            ""
        } else {
            "\n"
        }
    ))
}

/// The `.dockerignore` terrarium writes: its own rules by section, then any the plan adds.
pub(crate) fn dockerignore(plan: &Plan) -> String {
    let mut out = defaults();
    let defaults: usize = DEFAULT_IGNORES.iter().map(|(_, p)| p.len()).sum();
    let own = plan.context.value.get(defaults..).unwrap_or_default();
    if !own.is_empty() {
        out.push_str("# The project's own rules\n");
        for rule in own {
            let _ = writeln!(out, "{rule}");
        }
    }
    out
}

/// The rules of a uv workspace member's Dockerfiles (`Dockerfile.dockerignore`, which BuildKit
/// reads instead of the context's `.dockerignore`): the context is the workspace root, so
/// everything is left out but the workspace's `pyproject.toml` and `uv.lock`, each member's
/// `pyproject.toml` and this member, to which the plan's rules apply.
pub(crate) fn workspace_dockerignore(plan: &Plan, workspace: &Workspace) -> String {
    let member = workspace.member.display().to_string();
    let mut out = format!(
        "{HEADING}\n# The build context is the uv workspace root ({}): only the workspace's lock and\n\
         # manifests and this member ({member}/) go in, under the project's rules.\n*\n!pyproject.toml\n!uv.lock\n",
        workspace.root.display()
    );
    for other in &workspace.members {
        let _ = writeln!(out, "!{}/pyproject.toml", other.display());
    }
    let _ = writeln!(out, "!{member}");
    for rule in &plan.context.value {
        let (negated, pattern) = match rule.strip_prefix('!') {
            Some(pattern) => ("!", pattern),
            None => ("", rule.as_str()),
        };
        let _ = writeln!(out, "{negated}{member}/{}", pattern.trim_start_matches('/'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_dockerignore_keeps_its_rules_after_terrariums() {
        let merged = merge_dockerignore("# mine\nsecrets.json\n!.env.example").unwrap();
        let mine = merged.find("secrets.json").unwrap();
        assert!(merged.find("**/.env").unwrap() < mine);
        assert!(
            merged.ends_with("# mine\nsecrets.json\n!.env.example\n"),
            "{merged}"
        );
        assert_eq!(
            merge_dockerignore(&merged),
            None,
            "merging twice adds nothing"
        );
    }
}
