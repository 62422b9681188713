//! Resolve, fetch and unpack a distro's Python runtime into a layer, printing timings.
//!
//! `cargo run --release -p terrarium-debian --example runtime_layer -- [bookworm|trixie]`
//! (uses `$TERRARIUM_CACHE_DIR` or the default cache).

use std::time::Instant;

use terrarium_debian::{
    Architecture, Archive, Distro, Mirror, ResolveOptions, UnpackOptions, build_runtime_layer,
    resolve,
};
use terrarium_image::{Cache, Epoch, Fetcher, LayerOptions, NoProgress};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let distro: Distro = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bookworm".into())
        .parse()?;
    let roots = distro.runtime_roots();
    let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
    let cache = Cache::from_env()?;
    let archive = Archive::new(
        Fetcher::new(cache, false)?,
        Mirror::default(),
        Architecture::Amd64,
    )?;
    let started = Instant::now();
    let index = archive.index(distro, &NoProgress)?;
    let indexed = started.elapsed();
    let resolution = resolve(
        &index,
        distro,
        Architecture::Amd64,
        &roots,
        &ResolveOptions::default(),
    )?;
    drop(index);
    let resolved = started.elapsed();
    let set = resolution.packages;
    let layer = build_runtime_layer(
        &archive,
        &set,
        &UnpackOptions::default(),
        LayerOptions {
            mtime: Epoch::from_env()?,
            ..LayerOptions::default()
        },
        &NoProgress,
    )?;
    let built = started.elapsed();
    println!(
        "{distro}: {} packages, {} KB of .debs; index {indexed:.2?}, resolve {:.2?}, \
         fetch+unpack+layer {:.2?}; layer {} entries, {} KB uncompressed, {} KB gzip, {}",
        set.packages.len(),
        set.download_size() / 1024,
        resolved - indexed,
        built - resolved,
        layer.entries,
        layer.uncompressed_size / 1024,
        layer.size / 1024,
        layer.digest
    );
    Ok(())
}
