//! The runtime layer: unpacked packages plus the files maintainer scripts would otherwise make
//! (users and groups, os-release, the CA bundle, `/tmp`, `/home/nonroot`, merged-/usr links).

use terrarium_image::{
    Content, Digest, Entry, Epoch, Layer, LayerOptions, LayerPath, LayerTree, Ownership, Progress,
    canonical_json,
};

use crate::archive::Archive;
use crate::deb::{UnpackOptions, add_merged_usr_links, unpack_into};
use crate::error::Error;
use crate::resolve::PackageSet;
use crate::suite::Distro;

/// Where the CA bundle goes (what `update-ca-certificates` would write).
pub const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// `/etc/passwd` and `/etc/group` with root, nobody and `nonroot` at `uid:gid` (65532 in the
/// runtime layer; an image whose plan names another user gets its own copy in the app layer).
pub fn accounts(uid: u32, gid: u32) -> (String, String) {
    (
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\n\
             nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
             nonroot:x:{uid}:{gid}:nonroot:/home/nonroot:/sbin/nologin\n"
        ),
        format!("root:x:0:\nnobody:x:65534:\nnonroot:x:{gid}:\n"),
    )
}

fn path(text: &str) -> Result<LayerPath, Error> {
    Ok(LayerPath::new(text)?)
}

/// `/etc/os-release` for `distro`.
pub fn os_release(distro: Distro) -> String {
    let (id, name) = (distro.version_id(), distro.codename());
    format!(
        "PRETTY_NAME=\"Debian GNU/Linux {id} ({name})\"\nNAME=\"Debian GNU/Linux\"\n\
         VERSION_ID=\"{id}\"\nVERSION=\"{id} ({name})\"\nVERSION_CODENAME={name}\nID=debian\n\
         HOME_URL=\"https://www.debian.org/\"\nSUPPORT_URL=\"https://www.debian.org/support\"\n\
         BUG_REPORT_URL=\"https://bugs.debian.org/\"\n"
    )
}

/// Add the generated files of a terrarium runtime: `/etc/passwd` and `/etc/group` (root,
/// nobody, nonroot 65532), `python3` and `python` links to the interpreter, `/etc/os-release`, the CA bundle concatenated from
/// `usr/share/ca-certificates/**.crt` in `tree` (when any), `/tmp` (1777), `/root` and
/// `/home/nonroot` (0700, owned by their users) and the merged-/usr symlinks.
pub fn add_base_files(tree: &mut LayerTree, distro: Distro) -> Result<(), Error> {
    let (passwd, group) = accounts(65532, 65532);
    tree.insert_bytes(path("etc/passwd")?, 0o644, passwd.into_bytes());
    tree.insert_bytes(path("etc/group")?, 0o644, group.into_bytes());
    // `python` and `python3` as in every Python image: health checks, `exec … python`.
    let interpreter = format!("python{}", distro.python_version());
    for name in ["usr/bin/python3", "usr/bin/python"] {
        if tree.get(&path(name)?).is_none() {
            tree.insert(
                Entry::symlink(path(name)?, interpreter.as_str()),
                Content::Empty,
            );
        }
    }
    let os_release = os_release(distro).into_bytes();
    tree.insert_bytes(path("usr/lib/os-release")?, 0o644, os_release);
    tree.insert(
        Entry::symlink(path("etc/os-release")?, "../usr/lib/os-release"),
        Content::Empty,
    );
    tree.insert(Entry::directory(path("tmp")?, 0o1777), Content::Empty);
    tree.insert(Entry::directory(path("root")?, 0o700), Content::Empty);
    tree.insert(
        Entry::directory(path("home/nonroot")?, 0o700).owned_by(Ownership::nonroot()),
        Content::Empty,
    );
    let certs: Vec<LayerPath> = tree
        .entries()
        .filter(|entry| {
            let p = entry.path.as_str();
            p.starts_with("usr/share/ca-certificates/") && p.ends_with(".crt")
        })
        .map(|entry| entry.path.clone())
        .collect();
    if !certs.is_empty() {
        let mut bundle = Vec::new();
        for cert in &certs {
            if let Some(bytes) = tree.read_file(cert)? {
                bundle.extend_from_slice(&bytes);
                if !bundle.ends_with(b"\n") {
                    bundle.push(b'\n');
                }
            }
        }
        tree.insert_bytes(path(CA_BUNDLE)?, 0o644, bundle);
    }
    add_merged_usr_links(tree)
}

