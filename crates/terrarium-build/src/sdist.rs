//! Dependencies that ship only a source distribution, built into wheels during `terrarium
//! build`: each sdist is downloaded and verified by its hash, built by its own PEP 517 backend
//! on the image's Python in a sandbox whose root is the runtime layer (see
//! [`terrarium_wheels::Source`]), and the normalised wheel is kept in the cache under the sdist's
//! sha256 and the target Python, and recorded in `terrarium.lock` (`built` entries), so the next
//! build, of this project or another, and `--offline` builds take it from the cache.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use terrarium_debian::DebianPin;
use terrarium_image::Digest;
use terrarium_sandbox::Rootfs;
use terrarium_wheels::{
    BuildContext, BuiltWheel, Error as WheelError, Index, Pin, Source, Target, WheelBuilder,
    fetch_wheel, is_sdist,
};

use crate::error::BuildError;
use crate::lockfile::WheelsLock;
use crate::{Reporter, Session};

/// Version of how wheels are built from sdists; part of the build cache key.
const RECIPE: &str = "sdist-build-v1";

/// Builds the sdists of one build, at most once each, and remembers what it built.
pub(crate) struct Builder<'s, 'a> {
    session: &'s Session<'a>,
    target: &'s Target,
    runtime: &'s [DebianPin],
    index: Index,
    /// What `terrarium.lock` recorded, by sdist hash.
    locked: BTreeMap<Digest, BuiltWheel>,
    /// What this build built or found, by sdist hash.
    built: RefCell<BTreeMap<Digest, (BuiltWheel, PathBuf)>>,
}

impl<'s, 'a> Builder<'s, 'a> {
    /// A builder for `session` on `target`, whose runtime is `runtime`, knowing the `built`
    /// entries of the previous `terrarium.lock`.
    pub(crate) fn new(
        session: &'s Session<'a>,
        target: &'s Target,
        runtime: &'s [DebianPin],
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
            runtime,
            index: Index::new(session.fetcher.clone(), session.options.index_url.clone()),
            locked,
            built: RefCell::new(BTreeMap::new()),
        }
    }

    fn reporter(&self) -> &dyn Reporter {
        self.session.reporter
    }

    /// The lock with a wheel built (or found) for each of its sdists.
    pub(crate) fn finish(self, mut lock: WheelsLock) -> Result<WheelsLock, BuildError> {
        for pin in lock.wheel.iter().filter(|pin| is_sdist(&pin.filename)) {
            self.wheel(pin)?;
        }
        let built = self.built.into_inner();
        lock.built = lock
            .wheel
            .iter()
            .filter_map(|pin| built.get(&pin.sha256).map(|(wheel, _)| wheel.clone()))
            .collect();
        lock.built.sort();
        Ok(lock)
    }

    /// The meta key of the wheel built from the sdist with `sha256` for this target.
    fn cache_key(&self, sha256: &Digest) -> String {
        format!(
            "sdist-builds/{RECIPE}/{}-py{}/{}.json",
            self.session.distro.codename(),
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

    /// Build the wheel of `sdist` now.
    fn build_now(
        &self,
        sdist: &Pin,
        locked: Option<&BuiltWheel>,
        key: &str,
    ) -> Result<(BuiltWheel, PathBuf), WheelError> {
        let cache = &self.session.options.cache;
        self.reporter().stage(&format!(
            "building {} {} from its source distribution",
            sdist.name, sdist.version
        ));
        let archive = fetch_wheel(&self.session.fetcher, sdist, self.reporter())?;
        let source = Source::unpack(sdist, &archive, &cache.tmp_dir()?)?;
        let root = self.root_for(&source)?;
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
        let record = BuiltWheel {
            name: sdist.name.clone(),
            version: sdist.version.clone(),
            sdist: sdist.sha256,
            filename: built.filename,
            sha256,
            build_packages: Vec::new(),
            needed: built.needed,
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

    /// The root `source` builds in: the runtime layer.
    fn root_for(&self, source: &Source) -> Result<Rootfs, WheelError> {
        let build_root = |err: BuildError| WheelError::BuildRoot {
            package: source.name.clone(),
            source: Box::new(err),
        };
        let runtime = self
            .session
            .runtime_layer(self.runtime)
            .map_err(build_root)?;
        Ok(Rootfs::assemble(
            &self.session.options.cache,
            &[runtime.layer],
        )?)
    }
}

impl WheelBuilder for Builder<'_, '_> {
    fn build(&self, sdist: &Pin) -> Result<PathBuf, WheelError> {
        self.wheel(sdist).map(|(_, path)| path)
    }
}
