//! Where the code writes under the project directory at run time: Flask's instance folder,
//! directories it creates (`os.makedirs("logs")`), log files beside the code, a SQLite database
//! named relative to the project. In an image the project is read-only and owned by root, so
//! each needs a volume, or the setting that moves it (L09).
//!
//! Like the rest of detection this is a line-oriented scan of the idioms frameworks document,
//! not a Python parser.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::{Fact, Source};

/// Something the code writes under the project directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Write {
    /// A directory (relative to the project root) the code writes files into.
    Dir {
        /// The directory, relative to the project root (`instance`, `logs`).
        path: String,
        /// Why it is written: what the scan recognised.
        why: WriteReason,
    },
    /// A SQLite database file at a fixed path under the project that no setting moves (Django's
    /// `"NAME": BASE_DIR / "db.sqlite3"`): linked into the data volume.
    SqliteFile {
        /// The database file, relative to the project root (`db.sqlite3`, `src/db.sqlite3`).
        path: String,
    },
    /// A SQLite database at a fixed URL relative to the working directory, with no setting
    /// to move it (`app.config["SQLALCHEMY_DATABASE_URI"] = db_url or "sqlite:///data.db"`):
    /// linked into the data volume from the server's working directory.
    SqliteInWorkdir {
        /// The database file (`data.db`).
        file: String,
    },
    /// A SQLite database under the project, at the default of a setting that can move it.
    Sqlite {
        /// The setting read for the database URL (`DATABASE_URL`).
        setting: String,
        /// The database's file name (`app.db`).
        file: String,
    },
}

/// What made the scan decide that a directory is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteReason {
    /// Flask's instance folder (`instance_relative_config=True`, `app.instance_path`).
    FlaskInstance,
    /// The code creates it (`os.makedirs`, `os.mkdir`, `Path(…).mkdir`).
    Created,
    /// A logging file handler writes there.
    LogFiles,
    /// Django's `MEDIA_ROOT` under the project: user uploads.
    DjangoMedia,
    /// A setting for uploads, logs, a cache or data, named from the code's own path
    /// (`UPLOAD_FOLDER = os.path.join(os.path.dirname(__file__), "uploads")`).
    SettingDir,
}

impl std::fmt::Display for WriteReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteReason::FlaskInstance => "Flask's instance folder",
            WriteReason::Created => "created by the code",
            WriteReason::LogFiles => "log files",
            WriteReason::DjangoMedia => "Django's MEDIA_ROOT, for uploads",
            WriteReason::SettingDir => "a directory the settings name beside the code",
        })
    }
}

static INSTANCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"instance_relative_config\s*=\s*True|\.instance_path\b").expect("static regex")
});
static MKDIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"os\.(?:mkdir|makedirs)\(\s*f?['"]([A-Za-z0-9_][A-Za-z0-9_./-]*)['"]\s*[,)]|Path\(\s*f?['"]([A-Za-z0-9_][A-Za-z0-9_./-]*)['"]\s*\)\.mkdir\("#,
    )
    .expect("static regex")
});
static LOG_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:FileHandler|logger\.add)\(\s*['"]([A-Za-z0-9_][A-Za-z0-9_.-]*)/[^'"/]+['"]"#)
        .expect("static regex")
});
static MEDIA_ROOT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^MEDIA_ROOT\s*=\s*(?:([A-Z_]+)\s*/\s*['"]([^'"]+)['"]|os\.path\.join\(\s*([A-Z_]+)\s*,\s*['"]([^'"]+)['"]\s*\))\s*$"#,
    )
    .expect("static regex")
});
/// A directory named from the settings file's own path: `Path(__file__).resolve().parent.parent`,
/// `os.path.dirname(os.path.dirname(os.path.abspath(__file__)))` or
/// `basedir = os.path.abspath(os.path.dirname(__file__))`.
static DIR_OF_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:Path\(\s*__file__\s*\)(?:\.resolve\(\)|\.absolute\(\))?((?:\.parent)+)|(?:os\.path\.(?:abspath|realpath)\(\s*)?((?:os\.path\.dirname\(\s*)+)(?:os\.path\.(?:abspath|realpath)\(\s*)?__file__[\s)]*)\s*$"#,
    )
    .expect("static regex")
});
/// A setting for uploads, logs, a cache or data whose value (or fallback) is a directory named
/// from the file's own path: `LOG_FOLDER = … or os.path.join(os.path.dirname(
/// os.path.abspath(__file__)), "logs")`, another `os.path.dirname`, `os.pardir` or `".."`
/// going up.
static SETTING_DIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^\s*[A-Z0-9_]*(?:UPLOAD|LOG|CACHE|DATA|MEDIA|SESSION)[A-Z0-9_]*_(?:DIR|FOLDER|PATH|ROOT)\b[^=]*=.*\bos\.path\.join\(\s*((?:os\.path\.dirname\(\s*)+)(?:os\.path\.(?:abspath|realpath)\(\s*)?__file__[\s)]*,\s*((?:(?:os\.pardir|['"]\.\.['"])\s*,\s*)*)((?:['"][\w.-]+['"]\s*,?\s*)+)\)"#,
    )
    .expect("static regex")
});
/// An SQLite URL whose file sits beside the code: `f"sqlite:///{os.path.dirname(
/// os.path.abspath(__file__))}/ctfd.db"`.
static SQLITE_BESIDE_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"f['"]sqlite:///\{\s*os\.path\.dirname\(\s*(?:os\.path\.(?:abspath|realpath)\(\s*)?__file__\s*\)\s*\)?\s*\}/([\w.-]+)['"]"#,
    )
    .expect("static regex")
});
/// An SQLite URL joined to a directory variable: `'sqlite:///' + os.path.join(basedir,
/// 'app.db')`, where `basedir` names the file's own directory (or one up from it).
static SQLITE_JOINED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"['"]sqlite:///['"]\s*\+\s*os\.path\.join\(\s*([A-Za-z_]\w*)\s*,\s*['"]([\w.-]+)['"]\s*\)"#,
    )
    .expect("static regex")
});
/// A log file handler whose file is joined to a directory variable:
/// `RotatingFileHandler(os.path.join(basedir, 'logs/bluelog.log'), …)` or `FileHandler(
/// os.path.join(BASE_DIR, "logs", "app.log"))`: the variable, then the quoted parts.
static LOG_FILE_JOINED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?:FileHandler|logger\.add)\(\s*os\.path\.join\(\s*([A-Za-z_]\w*)\s*,\s*((?:['"][\w./-]+['"]\s*,?\s*)+)\)"#,
    )
    .expect("static regex")
});
/// A setting for uploads, logs, a cache or data joined to a directory variable:
/// `BLUELOG_UPLOAD_PATH = os.path.join(basedir, 'uploads')`.
static SETTING_DIR_JOINED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^\s*[A-Z0-9_]*(?:UPLOAD|LOG|CACHE|DATA|MEDIA|SESSION)[A-Z0-9_]*_(?:DIR|FOLDER|PATH|ROOT)\b[^=]*=\s*os\.path\.join\(\s*([A-Za-z_]\w*)\s*,\s*((?:['"][\w.-]+['"]\s*,?\s*)+)\)\s*$"#,
    )
    .expect("static regex")
});
/// A variable holding SQLite's URL prefix (`prefix = 'sqlite:////'`, chosen per platform):
/// `prefix + os.path.join(basedir, 'data.db')` reads like the literal.
static SQLITE_PREFIX_VAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)^\s*([A-Za-z_]\w*)\s*=\s*['"]sqlite:////?['"]\s*$"#).expect("static regex")
});
/// A directory one up from another: `BASE_DIR = os.path.dirname(PROJECT_DIR)`, `X.parent`.
static DIR_OF_DIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^([A-Z_]+)\s*=\s*(?:os\.path\.dirname\(\s*([A-Z_]+)\s*\)|([A-Z_]+)\.parent)\s*$"#)
        .expect("static regex")
});
/// Django's `DATABASES` entry naming a file under `BASE_DIR` (in a statement that uses the
/// SQLite backend): `"NAME": BASE_DIR / "db.sqlite3"`, `os.path.join(BASE_DIR, "db.sqlite3")`.
static DJANGO_SQLITE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"['"]NAME['"]\s*:\s*(?:os\.(?:environ\.get|getenv)\(\s*['"][A-Z0-9_]+['"]\s*,\s*)?(?:str\(\s*)?(?:([A-Z_]+)\s*/\s*['"]([^'"]+)['"]|os\.path\.join\(\s*([A-Z_]+)\s*,\s*(?:os\.(?:environ\.get|getenv)\(\s*['"][A-Z0-9_]+['"]\s*,\s*)?['"]([^'"]+)['"]\s*\)?\s*\))"#,
    )
    .expect("static regex")
});
static SQLITE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"['"]sqlite:///([^/'"][^'"]*)?['"]"#).expect("static regex"));
static DB_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"['"]([A-Za-z0-9_.-]+\.(?:db|sqlite3?))['"]"#).expect("static regex")
});
static SETTING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:environ\.get|getenv|environ\[|env\.str|env)\(?\s*['"]([A-Z][A-Z0-9_]*)['"]"#)
        .expect("static regex")
});

/// `dir` (relative to the root) `levels` directories up; `None` above the project.
fn up(dir: &Path, levels: usize) -> Option<PathBuf> {
    let mut dir = dir.to_path_buf();
    for _ in 0..levels {
        if dir.as_os_str().is_empty() {
            return None;
        }
        dir = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    Some(dir)
}

/// The directories a settings file names from its own path (`PROJECT_DIR`, `BASE_DIR`),
/// relative to the root, in the order they are defined. Django's `BASE_DIR` is the
/// directory of `manage.py` when the file doesn't say.
fn dir_vars(
    root: &Path,
    rel: &Path,
    statements: &[(usize, String)],
    django: bool,
) -> Vec<(String, PathBuf)> {
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    let here = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    for (_, statement) in statements {
        let code = statement.trim();
        let defined = if let Some(c) = DIR_OF_FILE.captures(code) {
            let levels = match (c.get(2), c.get(3)) {
                (Some(parents), _) => parents.as_str().matches(".parent").count(),
                (_, Some(dirnames)) => dirnames.as_str().matches("dirname").count(),
                _ => continue,
            };
            up(&here, levels.saturating_sub(1)).map(|dir| (c[1].to_owned(), dir))
        } else if let Some(c) = DIR_OF_DIR.captures(code) {
            let from = c.get(2).or_else(|| c.get(3)).map_or("", |m| m.as_str());
            dirs.iter()
                .find(|(name, _)| name == from)
                .and_then(|(_, d)| up(d, 1))
                .map(|dir| (c[1].to_owned(), dir))
        } else {
            None
        };
        if let Some((name, dir)) = defined {
            dirs.retain(|(known, _)| *known != name);
            dirs.push((name, dir));
        }
    }
    if django && !dirs.iter().any(|(name, _)| name == "BASE_DIR") {
        dirs.push(("BASE_DIR".to_owned(), django_base(root, rel)));
    }
    dirs
}

/// The directory variable and the name joined to it, from a path regex's two spellings
/// (`VAR / "name"` in groups 1 and 2, `os.path.join(VAR, "name")` in groups 3 and 4).
fn dir_and_name<'a>(captures: &regex::Captures<'a>) -> (&'a str, &'a str) {
    let either = |a: usize, b: usize| {
        captures
            .get(a)
            .or_else(|| captures.get(b))
            .map_or("", |m| m.as_str())
    };
    (either(1, 3), either(2, 4))
}

/// The path, relative to the root, that `os.path.join(<rel's directory>, <ups>, <names>)`
/// names: `ups` is the `os.pardir, ` / `"..", ` run, `names` the quoted parts. `None` above the
/// project.
fn beside_file(rel: &Path, ups: &str, names: &str) -> Option<String> {
    let mut dir = up(
        rel.parent().unwrap_or(Path::new("")),
        ups.matches("pardir").count() + ups.matches("..").count(),
    )?;
    for name in quoted_parts(names) {
        if name == ".." || name == "." {
            return None;
        }
        dir.push(name);
    }
    Some(dir.display().to_string()).filter(|p| !p.is_empty())
}

/// Scan one file (`rel` to the root, its `text`) for writes under the project.
pub(crate) fn scan_file(root: &Path, rel: &Path, text: &str, out: &mut Vec<Fact<Write>>) {
    let flask = text.contains("flask") || text.contains("Flask");
    let statements = logical_lines(text);
    let django = text.contains("MEDIA_ROOT") || text.contains("django.db.backends.sqlite3");
    let dirs = if django || text.contains("sqlite:///") || text.contains("__file__") {
        dir_vars(root, rel, &statements, django)
    } else {
        Vec::new()
    };
    // `prefix + os.path.join(…)` with `prefix = 'sqlite:///'` reads as the literal: one
    // pattern per prefix variable of the file, made once.
    let sqlite_prefixes: Vec<Regex> = SQLITE_PREFIX_VAR
        .captures_iter(text)
        .filter_map(|c| {
            Regex::new(&format!(
                r"\b{}\s*\+\s*os\.path\.join\(",
                regex::escape(&c[1])
            ))
            .ok()
        })
        .collect();
    let dir_named = |name: &str| dirs.iter().find(|(n, _)| n == name).map(|(_, d)| d.clone());
    let in_tests = rel
        .components()
        .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "test");
    for (index, statement) in statements {
        let statement = sqlite_prefixes.iter().fold(statement, |code, prefix| {
            prefix
                .replace_all(&code, "'sqlite:///' + os.path.join(")
                .into_owned()
        });
        let code = statement.as_str();
        let source = || Source::line(rel, index + 1);
        if flask && INSTANCE.is_match(code) {
            let import_root = import_root(root, rel);
            let path = import_root.join("instance").display().to_string();
            push(
                out,
                Write::Dir {
                    path,
                    why: WriteReason::FlaskInstance,
                },
                source(),
            );
        }
        if let Some(captures) = MEDIA_ROOT.captures(code.trim_end()) {
            let (var, dir) = dir_and_name(&captures);
            let dir = dir.trim_matches('/');
            if !dir.is_empty()
                && !dir.contains("..")
                && let Some(base) = dir_named(var)
            {
                let path = base.join(dir).display().to_string();
                push(
                    out,
                    Write::Dir {
                        path,
                        why: WriteReason::DjangoMedia,
                    },
                    source(),
                );
            }
        }
        if code.contains("django.db.backends.sqlite3")
            && !code.contains("ENGINE\": os.")
            && !code.contains("ENGINE': os.")
            && let Some(captures) = DJANGO_SQLITE.captures(code)
        {
            let (var, file) = dir_and_name(&captures);
            let file = file.trim_matches('/');
            if !file.is_empty()
                && !file.contains("..")
                && !file.contains('/')
                && let Some(base) = dir_named(var)
            {
                let path = base.join(file).display().to_string();
                push(out, Write::SqliteFile { path }, source());
            }
        }
        // Each `os.path.dirname` beyond the first goes one directory up, like `os.pardir`.
        if let Some(captures) = SETTING_DIR.captures(code)
            && let ups = format!(
                "{}{}",
                "..,".repeat(captures[1].matches("dirname").count().saturating_sub(1)),
                &captures[2]
            )
            && let Some(path) = beside_file(rel, &ups, &captures[3])
        {
            push(
                out,
                Write::Dir {
                    path,
                    why: WriteReason::SettingDir,
                },
                source(),
            );
        }
        if let Some(captures) = SQLITE_BESIDE_FILE.captures(code)
            && let Some(path) = beside_file(rel, "", &captures[1])
        {
            push(out, Write::SqliteFile { path }, source());
        }
        // A setting in the statement makes it the setting's default (below).
        if !in_tests
            && !SETTING.is_match(code)
            && let Some(captures) = SQLITE_JOINED.captures(code)
            && let Some(base) = dir_named(&captures[1])
        {
            let path = base.join(&captures[2]).display().to_string();
            push(out, Write::SqliteFile { path }, source());
        }
        for captures in MKDIR.captures_iter(code) {
            let Some(path) = captures.get(1).or_else(|| captures.get(2)) else {
                continue;
            };
            let path = path.as_str().trim_end_matches('/');
            if !path.is_empty() && !path.starts_with("..") && !path.contains('{') {
                push(
                    out,
                    Write::Dir {
                        path: path.to_owned(),
                        why: WriteReason::Created,
                    },
                    source(),
                );
            }
        }
        for captures in LOG_FILE_JOINED.captures_iter(code) {
            // The quoted parts name the file last: the directory is the variable's and the rest.
            let parts = quoted_parts(&captures[2]);
            let Some((_, dirs_before)) = parts.split_last() else {
                continue;
            };
            let Some(mut path) = dir_named(&captures[1]) else {
                continue;
            };
            let file = parts.last().map_or("", String::as_str);
            for part in dirs_before
                .iter()
                .map(String::as_str)
                .chain(file.rsplit_once('/').map(|(dir, _)| dir))
            {
                path.push(part);
            }
            push_dir_under_project(out, &path, WriteReason::LogFiles, source());
        }
        if let Some(captures) = SETTING_DIR_JOINED.captures(code)
            && let Some(mut path) = dir_named(&captures[1])
        {
            for part in quoted_parts(&captures[2]) {
                path.push(part);
            }
            push_dir_under_project(out, &path, WriteReason::SettingDir, source());
        }
        for captures in LOG_FILE.captures_iter(code) {
            push(
                out,
                Write::Dir {
                    path: captures[1].to_owned(),
                    why: WriteReason::LogFiles,
                },
                source(),
            );
        }
        if !in_tests
            && !code.contains(":memory:")
            && !SETTING.is_match(code)
            && let Some(relative) = SQLITE.captures(code).and_then(|c| c.get(1))
        {
            let file = relative.as_str();
            if !file.contains('/') && !file.contains("..") && !file.contains('{') {
                push(
                    out,
                    Write::SqliteInWorkdir {
                        file: file.to_owned(),
                    },
                    source(),
                );
            }
        }
        if SQLITE.is_match(code)
            && !code.contains(":memory:")
            && let Some(setting) = SETTING.captures(code)
        {
            let file = DB_FILE
                .captures(code)
                .map(|c| c[1].to_owned())
                .or_else(|| {
                    SQLITE
                        .captures(code)
                        .and_then(|c| c.get(1))
                        .and_then(|m| m.as_str().rsplit('/').next().map(str::to_owned))
                })
                .filter(|f| !f.is_empty())
                .and_then(|f| {
                    if f.contains('{') {
                        named_in_braces(&f, text)
                    } else {
                        Some(f)
                    }
                })
                .unwrap_or_else(|| "app.db".to_owned());
            push(
                out,
                Write::Sqlite {
                    setting: setting[1].to_owned(),
                    file,
                },
                source(),
            );
        }
    }
}

