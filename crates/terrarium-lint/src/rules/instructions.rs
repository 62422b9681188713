//! Instruction basics a Dockerfile user expects (hadolint's DL3000-DL4000 family) and host
//! paths in the build (L21).

use std::collections::HashMap;

use super::{DockerfileContext, Emitter, Rule};
use crate::dockerfile::Kind;
use crate::finding::{LessonId, Severity};

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "relative-workdir",
        lesson: None,
        severity: Severity::Warning,
        summary: "WORKDIR is a relative path",
        rationale: "A relative WORKDIR depends on every WORKDIR before it (and on the base \
                    image's); an absolute path says where files go.",
        bad: "WORKDIR app",
        good: "WORKDIR /app",
        fix: "use an absolute path",
        dockerfile: Some(relative_workdir),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "repeated-instruction",
        lesson: None,
        severity: Severity::Warning,
        summary: "a stage has more than one CMD, ENTRYPOINT or HEALTHCHECK",
        rationale: "Only the last one takes effect; the others mislead readers.",
        bad: "CMD [\"flask\", \"run\"]\nCMD [\"gunicorn\", \"app:app\"]",
        good: "CMD [\"gunicorn\", \"app:app\"]",
        fix: "keep only the last one",
        dockerfile: Some(repeated_instruction),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "invalid-expose",
        lesson: None,
        severity: Severity::Error,
        summary: "EXPOSE has an invalid port",
        rationale: "EXPOSE takes container ports 1-65535 with an optional /tcp or /udp; host \
                    mappings belong in `docker run -p` or compose.",
        bad: "EXPOSE 8000:8000\nEXPOSE 70000",
        good: "EXPOSE 8000",
        fix: "expose the container port only, e.g. `EXPOSE 8000`",
        dockerfile: Some(invalid_expose),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "unknown-stage",
        lesson: None,
        severity: Severity::Error,
        summary: "COPY --from names a stage that is not defined before it",
        rationale: "A name that is not an earlier stage is pulled as an image, which is rarely \
                    what was meant and fails offline.",
        bad: "FROM python:3.12-slim AS build\nFROM python:3.12-slim\nCOPY --from=builder /install /usr/local",
        good: "COPY --from=build /install /usr/local",
        fix: "use the name from an earlier `FROM ... AS <name>`",
        dockerfile: Some(unknown_stage),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "duplicate-stage-name",
        lesson: None,
        severity: Severity::Error,
        summary: "two stages have the same name",
        rationale: "`COPY --from=<name>` and `--target` become ambiguous.",
        bad: "FROM python:3.12-slim AS build\nFROM python:3.12-slim AS build",
        good: "FROM python:3.12-slim AS build\nFROM python:3.12-slim AS runtime",
        fix: "give each stage its own name",
        dockerfile: Some(duplicate_stage_name),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "maintainer",
        lesson: None,
        severity: Severity::Warning,
        summary: "MAINTAINER is deprecated",
        rationale: "Use the OCI label instead, which tools read.",
        bad: "MAINTAINER Jane <jane@example.com>",
        good: "LABEL org.opencontainers.image.authors=\"jane@example.com\"",
        fix: "replace it with LABEL org.opencontainers.image.authors=...",
        dockerfile: Some(maintainer),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "add-instead-of-copy",
        lesson: None,
        severity: Severity::Warning,
        summary: "ADD is used for local files; COPY says what it does",
        rationale: "ADD also extracts archives and fetches URLs; for plain files COPY is \
                    predictable.",
        bad: "ADD requirements.txt /app/",
        good: "COPY requirements.txt /app/",
        fix: "use COPY",
        dockerfile: Some(add_instead_of_copy),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "host-path",
        lesson: Some(LessonId::new(21)),
        severity: Severity::Info,
        summary: "COPY or ADD names an absolute host path",
        rationale: "Sources are relative to the build context; an absolute host path is a \
                    host-specific assumption that breaks on other machines.",
        bad: "COPY /home/alice/project/app.py /app/",
        good: "COPY app.py /app/",
        fix: "use paths relative to the build context",
        dockerfile: Some(host_path),
        compose: None,
        kubernetes: None,
    },
];

fn relative_workdir(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, inst) in cx.instructions().filter(|(_, i)| i.kind == Kind::Workdir) {
        if let Some(w) = inst.words().into_iter().next() {
            let t = w.text.as_str();
            let windows = t.len() > 1 && t.as_bytes()[1] == b':';
            if !t.starts_with('/') && !t.starts_with('$') && !windows {
                out.span(w.span, format!("WORKDIR `{t}` is relative"));
            }
        }
    }
}

