//! The app layer from the Plan alone: the build context under /app with the plan's
//! `.dockerignore` rules (Docker's semantics), data directories owned by the plan's user, that
//! user's account when it is not the runtime's, and the project installed as the plan says.

use std::collections::BTreeMap;
use std::path::Path;

use terrarium_build::app_tree;
use terrarium_image::{EntryKind, LayerTree};
use terrarium_plan::{PlanOptions, plan};
use terrarium_wheels::Target;

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

/// path → (kind, uid:gid)
fn entries(tree: &LayerTree) -> BTreeMap<String, (String, String)> {
    tree.entries()
        .map(|e| {
            let kind = match &e.kind {
                EntryKind::Directory => "dir".to_string(),
                EntryKind::File { .. } => "file".to_string(),
                EntryKind::Symlink { target } => format!("-> {target}"),
                other => format!("{other:?}"),
            };
            (
                e.path.as_str().to_owned(),
                (kind, format!("{}:{}", e.owner.uid, e.owner.gid)),
            )
        })
        .collect()
}

fn tree_of(dir: &Path) -> BTreeMap<String, (String, String)> {
    let project = terrarium_project::detect(dir).expect("detect");
    let plan = plan(&project, &PlanOptions::default()).expect("plan");
    let context = plan
        .context_rules()
        .expect("rules")
        .walk(dir)
        .expect("context");
    entries(&app_tree(&plan, &Target::bookworm(), &context).expect("app tree"))
}

const APP: (&str, &str) = (
    "app.py",
    "import os\nfrom flask import Flask\napp = Flask(__name__)\n\
     DATA = os.environ.get('DATA_DIR', '/app/data')\n",
);

#[test]
fn the_context_rules_decide_what_reaches_app() {
    let dir = project(&[
        APP,
        ("requirements.txt", "flask==3.1.2\n"),
        (".env", "TOKEN=x\n"),
        ("config/.env.local", "TOKEN=x\n"),
        (".git/HEAD", "ref\n"),
        ("id_rsa", "key\n"),
        ("secrets.json", "{}\n"),
        ("docs/notes.md", "x\n"),
        ("docs/README.md", "x\n"),
        (".dockerignore", "secrets.json\ndocs\n!docs/README.md\n"),
        ("pkg/build/mod.py", "X = 1\n"),
        ("build/out.txt", "x\n"),
        ("pkg/__pycache__/mod.cpython-311.pyc", "x"),
        ("Dockerfile", "FROM scratch\n"),
    ]);
    let tree = tree_of(dir.path());
    for gone in [
        "app/.env",
        "app/config/.env.local",
        "app/.git",
        "app/id_rsa",
        "app/secrets.json",
        "app/docs/notes.md",
        "app/build",
        "app/pkg/__pycache__",
        "app/Dockerfile",
        "app/.dockerignore",
    ] {
        assert!(!tree.contains_key(gone), "{gone} is in the layer");
    }
    for kept in [
        "app/app.py",
        "app/requirements.txt",
        "app/pkg/build/mod.py",
        "app/docs/README.md",
        "app/config",
    ] {
        assert!(tree.contains_key(kept), "{kept} is missing: {tree:?}");
    }
    assert_eq!(tree["app/app.py"].1, "0:0", "source is root-owned");
}

#[test]
fn data_directories_belong_to_the_plans_user_also_in_the_source() {
    let dir = project(&[
        APP,
        ("requirements.txt", "flask==3.1.2\n"),
        ("data/seed.json", "{}\n"),
        ("terrarium.toml", "user = \"10001:10002\"\n"),
    ]);
    let tree = tree_of(dir.path());
    assert_eq!(tree["app/data"], ("dir".into(), "10001:10002".into()));
    assert_eq!(tree["app/data/seed.json"].1, "10001:10002");
    let passwd = tree
        .get("etc/passwd")
        .expect("an account for the configured user");
    assert_eq!(passwd.0, "file");
    assert_eq!(tree["home/nonroot"].1, "10001:10002");
}

#[test]
fn the_default_user_needs_no_account_of_its_own() {
    let dir = project(&[APP, ("requirements.txt", "flask==3.1.2\n")]);
    let tree = tree_of(dir.path());
    assert!(!tree.contains_key("etc/passwd"));
    assert_eq!(tree["app/data"].1, "65532:65532");
}
