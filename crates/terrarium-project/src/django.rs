//! Django projects: `manage.py`, the settings module, `WSGI_APPLICATION`, static and media roots.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::code::{App, AppObject, EnvVar, Framework};
use crate::error::DetectError;
use crate::{Fact, Source};

/// What terrarium knows about a Django project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DjangoProject {
    /// The settings module (`mysite.settings`), from `manage.py`.
    pub settings_module: Fact<String>,
    /// The WSGI application path (`mysite.wsgi.application`).
    pub wsgi_application: Fact<String>,
    /// `STATIC_ROOT` is set, so `collectstatic` runs at build time.
    pub static_root: Option<Fact<String>>,
    /// `MEDIA_ROOT` read from the environment: user uploads, a data directory.
    pub media_root: Option<Fact<EnvVar>>,
}

impl DjangoProject {
    /// The WSGI application as an [`App`].
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
            },
            self.wsgi_application.source.clone(),
        )
    }
}

static SETTINGS_DEFAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']"#).expect("static regex")
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

/// Detect a Django project from `manage.py` and its settings module.
pub(crate) fn detect(root: &Path, files: &[PathBuf]) -> Result<Option<DjangoProject>, DetectError> {
    let manage = Path::new("manage.py");
    // Python source is read like the code scan reads it: bytes that are not UTF-8 are replaced.
    let Ok(text) =
        std::fs::read(root.join(manage)).map(|b| String::from_utf8_lossy(&b).into_owned())
    else {
        return Ok(None);
    };
    let Some((line_no, settings)) = text.lines().enumerate().find_map(|(i, l)| {
        SETTINGS_DEFAULT
            .captures(l)
            .map(|c| (i + 1, c[1].to_string()))
    }) else {
        return Ok(None);
    };
    let settings_module = Fact::new(settings.clone(), Source::line(manage, line_no));
    let settings_path = files
        .iter()
        .find(|f| {
            let module = crate::code::module_name(f);
            module == settings
        })
        .cloned()
        .ok_or_else(|| {
            DetectError::malformed(
                manage,
                Some(line_no),
                format!("settings module `{settings}` not found in the project"),
                "fix DJANGO_SETTINGS_MODULE in manage.py, or set `command` in [tool.terrarium]",
            )
        })?;
    let settings_text = std::fs::read(root.join(&settings_path))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|source| DetectError::Read {
            path: settings_path.clone(),
            source,
        })?;
    let mut wsgi = None;
    let mut static_root = None;
    let mut media_root = None;
    for (index, line) in settings_text.lines().enumerate() {
        let source = Source::line(&settings_path, index + 1);
        if let Some(c) = WSGI.captures(line) {
            wsgi = Some(Fact::new(c[1].to_string(), source.clone()));
        }
        if let Some(c) = STATIC_ROOT.captures(line)
            && c[1].trim() != "None"
        {
            static_root = Some(Fact::new(c[1].trim().to_string(), source.clone()));
        }
        if let Some(c) = MEDIA_ROOT_ENV.captures(line) {
            media_root = Some(Fact::new(
                EnvVar::optional(&c[1], c.get(2).map(|m| m.as_str().to_string())),
                source,
            ));
        }
    }
    let wsgi_application = match wsgi {
        Some(w) => w,
        None => {
            let package = settings
                .rsplit_once('.')
                .map(|(p, _)| p)
                .unwrap_or(&settings);
            Fact::new(
                format!("{package}.wsgi.application"),
                Source::file(&settings_path),
            )
        }
    };
    Ok(Some(DjangoProject {
        settings_module,
        wsgi_application,
        static_root,
        media_root,
    }))
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
        let files = vec![PathBuf::from("mysite/settings.py")];
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
}
