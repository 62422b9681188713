//! Django projects: `manage.py`, the settings module, `WSGI_APPLICATION`, static and media roots.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::code::{App, AppObject, EnvVar, Framework};
use crate::error::DetectError;
use crate::{Fact, Source};

/// What terrarium knows about a Django project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DjangoProject {
    /// The directory of `manage.py`, relative to the project root (empty when it is the root):
    /// Django's modules are imported from there.
    pub dir: PathBuf,
    /// The settings module (`mysite.settings`), from `manage.py` (else `wsgi.py`).
    pub settings_module: Fact<String>,
    /// The WSGI application path (`mysite.wsgi.application`): `WSGI_APPLICATION` when its
    /// module exists, else the project's `wsgi.py`; always a module that exists.
    pub wsgi_application: Fact<String>,
    /// `STATIC_ROOT` is set, so `collectstatic` runs at build time.
    pub static_root: Option<Fact<String>>,
    /// `MEDIA_ROOT` read from the environment: user uploads, a data directory.
    pub media_root: Option<Fact<EnvVar>>,
}

impl DjangoProject {
    /// The WSGI application as an [`App`] (its module relative to [`DjangoProject::dir`]).
    pub fn app(&self) -> Fact<App> {
        let (module, object) = self
            .wsgi_application
            .value
            .rsplit_once('.')
            .unwrap_or((self.wsgi_application.value.as_str(), "application"));
        Fact::new(
            App {
                framework: Framework::Django,
                module: module.to_string(),
                object: AppObject::Variable(object.to_string()),
                import_dir: None,
            },
            self.wsgi_application.source.clone(),
        )
    }

    /// `manage.py` as a path from the project root (`manage.py`, `web/manage.py`).
    pub fn manage_py(&self) -> PathBuf {
        self.dir.join("manage.py")
    }
}

static SETTINGS_DEFAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"DJANGO_SETTINGS_MODULE["']\s*(?:,|\]\s*=)\s*["']([\w.]+)["']"#)
        .expect("static regex")
});
static WSGI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^WSGI_APPLICATION\s*=\s*["']([\w.]+)["']"#).expect("static regex")
});
static STATIC_ROOT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^STATIC_ROOT\s*=\s*(.+)$").expect("static regex"));
static MEDIA_ROOT_ENV: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^MEDIA_ROOT\s*=.*(?:environ\.get|getenv)\(\s*["'](\w+)["']\s*(?:,\s*["']([^"']*)["'])?"#,
    )
    .expect("static regex")
});
static STAR_IMPORT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*from\s+(\.*[\w.]*)\s+import\s+\*").expect("static regex"));

/// How deep `manage.py` may sit below the project root (`web/manage.py`, `src/site/manage.py`).
const MANAGE_DEPTH: usize = 3;

/// The Python files of the project as modules importable from `dir` (`web/config/wsgi.py` is
/// `config.wsgi` from `web`).
struct Modules<'a> {
    dir: &'a Path,
    files: &'a [PathBuf],
}

impl Modules<'_> {
    /// The file of a dotted module: `a/b.py` or `a/b/__init__.py` under the directory.
    fn file(&self, module: &str) -> Option<&PathBuf> {
        let base = self.dir.join(module.replace('.', "/"));
        let plain = base.with_extension("py");
        let package = base.join("__init__.py");
        self.files.iter().find(|f| **f == plain || **f == package)
    }

    /// The module of a file under the directory.
    fn module(&self, file: &Path) -> Option<String> {
        let rel = file.strip_prefix(self.dir).ok()?;
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let last = parts.pop()?;
        let stem = last.strip_suffix(".py")?;
        if stem != "__init__" {
            parts.push(stem.to_owned());
        }
        Some(parts.join("."))
    }
}

/// A setting line: the file it is in, its 1-based number and its text.
type SettingLine = (PathBuf, usize, String);

