//! The final image at run time: non-root (L11), documented ports and volumes (L08), ephemeral
//! state (L09), nothing extra (L12), health checks (L18) and clean stops (L19).

use super::detect::web_server;
use super::{DockerfileContext, Emitter, Removal, Rule};
use crate::dockerfile::{Arguments, Kind, expand};
use crate::finding::{LessonId, Severity};

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "root-user",
        lesson: Some(LessonId::new(11)),
        severity: Severity::Error,
        summary: "the final image runs as root (no USER, or USER root)",
        rationale: "A process running as root in a container is root on the host if it \
                    escapes, and can rewrite its own image files. Run as a fixed non-root UID. \
                    Bases that default to a non-root user (distroless `nonroot`, Chainguard, \
                    `*-unprivileged`) pass. The stock nginx and httpd images used as they are, \
                    as a proxy, are reported as info only: their master process starts as \
                    root by design (to bind port 80 and read keys) and the workers that serve \
                    requests drop to an unprivileged user; nginxinc/nginx-unprivileged runs \
                    entirely as non-root.",
        bad: "FROM python:3.12-slim\nCMD [\"gunicorn\", \"app:app\"]",
        good: "FROM python:3.12-slim\nRUN useradd --system --uid 65532 nonroot\nUSER 65532:65532\nCMD [\"gunicorn\", \"app:app\"]",
        fix: "create a user and add `USER 65532:65532` (or a named non-root user) to the final stage",
        dockerfile: Some(root_user),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "missing-expose",
        lesson: Some(LessonId::new(8)),
        severity: Severity::Warning,
        summary: "a web service image does not EXPOSE its port",
        rationale: "EXPOSE documents which port the service listens on, for people and tools.",
        bad: "CMD [\"gunicorn\", \"--bind\", \"0.0.0.0:8000\", \"app:app\"]",
        good: "EXPOSE 8000\nCMD [\"gunicorn\", \"--bind\", \"0.0.0.0:8000\", \"app:app\"]",
        fix: "add `EXPOSE <port>` for the port the server binds",
        dockerfile: Some(missing_expose),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "missing-volume",
        lesson: Some(LessonId::new(8)),
        severity: Severity::Info,
        summary: "a data directory is created without a VOLUME",
        rationale: "Data that must survive the container belongs in a declared volume, so it \
                    is not lost with the container and the root filesystem can be read-only.",
        bad: "RUN mkdir -p /data && chown app /data",
        good: "RUN mkdir -p /data && chown app /data\nVOLUME [\"/data\"]",
        fix: "declare the directory with VOLUME",
        dockerfile: Some(missing_volume),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "writable-app-dir",
        lesson: Some(LessonId::new(9)),
        severity: Severity::Info,
        summary: "the application code is made writable for the runtime user",
        rationale: "If the app can write its own code directory it keeps state in the \
                    container (lost on restart) and cannot run with a read-only root filesystem.",
        bad: "RUN chown -R app:app /app && chmod -R 777 /app",
        good: "RUN mkdir /data && chown app /data\nVOLUME [\"/data\"]",
        fix: "keep code owned by root and read-only; write only to volumes and /tmp",
        dockerfile: Some(writable_app_dir),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "database-in-image",
        lesson: Some(LessonId::new(9)),
        severity: Severity::Warning,
        summary: "a database server is installed in the app image",
        rationale: "Databases hold state and are their own service: run them in their own \
                    container with a volume.",
        bad: "RUN apt-get install -y postgresql redis-server",
        good: "# compose.yaml: a `db` service with image postgres:17 and a named volume",
        fix: "run the database as its own compose service with a volume",
        dockerfile: Some(database_in_image),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "build-tools-in-final",
        lesson: Some(LessonId::new(12)),
        severity: Severity::Warning,
        summary: "compilers or build tools are installed in the final image",
        rationale: "gcc, build-essential, git and -dev headers are only needed to build wheels. \
                    In the runtime image they add size and attack surface: build in an earlier \
                    stage and copy the result. Removing them in the same RUN that installs them \
                    keeps them out of every layer; removing them in a later RUN hides them but \
                    leaves their bytes in the installing layer, which is reported.",
        bad: "FROM python:3.12-slim\nRUN apt-get update && apt-get install -y build-essential libpq-dev",
        good: "FROM python:3.12-slim AS build\nRUN apt-get update && apt-get install -y --no-install-recommends build-essential libpq-dev\n...\nFROM python:3.12-slim\nCOPY --from=build /install /usr/local",
        fix: "install build tools in a build stage and copy only the results into the final stage",
        dockerfile: Some(build_tools_in_final),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "full-base-image",
        lesson: Some(LessonId::new(12)),
        severity: Severity::Warning,
        summary: "the final image is based on the full Python image instead of -slim",
        rationale: "python:3.X is about 1 GB with compilers and headers; python:3.X-slim is a \
                    fraction of that.",
        bad: "FROM python:3.12",
        good: "FROM python:3.12.8-slim-bookworm",
        fix: "use a -slim tag for the final stage",
        dockerfile: Some(full_base_image),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "missing-healthcheck",
        lesson: Some(LessonId::new(18)),
        severity: Severity::Warning,
        summary: "a web service image has no HEALTHCHECK",
        rationale: "Without a health check the orchestrator cannot tell a hung app from a \
                    healthy one. A Python service under a process manager (an image that \
                    installs Python dependencies and starts supervisord) needs one too. (Dev \
                    targets are exempt.)",
        bad: "EXPOSE 8000\nCMD [\"gunicorn\", \"app:app\"]",
        good: "HEALTHCHECK CMD [\"python\", \"-c\", \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')\"]",
        fix: "add a HEALTHCHECK that requests a health endpoint",
        dockerfile: Some(missing_healthcheck),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "shell-form-command",
        lesson: Some(LessonId::new(19)),
        severity: Severity::Warning,
        summary: "CMD or ENTRYPOINT uses the shell form",
        rationale: "In shell form PID 1 is /bin/sh, which does not forward SIGTERM: the app is \
                    killed after the stop timeout instead of shutting down cleanly.",
        bad: "CMD gunicorn --bind 0.0.0.0:8000 app:app",
        good: "CMD [\"gunicorn\", \"--bind\", \"0.0.0.0:8000\", \"app:app\"]",
        fix: "use the JSON form: CMD [\"executable\", \"arg\", ...]",
        dockerfile: Some(shell_form_command),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "shell-without-exec",
        lesson: Some(LessonId::new(19)),
        severity: Severity::Warning,
        summary: "a `sh -c` command starts the server without `exec`",
        rationale: "Without `exec` the shell stays PID 1 and the server never sees SIGTERM.",
        bad: "CMD [\"sh\", \"-c\", \"gunicorn --bind 0.0.0.0:$PORT app:app\"]",
        good: "CMD [\"sh\", \"-c\", \"exec gunicorn --bind 0.0.0.0:$PORT app:app\"]",
        fix: "prefix the server command with `exec`",
        dockerfile: Some(shell_without_exec),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "entrypoint-without-exec",
        lesson: Some(LessonId::new(19)),
        severity: Severity::Warning,
        summary: "the entrypoint script never `exec`s the main process",
        rationale: "An entrypoint script that runs the server as a child keeps the shell as \
                    PID 1: SIGTERM never reaches the server and `docker stop` waits for the \
                    kill timeout. End the script with `exec \"$@\"` or `exec gunicorn ...`.",
        bad: "#!/bin/sh\npython manage.py migrate\ngunicorn mysite.wsgi",
        good: "#!/bin/sh\nset -e\npython manage.py migrate\nexec \"$@\"",
        fix: "start the final command of the entrypoint script with `exec`",
        dockerfile: Some(entrypoint_without_exec),
        compose: None,
        kubernetes: None,
    },
];

