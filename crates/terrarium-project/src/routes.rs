//! Health-check routes: a route whose last path segment says health (`/health`, `/healthz`,
//! `/health-check/`, `/ping`, `/status`) or whose function's name does, with the prefixes of the
//! routers and blueprints it hangs from (`APIRouter(prefix=…)`, `include_router(…, prefix=…)`,
//! `Blueprint(url_prefix=…)`, `register_blueprint(…)`, Django's `path("api/", include(…))`), so
//! the path is the one a request reaches.
//!
//! A prefix that is not a string literal is looked up as a constant of the project
//! (`settings.API_V1_STR` finds `API_V1_STR: str = "/api/v1"`); a route whose prefix can't be
//! resolved is left out rather than probed at the wrong path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::code::{absolute_module, module_name};
use crate::{Fact, Source};

regex!(
    ROUTER,
    r"^\s*([A-Za-z_]\w*)\s*(?::\s*[\w.\[\]]+\s*)?=\s*(?:[\w.]+\.)?(APIRouter|Blueprint|Router|FastAPI|Flask|Quart|Starlette)\("
);
regex!(
    PREFIX,
    r#"\b(?:url_)?prefix\s*=\s*(r?["'][^"']*["']|[A-Za-z_][\w.]*)"#
);
regex!(
    DECORATOR,
    r#"^\s*@([A-Za-z_]\w*)\.(?:get|route|head|api_route)\(\s*r?["']([^"']*)["']"#
);
regex!(DEF, r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)");
regex!(
    LISTED,
    r#"\b(?:Route|re_path|path)\(\s*r?["']\^?([^"'$]*)\$?["']\s*,\s*([\w.]+)"#
);
regex!(
    INCLUDE,
    r"^\s*([A-Za-z_]\w*)\.(?:include_router|register_blueprint)\(\s*([A-Za-z_][\w.]*)"
);
regex!(
    DJANGO_INCLUDE,
    r#"\b(?:re_)?path\(\s*(?:r?["']\^?([^"'$]*)\$?["']|([A-Za-z_][\w.]*))\s*,\s*include\(\s*(?:["']([\w.]+)["']|([A-Za-z_]\w*)\s*[,)])"#
);
regex!(LIST_START, r"^\s*([A-Za-z_]\w*)\s*(?::[^=]*)?\+?=\s*\[");
regex!(
    FROM_IMPORT,
    r"^\s*from\s+(\.*[\w.]*)\s+import\s+\(?([^)#]*)"
);
regex!(
    CONSTANT,
    r#"^\s*([A-Za-z_]\w*)\s*(?::\s*[\w.\[\]| ]+)?=\s*["']([^"']*)["']\s*(?:#.*)?$"#
);

/// Last path segments that say "health check", best first.
const HEALTH_WORDS: [&str; 12] = [
    "health",
    "healthz",
    "health-check",
    "healthcheck",
    "health_check",
    "livez",
    "liveness",
    "alive",
    "ping",
    "readyz",
    "ready",
    "status",
];

/// What one file says about routes.
#[derive(Debug, Default)]
struct FileRoutes {
    /// The file's dotted module name.
    module: String,
    /// Router or app variables: name, whether it is an app (the root), its prefix expression.
    routers: BTreeMap<String, (bool, Option<String>)>,
    /// Routes: the router they hang from (`None` for a file-level list), path, function, line.
    routes: Vec<(Option<String>, String, String, usize)>,
    /// `receiver.include_router(target, prefix=…)`; `None` receiver for Django's include.
    includes: Vec<Include>,
    /// `from MODULE import NAME as LOCAL`: local name to (module, name).
    imports: BTreeMap<String, (String, String)>,
}

#[derive(Debug)]
struct Include {
    receiver: Option<String>,
    target: String,
    prefix: Option<String>,
}

