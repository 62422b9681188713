//! The rules: small, separate checks, each tied to a lesson (or none for Dockerfile basics),
//! with its rationale and a bad and a good example for `terrarium lint --explain`.

mod apt;
mod compose;
mod detect;
mod instructions;
mod kubernetes;
mod layers;
mod processes;
pub mod project;
mod python;
mod runtime;
mod secrets;
mod supply;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::OnceLock;

use crate::compose::ComposeFile;
use crate::config::Config;
use crate::dockerfile::{Dockerfile, Instruction, Kind, Stage};
use crate::finding::{LessonId, Severity};
use crate::kubernetes::Manifests;
use crate::shell::Script;
use crate::span::{Location, Span};

/// A Dockerfile check.
pub type DockerfileCheck = fn(&DockerfileContext<'_>, &mut Emitter<'_>);
/// A Compose check.
pub type ComposeCheck = fn(&ComposeContext<'_>, &mut Emitter<'_>);
/// A Kubernetes manifest check.
pub type KubernetesCheck = fn(&KubernetesContext<'_>, &mut Emitter<'_>);

/// One lint rule.
#[derive(Debug)]
pub struct Rule {
    /// Stable id, used in output, ignores and configuration.
    pub id: &'static str,
    /// The lesson it enforces; `None` for the Dockerfile basics.
    pub lesson: Option<LessonId>,
    /// Default severity.
    pub severity: Severity,
    /// One line: what the rule finds.
    pub summary: &'static str,
    /// Why it matters.
    pub rationale: &'static str,
    /// An example that breaks the rule.
    pub bad: &'static str,
    /// The same example, fixed.
    pub good: &'static str,
    /// One line: how to fix a finding.
    pub fix: &'static str,
    /// The check on Dockerfiles, if any.
    pub dockerfile: Option<DockerfileCheck>,
    /// The check on Compose files, if any.
    pub compose: Option<ComposeCheck>,
    /// The check on Kubernetes manifests, if any.
    pub kubernetes: Option<KubernetesCheck>,
}

/// The rule that reports files that cannot be parsed.
pub const PARSE_ERROR: &str = "parse-error";

/// The rule that reports ignore comments naming rules that do not exist.
pub const INVALID_IGNORE: &str = "invalid-ignore";

const SYNTAX: &[Rule] = &[
    Rule {
        id: PARSE_ERROR,
        lesson: None,
        severity: Severity::Error,
        summary: "the file cannot be parsed",
        rationale: "A Dockerfile or Compose file with a syntax error does not build or start, or \
                does something other than what it says (a malformed JSON CMD runs in a shell).",
        bad: "RUNN pip install flask\nCMD ['gunicorn', 'app:app']",
        good: "RUN pip install flask==3.1.0\nCMD [\"gunicorn\", \"app:app\"]",
        fix: "fix the syntax at the reported position",
        dockerfile: None,
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: INVALID_IGNORE,
        lesson: None,
        severity: Severity::Warning,
        summary: "an ignore comment names a rule that does not exist",
        rationale: "A misspelt rule id in `# terrarium: ignore=...` silences nothing, so the \
                finding it was meant for still fails the build, or a later one slips through.",
        bad: "# terrarium: ignore=roo-user\nUSER root",
        good: "# terrarium: ignore=root-user the init process drops privileges itself\nUSER root",
        fix: "use a rule id from `terrarium lint --list-rules` (or `all`)",
        dockerfile: None,
        compose: None,
        kubernetes: None,
    },
];

/// Every rule, in a stable order.
pub fn all() -> &'static [&'static Rule] {
    static ALL: OnceLock<Vec<&'static Rule>> = OnceLock::new();
    ALL.get_or_init(|| {
        [
            SYNTAX,
            processes::RULES,
            python::RULES,
            layers::RULES,
            runtime::RULES,
            supply::RULES,
            apt::RULES,
            secrets::RULES,
            instructions::RULES,
            project::RULES,
            compose::RULES,
            kubernetes::RULES,
        ]
        .into_iter()
        .flatten()
        .collect()
    })
}

/// The rule with this id.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    all().iter().copied().find(|r| r.id == id)
}

/// The rule id closest to `id`, for "did you mean" hints.
pub fn closest(id: &str) -> Option<&'static str> {
    all()
        .iter()
        .map(|r| (crate::dockerfile::edit_distance(id, r.id), r.id))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, r)| r)
}