fn entrypoint_without_exec(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let Some((_, inst, script)) = cx
        .entry_commands()
        .into_iter()
        .find(|(_, i, _)| i.kind == Kind::Entrypoint)
    else {
        return;
    };
    let Some(program) = script.commands.first().and_then(|c| c.words.first()) else {
        return;
    };
    if crate::shell::SHELLS.contains(&crate::shell::basename(&program.text)) {
        return;
    }
    let Some(text) = cx.context_file(&program.text) else {
        return;
    };
    if !text.starts_with("#!") && !program.text.ends_with(".sh") {
        return;
    }
    let body = crate::shell::parse(&text, &|i| i);
    if !body
        .commands
        .iter()
        .any(|c| c.words.first().is_some_and(|w| w.text == "exec"))
    {
        out.span(
            inst.span,
            format!(
                "`{}` never `exec`s the main process: the shell stays PID 1",
                program.text
            ),
        );
    }
}

fn root_user(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let Some(stage) = cx.production_stage() else {
        return;
    };
    let Some(root) = cx.file.chain(stage).first().copied() else {
        return;
    };
    let base = &root.base_resolved;
    if base.contains("nonroot")
        || base.contains("unprivileged")
        || base.starts_with("cgr.dev/chainguard/")
    {
        return;
    }
    let user = cx
        .runtime()
        .into_iter()
        .rev()
        .map(|n| &cx.file.instructions[n])
        .find(|i| i.kind == Kind::User);
    match user {
        None => match privilege_dropping_proxy(cx, base) {
            Some(server) => out.span_with(
                cx.final_from_span(),
                Severity::Info,
                format!(
                    "the stock `{server}` image starts its master process as root by design and \
                     its workers drop to an unprivileged user; for a fully non-root proxy use \
                     nginxinc/nginx-unprivileged or set USER and a port above 1024"
                ),
            ),
            None => out.span(
                cx.final_from_span(),
                "the final stage has no USER: the container runs as root",
            ),
        },
        Some(inst) => {
            let Some(word) = inst.words().into_iter().next() else {
                return;
            };
            let value = expand(&word.text, &|name| cx.variable(stage, name));
            let name = value.split(':').next().unwrap_or("");
            if name == "root" || name == "0" {
                out.span(
                    inst.span,
                    format!("`USER {}` runs the container as root", word.text),
                );
            }
        }
    }
}

