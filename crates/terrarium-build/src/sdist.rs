//! Dependencies that ship only a source distribution, built into wheels during `terrarium
//! build`: each sdist is downloaded and verified by its hash, built by its own PEP 517 backend
//! on the image's Python in a sandbox whose root is the runtime layer (see
//! [`terrarium_wheels::Source`]), and the normalised wheel is kept in the cache under the sdist's
//! sha256 and the target Python, and recorded in `terrarium.lock` (`built` entries), so the next
//! build, of this project or another, and `--offline` builds take it from the cache.
//!
//! A source with C (or C++, Cython) in it, or one the known-needs table lists, builds in a root
//! with one more layer: Debian's compiler, `make`, libc's and Python's headers, the table's
//! `-dev` packages for it and the plan's `build-packages`, resolved and verified like the
//! runtime. The built extension modules' `DT_NEEDED` libraries are looked up in that root's
//! package file lists; the packages that ship them, less what the runtime has, join the system
//! layer (recorded in `terrarium.lock`'s wheels `system`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use terrarium_debian::{
    Architecture, DebianPin, PackageSet, Resolution, ResolveOptions, build_packages_layer,
};
use terrarium_image::{Content, Digest, Entry, LayerPath, LayerTree};
use terrarium_plan::build::{compiler_packages, known_needs, stdlib_build_packages};
use terrarium_sandbox::Rootfs;
use terrarium_wheels::{
    BuildContext, BuiltWheel, Error as WheelError, Index, Pin, Source, Target, WheelBuilder,
    WheelName, fetch_wheel, is_sdist,
};

use crate::error::BuildError;
use crate::lockfile::{DebianLock, WheelsLock};
use crate::{Reporter, Session};

/// Essential packages a distroless runtime leaves out that build scripts take for granted:
/// `/bin/sh` (setup scripts run shell commands) and `/usr/bin/perl` (libpq-dev's `pg_config`).
const BUILD_ESSENTIALS: &[&str] = &["dash", "perl-base"];

/// Links that maintainer scripts (update-alternatives, dash's) would make in a build root.
const BUILD_LINKS: &[(&str, &str)] = &[("usr/bin/sh", "dash"), ("usr/bin/cc", "gcc")];

/// Version of how wheels are built from sdists; part of the build cache key.
const RECIPE: &str = "sdist-build-v3";

/// Builds the sdists of one build, at most once each, and remembers what it built.
pub(crate) struct Builder<'s, 'a> {
    session: &'s Session<'a>,
    target: &'s Target,
    debian: &'s DebianLock,
    index: Index,
    /// The Debian index, read on first need.
    /// Build roots made so far, by their extra packages.
    roots: RefCell<BTreeMap<Vec<String>, Rootfs>>,
    /// What `terrarium.lock` recorded, by sdist hash.
    locked: BTreeMap<Digest, BuiltWheel>,
    /// What this build built or found, by sdist hash.
    built: RefCell<BTreeMap<Digest, (BuiltWheel, PathBuf)>>,
}

