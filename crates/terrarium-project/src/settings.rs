//! Settings read through a library rather than `os.environ`: `environs` and `django-environ`
//! (`env("X")`, `env.int("X", default=5)`), Starlette's `Config` (`config("X", cast=int,
//! default=5)`) and pydantic's `BaseSettings` classes (one environment variable per field,
//! upper-cased, after the class's `env_prefix`).
//!
//! Like the rest of the scan this reads lines, not Python: it recognises the documented idioms
//! and leaves anything cleverer to `[tool.terrarium]`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::code::EnvVar;
use crate::{Fact, Source};

regex!(
    ENV_OBJECT,
    r"^([A-Za-z_]\w*)\s*(?::\s*[\w.]+\s*)?=\s*(?:environs\.|environ\.|starlette\.config\.)?(Env|Config)\("
);
regex!(
    ENV_CALL,
    r#"(?:^|[^\w.])([A-Za-z_]\w*)(?:\.(str|int|bool|float|decimal|list|tuple|dict|json|url|db|db_url|cache|cache_url|email|email_url|search_url|path|date|datetime|time|timedelta|log_level|uuid|enum|bytes|NOTSET))?\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*(.*)$"#
);
regex!(
    ENV_DEFAULT_NAME,
    r"(?:^|[^\w.])([A-Za-z_]\w*)\.(db|db_url|cache|cache_url|email|email_url|search_url)\(\s*(\)|[a-z_]+\s*=.*)$"
);
regex!(
    SCHEMA_ENTRY,
    r"\b([A-Z][A-Z0-9_]*)\s*=\s*\(\s*[\w.]+\s*,\s*([^()]*?)\s*\)"
);
regex!(CLASS, r"^class\s+([A-Za-z_]\w*)\s*\(([^)]*)\)\s*:");
regex!(
    FIELD,
    r"^([A-Za-z_]\w*)\s*:\s*([^=]+?)\s*(?:=\s*(.+?))?\s*(?:#.*)?$"
);
regex!(ENV_PREFIX, r#"env_prefix\s*[=:]\s*["']([^"']*)["']"#);
regex!(
    LITERAL,
    r#"^(?:"([^"]*)"|'([^']*)'|(-?\d+(?:\.\d+)?|True|False))$"#
);
regex!(
    FIELD_NAME,
    r#"\b(?:validation_alias|alias|env)\s*=\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"#
);

/// The settings `files` (each a path and its text) read through environs, django-environ and
/// pydantic settings classes.
pub(crate) fn scan(files: &[(PathBuf, String)]) -> Vec<Fact<EnvVar>> {
    let env_objects: BTreeMap<String, Reader> = files
        .iter()
        .flat_map(|(_, text)| text.lines())
        .filter_map(|line| {
            let c = ENV_OBJECT.captures(line)?;
            let reader = if &c[2] == "Config" {
                Reader::Starlette
            } else {
                Reader::Environs
            };
            Some((c[1].to_owned(), reader))
        })
        .collect();
    let schema: BTreeMap<String, Option<String>> = files
        .iter()
        .flat_map(|(_, text)| schema_defaults(text))
        .collect();
    let settings_classes = settings_classes(files);
    let mut found = Vec::new();
    for (rel, text) in files {
        let objects: Vec<(&str, Reader)> = env_objects
            .iter()
            .map(|(name, reader)| (name.as_str(), *reader))
            .filter(|(name, _)| defines_or_imports(text, name))
            .collect();
        if !objects.is_empty() {
            env_calls(rel, text, &objects, &schema, &mut found);
        }
        settings_fields(rel, text, &settings_classes, &objects, &mut found);
    }
    found
}

/// Which library an object that reads settings comes from: their calls take a default in
/// different places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// environs' and django-environ's `Env`: `env("X", "fallback")`, `env.int("X", default=5)`.
    Environs,
    /// Starlette's `Config`: `config("X", cast=int, default=5)`, positionally `(key, cast,
    /// default)`.
    Starlette,
}

