//! Python specifics: production app servers (L02), no virtualenv (L04), pinned and cache-free
//! pip installs (L13 and the basics), unbuffered logs to stdout (L14).

use super::detect::{
    dev_server, is_debug_setting, is_path_like, is_python_tool, pip_install, pip_packages, tool,
    web_server,
};
use super::{DockerfileContext, Emitter, Rule};
use crate::dockerfile::Kind;
use crate::finding::{LessonId, Severity};
use crate::shell::Command;

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "dev-server",
        lesson: Some(LessonId::new(2)),
        severity: Severity::Error,
        summary: "the image serves with a development server (flask run, manage.py runserver, --reload)",
        rationale: "Framework development servers are single-process, unhardened and slow; \
                    `--reload` watches files. Production images run gunicorn, uWSGI or uvicorn \
                    workers. Dev targets (Dockerfile.dev, a file whose stages are all dev \
                    stages) are exempt; when the last stage is a dev stage (`dev`, `dev-envs`, \
                    `development`, ...) the last stage before it is the production image checked. \
                    Scripts the command runs are read from the build context: a Python \
                    script calling Flask's app.run(), `run` of a FlaskGroup script (`manage.py \
                    run`), a shell script ending in `flask run` (unless it can also start a \
                    production server or hands over to `\"$@\"`).",
        bad: "CMD [\"flask\", \"run\", \"--host=0.0.0.0\"]",
        good: "CMD [\"gunicorn\", \"--bind\", \"0.0.0.0:8000\", \"--workers\", \"2\", \"app:app\"]",
        fix: "run a production server: gunicorn (WSGI) or uvicorn/gunicorn with uvicorn workers (ASGI)",
        dockerfile: Some(dev_server_rule),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "debug-mode",
        lesson: Some(LessonId::new(2)),
        severity: Severity::Warning,
        summary: "FLASK_ENV=development, FLASK_DEBUG or DJANGO_DEBUG is set in a production image",
        rationale: "Debug mode shows tracebacks (and Werkzeug's debugger runs code) for anyone \
                    who can reach the app. Set it only in the dev target or at run time.",
        bad: "ENV FLASK_ENV=development FLASK_DEBUG=1",
        good: "ENV PYTHONUNBUFFERED=1\n# set FLASK_DEBUG=1 only in compose for development",
        fix: "remove the debug setting from the production image",
        dockerfile: Some(debug_mode),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "virtualenv",
        lesson: Some(LessonId::new(4)),
        severity: Severity::Info,
        summary: "a virtualenv is created or activated inside the image",
        rationale: "The container is already isolated; a venv adds a layer of indirection \
                    (PATH, activation that does not persist between RUNs). Install into the \
                    image's site-packages, or copy an installed prefix between stages. Some \
                    templates use a venv on purpose, so this is info.",
        bad: "RUN python -m venv /venv && . /venv/bin/activate && pip install -r requirements.txt",
        good: "RUN pip install --no-cache-dir --prefix /install -r requirements.txt\n# final stage: COPY --from=build /install /usr/local",
        fix: "install into the system site-packages (or a --prefix copied into /usr/local)",
        dockerfile: Some(virtualenv),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "unpinned-pip",
        lesson: Some(LessonId::new(13)),
        severity: Severity::Warning,
        summary: "pip installs a package without pinning its version",
        rationale: "`pip install flask` installs whatever is newest at build time: two builds \
                    of the same commit differ. Pin with `==` or install from a lock file.",
        bad: "RUN pip install flask gunicorn",
        good: "RUN pip install --no-cache-dir --require-hashes -r requirements.txt",
        fix: "pin the version (`flask==3.1.0`) or install from a locked requirements file",
        dockerfile: Some(unpinned_pip),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "pip-cache",
        lesson: None,
        severity: Severity::Warning,
        summary: "pip install keeps its download cache in the final image",
        rationale: "pip's cache is useless in an image and adds megabytes to the layer. The \
                    cache is off with `--no-cache-dir` or any abbreviation pip accepts for it \
                    (`--no-cache`), `PIP_NO_CACHE_DIR` set to any value (pip treats even `0` \
                    as off) by an earlier ENV or ARG, on the command or exported in the RUN, or \
                    a cache mount. (Build stages whose files are copied out selectively are not \
                    checked.)",
        bad: "RUN pip install -r requirements.txt",
        good: "RUN pip install --no-cache-dir -r requirements.txt",
        fix: "add --no-cache-dir (or ENV PIP_NO_CACHE_DIR=1, or a cache mount)",
        dockerfile: Some(pip_cache),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "python-unbuffered",
        lesson: Some(LessonId::new(14)),
        severity: Severity::Warning,
        summary: "a Python image runs without PYTHONUNBUFFERED=1",
        rationale: "Without it Python buffers stdout when it is not a terminal: logs arrive \
                    late or are lost when the container stops. An image that installs Python \
                    dependencies and starts a process manager (supervisord) runs Python under \
                    it, and is checked the same way.",
        bad: "FROM python:3.12-slim\nCMD [\"gunicorn\", \"app:app\"]",
        good: "FROM python:3.12-slim\nENV PYTHONUNBUFFERED=1\nCMD [\"gunicorn\", \"app:app\"]",
        fix: "add `ENV PYTHONUNBUFFERED=1` to the final stage",
        dockerfile: Some(python_unbuffered),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "log-file",
        lesson: Some(LessonId::new(14)),
        severity: Severity::Warning,
        summary: "the app server writes its logs to a file inside the container",
        rationale: "Log files fill the container's writable layer and vanish with it; the \
                    platform collects stdout/stderr.",
        bad: "CMD [\"gunicorn\", \"--access-logfile\", \"/var/log/access.log\", \"app:app\"]",
        good: "CMD [\"gunicorn\", \"--access-logfile\", \"-\", \"app:app\"]",
        fix: "log to stdout/stderr (`-` for gunicorn's log files)",
        dockerfile: Some(log_file),
        compose: None,
        kubernetes: None,
    },
];