/// A finding as a rule reports it, before configuration and ignores apply.
#[derive(Debug, Clone)]
pub struct RawFinding {
    /// The rule.
    pub rule: &'static Rule,
    /// Where.
    pub location: Location,
    /// The rule's severity, possibly raised or lowered by the rule for this case.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// A fix specific to this finding, replacing the rule's.
    pub fix: Option<String>,
}

/// Collects a rule's findings.
pub struct Emitter<'a> {
    rule: &'static Rule,
    locate: &'a dyn Fn(Span) -> Location,
    out: &'a mut Vec<RawFinding>,
}

impl<'a> Emitter<'a> {
    /// An emitter for `rule` writing into `out`.
    pub fn new(
        rule: &'static Rule,
        locate: &'a dyn Fn(Span) -> Location,
        out: &'a mut Vec<RawFinding>,
    ) -> Self {
        Emitter { rule, locate, out }
    }

    /// Report at a source span with the rule's severity.
    pub fn span(&mut self, span: Span, message: impl Into<String>) {
        self.span_with(span, self.rule.severity, message);
    }

    /// Report at a source span with a specific severity.
    pub fn span_with(&mut self, span: Span, severity: Severity, message: impl Into<String>) {
        let location = (self.locate)(span);
        self.at_with(location, severity, message);
    }

    /// Report at a location with the rule's severity.
    pub fn at(&mut self, location: Location, message: impl Into<String>) {
        self.at_with(location, self.rule.severity, message);
    }

    /// Report at a location with a specific severity.
    pub fn at_with(&mut self, location: Location, severity: Severity, message: impl Into<String>) {
        self.out.push(RawFinding {
            rule: self.rule,
            location,
            severity,
            message: message.into(),
            fix: None,
        });
    }
}

/// What a Dockerfile rule sees: the tree, where it lives and whether it is a dev target.
pub struct DockerfileContext<'a> {
    /// The parsed file.
    pub file: &'a Dockerfile,
    /// Its path (for sibling files such as `.dockerignore`).
    pub path: &'a Path,
    /// Whether the file, or every stage of it, is meant for development (dev servers allowed).
    pub dev_target: bool,
    /// The settings.
    pub config: &'a Config,
    scripts: Vec<Option<Script>>,
    production: Option<usize>,
}

impl<'a> DockerfileContext<'a> {
    /// A context for `file` at `path`.
    pub fn new(file: &'a Dockerfile, path: &'a Path, config: &'a Config) -> Self {
        let scripts = file
            .instructions
            .iter()
            .map(|i| {
                matches!(
                    i.kind,
                    Kind::Run | Kind::Cmd | Kind::Entrypoint | Kind::Healthcheck
                )
                .then(|| i.script())
            })
            .collect();
        let production = production_stage(file);
        let dev_target = is_dev_file(path)
            || production
                .and_then(|i| file.stages.get(i))
                .and_then(|s| s.name.as_deref())
                .is_some_and(is_dev_stage);
        DockerfileContext {
            file,
            path,
            dev_target,
            config,
            scripts,
            production,
        }
    }

