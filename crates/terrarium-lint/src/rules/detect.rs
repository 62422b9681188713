//! Shared recognisers: dev servers, app servers, package installs, secret-looking names.

use crate::shell::{Command, Connector, Script, Word, basename};

/// Program names that are Python or Python tooling.
pub fn is_python_tool(cmd: &Command) -> bool {
    cmd.program_name().is_some_and(|p| {
        p.starts_with("python")
            || matches!(
                p,
                "pip"
                    | "pip3"
                    | "uv"
                    | "poetry"
                    | "pipenv"
                    | "gunicorn"
                    | "uvicorn"
                    | "hypercorn"
                    | "daphne"
                    | "uwsgi"
                    | "granian"
                    | "flask"
                    | "django-admin"
                    | "waitress-serve"
                    | "fastapi"
                    | "celery"
            )
    })
}

/// For `python -m X ...`, the module `X` and the index of the first argument after it.
pub fn python_module(cmd: &Command) -> Option<(&str, usize)> {
    let p = cmd.program_index()?;
    if !basename(&cmd.words[p].text).starts_with("python") {
        return None;
    }
    let args = &cmd.words[p + 1..];
    let m = args.iter().position(|w| w.text == "-m")?;
    args.get(m + 1).map(|w| (w.text.as_str(), p + 1 + m + 2))
}

/// The tool a command really runs: `python -m pip` gives `pip`; `uv pip` gives `uv pip`.
/// Returns the tool name and the words after it.
pub fn tool(cmd: &Command) -> Option<(String, &[Word])> {
    if let Some((module, rest)) = python_module(cmd) {
        return Some((module.to_string(), &cmd.words[rest.min(cmd.words.len())..]));
    }
    let p = cmd.program_index()?;
    let name = basename(&cmd.words[p].text);
    let name =
        if name.starts_with("pip") && name[3..].chars().all(|c| c.is_ascii_digit() || c == '.') {
            "pip"
        } else {
            name
        };
    if name == "uv" && cmd.words.get(p + 1).is_some_and(|w| w.text == "pip") {
        return Some(("uv pip".to_string(), &cmd.words[p + 2..]));
    }
    Some((name.to_string(), &cmd.words[p + 1..]))
}

/// If the command is `pip install` (or `python -m pip install`, `uv pip install`), the
/// arguments after `install`.
pub fn pip_install(cmd: &Command) -> Option<(bool, &[Word])> {
    let (name, rest) = tool(cmd)?;
    let is_uv = name == "uv pip";
    if !(name == "pip" || is_uv) {
        return None;
    }
    let sub = rest.iter().position(|w| !w.text.starts_with('-'))?;
    (rest[sub].text == "install").then(|| (is_uv, &rest[sub + 1..]))
}

const PIP_VALUE_OPTIONS: [&str; 36] = [
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-e",
    "--editable",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--prefix",
    "-t",
    "--target",
    "--root",
    "--python",
    "--trusted-host",
    "--cache-dir",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--only-binary",
    "--no-binary",
    "--src",
    "--upgrade-strategy",
    "--root-user-action",
    "--report",
    "--log",
    "--progress-bar",
    // uv pip's own
    "--exclude-newer",
    "--exclude-newer-package",
    "--resolution",
    "--prerelease",
    "--index-strategy",
    "--keyring-provider",
];

/// The package arguments of a `pip install` (words that are not options or option values).
pub fn pip_packages(args: &[Word]) -> Vec<&Word> {
    let mut out = Vec::new();
    let mut skip = false;
    for w in args {
        if skip {
            skip = false;
            continue;
        }
        if w.text.starts_with('-') {
            skip = PIP_VALUE_OPTIONS.contains(&w.text.as_str())
                || matches!(w.text.as_str(), "-C" | "--config-settings" | "-p");
            continue;
        }
        out.push(w);
    }
    out
}

/// Whether a pip argument is a local path, URL or archive rather than a package name.
pub fn is_path_like(arg: &str) -> bool {
    arg.starts_with(['.', '/', '$', '~'])
        || arg.contains("://")
        || arg.contains('/')
        || arg.ends_with(".whl")
        || arg.ends_with(".tar.gz")
        || arg.ends_with(".zip")
        || arg.starts_with("git+")
}