fn repeated_instruction(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for stage in &cx.file.stages {
        for kind in [Kind::Cmd, Kind::Entrypoint, Kind::Healthcheck] {
            let all: Vec<_> = cx
                .file
                .stage_instructions(stage)
                .iter()
                .filter(|i| i.kind == kind)
                .collect();
            if let Some((_, earlier)) = all.split_last() {
                for inst in earlier {
                    out.span(
                        inst.span,
                        format!(
                            "this {} is overridden by a later one in the same stage",
                            inst.keyword.text.to_ascii_uppercase()
                        ),
                    );
                }
            }
        }
    }
}

fn valid_port(p: &str) -> bool {
    p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
}

fn invalid_expose(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (n, inst) in cx.instructions().filter(|(_, i)| i.kind == Kind::Expose) {
        for w in inst.words() {
            let text = match cx.stage_of(n) {
                Some(stage) if w.text.contains('$') => {
                    crate::dockerfile::expand(&w.text, &|name| cx.variable(stage, name))
                }
                _ => w.text.clone(),
            };
            if text.is_empty() || text.contains('$') {
                continue;
            }
            let (ports, proto) = match text.split_once('/') {
                Some((p, proto)) => (p, Some(proto)),
                None => (text.as_str(), None),
            };
            let proto_ok = proto
                .is_none_or(|p| matches!(p.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp"));
            let ports_ok = match ports.split_once('-') {
                Some((a, b)) => valid_port(a) && valid_port(b),
                None => valid_port(ports),
            };
            if !proto_ok || !ports_ok {
                out.span(
                    w.span,
                    format!("`{}` is not a valid container port", w.text),
                );
            }
        }
    }
}

fn unknown_stage(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (n, inst) in cx
        .instructions()
        .filter(|(_, i)| matches!(i.kind, Kind::Copy | Kind::Add))
    {
        let Some(flag) = inst.flag("from") else {
            continue;
        };
        let Some(name) = flag.value.as_deref() else {
            continue;
        };
        if name.contains(['/', ':', '$', '.']) {
            continue;
        }
        let current = cx.stage_of(n).map(|s| s.index);
        match cx.file.stage_by_ref(name) {
            Some(stage) if Some(stage.index) == current => out.span(flag.span, format!("COPY --from={name} copies from the stage it is in")),
            Some(stage) if current.is_some_and(|c| stage.index > c) => out.span(flag.span, format!("stage `{name}` is defined after this COPY")),
            Some(_) => {}
            None => out.span(flag.span, format!("no stage named `{name}` before this instruction; it would be pulled as an image")),
        }
    }
}

fn duplicate_stage_name(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for stage in &cx.file.stages {
        let Some(name) = stage.name.as_deref() else {
            continue;
        };
        if seen.insert(name, stage.index).is_some() {
            out.span(
                cx.file.instructions[stage.from].span,
                format!("stage name `{name}` is used twice"),
            );
        }
    }
}

fn maintainer(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, inst) in cx
        .instructions()
        .filter(|(_, i)| i.kind == Kind::Maintainer)
    {
        out.span(inst.span, "MAINTAINER is deprecated");
    }
}

fn add_instead_of_copy(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    const ARCHIVES: [&str; 8] = [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst",
    ];
    for (_, inst) in cx.instructions().filter(|(_, i)| i.kind == Kind::Add) {
        if !inst.heredocs.is_empty() {
            continue;
        }
        let words = inst.words();
        let sources = &words[..words.len().saturating_sub(1)];
        let local = sources.iter().all(|w| {
            !w.text.contains("://")
                && !w.text.starts_with("git@")
                && !ARCHIVES.iter().any(|a| w.text.ends_with(a))
        });
        if local && !sources.is_empty() {
            out.span(inst.keyword.span, "ADD of local files: use COPY");
        }
    }
}

fn host_path(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, inst) in cx
        .instructions()
        .filter(|(_, i)| matches!(i.kind, Kind::Copy | Kind::Add))
    {
        if inst.flag("from").is_some() || !inst.heredocs.is_empty() {
            continue;
        }
        let words = inst.words();
        for w in &words[..words.len().saturating_sub(1)] {
            let t = w.text.as_str();
            let windows = t.len() > 2
                && t.as_bytes()[1] == b':'
                && (t.as_bytes()[2] == b'\\' || t.as_bytes()[2] == b'/');
            if t.starts_with("/home/")
                || t.starts_with("/Users/")
                || t.starts_with("/tmp/")
                || t.starts_with("/root/")
                || windows
            {
                out.span(w.span, format!("`{t}` is an absolute host path"));
            }
        }
    }
}
