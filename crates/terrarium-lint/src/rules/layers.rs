//! Layers: no no-op RUNs (L05), cache-friendly order (L06), and the RUN basics (cd, sudo,
//! pipefail).

use super::detect::{installs_dependencies, installs_from_manifest};
use super::{DockerfileContext, Emitter, Rule};
use crate::dockerfile::{Arguments, Kind};
use crate::finding::{LessonId, Severity};
use crate::shell::Connector;

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "run-noop",
        lesson: Some(LessonId::new(5)),
        severity: Severity::Warning,
        summary: "a RUN only changes the shell's state (cd, export, source), which is gone in the next layer",
        rationale: "Each RUN starts a new shell: `RUN cd /app`, `RUN export X=1` or `RUN source \
                    venv/bin/activate` add a layer and change nothing.",
        bad: "RUN cd /app\nRUN export FLASK_APP=app",
        good: "WORKDIR /app\nENV FLASK_APP=app",
        fix: "use WORKDIR for directories and ENV for variables",
        dockerfile: Some(run_noop),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "source-before-deps",
        lesson: Some(LessonId::new(6)),
        severity: Severity::Warning,
        summary: "the whole source is copied before the dependencies are installed",
        rationale: "Any edit to any file invalidates the `COPY . .` layer and every layer after \
                    it, so every build reinstalls all dependencies. Copy the dependency \
                    manifests first, install, then copy the source. Every stage is checked, \
                    builder stages included (`pip wheel -r`, `pip install --prefix`, \
                    `poetry install` after a base stage that only installed poetry).",
        bad: "COPY . .\nRUN pip install -r requirements.txt",
        good: "COPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\nCOPY . .",
        fix: "copy only the dependency files (requirements.txt, pyproject.toml + lock) before installing; copy the source after",
        dockerfile: Some(source_before_deps),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "cache-bust-early",
        lesson: Some(LessonId::new(6)),
        severity: Severity::Info,
        summary: "a build ARG that changes every build, or a remote ADD, comes before the dependency install",
        rationale: "An ARG like BUILD_DATE or GIT_COMMIT used early, or ADD of a URL, \
                    invalidates the cache of everything after it.",
        bad: "ARG GIT_COMMIT\nRUN echo $GIT_COMMIT > /version\nCOPY requirements.txt .\nRUN pip install -r requirements.txt",
        good: "COPY requirements.txt .\nRUN pip install -r requirements.txt\nARG GIT_COMMIT\nLABEL org.opencontainers.image.revision=$GIT_COMMIT",
        fix: "declare build-specific ARGs and remote ADDs after the dependency install",
        dockerfile: Some(cache_bust_early),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "cd-in-run",
        lesson: None,
        severity: Severity::Warning,
        summary: "RUN uses `cd` to change directory for later commands",
        rationale: "WORKDIR states the directory once and makes later instructions readable.",
        bad: "RUN cd /app && pip install .",
        good: "WORKDIR /app\nRUN pip install --no-cache-dir .",
        fix: "use WORKDIR",
        dockerfile: Some(cd_in_run),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "sudo",
        lesson: None,
        severity: Severity::Error,
        summary: "RUN uses sudo",
        rationale: "Build steps already run as the current USER; sudo adds a setuid binary and \
                    unpredictable TTY and signal behaviour.",
        bad: "USER app\nRUN sudo apt-get install -y curl",
        good: "RUN apt-get install -y --no-install-recommends curl\nUSER app",
        fix: "run the step before switching USER, without sudo",
        dockerfile: Some(sudo),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "pipefail",
        lesson: None,
        severity: Severity::Warning,
        summary: "a RUN pipeline hides failures of all but its last command",
        rationale: "`/bin/sh -c 'curl ... | tar x'` succeeds when curl fails. Set pipefail so \
                    the build fails instead.",
        bad: "RUN curl -fsSL https://example.com/x.tgz | tar xz",
        good: "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN curl -fsSL https://example.com/x.tgz | tar xz",
        fix: "add SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"] or `set -o pipefail &&` before the pipe",
        dockerfile: Some(pipefail),
        compose: None,
        kubernetes: None,
    },
];

const NOOP: [&str; 6] = ["cd", "export", "source", ".", "set", "unset"];

fn run_noop(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, inst, script) in cx.runs() {
        if !inst.heredocs.is_empty() || script.commands.is_empty() {
            continue;
        }
        if script
            .commands
            .iter()
            .all(|c| c.program_name().is_some_and(|p| NOOP.contains(&p)))
        {
            out.span(
                inst.span,
                format!(
                    "`RUN {}` has no effect on the image",
                    script.commands[0].text()
                ),
            );
        }
    }
}

