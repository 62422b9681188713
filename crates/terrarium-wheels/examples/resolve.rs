//! Resolve a requirements file for a Debian runtime's CPython and print the pins and the time
//! taken: what `bench/resolve/run` times. Uses only the crate's public API, so the same file
//! builds against an older tree as the benchmark's anchor.
//!
//! Usage: `resolve REQUIREMENTS CACHE_DIR [bookworm|trixie] [EXCLUDE_NEWER]` (an RFC 3339
//! timestamp). Only plain requirement lines are read (no `-r`, no options).

use std::process::ExitCode;
use std::time::Instant;

use terrarium_image::{Cache, Fetcher, NoProgress};
use terrarium_wheels::{Index, NoBuilds, PYPI_SIMPLE, Target, parse_requirement, resolve};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, cache, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: resolve REQUIREMENTS CACHE_DIR [bookworm|trixie] [EXCLUDE_NEWER]".into(),
        );
    };
    let target = match rest.first().map(String::as_str) {
        None | Some("bookworm") => Target::bookworm(),
        Some("trixie") => Target::trixie(),
        Some(other) => return Err(format!("unknown distro `{other}`").into()),
    };
    let cutoff = rest.get(1).map(|t| t.parse()).transpose()?;
    let text = std::fs::read_to_string(file)?;
    let requirements = text
        .lines()
        .map(|line| line.split(" #").next().unwrap_or("").trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| Ok((parse_requirement(line, file)?, file.clone())))
        .collect::<Result<Vec<_>, terrarium_wheels::Error>>()?;
    let index =
        Index::new(Fetcher::new(Cache::new(cache), false)?, PYPI_SIMPLE).with_exclude_newer(cutoff);
    let started = Instant::now();
    let pins = resolve(requirements, &[], &target, &index, &NoProgress, &NoBuilds)?;
    let elapsed = started.elapsed();
    for pin in &pins {
        println!("{}=={}", pin.name, pin.version);
    }
    eprintln!(
        "resolved {} pins in {:.3} s",
        pins.len(),
        elapsed.as_secs_f64()
    );
    Ok(())
}
