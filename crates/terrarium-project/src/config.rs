//! `[tool.terrarium]` in pyproject.toml, or `terrarium.toml` for projects without one: the
//! user's overrides of terrarium's decisions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{DetectError, line_of, read_text, toml_error};
use crate::{Fact, Source};

/// A health-check setting: a path to probe over HTTP, or disabled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum HealthcheckSetting {
    /// Probe this path (`/health`).
    Path(String),
    /// `healthcheck = false`: the service has no HTTP health route.
    Disabled(bool),
}

/// The user's overrides. Each setting keeps the line it was written on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The file the settings came from.
    pub file: Option<PathBuf>,
    /// The production command (exec form).
    pub command: Option<Fact<Vec<String>>>,
    /// The development command (exec form).
    pub dev_command: Option<Fact<Vec<String>>>,
    /// The port the service listens on.
    pub port: Option<Fact<u16>>,
    /// The Python feature version (`3.12`).
    pub python: Option<Fact<String>>,
    /// The base image for generated Dockerfiles.
    pub base: Option<Fact<String>>,
    /// Extra Debian packages the service needs at run time.
    pub system_packages: Option<Fact<Vec<String>>>,
    /// Extra Debian packages (headers, `-dev` packages) needed to build dependencies that ship
    /// only a source distribution.
    pub build_packages: Option<Fact<Vec<String>>>,
    /// Environment variables with their defaults.
    pub env: Option<Fact<BTreeMap<String, String>>>,
    /// Directories that hold data (volumes).
    pub volumes: Option<Fact<Vec<String>>>,
    /// The health-check path, or disabled.
    pub healthcheck: Option<Fact<HealthcheckSetting>>,
    /// The `uid:gid` the service runs as.
    pub user: Option<Fact<(u32, u32)>>,
    /// The reverse-proxy image for compose (`--proxy`).
    pub proxy_image: Option<Fact<String>>,
    /// The PostgreSQL image for compose (`--postgres`).
    pub postgres_image: Option<Fact<String>>,
    /// `exclude-newer`: requirements the project does not pin are resolved as of this moment
    /// (files uploaded later are ignored), like uv's option of the same name.
    pub exclude_newer: Option<Fact<jiff::Timestamp>>,
    /// `[test] services`: what `terrarium test` starts beside the tests (`postgres`).
    pub test_services: Option<Fact<Vec<String>>>,
    /// `[test] command`: the command that runs the tests (exec form, run from /app), instead
    /// of the runner `terrarium test` finds (pytest, unittest, Django's `manage.py test`).
    pub test_command: Option<Fact<Vec<String>>>,
    /// How `terrarium build` compresses the image's layers: one of [`COMPRESSIONS`]
    /// (`--compression` overrides it).
    pub compression: Option<Fact<String>>,
    /// The platforms `terrarium build` makes images for, each one of [`PLATFORMS`]
    /// (`--platform` overrides it); the host's alone when unset.
    pub platforms: Option<Fact<Vec<String>>>,
}

/// The platforms `platforms` may name (the architectures terrarium-debian builds for).
pub const PLATFORMS: &[&str] = &["linux/amd64", "linux/arm64"];

/// The layer compressions `compression` may name (terrarium-image's `Compression`).
pub const COMPRESSIONS: &[&str] = &["gzip", "zstd"];

/// The services `terrarium test` knows how to start for a project's tests.
pub const TEST_SERVICES: &[&str] = &["postgres"];

#[derive(Deserialize)]
#[serde(untagged)]
enum CommandValue {
    Argv(Vec<String>),
    Line(String),
}