    /// The stage that is the production image: the last stage, or, when the last stage is a
    /// dev target (`dev`, `dev-envs`, `development`, `debug`, ...), the last stage before it
    /// that is not one. Rules about the shipped image look at this stage and its chain; when
    /// every stage is a dev target the last one is used and the file is a dev target.
    pub fn production_stage(&self) -> Option<&'a Stage> {
        self.production.and_then(|i| self.file.stages.get(i))
    }

    /// The parsed commands of instruction `index` (RUN, CMD, ENTRYPOINT, HEALTHCHECK).
    pub fn script(&self, index: usize) -> Option<&Script> {
        self.scripts.get(index).and_then(Option::as_ref)
    }

    /// Every instruction with its index.
    pub fn instructions(&self) -> impl Iterator<Item = (usize, &'a Instruction)> + 'a {
        self.file.instructions.iter().enumerate()
    }

    /// RUN instructions with their commands, in every stage.
    pub fn runs(&self) -> impl Iterator<Item = (usize, &'a Instruction, &Script)> + '_ {
        self.instructions()
            .filter(|(_, i)| i.kind == Kind::Run)
            .filter_map(|(n, i)| self.script(n).map(|s| (n, i, s)))
    }

    /// Indices of the instructions that make up the production image (its stage chain).
    pub fn runtime(&self) -> Vec<usize> {
        let Some(stage) = self.production_stage() else {
            return Vec::new();
        };
        self.file
            .chain(stage)
            .into_iter()
            .flat_map(|s| s.body.clone())
            .collect()
    }

    /// The CMD and ENTRYPOINT that take effect in the production image, with their commands.
    pub fn entry_commands(&self) -> Vec<(usize, &'a Instruction, &Script)> {
        let runtime = self.runtime();
        let mut out = Vec::new();
        for kind in [Kind::Entrypoint, Kind::Cmd] {
            if let Some(&n) = runtime
                .iter()
                .rev()
                .find(|&&n| self.file.instructions[n].kind == kind)
                && let Some(script) = self.script(n)
            {
                out.push((n, &self.file.instructions[n], script));
            }
        }
        out
    }

    /// The command line the container runs when both ENTRYPOINT and CMD are in exec form:
    /// Docker passes CMD's items as arguments to ENTRYPOINT (`ENTRYPOINT ["python3"]` with
    /// `CMD ["app.py"]` runs `python3 app.py`). Returns the CMD instruction and the joined
    /// command; `None` when either is missing or in shell form (a shell-form ENTRYPOINT
    /// ignores CMD).
    pub fn joined_entry(&self) -> Option<(&'a Instruction, Script)> {
        let entry = self.entry_commands();
        let exec_items = |kind: Kind| {
            entry.iter().find_map(|(_, inst, _)| match &inst.args {
                crate::dockerfile::Arguments::Exec(items) if inst.kind == kind => {
                    Some((*inst, items))
                }
                _ => None,
            })
        };
        let (_, entrypoint) = exec_items(Kind::Entrypoint)?;
        let (cmd, args) = exec_items(Kind::Cmd)?;
        let items: Vec<_> = entrypoint.iter().chain(args).cloned().collect();
        let mut script = Script::from_exec(&items);
        script.expand_shell_c();
        Some((cmd, script))
    }

    /// The production stage's FROM span (where image-wide findings point).
    pub fn final_from_span(&self) -> Span {
        self.production_stage()
            .map(|s| self.file.instructions[s.from].span)
            .or_else(|| self.file.instructions.first().map(|i| i.span))
            .unwrap_or_default()
    }

    /// The stage instruction `index` belongs to.
    pub fn stage_of(&self, index: usize) -> Option<&'a Stage> {
        self.file
            .stages
            .iter()
            .find(|s| s.from == index || s.body.contains(&index))
    }

    /// Whether instruction `index` is part of the production image.
    pub fn in_runtime(&self, index: usize) -> bool {
        self.runtime().contains(&index)
    }

    /// Look up a variable from ARG and ENV defaults of `stage`'s chain, then global ARGs.
    pub fn variable(&self, stage: &Stage, name: &str) -> Option<String> {
        let mut value = None;
        for (k, v) in self.file.global_args() {
            if k == name {
                value = v;
            }
        }
        for inst in self.file.effective(stage) {
            if matches!(inst.kind, Kind::Arg | Kind::Env) {
                for (k, v) in inst.pairs() {
                    if k.text == name
                        && let Some(v) = v
                    {
                        value = Some(v.text);
                    }
                }
            }
        }
        value
    }

    /// The value of variable `name` that instruction `index` sees: ARG and ENV defaults of the
    /// instructions before it in its stage chain, then global ARGs.
    pub fn variable_before(&self, index: usize, name: &str) -> Option<String> {
        let stage = self.stage_of(index)?;
        let mut value = self
            .file
            .global_args()
            .into_iter()
            .filter(|(k, _)| k == name)
            .filter_map(|(_, v)| v)
            .next_back();
        let before = self
            .file
            .chain(stage)
            .into_iter()
            .flat_map(|s| s.body.clone())
            .take_while(|&n| n != index);
        for inst in before.map(|n| &self.file.instructions[n]) {
            if !matches!(inst.kind, Kind::Arg | Kind::Env) {
                continue;
            }
            for (k, v) in inst.pairs() {
                if let (true, Some(v)) = (k.text == name, v) {
                    value = Some(v.text);
                }
            }
        }
        value
    }

    /// The directory of the build context (the Dockerfile's directory).
    pub fn context_dir(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    /// The text of the file the production image has at `image_path`, when a COPY or ADD of the
    /// final stage puts it there from the build context (or from a heredoc). Files over 1 MiB
    /// and files that cannot be read give `None`.
    pub fn context_file(&self, image_path: &str) -> Option<String> {
        let runtime = self.runtime();
        let mut workdir = String::from("/");
        for &n in &runtime {
            let inst = &self.file.instructions[n];
            if let Some(w) = inst.words().first().filter(|_| inst.kind == Kind::Workdir) {
                workdir = join_image_path(&workdir, &w.text);
            }
        }
        let wanted = join_image_path(&workdir, image_path);
        let mut workdir = String::from("/");
        let mut found = None;
        for n in runtime {
            let inst = &self.file.instructions[n];
            match inst.kind {
                Kind::Workdir => {
                    if let Some(w) = inst.words().first() {
                        workdir = join_image_path(&workdir, &w.text);
                    }
                }
                Kind::Copy | Kind::Add if inst.flag("from").is_none() => {
                    let words = inst.words();
                    let Some((dest, sources)) = words.split_last() else {
                        continue;
                    };
                    let dest_abs = join_image_path(&workdir, &dest.text);
                    if !inst.heredocs.is_empty() {
                        if wanted == dest_abs {
                            found = inst
                                .heredocs
                                .first()
                                .map(|h| Source::Text(h.body.text.clone()));
                        }
                        continue;
                    }
                    for src in sources.iter().filter(|s| !s.text.starts_with('<')) {
                        let src_text = src.text.trim_start_matches("./");
                        let candidate = if src_text.is_empty() || src_text == "." {
                            wanted
                                .strip_prefix(&format!("{}/", dest_abs.trim_end_matches('/')))
                                .map(str::to_string)
                        } else if wanted == dest_abs
                            || wanted
                                == format!(
                                    "{}/{}",
                                    dest_abs.trim_end_matches('/'),
                                    crate::shell::basename(src_text)
                                )
                        {
                            Some(src_text.to_string())
                        } else {
                            None
                        };
                        if let Some(rel) = candidate {
                            found = Some(Source::File(self.context_dir().join(rel)));
                        }
                    }
                }
                _ => {}
            }
        }
        match found? {
            Source::Text(text) => Some(text),
            Source::File(path) => {
                let meta = std::fs::metadata(&path).ok()?;
                if !meta.is_file() || meta.len() > 1 << 20 {
                    return None;
                }
                std::fs::read_to_string(path).ok()
            }
        }
    }

    /// The OS packages the production image's RUNs install, each with where it is removed
    /// again, if it is.
    pub fn os_installs(&self) -> Vec<OsInstall<'_>> {
        let runtime: Vec<usize> = self
            .runtime()
            .into_iter()
            .filter(|&n| self.file.instructions[n].kind == Kind::Run)
            .collect();
        let mut out = Vec::new();
        for (at, &n) in runtime.iter().enumerate() {
            let Some(script) = self.script(n) else {
                continue;
            };
            for (c, cmd) in script.commands.iter().enumerate() {
                let group = detect::apk_virtual(cmd);
                for (word, package) in detect::os_packages(cmd) {
                    let removes = |other: &crate::shell::Command| {
                        detect::removed_by(other)
                            .iter()
                            .any(|r| *r == package || Some(*r) == group)
                    };
                    let same_run = script.commands[c + 1..].iter().find(|o| removes(o));
                    let later = runtime[at + 1..]
                        .iter()
                        .find_map(|&m| self.script(m)?.commands.iter().find(|o| removes(o)));
                    let removal = match (same_run, later) {
                        (Some(_), _) => Some(Removal::SameRun),
                        (None, Some(o)) => Some(Removal::Later {
                            line: self.line_of(o.span()),
                        }),
                        (None, None) => None,
                    };
                    out.push(OsInstall {
                        word,
                        package: package.to_string(),
                        instruction: n,
                        removal,
                    });
                }
            }
        }
        out
    }

    /// The 1-based line a span starts on.
    pub fn line_of(&self, span: Span) -> usize {
        self.file.lines.position(&self.file.source, span.start).0
    }

    /// The process manager the container starts (`supervisord`, ...) when the production
    /// image installs Python dependencies: the programs it supervises are a Python service,
    /// held to the same rules (unbuffered logs, a health check) as one started directly.
    pub fn supervised_python(&self) -> Option<String> {
        let manager = self.entry_commands().iter().find_map(|(_, _, script)| {
            script
                .commands
                .iter()
                .find_map(detect::process_manager_name)
        })?;
        let installs = self.runtime().into_iter().any(|n| {
            self.file.instructions[n].kind == Kind::Run
                && self
                    .script(n)
                    .is_some_and(|s| s.commands.iter().any(detect::installs_dependencies))
        });
        installs.then_some(manager)
    }

    /// Whether the production image is a Python app image (a Python base or Python tooling used).
    pub fn is_python_image(&self) -> bool {
        let Some(stage) = self.production_stage() else {
            return false;
        };
        if self
            .file
            .chain(stage)
            .iter()
            .any(|s| s.base_resolved.contains("python"))
        {
            return true;
        }
        self.runtime().iter().any(|&n| {
            self.script(n)
                .is_some_and(|s| s.commands.iter().any(detect::is_python_tool))
        })
    }
}

