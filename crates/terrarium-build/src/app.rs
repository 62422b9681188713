//! The app layer: the project's build context under /app (the plan's `.dockerignore` rules, as
//! `docker build` applies them; root-owned, read-only to the service), its data directories
//! owned by the service user (also when the source has one), links from the project into them
//! for files the code writes at a fixed path, the user's account when the plan
//! names another than the runtime's, and, for a packaged project, the project installed: a
//! `.pth` that puts its import root on `sys.path`, its `.dist-info` and its console scripts.

use terrarium_image::{Content, Entry, LayerPath, LayerTree, Ownership};
use terrarium_plan::{Plan, ProjectInstall, User};
use terrarium_project::{ContextEntry, ContextKind};
use terrarium_wheels::{Target, launcher};

use crate::error::BuildError;

/// Where the project's code goes.
pub const APP_DIR: &str = "app";

/// The user the runtime layer's `/etc/passwd` already knows.
const RUNTIME_USER: User = User {
    uid: 65532,
    gid: 65532,
};

fn layer_path(text: &str) -> Result<LayerPath, BuildError> {
    Ok(LayerPath::new(text)?)
}

/// The service user as a layer entry's owner.
fn owner(user: User) -> Ownership {
    Ownership {
        uid: user.uid.into(),
        gid: user.gid.into(),
        uname: "nonroot".into(),
        gname: "nonroot".into(),
    }
}

/// The app layer's tree for `plan` on `target`, from the build context's `entries` (what
/// `plan.context_rules()` keeps of the project).
pub fn app_tree(
    plan: &Plan,
    target: &Target,
    entries: &[ContextEntry],
) -> Result<LayerTree, BuildError> {
    let mut tree = LayerTree::new();
    let service = owner(plan.user.value);
    // Volume directories first: a directory entry never replaces one already in the tree, so
    // these keep the service user as owner where the source has the same directory.
    let volumes: Vec<String> = plan
        .volumes
        .value
        .iter()
        .map(|v| v.path.trim_matches('/').to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    for dir in &volumes {
        tree.insert(
            Entry::directory(layer_path(dir)?, 0o755).owned_by(service.clone()),
            Content::Empty,
        );
    }
    let in_volume = |path: &str| {
        volumes.iter().any(|v| {
            path.strip_prefix(v.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    tree.insert(
        Entry::directory(layer_path(APP_DIR)?, 0o755),
        Content::Empty,
    );
    for entry in entries {
        let at = format!("{APP_DIR}/{}", entry.path);
        let path = layer_path(&at)?;
        let mut item = match &entry.kind {
            ContextKind::Directory => Entry::directory(path, 0o755),
            ContextKind::Symlink(target) => Entry::symlink(path, target.as_str()),
            ContextKind::File { size, executable } => {
                Entry::file(path, *size, if *executable { 0o755 } else { 0o644 })
            }
        };
        if in_volume(&at) {
            item = item.owned_by(service.clone());
        }
        let source = match item.kind {
            terrarium_image::EntryKind::File { .. } => Content::Path(entry.source.clone()),
            _ => Content::Empty,
        };
        tree.insert(item, source);
    }
    // Files the code writes at a fixed path under the project live in a volume: a link there
    // replaces whatever the source has at that path.
    for link in plan.volumes.value.iter().flat_map(|v| &v.links) {
        let path = layer_path(link.path.trim_start_matches('/'))?;
        tree.remove(&path);
        tree.insert(Entry::symlink(path, link.target.as_str()), Content::Empty);
    }
    if plan.user.value != RUNTIME_USER {
        let (passwd, group) = terrarium_debian::accounts(plan.user.value.uid, plan.user.value.gid);
        tree.insert_bytes(layer_path("etc/passwd")?, 0o644, passwd.into_bytes());
        tree.insert_bytes(layer_path("etc/group")?, 0o644, group.into_bytes());
        tree.insert(
            Entry::directory(layer_path("home/nonroot")?, 0o700).owned_by(service),
            Content::Empty,
        );
    }
    if let Some(install) = &plan.install_project.value {
        install_project(&mut tree, install, target)?;
    }
    Ok(tree)
}

/// The project "installed" in place: what an editable install gives, without a build backend.
fn install_project(
    tree: &mut LayerTree,
    install: &ProjectInstall,
    target: &Target,
) -> Result<(), BuildError> {
    let site = target.site_packages();
    let dist = &install.distribution;
    let version = &install.version;
    let dist_info = format!("{site}/{dist}-{version}.dist-info");
    tree.insert_bytes(
        layer_path(&format!("{site}/{dist}.pth"))?,
        0o644,
        format!("{}\n", install.import_root).into_bytes(),
    );
    tree.insert_bytes(
        layer_path(&format!("{dist_info}/METADATA"))?,
        0o644,
        format!("Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n").into_bytes(),
    );
    tree.insert_bytes(
        layer_path(&format!("{dist_info}/INSTALLER"))?,
        0o644,
        b"terrarium\n".to_vec(),
    );
    let mut entry_points = String::from("[console_scripts]\n");
    for script in &install.scripts {
        if let Some(text) = launcher(&target.interpreter(), &script.target)
            && !script.name.contains('/')
        {
            tree.insert_bytes(
                layer_path(&format!("usr/local/bin/{}", script.name))?,
                0o755,
                text.into_bytes(),
            );
            entry_points.push_str(&format!("{} = {}\n", script.name, script.target));
        }
    }
    tree.insert_bytes(
        layer_path(&format!("{dist_info}/entry_points.txt"))?,
        0o644,
        entry_points.into_bytes(),
    );
    Ok(())
}