fn dev_server_rule(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    if cx.dev_target {
        return;
    }
    let mut found = false;
    for (_, inst, script) in cx.entry_commands() {
        let keyword = inst.keyword.text.to_ascii_uppercase();
        for cmd in &script.commands {
            if let Some(message) = dev_server_message(cx, cmd, &keyword) {
                out.span(cmd.span(), message);
                found = true;
            }
        }
    }
    if found {
        return;
    }
    // `ENTRYPOINT ["python3"]` + `CMD ["app.py"]`: neither alone is a dev server.
    if let Some((cmd_inst, script)) = cx.joined_entry() {
        for cmd in &script.commands {
            if let Some(message) = dev_server_message(cx, cmd, "ENTRYPOINT + CMD") {
                out.span(cmd_inst.span, format!("`{}`: {message}", cmd.text()));
            }
        }
    }
}

/// Why `cmd` (run by `keyword`) serves with a development server, if it does: a dev server
/// command, a Python script from the build context that starts one, or a shell script from
/// the build context that does.
fn dev_server_message(cx: &DockerfileContext<'_>, cmd: &Command, keyword: &str) -> Option<String> {
    if let Some(file) = flask_app_run_script(cx, cmd) {
        return Some(format!(
            "`{file}` starts Flask's development server with app.run()"
        ));
    }
    direct_dev_server(cx, cmd)
        .map(|what| format!("{keyword} serves with the development server ({what})"))
        .or_else(|| wrapper_dev_server(cx, cmd))
}

/// The dev server command `cmd` runs, described for a message: a known dev server, or
/// `run` of a `FlaskGroup` script from the build context.
fn direct_dev_server(cx: &DockerfileContext<'_>, cmd: &Command) -> Option<String> {
    if let Some(file) = flask_group_run(cx, cmd) {
        return Some(format!("`{file} run`, the Flask CLI's `flask run`"));
    }
    dev_server(cmd).map(|what| format!("`{what}`"))
}