/// Version of the runtime layer recipe; part of the layer cache key, so a change in how the
/// layer is made never reuses an old layer.
const RECIPE: &str = "terrarium-debian runtime layer v2";

/// The runtime layer of `set`: fetch (or take from the cache) every package, unpack them in name
/// order (a later package's file replaces an earlier one's), add [`add_base_files`], and write
/// the layer. The result is remembered under a key made of the set, the options and the mtime
/// (per compression), so an unchanged set reuses the stored layer without unpacking anything.
pub fn build_runtime_layer(
    archive: &Archive,
    set: &PackageSet,
    options: &UnpackOptions,
    layer: LayerOptions,
    progress: &dyn Progress,
) -> Result<Layer, Error> {
    let cache = archive.cache();
    let key = runtime_layer_key(set, options, layer.mtime)?;
    if let Some(layer) = cache.cached_layer(&key, layer.compression)? {
        return Ok(layer);
    }
    let layer = unpack_runtime(archive, set, options, layer, progress)?;
    cache.remember_layer(&key, &layer)?;
    Ok(layer)
}

/// The cache key [`build_runtime_layer`] remembers its layer under (so callers can tell whether
/// a build will reuse it).
pub fn runtime_layer_key(
    set: &PackageSet,
    options: &UnpackOptions,
    mtime: Epoch,
) -> Result<Digest, Error> {
    let key = serde_json::json!({
        "recipe": RECIPE,
        "set": set,
        "options": options,
        "mtime": mtime.seconds(),
    });
    Ok(Digest::of(&canonical_json(&key)?))
}

/// Version of the system layer recipe; part of its cache key.
const SYSTEM_RECIPE: &str = "terrarium-debian system layer v1";

/// A layer of extra packages (`set`, without the runtime's packages) laid over a runtime layer:
/// the packages unpacked in name order with their `status.d` entries, no generated files.
/// Returns the layer and whether it came from the cache.
pub fn build_packages_layer(
    archive: &Archive,
    set: &PackageSet,
    options: &UnpackOptions,
    layer: LayerOptions,
    progress: &dyn Progress,
) -> Result<(Layer, bool), Error> {
    let cache = archive.cache();
    let key = serde_json::json!({
        "recipe": SYSTEM_RECIPE,
        "set": set,
        "options": options,
        "mtime": layer.mtime.seconds(),
    });
    let key = Digest::of(&canonical_json(&key)?);
    if let Some(layer) = cache.cached_layer(&key, layer.compression)? {
        return Ok((layer, true));
    }
    let debs = archive.fetch_all(set, progress)?;
    let spool_dir = cache.tmp_dir()?;
    let mut tree = LayerTree::new();
    for deb in &debs {
        unpack_into(deb, &mut tree, options, &spool_dir)?;
    }
    let layer = tree.write(cache, layer)?;
    cache.remember_layer(&key, &layer)?;
    Ok((layer, false))
}

fn unpack_runtime(
    archive: &Archive,
    set: &PackageSet,
    options: &UnpackOptions,
    layer: LayerOptions,
    progress: &dyn Progress,
) -> Result<Layer, Error> {
    let debs = archive.fetch_all(set, progress)?;
    let cache = archive.cache();
    let spool_dir = cache.tmp_dir()?;
    let mut tree = LayerTree::new();
    for deb in &debs {
        unpack_into(deb, &mut tree, options, &spool_dir)?;
    }
    add_base_files(&mut tree, set.distro)?;
    Ok(tree.write(cache, layer)?)
}
