//! The resolver against the real index (PyPI), through the shared download cache: the two
//! patterns that stopped real projects. `sqlmodel==0.0.8` caps SQLAlchemy below the release an
//! unpinned `sqlalchemy` met first; SQLAlchemy 1.4 of a 2022 project pulls a greenlet whose
//! last early-2022 release has no wheel for CPython 3.11.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use terrarium_image::{Cache, Fetcher, NoProgress, ProgressEvent};
use terrarium_wheels::{
    Error, Index, NoBuilds, PYPI_SIMPLE, Pin, Target, parse_requirement, resolve, resolve_dated,
};

/// The shared download cache: `$TERRARIUM_TEST_CACHE/pypi` (set by scripts/test), else
/// `~/.cache/terrarium-test/pypi`.
fn index() -> Index {
    let root = std::env::var_os("TERRARIUM_TEST_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/terrarium-test"))
        })
        .expect("TERRARIUM_TEST_CACHE or HOME is set");
    Index::new(
        Fetcher::new(Cache::new(root.join("pypi")), false).unwrap(),
        PYPI_SIMPLE,
    )
    .with_max_age(Duration::from_secs(24 * 3600))
}

fn requirements(texts: &[&str]) -> Vec<(pep508_rs::Requirement, String)> {
    texts
        .iter()
        .map(|text| {
            (
                parse_requirement(text, "requirements.txt").unwrap(),
                "requirements.txt".to_owned(),
            )
        })
        .collect()
}

fn version<'p>(pins: &'p [Pin], name: &str) -> &'p str {
    let pin = pins.iter().find(|pin| pin.name == name);
    &pin.unwrap_or_else(|| panic!("no {name} in {pins:?}"))
        .version
}

fn release(text: &str) -> Vec<u64> {
    text.split('.').map(|part| part.parse().unwrap()).collect()
}

#[test]
fn a_cap_met_after_an_unpinned_requirement_backtracks_to_a_release_under_it() {
    let index = index();
    // The unpinned requirement comes first: greedy, it took SQLAlchemy 2 and then stopped at
    // sqlmodel's `SQLAlchemy<=1.4.41,>=1.4.17`.
    let pins = resolve(
        requirements(&["sqlalchemy", "sqlmodel==0.0.8"]),
        &[],
        &Target::bookworm(),
        &index,
        &NoProgress,
        &NoBuilds,
    )
    .unwrap();
    let sqlalchemy = release(version(&pins, "sqlalchemy"));
    assert!(
        sqlalchemy >= release("1.4.17") && sqlalchemy <= release("1.4.41"),
        "{pins:?}"
    );
    assert_eq!(version(&pins, "sqlmodel"), "0.0.8");
    assert!(pins.iter().all(|pin| pin.filename.ends_with(".whl")));

    // Asking for SQLAlchemy 2 as well cannot be met: the error says who capped it.
    let err = resolve(
        requirements(&["sqlalchemy>=2", "sqlmodel==0.0.8"]),
        &[],
        &Target::bookworm(),
        &index,
        &NoProgress,
        &NoBuilds,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    let text = err.to_string();
    for part in [
        "sqlmodel 0.0.8 requires `sqlalchemy>=1.4.17,<=1.4.41`",
        "`sqlalchemy>=2` (needed by requirements.txt)",
        "fix:",
    ] {
        assert!(text.contains(part), "{part} not in:\n{text}");
    }
}

#[test]
fn a_2022_cut_off_takes_the_first_releases_with_a_cpython_3_11_wheel() {
    let index = index().with_exclude_newer(Some("2022-05-01T00:00:00Z".parse().unwrap()));
    let notices = Mutex::new(Vec::new());
    let progress = |event: &ProgressEvent<'_>| {
        if let ProgressEvent::Notice { text } = event {
            notices.lock().unwrap().push(text.to_string());
        }
    };
    let resolution = resolve_dated(
        requirements(&["sqlalchemy>=1.4,<2"]),
        &[],
        &Target::bookworm(),
        &index,
        &progress,
        &NoBuilds,
    )
    .unwrap();
    let pins = &resolution.pins;
    // Neither SQLAlchemy 1.4.36 nor greenlet 1.1.2, the last releases before May 2022, has a
    // wheel for CPython 3.11 (greenlet's sdist does not compile there): the first releases that
    // have one are taken, and the choice is reported.
    assert_eq!(version(pins, "sqlalchemy"), "1.4.41");
    let greenlet = pins.iter().find(|pin| pin.name == "greenlet").unwrap();
    assert_eq!(greenlet.version, "1.1.3");
    assert!(greenlet.filename.contains("cp311"), "{greenlet:?}");
    assert_eq!(
        *notices.lock().unwrap(),
        [
            "greenlet: no wheel for cp311 before 2022-05-01; took 1.1.3 (uploaded 2022-08-25)",
            "sqlalchemy: no wheel for cp311 before 2022-05-01; took 1.4.41 (uploaded 2022-09-07)"
        ]
    );
    // The same choices as data, each with the upload time of the file taken: what the
    // Dockerfile's uv needs to give way for the same packages.
    let late: Vec<(String, String, String)> = resolution
        .late
        .iter()
        .map(|l| {
            (
                l.name.clone(),
                l.version.clone(),
                l.uploaded.strftime("%Y-%m-%d").to_string(),
            )
        })
        .collect();
    assert_eq!(
        late,
        [
            ("greenlet".into(), "1.1.3".into(), "2022-08-25".into()),
            ("sqlalchemy".into(), "1.4.41".into(), "2022-09-07".into()),
        ]
    );
    let greenlet_file = index
        .files("greenlet", false)
        .unwrap()
        .into_iter()
        .find(|file| file.filename == greenlet.filename)
        .and_then(|file| file.upload_time);
    assert_eq!(Some(resolution.late[0].uploaded), greenlet_file);
    // uv compares whole seconds: the package's own cut-off is the next one.
    let own = resolution.late[0].own_cutoff();
    let (name, moment) = own.split_once('=').unwrap();
    assert_eq!(name, "greenlet");
    let moment: jiff::Timestamp = moment.parse().unwrap();
    assert_eq!(moment.subsec_nanosecond(), 0);
    assert!(moment > resolution.late[0].uploaded, "{own}");
}
