//! Where a registry's credentials come from, in Docker's order: `TERRARIUM_REGISTRY_USER` and
//! `TERRARIUM_REGISTRY_PASSWORD`, then the Docker client's `config.json` (`credHelpers` for the
//! host, else `credsStore`, else the `auths` entry). Helpers are run with Docker's
//! `docker-credential-*` protocol (`get`, the server URL on stdin, JSON on stdout), so whatever
//! `docker login` stored works here too.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::Error;
use crate::reference::DOCKER_HUB;

/// Environment variable with the user name for every registry (with [`PASSWORD_ENV`]).
pub const USER_ENV: &str = "TERRARIUM_REGISTRY_USER";
/// Environment variable with the password or token for every registry.
pub const PASSWORD_ENV: &str = "TERRARIUM_REGISTRY_PASSWORD";

/// The key Docker stores Docker Hub credentials under.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Where credentials were found: named in every authentication error, so a wrong password
/// points at the place to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// [`USER_ENV`] and [`PASSWORD_ENV`].
    Environment,
    /// A `docker-credential-*` helper named by `credHelpers` or `credsStore` in a config file.
    Helper {
        /// The program run (`docker-credential-pass`).
        program: String,
        /// `credHelpers` or `credsStore`.
        key: &'static str,
        /// The config file naming it.
        config: PathBuf,
    },
    /// An `auths` entry of a config file.
    Auths {
        /// The config file.
        config: PathBuf,
    },
    /// Nothing was found; the request went without credentials.
    Anonymous {
        /// The config file that was looked in (when there was one).
        config: Option<PathBuf>,
    },
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => write!(f, "credentials from {USER_ENV}/{PASSWORD_ENV}"),
            Self::Helper {
                program,
                key,
                config,
            } => write!(
                f,
                "credentials from {program} (`{key}` in {})",
                config.display()
            ),
            Self::Auths { config } => {
                write!(
                    f,
                    "credentials from the `auths` entry in {}",
                    config.display()
                )
            }
            Self::Anonymous {
                config: Some(config),
            } => write!(
                f,
                "no credentials (none in {USER_ENV}/{PASSWORD_ENV} or {})",
                config.display()
            ),
            Self::Anonymous { config: None } => write!(
                f,
                "no credentials (none in {USER_ENV}/{PASSWORD_ENV}, no Docker config.json)"
            ),
        }
    }
}

/// A user name and secret for one registry, and where they came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub secret: String,
    /// Where they were found.
    pub source: CredentialSource,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

impl Credentials {
    /// The `Authorization: Basic …` value.
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HelperReply {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// What credential lookup reads from the process environment, gathered once so lookups are
/// pure functions of it (and testable without touching process-wide state).
#[derive(Debug, Clone, Default)]
pub struct CredentialEnv {
    /// [`USER_ENV`].
    pub user: Option<String>,
    /// [`PASSWORD_ENV`].
    pub password: Option<String>,
    /// The Docker client's config file: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`.
    pub config: Option<PathBuf>,
    /// The `PATH` credential helpers are searched in (the process's own when `None`).
    pub helper_path: Option<OsString>,
}

impl CredentialEnv {
    /// Read the variables of this process.
    pub fn from_process() -> Self {
        let config = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            Some(dir) => Some(Path::new(&dir).join("config.json")),
            None => std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|home| Path::new(&home).join(".docker").join("config.json")),
        };
        Self {
            user: std::env::var(USER_ENV).ok().filter(|u| !u.is_empty()),
            password: std::env::var(PASSWORD_ENV).ok(),
            config,
            helper_path: None,
        }
    }
}

/// The host part of a config key: `https://host:5000/v1/` and `host:5000` both give
/// `host:5000`, so keys written by any Docker version match.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// The server URL a helper or `auths` knows `registry` by (Docker Hub's is historical).
fn server_key(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_KEY
    } else {
        registry
    }
}

fn same_registry(key: &str, registry: &str) -> bool {
    let host = key_host(key);
    host == registry
        || (registry == DOCKER_HUB
            && matches!(
                host,
                "index.docker.io" | "registry-1.docker.io" | "docker.io"
            ))
}