/// For `python cli.py run ...` (or `./cli.py run`), the script's name when the build
/// context's copy is a Flask `FlaskGroup` command line, whose `run` is `flask run`.
fn flask_group_run(cx: &DockerfileContext<'_>, cmd: &Command) -> Option<String> {
    let program = cmd.program_index()?;
    let words = &cmd.words[program..];
    let python = crate::shell::basename(&words[0].text).starts_with("python");
    let mut operands = words[usize::from(python)..]
        .iter()
        .filter(|w| !w.text.starts_with('-'));
    let script = operands.next()?;
    let sub = operands.next()?;
    if !script.text.ends_with(".py") || sub.text != "run" {
        return None;
    }
    let text = cx.context_file(&script.text)?;
    text.contains("FlaskGroup").then(|| script.text.clone())
}

/// For a shell script from the build context that the command runs (`./start.sh`,
/// `sh scripts/run.sh`), why it serves with a dev server. A script that can also start a
/// production server or hands over to its arguments (`exec "$@"`) picks one at run time:
/// not reported.
fn wrapper_dev_server(cx: &DockerfileContext<'_>, cmd: &Command) -> Option<String> {
    let (path, text) = wrapper_script(cx, cmd)?;
    let mut script = crate::shell::parse(&text, &|i| i);
    script.expand_shell_c();
    let hands_over = script.commands.iter().any(|c| {
        c.program_index()
            .is_some_and(|p| matches!(c.words[p].text.as_str(), "$@" | "${@}" | "$*"))
    });
    let production = script
        .commands
        .iter()
        .any(|c| web_server(c).is_some() && dev_server(c).is_none());
    if hands_over || production {
        return None;
    }
    script.commands.iter().find_map(|c| {
        let what = flask_app_run_script(cx, c)
            .map(|file| format!("`{file}` calls app.run()"))
            .or_else(|| direct_dev_server(cx, c))?;
        let line = text
            .get(..c.span().start)
            .map_or(1, |before| before.matches('\n').count() + 1);
        Some(format!(
            "`{path}` serves with the development server ({what} on line {line} of the script)"
        ))
    })
}

/// The path and text of the shell script `cmd` runs, when the build context has it.
fn wrapper_script(cx: &DockerfileContext<'_>, cmd: &Command) -> Option<(String, String)> {
    let program = cmd.program_index()?;
    let name = crate::shell::basename(&cmd.words[program].text);
    let path = if crate::shell::SHELLS.contains(&name) {
        cmd.args().iter().find(|w| !w.text.starts_with('-'))?
    } else {
        &cmd.words[program]
    };
    let text = cx.context_file(&path.text)?;
    let shell = path.text.ends_with(".sh")
        || text
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("#!") && l.contains("sh"));
    shell.then(|| (path.text.clone(), text))
}

/// For `python app.py`, the script's name when the build context's copy calls Flask's
/// `app.run()`.
fn flask_app_run_script(cx: &DockerfileContext<'_>, cmd: &Command) -> Option<String> {
    if !cmd.program_name()?.starts_with("python") {
        return None;
    }
    let script = cmd.args().iter().find(|w| !w.text.starts_with('-'))?;
    if !script.text.ends_with(".py") || script.text.ends_with("manage.py") {
        return None;
    }
    let text = cx.context_file(&script.text)?;
    calls_flask_run(&text).then(|| script.text.clone())
}

/// Whether Python source builds a Flask app and starts it with `<app>.run(...)` (not
/// `subprocess.run` or `asyncio.run`, which start no server).
fn calls_flask_run(text: &str) -> bool {
    let flask = text.contains("Flask(") || text.contains("create_app") || text.contains("flask");
    let runs = text.match_indices(".run(").any(|(at, _)| {
        let before = text[..at]
            .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("");
        !before.is_empty() && !matches!(before, "subprocess" | "asyncio" | "trio" | "anyio")
    });
    flask && runs
}

fn debug_mode(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    if cx.dev_target {
        return;
    }
    for n in cx.runtime() {
        let inst = &cx.file.instructions[n];
        if inst.kind != Kind::Env {
            continue;
        }
        for (key, value) in inst.pairs() {
            if value
                .as_ref()
                .is_some_and(|v| is_debug_setting(&key.text, &v.text))
            {
                out.span(
                    key.span.join(value.map_or(key.span, |v| v.span)),
                    format!("`{}` turns on debug mode in the production image", key.text),
                );
            }
        }
    }
}