/// Servers whose official image starts as root and drops privileges in its worker processes.
const PRIVILEGE_DROPPING_SERVERS: [&str; 2] = ["nginx", "httpd"];

/// For an official nginx or httpd base used as it is (a proxy: no Python installed, and the
/// container still starts the server), the server's name.
fn privilege_dropping_proxy(cx: &DockerfileContext<'_>, base: &str) -> Option<&'static str> {
    let repo = official_repository(base)?;
    let server = PRIVILEGE_DROPPING_SERVERS
        .into_iter()
        .find(|s| *s == repo)?;
    if cx.is_python_image() {
        return None;
    }
    let starts_server = cx.entry_commands().iter().all(|(_, _, script)| {
        script.commands.iter().all(|c| {
            c.program_name().is_some_and(|p| {
                matches!(
                    p,
                    "nginx" | "httpd" | "httpd-foreground" | "apachectl" | "docker-entrypoint.sh"
                )
            })
        })
    });
    starts_server.then_some(server)
}

/// The repository name of an official Docker Hub image (`nginx:1.27-alpine`,
/// `docker.io/library/nginx@sha256:...` give `nginx`); `None` for other registries and
/// namespaces.
fn official_repository(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let name = name
        .strip_prefix("docker.io/")
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name);
    let name = name.strip_prefix("library/").unwrap_or(name);
    if name.contains('/') {
        return None;
    }
    name.split(':').next()
}

fn serves_web(cx: &DockerfileContext<'_>) -> bool {
    cx.entry_commands()
        .iter()
        .any(|(_, _, s)| s.commands.iter().any(|c| web_server(c).is_some()))
}