/// Whether `text` binds `name` itself (`env = Env()`) or imports it (`from config.env import env`,
/// or a star import, as settings modules do: `from .base import *`).
fn defines_or_imports(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        if ENV_OBJECT.captures(line).is_some_and(|c| &c[1] == name) {
            return true;
        }
        let line = line.trim_start();
        if line.starts_with("from ")
            && line
                .split('#')
                .next()
                .is_some_and(|l| l.trim_end().ends_with("import *"))
        {
            return true;
        }
        line.starts_with("from ")
            && line.split_once(" import ").is_some_and(|(_, names)| {
                names
                    .trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace())
                    .split(',')
                    .any(|n| {
                        let mut words = n.split_whitespace();
                        match (words.next(), words.next(), words.next()) {
                            (Some(_), Some("as"), Some(alias)) => alias == name,
                            (Some(n), None, None) => n == name,
                            _ => false,
                        }
                    })
            })
    })
}

/// django-environ's schema: `environ.Env(DEBUG=(bool, False), GIT_SHA=(str, "dev"))` gives
/// each variable its default (`None` when the default is `None` or an expression).
fn schema_defaults(text: &str) -> Vec<(String, Option<String>)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if ENV_OBJECT.is_match(line) {
            let call = crate::routes::call_text(&lines, index);
            for c in SCHEMA_ENTRY.captures_iter(&call) {
                out.push((c[1].to_owned(), literal(c[2].trim())));
            }
        }
    }
    out
}

/// The variable django-environ reads when a typed call names none: `env.db()` reads
/// `DATABASE_URL`.
fn default_variable(method: &str) -> &'static str {
    match method {
        "db" | "db_url" => "DATABASE_URL",
        "cache" | "cache_url" => "CACHE_URL",
        "email" | "email_url" => "EMAIL_URL",
        _ => "SEARCH_URL",
    }
}

/// `env("X")`, `env.int("X", default=5)`, `env.str("X", "fallback")` and `env.db()` in one
/// file; a variable the `Env(…)` schema gives a default has it.
fn env_calls(
    rel: &Path,
    text: &str,
    objects: &[(&str, Reader)],
    schema: &BTreeMap<String, Option<String>>,
    found: &mut Vec<Fact<EnvVar>>,
) {
    let reader = |name: &str| {
        objects
            .iter()
            .find(|(object, _)| *object == name)
            .map(|(_, reader)| *reader)
    };
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        // Starlette's `Config` has no typed methods (`config.int(…)` is something else).
        let call = ENV_CALL.captures(line).and_then(|c| {
            let by = reader(&c[1])?;
            (c.get(2).is_none() || by == Reader::Environs).then(|| {
                (
                    c[3].to_owned(),
                    c.get(4).map_or("", |m| m.as_str()).to_owned(),
                    by,
                )
            })
        });
        let (name, rest, read_by) = match (call, ENV_DEFAULT_NAME.captures(line)) {
            (Some(call), _) => call,
            (_, Some(c)) if reader(&c[1]) == Some(Reader::Environs) => {
                // No name: the keyword arguments follow the parenthesis directly.
                let rest = c.get(3).map_or("", |m| m.as_str());
                (
                    default_variable(&c[2]).to_owned(),
                    if rest.starts_with(')') {
                        String::new()
                    } else {
                        format!(", {rest}")
                    },
                    Reader::Environs,
                )
            }
            _ => continue,
        };
        let name = name.as_str();
        let default =
            call_default(&rest, read_by == Reader::Starlette).or_else(|| schema.get(name).cloned());
        let var = match default {
            Some(default) => EnvVar::optional(name, default),
            None if crate::code::in_conditional_block(&lines, index) => {
                EnvVar::optional(name, None)
            }
            None => EnvVar::required(name),
        };
        found.push(Fact::new(var, Source::line(rel, index + 1)));
    }
}

/// The fallback of a call whose arguments after the name are `rest` (`, default=5)`):
/// `Some(Some(text))` for a literal default, `Some(None)` for a default that is an expression
/// or `None`, `None` when there is no default. A second positional argument is environs'
/// default, unless it is a type (django-environ's cast: `env("X", int)`); `starlette`'s calls
/// take the cast second and the default third.
fn call_default(rest: &str, starlette: bool) -> Option<Option<String>> {
    let args = rest.trim_start().strip_prefix(',')?;
    let arguments = split_arguments(args);
    if let Some(value) = arguments
        .iter()
        .find_map(|a| a.trim().strip_prefix("default").map(str::trim_start))
        .and_then(|a| a.strip_prefix('='))
    {
        return Some(literal(value.trim()));
    }
    if starlette {
        let default = arguments.get(1)?.trim();
        return (!default.is_empty() && !default.contains('=')).then(|| literal(default));
    }
    let first = arguments.first()?.trim();
    let cast = matches!(
        first,
        "str" | "int" | "bool" | "float" | "list" | "tuple" | "dict" | ""
    ) || first.contains('=');
    (!cast).then(|| literal(first))
}