/// Whether the command installs (or builds) third-party dependencies, not just the project
/// itself with `--no-deps`: `pip install -r`, `pip install pkg`, `pip install .`,
/// `pip wheel -r`, `python setup.py install`, `uv sync`, `poetry install`, `pipenv install`,
/// `pdm install`, `pip-sync`, `conda env create`.
pub fn installs_dependencies(cmd: &Command) -> bool {
    if let Some((_, args)) = pip_install(cmd).or_else(|| pip_wheel(cmd)) {
        let no_deps = args.iter().any(|w| w.text == "--no-deps");
        return requirement_file(args) || !no_deps;
    }
    let Some((name, rest)) = tool(cmd) else {
        return false;
    };
    let sub = rest
        .iter()
        .find(|w| !w.text.starts_with('-'))
        .map(|w| w.text.as_str());
    match name.as_str() {
        "uv" => matches!(sub, Some("sync")),
        "uv pip" => matches!(sub, Some("sync")),
        "poetry" => matches!(sub, Some("install")) && !rest.iter().any(|w| w.text == "--only-root"),
        "pipenv" => matches!(sub, Some("install" | "sync")),
        "pdm" => matches!(sub, Some("install" | "sync")),
        "pip-sync" => true,
        "conda" | "mamba" | "micromamba" => conda_install(rest),
        n if n.ends_with("setup.py") => matches!(sub, Some("install" | "develop")),
        n if n.starts_with("python") => rest
            .iter()
            .position(|w| !w.text.starts_with('-'))
            .is_some_and(|i| {
                basename(&rest[i].text) == "setup.py"
                    && rest
                        .get(i + 1)
                        .is_some_and(|w| matches!(w.text.as_str(), "install" | "develop"))
            }),
        _ => false,
    }
}

/// Whether the command installs dependencies from a manifest or lock file (requirements
/// files, the project's own metadata, a lock), as opposed to naming packages: `pip install
/// poetry==1.8.5` installs a tool, `pip install -r requirements.txt` the dependencies.
pub fn installs_from_manifest(cmd: &Command) -> bool {
    if !installs_dependencies(cmd) {
        return false;
    }
    match pip_install(cmd).or_else(|| pip_wheel(cmd)) {
        Some((_, args)) => {
            requirement_file(args) || pip_packages(args).iter().any(|w| is_path_like(&w.text))
        }
        None => true,
    }
}

/// If the command is `pip wheel` (or `python -m pip wheel`), the arguments after `wheel`.
fn pip_wheel(cmd: &Command) -> Option<(bool, &[Word])> {
    let (name, rest) = tool(cmd)?;
    if name != "pip" {
        return None;
    }
    let sub = rest.iter().position(|w| !w.text.starts_with('-'))?;
    (rest[sub].text == "wheel").then(|| (false, &rest[sub + 1..]))
}

/// Whether pip arguments name a requirements file (`-r file`, `--requirement=file`).
fn requirement_file(args: &[Word]) -> bool {
    args.iter().any(|w| {
        matches!(w.text.as_str(), "-r" | "--requirement")
            || w.text.starts_with("--requirement=")
            || (w.text.starts_with("-r") && w.text.len() > 2 && !w.text.starts_with("--"))
    })
}

/// `conda env create`, `conda env update`, `conda install --file ...`, `conda create --file`.
fn conda_install(rest: &[Word]) -> bool {
    let words: Vec<&str> = rest
        .iter()
        .map(|w| w.text.as_str())
        .filter(|w| !w.starts_with('-'))
        .collect();
    match words.as_slice() {
        ["env", "create" | "update", ..] => true,
        ["install" | "create", ..] => rest.iter().any(|w| w.text == "--file" || w.text == "-f"),
        _ => false,
    }
}

/// Package arguments of an OS package manager install (`apt-get install`, `apk add`,
/// `yum/dnf install`), with version suffixes removed. The name of an apk virtual package
/// (`apk add --virtual .build-deps gcc`) is not a package: see [`apk_virtual`].
pub fn os_packages(cmd: &Command) -> Vec<(&Word, &str)> {
    let Some(name) = cmd.program_name() else {
        return Vec::new();
    };
    let verb = match name {
        "apt-get" | "apt" | "aptitude" | "yum" | "dnf" | "microdnf" | "zypper" => "install",
        "apk" => "add",
        _ => return Vec::new(),
    };
    let args = cmd.args();
    let Some(pos) = args.iter().position(|w| w.text == verb) else {
        return Vec::new();
    };
    let group = apk_virtual(cmd);
    args[pos + 1..]
        .iter()
        .filter(|w| !w.text.starts_with('-') && Some(w.text.as_str()) != group)
        .map(|w| {
            let pkg = w.text.split(['=', ':']).next().unwrap_or(&w.text);
            let pkg = if name == "apk" {
                pkg.split('~').next().unwrap_or(pkg)
            } else {
                pkg
            };
            (w, pkg)
        })
        .collect()
}