/// An OS package installed by a RUN of the production image.
pub struct OsInstall<'a> {
    /// The package argument.
    pub word: &'a crate::shell::Word,
    /// The package name, version removed.
    pub package: String,
    /// The RUN instruction that installs it.
    pub instruction: usize,
    /// Whether and where it is removed again.
    pub removal: Option<Removal>,
}

/// Where an installed package is removed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Later in the same RUN: it is in no layer.
    SameRun,
    /// By a later RUN on `line`: gone from the final filesystem, but its bytes stay in the
    /// installing layer.
    Later {
        /// The line of the removing command.
        line: usize,
    },
}

enum Source {
    Text(String),
    File(std::path::PathBuf),
}

/// Join an image path onto a directory, as WORKDIR and COPY destinations do.
fn join_image_path(dir: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{}", dir.trim_end_matches('/'), path)
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// What a Compose rule sees.
pub struct ComposeContext<'a> {
    /// The parsed file.
    pub file: &'a ComposeFile,
    /// Its path.
    pub path: &'a Path,
    /// Whether the file is for development (dev servers allowed): a dev override, or the plain
    /// compose file beside a production one (see [`is_dev_file`]).
    pub dev_file: bool,
    /// The settings.
    pub config: &'a Config,
}

/// What a Kubernetes rule sees: the workloads of a manifest file.
pub struct KubernetesContext<'a> {
    /// The parsed manifests.
    pub file: &'a Manifests,
    /// Its path.
    pub path: &'a Path,
    /// The settings.
    pub config: &'a Config,
}