fn missing_expose(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    if !serves_web(cx)
        || cx
            .runtime()
            .iter()
            .any(|&n| cx.file.instructions[n].kind == Kind::Expose)
    {
        return;
    }
    if let Some((_, inst, _)) = cx.entry_commands().last() {
        out.span(
            inst.span,
            "the image serves HTTP but does not EXPOSE a port",
        );
    }
}

const DATA_DIRS: [&str; 8] = [
    "data", "uploads", "media", "db", "storage", "state", "database", "sqlite",
];

fn missing_volume(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let runtime = cx.runtime();
    let volumes: Vec<String> = runtime
        .iter()
        .map(|&n| &cx.file.instructions[n])
        .filter(|i| i.kind == Kind::Volume)
        .flat_map(|i| i.words())
        .map(|w| w.text.trim_end_matches('/').to_string())
        .collect();
    for &n in &runtime {
        if cx.file.instructions[n].kind != Kind::Run {
            continue;
        }
        let Some(script) = cx.script(n) else { continue };
        for cmd in script
            .commands
            .iter()
            .filter(|c| c.program_name() == Some("mkdir"))
        {
            for w in cmd.args().iter().filter(|w| w.text.starts_with('/')) {
                let path = w.text.trim_end_matches('/');
                let last = path.rsplit('/').next().unwrap_or("");
                let covered = volumes
                    .iter()
                    .any(|v| path == v || path.starts_with(&format!("{v}/")));
                if DATA_DIRS.contains(&last) && !covered {
                    out.span(
                        w.span,
                        format!(
                            "`{path}` looks like a data directory but is not declared as a VOLUME"
                        ),
                    );
                }
            }
        }
    }
}