impl CommandValue {
    fn argv(&self) -> Vec<String> {
        match self {
            CommandValue::Argv(argv) => argv.clone(),
            CommandValue::Line(line) => line.split_whitespace().map(str::to_string).collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    command: Option<Spanned<CommandValue>>,
    dev_command: Option<Spanned<CommandValue>>,
    port: Option<Spanned<u16>>,
    python: Option<Spanned<String>>,
    base: Option<Spanned<String>>,
    system_packages: Option<Spanned<Vec<String>>>,
    build_packages: Option<Spanned<Vec<String>>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    volumes: Option<Spanned<Vec<String>>>,
    healthcheck: Option<Spanned<HealthcheckSetting>>,
    user: Option<Spanned<String>>,
    proxy_image: Option<Spanned<String>>,
    postgres_image: Option<Spanned<String>>,
    exclude_newer: Option<Spanned<String>>,
    compression: Option<Spanned<String>>,
    platforms: Option<Spanned<Vec<String>>>,
    /// Read by `terrarium lint`.
    #[serde(default, rename = "lint")]
    _lint: Option<toml::Value>,
    test: Option<RawTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTest {
    services: Option<Spanned<Vec<String>>>,
    command: Option<Spanned<Vec<String>>>,
}

impl<'de> Deserialize<'de> for HealthcheckSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Path(String),
            Flag(bool),
        }
        match Raw::deserialize(d)? {
            Raw::Path(p) if p.starts_with('/') => Ok(HealthcheckSetting::Path(p)),
            Raw::Path(p) => Err(serde::de::Error::custom(format!(
                "healthcheck = {p:?} must be a path starting with / (or false)"
            ))),
            Raw::Flag(false) => Ok(HealthcheckSetting::Disabled(false)),
            Raw::Flag(true) => Err(serde::de::Error::custom(
                "healthcheck = true says nothing: give the path to probe, like \"/health\", or false",
            )),
        }
    }
}

#[derive(Deserialize)]
struct PyProjectTool {
    tool: Option<ToolTable>,
}

#[derive(Deserialize)]
struct ToolTable {
    terrarium: Option<RawConfig>,
}

const FIX: &str = "known keys: command, dev-command, port, python, base, system-packages, build-packages, env, volumes, healthcheck, user, proxy-image, postgres-image, exclude-newer, compression, platforms, lint, test";

/// Read the overrides from pyproject.toml's `[tool.terrarium]`, else `terrarium.toml`.
pub(crate) fn read(root: &Path, pyproject_text: Option<&str>) -> Result<Config, DetectError> {
    if let Some(text) = pyproject_text {
        let rel = Path::new("pyproject.toml");
        let parsed: PyProjectTool =
            toml::from_str(text).map_err(|err| toml_error(rel, text, &err, FIX))?;
        if let Some(raw) = parsed.tool.and_then(|t| t.terrarium) {
            return convert(rel, text, raw);
        }
    }
    let rel = Path::new("terrarium.toml");
    if !root.join(rel).is_file() {
        return Ok(Config::default());
    }
    let text = read_text(root, rel)?;
    let raw: RawConfig = toml::from_str(&text).map_err(|err| {
        let fix = if err.message().contains("unknown field `tool`") {
            "terrarium.toml takes the keys at the top level: drop the [tool.terrarium] header"
        } else {
            FIX
        };
        toml_error(rel, &text, &err, fix)
    })?;
    convert(rel, &text, raw)
}

