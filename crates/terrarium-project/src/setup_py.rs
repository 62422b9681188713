//! What a `setup.py` declares, read without running it: the distribution `name`, the
//! `install_requires` list (written inline or as a module-level list it names), a requirements
//! file it reads them from, and whether setuptools-scm computes the version from git.
//!
//! Running `setup.py` would execute the project's code at plan time; the literal forms below are
//! what nearly every `setup.py` uses. Anything computed otherwise is not guessed at: the project
//! then has no declared dependencies, and `plan` says so.

use std::sync::LazyLock;

use regex::Regex;

/// The facts of one `setup.py`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SetupPy {
    /// `name="…"` in the `setup(…)` call.
    pub name: Option<String>,
    /// The requirement strings of `install_requires`, when it is a literal list.
    pub install_requires: Option<Vec<String>>,
    /// A requirements file (relative path) the file opens, for `install_requires=read(…)`.
    pub requirements_file: Option<String>,
    /// The version comes from setuptools-scm (`use_scm_version`, `setuptools_scm`).
    pub scm_version: bool,
}

static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\bname\s*=\s*['"]([A-Za-z0-9][A-Za-z0-9._-]*)['"]"#).expect("static regex")
});
static INSTALL_REQUIRES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\binstall_requires\s*=\s*(\[|[A-Za-z_][A-Za-z0-9_]*)").expect("static regex")
});
static STRING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"'([^'\n]*)'|"([^"\n]*)""#).expect("static regex"));
static TXT_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"['"]([A-Za-z0-9_./-]*requirements[A-Za-z0-9_./-]*\.txt)['"]"#)
        .expect("static regex")
});

/// Read `text` (a `setup.py`).
pub(crate) fn read(text: &str) -> SetupPy {
    let code: String = text
        .lines()
        .map(crate::code::strip_comment)
        .collect::<Vec<_>>()
        .join("\n");
    let setup_call = code.find("setup(").map_or("", |start| &code[start..]);
    let install_requires = INSTALL_REQUIRES.captures(setup_call).and_then(|c| {
        let (whole, what) = (c.get(0)?, c.get(1)?.as_str());
        if what == "[" {
            list_at(setup_call, whole.end() - 1)
        } else {
            // `BASE + [...]`, `reqs()`: computed, not a plain name.
            let after = setup_call[whole.end()..].trim_start();
            if !(after.starts_with(',') || after.starts_with(')')) {
                return None;
            }
            // A module-level list: `install_requires = [...]` before the call.
            let assignment = Regex::new(&format!(r"(?m)^{}\s*=\s*\[", regex::escape(what))).ok()?;
            let found = assignment.find(&code)?;
            list_at(&code, found.end() - 1)
        }
    });
    SetupPy {
        name: NAME.captures(setup_call).map(|c| c[1].to_owned()),
        install_requires,
        requirements_file: TXT_FILE.captures(&code).map(|c| c[1].to_owned()),
        scm_version: code.contains("use_scm_version") || code.contains("setuptools_scm"),
    }
}

/// The string literals of the list whose `[` is at `open`, when it holds only literals.
fn list_at(text: &str, open: usize) -> Option<Vec<String>> {
    let rest = &text[open + 1..];
    let mut quote = None;
    let close = rest.char_indices().find_map(|(index, c)| {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ']') => return Some(index),
            _ => {}
        }
        None
    })?;
    let body = &rest[..close];
    let items: Vec<String> = STRING
        .captures_iter(body)
        .filter_map(|c| {
            c.get(1)
                .or_else(|| c.get(2))
                .map(|m| m.as_str().trim().to_owned())
        })
        .filter(|item| !item.is_empty())
        .collect();
    // Anything but literals, commas and whitespace means the list is computed.
    let leftover = STRING.replace_all(body, "");
    leftover
        .chars()
        .all(|c| c == ',' || c.is_whitespace())
        .then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_inside_the_list() {
        let setup = read(
            "from setuptools import find_packages, setup\n\ninstall_requires = [\n    \"alembic\",\n    \"idna<3\",  # resolve dependency version conflict\n]\n\n\nsetup(\n    name=\"orders_api\",\n    install_requires=install_requires,\n    use_scm_version=True,\n    setup_requires=[\"setuptools_scm\"],\n)\n",
        );
        assert_eq!(setup.install_requires.unwrap(), ["alembic", "idna<3"]);
    }

    #[test]
    fn a_named_list_before_the_call() {
        let setup = read(
            "from setuptools import setup\n\ninstall_requires = [\n    \"alembic\",\n    \"idna<3\",  # pin\n    'pydantic[email]',\n]\n\nsetup(\n    name=\"orders_api\",\n    install_requires=install_requires,\n    use_scm_version=True,\n)\n",
        );
        assert_eq!(setup.name.as_deref(), Some("orders_api"));
        assert_eq!(
            setup.install_requires.unwrap(),
            ["alembic", "idna<3", "pydantic[email]"]
        );
        assert!(setup.scm_version);
    }

    #[test]
    fn an_inline_list_a_computed_one_and_a_requirements_file() {
        let inline = read("setup(name='shop', install_requires=['flask>=2', \"gunicorn\"])\n");
        assert_eq!(inline.install_requires.unwrap(), ["flask>=2", "gunicorn"]);
        assert!(!inline.scm_version);
        let computed = read(
            "def reqs():\n    return open('requirements/prod.txt').read().splitlines()\nsetup(name='x', install_requires=reqs())\n",
        );
        assert_eq!(computed.install_requires, None);
        assert_eq!(
            computed.requirements_file.as_deref(),
            Some("requirements/prod.txt")
        );
        let mixed = read("BASE = ['a']\nsetup(name='x', install_requires=BASE + ['b'])\n");
        assert_eq!(mixed.install_requires, None);
    }
}
