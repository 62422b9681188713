//! Secrets never enter the image (L22): no secret ENV/ARG values, no secret files copied, a
//! `.dockerignore` next to any Dockerfile that copies its whole context.

use super::detect::{has_url_password, is_literal_value, is_secret_name};
use super::{DockerfileContext, Emitter, Rule};
use crate::dockerfile::Kind;
use crate::finding::{LessonId, Severity};

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "secret-in-env",
        lesson: Some(LessonId::new(22)),
        severity: Severity::Error,
        summary: "a secret-looking ENV or ARG (or a URL with a password) is baked into the image",
        rationale: "ENV values are stored in the image config and ARG values in its history: \
                    anyone who can pull the image can read them. Pass secrets at run time or \
                    with BuildKit secret mounts.",
        bad: "ENV SECRET_KEY=s3cr3t DATABASE_PASSWORD=hunter2\nARG GITHUB_TOKEN",
        good: "# set SECRET_KEY at run time: docker run -e SECRET_KEY=... / compose env_file\nRUN --mount=type=secret,id=github_token ...",
        fix: "remove it from the Dockerfile; provide it at run time or via `RUN --mount=type=secret`",
        dockerfile: Some(secret_in_env),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "secret-file-copied",
        lesson: Some(LessonId::new(22)),
        severity: Severity::Error,
        summary: "a secret file (.env, private key, credentials) is copied into the image",
        rationale: "Files copied into a layer stay in the image forever, even if deleted later.",
        bad: "COPY .env /app/.env\nCOPY id_rsa /root/.ssh/id_rsa",
        good: "# .dockerignore lists .env; configuration comes from the environment at run time",
        fix: "do not copy it; list it in .dockerignore and pass the values at run time",
        dockerfile: Some(secret_file_copied),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "missing-dockerignore",
        lesson: Some(LessonId::new(22)),
        severity: Severity::Warning,
        summary: "the whole build context is copied but there is no .dockerignore",
        rationale: "`COPY . .` without a .dockerignore copies .git, .env, virtualenvs and caches \
                    into the image: secrets leak and every change busts the cache.",
        bad: "COPY . .    # and no .dockerignore next to the Dockerfile",
        good: "# .dockerignore\n.git\n.env\n.venv\n__pycache__/",
        fix: "add a .dockerignore next to the Dockerfile (terrarium init writes one)",
        dockerfile: Some(missing_dockerignore),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "dockerignore-incomplete",
        lesson: Some(LessonId::new(22)),
        severity: Severity::Warning,
        summary: "the .dockerignore does not keep .env or .git out of a whole-context COPY",
        rationale: "`COPY . .` copies everything the .dockerignore lets through: a .env file \
                    puts secrets into a layer, .git puts the whole history (and busts the cache \
                    on every commit).",
        bad: "# .dockerignore\n__pycache__/",
        good: "# .dockerignore\n.env\n.env.*\n.git\n__pycache__/",
        fix: "add `.env`, `.env.*` and `.git` to .dockerignore",
        dockerfile: Some(dockerignore_incomplete),
        compose: None,
        kubernetes: None,
    },
];

fn secret_in_env(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, inst) in cx.instructions() {
        if !matches!(inst.kind, Kind::Env | Kind::Arg) {
            continue;
        }
        for (key, value) in inst.pairs() {
            if let Some(v) = value.as_ref().filter(|v| has_url_password(&v.text)) {
                out.span(
                    v.span,
                    format!("`{}` holds a URL with a password", key.text),
                );
                continue;
            }
            if !is_secret_name(&key.text) {
                continue;
            }
            let literal = value.as_ref().is_some_and(|v| is_literal_value(&v.text));
            match (inst.kind, literal) {
                (Kind::Env, true) => out.span(key.span, format!("ENV `{}` stores a secret in the image config", key.text)),
                (Kind::Arg, true) => out.span(key.span, format!("ARG `{}` has a secret default that is recorded in the image history", key.text)),
                (Kind::Arg, false) => out.span_with(key.span, Severity::Warning, format!("ARG `{}` passes a secret through a build argument, which is recorded in the image history", key.text)),
                _ => {}
            }
        }
    }
}

