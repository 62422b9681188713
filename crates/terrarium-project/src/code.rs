//! Facts from Python source: web applications (module-level objects and factories), ports,
//! environment variables with their defaults, and health-check routes.
//!
//! This is a line-oriented scan, not a Python parser: it recognises the idioms the frameworks
//! document (`app = Flask(__name__)`, `def create_app(): … return app`, `os.environ.get("X", "d")`)
//! and leaves anything cleverer to `[tool.terrarium]`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::error::DetectError;
use crate::{Fact, Source};

/// A web framework terrarium knows how to serve.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    /// Flask (WSGI).
    Flask,
    /// Django (WSGI).
    Django,
    /// FastAPI (ASGI).
    FastApi,
    /// Starlette (ASGI).
    Starlette,
    /// Quart (ASGI).
    Quart,
    /// A plain WSGI callable (`def application(environ, start_response)`).
    Wsgi,
    /// A plain ASGI callable (`async def app(scope, receive, send)`).
    Asgi,
}

impl Framework {
    /// The server interface the framework's applications speak.
    pub fn interface(self) -> Interface {
        match self {
            Framework::Flask | Framework::Django | Framework::Wsgi => Interface::Wsgi,
            Framework::FastApi | Framework::Starlette | Framework::Quart | Framework::Asgi => {
                Interface::Asgi
            }
        }
    }

    fn from_class(class: &str) -> Option<Framework> {
        Some(match class {
            "Flask" => Framework::Flask,
            "FastAPI" => Framework::FastApi,
            "Starlette" => Framework::Starlette,
            "Quart" => Framework::Quart,
            _ => return None,
        })
    }

    /// The import that must appear in a file for the class name to count.
    fn module(self) -> &'static str {
        match self {
            Framework::Flask => "flask",
            Framework::Django => "django",
            Framework::FastApi => "fastapi",
            Framework::Starlette => "starlette",
            Framework::Quart => "quart",
            Framework::Wsgi | Framework::Asgi => "",
        }
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framework::Flask => "Flask",
            Framework::Django => "Django",
            Framework::FastApi => "FastAPI",
            Framework::Starlette => "Starlette",
            Framework::Quart => "Quart",
            Framework::Wsgi => "WSGI",
            Framework::Asgi => "ASGI",
        })
    }
}

/// WSGI or ASGI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interface {
    /// PEP 3333 WSGI.
    Wsgi,
    /// ASGI.
    Asgi,
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interface::Wsgi => "WSGI",
            Interface::Asgi => "ASGI",
        })
    }
}

/// How the application object is reached in its module.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum AppObject {
    /// A module-level variable (`app = Flask(__name__)`).
    Variable(String),
    /// A factory function called with no arguments (`def create_app(): …`).
    Factory(String),
}

/// A web application found in the code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct App {
    /// Its framework.
    pub framework: Framework,
    /// The dotted module that holds it (`quotes`, `inventory.web`).
    pub module: String,
    /// The object in that module.
    pub object: AppObject,
    /// The directory below the project root the module is imported from, when it is not the
    /// root: a `src/` that is not a package, whose app imports its sibling modules by their
    /// top-level names (`src/app.py` doing `from api.models import …`). Servers run with it
    /// as their import directory (gunicorn `--chdir`, uvicorn `--app-dir`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_dir: Option<String>,
}

impl App {
    /// The server target: `module:app`, or `module:create_app()` for a factory.
    pub fn target(&self) -> String {
        match &self.object {
            AppObject::Variable(name) => format!("{}:{name}", self.module),
            AppObject::Factory(name) => format!("{}:{name}()", self.module),
        }
    }
}

/// An environment variable the code reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnvVar {
    /// Its name.
    pub name: String,
    /// The default the code falls back to, as text, when it names one.
    pub default: Option<String>,
    /// The code can't do without it: `os.environ["X"]` unguarded, `os.environ.get("X").split()`,
    /// a settings field with no default. A read whose absence the code handles is optional.
    pub required: bool,
    /// The code's fallback is one no baked-in default can stand for: computed
    /// (`os.getenv("DB_NAME", BASE_DIR / "x")`), or different at different reads.
    pub computed_default: bool,
}

impl EnvVar {
    /// A setting read with a fallback (`None` when the fallback is no value at all).
    pub fn optional(name: impl Into<String>, default: Option<String>) -> Self {
        EnvVar {
            name: name.into(),
            default,
            required: false,
            computed_default: false,
        }
    }

    /// A setting the code needs: it has no fallback.
    pub fn required(name: impl Into<String>) -> Self {
        EnvVar {
            name: name.into(),
            default: None,
            required: true,
            computed_default: false,
        }
    }
}

/// Whether a setting names a data directory that should be a volume (L09).
pub(crate) fn is_data_dir_setting(var: &EnvVar) -> bool {
    static DATA: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:[A-Z0-9]+_)*(?:DATA|STORAGE|UPLOADS?|MEDIA|STATE|FILES)(?:_(?:DIR|DIRECTORY|PATH|ROOT|FOLDER))?$|^[A-Z0-9_]*(?:_DIR|_DIRECTORY|_FOLDER)$")
            .expect("static regex")
    });
    // A bare word (`uploads`) is a path only for a name that says directory: for
    // `FILE_UPLOAD_STORAGE` it is a choice (`local`, `s3`).
    let says_directory = ["_DIR", "_DIRECTORY", "_PATH", "_ROOT", "_FOLDER"]
        .iter()
        .any(|suffix| var.name.ends_with(suffix));
    let looks_like_path = var.default.as_deref().is_some_and(|d| {
        d.starts_with('/')
            || d.starts_with("./")
            || d.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-/.".contains(c))
                && !d.is_empty()
                && (says_directory || d.contains('/'))
    });
    DATA.is_match(&var.name)
        && looks_like_path
        && !var.name.contains("TEMPLATE")
        && !var.name.contains("STATIC")
}

