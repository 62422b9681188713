//! Bearer-token authentication (Docker's token protocol) against a small registry double on
//! 127.0.0.1: the local `docker-registry` of the end-to-end tests speaks basic auth only. The
//! double asks for a token on every API request, hands one out for the right basic credentials
//! with the scopes asked for, and accepts a push made with it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use terrarium_image::{Cache, NoProgress};
use terrarium_registry::{
    Artifact, Blob, ClientOptions, CredentialEnv, Error, Manifest, PushOptions, Pusher, Reference,
};

const TOKEN: &str = "tok-e2e-123";

#[derive(Default)]
struct Seen {
    token_queries: Vec<String>,
    api_calls: Vec<(String, String, bool)>,
}

struct Request {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (key, value) = header.split_once(':')?;
        headers.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &str) {
    let mut text = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (key, value) in headers {
        text.push_str(&format!("{key}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    let _ = stream.write_all(text.as_bytes());
}

/// Serve until the process ends; returns the port and what was seen.
fn registry_double() -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = seen.clone();
    std::thread::spawn(move || {
        let blobs: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let Some(request) = read_request(&mut stream) else {
                continue;
            };
            let path = request.target.split('?').next().unwrap_or("").to_owned();
            if path == "/token" {
                // alice:s3cret
                let ok = request.headers.get("authorization").map(String::as_str)
                    == Some("Basic YWxpY2U6czNjcmV0");
                state
                    .lock()
                    .unwrap()
                    .token_queries
                    .push(request.target.clone());
                if ok {
                    respond(
                        &mut stream,
                        "200 OK",
                        &[],
                        &format!(r#"{{"token":"{TOKEN}"}}"#),
                    );
                } else {
                    respond(
                        &mut stream,
                        "401 Unauthorized",
                        &[],
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad user or password"}]}"#,
                    );
                }
                continue;
            }
            let authorized = request.headers.get("authorization").map(String::as_str)
                == Some(&format!("Bearer {TOKEN}")[..]);
            state.lock().unwrap().api_calls.push((
                request.method.clone(),
                request.target.clone(),
                authorized,
            ));
            if !authorized {
                let challenge =
                    format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="double""#);
                respond(
                    &mut stream,
                    "401 Unauthorized",
                    &[("WWW-Authenticate", challenge)],
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}"#,
                );
                continue;
            }
            let digest_param = request
                .target
                .split_once("digest=")
                .map(|(_, d)| d.split('&').next().unwrap_or(d).to_owned());
            match (request.method.as_str(), path.as_str()) {
                ("GET", "/v2/") => respond(&mut stream, "200 OK", &[], "{}"),
                ("HEAD", p) if p.contains("/blobs/") => {
                    let digest = p.rsplit('/').next().unwrap_or("");
                    if blobs.lock().unwrap().contains_key(digest) {
                        respond(&mut stream, "200 OK", &[], "");
                    } else {
                        respond(&mut stream, "404 Not Found", &[], "");
                    }
                }
                ("HEAD", _) => respond(&mut stream, "404 Not Found", &[], ""),
                ("POST", p) if p.ends_with("/blobs/uploads/") => respond(
                    &mut stream,
                    "202 Accepted",
                    &[("Location", "/upload/session-1?state=x".into())],
                    "",
                ),
                ("PUT", "/upload/session-1") => {
                    let digest = digest_param.unwrap_or_default();
                    blobs.lock().unwrap().insert(digest, request.body.len());
                    respond(&mut stream, "201 Created", &[], "");
                }
                ("PUT", p) if p.contains("/manifests/") => {
                    let digest = terrarium_image::Digest::of(&request.body).to_string();
                    respond(
                        &mut stream,
                        "201 Created",
                        &[("Docker-Content-Digest", digest)],
                        "",
                    );
                }
                _ => respond(&mut stream, "400 Bad Request", &[], ""),
            }
        }
    });
    (port, seen)
}

fn artifact(cache: &Cache) -> Artifact {
    let mut blobs = Vec::new();
    for content in [&b"{\"config\":true}"[..], &b"layer bytes"[..]] {
        let digest = cache.put_bytes(content).unwrap();
        blobs.push(Blob {
            digest,
            size: content.len() as u64,
            path: cache.get(&digest).unwrap().unwrap(),
        });
    }
    Artifact {
        blobs,
        manifest: Manifest::new(
            "application/vnd.oci.image.manifest.v1+json",
            b"{\"schemaVersion\":2}".to_vec(),
        ),
    }
}

fn options(user: &str, password: &str) -> PushOptions {
    PushOptions {
        client: ClientOptions {
            insecure: Vec::new(),
            certs_dirs: Vec::new(),
            credentials: CredentialEnv {
                user: Some(user.into()),
                password: Some(password.into()),
                config: None,
                helper_path: None,
            },
        },
        chunk_size: 1 << 20,
        workers: 2,
    }
}

#[test]
fn pushes_with_a_bearer_token_scoped_to_the_repository() {
    let (port, seen) = registry_double();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let artifact = artifact(&cache);
    let target: Reference = format!("localhost:{port}/team/app:v1").parse().unwrap();
    let mut pusher = Pusher::new(&cache, options("alice", "s3cret"), &NoProgress);
    let report = pusher.push(&artifact, &target).unwrap();
    assert_eq!(report.blobs.len(), 2);
    assert_eq!(report.uploaded_bytes(), 15 + 11);

    let seen = seen.lock().unwrap();
    assert!(
        seen.token_queries
            .iter()
            .any(|q| q.contains("service=double")
                && q.contains("scope=repository%3Ateam%2Fapp%3Apull%2Cpush")),
        "{:?}",
        seen.token_queries
    );
    // After the first challenge, every API request carries the token.
    let unauthorized: Vec<_> = seen.api_calls.iter().skip(1).filter(|c| !c.2).collect();
    assert!(unauthorized.is_empty(), "{unauthorized:?}");
}

#[test]
fn a_refused_token_names_the_realm_and_the_credentials() {
    let (port, _) = registry_double();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let artifact = artifact(&cache);
    let target: Reference = format!("localhost:{port}/team/app:v1").parse().unwrap();
    let mut pusher = Pusher::new(&cache, options("alice", "wrong"), &NoProgress);
    let err = pusher.push(&artifact, &target).unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("/token")
            && text.contains("bad user or password")
            && text.contains("TERRARIUM_REGISTRY_USER"),
        "{text}"
    );
}