impl<'s, 'a> Builder<'s, 'a> {
    /// A builder for `session` on `target`, whose Debian packages are `debian`, knowing the
    /// `built` entries of the previous `terrarium.lock`.
    pub(crate) fn new(
        session: &'s Session<'a>,
        target: &'s Target,
        debian: &'s DebianLock,
        locked: Option<&WheelsLock>,
    ) -> Self {
        let locked = locked
            .map(|lock| {
                lock.built
                    .iter()
                    .map(|built| (built.sdist, built.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            session,
            target,
            debian,
            roots: RefCell::new(BTreeMap::new()),
            index: session.build_requires_index(),
            locked,
            built: RefCell::new(BTreeMap::new()),
        }
    }

    fn reporter(&self) -> &dyn Reporter {
        self.session.reporter
    }

    /// The lock with a wheel built (or found) for each of its sdists.
    pub(crate) fn finish(&self, mut lock: WheelsLock) -> Result<WheelsLock, BuildError> {
        for pin in lock.wheel.iter().filter(|pin| is_sdist(&pin.filename)) {
            self.wheel(pin)?;
        }
        let built = std::mem::take(&mut *self.built.borrow_mut());
        lock.built = lock
            .wheel
            .iter()
            .filter_map(|pin| built.get(&pin.sha256).map(|(wheel, _)| wheel.clone()))
            .collect();
        lock.built.sort();
        lock.system = self.system_packages(&lock)?;
        Ok(lock)
    }

    /// The packages the built wheels' libraries, and the system libraries the binary wheels
    /// link, need beyond the runtime and the system packages: the lock's when they cover
    /// them, else resolved.
    fn system_packages(&self, lock: &WheelsLock) -> Result<Vec<DebianPin>, BuildError> {
        let present: BTreeSet<&str> = self
            .debian
            .runtime
            .iter()
            .chain(&self.debian.system)
            .map(|p| p.name.as_str())
            .collect();
        let wanted: BTreeSet<&str> = lock
            .built
            .iter()
            .flat_map(|b| b.system_packages.iter().map(String::as_str))
            .chain(lock.linked.iter().flatten().map(|l| l.package.as_str()))
            .filter(|name| !present.contains(name))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let locked: BTreeSet<&str> = lock.system.iter().map(|p| p.name.as_str()).collect();
        if wanted.is_subset(&locked) {
            return Ok(lock.system.clone());
        }
        let roots = self.session.distro.runtime_roots();
        let names: Vec<&str> = roots
            .iter()
            .map(String::as_str)
            .chain(
                self.session
                    .plan
                    .system_packages
                    .value
                    .iter()
                    .map(String::as_str),
            )
            .chain(wanted.iter().copied())
            .collect();
        let resolution = self.resolve_debian(&names).map_err(BuildError::from)?;
        Ok(resolution
            .packages
            .packages
            .into_iter()
            .filter(|p| !present.contains(p.name.as_str()))
            .collect())
    }

    /// Resolve `names` against the distro's index (remembered by the archive).
    fn resolve_debian(&self, names: &[&str]) -> Result<Resolution, terrarium_debian::Error> {
        self.session.archive.resolve(
            self.session.distro,
            names,
            &ResolveOptions::default(),
            self.reporter(),
        )
    }

    /// The meta key of the wheel built from the sdist with `sha256` for this target.
    fn cache_key(&self, sha256: &Digest) -> String {
        format!(
            "sdist-builds/{RECIPE}/{}-py{}/{}.json",
            self.session.runtime_key(),
            self.target.python_version(),
            sha256.hex()
        )
    }

    /// The wheel of `sdist`: recorded in the lock and still cached, built earlier for the same
    /// sdist and Python, or built now.
    fn wheel(&self, sdist: &Pin) -> Result<(BuiltWheel, PathBuf), WheelError> {
        if let Some(done) = self.built.borrow().get(&sdist.sha256) {
            return Ok(done.clone());
        }
        let cache = &self.session.options.cache;
        let locked = self
            .locked
            .get(&sdist.sha256)
            .filter(|built| built.name == sdist.name);
        let key = self.cache_key(&sdist.sha256);
        let found = match locked {
            Some(built) => cache.get(&built.sha256)?.map(|path| (built.clone(), path)),
            None => None,
        };
        let found = match found {
            Some(found) => Some(found),
            None => match cache.read_meta(&key)? {
                Some(bytes) => match serde_json::from_slice::<BuiltWheel>(&bytes) {
                    Ok(built) if locked.is_none_or(|l| l.sha256 == built.sha256) => cache
                        .get(&built.sha256)?
                        .map(|path| (locked.cloned().unwrap_or(built), path)),
                    _ => None,
                },
                None => None,
            },
        };
        let result = match found {
            Some(found) => found,
            None => self.build_now(sdist, locked, &key)?,
        };
        self.built.borrow_mut().insert(sdist.sha256, result.clone());
        Ok(result)
    }

    /// For an image of another architecture, which can't run a build: the wheel this
    /// machine's image of the plan built from the same sdist (see `build_platforms`), when it
    /// is pure Python (`none-any`, the same everywhere); else an error naming the package and
    /// the ways out.
    fn native_wheel(&self, sdist: &Pin, key: &str) -> Result<(BuiltWheel, PathBuf), WheelError> {
        let session = self.session;
        let platform = session.architecture.platform();
        let cannot = |message: String| WheelError::BuildRoot {
            package: sdist.name.clone(),
            source: Box::new(BuildError::ForeignPlatform {
                platform: platform.to_owned(),
                message,
                fix: format!(
                    "build {platform} on a machine of that architecture (`terrarium build \
                     --platform {platform}` there), or pin a release of {} that publishes a \
                     manylinux {} wheel",
                    sdist.name,
                    session.architecture.machine()
                ),
            }),
        };
        let host = crate::host_architecture().map_err(|err| WheelError::BuildRoot {
            package: sdist.name.clone(),
            source: Box::new(err),
        })?;
        let native_key = format!(
            "sdist-builds/{RECIPE}/{}-py{}/{}.json",
            crate::runtime_key(None, session.distro, host),
            self.target.python_version(),
            sdist.sha256.hex()
        );
        let cache = &session.options.cache;
        let built = match cache.read_meta(&native_key)? {
            Some(bytes) => serde_json::from_slice::<BuiltWheel>(&bytes).ok(),
            None => None,
        };
        let Some(built) = built else {
            return Err(cannot(format!(
                "{} {} has no wheel for it, only a source distribution, and building that runs \
                 its code (a build backend, maybe a compiler) for {platform}, which terrarium \
                 doesn't emulate",
                sdist.name, sdist.version
            )));
        };
        let pure = built
            .filename
            .parse::<WheelName>()
            .is_ok_and(|wheel| wheel.tags.iter().all(|tag| tag.platform == "any"));
        if !pure {
            return Err(cannot(format!(
                "{} {} has no wheel for it, only a source distribution with code to compile \
                 (this machine built {}), and compiling for {platform} would need its compiler \
                 and emulation",
                sdist.name, sdist.version, built.filename
            )));
        }
        let Some(path) = cache.get(&built.sha256)? else {
            return Err(cannot(format!(
                "the pure-Python wheel this machine built from {} {} left the cache",
                sdist.name, sdist.version
            )));
        };
        let json = serde_json::to_vec_pretty(&built)
            .map_err(|err| WheelError::Internal(err.to_string()))?;
        cache.write_meta(key, &json)?;
        Ok((built, path))
    }

    /// Build the wheel of `sdist` now.
    fn build_now(
        &self,
        sdist: &Pin,
        locked: Option<&BuiltWheel>,
        key: &str,
    ) -> Result<(BuiltWheel, PathBuf), WheelError> {
        if self.session.native.is_some() {
            return self.native_wheel(sdist, key);
        }
        let cache = &self.session.options.cache;
        self.reporter().stage(&format!(
            "building {} {} from its source distribution",
            sdist.name, sdist.version
        ));
        let archive = fetch_wheel(&self.session.fetcher, sdist, self.reporter())?;
        let source = Source::unpack(sdist, &archive, &cache.tmp_dir()?)?;
        let (root, build_packages) = self.root_for(&source)?;
        let built = source.build(&BuildContext {
            root: &root,
            target: self.target,
            index: &self.index,
            locked_requires: locked.map(|l| l.build_requires.as_slice()),
            progress: self.reporter(),
        })?;
        let sha256 = cache.put_bytes(&built.bytes)?;
        if let Some(locked) = locked
            && locked.sha256 != sha256
        {
            return Err(WheelError::NotReproducible {
                package: sdist.name.clone(),
                version: sdist.version.clone(),
                expected: locked.sha256,
                actual: sha256,
            });
        }
        let system_packages = if build_packages.is_empty() {
            Vec::new()
        } else {
            let runtime: BTreeSet<&str> = self
                .debian
                .runtime
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            library_packages(root.path(), self.session.architecture, &built.needed)?
                .into_iter()
                .filter(|name| !runtime.contains(name.as_str()))
                .collect()
        };
        let record = BuiltWheel {
            name: sdist.name.clone(),
            version: sdist.version.clone(),
            sdist: sdist.sha256,
            filename: built.filename,
            sha256,
            build_packages,
            needed: built.needed,
            system_packages,
            build_requires: built.build_requires,
        };
        let json = serde_json::to_vec_pretty(&record)
            .map_err(|err| WheelError::Internal(err.to_string()))?;
        // The wheel is in the cache (written to a temporary file and renamed) before the entry
        // that names it: an interrupted build leaves neither a partial wheel nor a dangling
        // entry.
        cache.write_meta(key, &json)?;
        Ok((record, cache.blob_path(&sha256)))
    }

    /// The root `source` builds in, and the Debian packages added to the runtime for it: none
    /// for pure Python, a compiler and headers for C.
    fn root_for(&self, source: &Source) -> Result<(Rootfs, Vec<String>), WheelError> {
        let build_root = |err: BuildError| WheelError::BuildRoot {
            package: source.name.clone(),
            source: Box::new(err),
        };
        let cache = &self.session.options.cache;
        let known = known_needs(&source.name);
        // Pure Python builds on the trimmed runtime a service gets; compilers on the whole
        // one, whose libraries the -dev packages' libraries link.
        let pure = !source.compiled && known.is_none();
        if let Some(base) = self.session.base {
            if pure {
                return Ok((Rootfs::assemble(cache, &base.layers)?, Vec::new()));
            }
            return Err(build_root(BuildError::Base {
                base: base.source.clone(),
                message: format!(
                    "{} {} has C code to compile, and compilers can't be added to a base \
                     image yet",
                    source.name, source.version
                ),
                fix: "pin a release with a wheel for this Python, or remove `base` to build on \
                      Debian's runtime"
                    .into(),
            }));
        }
        let runtime = self
            .session
            .runtime_layer(&self.debian.runtime, pure)
            .map_err(build_root)?;
        let stdlib = stdlib_build_packages(&self.target.python_version());
        if pure {
            if stdlib.is_empty() {
                return Ok((Rootfs::assemble(cache, &[runtime.layer])?, Vec::new()));
            }
            if let Some(root) = self.roots.borrow().get(&stdlib) {
                return Ok((root.clone(), Vec::new()));
            }
            let layers = self
                .build_layers(std::slice::from_ref(&stdlib))
                .map_err(build_root)?;
            let root = Rootfs::assemble(cache, &[&[runtime.layer][..], &layers].concat())?;
            self.roots.borrow_mut().insert(stdlib, root.clone());
            return Ok((root, Vec::new()));
        }
        let mut extra = compiler_packages(&self.target.python_version());
        extra.extend(stdlib);
        extra.extend(self.session.plan.build_packages.value.iter().cloned());
        extra.extend(
            known
                .iter()
                .flat_map(|k| k.build.iter().map(|p| (*p).to_owned())),
        );
        let mut seen = BTreeSet::new();
        extra.retain(|name| seen.insert(name.clone()));
        if let Some(root) = self.roots.borrow().get(&extra) {
            return Ok((root.clone(), extra));
        }
        let compilers = compiler_packages(&self.target.python_version());
        let layers = self
            .build_layers(&[compilers, extra.clone()])
            .map_err(build_root)?;
        let root = Rootfs::assemble(cache, &[&[runtime.layer][..], &layers].concat())?;
        self.roots.borrow_mut().insert(extra.clone(), root.clone());
        Ok((root, extra))
    }

    /// The layers a build root adds to the runtime: one per group of packages (with what they
    /// depend on and the earlier groups don't have; the compilers first, shared by every C
    /// build), and the links maintainer scripts would make.
    fn build_layers(
        &self,
        groups: &[Vec<String>],
    ) -> Result<Vec<terrarium_image::Layer>, BuildError> {
        let distro = self.session.distro;
        let wanted: Vec<&str> = groups.iter().flatten().map(String::as_str).collect();
        self.reporter()
            .stage(&format!("resolving the build root ({})", wanted.join(", ")));
        let mut present: BTreeSet<String> =
            self.debian.runtime.iter().map(|p| p.name.clone()).collect();
        let mut layers = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            if group.iter().all(|name| present.contains(name)) {
                continue;
            }
            let roots = distro.runtime_roots();
            let names: Vec<&str> = roots
                .iter()
                .map(String::as_str)
                .chain(BUILD_ESSENTIALS.iter().copied())
                .chain(groups[..=i].iter().flatten().map(String::as_str))
                .collect();
            let resolution = self.resolve_debian(&names)?;
            let packages: Vec<DebianPin> = resolution
                .packages
                .packages
                .into_iter()
                .filter(|p| !present.contains(&p.name))
                .collect();
            present.extend(packages.iter().map(|p| p.name.clone()));
            if packages.is_empty() {
                continue;
            }
            let set = PackageSet {
                distro,
                architecture: self.session.architecture,
                packages,
            };
            let (layer, _) = build_packages_layer(
                &self.session.archive,
                &set,
                &self.session.unpack_options(false),
                self.session.layer_options(),
                self.reporter(),
            )?;
            layers.push(layer);
        }
        let mut links = LayerTree::new();
        for (link, target) in BUILD_LINKS {
            links.insert(
                Entry::symlink(LayerPath::new(link)?, *target),
                Content::Empty,
            );
        }
        let links = links.write(&self.session.options.cache, self.session.layer_options())?;
        layers.push(links);
        Ok(layers)
    }
}

/// The summary's lines about `lock`'s built wheels and the system packages they brought.
pub(crate) fn notes(lock: &WheelsLock) -> Vec<String> {
    let mut notes: Vec<String> = lock
        .built
        .iter()
        .map(|built| {
            let how = if built.build_packages.is_empty() {
                "pure Python".to_owned()
            } else {
                format!("compiled with {}", built.build_packages.join(" "))
            };
            format!(
                "built from source: {} {} -> {} ({how})",
                built.name, built.version, built.filename
            )
        })
        .collect();
    notes.extend(
        lock.added
            .iter()
            .flatten()
            .map(|reason| format!("added to the dependencies: {reason}")),
    );
    notes.extend(
        lock.system_reasons()
            .into_iter()
            .map(|reason| format!("system layer: {reason}")),
    );
    notes
}

/// The Debian packages of the root at `root` (of `architecture`) that ship the libraries
/// `sonames`, read from the packages' file lists (`var/lib/dpkg/status.d/*.md5sums`); sonames
/// no package ships (the wheel's own, or missing) are left out.
pub(crate) fn library_packages(
    root: &Path,
    architecture: Architecture,
    sonames: &[String],
) -> Result<Vec<String>, WheelError> {
    if sonames.is_empty() {
        return Ok(Vec::new());
    }
    let status = root.join("var/lib/dpkg/status.d");
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let entries = match std::fs::read_dir(&status) {
        Ok(entries) => entries,
        Err(_) => return Ok(Vec::new()),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(package) = name.strip_suffix(".md5sums") else {
            continue;
        };
        let text = std::fs::read_to_string(entry.path()).map_err(|source| WheelError::Io {
            path: entry.path(),
            source,
        })?;
        for line in text.lines() {
            if let Some((_, path)) = line.split_once("  ") {
                owners.insert(merged(path.trim()), package.to_owned());
            }
        }
    }
    // The library directories of a Debian root, as the dynamic loader searches them.
    let library_dirs = [
        format!("usr/lib/{}", architecture.triplet()),
        "usr/lib".to_owned(),
        "usr/local/lib".to_owned(),
    ];
    let mut packages = BTreeSet::new();
    for soname in sonames {
        let found = library_dirs.iter().find_map(|dir| {
            let path = resolve_in_root(root, &format!("{dir}/{soname}"))?;
            owners.get(&merged(&path)).cloned()
        });
        packages.extend(found);
    }
    Ok(packages.into_iter().collect())
}

/// A root-relative path as merged /usr has it (`lib/x/libc.so.6` is `usr/lib/x/libc.so.6`).
fn merged(path: &str) -> String {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    match path.split_once('/') {
        Some(("bin" | "sbin" | "lib" | "lib64" | "lib32", _)) => format!("usr/{path}"),
        _ => path.to_owned(),
    }
}

/// Follow the symlinks of the root-relative `path` inside `root` to the file it names; `None`
/// when there is no such file.
fn resolve_in_root(root: &Path, path: &str) -> Option<String> {
    let mut current = PathBuf::from(path);
    for _ in 0..16 {
        let full = root.join(&current);
        let meta = std::fs::symlink_metadata(&full).ok()?;
        if !meta.file_type().is_symlink() {
            return meta
                .is_file()
                .then(|| current.to_string_lossy().into_owned());
        }
        let target = std::fs::read_link(&full).ok()?;
        current = if target.is_absolute() {
            target.strip_prefix("/").ok()?.to_path_buf()
        } else {
            current.parent().unwrap_or(Path::new("")).join(target)
        };
        // Normalise `a/b/../c` without touching the host file system.
        let mut parts: Vec<String> = Vec::new();
        for part in current.components() {
            match part {
                std::path::Component::ParentDir => {
                    parts.pop();
                }
                std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
                _ => {}
            }
        }
        current = parts.iter().collect();
    }
    None
}

impl WheelBuilder for Builder<'_, '_> {
    fn build(&self, sdist: &Pin) -> Result<PathBuf, WheelError> {
        self.wheel(sdist).map(|(_, path)| path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_are_found_through_links_in_package_file_lists() {
        let root = tempfile::tempdir().unwrap();
        let lib = root.path().join("usr/lib/x86_64-linux-gnu");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("libpq.so.5.15"), b"elf").unwrap();
        std::os::unix::fs::symlink("libpq.so.5.15", lib.join("libpq.so.5")).unwrap();
        std::fs::write(lib.join("libc.so.6"), b"elf").unwrap();
        let status = root.path().join("var/lib/dpkg/status.d");
        std::fs::create_dir_all(&status).unwrap();
        std::fs::write(
            status.join("libpq5.md5sums"),
            "0123  usr/lib/x86_64-linux-gnu/libpq.so.5.15\n",
        )
        .unwrap();
        // libc6 lists its files before merged /usr.
        std::fs::write(
            status.join("libc6.md5sums"),
            "0123  lib/x86_64-linux-gnu/libc.so.6\n",
        )
        .unwrap();
        let found = library_packages(
            root.path(),
            Architecture::Amd64,
            &[
                "libc.so.6".to_owned(),
                "libpq.so.5".to_owned(),
                "libnowhere.so.1".to_owned(),
            ],
        )
        .unwrap();
        assert_eq!(found, ["libc6", "libpq5"]);
    }

    #[test]
    fn merged_usr_paths() {
        assert_eq!(merged("lib/x/libc.so.6"), "usr/lib/x/libc.so.6");
        assert_eq!(merged("./usr/lib/x/a.so"), "usr/lib/x/a.so");
        assert_eq!(merged("etc/x"), "etc/x");
    }
}