fn virtualenv(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, _, script) in cx.runs() {
        for cmd in &script.commands {
            let Some((name, rest)) = tool(cmd) else {
                continue;
            };
            let first = rest
                .iter()
                .find(|w| !w.text.starts_with('-'))
                .map(|w| w.text.as_str());
            let found = match name.as_str() {
                "venv" | "virtualenv" => true,
                "uv" => first == Some("venv"),
                "source" | "." => first.is_some_and(|f| f.ends_with("bin/activate")),
                _ => false,
            };
            if found {
                out.span(
                    cmd.span(),
                    format!("`{}` uses a virtualenv inside the image", cmd.text()),
                );
            }
        }
    }
    for (_, inst) in cx.instructions().filter(|(_, i)| i.kind == Kind::Env) {
        for (key, _) in inst.pairs() {
            if key.text == "VIRTUAL_ENV" {
                out.span(key.span, "ENV VIRTUAL_ENV points the image at a virtualenv");
            }
        }
    }
}

fn unpinned_pip(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, _, script) in cx.runs() {
        for cmd in &script.commands {
            let Some((_, args)) = pip_install(cmd) else {
                continue;
            };
            for pkg in pip_packages(args) {
                let t = pkg.text.as_str();
                if is_path_like(t) || t.contains("==") || t.contains('@') || t.contains('$') {
                    continue;
                }
                out.span(pkg.span, format!("`{t}` is not pinned to a version"));
            }
        }
    }
}

fn pip_cache(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let runtime = cx.runtime();
    for (n, inst, script) in cx.runs().filter(|(n, _, _)| runtime.contains(n)) {
        if inst
            .flag("mount")
            .and_then(|f| f.value.as_deref())
            .is_some_and(|v| v.contains("type=cache"))
        {
            continue;
        }
        if cx
            .variable_before(n, "PIP_NO_CACHE_DIR")
            .is_some_and(|v| pip_env_disables_cache(&v))
        {
            continue;
        }
        let mut exported = false;
        for cmd in &script.commands {
            exported |= exports_no_cache_dir(cmd);
            if let Some((false, args)) = pip_install(cmd)
                && !exported
                && !args.iter().any(|w| is_pip_no_cache_dir(&w.text))
                && !assigns_no_cache_dir(cmd)
            {
                out.span(
                    cmd.span(),
                    "pip install without --no-cache-dir keeps pip's cache in the layer",
                );
            }
        }
    }
}

/// Whether a pip argument is `--no-cache-dir` or an abbreviation of it. pip parses its options
/// with optparse, which accepts any unambiguous prefix of a long option: `--no-cache` and
/// `--no-ca` mean `--no-cache-dir` (`--no-c` could also be `--no-clean` or `--no-compile`).
pub(super) fn is_pip_no_cache_dir(arg: &str) -> bool {
    let name = arg.split('=').next().unwrap_or(arg);
    name.len() >= "--no-ca".len() && "--no-cache-dir".starts_with(name)
}

/// Whether a `PIP_NO_CACHE_DIR` value turns pip's cache off. pip disables the cache for any
/// value it accepts as a boolean, `0` and `false` included (kept for backward compatibility);
/// only an empty value leaves it on.
fn pip_env_disables_cache(value: &str) -> bool {
    !value.trim_matches(['"', '\'']).is_empty()
}

/// `PIP_NO_CACHE_DIR=1 pip install ...` or `env PIP_NO_CACHE_DIR=1 pip install ...`.
fn assigns_no_cache_dir(cmd: &Command) -> bool {
    let end = cmd.program_index().unwrap_or(cmd.words.len());
    cmd.words[..end].iter().any(|w| {
        w.text
            .strip_prefix("PIP_NO_CACHE_DIR=")
            .is_some_and(pip_env_disables_cache)
    })
}

/// `export PIP_NO_CACHE_DIR=1` earlier in the same RUN.
fn exports_no_cache_dir(cmd: &Command) -> bool {
    cmd.program_name() == Some("export")
        && cmd.args().iter().any(|w| {
            w.text
                .strip_prefix("PIP_NO_CACHE_DIR=")
                .is_some_and(pip_env_disables_cache)
        })
}