fn is_secret_file(path: &str) -> bool {
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    (name == ".env" || name.starts_with(".env."))
        && !name.ends_with(".example")
        && !name.ends_with(".sample")
        && !name.ends_with(".template")
        || matches!(
            name,
            "id_rsa"
                | "id_ed25519"
                | "id_ecdsa"
                | ".netrc"
                | ".pypirc"
                | ".git-credentials"
                | "credentials.json"
                | ".aws"
                | ".ssh"
                | ".git"
        )
        || name.ends_with(".pem")
        || name.ends_with(".key")
        || name.ends_with(".p12")
}

fn secret_file_copied(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, inst) in cx.instructions() {
        if !matches!(inst.kind, Kind::Copy | Kind::Add)
            || inst.flag("from").is_some()
            || !inst.heredocs.is_empty()
        {
            continue;
        }
        let words = inst.words();
        for w in &words[..words.len().saturating_sub(1)] {
            if is_secret_file(&w.text) {
                out.span(w.span, format!("`{}` is copied into the image", w.text));
            }
        }
    }
}

fn missing_dockerignore(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let Some(dir) = cx.path.parent() else { return };
    let dir = if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    };
    let own = cx
        .path
        .file_name()
        .map(|n| format!("{}.dockerignore", n.to_string_lossy()));
    if dir.join(".dockerignore").exists() || own.is_some_and(|o| dir.join(o).exists()) {
        return;
    }
    for (_, inst) in cx.instructions() {
        if !matches!(inst.kind, Kind::Copy | Kind::Add) || inst.flag("from").is_some() {
            continue;
        }
        let words = inst.words();
        if words[..words.len().saturating_sub(1)]
            .iter()
            .any(|w| matches!(w.text.as_str(), "." | "./" | "*" | "./*"))
        {
            out.span(
                inst.span,
                "the whole context is copied and there is no .dockerignore next to this Dockerfile",
            );
            return;
        }
    }
}

/// The .dockerignore that applies to this Dockerfile, if any.
fn dockerignore(cx: &DockerfileContext<'_>) -> Option<String> {
    let dir = cx.context_dir();
    let own = cx
        .path
        .file_name()
        .map(|n| dir.join(format!("{}.dockerignore", n.to_string_lossy())));
    own.into_iter()
        .chain(std::iter::once(dir.join(".dockerignore")))
        .find_map(|p| std::fs::read_to_string(p).ok())
}

/// Whether the patterns exclude a top-level entry named `name` (and do not re-include it).
fn excludes(patterns: &str, name: &str) -> bool {
    let mut excluded = false;
    for line in patterns
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (negated, pattern) = match line.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, line),
        };
        let pattern = pattern
            .trim_start_matches("**/")
            .trim_start_matches('/')
            .trim_end_matches('/');
        if glob_matches(pattern, name) {
            excluded = !negated;
        }
    }
    excluded
}

/// `*` and `?` glob matching within one path component.
fn glob_matches(pattern: &str, name: &str) -> bool {
    if pattern == "**" {
        return true;
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn dockerignore_incomplete(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let Some(patterns) = dockerignore(cx) else {
        return;
    };
    let Some(copy) = cx.instructions().map(|(_, i)| i).find(|i| {
        matches!(i.kind, Kind::Copy | Kind::Add) && i.flag("from").is_none() && {
            let words = i.words();
            words[..words.len().saturating_sub(1)]
                .iter()
                .any(|w| matches!(w.text.as_str(), "." | "./" | "*" | "./*"))
        }
    }) else {
        return;
    };
    let missing: Vec<&str> = [".env", ".git"]
        .into_iter()
        .filter(|name| !excludes(&patterns, name))
        .collect();
    if !missing.is_empty() {
        out.span(
            copy.span,
            format!(
                "the .dockerignore does not exclude {}: the whole context is copied",
                missing.join(" and ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns() {
        assert!(excludes(".env\n.git/\n", ".env") && excludes(".env\n.git/\n", ".git"));
        assert!(excludes("**/.env*\n", ".env"));
        assert!(excludes("*\n!app.py\n", ".git"));
        assert!(!excludes("*\n!.env\n", ".env"));
        assert!(excludes(".*\n", ".git"));
        assert!(!excludes("# .env\nenv\n.envrc\n", ".env"));
        assert!(glob_matches("*.py[cod]", "x.py[cod]"));
        assert!(!glob_matches("a*b", "ac"));
    }
}