/// The health routes of the project's `files` (path and text), best first; `src_package`
/// when `src/` is a package of its own (module names keep `src.`).
pub(crate) fn health_routes(files: &[(PathBuf, String)], src_package: bool) -> Vec<Fact<String>> {
    let parsed: Vec<FileRoutes> = files
        .iter()
        .map(|(rel, text)| parse(rel, text, src_package))
        .collect();
    let constants: BTreeMap<String, String> = files
        .iter()
        .flat_map(|(_, text)| text.lines())
        .filter_map(|line| CONSTANT.captures(line))
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect();
    let resolver = Resolver {
        files: &parsed,
        constants: &constants,
    };
    let mut found: Vec<(usize, Fact<String>)> = Vec::new();
    for (index, file) in parsed.iter().enumerate() {
        for (router, path, function, line) in &file.routes {
            let Some(rank) = health_rank(path, function) else {
                continue;
            };
            let Some(prefix) = resolver.prefix(index, router.as_deref(), 0) else {
                continue;
            };
            let full = join(&prefix, path);
            if !found.iter().any(|(_, f)| f.value == full) {
                found.push((rank, Fact::new(full, Source::line(&files[index].0, *line))));
            }
        }
    }
    found.sort_by(|(a, fa), (b, fb)| a.cmp(b).then(fa.value.len().cmp(&fb.value.len())));
    found.into_iter().map(|(_, f)| f).collect()
}

/// How good a health route this is (lower is better): by its last path segment, else by its
/// function's name; `None` when it is not one, or takes parameters.
fn health_rank(path: &str, function: &str) -> Option<usize> {
    if path.contains(['{', '<', '(', ':', '*']) {
        return None;
    }
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if let Some(rank) = HEALTH_WORDS.iter().position(|w| *w == last) {
        return Some(rank);
    }
    let function = function.to_ascii_lowercase();
    ["health", "alive", "ping", "status"]
        .iter()
        .position(|w| function.contains(w))
        .map(|rank| HEALTH_WORDS.len() + rank)
}

/// A prefix and a path joined with exactly one `/` between them, rooted at `/`.
fn join(prefix: &str, path: &str) -> String {
    let mut out = String::from("/");
    for part in [prefix, path] {
        let part = part.trim_start_matches('/');
        if part.is_empty() {
            continue;
        }
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(part);
    }
    out
}

/// The text of a call starting at `lines[index]`, joined up to its closing parenthesis (at most
/// 15 lines), so keyword arguments on later lines are seen.
pub(crate) fn call_text(lines: &[&str], index: usize) -> String {
    let mut text = String::new();
    let mut depth = 0i32;
    for line in lines.iter().skip(index).take(15) {
        text.push_str(line);
        text.push(' ');
        depth += line.matches('(').count() as i32 - line.matches(')').count() as i32;
        if depth <= 0 {
            break;
        }
    }
    text
}

fn parse(rel: &Path, text: &str, src_package: bool) -> FileRoutes {
    let module = module_name(rel, src_package);
    let lines: Vec<&str> = text.lines().collect();
    let mut file = FileRoutes {
        module: module.clone(),
        ..FileRoutes::default()
    };
    // The list being read (`api_urls = [`) and its bracket depth.
    let mut list: Option<(String, i32)> = None;
    for (index, line) in lines.iter().enumerate() {
        if let Some(c) = ROUTER.captures(line) {
            let is_app = !matches!(&c[2], "APIRouter" | "Blueprint" | "Router");
            let prefix = PREFIX
                .captures(&call_text(&lines, index))
                .map(|p| p[1].to_owned());
            file.routers.insert(c[1].to_owned(), (is_app, prefix));
        }
        if let Some(c) = DECORATOR.captures(line) {
            let function = lines
                .iter()
                .skip(index + 1)
                .take(8)
                .find_map(|l| DEF.captures(l).map(|d| d[1].to_owned()))
                .unwrap_or_default();
            file.routes
                .push((Some(c[1].to_owned()), c[2].to_owned(), function, index + 1));
        }
        if list.is_none()
            && let Some(c) = LIST_START.captures(line)
        {
            list = Some((c[1].to_owned(), 0));
        }
        // Routes in a list other than `urlpatterns` hang from it, as from a router: the
        // list is mounted where some `include(name)` puts it.
        let router = list
            .as_ref()
            .map(|(name, _)| name.clone())
            .filter(|name| name != "urlpatterns");
        if let Some(name) = &router {
            file.routers.entry(name.clone()).or_insert((false, None));
        }
        for c in LISTED.captures_iter(line) {
            let function = c[2].rsplit('.').next().unwrap_or_default().to_owned();
            file.routes
                .push((router.clone(), c[1].to_owned(), function, index + 1));
        }
        if let Some((_, depth)) = &mut list {
            *depth += line.matches('[').count() as i32 - line.matches(']').count() as i32;
            if *depth <= 0 {
                list = None;
            }
        }
        if let Some(c) = INCLUDE.captures(line) {
            let text = call_text(&lines, index);
            file.includes.push(Include {
                receiver: Some(c[1].to_owned()),
                target: c[2].to_owned(),
                prefix: PREFIX.captures(&text).map(|p| p[1].to_owned()),
            });
        }
        for c in DJANGO_INCLUDE.captures_iter(line) {
            let prefix = match (c.get(1), c.get(2)) {
                (Some(literal), _) => format!("\"{}\"", literal.as_str()),
                (None, Some(variable)) => variable.as_str().to_owned(),
                (None, None) => continue,
            };
            let Some(target) = c.get(3).or(c.get(4)) else {
                continue;
            };
            file.includes.push(Include {
                receiver: None,
                target: target.as_str().to_owned(),
                prefix: Some(prefix),
            });
        }
        if let Some(c) = FROM_IMPORT.captures(line) {
            let is_package = rel.file_name().is_some_and(|n| n == "__init__.py");
            let from = absolute_module(&module, is_package, &c[1]);
            for name in c[2].split(',') {
                let mut words = name.split_whitespace();
                let (Some(original), alias) = (words.next(), words.nth(1)) else {
                    continue;
                };
                file.imports.insert(
                    alias.unwrap_or(original).to_owned(),
                    (from.clone(), original.to_owned()),
                );
            }
        }
    }
    file
}