/// The virtual package an `apk add --virtual NAME` (or `-t NAME`) groups its packages under:
/// `apk del NAME` removes them all.
pub fn apk_virtual(cmd: &Command) -> Option<&str> {
    if cmd.program_name() != Some("apk") {
        return None;
    }
    let args = cmd.args();
    args.iter()
        .enumerate()
        .find_map(|(i, w)| match w.text.as_str() {
            "--virtual" | "-t" => args.get(i + 1).map(|v| v.text.as_str()),
            t => t.strip_prefix("--virtual="),
        })
}

/// The packages a command removes: `apt-get purge/remove`, `apk del`, `dnf/yum remove`.
pub fn removed_by(cmd: &Command) -> Vec<&str> {
    let verbs: &[&str] = match cmd.program_name() {
        Some("apt-get" | "apt" | "aptitude") => &["purge", "remove"],
        Some("apk") => &["del"],
        Some("yum" | "dnf" | "microdnf" | "zypper") => &["remove", "erase", "rm"],
        _ => return Vec::new(),
    };
    let args = cmd.args();
    let Some(pos) = args.iter().position(|w| verbs.contains(&w.text.as_str())) else {
        return Vec::new();
    };
    args[pos + 1..]
        .iter()
        .filter(|w| !w.text.starts_with('-'))
        .map(|w| w.text.split(['=', ':']).next().unwrap_or(&w.text))
        .collect()
}

/// Process managers that run several processes in one container.
const MANAGERS: [&str; 12] = [
    "supervisord",
    "supervisorctl",
    "runsvdir",
    "runsv",
    "s6-svscan",
    "s6-supervise",
    "cron",
    "crond",
    "circusd",
    "honcho",
    "pm2",
    "systemctl",
];
/// If `cmd` starts a process manager (supervisord, runit, s6, cron, `service X start`), its
/// name.
pub fn process_manager_name(cmd: &Command) -> Option<String> {
    let name = cmd.program_name()?;
    if MANAGERS.contains(&name) {
        return Some(name.to_string());
    }
    let args = cmd.args();
    (name == "service" && args.get(1).is_some_and(|a| a.text == "start")).then(|| {
        format!(
            "service {} start",
            args.first().map_or("", |a| a.text.as_str())
        )
    })
}

/// Production and development app servers a Python web service runs under.
pub const APP_SERVERS: [&str; 9] = [
    "gunicorn",
    "uvicorn",
    "hypercorn",
    "daphne",
    "uwsgi",
    "granian",
    "waitress-serve",
    "bjoern",
    "fastapi",
];

/// If `cmd` starts a web server (app server or framework dev server), its name.
pub fn web_server(cmd: &Command) -> Option<&'static str> {
    if let Some(dev) = dev_server(cmd) {
        return Some(dev);
    }
    let (name, _) = tool(cmd)?;
    APP_SERVERS.iter().copied().find(|s| *s == name)
}

/// If `cmd` starts a framework development server, a short description of it.
pub fn dev_server(cmd: &Command) -> Option<&'static str> {
    let (name, rest) = tool(cmd)?;
    let first = rest
        .iter()
        .find(|w| !w.text.starts_with('-'))
        .map(|w| w.text.as_str());
    let has_reload = rest
        .iter()
        .any(|w| w.text == "--reload" || w.text.starts_with("--reload="));
    match name.as_str() {
        "flask" if rest.iter().any(|w| w.text == "run") => Some("flask run"),
        "django-admin" if first == Some("runserver") => Some("django-admin runserver"),
        "fastapi" if first == Some("dev") => Some("fastapi dev"),
        "uvicorn" | "gunicorn" | "hypercorn" | "granian" if has_reload => Some("--reload"),
        n if n.ends_with("manage.py") => manage_py_dev_server(rest),
        n if n.starts_with("python") => {
            let script = rest.iter().position(|w| !w.text.starts_with('-'))?;
            if basename(&rest[script].text) != "manage.py" {
                return None;
            }
            manage_py_dev_server(&rest[script + 1..])
        }
        _ => None,
    }
}