fn convert(rel: &Path, text: &str, raw: RawConfig) -> Result<Config, DetectError> {
    let fact = |span: std::ops::Range<usize>| Source::line(rel, line_of(text, span.start));
    fn take<T>(s: Spanned<T>, source: &dyn Fn(std::ops::Range<usize>) -> Source) -> Fact<T> {
        let span = s.span();
        Fact::new(s.into_inner(), source(span))
    }
    let command = raw.command.map(|c| {
        let span = c.span();
        Fact::new(c.get_ref().argv(), fact(span))
    });
    if let Some(cmd) = &command
        && cmd.value.is_empty()
    {
        return Err(DetectError::malformed(
            rel,
            cmd.source.line,
            "command is empty",
            "write the command as a list, like [\"gunicorn\", \"app:app\"]",
        ));
    }
    let dev_command = raw.dev_command.map(|c| {
        let span = c.span();
        Fact::new(c.get_ref().argv(), fact(span))
    });
    let user = match raw.user {
        Some(u) => {
            let source = fact(u.span());
            let parsed = parse_user(u.get_ref()).ok_or_else(|| {
                DetectError::malformed(
                    rel,
                    source.line,
                    format!("user = {:?} is not UID:GID", u.get_ref()),
                    "write numeric ids, like \"65532:65532\"",
                )
            })?;
            if parsed.0 == 0 {
                return Err(DetectError::malformed(
                    rel,
                    source.line,
                    "user = 0 is root; terrarium never runs a service as root (L11)",
                    "remove `user` to use 65532:65532, or pick another non-zero UID",
                ));
            }
            Some(Fact::new(parsed, source))
        }
        None => None,
    };
    if let Some(port) = &raw.port
        && *port.get_ref() == 0
    {
        return Err(DetectError::malformed(
            rel,
            Some(line_of(text, port.span().start)),
            "port = 0 is not a port",
            "use the port your service listens on, like 8000",
        ));
    }
    if let Some(python) = &raw.python {
        let ok = python.get_ref().split('.').count() == 2
            && python
                .get_ref()
                .split('.')
                .all(|p| p.parse::<u32>().is_ok());
        if !ok {
            return Err(DetectError::malformed(
                rel,
                Some(line_of(text, python.span().start)),
                format!("python = {:?} is not a feature version", python.get_ref()),
                "write it like \"3.12\"",
            ));
        }
    }
    let exclude_newer = match &raw.exclude_newer {
        Some(cutoff) => match parse_cutoff(cutoff.get_ref()) {
            Some(moment) => Some(Fact::new(moment, fact(cutoff.span()))),
            None => {
                return Err(DetectError::malformed(
                    rel,
                    Some(line_of(text, cutoff.span().start)),
                    format!(
                        "exclude-newer = {:?} is neither a date nor an RFC 3339 timestamp",
                        cutoff.get_ref()
                    ),
                    "write it like \"2021-06-01\" or \"2021-06-01T12:00:00Z\"",
                ));
            }
        },
        None => None,
    };
    let compression = match raw.compression {
        Some(compression) => {
            let source = fact(compression.span());
            if !COMPRESSIONS.contains(&compression.get_ref().as_str()) {
                return Err(DetectError::malformed(
                    rel,
                    source.line,
                    format!(
                        "compression = {:?} is not a layer compression",
                        compression.get_ref()
                    ),
                    "write \"gzip\" (the default, read everywhere) or \"zstd\" (Docker 23+)",
                ));
            }
            Some(Fact::new(compression.into_inner(), source))
        }
        None => None,
    };
    let platforms = match raw.platforms {
        Some(platforms) => {
            let source = fact(platforms.span());
            if platforms.get_ref().is_empty() {
                return Err(DetectError::malformed(
                    rel,
                    source.line,
                    "platforms is empty",
                    format!(
                        "list one or more of {}, or remove it to build for this machine's",
                        PLATFORMS.join(", ")
                    ),
                ));
            }
            if let Some(unknown) = platforms
                .get_ref()
                .iter()
                .find(|p| !PLATFORMS.contains(&p.as_str()))
            {
                return Err(DetectError::malformed(
                    rel,
                    source.line,
                    format!("platforms: {unknown:?} is not a platform terrarium builds for"),
                    format!("write one or more of {}", PLATFORMS.join(", ")),
                ));
            }
            Some(Fact::new(platforms.into_inner(), source))
        }
        None => None,
    };
    let (raw_services, raw_command) = match raw.test {
        Some(test) => (test.services, test.command),
        None => (None, None),
    };
    let test_command = match raw_command {
        Some(command) => {
            let source = fact(command.span());
            if command
                .get_ref()
                .first()
                .is_none_or(|c| c.trim().is_empty())
            {
                return Err(DetectError::malformed(
                    rel,
                    source.line,
                    "test command is empty".to_string(),
                    "write the command as a list, like command = [\"python\", \"-m\", \"unittest\"]",
                ));
            }
            Some(Fact::new(command.into_inner(), source))
        }
        None => None,
    };
    let test_services = match raw_services {
        Some(services) => {
            let source = fact(services.span());
            if let Some(unknown) = services
                .get_ref()
                .iter()
                .find(|s| !TEST_SERVICES.contains(&s.as_str()))
            {
                return Err(DetectError::malformed(
                    rel,
                    source.line,
                    format!("test services: `{unknown}` is not a service terrarium can start"),
                    format!("known services: {}", TEST_SERVICES.join(", ")),
                ));
            }
            Some(Fact::new(services.into_inner(), source))
        }
        None => None,
    };
    Ok(Config {
        file: Some(rel.to_path_buf()),
        command,
        dev_command,
        port: raw.port.map(|s| take(s, &fact)),
        python: raw.python.map(|s| take(s, &fact)),
        base: raw.base.map(|s| take(s, &fact)),
        system_packages: raw.system_packages.map(|s| take(s, &fact)),
        build_packages: raw.build_packages.map(|s| take(s, &fact)),
        env: raw.env.map(|s| take(s, &fact)),
        volumes: raw.volumes.map(|s| take(s, &fact)),
        healthcheck: raw.healthcheck.map(|s| take(s, &fact)),
        user,
        proxy_image: raw.proxy_image.map(|s| take(s, &fact)),
        postgres_image: raw.postgres_image.map(|s| take(s, &fact)),
        exclude_newer,
        test_services,
        test_command,
        compression,
        platforms,
    })
}

