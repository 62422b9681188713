//! One registry session: the scheme (HTTPS, or HTTP where allowed), the TLS roots from
//! `certs.d`, authentication (basic, or bearer tokens for the repositories in use) and requests
//! retried with backoff on connection errors, 429 and 5xx.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};

pub(crate) use terrarium_image::error_chain;

use crate::challenge::Challenge;
use crate::credentials::{self, CredentialEnv, CredentialSource, Credentials};
use crate::error::Error;
use crate::reference::DOCKER_HUB;

/// Environment variable naming one `certs.d` directory to use instead of the system ones.
pub const CERTS_DIR_ENV: &str = "TERRARIUM_REGISTRY_CERTS_DIR";

/// The system `certs.d` directories, as skopeo/podman and Docker read them:
/// `DIR/HOST:PORT/*.crt` are extra CA certificates for that registry.
const SYSTEM_CERTS_DIRS: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

/// Attempts for a request that fails with a connection error, 429 or 5xx.
pub(crate) const ATTEMPTS: u32 = 4;

/// How a client connects and authenticates.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Registries (`host[:port]`) that may be reached over plain HTTP besides localhost.
    pub insecure: Vec<String>,
    /// `certs.d` roots for per-registry CA certificates.
    pub certs_dirs: Vec<PathBuf>,
    /// Where credentials come from.
    pub credentials: CredentialEnv,
}

impl ClientOptions {
    /// Options from the process environment: credentials (see [`CredentialEnv`]) and
    /// [`CERTS_DIR_ENV`] or the system `certs.d` directories, with `insecure` registries.
    pub fn from_env(insecure: Vec<String>) -> Self {
        let certs_dirs = match std::env::var_os(CERTS_DIR_ENV).filter(|d| !d.is_empty()) {
            Some(dir) => vec![PathBuf::from(dir)],
            None => SYSTEM_CERTS_DIRS.iter().map(PathBuf::from).collect(),
        };
        Self {
            insecure,
            certs_dirs,
            credentials: CredentialEnv::from_process(),
        }
    }
}

/// Whether `registry` may be reached over plain HTTP: loopback names and addresses, or listed.
fn http_allowed(registry: &str, insecure: &[String]) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback || insecure.iter().any(|allowed| allowed == registry)
}

/// The registry's own message from an error response: the `errors` list of the distribution
/// spec, else the body's first line.
pub(crate) fn registry_message(response: Response) -> String {
    let status = response.status();
    let body = response.text().unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(errors) = serde_json::from_str::<Errors>(&body)
        && !errors.errors.is_empty()
    {
        return errors
            .errors
            .iter()
            .map(|e| format!("{} ({})", e.message, e.code))
            .collect::<Vec<_>>()
            .join("; ");
    }
    let line = body.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        status.canonical_reason().unwrap_or("no message").to_owned()
    } else {
        line.chars().take(300).collect()
    }
}

/// A session with one registry.
#[derive(Debug)]
pub struct Session {
    registry: String,
    base: String,
    client: Client,
    challenge: Option<Challenge>,
    credentials: Option<Credentials>,
    options: ClientOptions,
    authorization: Mutex<Option<String>>,
    scopes: Mutex<BTreeSet<String>>,
    requests: AtomicU64,
}

#[derive(serde::Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

fn read_certs(dirs: &[PathBuf], registry: &str) -> Result<Vec<reqwest::Certificate>, Error> {
    let mut certs = Vec::new();
    for dir in dirs {
        let dir = dir.join(registry);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "crt"))
            .collect();
        paths.sort();
        for path in paths {
            let bad = |message: String| Error::Certificate {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(&path).map_err(|err| bad(err.to_string()))?;
            let found = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|err| bad(format!("not a PEM certificate: {}", error_chain(&err))))?;
            certs.extend(found);
        }
    }
    Ok(certs)
}