/// The dev server a `manage.py` subcommand starts: Django's `runserver`, or `run`, which
/// Django does not have and a Flask `FlaskGroup` script turns into `flask run`.
fn manage_py_dev_server(args: &[Word]) -> Option<&'static str> {
    if args
        .iter()
        .any(|w| w.text == "runserver" || w.text == "runserver_plus")
    {
        return Some("manage.py runserver");
    }
    let sub = args.iter().find(|w| !w.text.starts_with('-'))?;
    (sub.text == "run").then_some("manage.py run, the Flask CLI's `flask run`")
}

/// Whether an environment setting turns on a framework's debug/development mode.
pub fn is_debug_setting(key: &str, value: &str) -> bool {
    let v = value.trim_matches(['"', '\'']).to_ascii_lowercase();
    let on = matches!(v.as_str(), "1" | "true" | "yes" | "on");
    match key {
        "FLASK_ENV" => v == "development",
        "FLASK_DEBUG" | "DJANGO_DEBUG" => on,
        _ => false,
    }
}

/// Whether a variable name looks like it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let harmless_suffix = [
        "_FILE",
        "_PATH",
        "_DIR",
        "_URL_FILE",
        "_LENGTH",
        "_NAME",
        "_ID",
    ];
    if harmless_suffix.iter().any(|s| upper.ends_with(s)) {
        return false;
    }
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
        "CREDENTIALS",
        "AUTH_KEY",
    ]
    .iter()
    .any(|s| upper.contains(s))
}

/// Whether a value is a real literal (not empty, not a reference to another variable).
pub fn is_literal_value(value: &str) -> bool {
    let v = value.trim().trim_matches(['"', '\'']);
    !v.is_empty() && !v.starts_with('$')
}

/// Whether a value is a URL with a literal password (`postgresql://app:s3cret@db/app`).
/// A `${VAR:-default}` value is a variable with a local default, not a literal.
pub fn has_url_password(value: &str) -> bool {
    if value.trim_start_matches(['"', '\'']).starts_with("${") {
        return false;
    }
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return false;
    };
    !userinfo.contains('$')
        && userinfo
            .split_once(':')
            .is_some_and(|(_, password)| is_literal_value(password))
}

/// Whether the command is part of a pipeline whose next command is a shell or Python.
pub fn pipes_into_interpreter(script: &Script, index: usize) -> bool {
    script.commands.get(index + 1).is_some_and(|next| {
        next.connector == Connector::Pipe
            && next.program_name().is_some_and(|p| {
                matches!(p, "sh" | "bash" | "ash" | "dash" | "zsh") || p.starts_with("python")
            })
    })
}

/// Database server images and packages.
pub fn is_database(name: &str) -> bool {
    let repo = name.rsplit('/').next().unwrap_or(name);
    let repo = repo.split([':', '@']).next().unwrap_or(repo);
    matches!(
        repo,
        "postgres"
            | "postgresql"
            | "postgis"
            | "mysql"
            | "mariadb"
            | "redis"
            | "valkey"
            | "mongo"
            | "mongodb"
            | "memcached"
            | "elasticsearch"
            | "opensearch"
            | "rabbitmq"
            | "cassandra"
            | "couchdb"
            | "influxdb"
            | "timescaledb"
            | "keydb"
            | "clickhouse"
    ) || repo.starts_with("postgres")
}

