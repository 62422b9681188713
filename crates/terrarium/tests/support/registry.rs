//! Local registries for the push tests: Debian's `docker-registry` (the CNCF distribution
//! registry) on 127.0.0.1, plain HTTP or HTTPS with a throwaway CA and htpasswd basic auth.
//! Each has its own storage and access log; it is stopped (by its own pid) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// One request from the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, `POST`, `PATCH`, `PUT`.
    pub method: String,
    /// The path and query.
    pub uri: String,
    /// The response status.
    pub status: u16,
}

/// A running registry.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Its working directory (config, storage, log, certificates).
    pub dir: tempfile::TempDir,
    /// For the HTTPS registry: a certs.d root holding `127.0.0.1:PORT/ca.crt`.
    pub certs_dir: Option<PathBuf>,
    child: Child,
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| panic!("run {program}: {err} (scripts/test installs it)"));
    assert!(
        output.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Registry {
    /// A registry on plain HTTP without authentication.
    pub fn plain() -> Self {
        Self::start(None)
    }

    /// A registry on HTTPS (a certificate from a fresh CA) with htpasswd basic auth for `user`.
    pub fn secure(user: &str, password: &str) -> Self {
        Self::start(Some((user, password)))
    }

    fn start(auth: Option<(&str, &str)>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("terrarium-registry-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let mut certs_dir = None;
        if let Some((user, password)) = auth {
            let d = dir.path();
            run(
                "openssl",
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-subj",
                    "/CN=terrarium test CA",
                ],
                d,
            );
            run(
                "openssl",
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
                d,
            );
            std::fs::write(
                d.join("server.ext"),
                "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n\
                 keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            run(
                "openssl",
                &[
                    "x509",
                    "-req",
                    "-in",
                    "server.csr",
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    "server.ext",
                    "-out",
                    "server.crt",
                ],
                d,
            );
            run("htpasswd", &["-Bbc", "htpasswd", user, password], d);
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n\
                 auth:\n  htpasswd:\n    realm: terrarium-test\n    path: {}\n",
                d.join("server.crt").display(),
                d.join("server.key").display(),
                d.join("htpasswd").display()
            ));
            let certs = d.join("certs.d");
            std::fs::create_dir_all(certs.join(&host)).unwrap();
            std::fs::copy(d.join("ca.crt"), certs.join(&host).join("ca.crt")).unwrap();
            certs_dir = Some(certs);
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry (scripts/test installs Debian's docker-registry)");
        let registry = Self {
            host,
            dir,
            certs_dir,
            child,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Every request in the access log so far (`"METHOD URI HTTP/1.1" STATUS` lines).
    pub fn requests(&self) -> Vec<Request> {
        self.log()
            .lines()
            .filter_map(|line| {
                let (_, rest) = line.split_once("] \"")?;
                let (request, rest) = rest.split_once('"')?;
                let mut parts = request.split(' ');
                let method = parts.next()?.to_owned();
                let uri = parts.next()?.to_owned();
                let status = rest.split_whitespace().next()?.parse().ok()?;
                Some(Request {
                    method,
                    uri,
                    status,
                })
            })
            .collect()
    }

    /// The requests that carried blob bytes: uploads' `PATCH` and `PUT` (excluding empty
    /// commits is not possible from the log, so every upload request counts).
    pub fn blob_uploads(requests: &[Request]) -> Vec<&Request> {
        requests
            .iter()
            .filter(|r| {
                r.uri.contains("/blobs/uploads/") && matches!(r.method.as_str(), "PATCH" | "PUT")
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