/// Detect a Django project from `manage.py` (at the root or a few directories down) and its
/// settings module, following `from .base import *` into the modules it builds on.
pub(crate) fn detect(root: &Path, files: &[PathBuf]) -> Result<Option<DjangoProject>, DetectError> {
    let Some((manage, text)) = find_manage_py(root, files) else {
        return Ok(None);
    };
    let dir = manage.parent().map(Path::to_path_buf).unwrap_or_default();
    let modules = Modules { dir: &dir, files };
    let settings_module = match settings_default(&manage, &text) {
        Some(fact) => fact,
        None => {
            // manage.py leaves it to the environment: the WSGI module sets it for the server.
            let Some(fact) = files
                .iter()
                .filter(|f| f.starts_with(&dir) && f.file_name().is_some_and(|n| n == "wsgi.py"))
                .find_map(|f| {
                    let text = crate::code::read_source(root, f).ok()?;
                    settings_default(f, &text)
                })
            else {
                return Ok(None);
            };
            fact
        }
    };
    let settings = &settings_module.value;
    let settings_path = modules.file(settings).cloned().ok_or_else(|| {
        DetectError::malformed(
            &settings_module.source.file,
            settings_module.source.line,
            format!("settings module `{settings}` not found in the project"),
            "fix DJANGO_SETTINGS_MODULE, or set `command` in [tool.terrarium]",
        )
    })?;
    let mut lines = Vec::new();
    settings_lines(root, &modules, &settings_path, &mut Vec::new(), &mut lines)?;

    let mut wsgi = None;
    let mut static_root = None;
    let mut media_root = None;
    for (file, number, line) in &lines {
        let source = Source::line(file, *number);
        if let Some(c) = WSGI.captures(line) {
            wsgi = Some(Fact::new(c[1].to_string(), source.clone()));
        }
        if let Some(c) = STATIC_ROOT.captures(line) {
            static_root =
                (c[1].trim() != "None").then(|| Fact::new(c[1].trim().to_string(), source.clone()));
        }
        if let Some(c) = MEDIA_ROOT_ENV.captures(line) {
            media_root = Some(Fact::new(
                EnvVar::optional(&c[1], c.get(2).map(|m| m.as_str().to_string())),
                source,
            ));
        }
    }
    let wsgi_application = match wsgi.filter(|w| {
        w.value
            .rsplit_once('.')
            .is_some_and(|(module, _)| modules.file(module).is_some())
    }) {
        Some(w) => w,
        None => find_wsgi_module(root, &modules, settings)?.ok_or_else(|| {
            DetectError::malformed(
                &settings_path,
                None,
                format!(
                    "no WSGI module found: WSGI_APPLICATION is not set in `{settings}` (or names a module that doesn't exist) and no wsgi.py calls get_wsgi_application()"
                ),
                "set WSGI_APPLICATION to your wsgi module's `application`, or set `command` in [tool.terrarium]",
            )
        })?,
    };
    Ok(Some(DjangoProject {
        dir,
        settings_module,
        wsgi_application,
        static_root,
        media_root,
    }))
}

/// `manage.py` at the root, else the shallowest one a few directories down that names its
/// settings module; with its text.
fn find_manage_py(root: &Path, files: &[PathBuf]) -> Option<(PathBuf, String)> {
    let at_root = Path::new("manage.py");
    if let Ok(text) = crate::code::read_source(root, at_root) {
        return Some((at_root.to_path_buf(), text));
    }
    let mut nested: Vec<&PathBuf> = files
        .iter()
        .filter(|f| {
            f.file_name().is_some_and(|n| n == "manage.py")
                && f.components().count() <= MANAGE_DEPTH + 1
        })
        .collect();
    nested.sort_by_key(|f| (f.components().count(), (*f).clone()));
    nested.into_iter().find_map(|f| {
        let text = crate::code::read_source(root, f).ok()?;
        SETTINGS_DEFAULT.is_match(&text).then(|| (f.clone(), text))
    })
}

/// The `DJANGO_SETTINGS_MODULE` a file sets by default, with its line.
fn settings_default(file: &Path, text: &str) -> Option<Fact<String>> {
    text.lines().enumerate().find_map(|(i, l)| {
        SETTINGS_DEFAULT
            .captures(l)
            .map(|c| Fact::new(c[1].to_string(), Source::line(file, i + 1)))
    })
}

/// The lines of a settings file in the order Python runs them, with each `from .base import *`
/// replaced by the lines of the module it imports (a module that doesn't exist, like an
/// optional `local.py`, is skipped).
fn settings_lines(
    root: &Path,
    modules: &Modules<'_>,
    file: &Path,
    seen: &mut Vec<PathBuf>,
    out: &mut Vec<SettingLine>,
) -> Result<(), DetectError> {
    if seen.iter().any(|s| s == file) || seen.len() > 8 {
        return Ok(());
    }
    seen.push(file.to_path_buf());
    let text = crate::code::read_source(root, file)?;
    let module = modules.module(file).unwrap_or_default();
    let is_package = file.file_name().is_some_and(|n| n == "__init__.py");
    for (index, line) in text.lines().enumerate() {
        if let Some(c) = STAR_IMPORT.captures(line) {
            let target = crate::code::absolute_module(&module, is_package, &c[1]);
            if let Some(imported) = modules.file(&target).cloned() {
                settings_lines(root, modules, &imported, seen, out)?;
            }
            continue;
        }
        out.push((file.to_path_buf(), index + 1, line.to_string()));
    }
    Ok(())
}

