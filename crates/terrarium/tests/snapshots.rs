//! Snapshot tests (insta): the files `terrarium init` writes and the `terrarium plan --json`
//! document, for every fixture, with the default (pinned official) base image.

mod support;

use support::*;

fn read(dir: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn generated_files_and_plans() {
    for name in fixture_names() {
        let fixture = fixture(&name);
        let dir = fixture.service();
        terrarium().arg("init").arg(&dir).assert().success();
        for file in ["Dockerfile", "Dockerfile.dev", "compose.yaml"] {
            insta::assert_snapshot!(format!("{name}__{file}"), read(&dir, file));
        }
        if dir.join("Dockerfile.dockerignore").is_file() {
            insta::assert_snapshot!(
                format!("{name}__Dockerfile.dockerignore"),
                read(&dir, "Dockerfile.dockerignore")
            );
        }
        let output = terrarium()
            .args(["plan", "--json"])
            .arg(&dir)
            .output()
            .expect("plan");
        assert!(output.status.success());
        let root = dir.display().to_string();
        let json = String::from_utf8_lossy(&output.stdout).replace(&root, "[ROOT]");
        insta::assert_snapshot!(format!("{name}__plan.json"), json);
    }
}

#[test]
fn dockerignore_is_the_same_everywhere() {
    let dir = fixture("flask-requirements");
    terrarium().arg("init").arg(dir.path()).assert().success();
    insta::assert_snapshot!(read(dir.path(), ".dockerignore"));
}

#[test]
fn proxy_and_postgres() {
    let dir = fixture("flask-requirements");
    terrarium()
        .args(["init", "--proxy", "--postgres"])
        .arg(dir.path())
        .assert()
        .success();
    insta::assert_snapshot!(
        "proxy_postgres__compose.yaml",
        read(dir.path(), "compose.yaml")
    );
    insta::assert_snapshot!(
        "proxy_postgres__nginx.conf",
        read(dir.path(), "proxy/nginx.conf")
    );
}

/// Every file under `k8s/` but the secrets, one after another with its path; the secrets
/// files with their variable names only (their values are random).
fn k8s_tree(dir: &std::path::Path) -> String {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&dir.join("k8s"), &mut files);
    let mut out = String::new();
    for file in files {
        let rel = file
            .strip_prefix(dir)
            .expect("inside")
            .display()
            .to_string();
        let text = std::fs::read_to_string(&file).expect("read");
        let text = if rel.ends_with("secrets.env") {
            text.lines()
                .map(|l| match l.split_once('=') {
                    Some((name, _)) if !l.starts_with('#') => format!("{name}=[VALUE]\n"),
                    _ => format!("{l}\n"),
                })
                .collect()
        } else {
            text
        };
        out.push_str(&format!("==> {rel} <==\n{text}\n"));
    }
    out
}

#[test]
fn swarm_stacks_and_kubernetes_manifests() {
    let mut projects: Vec<(String, Fixture)> = fixture_names()
        .into_iter()
        .map(|name| {
            let dir = fixture(&name);
            (name, dir)
        })
        .collect();
    projects.push(("loyalty".into(), example("loyalty")));
    for (name, dir) in projects {
        terrarium()
            .args(["deploy", "swarm", "--write-only"])
            .arg(dir.service())
            .assert()
            .success();
        insta::assert_snapshot!(
            format!("{name}__stack.yaml"),
            read(&dir.service(), "stack.yaml")
        );
        if name == "loyalty" {
            insta::assert_snapshot!(
                "loyalty__nginx.stack.conf",
                read(&dir.service(), "gateway/nginx.stack.conf")
            );
        }
        terrarium().arg("k8s").arg(dir.service()).assert().success();
        insta::assert_snapshot!(format!("{name}__k8s"), k8s_tree(&dir.service()));
    }
}