fn python_unbuffered(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let entry = cx.entry_commands();
    let runs_python = entry
        .iter()
        .any(|(_, _, s)| s.commands.iter().any(is_python_tool))
        || cx.supervised_python().is_some();
    if !runs_python || !cx.is_python_image() {
        return;
    }
    let Some(stage) = cx.production_stage() else {
        return;
    };
    let set = cx
        .variable(stage, "PYTHONUNBUFFERED")
        .is_some_and(|v| !v.is_empty() && v != "0");
    let dash_u = entry.iter().any(|(_, _, s)| {
        s.commands.iter().any(|c| {
            c.program_name().is_some_and(|p| p.starts_with("python")) && c.has_short_flag('u')
        })
    });
    if !set && !dash_u {
        let span = entry
            .last()
            .map_or(cx.final_from_span(), |(_, i, _)| i.span);
        out.span(
            span,
            "PYTHONUNBUFFERED is not set: Python buffers its log output",
        );
    }
}

fn log_file(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    const OPTIONS: [&str; 6] = [
        "--access-logfile",
        "--error-logfile",
        "--log-file",
        "--logto",
        "--daemonize",
        "--log-config",
    ];
    for (_, _, script) in cx.entry_commands() {
        for cmd in &script.commands {
            let args = cmd.args();
            for (i, w) in args.iter().enumerate() {
                let (opt, value) = match w.text.split_once('=') {
                    Some((o, v)) => (o, Some(v.to_string())),
                    None => (w.text.as_str(), args.get(i + 1).map(|v| v.text.clone())),
                };
                if !OPTIONS[..5].contains(&opt) {
                    continue;
                }
                if let Some(v) =
                    value.filter(|v| !matches!(v.as_str(), "-" | "/dev/stdout" | "/dev/stderr"))
                {
                    out.span(
                        w.span,
                        format!("`{opt} {v}` writes logs to a file in the container"),
                    );
                }
            }
            for r in &cmd.redirects {
                if r.text.starts_with('/') && !r.text.starts_with("/dev/") {
                    out.span(
                        r.span,
                        format!("output is redirected to `{}` inside the container", r.text),
                    );
                }
            }
        }
    }
    for n in cx.runtime() {
        let inst = &cx.file.instructions[n];
        if inst.kind != Kind::Env {
            continue;
        }
        for (key, value) in inst.pairs() {
            let upper = key.text.to_ascii_uppercase();
            let is_log_setting = ["LOG_FILE", "LOGFILE", "LOG_PATH"]
                .iter()
                .any(|k| upper.ends_with(k));
            if let Some(v) = value.filter(|v| {
                is_log_setting && v.text.starts_with('/') && !v.text.starts_with("/dev/")
            }) {
                out.span(
                    key.span.join(v.span),
                    format!(
                        "`{}={}` sends logs to a file in the container",
                        key.text, v.text
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_accepts_prefixes_of_no_cache_dir() {
        for arg in ["--no-cache-dir", "--no-cache", "--no-cach", "--no-ca"] {
            assert!(is_pip_no_cache_dir(arg), "{arg}");
        }
        for arg in ["--no-c", "--no-clean", "--no-compile", "--cache-dir", "-n"] {
            assert!(!is_pip_no_cache_dir(arg), "{arg}");
        }
    }

    #[test]
    fn flask_run_calls() {
        let app = "from flask import Flask\napp = Flask(__name__)\n";
        assert!(calls_flask_run(&format!("{app}app.run(debug=True)\n")));
        assert!(calls_flask_run(&format!("{app}socketio.run(app)\n")));
        assert!(!calls_flask_run(&format!(
            "{app}subprocess.run(['gunicorn', 'app:app'])\n"
        )));
        assert!(!calls_flask_run("import asyncio\nasyncio.run(main())\n"));
        assert!(!calls_flask_run("app.run()\n"), "not a Flask app");
    }

    #[test]
    fn any_pip_no_cache_dir_value_turns_the_cache_off() {
        for value in ["1", "true", "0", "false", "off", "\"no\""] {
            assert!(pip_env_disables_cache(value), "{value}");
        }
        assert!(!pip_env_disables_cache(""));
        assert!(!pip_env_disables_cache("''"));
    }
}
