//! Repeatable builds from trusted sources (L13): tagged and pinned base images, no TLS or
//! signature bypasses, no `curl | sh`, registries from the allow-list.

use super::detect::pipes_into_interpreter;
use super::{ComposeContext, DockerfileContext, Emitter, Rule};
use crate::dockerfile::Kind;
use crate::finding::{LessonId, Severity};
use crate::span::Span;

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "untagged-image",
        lesson: None,
        severity: Severity::Warning,
        summary: "FROM uses an image without a tag",
        rationale: "Without a tag Docker pulls `latest`, which changes under you.",
        bad: "FROM python",
        good: "FROM python:3.12.8-slim-bookworm",
        fix: "add an explicit tag (and ideally a digest)",
        dockerfile: Some(untagged_image),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "latest-tag",
        lesson: Some(LessonId::new(13)),
        severity: Severity::Warning,
        summary: "FROM uses `latest` or another floating tag with no version (`python:slim`)",
        rationale: "`latest` points at a different image every few weeks: the same Dockerfile \
                    builds a different image. A tag with no version in it (`slim`, `alpine`, \
                    `slim-bookworm`, `stable`) floats the same way, to each new release. \
                    Debian and Ubuntu codenames (`debian:bookworm-slim`) are versions.",
        bad: "FROM python:slim",
        good: "FROM python:3.12.8-slim-bookworm",
        fix: "pin a specific version tag (and ideally a digest)",
        dockerfile: Some(latest_tag),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "tls-bypass",
        lesson: Some(LessonId::new(13)),
        severity: Severity::Error,
        summary: "TLS or signature checks are turned off (--trusted-host, curl -k, --allow-unauthenticated, ...)",
        rationale: "Without certificate and signature checks anyone on the network path can \
                    swap what goes into the image.",
        bad: "RUN pip install --trusted-host pypi.org -r requirements.txt\nRUN curl -k https://example.com/x.sh -o x.sh",
        good: "RUN pip install --no-cache-dir -r requirements.txt\nRUN curl -fsSL https://example.com/x.sh -o x.sh",
        fix: "remove the bypass; install the CA certificate you need instead",
        dockerfile: Some(tls_bypass),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "pipe-to-shell",
        lesson: Some(LessonId::new(13)),
        severity: Severity::Warning,
        summary: "a downloaded script is piped straight into a shell or Python",
        rationale: "`curl ... | sh` runs whatever the server returns today, unverified.",
        bad: "RUN curl -sSL https://install.python-poetry.org | python3 -",
        good: "RUN pip install --no-cache-dir poetry==1.8.5",
        fix: "install a pinned package, or download, verify a checksum, then run",
        dockerfile: Some(pipe_to_shell),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "untrusted-registry",
        lesson: Some(LessonId::new(13)),
        severity: Severity::Warning,
        summary: "an image comes from a registry outside `trusted-registries`",
        rationale: "When the project lists the registries it trusts, images from anywhere else \
                    are a supply-chain risk. Off unless `trusted-registries` is configured.",
        bad: "# trusted-registries = [\"registry.example.com\"]\nFROM docker.io/library/python:3.12-slim",
        good: "FROM registry.example.com/python:3.12-slim",
        fix: "pull the image through a trusted registry, or add the registry to trusted-registries",
        dockerfile: Some(untrusted_registry),
        compose: Some(untrusted_registry_compose),
        kubernetes: None,
    },
];

/// An image reference split into registry, repository, tag and digest.
pub(super) struct ImageRef<'a> {
    pub registry: &'a str,
    /// The last component of the repository path (`python`, `python3-debian12`).
    pub name: &'a str,
    pub tag: Option<&'a str>,
    pub digest: bool,
}

impl ImageRef<'_> {
    /// Whether the tag floats to each new release: `latest`, or a tag with no version in it
    /// (`slim`, `alpine`, `slim-bookworm`, `stable`) on a repository whose name has none
    /// either (`python3-debian12:nonroot` is versioned by its name). Debian and Ubuntu tags
    /// are codenames (`bookworm-slim`, `noble`), which are versions, unless they name a
    /// moving suite (`stable`, `testing`, `sid`, `rolling`, `devel`).
    pub fn floats(&self) -> bool {
        let Some(tag) = self.tag.filter(|t| !t.is_empty() && !self.digest) else {
            return false;
        };
        if tag == "latest" {
            return true;
        }
        let has_digit = |s: &str| s.chars().any(|c| c.is_ascii_digit());
        if has_digit(tag) || has_digit(self.name) {
            return false;
        }
        if matches!(self.name, "debian" | "ubuntu" | "buildpack-deps") {
            let suite = tag.split('-').next().unwrap_or(tag);
            return matches!(
                suite,
                "stable" | "oldstable" | "testing" | "unstable" | "sid" | "rolling" | "devel"
            );
        }
        true
    }
}