/// The top-level arguments of a call, up to its closing parenthesis.
fn split_arguments(text: &str) -> Vec<&str> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut start = 0;
    let mut out = Vec::new();
    for (i, ch) in text.char_indices() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(ch),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') if depth == 0 => {
                out.push(&text[start..i]);
                return out;
            }
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// A literal's value as text; `None` for `None` or anything that is not a literal.
fn literal(text: &str) -> Option<String> {
    let c = LITERAL.captures(text)?;
    c.get(1)
        .or_else(|| c.get(2))
        .or_else(|| c.get(3))
        .map(|m| m.as_str().to_owned())
}

/// Classes that are pydantic settings: `BaseSettings` subclasses, directly or through other
/// classes of the project.
fn settings_classes(files: &[(PathBuf, String)]) -> BTreeSet<String> {
    let classes: Vec<(String, Vec<String>)> = files
        .iter()
        .flat_map(|(_, text)| text.lines())
        .filter_map(|line| CLASS.captures(line))
        .map(|c| {
            let bases = c[2]
                .split(',')
                .map(|b| b.trim().rsplit('.').next().unwrap_or_default().to_owned())
                .collect();
            (c[1].to_owned(), bases)
        })
        .collect();
    let mut settings: BTreeSet<String> = BTreeSet::from(["BaseSettings".to_owned()]);
    loop {
        let before = settings.len();
        for (name, bases) in &classes {
            if bases.iter().any(|b| settings.contains(b)) {
                settings.insert(name.clone());
            }
        }
        if settings.len() == before {
            break;
        }
    }
    settings.remove("BaseSettings");
    settings
}

/// The fields of every settings class in one file: each an environment variable named
/// `{env_prefix}{FIELD}` (pydantic matches names case-insensitively), optional when it has a
/// default. A field whose default is read by one of `objects` (`SECRET_KEY: str =
/// config("SECRET_KEY")`) is that call's, which [`env_calls`] records with its own default.
fn settings_fields(
    rel: &Path,
    text: &str,
    classes: &BTreeSet<String>,
    objects: &[(&str, Reader)],
    found: &mut Vec<Fact<EnvVar>>,
) {
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let Some(c) = CLASS.captures(line) else {
            continue;
        };
        if !classes.contains(&c[1]) {
            continue;
        }
        let body: Vec<(usize, &str)> = lines
            .iter()
            .enumerate()
            .skip(index + 1)
            .take_while(|(_, l)| l.trim().is_empty() || l.starts_with([' ', '\t']))
            .map(|(i, l)| (i, *l))
            .collect();
        let Some(indent) = body
            .iter()
            .find(|(_, l)| !l.trim().is_empty())
            .map(|(_, l)| l.len() - l.trim_start().len())
        else {
            continue;
        };
        let prefix = body
            .iter()
            .find_map(|(_, l)| ENV_PREFIX.captures(l).map(|p| p[1].to_owned()))
            .unwrap_or_default();
        for (position, (i, field)) in body.iter().enumerate() {
            let own_level = field.len() - field.trim_start().len() == indent;
            // An annotation over several lines (`Annotated[\n …\n] = []`) is read whole.
            let mut statement = field.trim().to_owned();
            for (_, next) in body.iter().skip(position + 1).take(10) {
                let open = statement.matches(['[', '(']).count();
                let closed = statement.matches([']', ')']).count();
                if open <= closed {
                    break;
                }
                statement.push(' ');
                statement.push_str(next.trim());
            }
            let Some(f) = own_level.then(|| FIELD.captures(&statement)).flatten() else {
                continue;
            };
            let (name, annotation) = (&f[1], &f[2]);
            if name.starts_with('_') || name == "model_config" || annotation.contains("ClassVar") {
                continue;
            }
            let value = f.get(3).map(|m| m.as_str().trim());
            let read_by_object = value.is_some_and(|v| {
                objects.iter().any(|(object, _)| {
                    v.strip_prefix(object)
                        .is_some_and(|rest| rest.starts_with(['(', '.']))
                })
            });
            if read_by_object {
                continue;
            }
            let variable = value
                .and_then(|v| FIELD_NAME.captures(v))
                .map(|n| n[1].to_owned())
                .unwrap_or_else(|| format!("{prefix}{name}"))
                .to_ascii_uppercase();
            let var = match value {
                None => EnvVar::required(variable),
                Some(v) if v.starts_with("Field(") => match field_default(v) {
                    Some(default) => EnvVar::optional(variable, default),
                    None => EnvVar::required(variable),
                },
                Some(v) => EnvVar::optional(variable, literal(v)),
            };
            found.push(Fact::new(var, Source::line(rel, *i + 1)));
        }
    }
}