/// `2021-06-01` (midnight UTC) or an RFC 3339 timestamp.
fn parse_cutoff(text: &str) -> Option<jiff::Timestamp> {
    let text = text.trim();
    if let Ok(moment) = text.parse::<jiff::Timestamp>() {
        return Some(moment);
    }
    let date: jiff::civil::Date = text.parse().ok()?;
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|zoned| zoned.timestamp())
}

fn parse_user(text: &str) -> Option<(u32, u32)> {
    let (uid, gid) = text.split_once(':').unwrap_or((text, text));
    Some((uid.trim().parse().ok()?, gid.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_pyproject(text: &str) -> Result<Config, DetectError> {
        let dir = tempfile::tempdir().unwrap();
        read(dir.path(), Some(text))
    }

    #[test]
    fn reads_overrides_with_lines() {
        let config = from_pyproject(
            "[project]\nname = \"x\"\n\n[tool.terrarium]\nport = 5000\ncommand = [\"gunicorn\", \"app:app\"]\nhealthcheck = \"/ping\"\nuser = \"1000:1000\"\n[tool.terrarium.lint]\ndisable = [\"X\"]\n",
        )
        .unwrap();
        assert_eq!(config.port.as_ref().unwrap().value, 5000);
        assert_eq!(config.port.unwrap().source.line, Some(5));
        assert_eq!(config.command.unwrap().value, ["gunicorn", "app:app"]);
        assert_eq!(
            config.healthcheck.unwrap().value,
            HealthcheckSetting::Path("/ping".into())
        );
        assert_eq!(config.user.unwrap().value, (1000, 1000));
    }

    #[test]
    fn exclude_newer_takes_dates_and_timestamps() {
        let config = from_pyproject("[tool.terrarium]\nexclude-newer = \"2021-06-01\"\n").unwrap();
        let cutoff = config.exclude_newer.unwrap();
        assert_eq!(cutoff.value.to_string(), "2021-06-01T00:00:00Z");
        assert_eq!(cutoff.source.line, Some(2));
        let config =
            from_pyproject("[tool.terrarium]\nexclude-newer = \"2021-06-01T12:30:00+02:00\"\n")
                .unwrap();
        assert_eq!(
            config.exclude_newer.unwrap().value.to_string(),
            "2021-06-01T10:30:00Z"
        );
        let err = from_pyproject("[tool.terrarium]\nexclude-newer = \"last spring\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pyproject.toml:2") && err.contains("2021-06-01"),
            "{err}"
        );
    }

    #[test]
    fn platforms_are_linux_amd64_or_arm64() {
        let config = from_pyproject(
            "[tool.terrarium]\nport = 1\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n",
        )
        .unwrap();
        let platforms = config.platforms.unwrap();
        assert_eq!(platforms.value, ["linux/amd64", "linux/arm64"]);
        assert_eq!(platforms.source.line, Some(3));
        for (bad, says) in [
            (
                "platforms = [\"linux/s390x\"]",
                "\"linux/s390x\" is not a platform",
            ),
            ("platforms = []", "platforms is empty"),
        ] {
            let err = from_pyproject(&format!("[tool.terrarium]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("pyproject.toml:2")
                    && err.contains(says)
                    && err.contains("linux/arm64"),
                "{err}"
            );
        }
    }

    #[test]
    fn compression_is_gzip_or_zstd() {
        let config = from_pyproject("[tool.terrarium]\ncompression = \"zstd\"\n").unwrap();
        let compression = config.compression.unwrap();
        assert_eq!(compression.value, "zstd");
        assert_eq!(compression.source.line, Some(2));
        let err = from_pyproject("[tool.terrarium]\nport = 8000\ncompression = \"xz\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pyproject.toml:3") && err.contains("\"gzip\"") && err.contains("zstd"),
            "{err}"
        );
    }

    #[test]
    fn a_test_command_is_read_and_checked() {
        let config =
            from_pyproject("[tool.terrarium.test]\ncommand = [\"python\", \"-m\", \"unittest\"]\n")
                .unwrap();
        assert_eq!(
            config.test_command.unwrap().value,
            ["python", "-m", "unittest"]
        );
        let err = from_pyproject("[tool.terrarium.test]\ncommand = []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("test command is empty"), "{err}");
    }

    #[test]
    fn test_services_are_read_and_checked() {
        let config = from_pyproject("[tool.terrarium.test]\nservices = [\"postgres\"]\n").unwrap();
        let services = config.test_services.unwrap();
        assert_eq!(services.value, ["postgres"]);
        assert_eq!(services.source.line, Some(2));
        let err = from_pyproject("[tool.terrarium.test]\nservices = [\"redis\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pyproject.toml:2") && err.contains("`redis`") && err.contains("postgres"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_names_line_and_known_keys() {
        let err = from_pyproject("[tool.terrarium]\nprot = 5000\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("pyproject.toml:2:"), "{err}");
        assert!(err.contains("prot") && err.contains("known keys"), "{err}");
    }

    #[test]
    fn root_user_and_bad_healthcheck_are_rejected() {
        let err = from_pyproject("[tool.terrarium]\nuser = \"0:0\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pyproject.toml:2") && err.contains("root"),
            "{err}"
        );
        let err = from_pyproject("[tool.terrarium]\nhealthcheck = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pyproject.toml:2"), "{err}");
    }

    #[test]
    fn tool_table_in_terrarium_toml_gets_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("terrarium.toml"),
            "[tool.terrarium]\nport = 1\n",
        )
        .unwrap();
        let err = read(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.contains("terrarium.toml:1") && err.contains("drop the [tool.terrarium] header"),
            "{err}"
        );
    }

    #[test]
    fn terrarium_toml_when_no_pyproject() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("terrarium.toml"), "python = \"3.12\"\n").unwrap();
        let config = read(dir.path(), None).unwrap();
        assert_eq!(config.python.unwrap().value, "3.12");
        assert_eq!(config.file.as_deref(), Some(Path::new("terrarium.toml")));
    }
}