/// What the scan found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub apps: Vec<Fact<App>>,
    pub ports: Vec<Fact<u16>>,
    pub env: Vec<Fact<EnvVar>>,
    pub health_routes: Vec<Fact<String>>,
    /// Where the code writes under the project.
    pub writes: Vec<Fact<crate::Write>>,
    /// Every factory found, also those a module-level object shadows.
    factories: Vec<Fact<App>>,
    /// Module-level `name = some_function(…)` assignments: a factory the project calls itself.
    factory_calls: Vec<FactoryCall>,
    /// The project's own subclasses of an app class (`class CTFdFlask(Flask)`), by name.
    app_classes: BTreeMap<String, Framework>,
}

/// The subclasses of an app class that `text` defines (`class CTFdFlask(Flask):`), where it
/// imports that framework.
fn collect_app_classes(text: &str, classes: &mut BTreeMap<String, Framework>) {
    for line in text.lines() {
        if let Some(c) = APP_SUBCLASS.captures(line)
            && let Some(framework) = Framework::from_class(&c[2]).filter(|f| imports(text, *f))
        {
            classes.insert(c[1].to_owned(), framework);
        }
    }
}

/// `app = create_app()` at module level: the project makes its own app object from a factory,
/// and may go on configuring it below (routes, start-up hooks), so that object is what to serve.
#[derive(Debug)]
struct FactoryCall {
    module: String,
    variable: String,
    function: String,
    imported: bool,
    source: Source,
}

/// The project's own Python files, relative to the root, sorted. Tests, virtualenvs, hidden
/// directories and files ignored by git are left out.
pub(crate) fn python_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ignore::WalkBuilder::new(root)
        .hidden(true)
        .git_ignore(true)
        .require_git(false)
        .max_depth(Some(8))
        .filter_entry(|entry| {
            let name = entry.file_name().to_string_lossy();
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            !(is_dir
                && (matches!(
                    name.as_ref(),
                    "tests"
                        | "test"
                        | "node_modules"
                        | "site-packages"
                        | "venv"
                        | "env"
                        | "build"
                        | "dist"
                        | "migrations"
                        | "__pycache__"
                ) || entry.path().join("pyvenv.cfg").is_file()))
        })
        .build()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .filter_map(|e| e.path().strip_prefix(root).ok().map(Path::to_path_buf))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.ends_with(".py")
                && !name.starts_with("test_")
                && !name.ends_with("_test.py")
                && name != "conftest.py"
        })
        .collect();
    files.sort();
    files
}

/// The dotted module name of a file: `src/inventory/web.py` is `inventory.web`, or
/// `src.inventory.web` when `src_package` (`src/__init__.py` exists).
pub(crate) fn module_name(rel: &Path, src_package: bool) -> String {
    let rel = if src_package {
        rel
    } else {
        rel.strip_prefix("src").unwrap_or(rel)
    };
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".py").to_string();
        if last == "__init__" {
            parts.pop();
        }
    }
    parts.join(".")
}

regex!(
    APP_VARIABLE,
    r"^([A-Za-z_]\w*)\s*(?::\s*[\w.]+\s*)?=\s*(?:[\w.]+\.)?(Flask|FastAPI|Starlette|Quart)\("
);
regex!(TOP_DEF, r"^(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(");
regex!(
    APP_SUBCLASS,
    r"^class\s+([A-Za-z_]\w*)\s*\(\s*(?:[\w.]+\.)?(Flask|FastAPI|Starlette|Quart)\s*\)\s*:"
);
regex!(CLASS_CALL, r"(?:^|[^\w.])([A-Za-z_]\w*)\(");
regex!(
    FACTORY_CALL,
    r"^([A-Za-z_]\w*)\s*(?::\s*[\w.]+\s*)?=\s*([A-Za-z_]\w*)\("
);
regex!(
    WSGI_CALLABLE,
    r"^def\s+([A-Za-z_]\w*)\s*\(\s*environ\s*,\s*start_response\s*\)"
);
regex!(
    ASGI_CALLABLE,
    r"^async\s+def\s+([A-Za-z_]\w*)\s*\(\s*scope\s*,\s*receive\s*,\s*send\s*\)"
);
regex!(
    CONSTRUCTOR,
    r"(?:^|[^\w.])(?:[\w]+\.)?(Flask|FastAPI|Starlette|Quart)\("
);
regex!(RUN_PORT, r"\.run\([^)]*\bport\s*=\s*(\d{2,5})");
regex!(
    ENV_GET,
    r#"(?:\b(os\.environ\.get|os\.getenv|os\.environ\.setdefault)|(?:^|[^\w.])(environ\.get|getenv))\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*(?:,\s*("[^"]*"|'[^']*'|-?\d+(?:\.\d+)?|True|False|None))?"#
);
regex!(
    ENV_INDEX,
    r#"os\.environ\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\]"#
);

