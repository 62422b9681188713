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