pub(super) fn parse_image(image: &str) -> ImageRef<'_> {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo_name, tag) = match name[last_slash..].split_once(':') {
        Some((n, t)) => (n, Some(t)),
        None => (&name[last_slash..], None),
    };
    let first = name.split('/').next().unwrap_or("");
    let registry = if name.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        first
    } else {
        "docker.io"
    };
    ImageRef {
        registry,
        name: repo_name,
        tag,
        digest,
    }
}

/// External images the build pulls: FROM bases that are not stages (global ARGs substituted)
/// and `COPY --from=<image>` sources. A base that uses a variable with no value at lint time
/// (an ARG without default, set with `--build-arg`) is left out: its tag is not known.
fn external_bases(cx: &DockerfileContext<'_>) -> Vec<(Span, String)> {
    let args = cx.file.global_args();
    let has_value = |name: &str| args.iter().any(|(k, v)| k == name && v.is_some());
    let bases = cx
        .file
        .stages
        .iter()
        .filter(|s| s.parent.is_none() && !uses_unset_variable(&s.base.text, &has_value))
        .map(|s| (s.base.span, s.base_resolved.clone()));
    let copies = cx
        .file
        .instructions
        .iter()
        .filter(|i| matches!(i.kind, Kind::Copy | Kind::Add))
        .filter_map(|i| i.flag("from"))
        .filter_map(|f| f.value.as_ref().map(|v| (f.span, v.clone())))
        .filter(|(_, v)| v.contains(['/', ':']) && cx.file.stage_by_ref(v).is_none());
    bases
        .chain(copies)
        .filter(|(_, image)| {
            !(image.is_empty() || image.eq_ignore_ascii_case("scratch") || image.contains('$'))
        })
        .collect()
}

/// Whether `text` uses a variable that has no value: `$NAME` or `${NAME}` where `has_value`
/// says no, and no `${NAME:-default}` fallback.
fn uses_unset_variable(text: &str, has_value: &dyn Fn(&str) -> bool) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let braced = rest.strip_prefix('{');
        let body = braced.unwrap_or(rest);
        let end = body.find(|c: char| !is_name(c)).unwrap_or(body.len());
        let (name, after) = body.split_at(end);
        let fallback = braced.is_some() && (after.starts_with(":-") || after.starts_with('-'));
        if !name.is_empty() && !fallback && !has_value(name) {
            return true;
        }
    }
    false
}

fn untagged_image(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (span, image) in external_bases(cx) {
        let r = parse_image(&image);
        if r.tag.is_none() && !r.digest {
            out.span(span, format!("`{image}` has no tag: Docker uses `latest`"));
        }
    }
}

fn latest_tag(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (span, image) in external_bases(cx) {
        if let Some(message) = floating_message(&image) {
            out.span(span, message);
        }
    }
}

/// What is wrong with an image whose tag floats, if it does.
/// What is wrong with a deployed image reference: no tag at all, or one that floats; `None`
/// for a digest or a versioned tag.
pub(super) fn unpinned_message(image: &str) -> Option<String> {
    let r = parse_image(image);
    if r.digest {
        return None;
    }
    if r.tag.is_none() {
        return Some(format!("`{image}` has no tag"));
    }
    floating_message(image)
}

pub(super) fn floating_message(image: &str) -> Option<String> {
    let r = parse_image(image);
    if !r.floats() {
        return None;
    }
    Some(match r.tag {
        Some("latest") => format!("`{image}` uses the floating `latest` tag"),
        _ => format!(
            "`{image}` has no version in its tag: like `latest`, it moves to each new release"
        ),
    })
}

fn untrusted_registry(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    if cx.config.trusted_registries.is_empty() {
        return;
    }
    for (span, image) in external_bases(cx) {
        let r = parse_image(&image);
        if !cx.config.trusted_registries.iter().any(|t| t == r.registry) {
            out.span(
                span,
                format!(
                    "`{image}` comes from `{}`, which is not a trusted registry",
                    r.registry
                ),
            );
        }
    }
}