/// The default of `Field(…)`: its `default=`, a first positional argument other than `...`,
/// or `default_factory` (a default that is not a literal); `None` when the field is required.
fn field_default(value: &str) -> Option<Option<String>> {
    let arguments = split_arguments(value.strip_prefix("Field(")?);
    for argument in &arguments {
        let argument = argument.trim();
        if let Some(v) = argument
            .strip_prefix("default")
            .map(str::trim_start)
            .and_then(|a| a.strip_prefix('='))
        {
            return Some(literal(v.trim()));
        }
        if argument.starts_with("default_factory") {
            return Some(None);
        }
    }
    let first = arguments.first()?.trim();
    (!first.is_empty() && first != "..." && !first.contains('=')).then(|| literal(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(files: &[(&str, &str)]) -> Vec<(String, Option<String>, bool)> {
        let files: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        scan(&files)
            .into_iter()
            .map(|f| (f.value.name, f.value.default, f.value.required))
            .collect()
    }

    #[test]
    fn environs_and_django_environ_calls() {
        let found = vars(&[
            ("config/env.py", "import environ\n\nenv = environ.Env()\n"),
            (
                "config/settings.py",
                "from config.env import BASE_DIR, env\n\nDEBUG = env.bool(\"DJANGO_DEBUG\", default=False)\nSECRET_KEY = env(\"DJANGO_SECRET_KEY\")\nDB = env.db(\"DATABASE_URL\", default=\"sqlite:///db.sqlite3\")\nTTL = env.int(\"TTL\", int)\nPAGE = env.int(\"PAGE_SIZE\", 20)\nHOSTS = env.list(\"ALLOWED_HOSTS\", default=[\"localhost\"])\nNAME = env.str(\"SITE_NAME\", \"shop, inc\")\nCORS = env.list(\"CORS\", [\"a\", \"b\"])\n",
            ),
            (
                "config/prod.py",
                "from .settings import *  # noqa\nADMIN = env(\"ADMIN_EMAIL\")\nif STORAGE == \"s3\":\n    BUCKET = env(\"S3_BUCKET\")\n",
            ),
            ("other.py", "env(\"NOT_AN_ENV_OBJECT\")\n"),
        ]);
        assert_eq!(
            found,
            vec![
                ("DJANGO_DEBUG".into(), Some("False".into()), false),
                ("DJANGO_SECRET_KEY".into(), None, true),
                (
                    "DATABASE_URL".into(),
                    Some("sqlite:///db.sqlite3".into()),
                    false
                ),
                ("TTL".into(), None, true),
                ("PAGE_SIZE".into(), Some("20".into()), false),
                ("ALLOWED_HOSTS".into(), None, false),
                ("SITE_NAME".into(), Some("shop, inc".into()), false),
                ("CORS".into(), None, false),
                ("ADMIN_EMAIL".into(), None, true),
                ("S3_BUCKET".into(), None, false),
            ]
        );
    }

    #[test]
    fn django_environ_schema_defaults_and_unnamed_typed_calls() {
        let found = vars(&[(
            "site/settings.py",
            "import environ\n\nenv = environ.Env(\n    DEBUG=(bool, False),\n    GIT_SHA=(str, 'development'),\n    GITHUB_TOKEN=(str, None),\n)\n\nGIT_SHA = env(\"GIT_SHA\")\nGITHUB_TOKEN = env(\"GITHUB_TOKEN\")\nAPI_URL = env(\"API_URL\")\nDATABASES = {\n    'default': env.db(engine=\"x.postgresql\"),\n    'cache': env.cache(default=\"locmem://\"),\n}\n",
        )]);
        assert_eq!(
            found,
            [
                ("GIT_SHA".to_owned(), Some("development".to_owned()), false),
                ("GITHUB_TOKEN".to_owned(), None, false),
                ("API_URL".to_owned(), None, true),
                ("DATABASE_URL".to_owned(), None, true),
                ("CACHE_URL".to_owned(), Some("locmem://".to_owned()), false),
            ]
        );
    }

    #[test]
    fn starlette_config_calls_take_the_cast_second() {
        // FastAPI-boilerplate's shape: a Starlette `Config` of a `.env` no image carries,
        // read as the defaults of a pydantic settings class's fields.
        let found = vars(&[(
            "app/core/config.py",
            "import os\nfrom pydantic_settings import BaseSettings\nfrom starlette.config import Config\n\nconfig = Config(os.path.join(\"..\", \".env\"))\n\nclass CryptSettings(BaseSettings):\n    SECRET_KEY: str = config(\"SECRET_KEY\")\n    ALGORITHM: str = config(\"ALGORITHM\", default=\"HS256\")\n    TTL: int = config(\"TTL\", int, 30)\n    DEBUG: bool = config(\"DEBUG\", cast=bool)\n    HOSTS = config(\"HOSTS\", CommaSeparatedStrings)\n",
        )]);
        let mut required: Vec<&str> = found
            .iter()
            .filter(|(_, _, required)| *required)
            .map(|(name, _, _)| name.as_str())
            .collect();
        required.sort();
        required.dedup();
        assert_eq!(required, ["DEBUG", "HOSTS", "SECRET_KEY"]);
        assert!(found.contains(&("ALGORITHM".into(), Some("HS256".into()), false)));
        assert!(found.contains(&("TTL".into(), Some("30".into()), false)));
        // The fields are those calls, read once: not also optional fields with a computed
        // default (which would clear the calls' defaults and requirements).
        assert_eq!(found.len(), 5, "{found:?}");
    }

    #[test]
    fn environs_env_in_the_same_file() {
        let found = vars(&[(
            "app.py",
            "from environs import Env\nenv = Env()\nenv.read_env()\nGREETING = env.str(\"GREETING\", \"hello\")\nTOKEN = env(\"API_TOKEN\")\n",
        )]);
        assert_eq!(
            found,
            vec![
                ("GREETING".into(), Some("hello".into()), false),
                ("API_TOKEN".into(), None, true),
            ]
        );
    }

    #[test]
    fn pydantic_settings_fields() {
        let found = vars(&[
            (
                "app/core/base.py",
                "from pydantic_settings import BaseSettings, SettingsConfigDict\n\nclass Base(BaseSettings):\n    model_config = SettingsConfigDict(env_prefix=\"shop_\", env_file=\".env\")\n    debug: bool = False\n",
            ),
            (
                "app/core/config.py",
                "from pydantic import Field\nfrom app.core.base import Base\n\n\nclass Settings(Base):\n    model_config = SettingsConfigDict(env_prefix=\"shop_\")\n    API_V1_STR: str = \"/api/v1\"\n    secret_key: str\n    sentry_dsn: str | None = None\n    workers: int = Field(4, ge=1)\n    origins: Annotated[\n        list[str], BeforeValidator(split)\n    ] = []\n    db: str = Field(..., validation_alias=\"DATABASE_URL\")\n    tags: list[str] = Field(default_factory=list)\n    _cache: dict = {}\n\n    @property\n    def url(self) -> str:\n        x: int = 5\n        return self.db\n\nclass NotSettings:\n    name: str\n",
            ),
        ]);
        assert_eq!(
            found,
            vec![
                ("SHOP_DEBUG".into(), Some("False".into()), false),
                ("SHOP_API_V1_STR".into(), Some("/api/v1".into()), false),
                ("SHOP_SECRET_KEY".into(), None, true),
                ("SHOP_SENTRY_DSN".into(), None, false),
                ("SHOP_WORKERS".into(), Some("4".into()), false),
                ("SHOP_ORIGINS".into(), None, false),
                ("DATABASE_URL".into(), None, true),
                ("SHOP_TAGS".into(), None, false),
            ]
        );
    }
}