/// The HTTP client for `registry`: with `tls`, the system's roots plus the registry's
/// certs.d certificates; without, no roots at all (for plain HTTP: loading the system's trust
/// store is the slowest part of a warm push).
fn build_client(registry: &str, options: &ClientOptions, tls: bool) -> Result<Client, Error> {
    let mut builder = Client::builder()
        .user_agent(concat!("terrarium/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(900));
    if tls {
        let certs = read_certs(&options.certs_dirs, registry)?;
        if !certs.is_empty() {
            builder = builder.tls_certs_merge(certs);
        }
    } else {
        builder = builder.tls_certs_only(Vec::new());
    }
    builder.build().map_err(|err| Error::Network {
        registry: registry.to_owned(),
        what: "setting up the HTTP client".into(),
        message: error_chain(&err),
    })
}

impl Session {
    /// Connect to `registry` (`host[:port]`): pick the scheme with `GET /v2/` and learn how it
    /// authenticates. Credentials are looked up only when the registry asks for them.
    /// `plain_http_first`: the registry answered plain HTTP last time (and may: see
    /// [`ClientOptions::insecure`]), so try that before HTTPS and skip loading the system's
    /// trust store unless HTTPS is needed after all.
    pub fn connect(
        registry: &str,
        options: &ClientOptions,
        plain_http_first: bool,
    ) -> Result<Self, Error> {
        let api_host = if registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            registry
        };
        let http_ok = http_allowed(registry, &options.insecure);
        let plain_first = plain_http_first && http_ok;
        let mut session = Self {
            registry: registry.to_owned(),
            base: format!("http://{api_host}"),
            client: build_client(registry, options, !plain_first)?,
            challenge: None,
            credentials: None,
            options: options.clone(),
            authorization: Mutex::new(None),
            scopes: Mutex::new(BTreeSet::new()),
            requests: AtomicU64::new(0),
        };
        // A TLS-only server answers plain HTTP with 400: only 200 and 401 mean "a registry".
        let is_registry =
            |r: &Response| matches!(r.status(), StatusCode::OK | StatusCode::UNAUTHORIZED);
        let remembered = if plain_first {
            session.ping().ok().filter(is_registry)
        } else {
            None
        };
        let ping = match remembered {
            Some(response) => response,
            None => {
                if plain_first {
                    session.client = build_client(registry, options, true)?;
                }
                session.base = format!("https://{api_host}");
                match session.ping() {
                    Ok(response) => response,
                    Err(Error::Network { message, .. }) if http_ok && !plain_first => {
                        session.base = format!("http://{api_host}");
                        match session.ping() {
                            Ok(response) if is_registry(&response) => response,
                            _ => {
                                return Err(Error::Network {
                                    registry: registry.to_owned(),
                                    what: "connecting (HTTPS, then HTTP)".into(),
                                    message,
                                });
                            }
                        }
                    }
                    Err(Error::Network { message, .. }) if message.contains("certificate") => {
                        return Err(Error::Insecure {
                            registry: registry.to_owned(),
                            message,
                        });
                    }
                    Err(err) => return Err(err),
                }
            }
        };
        match ping.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => {
                let challenge = ping
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .find_map(Challenge::parse);
                let Some(challenge) = challenge else {
                    return Err(Error::Http {
                        registry: registry.to_owned(),
                        what: "GET /v2/".into(),
                        status: 401,
                        message: "no Basic or Bearer challenge in WWW-Authenticate".into(),
                    });
                };
                session.credentials = Some(credentials::lookup(registry, &options.credentials)?);
                session.challenge = Some(challenge);
                session.authenticate()?;
            }
            status => {
                return Err(Error::Http {
                    registry: registry.to_owned(),
                    what: "GET /v2/ (is this a registry?)".into(),
                    status: status.as_u16(),
                    message: registry_message(ping),
                });
            }
        }
        Ok(session)
    }

    /// Whether the session speaks plain HTTP (worth remembering for the next connection).
    pub fn is_plain_http(&self) -> bool {
        self.base.starts_with("http://")
    }

    fn ping(&self) -> Result<Response, Error> {
        let url = format!("{}/v2/", self.base);
        let attempts = if self.base.starts_with("https://")
            && http_allowed(&self.registry, &self.options.insecure)
        {
            1
        } else {
            ATTEMPTS
        };
        self.send_unauthenticated("GET /v2/", attempts, || self.client.get(&url))
    }

    /// The registry as written in the reference.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `https://host` or `http://host`, the prefix of every API URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Requests sent so far, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The credential source in use (anonymous when the registry asked for none).
    pub fn credential_source(&self) -> CredentialSource {
        self.credentials
            .as_ref()
            .map(|c| c.source.clone())
            .unwrap_or(CredentialSource::Anonymous { config: None })
    }

    /// Make sure the bearer token (if any) covers `repository` for `actions` (`pull,push` or
    /// `pull`); fetches a new token when the set of scopes grew.
    pub fn ensure_scope(&self, repository: &str, actions: &str) -> Result<(), Error> {
        let scope = format!("repository:{repository}:{actions}");
        let grew = self
            .scopes
            .lock()
            .map(|mut scopes| scopes.insert(scope))
            .unwrap_or(false);
        if grew && matches!(self.challenge, Some(Challenge::Bearer { .. })) {
            self.authenticate()?;
        }
        Ok(())
    }

    /// Set the `Authorization` value for the registry's challenge.
    fn authenticate(&self) -> Result<(), Error> {
        let credentials = self.credentials.as_ref();
        let anonymous = credentials.is_none_or(|c| c.username.is_empty());
        let source = self.credential_source();
        let value = match &self.challenge {
            None => return Ok(()),
            Some(Challenge::Basic) => {
                let Some(credentials) = credentials.filter(|_| !anonymous) else {
                    return Err(Error::Unauthorized {
                        registry: self.registry.clone(),
                        what: "GET /v2/".into(),
                        status: 401,
                        message: "the registry requires a user name and password".into(),
                        credentials: Box::new(source.clone()),
                    });
                };
                let value = credentials.basic();
                // Check them now, so a wrong password is reported once, before any upload.
                let url = format!("{}/v2/", self.base);
                let response = self.send_unauthenticated("GET /v2/", ATTEMPTS, || {
                    self.client.get(&url).header(AUTHORIZATION, &value)
                })?;
                if !response.status().is_success() {
                    return Err(Error::Unauthorized {
                        registry: self.registry.clone(),
                        what: "signing in (GET /v2/)".into(),
                        status: response.status().as_u16(),
                        message: registry_message(response),
                        credentials: Box::new(source.clone()),
                    });
                }
                value
            }
            Some(Challenge::Bearer { realm, service }) => {
                let mut params: Vec<(&str, String)> = Vec::new();
                if let Some(service) = service {
                    params.push(("service", service.clone()));
                }
                if let Ok(scopes) = self.scopes.lock() {
                    params.extend(scopes.iter().map(|s| ("scope", s.clone())));
                }
                let url =
                    reqwest::Url::parse_with_params(realm, &params).map_err(|err| Error::Http {
                        registry: self.registry.clone(),
                        what: "reading the token realm".into(),
                        status: 401,
                        message: format!("`{realm}` is not a URL: {err}"),
                    })?;
                let response = self.send_unauthenticated("GET token", ATTEMPTS, || {
                    let request = self.client.get(url.clone());
                    match credentials.filter(|_| !anonymous) {
                        Some(c) => request.header(AUTHORIZATION, c.basic()),
                        None => request,
                    }
                })?;
                if !response.status().is_success() {
                    return Err(Error::Unauthorized {
                        registry: self.registry.clone(),
                        what: format!("getting a token from {realm}"),
                        status: response.status().as_u16(),
                        message: registry_message(response),
                        credentials: Box::new(source.clone()),
                    });
                }
                let body = response.bytes().map_err(|err| Error::Network {
                    registry: self.registry.clone(),
                    what: format!("getting a token from {realm}"),
                    message: error_chain(&err),
                })?;
                let reply: TokenReply =
                    serde_json::from_slice(&body).map_err(|err| Error::Http {
                        registry: self.registry.clone(),
                        what: format!("getting a token from {realm}"),
                        status: 200,
                        message: format!("the reply is not a token: {}", error_chain(&err)),
                    })?;
                let token = reply
                    .token
                    .or(reply.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| Error::Http {
                        registry: self.registry.clone(),
                        what: format!("getting a token from {realm}"),
                        status: 200,
                        message: "the reply has no `token`".into(),
                    })?;
                format!("Bearer {token}")
            }
        };
        if let Ok(mut authorization) = self.authorization.lock() {
            *authorization = Some(value);
        }
        Ok(())
    }

    fn send_unauthenticated(
        &self,
        what: &str,
        attempts: u32,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = build().send();
            let retry = match &outcome {
                Ok(response) => {
                    let status = response.status();
                    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
                }
                Err(_) => true,
            };
            if !retry || attempt >= attempts {
                return outcome.map_err(|err| Error::Network {
                    registry: self.registry.clone(),
                    what: what.to_owned(),
                    message: error_chain(&err),
                });
            }
            std::thread::sleep(backoff(attempt));
        }
    }

    /// Send the request `build` makes, authenticated, retrying connection errors, 429 and 5xx
    /// up to `attempts` times with backoff, and a 401 once with a fresh token. The response
    /// may still be an error status: see [`Session::check`].
    pub fn send(
        &self,
        what: &str,
        attempts: u32,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, Error> {
        let authorized = || {
            let request = build();
            match self.authorization.lock().ok().and_then(|a| a.clone()) {
                Some(value) => request.header(AUTHORIZATION, value),
                None => request,
            }
        };
        let response = self.send_unauthenticated(what, attempts, authorized)?;
        if response.status() == StatusCode::UNAUTHORIZED
            && matches!(self.challenge, Some(Challenge::Bearer { .. }))
        {
            // Tokens expire; one fresh token, then the 401 stands.
            self.authenticate()?;
            return self.send_unauthenticated(what, attempts, authorized);
        }
        Ok(response)
    }

    /// `response` when its status is one of `ok`, else the error it means (401/403 name the
    /// credential source).
    pub fn check(&self, what: &str, response: Response, ok: &[u16]) -> Result<Response, Error> {
        let status = response.status().as_u16();
        if ok.contains(&status) {
            return Ok(response);
        }
        let message = registry_message(response);
        if matches!(status, 401 | 403) {
            return Err(Error::Unauthorized {
                registry: self.registry.clone(),
                what: what.to_owned(),
                status,
                message,
                credentials: Box::new(self.credential_source()),
            });
        }
        Err(Error::Http {
            registry: self.registry.clone(),
            what: what.to_owned(),
            status,
            message,
        })
    }

    /// The HTTP client (for building requests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// An absolute URL for a `Location` header value, which may be relative to the registry.
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}/{}", self.base, location.trim_start_matches('/'))
        }
    }
}

/// Wait before attempt `attempt + 1`: 250 ms, 500 ms, 1 s, … capped at 4 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64 << attempt.saturating_sub(1).min(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_or_listed() {
        for ok in [
            "localhost:5000",
            "127.0.0.1:5001",
            "127.8.0.1",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(http_allowed(ok, &[]), "{ok}");
        }
        for no in ["example.com:5000", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!http_allowed(no, &[]), "{no}");
        }
        assert!(http_allowed("reg.lan:5000", &["reg.lan:5000".into()]));
        assert!(!http_allowed("reg.lan:5001", &["reg.lan:5000".into()]));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(9), Duration::from_secs(4));
    }
}