fn untrusted_registry_compose(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    if cx.config.trusted_registries.is_empty() {
        return;
    }
    for service in &cx.file.services {
        let Some(image) = &service.image else {
            continue;
        };
        if service.build {
            continue;
        }
        let r = parse_image(&image.value);
        if !cx.config.trusted_registries.iter().any(|t| t == r.registry) {
            out.at(
                image.at,
                format!(
                    "`{}` comes from `{}`, which is not a trusted registry",
                    image.value, r.registry
                ),
            );
        }
    }
}

fn tls_bypass(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, _, script) in cx.runs() {
        for cmd in &script.commands {
            let program = cmd.program_name().unwrap_or("");
            for w in cmd.args() {
                let t = w.text.as_str();
                let hit = match program {
                    "curl" => {
                        t == "--insecure"
                            || (t.starts_with('-') && !t.starts_with("--") && t.contains('k'))
                    }
                    "wget" => t == "--no-check-certificate",
                    "apt-get" | "apt" => {
                        t == "--allow-unauthenticated"
                            || t == "--allow-insecure-repositories"
                            || t.contains("Verify-Peer=false")
                            || t.contains("AllowInsecureRepositories")
                    }
                    "apk" => t == "--allow-untrusted",
                    "git" => t.to_ascii_lowercase().contains("sslverify=false"),
                    "npm" | "yarn" => t == "strict-ssl",
                    _ => {
                        t == "--trusted-host"
                            || t.starts_with("--trusted-host=")
                            || t == "--no-verify-ssl"
                    }
                };
                if hit {
                    out.span(
                        w.span,
                        format!("`{program} {t}` turns off TLS or signature verification"),
                    );
                }
            }
            if cmd.words.iter().any(|w| w.text.contains("[trusted=yes]")) {
                out.span(
                    cmd.span(),
                    "`[trusted=yes]` accepts an unsigned apt repository",
                );
            }
        }
    }
    for (_, inst) in cx
        .instructions()
        .filter(|(_, i)| matches!(i.kind, Kind::Env | Kind::Arg))
    {
        for (key, value) in inst.pairs() {
            let v = value
                .as_ref()
                .map_or("", |v| v.text.as_str())
                .to_ascii_lowercase();
            let hit = match key.text.as_str() {
                "PYTHONHTTPSVERIFY" | "NODE_TLS_REJECT_UNAUTHORIZED" => v == "0",
                "GIT_SSL_NO_VERIFY" => matches!(v.as_str(), "1" | "true"),
                "PIP_TRUSTED_HOST" | "UV_INSECURE_HOST" => !v.is_empty(),
                "CURL_CA_BUNDLE" | "REQUESTS_CA_BUNDLE" => value.is_some() && v.is_empty(),
                _ => false,
            };
            if hit {
                out.span(
                    key.span,
                    format!("`{}` turns off TLS verification", key.text),
                );
            }
        }
    }
}

fn pipe_to_shell(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, _, script) in cx.runs() {
        for (i, cmd) in script.commands.iter().enumerate() {
            if matches!(cmd.program_name(), Some("curl" | "wget"))
                && pipes_into_interpreter(script, i)
            {
                let next = &script.commands[i + 1];
                out.span(
                    cmd.span().join(next.span()),
                    "a downloaded script is run without verification",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_without_a_version_float() {
        for image in [
            "python:latest",
            "python:slim",
            "python:slim-bookworm",
            "docker.io/library/nginx:stable-alpine",
            "debian:stable-slim",
            "ubuntu:rolling",
        ] {
            assert!(parse_image(image).floats(), "{image}");
        }
        for image in [
            "python",
            "python:3.12-slim",
            "python:3-alpine",
            "python:slim@sha256:00",
            "debian:bookworm-slim",
            "ubuntu:noble",
            "gcr.io/distroless/python3-debian12:nonroot",
            "registry.example.com:5000/app:",
        ] {
            assert!(!parse_image(image).floats(), "{image}");
        }
    }

    #[test]
    fn unset_variables() {
        let known = |name: &str| name == "PY";
        assert!(!uses_unset_variable("python:${PY}-slim", &known));
        assert!(!uses_unset_variable("python:$PY", &known));
        assert!(uses_unset_variable("python:${TAG}", &known));
        assert!(uses_unset_variable("$IMAGE", &known));
        assert!(!uses_unset_variable("python:${TAG:-3.12}-slim", &known));
        assert!(!uses_unset_variable("python:3.12", &known));
    }
}