regex!(
    ENV_GUARD,
    r#"["']([A-Za-z_][A-Za-z0-9_]*)["']\s+in\s+(?:os\.)?environ\b|\bif\s+(?:os\.environ\.get|os\.getenv|environ\.get|getenv)\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\)\s*(?::|is\s+not\s+None|and\b|or\b)"#
);
regex!(
    NEEDS_VALUE_BEFORE,
    r"(?:\bint|\bfloat|\bDecimal|\bPath|\bjson\.loads|\bUUID)\(\s*$"
);
regex!(
    FALLBACK_AFTER,
    r#"^\)\s+or\s+("[^"]*"|'[^']*'|-?\d+(?:\.\d+)?|True|False)"#
);

/// Names the file checks before it reads them (`if "X" in os.environ:`, `if os.getenv("X"):`):
/// reads of these are optional wherever they are in the file.
fn guarded_names(text: &str) -> std::collections::BTreeSet<String> {
    ENV_GUARD
        .captures_iter(text)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)))
        .map(|m| m.as_str().to_owned())
        .collect()
}

/// The module a relative import names: `from .base import *` in module `a.settings.dev`
/// imports `a.settings.base` (in a package's `__init__`, one dot is the package itself).
pub(crate) fn absolute_module(module: &str, is_package: bool, from: &str) -> String {
    let dots = from.chars().take_while(|c| *c == '.').count();
    if dots == 0 {
        return from.to_owned();
    }
    let mut parts: Vec<&str> = module.split('.').filter(|p| !p.is_empty()).collect();
    let up = if is_package { dots - 1 } else { dots };
    parts.truncate(parts.len().saturating_sub(up));
    let rest = &from[dots..];
    if !rest.is_empty() {
        parts.push(rest);
    }
    parts.join(".")
}

/// Whether line `index` is inside a top-level `if`/`elif`/`else` block: a setting read there
/// is needed in one configuration only (`if "A_TOKEN" in os.environ:`, `if STORAGE == "s3":`),
/// so it is not required.
pub(crate) fn in_conditional_block(lines: &[&str], index: usize) -> bool {
    let indented = |l: &str| l.starts_with([' ', '\t']);
    if !lines.get(index).is_some_and(|l| indented(l)) {
        return false;
    }
    (0..index)
        .rev()
        .map(|i| lines[i])
        // A line that closes brackets (`):`) continues the statement above it.
        .find(|line| {
            !line.trim().is_empty() && !indented(line) && !line.starts_with(['#', ')', ']', '}'])
        })
        .is_some_and(|head| {
            ["if ", "if(", "elif ", "else:", "else :"]
                .iter()
                .any(|keyword| head.starts_with(keyword))
        })
}

/// A quoted or bare literal as the text of its value; `None` is no value.
fn literal_value(literal: &str) -> Option<String> {
    match literal {
        "None" => None,
        quoted if quoted.starts_with(['"', '\'']) => Some(
            quoted
                .get(1..quoted.len().saturating_sub(1))
                .unwrap_or_default()
                .to_string(),
        ),
        other => Some(other.to_string()),
    }
}

/// `os.environ.get("X")` with no default, judged by what the line does with the result:
/// a method call or subscript on it (`.split(",")`) or `int(…)` around it fails without
/// the setting, so it is required; `… or "fallback"` has that fallback; a second argument that
/// is an expression is a fallback too; Django's `SECRET_KEY = os.environ.get("X")` is required;
/// anything else (`if X:`, `X = os.getenv("X")`) is optional.
fn read_without_default(name: &str, before: &str, after: &str, guarded: bool) -> EnvVar {
    let after = after.trim_start();
    if after.starts_with(',') || guarded {
        return EnvVar::optional(name, None);
    }
    if let Some(c) = FALLBACK_AFTER.captures(after) {
        return EnvVar::optional(name, literal_value(&c[1]));
    }
    // Django refuses to start with an empty SECRET_KEY: assigning it straight from the
    // environment makes the variable required.
    let django_secret = before.trim() == "SECRET_KEY =";
    let used_as_value = after
        .strip_prefix(')')
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        || NEEDS_VALUE_BEFORE.is_match(before)
        || django_secret;
    if used_as_value {
        EnvVar::required(name)
    } else {
        EnvVar::optional(name, None)
    }
}

/// `x = os.environ.get("X")` followed by `if not x:` and a `raise` (or `sys.exit`) within the
/// next lines: the code refuses to run without the setting, so it is required.
fn refused_when_missing(before: &str, following: &[&str]) -> bool {
    let Some(variable) = before
        .trim()
        .strip_suffix('=')
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_alphanumeric() || c == '_'))
    else {
        return false;
    };
    let check = format!("if not {variable}");
    let mut lines = following.iter().take(4).map(|l| l.trim());
    while let Some(line) = lines.next() {
        if line.starts_with(&check) {
            return lines
                .take(2)
                .any(|l| l.starts_with("raise") || l.starts_with("sys.exit"));
        }
    }
    false
}

