//! Lint configuration from `[tool.terrarium.lint]` in pyproject.toml or `[lint]` in
//! terrarium.toml: disabled rules, severity overrides, the failure threshold and trusted
//! registries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::LintError;
use crate::finding::Severity;
use crate::rules;

/// The lint settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Rule ids that never report.
    #[serde(default)]
    pub disable: Vec<String>,
    /// Per-rule severity overrides.
    #[serde(default)]
    pub severity: BTreeMap<String, Severity>,
    /// Findings at or above this severity fail the run (default: warning).
    #[serde(default)]
    pub fail_on: Option<Severity>,
    /// Registries base images may come from; empty means any (`untrusted-registry` is off).
    #[serde(default)]
    pub trusted_registries: Vec<String>,
    /// The file the settings came from, if any.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Deserialize)]
struct TerrariumToml {
    #[serde(default)]
    lint: Option<toml::Value>,
}

#[derive(Deserialize)]
struct Pyproject {
    #[serde(default)]
    tool: Option<Tool>,
}

#[derive(Deserialize)]
struct Tool {
    #[serde(default)]
    terrarium: Option<ToolTerrarium>,
}

#[derive(Deserialize)]
struct ToolTerrarium {
    #[serde(default)]
    lint: Option<toml::Value>,
}

impl Config {
    /// The severity threshold for failing.
    pub fn threshold(&self) -> Severity {
        self.fail_on.unwrap_or(Severity::Warning)
    }

    /// Whether `rule` is switched off.
    pub fn is_disabled(&self, rule: &str) -> bool {
        self.disable.iter().any(|r| r == rule)
    }

    /// Read the settings from a `terrarium.toml` or `pyproject.toml` file.
    pub fn load(path: &Path) -> Result<Config, LintError> {
        let text = std::fs::read_to_string(path).map_err(|source| LintError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |message: String| LintError::Config {
            path: path.to_path_buf(),
            message,
        };
        let is_pyproject = path.file_name().is_some_and(|n| n == "pyproject.toml");
        let table = if is_pyproject {
            let doc: Pyproject = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
            doc.tool.and_then(|t| t.terrarium).and_then(|t| t.lint)
        } else {
            let doc: TerrariumToml = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
            doc.lint
        };
        let Some(table) = table else {
            return Ok(Config::default());
        };
        let mut config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| bad(format!("in the lint settings: {}", e.message())))?;
        for id in config.disable.iter().chain(config.severity.keys()) {
            if rules::by_id(id).is_none() {
                return Err(bad(format!(
                    "unknown rule `{id}`; `terrarium lint --list-rules` shows the rule ids"
                )));
            }
        }
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Find the settings for `dir`: the nearest `terrarium.toml` with a `[lint]` table or
    /// `pyproject.toml` with `[tool.terrarium.lint]`, walking up from `dir`.
    pub fn discover(dir: &Path) -> Result<Config, LintError> {
        let start = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        for ancestor in start.ancestors() {
            for name in ["terrarium.toml", "pyproject.toml"] {
                let candidate = ancestor.join(name);
                if candidate.is_file() {
                    let config = Config::load(&candidate)?;
                    if config.source.is_some() {
                        return Ok(config);
                    }
                }
            }
            if ancestor.join(".git").exists() {
                break;
            }
        }
        Ok(Config::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pyproject_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pyproject.toml");
        std::fs::write(
            &path,
            "[project]\nname='x'\n[tool.terrarium.lint]\ndisable=['maintainer']\nfail-on='error'\n\
             severity={ 'root-user' = 'warning' }\ntrusted-registries=['registry.example.com']\n",
        )
        .expect("write");
        let config = Config::discover(dir.path()).expect("config");
        assert!(config.is_disabled("maintainer"));
        assert_eq!(config.threshold(), Severity::Error);
        assert_eq!(config.severity["root-user"], Severity::Warning);
        assert_eq!(config.trusted_registries, ["registry.example.com"]);
    }

    #[test]
    fn rejects_unknown_rules_and_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("terrarium.toml");
        std::fs::write(&path, "[lint]\ndisable=['no-such-rule']\n").expect("write");
        let err = Config::load(&path).expect_err("unknown rule");
        assert!(err.to_string().contains("no-such-rule"), "{err}");
        std::fs::write(&path, "[lint]\ndisabled=['root-user']\n").expect("write");
        assert!(Config::load(&path).is_err());
        std::fs::write(&path, "[lint\n").expect("write");
        let err = Config::load(&path).expect_err("bad toml");
        assert!(err.to_string().contains("terrarium.toml"), "{err}");
    }

    #[test]
    fn no_file_means_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".git")).expect("mkdir");
        assert_eq!(
            Config::discover(dir.path()).expect("config"),
            Config::default()
        );
    }
}