/// Whether a Dockerfile or compose file name marks a development target
/// (`Dockerfile.dev`, `dev.Dockerfile`, `compose.dev.yaml`, `docker-compose.override.yml`).
pub fn is_dev_path(path: &Path) -> bool {
    file_name_lower(path)
        .split(['.', '-', '_'])
        .any(|part| is_dev_name(part) || part == "override" || part == "local")
}

/// Whether a file is meant for development: its name says so ([`is_dev_path`]), or it is the
/// plain `compose.yaml`/`docker-compose.yml`/`Dockerfile`/`Containerfile` of a directory that
/// also holds a production variant of the same kind (`docker-compose.prod.yml`,
/// `compose.production.yaml`, `Dockerfile.prod`): then the plain file is the dev one.
pub fn is_dev_file(path: &Path) -> bool {
    is_dev_path(path) || has_production_sibling(path)
}

/// Whether a file name marks production (`docker-compose.prod.yml`, `compose.production.yaml`,
/// `Dockerfile.prod`, `prod.Dockerfile`).
pub fn is_production_path(path: &Path) -> bool {
    file_name_lower(path)
        .split(['.', '-', '_'])
        .any(|part| matches!(part, "prod" | "production"))
}

/// The file name, lowercased (empty when there is none).
fn file_name_lower(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Whether the file has the plain name of its kind, with no environment in it.
fn is_plain_name(path: &Path) -> bool {
    let name = file_name_lower(path);
    let stem = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
        .unwrap_or(&name);
    matches!(
        stem,
        "compose" | "docker-compose" | "dockerfile" | "containerfile"
    )
}

/// Whether a plain-named file has a production variant of the same kind beside it.
fn has_production_sibling(path: &Path) -> bool {
    let Some(kind) = crate::lint::FileKind::from_name(path) else {
        return false;
    };
    if !is_plain_name(path) {
        return false;
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let sibling = entry.path();
        crate::lint::FileKind::from_name(&sibling) == Some(kind) && is_production_path(&sibling)
    })
}

/// Whether a stage or service name marks development.
pub fn is_dev_name(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "dev" | "devel" | "development" | "develop" | "debug" | "devcontainer"
    )
}

/// Whether a stage name marks a dev target: a dev word on its own or as a part of the name
/// (`dev`, `dev-envs`, `development`, `app_debug`).
pub fn is_dev_stage(name: &str) -> bool {
    name.split(['-', '_', '.']).any(is_dev_name)
}

/// The index of the production stage: the last stage that is not a dev target, when the last
/// stage is one; otherwise (and when every stage is a dev target) the last stage.
fn production_stage(file: &Dockerfile) -> Option<usize> {
    let last = file.stages.last()?;
    let is_dev = |s: &Stage| s.name.as_deref().is_some_and(is_dev_stage);
    if !is_dev(last) {
        return Some(last.index);
    }
    file.stages
        .iter()
        .rev()
        .find(|s| !is_dev(s))
        .map_or(Some(last.index), |s| Some(s.index))
}