/// Follows includes from a router to the app it is mounted on.
struct Resolver<'a> {
    files: &'a [FileRoutes],
    constants: &'a BTreeMap<String, String>,
}

impl Resolver<'_> {
    /// The prefix every route of `router` in file `index` gets, outermost first; `None` when
    /// some prefix on the way can't be resolved.
    fn prefix(&self, index: usize, router: Option<&str>, depth: usize) -> Option<String> {
        let file = &self.files[index];
        let (is_app, own) = match router {
            Some(name) => file
                .routers
                .get(name)
                .map(|(app, prefix)| (*app, prefix.clone()))
                .unwrap_or((true, None)),
            None => (false, None),
        };
        let own = match own {
            Some(expression) => self.value(&expression)?,
            None => String::new(),
        };
        if is_app || depth > 6 {
            return Some(own);
        }
        let Some((outer, include)) = self.included_by(index, router) else {
            return Some(own);
        };
        let mounted = match &include.prefix {
            Some(expression) => self.value(expression)?,
            None => String::new(),
        };
        let outer_prefix = self.prefix(outer, include.receiver.as_deref(), depth + 1)?;
        Some(join(&join(&outer_prefix, &mounted), &own))
    }

    /// The include that mounts `router` of file `index`, and the file it is in.
    fn included_by(&self, index: usize, router: Option<&str>) -> Option<(usize, &Include)> {
        let file = &self.files[index];
        let stem = file.module.rsplit('.').next().unwrap_or_default();
        self.files.iter().enumerate().find_map(|(i, other)| {
            other
                .includes
                .iter()
                .find(|include| match router {
                    None => {
                        include.receiver.is_none()
                            && (file.module == include.target
                                || file.module.ends_with(&format!(".{}", include.target))
                                || include.target.ends_with(&format!(".{}", file.module)))
                    }
                    Some(name) => {
                        let (head, tail) = include
                            .target
                            .rsplit_once('.')
                            .unwrap_or(("", include.target.as_str()));
                        if head.is_empty() {
                            // A bare name: this file's own router, or one imported from it.
                            (i == index && tail == name)
                                || other.imports.get(tail).is_some_and(|(module, original)| {
                                    original == name && module.rsplit('.').next() == Some(stem)
                                })
                        } else {
                            // `module.router`: the module is this file.
                            tail == name && head.rsplit('.').next() == Some(stem)
                        }
                    }
                })
                .map(|include| (i, include))
        })
    }

    /// A prefix expression's value: a string literal, or a constant of the project.
    fn value(&self, expression: &str) -> Option<String> {
        let expression = expression.trim();
        let unquoted = expression.trim_start_matches('r');
        if let Some(text) = unquoted
            .strip_prefix(['"', '\''])
            .and_then(|t| t.strip_suffix(['"', '\'']))
        {
            return Some(text.to_owned());
        }
        let name = expression.rsplit('.').next()?;
        self.constants.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(files: &[(&str, &str)]) -> Vec<String> {
        let files: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        health_routes(&files, false)
            .into_iter()
            .map(|f| f.value)
            .collect()
    }

    #[test]
    fn plain_routes_best_first() {
        assert_eq!(
            routes(&[(
                "app.py",
                "from flask import Flask\napp = Flask(__name__)\n@app.get('/ping')\ndef ping():\n    return 'ok'\n@app.route('/healthz')\ndef hz():\n    return 'ok'\n@app.get('/items/<id>/status')\ndef item(id):\n    pass\n",
            )]),
            ["/healthz", "/ping"]
        );
    }

    #[test]
    fn fastapi_routers_with_prefixes_from_settings() {
        let found = routes(&[
            (
                "app/core/config.py",
                "class Settings(BaseSettings):\n    API_V1_STR: str = \"/api/v1\"\n",
            ),
            (
                "app/main.py",
                "from fastapi import FastAPI\nfrom app.api.main import api_router\nfrom app.core.config import settings\napp = FastAPI()\napp.include_router(api_router, prefix=settings.API_V1_STR)\n",
            ),
            (
                "app/api/main.py",
                "from fastapi import APIRouter\nfrom app.api.routes import items, utils\napi_router = APIRouter()\napi_router.include_router(items.router)\napi_router.include_router(utils.router)\n",
            ),
            (
                "app/api/routes/utils.py",
                "router = APIRouter(\n    prefix=\"/utils\",\n    tags=[\"utils\"],\n)\n\n@router.get(\"/health-check/\")\nasync def health_check() -> bool:\n    return True\n",
            ),
        ]);
        assert_eq!(found, ["/api/v1/utils/health-check/"]);
    }

    #[test]
    fn function_names_blueprints_and_aliases() {
        let found = routes(&[
            (
                "shop/__init__.py",
                "from flask import Flask\ndef create_app():\n    app = Flask(__name__)\n    from .api import bp as api_bp\n    app.register_blueprint(api_bp, url_prefix=\"/api/v3\")\n    return app\n",
            ),
            (
                "shop/api.py",
                "from flask import Blueprint\nbp = Blueprint('api', __name__)\n@bp.route('/state/')\ndef service_status():\n    return {'ok': True}\n",
            ),
        ]);
        assert_eq!(found, ["/api/v3/state/"]);
    }

    #[test]
    fn unresolved_prefixes_are_left_out() {
        let found = routes(&[(
            "main.py",
            "from fastapi import FastAPI, APIRouter\napp = FastAPI()\nr = APIRouter()\n@r.get('/health')\ndef health():\n    pass\napp.include_router(r, prefix=compute())\n",
        )]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn django_lists_included_by_name_under_a_variable_prefix() {
        let found = routes(&[
            (
                "hc/urls.py",
                "prefix = \"\"\nurlpatterns = [\n    path(f\"{prefix}admin/\", admin.site.urls),\n    path(prefix, include(\"hc.api.urls\")),\n]\n",
            ),
            (
                "hc/api/urls.py",
                "api_urls = [\n    path(\"checks/\", views.checks),\n    path(\"status/\", views.status),\n]\n\nurlpatterns = [\n    path(\"ping/<uuid:code>\", views.ping),\n    path(\"api/v3/\", include(api_urls)),\n]\n",
            ),
        ]);
        assert_eq!(found, ["/api/v3/status/"]);
    }

    #[test]
    fn django_includes_and_starlette_lists() {
        let found = routes(&[
            (
                "site/urls.py",
                "urlpatterns = [path('api/v3/', include('status.urls')), path('admin/', admin.site.urls)]\n",
            ),
            (
                "status/urls.py",
                "urlpatterns = [path('status/', views.status)]\n",
            ),
        ]);
        assert_eq!(found, ["/api/v3/status/"]);
        let found = routes(&[(
            "main.py",
            "from starlette.routing import Route\nroutes = [Route('/health', health)]\n",
        )]);
        assert_eq!(found, ["/health"]);
    }
}