/// Scan `files` (relative to `root`).
pub(crate) fn scan(root: &Path, files: &[PathBuf]) -> Result<Scan, DetectError> {
    let mut scan = Scan::default();
    let mut texts = Vec::with_capacity(files.len());
    for rel in files {
        let text = read_source(root, rel)?;
        collect_app_classes(&text, &mut scan.app_classes);
        texts.push((rel.clone(), text));
    }
    let src_package = is_src_package(files);
    for (rel, text) in &texts {
        scan_file(rel, text, src_package, &mut scan);
        crate::writes::scan_file(root, rel, text, &mut scan.writes);
    }
    scan.env.extend(crate::settings::scan(&texts));
    scan.health_routes = crate::routes::health_routes(&texts, src_package);
    adopt_factory_calls(&mut scan);
    for app in &mut scan.apps {
        set_import_dir(&mut app.value, &app.source.file, files, &texts);
    }
    Ok(scan)
}

/// Whether `src/` is a package of its own (`src/__init__.py`: the code imports `src.x`), not
/// the directory of a src layout.
pub(crate) fn is_src_package(files: &[PathBuf]) -> bool {
    files.iter().any(|f| f == Path::new("src/__init__.py"))
}

/// Python imports a module run as a script from the script's directory; a module in `src/`
/// (not a package) that imports `api.utils`, where `src/api/` exists and the root has no
/// `api`, only works imported from `src/`. Moves `app` there (`src.app` becomes `app` with
/// `import_dir` `src`).
fn set_import_dir(app: &mut App, file: &Path, files: &[PathBuf], texts: &[(PathBuf, String)]) {
    let is_package = |dir: &Path| files.iter().any(|f| f == &dir.join("__init__.py"));
    let mut dir = file.parent().unwrap_or(Path::new(""));
    while !dir.as_os_str().is_empty() && is_package(dir) {
        dir = dir.parent().unwrap_or(Path::new(""));
    }
    if dir.as_os_str().is_empty() {
        return;
    }
    let Some((_, text)) = texts.iter().find(|(rel, _)| rel == file) else {
        return;
    };
    let exists_in = |base: &Path, name: &str| {
        files
            .iter()
            .any(|f| f == &base.join(format!("{name}.py")) || f.starts_with(base.join(name)))
    };
    let imports_sibling = text
        .lines()
        .filter_map(imported_top_level)
        .any(|name| exists_in(dir, name) && !exists_in(Path::new(""), name));
    if !imports_sibling {
        return;
    }
    let Ok(rel) = file.strip_prefix(dir) else {
        return;
    };
    app.module = module_name(rel, false);
    app.import_dir = Some(dir.to_string_lossy().into_owned());
}

/// The top-level module an absolute import line names (`api` of `from api.utils import x`
/// or `import api.models`); `None` for relative imports and other lines.
fn imported_top_level(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let rest = line
        .strip_prefix("from ")
        .or_else(|| line.strip_prefix("import "))?
        .trim_start();
    let name = rest
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()?;
    (!name.is_empty()).then_some(name)
}

/// Module-level objects made by calling a factory the scan found (in the same module, or
/// imported by name) replace that factory: `app = create_application()` followed by
/// `app.include_router(…)` or a start-up hook must be served as `main:app`, not as a fresh
/// `main:create_application()` without them.
fn adopt_factory_calls(scan: &mut Scan) {
    let mut called = Vec::new();
    for call in std::mem::take(&mut scan.factory_calls) {
        let Some(factory) = scan.factories.iter().find(|f| {
            matches!(&f.value.object, AppObject::Factory(name) if *name == call.function)
                && (f.value.module == call.module || call.imported)
        }) else {
            continue;
        };
        called.push(factory.value.clone());
        let app = App {
            framework: factory.value.framework,
            module: call.module,
            object: AppObject::Variable(call.variable),
            import_dir: None,
        };
        if !scan.apps.iter().any(|a| a.value == app) {
            scan.apps.push(Fact::new(app, call.source));
        }
    }
    scan.apps.retain(|a| !called.contains(&a.value));
}

/// A Python source file as text; bytes that are not UTF-8 are replaced.
pub(crate) fn read_source(root: &Path, rel: &Path) -> Result<String, DetectError> {
    std::fs::read(root.join(rel))
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|source| DetectError::Read {
            path: rel.to_path_buf(),
            source,
        })
}

/// `line` without a trailing `# comment` (a `#` inside a string is kept).
pub(crate) fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (index, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') => return &line[..index],
            _ => {}
        }
    }
    line
}

/// Line `index` joined with the lines that continue it when it ends inside an open call
/// (`SECRET_KEY = os.environ.get(` then `'X', 'fallback')`), comments stripped; `None` when
/// it doesn't end with `(`.
fn continued_call(lines: &[&str], index: usize) -> Option<String> {
    let first = strip_comment(lines.get(index)?).trim_end();
    if !first.ends_with('(') {
        return None;
    }
    let mut joined = first.to_owned();
    for next in lines.iter().skip(index + 1).take(6) {
        joined.push(' ');
        joined.push_str(strip_comment(next).trim());
        if joined.matches('(').count() <= joined.matches(')').count() {
            break;
        }
    }
    Some(joined)
}

/// `from os import …, NAME, …` appears in the file.
fn imports_from_os(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        line.trim_start()
            .strip_prefix("from os import")
            .is_some_and(|names| {
                names
                    .split(',')
                    .any(|n| n.split_whitespace().next() == Some(name))
            })
    })
}

fn imports(text: &str, framework: crate::Framework) -> bool {
    let module = framework.module();
    text.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with(&format!("from {module} import"))
            || line.starts_with(&format!("from {module}."))
            || line.starts_with(&format!("import {module}"))
    })
}