/// The quoted strings of an argument run (`'logs', "app.log"`), in order.
fn quoted_parts(run: &str) -> Vec<String> {
    run.split(',')
        .map(|part| part.trim().trim_matches(['"', '\'']).to_owned())
        .filter(|part| !part.is_empty())
        .collect()
}

/// The file name an f-string's expression names through a variable of the same file:
/// `{Path(basedir).joinpath(DATABASE)}` with `DATABASE = "flaskr.db"` gives `flaskr.db`.
fn named_in_braces(expression: &str, text: &str) -> Option<String> {
    static IDENT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[A-Za-z_]\w*").expect("static regex"));
    IDENT.find_iter(expression).find_map(|ident| {
        let assignment = Regex::new(&format!(
            r#"(?m)^{}\s*=\s*["']([\w-]+\.[\w.-]+)["']\s*$"#,
            regex::escape(ident.as_str())
        ))
        .ok()?;
        assignment.captures(text).map(|c| c[1].to_owned())
    })
}

/// `writes` plus a SQLite database for every setting whose default is a SQLite URL relative to
/// the project (`DATABASE_URL: str = "sqlite:///./todo.db"` in pydantic settings, `env.db(...,
/// default="sqlite:///db.sqlite3")`): the line scan sees only those read through `os.environ`.
pub(crate) fn with_sqlite_settings(
    mut writes: Vec<Fact<Write>>,
    env: &[Fact<crate::code::EnvVar>],
) -> Vec<Fact<Write>> {
    for setting in env {
        let Some(default) = &setting.value.default else {
            continue;
        };
        let Some(path) = default.strip_prefix("sqlite:///") else {
            continue;
        };
        if path.is_empty() || path.starts_with('/') || path.contains(":memory:") {
            continue;
        }
        let file = path.rsplit('/').next().unwrap_or(path);
        if file.is_empty() || file.contains("..") {
            continue;
        }
        let known = writes.iter().any(|w| {
            matches!(&w.value, Write::Sqlite { setting: name, .. } if *name == setting.value.name)
        });
        if !known {
            writes.push(Fact::new(
                Write::Sqlite {
                    setting: setting.value.name.clone(),
                    file: file.to_owned(),
                },
                setting.source.clone(),
            ));
        }
    }
    writes
}

