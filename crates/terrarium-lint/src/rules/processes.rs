//! One process per container (L01), no SSH (L15), no web server in the app image (L03).

use super::detect::{process_manager_name, web_server};
use super::{DockerfileContext, Emitter, Rule};
use crate::dockerfile::Kind;
use crate::finding::{LessonId, Severity};

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "process-manager",
        lesson: Some(LessonId::new(1)),
        severity: Severity::Error,
        summary: "a process manager (supervisord, runit, s6, cron) runs several processes in one container",
        rationale: "A container is one process. A process manager hides crashes from the \
                    orchestrator, mixes logs and stops uncleanly. Run each process in its own \
                    container (a compose service) and let the orchestrator restart it.",
        bad: "RUN apt-get update && apt-get install -y supervisor\nCMD [\"supervisord\", \"-n\"]",
        good: "CMD [\"gunicorn\", \"--bind\", \"0.0.0.0:8000\", \"app:app\"]\n# worker: a second compose service with command: celery -A app worker",
        fix: "run each process in its own container (one compose service each)",
        dockerfile: Some(process_manager),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "multiple-processes",
        lesson: Some(LessonId::new(1)),
        severity: Severity::Warning,
        summary: "the container command backgrounds processes with `&` or starts several servers",
        rationale: "`a & b` makes PID 1 a shell that ignores a crashing `a` and does not pass \
                    SIGTERM on. Each long-running process belongs in its own container.",
        bad: "CMD celery -A app worker & gunicorn app:app",
        good: "CMD [\"gunicorn\", \"app:app\"]   # and a separate worker service",
        fix: "start one process; move the others into their own services",
        dockerfile: Some(multiple_processes),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "ssh-server",
        lesson: Some(LessonId::new(15)),
        severity: Severity::Error,
        summary: "an SSH server is installed, started or exposed",
        rationale: "sshd is a second process, a second way in and a key to manage. Debug with \
                    `docker exec` (`terrarium shell`), `docker logs` and `docker inspect`.",
        bad: "RUN apt-get install -y openssh-server\nEXPOSE 22\nCMD [\"/usr/sbin/sshd\", \"-D\"]",
        good: "# no sshd: use `docker exec -it <container> sh` to look inside",
        fix: "remove the SSH server; use `docker exec` / `terrarium shell` to debug",
        dockerfile: Some(ssh_server),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "web-server-in-app",
        lesson: Some(LessonId::new(3)),
        severity: Severity::Warning,
        summary: "nginx, Apache or Caddy is installed or started in the Python app image",
        rationale: "The reverse proxy is its own container: it scales, restarts and is updated \
                    separately from the app, and the app image stays small.",
        bad: "RUN apt-get install -y nginx\nCMD nginx && gunicorn app:app",
        good: "# compose.yaml: a `proxy` service with image nginx, the app service runs gunicorn",
        fix: "move the web server into its own compose service",
        dockerfile: Some(web_server_in_app),
        compose: None,
        kubernetes: None,
    },
];

const MANAGER_PACKAGES: [&str; 7] = [
    "supervisor",
    "runit",
    "s6",
    "cron",
    "cronie",
    "circus",
    "honcho",
];

fn process_manager(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, inst, script) in cx.entry_commands() {
        for cmd in &script.commands {
            if let Some(name) = process_manager_name(cmd) {
                out.span(
                    cmd.span(),
                    format!(
                        "`{name}` in {} runs several processes in one container",
                        inst.keyword.text.to_ascii_uppercase()
                    ),
                );
            }
        }
    }
    for install in cx.os_installs().iter().filter(|i| i.removal.is_none()) {
        let pkg = install.package.as_str();
        if MANAGER_PACKAGES.contains(&pkg) {
            out.span_with(
                install.word.span,
                Severity::Warning,
                format!("`{pkg}` is installed in the final image: a process manager means several processes per container"),
            );
        }
    }
}

fn multiple_processes(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, inst, script) in cx.entry_commands() {
        if let Some(cmd) = script.commands.iter().find(|c| c.background) {
            out.span(
                cmd.span(),
                format!(
                    "`{}` is sent to the background with `&` in {}",
                    cmd.text(),
                    inst.keyword.text.to_ascii_uppercase()
                ),
            );
            continue;
        }
        let servers: Vec<_> = script
            .commands
            .iter()
            .filter(|c| {
                web_server(c).is_some()
                    || c.program_name()
                        .is_some_and(|p| matches!(p, "nginx" | "celery" | "redis-server" | "httpd"))
            })
            .collect();
        if servers.len() > 1 {
            out.span(
                inst.span,
                format!(
                    "{} starts {} long-running processes",
                    inst.keyword.text.to_ascii_uppercase(),
                    servers.len()
                ),
            );
        }
    }
}

fn ssh_server(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, _, script) in cx.entry_commands() {
        for cmd in script
            .commands
            .iter()
            .filter(|c| matches!(c.program_name(), Some("sshd" | "dropbear")))
        {
            out.span(cmd.span(), "the container starts an SSH server");
        }
    }
    for install in cx.os_installs().iter().filter(|i| i.removal.is_none()) {
        let pkg = install.package.as_str();
        if matches!(pkg, "openssh-server" | "openssh" | "dropbear" | "ssh") {
            out.span(
                install.word.span,
                format!("`{pkg}` installs an SSH server in the image"),
            );
        }
    }
    for n in cx.runtime() {
        let inst = &cx.file.instructions[n];
        if inst.kind != Kind::Expose {
            continue;
        }
        for w in inst.words() {
            if w.text.split('/').next() == Some("22") {
                out.span(w.span, "port 22 (SSH) is exposed");
            }
        }
    }
}

fn web_server_in_app(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    if !cx.is_python_image() {
        return;
    }
    const SERVERS: [&str; 7] = [
        "nginx",
        "apache2",
        "httpd",
        "caddy",
        "lighttpd",
        "apache2ctl",
        "nginx-light",
    ];
    for install in cx.os_installs().iter().filter(|i| i.removal.is_none()) {
        let pkg = install.package.as_str();
        if SERVERS.contains(&pkg) || pkg.starts_with("nginx") {
            out.span(
                install.word.span,
                format!("`{pkg}` is installed in the Python app image"),
            );
        }
    }
    for (_, _, script) in cx.entry_commands() {
        for cmd in &script.commands {
            if let Some(p) = cmd.program_name().filter(|p| SERVERS.contains(p)) {
                out.span(
                    cmd.span(),
                    format!("`{p}` is started inside the Python app container"),
                );
            }
        }
    }
}