/// Find the credentials for `registry` (`host[:port]` as written in the image reference).
pub fn lookup(registry: &str, env: &CredentialEnv) -> Result<Credentials, Error> {
    match (env.user.clone(), env.password.clone()) {
        (Some(username), Some(secret)) => {
            return Ok(Credentials {
                username,
                secret,
                source: CredentialSource::Environment,
            });
        }
        (Some(_), None) => {
            return Err(Error::Credentials {
                source_name: USER_ENV.into(),
                message: format!("{USER_ENV} is set but {PASSWORD_ENV} is not; set both"),
            });
        }
        _ => {}
    }
    let anonymous = |config: Option<&Path>| Credentials {
        username: String::new(),
        secret: String::new(),
        source: CredentialSource::Anonymous {
            config: config.map(Path::to_owned),
        },
    };
    let Some(path) = env.config.as_deref() else {
        return Ok(anonymous(None));
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(anonymous(None)),
        Err(err) => {
            return Err(Error::Credentials {
                source_name: path.display().to_string(),
                message: err.to_string(),
            });
        }
    };
    let parsed: DockerConfig = serde_json::from_str(&text).map_err(|err| Error::Credentials {
        source_name: path.display().to_string(),
        message: format!(
            "not valid Docker config JSON (line {}, column {}): {err}",
            err.line(),
            err.column()
        ),
    })?;
    let helper = parsed
        .cred_helpers
        .iter()
        .find(|(key, _)| same_registry(key, registry))
        .map(|(_, name)| (name.as_str(), "credHelpers"))
        .or_else(|| {
            parsed
                .creds_store
                .as_deref()
                .map(|name| (name, "credsStore"))
        });
    if let Some((name, key)) = helper.filter(|(name, _)| !name.is_empty()) {
        let program = format!("docker-credential-{name}");
        let source = CredentialSource::Helper {
            program: program.clone(),
            key,
            config: path.to_owned(),
        };
        return match run_helper(&program, server_key(registry), env.helper_path.as_deref())? {
            Some((username, secret)) => Ok(Credentials {
                username,
                secret,
                source,
            }),
            None => Ok(anonymous(Some(path))),
        };
    }
    let entry = parsed
        .auths
        .iter()
        .find(|(key, _)| same_registry(key, registry))
        .map(|(_, entry)| entry);
    let Some(entry) = entry else {
        return Ok(anonymous(Some(path)));
    };
    let bad = |message: &str| Error::Credentials {
        source_name: format!("the `auths` entry for {registry} in {}", path.display()),
        message: message.to_owned(),
    };
    if entry
        .identity_token
        .as_deref()
        .is_some_and(|t| !t.is_empty())
    {
        return Err(bad(
            "it holds an OAuth identity token, which terrarium does not support; set \
             TERRARIUM_REGISTRY_USER/TERRARIUM_REGISTRY_PASSWORD instead",
        ));
    }
    let (username, secret) = match (&entry.auth, &entry.username, &entry.password) {
        (Some(auth), _, _) if !auth.is_empty() => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad("`auth` is not base64"))?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad("`auth` is not UTF-8"))?;
            let (user, pass) = decoded
                .split_once(':')
                .ok_or_else(|| bad("`auth` is not base64 of `user:password`"))?;
            (user.to_owned(), pass.to_owned())
        }
        (_, Some(user), Some(pass)) => (user.clone(), pass.clone()),
        _ => return Ok(anonymous(Some(path))),
    };
    Ok(Credentials {
        username,
        secret,
        source: CredentialSource::Auths {
            config: path.to_owned(),
        },
    })
}

