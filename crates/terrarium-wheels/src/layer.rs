//! The deps layer: every pinned wheel installed into the image's site-packages, plus `python`
//! and `python3` in /usr/local/bin. Remembered in the cache under a key made of the pins, the
//! target and the mtime, so an unchanged dependency set is neither downloaded nor unpacked.

use terrarium_image::{
    Content, Digest, Entry, Fetcher, Layer, LayerOptions, LayerPath, LayerTree, Progress,
    canonical_json,
};

use crate::error::Error;
use crate::fetch::fetch_all;
use crate::install::{Spool, install_wheel};
use crate::select::Pin;
use crate::tags::Target;

/// Version of the deps layer recipe; part of the cache key.
const RECIPE: &str = "terrarium-wheels deps layer v1";

/// A built deps layer and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct DepsLayer {
    /// The layer.
    pub layer: Layer,
    /// Whether it was reused from the cache without downloading or unpacking.
    pub cached: bool,
}

fn path(text: &str) -> Result<LayerPath, Error> {
    Ok(LayerPath::new(text)?)
}

/// Build (or reuse) the deps layer of `pins` for `target`.
pub fn build_deps_layer(
    fetcher: &Fetcher,
    pins: &[Pin],
    target: &Target,
    options: LayerOptions,
    progress: &dyn Progress,
) -> Result<DepsLayer, Error> {
    let cache = fetcher.cache();
    let mut sorted = pins.to_vec();
    sorted.sort();
    let mut key = serde_json::json!({
        "recipe": RECIPE,
        "python": target.python_version(),
        "pins": sorted.iter().map(|p| format!("{} {}", p.filename, p.sha256)).collect::<Vec<_>>(),
        "mtime": options.mtime.seconds(),
    });
    if target.layout.is_some() {
        key["interpreter"] = target.interpreter().into();
        key["site"] = target.site_packages().into();
    }
    let key = Digest::of(&canonical_json(&key)?);
    if let Some(layer) = cache.cached_layer(&key, options.compression)? {
        return Ok(DepsLayer {
            layer,
            cached: true,
        });
    }
    let paths = fetch_all(fetcher, &sorted, progress)?;
    let mut tree = LayerTree::new();
    let mut spool = Spool::new(&cache.tmp_dir()?)?;
    for (pin, wheel) in sorted.iter().zip(&paths) {
        install_wheel(&mut tree, wheel, &pin.filename, target, &mut spool)?;
    }
    let interpreter = target.interpreter();
    for name in ["python", "python3"] {
        let at = format!("usr/local/bin/{name}");
        if interpreter.trim_start_matches('/') == at {
            // A base image's interpreter that is itself /usr/local/bin/python3.
            continue;
        }
        let link = path(&at)?;
        tree.insert(Entry::symlink(link, interpreter.clone()), Content::Empty);
    }
    // The site-packages directory exists even with no dependencies, so it is on sys.path.
    tree.insert(
        Entry::directory(path(&target.site_packages())?, 0o755),
        Content::Empty,
    );
    let layer = tree.write(cache, options)?;
    cache.remember_layer(&key, &layer)?;
    Ok(DepsLayer {
        layer,
        cached: false,
    })
}