fn writable_app_dir(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let Some(stage) = cx.production_stage() else {
        return;
    };
    let workdir = cx
        .runtime()
        .into_iter()
        .map(|n| &cx.file.instructions[n])
        .filter(|i| i.kind == Kind::Workdir)
        .filter_map(|i| i.words().into_iter().next())
        .map(|w| expand(&w.text, &|name| cx.variable(stage, name)))
        .next_back();
    for n in cx.runtime() {
        if cx.file.instructions[n].kind != Kind::Run {
            continue;
        }
        let Some(script) = cx.script(n) else { continue };
        for cmd in &script.commands {
            let args = cmd.args();
            match cmd.program_name() {
                Some("chmod")
                    if args.iter().any(|w| {
                        matches!(
                            w.text.as_str(),
                            "777" | "666" | "a+w" | "o+w" | "a+rwx" | "ugo+rwx"
                        )
                    }) =>
                {
                    out.span(cmd.span(), "world-writable files in the image");
                }
                Some("chown") if args.iter().any(|w| w.text == "-R") => {
                    let targets = args.iter().filter(|w| !w.text.starts_with('-')).skip(1);
                    for t in targets {
                        let is_app = t.text == "."
                            || workdir.as_deref() == Some(t.text.trim_end_matches('/'))
                            || t.text == "/app";
                        if is_app {
                            out.span(t.span, format!("`chown -R` makes the app directory `{}` writable by the runtime user", t.text));
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn database_in_image(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    if !cx.is_python_image() {
        return;
    }
    for install in cx.os_installs().iter().filter(|i| i.removal.is_none()) {
        let pkg = install.package.as_str();
        let server = matches!(
            pkg,
            "postgresql"
                | "mysql-server"
                | "mariadb-server"
                | "redis-server"
                | "redis"
                | "mongodb"
                | "mongodb-org"
                | "memcached"
        ) || (pkg.starts_with("postgresql-1") && !pkg.contains("client"));
        if server {
            out.span(
                install.word.span,
                format!("`{pkg}` puts a database server in the app image"),
            );
        }
    }
}

const BUILD_TOOLS: [&str; 14] = [
    "build-essential",
    "gcc",
    "g++",
    "make",
    "cmake",
    "clang",
    "git",
    "autoconf",
    "automake",
    "libtool",
    "build-base",
    "musl-dev",
    "cargo",
    "rustc",
];

fn build_tools_in_final(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for install in cx.os_installs() {
        let pkg = install.package.as_str();
        let tool = BUILD_TOOLS.contains(&pkg)
            || pkg.ends_with("-dev")
            || pkg.ends_with("-devel")
            || pkg.starts_with("gcc-");
        if !tool {
            continue;
        }
        match install.removal {
            Some(Removal::SameRun) => {}
            Some(Removal::Later { line }) => out.span(
                install.word.span,
                format!(
                    "`{pkg}` is removed in line {line}, but its bytes stay in the layer of line {}",
                    cx.line_of(cx.file.instructions[install.instruction].span)
                ),
            ),
            None => out.span(
                install.word.span,
                format!("`{pkg}` stays in the final image"),
            ),
        }
    }
}

fn full_base_image(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let Some(stage) = cx.production_stage() else {
        return;
    };
    let Some(root) = cx.file.chain(stage).first().copied() else {
        return;
    };
    let image = root.base_resolved.split('@').next().unwrap_or("");
    let (repo, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (image, ""),
    };
    let is_python = repo == "python"
        || repo.ends_with("/python")
            && (repo.starts_with("docker.io/") || repo.starts_with("library/"));
    if is_python && !tag.contains("slim") && !tag.contains("alpine") {
        let shown = if tag.is_empty() {
            "python".to_string()
        } else {
            format!("python:{tag}")
        };
        out.span(
            cx.file.instructions[root.from].span,
            format!("`{shown}` is the full image with compilers and headers"),
        );
    }
}

fn missing_healthcheck(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let supervised = cx.supervised_python();
    if cx.dev_target || !(serves_web(cx) || supervised.is_some()) {
        return;
    }
    if cx
        .runtime()
        .iter()
        .any(|&n| cx.file.instructions[n].kind == Kind::Healthcheck)
    {
        return;
    }
    let message = match supervised.filter(|_| !serves_web(cx)) {
        Some(manager) => format!("the Python service run by `{manager}` has no HEALTHCHECK"),
        None => "the web service has no HEALTHCHECK".to_string(),
    };
    if let Some((_, inst, _)) = cx.entry_commands().last() {
        out.span(inst.span, message);
    }
}

fn shell_form_command(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, inst) in cx.instructions() {
        if matches!(inst.kind, Kind::Cmd | Kind::Entrypoint)
            && matches!(inst.args, Arguments::Shell(_))
        {
            out.span(
                inst.span,
                format!(
                    "{} in shell form: /bin/sh is PID 1 and does not pass on SIGTERM",
                    inst.keyword.text.to_ascii_uppercase()
                ),
            );
        }
    }
}

fn shell_without_exec(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, inst, _) in cx.entry_commands() {
        let Arguments::Exec(items) = &inst.args else {
            continue;
        };
        let is_shell = items.first().is_some_and(|w| {
            matches!(
                crate::shell::basename(&w.text),
                "sh" | "bash" | "ash" | "dash"
            )
        });
        let Some(c) = items
            .iter()
            .position(|w| w.text.starts_with('-') && w.text.contains('c'))
        else {
            continue;
        };
        let Some(script_item) = items.get(c + 1) else {
            continue;
        };
        if !is_shell {
            continue;
        }
        let nested = crate::shell::parse(&script_item.text, &|i| i);
        let last = nested.commands.last();
        let starts_server = last.is_some_and(|cmd| {
            web_server(cmd).is_some() || cmd.program_name().is_some_and(|p| p.starts_with("python"))
        });
        let has_exec = last.is_some_and(|cmd| cmd.words.first().is_some_and(|w| w.text == "exec"));
        if starts_server && !has_exec {
            out.span(
                script_item.span,
                "the shell stays PID 1: start the server with `exec`",
            );
        }
    }
}