/// The file's statements with their first line's index: physical lines without comments,
/// joined while brackets are open or a line ends in `\` (a setting whose fallback is on the
/// next line is one statement).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut depth: i32 = 0;
    for (index, line) in text.lines().enumerate() {
        let code = crate::code::strip_comment(line).trim_end();
        for c in code.chars() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            }
        }
        let continues = depth > 0 || code.ends_with('\\');
        let piece = code.trim_end_matches('\\');
        match &mut current {
            Some((_, joined)) => {
                joined.push(' ');
                joined.push_str(piece.trim_start());
            }
            None => current = Some((index, piece.to_owned())),
        }
        if !continues {
            depth = 0;
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// Record the directory `path` (relative to the root, from a directory variable and quoted
/// parts) unless it is empty, leaves the project, or is already known for another reason
/// (Django's `MEDIA_ROOT` is also an upload setting).
fn push_dir_under_project(
    out: &mut Vec<Fact<Write>>,
    path: &Path,
    why: WriteReason,
    source: Source,
) {
    let path = path.display().to_string();
    let known = out
        .iter()
        .any(|w| matches!(&w.value, Write::Dir { path: p, .. } if *p == path));
    if !path.is_empty() && !path.contains("..") && !known {
        push(out, Write::Dir { path, why }, source);
    }
}

fn push(out: &mut Vec<Fact<Write>>, write: Write, source: Source) {
    if !out.iter().any(|fact| fact.value == write) {
        out.push(Fact::new(write, source));
    }
}

/// Django's `BASE_DIR` for a settings file (relative to the root): the nearest directory above
/// it that holds `manage.py`, else the root.
fn django_base(root: &Path, rel: &Path) -> PathBuf {
    let mut dir = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    loop {
        if root.join(&dir).join("manage.py").is_file() {
            return dir;
        }
        match dir.parent() {
            Some(parent) => dir = parent.to_path_buf(),
            None => return PathBuf::new(),
        }
    }
}

/// The directory the top-level package of `rel` sits in (relative to the root): the project
/// root, or `src` in a src layout. Flask puts an uninstalled package's instance folder there.
fn import_root(root: &Path, rel: &Path) -> PathBuf {
    let mut dir = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    while !dir.as_os_str().is_empty() && root.join(&dir).join("__init__.py").is_file() {
        dir = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(files: &[(&str, &str)]) -> Vec<Write> {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        for (rel, text) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        for (rel, text) in files {
            scan_file(dir.path(), Path::new(rel), text, &mut out);
        }
        out.into_iter().map(|f| f.value).collect()
    }

    #[test]
    fn a_flask_config_names_its_log_file_uploads_and_database_from_a_directory_variable() {
        // Bluelog's shape (2018–21): the package names the project root `basedir`, a rotating
        // log file and an upload folder under it, and a SQLite URL through a prefix variable
        // chosen per platform, in the development config (the default) and as a production
        // fallback.
        let found = scan(&[
            (
                "bluelog/__init__.py",
                "import os\nfrom logging.handlers import RotatingFileHandler\n\nbasedir = os.path.abspath(os.path.dirname(os.path.dirname(__file__)))\n\ndef register_logging(app):\n    file_handler = RotatingFileHandler(os.path.join(basedir, 'logs/bluelog.log'),\n                                       maxBytes=10 * 1024 * 1024, backupCount=10)\n    other = logging.FileHandler(os.path.join(basedir, 'var', 'audit', 'audit.log'))\n",
            ),
            (
                "bluelog/settings.py",
                "import os\nimport sys\n\nbasedir = os.path.abspath(os.path.dirname(os.path.dirname(__file__)))\n\nWIN = sys.platform.startswith('win')\nif WIN:\n    prefix = 'sqlite:///'\nelse:\n    prefix = 'sqlite:////'\n\nclass BaseConfig(object):\n    BLUELOG_UPLOAD_PATH = os.path.join(basedir, 'uploads')\n\nclass DevelopmentConfig(BaseConfig):\n    SQLALCHEMY_DATABASE_URI = prefix + os.path.join(basedir, 'data-dev.db')\n\nclass ProductionConfig(BaseConfig):\n    SQLALCHEMY_DATABASE_URI = os.getenv('DATABASE_URL', prefix + os.path.join(basedir, 'data.db'))\n",
            ),
        ]);
        assert_eq!(
            found,
            [
                Write::Dir {
                    path: "logs".into(),
                    why: WriteReason::LogFiles
                },
                Write::Dir {
                    path: "var/audit".into(),
                    why: WriteReason::LogFiles
                },
                Write::Dir {
                    path: "uploads".into(),
                    why: WriteReason::SettingDir
                },
                Write::SqliteFile {
                    path: "data-dev.db".into()
                },
                Write::Sqlite {
                    setting: "DATABASE_URL".into(),
                    file: "data.db".into()
                },
            ]
        );
    }

    #[test]
    fn flask_instance_folder_beside_the_top_level_package() {
        let found = scan(&[
            (
                "flaskr/__init__.py",
                "from flask import Flask\ndef create_app():\n    app = Flask(__name__, instance_relative_config=True)\n    os.makedirs(app.instance_path, exist_ok=True)\n",
            ),
            ("src/shop/web/__init__.py", ""),
            ("src/shop/__init__.py", ""),
            (
                "src/shop/web/app.py",
                "import flask\napp = flask.Flask(__name__)\ndb = os.path.join(app.instance_path, 'x.db')\n",
            ),
        ]);
        assert_eq!(
            found,
            [
                Write::Dir {
                    path: "instance".into(),
                    why: WriteReason::FlaskInstance
                },
                Write::Dir {
                    path: "src/instance".into(),
                    why: WriteReason::FlaskInstance
                },
            ]
        );
    }

    #[test]
    fn an_f_string_sqlite_default_names_its_file_through_a_variable() {
        let found = scan(&[(
            "project/app.py",
            "basedir = Path(__file__).resolve().parent\nDATABASE = \"flaskr.db\"\n\
             url = os.getenv(\"DATABASE_URL\", f\"sqlite:///{Path(basedir).joinpath(DATABASE)}\")\n",
        )]);
        assert_eq!(
            found,
            [Write::Sqlite {
                setting: "DATABASE_URL".into(),
                file: "flaskr.db".into()
            }]
        );
    }

    #[test]
    fn sqlite_joined_to_the_files_own_directory_is_a_file_beside_the_code() {
        let found = scan(&[(
            "app/main/config.py",
            "import os\nbasedir = os.path.abspath(os.path.dirname(__file__))\n\n\
             class DevelopmentConfig:\n    SQLALCHEMY_DATABASE_URI = 'sqlite:///' + \
             os.path.join(basedir, 'flask_boilerplate_main.db')\n\n\
             class TestingConfig:\n    SQLALCHEMY_DATABASE_URI = 'sqlite:///' + \
             os.path.join(elsewhere, 'test.db')\n",
        )]);
        assert_eq!(
            found,
            [Write::SqliteFile {
                path: "app/main/flask_boilerplate_main.db".into()
            }]
        );
    }

    #[test]
    fn a_fallback_on_the_next_line_is_the_same_statement() {
        let found = scan(&[(
            "config.py",
            "class Config:\n    SQLALCHEMY_DATABASE_URI = os.environ.get('DATABASE_URL', '').replace(\n        'postgres://', 'postgresql://') or \\\n        'sqlite:///' + os.path.join(basedir, 'app.db')\n    OTHER = 1\n",
        )]);
        assert_eq!(
            found,
            [Write::Sqlite {
                setting: "DATABASE_URL".into(),
                file: "app.db".into()
            }]
        );
    }

    #[test]
    fn django_media_root_under_base_dir() {
        let found = scan(&[
            ("app/manage.py", ""),
            (
                "app/site/settings.py",
                "MEDIA_URL = '/media/'\nMEDIA_ROOT = BASE_DIR / \"mediafiles\"\n",
            ),
            (
                "other/settings.py",
                "MEDIA_ROOT = os.path.join(BASE_DIR, 'uploads')\nMEDIA_ROOT = os.environ.get('MEDIA_ROOT', '/data')\n",
            ),
        ]);
        assert_eq!(
            found,
            [
                Write::Dir {
                    path: "app/mediafiles".into(),
                    why: WriteReason::DjangoMedia
                },
                Write::Dir {
                    path: "uploads".into(),
                    why: WriteReason::DjangoMedia
                },
            ]
        );
    }

    #[test]
    fn directories_named_from_the_settings_files_own_path() {
        let found = scan(&[
            ("manage.py", ""),
            (
                "shop/settings/base.py",
                "import os\nPROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))\nBASE_DIR = os.path.dirname(PROJECT_DIR)\nMEDIA_ROOT = os.path.join(PROJECT_DIR, \"media\")\nDATABASES = {\"default\": {\"ENGINE\": \"django.db.backends.sqlite3\", \"NAME\": os.path.join(BASE_DIR, \"shop.db\")}}\n",
            ),
            (
                "blog/conf/settings.py",
                "from pathlib import Path\nHERE = Path(__file__).resolve().parent\nMEDIA_ROOT = HERE / 'uploads'\nUNKNOWN_ROOT = somewhere()\n",
            ),
            // Named from a directory terrarium can't place: nothing is guessed.
            (
                "x/settings.py",
                "MEDIA_ROOT = os.path.join(STORAGE_DIR, 'media')\n",
            ),
        ]);
        assert_eq!(
            found,
            [
                Write::Dir {
                    path: "shop/media".into(),
                    why: WriteReason::DjangoMedia
                },
                Write::SqliteFile {
                    path: "shop.db".into()
                },
                Write::Dir {
                    path: "blog/conf/uploads".into(),
                    why: WriteReason::DjangoMedia
                },
            ]
        );
    }

    #[test]
    fn created_directories_log_files_and_sqlite() {
        let found = scan(&[(
            "app/__init__.py",
            "if not os.path.exists('logs'):\n    os.mkdir('logs')\nh = RotatingFileHandler('logs/microblog.log', maxBytes=10240)\nPath(\"uploads/img\").mkdir(parents=True)\nzip_file = Path(\"temp.zip\")\nfor f in walk(Path(\"pkg\", \"resources\")):\n    pass\nlogger.add(\n    \"logs/error.log\",\n    level=\"ERROR\",\n)\nos.makedirs(os.path.join(base, 'x'))\nos.makedirs('/var/tmp/abs')\nSQLALCHEMY_DATABASE_URI = os.environ.get('DATABASE_URL') or 'sqlite:///' + os.path.join(basedir, 'app.db')\nDB = os.getenv(\"DB_URL\", \"sqlite:///data.sqlite3\")\nTEST = 'sqlite:///:memory:'\n",
        )]);
        assert_eq!(
            found,
            [
                Write::Dir {
                    path: "logs".into(),
                    why: WriteReason::Created
                },
                Write::Dir {
                    path: "logs".into(),
                    why: WriteReason::LogFiles
                },
                Write::Dir {
                    path: "uploads/img".into(),
                    why: WriteReason::Created
                },
                Write::Sqlite {
                    setting: "DATABASE_URL".into(),
                    file: "app.db".into()
                },
                Write::Sqlite {
                    setting: "DB_URL".into(),
                    file: "data.sqlite3".into()
                },
            ]
        );
    }

    #[test]
    fn settings_that_name_directories_beside_the_code() {
        let found = scan(&[(
            "ctf/config.py",
            "class ServerConfig(object):\n    DATABASE_URL = f\"sqlite:///{os.path.dirname(os.path.abspath(__file__))}/ctfd.db\"\n    CACHE_DIR: str = os.path.join(\n        os.path.dirname(__file__), os.pardir, \".data\", \"filesystem_cache\"\n    )\n    LOG_FOLDER: str = empty_str_cast(config_ini[\"logs\"][\"LOG_FOLDER\"]) \\\n        or os.path.join(os.path.dirname(os.path.abspath(__file__)), \"logs\")\n    TEMPLATES_DIR = os.path.join(os.path.dirname(__file__), \"templates\")\n    UPLOAD_FOLDER = os.path.join(os.path.dirname(__file__), \"..\", \"..\", \"up\")\n",
        )]);
        assert_eq!(
            found,
            [
                Write::SqliteFile {
                    path: "ctf/ctfd.db".into()
                },
                Write::Dir {
                    path: ".data/filesystem_cache".into(),
                    why: WriteReason::SettingDir
                },
                Write::Dir {
                    path: "ctf/logs".into(),
                    why: WriteReason::SettingDir
                },
            ]
        );
    }

    #[test]
    fn each_further_dirname_goes_one_directory_up() {
        let found = scan(&[(
            "src/app/core/logger.py",
            "import os\nLOG_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), \"logs\")\nos.makedirs(LOG_DIR, exist_ok=True)\n",
        )]);
        assert_eq!(
            found,
            [Write::Dir {
                path: "src/app/logs".into(),
                why: WriteReason::SettingDir
            }]
        );
    }

    #[test]
    fn django_sqlite_in_base_dir_is_a_fixed_file_beside_manage_py() {
        let found = scan(&[
            ("manage.py", "import django\n"),
            (
                "site/settings.py",
                "BASE_DIR = Path(__file__).resolve().parent.parent\nDATABASES = {\n    \"default\": {\n        \"ENGINE\": \"django.db.backends.sqlite3\",\n        \"NAME\": BASE_DIR / \"db.sqlite3\",\n    }\n}\n",
            ),
            (
                "old/settings.py",
                "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': os.path.join(BASE_DIR, 'old.sqlite3')}}\n",
            ),
            (
                "env/settings.py",
                "DATABASES = {'default': {'ENGINE': os.environ.get('DB_ENGINE', 'django.db.backends.sqlite3'), 'NAME': BASE_DIR / 'x.db'}}\nOTHER = {'NAME': BASE_DIR / 'notes.txt'}\n",
            ),
            (
                "named/settings.py",
                "DATABASES = {\n    'default': {\n        'ENGINE': 'django.db.backends.sqlite3',\n        'NAME': os.path.join(\n            BASE_DIR, os.environ.get(\"DATABASE_NAME\", \"demodb\")\n        ),\n    }\n}\n",
            ),
            (
                "getenv/settings.py",
                "DATABASES = {\n    'default': {\n        'ENGINE': 'django.db.backends.sqlite3',\n        'NAME': os.getenv(\"DB_NAME\", BASE_DIR / \"hc.sqlite\"),\n    }\n}\n",
            ),
        ]);
        assert_eq!(
            found,
            [
                Write::SqliteFile {
                    path: "db.sqlite3".into()
                },
                Write::SqliteFile {
                    path: "old.sqlite3".into()
                },
                Write::SqliteFile {
                    path: "demodb".into()
                },
                Write::SqliteFile {
                    path: "hc.sqlite".into()
                },
            ]
        );
    }

    #[test]
    fn settings_whose_default_is_a_relative_sqlite_url() {
        use crate::code::EnvVar;
        let env = [
            Fact::new(
                EnvVar::optional("DATABASE_URL", Some("sqlite:///./todo.db".into())),
                Source::line("app/core/config.py", 13),
            ),
            Fact::new(
                EnvVar::optional("CACHE_URL", Some("sqlite:////var/cache/c.db".into())),
                Source::line("app/core/config.py", 14),
            ),
            Fact::new(
                EnvVar::optional("TEST_DB", Some("sqlite:///:memory:".into())),
                Source::line("app/core/config.py", 15),
            ),
        ];
        let found: Vec<Write> = with_sqlite_settings(Vec::new(), &env)
            .into_iter()
            .map(|f| f.value)
            .collect();
        assert_eq!(
            found,
            [Write::Sqlite {
                setting: "DATABASE_URL".into(),
                file: "todo.db".into()
            }]
        );
    }

    #[test]
    fn a_fixed_relative_sqlite_url_is_in_the_working_directory() {
        let found = scan(&[
            (
                "app.py",
                "def create_app(db_url=None):\n    app.config[\"SQLALCHEMY_DATABASE_URI\"] = db_url or \"sqlite:///data.db\"\n",
            ),
            ("tests/utils.py", "URL = 'sqlite:///fixtures.db'\n"),
            (
                "nested.py",
                "URL = 'sqlite:///db/nested.db'\nABS = 'sqlite:////var/x.db'\n",
            ),
        ]);
        assert_eq!(
            found,
            [Write::SqliteInWorkdir {
                file: "data.db".into()
            }]
        );
    }
}