/// Run `program get` with `server` on stdin. `None` when the helper has nothing for it.
fn run_helper(
    program: &str,
    server: &str,
    path: Option<&OsStr>,
) -> Result<Option<(String, String)>, Error> {
    let fail = |message: String| Error::Credentials {
        source_name: program.to_owned(),
        message,
    };
    let mut command = Command::new(program);
    if let Some(path) = path {
        // Setting the child's PATH also makes std search it for the program.
        command.env("PATH", path);
    }
    let mut child = command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| {
            fail(format!(
                "cannot run it ({err}); install it or remove it from the Docker config"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|err| fail(format!("writing to its stdin: {err}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|err| fail(format!("waiting for it: {err}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // Docker's helpers answer "credentials not found in native keychain" for an unknown
        // server: that is no credentials, not a failure.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(fail(format!(
            "`{program} get` failed ({}): {}",
            output.status,
            format!("{stdout}{stderr}").trim()
        )));
    }
    let reply: HelperReply = serde_json::from_str(stdout.trim()).map_err(|err| {
        fail(format!(
            "its answer is not the helper protocol's JSON ({{\"Username\", \"Secret\"}}): {err}"
        ))
    })?;
    if reply.username == "<token>" {
        return Err(fail(
            "it returned an OAuth identity token, which terrarium does not support; set \
             TERRARIUM_REGISTRY_USER/TERRARIUM_REGISTRY_PASSWORD instead"
                .into(),
        ));
    }
    Ok(Some((reply.username, reply.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, json: &str) -> CredentialEnv {
        let path = dir.join("config.json");
        std::fs::write(&path, json).unwrap();
        CredentialEnv {
            config: Some(path),
            helper_path: Some(dir.as_os_str().to_owned()),
            ..CredentialEnv::default()
        }
    }

    #[test]
    fn reads_auths_entries_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let env = config(
            dir.path(),
            r#"{"auths": {"https://reg.example:5000/v1/": {"auth": "dXNlcjpwYTpzcw=="},
                          "other.example": {"username": "u2", "password": "p2"}}}"#,
        );
        let creds = lookup("reg.example:5000", &env).unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.secret.as_str()),
            ("user", "pa:ss")
        );
        assert!(matches!(creds.source, CredentialSource::Auths { .. }));
        assert_eq!(creds.basic(), "Basic dXNlcjpwYTpzcw==");
        let creds = lookup("other.example", &env).unwrap();
        assert_eq!(creds.username, "u2");
        let creds = lookup("third.example", &env).unwrap();
        assert!(matches!(creds.source, CredentialSource::Anonymous { .. }));
        assert!(creds.source.to_string().contains("no credentials"));
    }

    #[test]
    fn runs_the_credential_helper_for_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-unit");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 3\n\
             if [ \"$server\" = reg.example ]; then printf '{\"Username\":\"hu\",\"Secret\":\"hs\"}'; \
             else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = config(
            dir.path(),
            r#"{"credHelpers": {"reg.example": "unit"}, "auths": {"reg.example": {"auth": "eDp5"}}}"#,
        );
        let creds = lookup("reg.example", &env).unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.secret.as_str()),
            ("hu", "hs")
        );
        assert!(
            creds.source.to_string().contains("credHelpers"),
            "{}",
            creds.source
        );
        let env = config(dir.path(), r#"{"credsStore": "unit"}"#);
        let creds = lookup("elsewhere.example", &env).unwrap();
        assert!(matches!(creds.source, CredentialSource::Anonymous { .. }));
        let env = config(dir.path(), r#"{"credsStore": "missing"}"#);
        let err = lookup("reg.example", &env).unwrap_err().to_string();
        assert!(err.contains("docker-credential-missing"), "{err}");
    }

    #[test]
    fn environment_wins_and_needs_both_variables() {
        let dir = tempfile::tempdir().unwrap();
        let mut env = config(
            dir.path(),
            r#"{"auths": {"reg.example": {"auth": "eDp5"}}}"#,
        );
        env.user = Some("eu".into());
        env.password = Some("ep".into());
        let creds = lookup("reg.example", &env).unwrap();
        assert_eq!(creds.source, CredentialSource::Environment);
        assert_eq!(creds.secret, "ep");
        env.password = None;
        let err = lookup("reg.example", &env).unwrap_err().to_string();
        assert!(err.contains("TERRARIUM_REGISTRY_PASSWORD"), "{err}");
    }

    #[test]
    fn malformed_config_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let env = config(dir.path(), "{\n  \"auths\": [\n");
        let err = lookup("reg.example", &env).unwrap_err().to_string();
        assert!(err.contains("config.json") && err.contains("line"), "{err}");
    }

    #[test]
    fn keys_match_with_or_without_scheme() {
        assert!(same_registry("https://index.docker.io/v1/", "docker.io"));
        assert!(same_registry("http://localhost:5000", "localhost:5000"));
        assert!(!same_registry("localhost:5001", "localhost:5000"));
    }
}
