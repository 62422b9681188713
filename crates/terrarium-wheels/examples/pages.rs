//! Times fetching the Simple API pages of the projects named on the command line from a cold
//! cache, one at a time (as a resolution asks for them) and with [`Index::prefetch`] first, in
//! the same run; each pass alternates which goes first and uses a fresh cache. Used by
//! `bench/build/run`. Usage: `pages [--index URL] NAME...`.

use std::time::{Duration, Instant};

use terrarium_image::{Cache, Fetcher};
use terrarium_wheels::{Index, PYPI_SIMPLE};

fn index(base: &str) -> Result<(tempfile::TempDir, Index), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let fetcher = Fetcher::new(Cache::new(dir.path().to_owned()), false)?;
    Ok((dir, Index::new(fetcher, base)))
}

fn one_by_one(base: &str, names: &[String]) -> Result<Duration, Box<dyn std::error::Error>> {
    let (_dir, index) = index(base)?;
    let started = Instant::now();
    for name in names {
        index.files(name, false)?;
    }
    Ok(started.elapsed())
}

fn prefetched(base: &str, names: &[String]) -> Result<Duration, Box<dyn std::error::Error>> {
    let (_dir, index) = index(base)?;
    let started = Instant::now();
    index.prefetch(names)?;
    for name in names {
        index.files(name, false)?;
    }
    Ok(started.elapsed())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut base = PYPI_SIMPLE.to_owned();
    if args.first().is_some_and(|a| a == "--index") && args.len() > 1 {
        base = args.remove(1);
        args.remove(0);
    }
    if args.is_empty() {
        return Err("usage: pages [--index URL] NAME...".into());
    }
    let (mut serial, mut parallel) = (Duration::MAX, Duration::MAX);
    for pass in 0..3 {
        if pass % 2 == 0 {
            serial = serial.min(one_by_one(&base, &args)?);
            parallel = parallel.min(prefetched(&base, &args)?);
        } else {
            parallel = parallel.min(prefetched(&base, &args)?);
            serial = serial.min(one_by_one(&base, &args)?);
        }
    }
    println!(
        "{} pages: one at a time {:.3}s, prefetched {:.3}s (best of 3)",
        args.len(),
        serial.as_secs_f64(),
        parallel.as_secs_f64()
    );
    Ok(())
}