fn scan_file(rel: &Path, text: &str, src_package: bool, scan: &mut Scan) {
    collect_app_classes(text, &mut scan.app_classes);
    let module = module_name(rel, src_package);
    let lines: Vec<&str> = text.lines().collect();
    let guarded = guarded_names(text);
    let mut variables = Vec::new();
    let mut factories = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let line_no = index + 1;
        // Commented-out code (`# url = os.environ['DATABASE_URL']`) reads nothing.
        let line = strip_comment(line);
        if let Some(c) = APP_VARIABLE.captures(line) {
            if let Some(framework) = Framework::from_class(&c[2]).filter(|f| imports(text, *f)) {
                variables.push(Fact::new(
                    App {
                        framework,
                        module: module.clone(),
                        object: AppObject::Variable(c[1].to_string()),
                        import_dir: None,
                    },
                    Source::line(rel, line_no),
                ));
            }
        } else if let Some((c, framework)) = WSGI_CALLABLE
            .captures(line)
            .map(|c| (c, Framework::Wsgi))
            .or_else(|| ASGI_CALLABLE.captures(line).map(|c| (c, Framework::Asgi)))
            .or_else(|| {
                // `app = CTFdFlask(__name__)`: the project's own subclass of an app class.
                FACTORY_CALL
                    .captures(line)
                    .and_then(|c| scan.app_classes.get(&c[2]).map(|f| (c, *f)))
            })
        {
            variables.push(Fact::new(
                App {
                    framework,
                    module: module.clone(),
                    object: AppObject::Variable(c[1].to_string()),
                    import_dir: None,
                },
                Source::line(rel, line_no),
            ));
        } else if let Some(c) = FACTORY_CALL.captures(line) {
            let function = c[2].to_string();
            let imported = text.lines().any(|l| {
                let l = l.trim_start();
                l.starts_with("from ")
                    && l.contains(" import ")
                    && l.split(" import ").nth(1).is_some_and(|names| {
                        names.split(',').any(|n| {
                            n.trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace())
                                == function
                        })
                    })
            });
            scan.factory_calls.push(FactoryCall {
                module: module.clone(),
                variable: c[1].to_string(),
                function,
                imported,
                source: Source::line(rel, line_no),
            });
        } else if let Some(c) = TOP_DEF.captures(line) {
            // The body starts after the signature, which may span lines and close at the
            // margin (`) -> FastAPI:`, black's style).
            let mut depth = 0i32;
            let mut signature_end = index;
            for (offset, l) in lines.iter().enumerate().skip(index).take(40) {
                depth += l.matches('(').count() as i32 - l.matches(')').count() as i32;
                signature_end = offset;
                if depth <= 0 {
                    break;
                }
            }
            let body: Vec<&str> = lines
                .get(signature_end + 1..)
                .unwrap_or_default()
                .iter()
                .take_while(|l| {
                    l.is_empty() || l.starts_with([' ', '\t']) || l.trim_start().starts_with('#')
                })
                .copied()
                .collect();
            // Docstrings are prose: an example in one (`app = FastAPI()`) is not the body.
            let mut in_docstring = false;
            let body: Vec<&str> = body
                .into_iter()
                .filter(|l| {
                    let quotes = l.matches("\"\"\"").count() + l.matches("\'\'\'").count();
                    let inside = in_docstring || quotes > 0;
                    if quotes % 2 == 1 {
                        in_docstring = !in_docstring;
                    }
                    !inside
                })
                .collect();
            let constructed = body.iter().find_map(|l| {
                CONSTRUCTOR
                    .captures(l)
                    .and_then(|c| Framework::from_class(&c[1]))
                    .filter(|f| imports(text, *f))
                    .or_else(|| {
                        CLASS_CALL
                            .captures_iter(l)
                            .find_map(|c| scan.app_classes.get(&c[1]).copied())
                    })
            });
            let returns = body.iter().any(|l| l.trim_start().starts_with("return "));
            if let Some(framework) = constructed
                && returns
                && !c[1].starts_with('_')
            {
                factories.push(Fact::new(
                    App {
                        framework,
                        module: module.clone(),
                        object: AppObject::Factory(c[1].to_string()),
                        import_dir: None,
                    },
                    Source::line(rel, line_no),
                ));
            }
        }
        for c in RUN_PORT.captures_iter(line) {
            if let Ok(port) = c[1].parse::<u16>() {
                scan.ports.push(Fact::new(port, Source::line(rel, line_no)));
            }
        }
        // A call whose arguments start on the next line (`os.environ.get(\n    "X", "d")`) is read
        // whole.
        let continued = continued_call(&lines, index);
        let call_line = continued.as_deref().unwrap_or(line);
        for c in ENV_GET.captures_iter(call_line) {
            // Bare `environ.get` / `getenv` count only when they are os's (a WSGI app's
            // `environ.get("PATH_INFO")` is the request, not the environment).
            if let Some(bare) = c.get(2) {
                let name = bare.as_str().trim_end_matches(".get");
                if !imports_from_os(text, name) {
                    continue;
                }
            }
            let name = &c[3];
            let whole = c.get(0).map_or(0..0, |m| m.range());
            let after = call_line.get(whole.end..).unwrap_or_default().trim_start();
            let var = match c.get(4).map(|m| m.as_str()) {
                Some(literal) => EnvVar::optional(name, literal_value(literal)),
                // A fallback that is an expression, not a literal.
                None if after.starts_with(',') && !after[1..].trim_start().starts_with(')') => {
                    EnvVar {
                        computed_default: true,
                        ..EnvVar::optional(name, None)
                    }
                }
                None => {
                    let before = call_line.get(..whole.start).unwrap_or_default();
                    let read = read_without_default(
                        name,
                        before,
                        call_line.get(whole.end..).unwrap_or_default(),
                        guarded.contains(name),
                    );
                    if !read.required && refused_when_missing(before, &lines[index + 1..]) {
                        EnvVar::required(name)
                    } else {
                        read
                    }
                }
            };
            scan.env.push(Fact::new(var, Source::line(rel, line_no)));
        }
        for c in ENV_GUARD.captures_iter(line) {
            // `if "DATABASE_URL" in os.environ:` reads the variable too: an optional setting.
            // (`if os.getenv("X"):` is a read the loop above recorded.)
            if let Some(name) = c.get(1) {
                scan.env.push(Fact::new(
                    EnvVar::optional(name.as_str(), None),
                    Source::line(rel, line_no),
                ));
            }
        }
        for c in ENV_INDEX.captures_iter(line) {
            let rest = c
                .get(0)
                .and_then(|m| line.get(m.end()..))
                .unwrap_or_default()
                .trim_start();
            if rest.starts_with('=') && !rest.starts_with("==") {
                // `os.environ["X"] = …` sets it for the process: not a setting it reads.
                continue;
            }
            let var = if guarded.contains(&c[1]) || in_conditional_block(&lines, index) {
                EnvVar::optional(&c[1], None)
            } else {
                EnvVar::required(&c[1])
            };
            scan.env.push(Fact::new(var, Source::line(rel, line_no)));
        }
    }
    // A module-level object wins over a factory in the same module.
    scan.factories.extend(factories.iter().cloned());
    if variables.is_empty() {
        scan.apps.extend(factories);
    } else {
        scan.apps.extend(variables);
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_setting_the_code_refuses_to_run_without_is_required() {
        let text = "import os\n\ndef load():\n    secret = os.environ.get(\"WEBHOOK_SECRET\")\n    if not secret:\n        raise ConfigError(\"WEBHOOK_SECRET is not set\")\n    level = os.environ.get(\"LOG_LEVEL\")\n    if not level:\n        level = \"info\"\n";
        let mut scan = Scan::default();
        scan_file(Path::new("config.py"), text, false, &mut scan);
        let required: Vec<(&str, bool)> = scan
            .env
            .iter()
            .map(|f| (f.value.name.as_str(), f.value.required))
            .collect();
        assert_eq!(required, [("WEBHOOK_SECRET", true), ("LOG_LEVEL", false)]);
    }
    use super::*;

    #[test]
    fn a_factory_whose_signature_closes_at_the_margin_is_found() {
        let mut scan = Scan::default();
        scan_file(
            Path::new("app/core/setup.py"),
            "from fastapi import APIRouter, FastAPI\n\ndef cache(\n    key: str,\n) -> Callable:\n    \"\"\"A decorator.\n\n    app = FastAPI()\n    return app\n    \"\"\"\n    return wrapper\n\ndef create_application(\n    router: APIRouter,\n    settings: (\n        AppSettings\n        | DatabaseSettings\n    ),\n    **kwargs: Any,\n) -> FastAPI:\n    application = FastAPI(**kwargs)\n    application.include_router(router)\n    return application\n",
            false,
            &mut scan,
        );
        let found: Vec<String> = scan.apps.iter().map(|a| a.value.target()).collect();
        assert_eq!(found, ["app.core.setup:create_application()"]);
    }

    #[test]
    fn an_app_made_from_the_projects_own_subclass_is_found() {
        let mut scan = Scan::default();
        scan_file(
            Path::new("ctf/__init__.py"),
            "from flask import Flask\n\nclass CTFdFlask(Flask):\n    pass\n\ndef create_app(config=None):\n    app = CTFdFlask(__name__)\n    return app\n",
            false,
            &mut scan,
        );
        scan_file(
            Path::new("plain.py"),
            "from ctf import CTFdFlask\nsite = CTFdFlask(__name__)\n",
            false,
            &mut scan,
        );
        let found: Vec<String> = scan.apps.iter().map(|a| a.value.target()).collect();
        assert_eq!(found, ["ctf:create_app()", "plain:site"]);
        assert!(
            scan.apps
                .iter()
                .all(|a| a.value.framework == Framework::Flask)
        );
    }

    fn scan_text(path: &str, text: &str) -> Scan {
        let mut scan = Scan::default();
        scan_file(Path::new(path), text, false, &mut scan);
        scan.health_routes =
            crate::routes::health_routes(&[(PathBuf::from(path), text.to_owned())], false);
        scan
    }

    #[test]
    fn a_module_level_object_made_by_a_factory_is_served_instead_of_the_factory() {
        let mut scan = Scan::default();
        scan_file(
            Path::new("app/main.py"),
            "from fastapi import FastAPI\n\ndef create_application() -> FastAPI:\n    application = FastAPI()\n    return application\n\napp = create_application()\n\n@app.on_event(\"startup\")\nasync def startup():\n    pass\n",
            false,
            &mut scan,
        );
        adopt_factory_calls(&mut scan);
        let targets: Vec<String> = scan.apps.iter().map(|a| a.value.target()).collect();
        assert_eq!(targets, ["app.main:app"]);
        assert_eq!(scan.apps[0].value.framework, Framework::FastApi);
        assert_eq!(scan.apps[0].source.line, Some(7));

        // Across modules: microblog.py imports the package's factory and calls it.
        let mut scan = Scan::default();
        scan_file(
            Path::new("blog/__init__.py"),
            "from flask import Flask\n\ndef create_app(config_class=None):\n    app = Flask(__name__)\n    return app\n",
            false,
            &mut scan,
        );
        scan_file(
            Path::new("microblog.py"),
            "import sqlalchemy as sa\nfrom blog import create_app, db\n\napp = create_app()\nsettings = Settings()\n",
            false,
            &mut scan,
        );
        adopt_factory_calls(&mut scan);
        let targets: Vec<String> = scan.apps.iter().map(|a| a.value.target()).collect();
        assert_eq!(targets, ["microblog:app"]);

        // A function of the same name that the module neither defines nor imports is not it.
        let mut scan = Scan::default();
        scan_file(
            Path::new("web.py"),
            "from flask import Flask\n\ndef create_app():\n    app = Flask(__name__)\n    return app\n",
            false,
            &mut scan,
        );
        scan_file(
            Path::new("tools.py"),
            "from other import thing\n\napp = create_app()\n",
            false,
            &mut scan,
        );
        adopt_factory_calls(&mut scan);
        let targets: Vec<String> = scan.apps.iter().map(|a| a.value.target()).collect();
        assert_eq!(targets, ["web:create_app()"]);
    }

    #[test]
    fn finds_module_level_flask_app_and_port() {
        let scan = scan_text(
            "app.py",
            "import os\nfrom flask import Flask\n\napp = Flask(__name__)\n\n@app.get('/healthz')\ndef health():\n    return 'ok'\n\nif __name__ == '__main__':\n    app.run(host='0.0.0.0', port=5000)\n",
        );
        assert_eq!(scan.apps.len(), 1);
        assert_eq!(scan.apps[0].value.target(), "app:app");
        assert_eq!(scan.apps[0].source.line, Some(4));
        assert_eq!(scan.ports[0].value, 5000);
        assert_eq!(scan.health_routes[0].value, "/healthz");
    }

    #[test]
    fn finds_flask_factory_in_package() {
        let scan = scan_text(
            "quotes/__init__.py",
            "from flask import Flask\n\n\ndef create_app(config=None):\n    app = Flask(__name__)\n    # routes\n    return app\n",
        );
        assert_eq!(scan.apps[0].value.target(), "quotes:create_app()");
        assert_eq!(scan.apps[0].value.framework, Framework::Flask);
    }

    #[test]
    fn class_name_without_framework_import_is_not_an_app() {
        let scan = scan_text("x.py", "from mylib import Flask\napp = Flask()\n");
        assert!(scan.apps.is_empty());
    }

    #[test]
    fn commented_out_code_reads_no_setting() {
        let scan = scan_text(
            "config.py",
            "import os\n# uncomment for postgres\n# url = os.environ['DATABASE_URL']\n\
             KEY = os.getenv('SECRET_KEY', 'x')  # os.environ['OTHER']\n",
        );
        let names: Vec<&str> = scan.env.iter().map(|f| f.value.name.as_str()).collect();
        assert_eq!(names, ["SECRET_KEY"]);
    }

    #[test]
    fn fastapi_in_src_layout_and_env_defaults() {
        let scan = scan_text(
            "src/notes/main.py",
            "import os\nfrom fastapi import FastAPI\nDATA_DIR = os.environ.get(\"NOTES_DATA_DIR\", \"/data\")\nTOKEN = os.environ[\"API_TOKEN\"]\nWORKERS = os.getenv('WORKERS', 2)\napp = FastAPI()\n",
        );
        assert_eq!(scan.apps[0].value.target(), "notes.main:app");
        let env: Vec<(String, Option<String>)> = scan
            .env
            .iter()
            .map(|f| (f.value.name.clone(), f.value.default.clone()))
            .collect();
        assert_eq!(
            env,
            vec![
                ("NOTES_DATA_DIR".into(), Some("/data".into())),
                ("API_TOKEN".into(), None),
                ("WORKERS".into(), Some("2".into())),
            ]
        );
        assert!(is_data_dir_setting(&scan.env[0].value));
        assert!(!is_data_dir_setting(&scan.env[1].value));
    }

    #[test]
    fn a_call_continued_on_the_next_line_is_read_whole() {
        let scan = scan_text(
            "locallibrary/settings.py",
            "import os\nSECRET_KEY = os.environ.get(\n    'DJANGO_SECRET_KEY', 'django-insecure-x')  # dev only\nDEBUG = os.getenv(  # the flag\n    \"DJANGO_DEBUG\",\n    \"False\",\n)\nif 'DATABASE_URL' in os.environ:\n    DATABASES = {}\n",
        );
        let env: Vec<(&str, Option<&str>, bool, Option<usize>)> = scan
            .env
            .iter()
            .map(|f| {
                (
                    f.value.name.as_str(),
                    f.value.default.as_deref(),
                    f.value.required,
                    f.source.line,
                )
            })
            .collect();
        assert_eq!(
            env,
            [
                (
                    "DJANGO_SECRET_KEY",
                    Some("django-insecure-x"),
                    false,
                    Some(2)
                ),
                ("DJANGO_DEBUG", Some("False"), false, Some(4)),
                ("DATABASE_URL", None, false, Some(8)),
            ]
        );
    }

    #[test]
    fn reads_the_code_can_do_without_are_optional() {
        let scan = scan_text(
            "settings.py",
            "import os\nSENTRY = os.environ.get(\"SENTRY_DSN\")\nif os.getenv(\"USE_S3\"):\n    BUCKET = os.environ[\"USE_S3\"]\nif \"CSP_SRC\" in os.environ:\n    CSP = os.environ.get(\"CSP_SRC\").split(\",\")\nHOSTS = os.environ.get(\"ALLOWED_HOSTS\").split(\",\")\nWORKERS = int(os.getenv(\"WORKERS\"))\nREDIS = os.environ.get(\"REDIS_TLS_URL\", os.environ.get(\"REDIS_URL\"))\nLEVEL = os.getenv(\"LOG_LEVEL\") or \"info\"\nKEY = os.environ[\"API_KEY\"]\nif (\n    \"CDN_TOKEN\" in os.environ\n):\n    CDN = {\n        \"zone\": os.environ[\"CDN_ZONE\"],\n    }\nSECRET_KEY = os.environ.get(\"DJANGO_KEY\")\nos.environ[\"TZ\"] = \"UTC\"\n",
        );
        let env: Vec<(&str, Option<&str>, bool)> = scan
            .env
            .iter()
            .map(|f| {
                (
                    f.value.name.as_str(),
                    f.value.default.as_deref(),
                    f.value.required,
                )
            })
            .collect();
        assert_eq!(
            env,
            vec![
                ("SENTRY_DSN", None, false),
                ("USE_S3", None, false),
                ("USE_S3", None, false),
                ("CSP_SRC", None, false),
                ("CSP_SRC", None, false),
                ("ALLOWED_HOSTS", None, true),
                ("WORKERS", None, true),
                ("REDIS_TLS_URL", None, false),
                ("REDIS_URL", None, false),
                ("LOG_LEVEL", Some("info"), false),
                ("API_KEY", None, true),
                ("CDN_TOKEN", None, false),
                ("CDN_ZONE", None, false),
                ("DJANGO_KEY", None, true),
            ]
        );
    }

    #[test]
    fn data_dir_settings() {
        let var = |n: &str, d: &str| EnvVar::optional(n, Some(d.into()));
        assert!(is_data_dir_setting(&var("DATA_DIR", "/data")));
        assert!(is_data_dir_setting(&var("UPLOAD_FOLDER", "uploads")));
        assert!(!is_data_dir_setting(&var("TEMPLATE_DIR", "templates")));
        assert!(!is_data_dir_setting(&var("SECRET_KEY", "x")));
        assert!(!is_data_dir_setting(&var("FILE_UPLOAD_STORAGE", "local")));
        assert!(is_data_dir_setting(&var("UPLOAD_STORAGE", "/srv/uploads")));
    }

    #[test]
    fn starlette_and_django_routes() {
        let scan = scan_text(
            "main.py",
            "from starlette.applications import Starlette\nfrom starlette.routing import Route\nroutes = [Route('/health', health)]\napp = Starlette(routes=routes)\n",
        );
        assert_eq!(scan.apps[0].value.framework, Framework::Starlette);
        assert_eq!(scan.health_routes[0].value, "/health");
        let scan = scan_text(
            "site/urls.py",
            "urlpatterns = [path('healthz/', views.health)]\n",
        );
        assert_eq!(scan.health_routes[0].value, "/healthz/");
    }

    #[test]
    fn wsgi_environ_is_not_the_environment() {
        let scan = scan_text(
            "app.py",
            "def application(environ, start_response):\n    path = environ.get('PATH_INFO', '/')\n",
        );
        assert!(scan.env.is_empty());
        let scan = scan_text(
            "cfg.py",
            "from os import environ, getenv\nA = environ.get('A_SETTING', 'x')\nB = getenv('B_SETTING')\n",
        );
        let names: Vec<&str> = scan.env.iter().map(|f| f.value.name.as_str()).collect();
        assert_eq!(names, ["A_SETTING", "B_SETTING"]);
    }

    #[test]
    fn plain_wsgi_and_asgi_callables() {
        let scan = scan_text(
            "wsgi.py",
            "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n",
        );
        assert_eq!(scan.apps[0].value.framework, Framework::Wsgi);
        assert_eq!(scan.apps[0].value.target(), "wsgi:application");
        let scan = scan_text(
            "asgi.py",
            "async def app(scope, receive, send):\n    pass\n",
        );
        assert_eq!(scan.apps[0].value.framework.interface(), Interface::Asgi);
        assert_eq!(scan.apps[0].value.target(), "asgi:app");
    }

    #[test]
    fn module_names() {
        assert_eq!(
            module_name(Path::new("src/inventory/__init__.py"), false),
            "inventory"
        );
        // `src/__init__.py` makes `src` a package of its own (`from src.db import models`).
        assert_eq!(module_name(Path::new("src/__init__.py"), true), "src");
        assert_eq!(
            module_name(Path::new("src/books/routes.py"), true),
            "src.books.routes"
        );
        assert_eq!(module_name(Path::new("app.py"), false), "app");
        assert_eq!(
            module_name(Path::new("svc/web/api.py"), false),
            "svc.web.api"
        );
    }
}