/// Well-known database ports.
pub fn is_database_port(port: &str) -> bool {
    matches!(
        port,
        "5432" | "3306" | "6379" | "27017" | "11211" | "9200" | "5672" | "9042" | "5984"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::parse;

    fn first(s: &str) -> Command {
        let mut script = parse(s, &|i| i);
        script.expand_shell_c();
        script.commands.remove(0)
    }

    #[test]
    fn recognises_pip_forms() {
        assert!(pip_install(&first("python3 -m pip install flask")).is_some());
        assert!(pip_install(&first("pip3.12 install --no-cache-dir flask")).is_some());
        assert_eq!(
            pip_install(&first("uv pip install x")).map(|p| p.0),
            Some(true)
        );
        assert!(pip_install(&first("pip uninstall -y pip")).is_none());
        let cmd = first("pip install -r req.txt --index-url https://x flask==1 .");
        let (_, args) = pip_install(&cmd).expect("pip install");
        let pkgs: Vec<_> = pip_packages(args).iter().map(|w| w.text.clone()).collect();
        assert_eq!(pkgs, ["flask==1", "."]);
    }

    #[test]
    fn dependency_installs() {
        assert!(installs_dependencies(&first(
            "pip install -r requirements.txt"
        )));
        assert!(installs_dependencies(&first("pip install .")));
        assert!(!installs_dependencies(&first(
            "uv pip install --prefix /i --no-deps ."
        )));
        assert!(installs_dependencies(&first("poetry install --no-root")));
        assert!(!installs_dependencies(&first("poetry install --only-root")));
        assert!(installs_dependencies(&first("uv sync --frozen")));
        assert!(!installs_dependencies(&first("pip download x")));
        assert!(installs_dependencies(&first(
            "pip wheel --wheel-dir /w -r requirements.txt"
        )));
        assert!(!installs_dependencies(&first(
            "pip wheel --no-deps -w /w ."
        )));
        assert!(installs_dependencies(&first("python setup.py install")));
        assert!(installs_dependencies(&first("pdm install --prod")));
        assert!(installs_dependencies(&first(
            "conda env create -f environment.yml"
        )));
        assert!(!installs_dependencies(&first("conda clean -afy")));
        assert!(installs_from_manifest(&first(
            "pip install -rrequirements.txt"
        )));
        assert!(installs_from_manifest(&first("pip install --user .")));
        assert!(installs_from_manifest(&first("poetry install --no-root")));
        assert!(!installs_from_manifest(&first(
            "pip install --no-cache-dir poetry==1.8.5"
        )));
    }

    #[test]
    fn dev_servers() {
        assert_eq!(
            dev_server(&first("flask run --host=0.0.0.0")),
            Some("flask run")
        );
        assert_eq!(
            dev_server(&first("python -m flask --app x run")),
            Some("flask run")
        );
        assert_eq!(
            dev_server(&first("python manage.py runserver 0:8000")),
            Some("manage.py runserver")
        );
        assert_eq!(
            dev_server(&first("./manage.py runserver")),
            Some("manage.py runserver")
        );
        assert_eq!(
            dev_server(&first("uvicorn app:app --reload")),
            Some("--reload")
        );
        assert_eq!(dev_server(&first("gunicorn -b :8000 app:app")), None);
        assert_eq!(
            web_server(&first("gunicorn -b :8000 app:app")),
            Some("gunicorn")
        );
        assert_eq!(dev_server(&first("python manage.py migrate")), None);
        assert_eq!(
            dev_server(&first("python manage.py run -h 0.0.0.0")),
            Some("manage.py run, the Flask CLI's `flask run`")
        );
        assert!(dev_server(&first("./manage.py run")).is_some());
        assert_eq!(dev_server(&first("python manage.py routes")), None);
    }

    #[test]
    fn secrets_and_databases() {
        assert!(is_secret_name("DB_PASSWORD"));
        assert!(is_secret_name("secret_key"));
        assert!(!is_secret_name("POSTGRES_PASSWORD_FILE"));
        assert!(!is_secret_name("PORT"));
        assert!(has_url_password("postgresql://app:s3cret@db:5432/app"));
        assert!(!has_url_password("postgresql://app:${DB_PASSWORD}@db/app"));
        assert!(!has_url_password("postgresql://app@db/app"));
        assert!(!has_url_password(
            "${DATABASE_URL:-postgresql://app:app@db/app}"
        ));
        assert!(!has_url_password("https://example.com/a@b"));
        assert!(!has_url_password(
            "postgresql://${U:-app}:${P:?set P in .env}@db:5432/${D:-app}"
        ));
        assert!(is_database("docker.io/library/postgres:16"));
        assert!(!is_database("python:3.12-slim"));
        assert!(os_packages(&first("apt-get install -y gcc=4:12 libpq-dev"))[0].1 == "gcc");
        let virt = first("apk add --no-cache --virtual .build-deps gcc musl-dev");
        let pkgs: Vec<_> = os_packages(&virt).iter().map(|p| p.1).collect();
        assert_eq!(pkgs, ["gcc", "musl-dev"]);
        assert_eq!(apk_virtual(&virt), Some(".build-deps"));
        assert_eq!(
            removed_by(&first("apt-get purge -y --auto-remove gcc libpq-dev")),
            ["gcc", "libpq-dev"]
        );
        assert_eq!(
            removed_by(&first("apk del --no-network .build-deps")),
            [".build-deps"]
        );
        assert_eq!(removed_by(&first("dnf remove -y gcc")), ["gcc"]);
        assert!(removed_by(&first("apt-get install -y gcc")).is_empty());
    }
}