fn cd_in_run(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, _, script) in cx.runs() {
        let n = script.commands.len();
        for (i, cmd) in script.commands.iter().enumerate() {
            if cmd.program_name() == Some("cd") && i + 1 < n && cmd.connector != Connector::Pipe {
                out.span(cmd.span(), "`cd` in RUN: use WORKDIR instead");
            }
        }
    }
}

fn sudo(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, _, script) in cx.runs() {
        for cmd in &script.commands {
            if let Some(w) = cmd.words.iter().find(|w| w.text == "sudo") {
                out.span(w.span, "sudo in RUN");
            }
        }
    }
}

fn pipefail(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (n, inst, script) in cx.runs() {
        if matches!(inst.args, Arguments::Exec(_)) {
            continue;
        }
        let shell_has_pipefail = cx.stage_of(n).is_some_and(|stage| {
            cx.file
                .effective(stage)
                .iter()
                .take_while(|i| !std::ptr::eq(**i, inst))
                .any(|i| i.kind == Kind::Shell && i.args_text().contains("pipefail"))
        });
        if shell_has_pipefail {
            continue;
        }
        let mut pipefail_set = false;
        for cmd in &script.commands {
            if cmd.program_name() == Some("set")
                && cmd
                    .args()
                    .iter()
                    .any(|w| w.text == "pipefail" || w.text.contains("pipefail"))
            {
                pipefail_set = true;
            }
            if cmd.connector == Connector::Pipe && !pipefail_set {
                out.span(
                    cmd.span(),
                    "pipe without `set -o pipefail`: a failure before `|` is ignored",
                );
                break;
            }
        }
    }
}

fn source_before_deps(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for stage in &cx.file.stages {
        // Dependencies already installed from a manifest by a stage this one builds on are
        // only checked again here; a tool installed there (`pip install poetry`) is not them.
        let chain_installed = cx
            .file
            .chain(stage)
            .iter()
            .filter(|s| s.index != stage.index)
            .any(|s| {
                s.body.clone().any(|n| {
                    cx.script(n)
                        .is_some_and(|sc| sc.commands.iter().any(installs_from_manifest))
                        && cx.file.instructions[n].kind == Kind::Run
                })
            });
        if chain_installed {
            continue;
        }
        let mut installed = false;
        let mut copy: Option<usize> = None;
        for n in stage.body.clone() {
            let inst = &cx.file.instructions[n];
            match inst.kind {
                Kind::Copy | Kind::Add
                    if copy.is_none()
                        && inst.flag("from").is_none()
                        && copies_whole_context(inst) =>
                {
                    copy = Some(n);
                }
                Kind::Run => {
                    let Some(script) = cx.script(n) else { continue };
                    if let Some(cmd) = script.commands.iter().find(|c| installs_dependencies(c)) {
                        if let (Some(c), false) = (copy, installed) {
                            let (line, _) =
                                cx.file.lines.position(&cx.file.source, cmd.span().start);
                            out.span(
                                cx.file.instructions[c].span,
                                format!("the whole source is copied before the dependency install on line {line} (`{}`)", cmd.text()),
                            );
                        }
                        installed = true;
                    }
                }
                _ => {}
            }
        }
    }
}

fn copies_whole_context(inst: &crate::dockerfile::Instruction) -> bool {
    let words = inst.words();
    let sources = &words[..words.len().saturating_sub(1)];
    sources
        .iter()
        .any(|w| matches!(w.text.as_str(), "." | "./" | "*" | "./*" | "./."))
}

const VOLATILE_ARGS: [&str; 11] = [
    "CACHEBUST",
    "CACHE_BUST",
    "BUILD_DATE",
    "BUILDTIME",
    "BUILD_TIME",
    "GIT_COMMIT",
    "GIT_SHA",
    "COMMIT_SHA",
    "VCS_REF",
    "BUILD_NUMBER",
    "SOURCE_COMMIT",
];

fn cache_bust_early(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for stage in &cx.file.stages {
        let body: Vec<usize> = stage.body.clone().collect();
        let Some(install_at) = body.iter().position(|&n| {
            cx.file.instructions[n].kind == Kind::Run
                && cx
                    .script(n)
                    .is_some_and(|s| s.commands.iter().any(installs_dependencies))
        }) else {
            continue;
        };
        for &n in &body[..install_at] {
            let inst = &cx.file.instructions[n];
            match inst.kind {
                Kind::Arg => {
                    for (key, _) in inst.pairs() {
                        if VOLATILE_ARGS.contains(&key.text.to_ascii_uppercase().as_str()) {
                            out.span(key.span, format!("ARG {} changes every build and comes before the dependency install", key.text));
                        }
                    }
                }
                Kind::Add => {
                    for w in inst.words() {
                        if w.text.contains("://") || w.text.starts_with("git@") {
                            out.span(w.span, "ADD of a remote source before the dependency install re-runs everything after it when the source changes");
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