/// The project's WSGI module when `WSGI_APPLICATION` doesn't name one that exists: `wsgi` in
/// the settings module's package or a package above it (`config.settings.dev` tries
/// `config.settings.wsgi`, then `config.wsgi`), else the shallowest `wsgi.py` that calls
/// `get_wsgi_application`.
fn find_wsgi_module(
    root: &Path,
    modules: &Modules<'_>,
    settings: &str,
) -> Result<Option<Fact<String>>, DetectError> {
    let mut package = settings;
    while let Some((parent, _)) = package.rsplit_once('.') {
        let candidate = format!("{parent}.wsgi");
        if let Some(file) = modules.file(&candidate) {
            let text = crate::code::read_source(root, file)?;
            if text.contains("get_wsgi_application") {
                return Ok(Some(Fact::new(
                    format!("{candidate}.application"),
                    Source::file(file),
                )));
            }
        }
        package = parent;
    }
    let mut wsgi_files: Vec<&PathBuf> = modules
        .files
        .iter()
        .filter(|f| f.starts_with(modules.dir) && f.file_name().is_some_and(|n| n == "wsgi.py"))
        .collect();
    wsgi_files.sort_by_key(|f| (f.components().count(), (*f).clone()));
    for file in wsgi_files {
        let text = crate::code::read_source(root, file)?;
        if text.contains("get_wsgi_application")
            && let Some(module) = modules.module(file)
        {
            return Ok(Some(Fact::new(
                format!("{module}.application"),
                Source::file(file),
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_settings_wsgi_and_static_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("manage.py"),
            "import os\nos.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"mysite.settings\")\n",
        )
        .unwrap();
        std::fs::create_dir(root.join("mysite")).unwrap();
        std::fs::write(
            root.join("mysite/settings.py"),
            "WSGI_APPLICATION = 'mysite.wsgi.application'\nSTATIC_ROOT = BASE_DIR / 'staticfiles'\nMEDIA_ROOT = os.environ.get('MEDIA_ROOT', '/data/media')\n",
        )
        .unwrap();
        std::fs::write(
            root.join("mysite/wsgi.py"),
            "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
        )
        .unwrap();
        let files = vec![
            PathBuf::from("manage.py"),
            PathBuf::from("mysite/settings.py"),
            PathBuf::from("mysite/wsgi.py"),
        ];
        let django = detect(root, &files).unwrap().unwrap();
        assert_eq!(django.app().value.target(), "mysite.wsgi:application");
        assert_eq!(django.static_root.unwrap().source.line, Some(2));
        assert_eq!(
            django.media_root.unwrap().value.default.as_deref(),
            Some("/data/media")
        );
        assert_eq!(django.settings_module.source.line, Some(2));
    }

    #[test]
    fn missing_settings_module_is_an_error_naming_manage_py() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("manage.py"),
            "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'nowhere.settings')\n",
        )
        .unwrap();
        let err = detect(dir.path(), &[]).unwrap_err().to_string();
        assert!(
            err.starts_with("manage.py:1: settings module `nowhere.settings` not found"),
            "{err}"
        );
    }

    fn write(root: &Path, files: &[(&str, &str)]) -> Vec<PathBuf> {
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        crate::code::python_files(root)
    }

    #[test]
    fn settings_packages_follow_star_imports_and_manage_py_may_be_nested() {
        let dir = tempfile::tempdir().unwrap();
        let files = write(
            dir.path(),
            &[
                ("requirements.txt", "django==5.2.8\n"),
                (
                    "web/manage.py",
                    "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings.dev')\n",
                ),
                ("web/shop/__init__.py", ""),
                ("web/shop/settings/__init__.py", ""),
                (
                    "web/shop/settings/base.py",
                    "WSGI_APPLICATION = 'shop.wsgi.application'\nSTATIC_ROOT = BASE_DIR / 'static'\n",
                ),
                (
                    "web/shop/settings/dev.py",
                    "from .base import *  # noqa\nDEBUG = True\ntry:\n    from .local import *\nexcept ImportError:\n    pass\n",
                ),
                (
                    "web/shop/wsgi.py",
                    "import os\nfrom django.core.wsgi import get_wsgi_application\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings.prod')\napplication = get_wsgi_application()\n",
                ),
            ],
        );
        let django = detect(dir.path(), &files).unwrap().unwrap();
        assert_eq!(django.dir, Path::new("web"));
        assert_eq!(django.manage_py(), Path::new("web/manage.py"));
        assert_eq!(django.app().value.target(), "shop.wsgi:application");
        assert_eq!(
            django.wsgi_application.source,
            Source::line("web/shop/settings/base.py", 1)
        );
        assert_eq!(
            django.static_root.unwrap().source,
            Source::line("web/shop/settings/base.py", 2)
        );
    }

    #[test]
    fn a_wsgi_module_is_never_invented() {
        let dir = tempfile::tempdir().unwrap();
        let files = write(
            dir.path(),
            &[
                (
                    "manage.py",
                    "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_a.settings.dev')\n",
                ),
                ("site_a/__init__.py", ""),
                ("site_a/settings/__init__.py", ""),
                ("site_a/settings/dev.py", "DEBUG = True\n"),
                (
                    "site_a/wsgi.py",
                    "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
                ),
            ],
        );
        let django = detect(dir.path(), &files).unwrap().unwrap();
        assert_eq!(django.app().value.target(), "site_a.wsgi:application");
        assert_eq!(
            django.wsgi_application.source,
            Source::file("site_a/wsgi.py")
        );

        std::fs::remove_file(dir.path().join("site_a/wsgi.py")).unwrap();
        let files = crate::code::python_files(dir.path());
        let err = detect(dir.path(), &files).unwrap_err().to_string();
        assert!(
            err.starts_with("site_a/settings/dev.py: no WSGI module found"),
            "{err}"
        );
    }
}
