//! The Python decision: which CPython feature release the image runs, from the configuration,
//! the project's constraints, the wheels its locked or pinned packages publish, the Python the
//! last build chose, and the project's era. Also the era itself (`exclude-newer`) and the
//! Debian release the chosen Python comes from.

use std::collections::BTreeSet;

use terrarium_debian::Distro;
use terrarium_project::{Group, PackageName, Project, Source};

use crate::decide::{PlanOptions, shown};
use crate::tools::{KnownPython, PYTHONS};
use crate::{Decision, Origin, PlanError, PythonVersion};

/// What the package index says about a release the project pins exactly (`flask==2.0.1` in a
/// requirements file without hashes, a lock that records no file names), or about the newest
/// release a capped range allows (`asyncpg>=0.29,<0.30`), which is what an installer takes.
/// Gathered before planning, since the plan reads no network: the wheel file names tell which
/// Pythons the release supports before anything is downloaded, the upload time tells the
/// project's era.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedRelease {
    /// The distribution.
    pub name: PackageName,
    /// The pinned version.
    pub version: String,
    /// Where the pin is written.
    pub source: Source,
    /// The file names of the release's wheels (every platform).
    pub wheels: Vec<String>,
    /// The release has a source distribution (it can be built where no wheel fits).
    pub has_sdist: bool,
    /// When its newest file was uploaded (PEP 700), when the index says.
    pub uploaded: Option<jiff::Timestamp>,
    /// Pinned only by the development requirements: it dates the project, but its wheels
    /// don't decide the production Python.
    pub dev: bool,
    /// The capped range it is the newest release of (`>=0.29.0,<0.30.0`); `None` for an exact
    /// pin. Such a release speaks for its wheels, not for the project's era.
    pub range: Option<String>,
}

/// Which Pythons one package's binary wheels serve.
#[derive(Debug, Clone)]
struct WheelSupport {
    /// `psycopg2-binary 2.9.6`.
    what: String,
    /// Where it is pinned or locked.
    source: Source,
    /// Feature releases with a Linux x86-64 wheel.
    pythons: BTreeSet<(u64, u64)>,
    /// A source distribution exists, so other Pythons can build it.
    buildable: bool,
    /// When the release was uploaded, when the index says: a source older than a Python
    /// was never compiled against it.
    released: Option<jiff::Timestamp>,
}

impl WheelSupport {
    /// `psycopg2-binary 2.9.6 (requirements.txt:3) has wheels for CPython 3.7–3.11 only`.
    fn describe(&self) -> String {
        let versions: Vec<String> = self
            .pythons
            .iter()
            .map(|(major, minor)| format!("{major}.{minor}"))
            .collect();
        let range = match (versions.first(), versions.last()) {
            (Some(first), Some(last)) if first != last => format!("{first}–{last}"),
            (Some(only), _) => only.clone(),
            _ => return format!("{} ({}) has no Linux x86-64 wheel", self.what, self.source),
        };
        format!(
            "{} ({}) has wheels for CPython {range} only",
            self.what, self.source
        )
    }
}

/// The Pythons a release's wheels serve on Linux x86-64: `None` when a pure-Python wheel
/// serves them all.
pub(crate) fn wheel_pythons<'a>(
    filenames: impl IntoIterator<Item = &'a str>,
) -> Option<BTreeSet<(u64, u64)>> {
    let mut pythons = BTreeSet::new();
    for name in filenames {
        let parts: Vec<&str> = name.trim_end_matches(".whl").split('-').collect();
        if parts.len() < 5 {
            continue;
        }
        let n = parts.len();
        let (python_tag, abi_tag, platform_tag) = (parts[n - 3], parts[n - 2], parts[n - 1]);
        let linux = platform_tag.split('.').any(|p| {
            p == "any"
                || (p.ends_with("x86_64") && (p.contains("manylinux") || p == "linux_x86_64"))
        });
        if !linux {
            continue;
        }
        for tag in python_tag.split('.') {
            let minor = tag
                .strip_prefix("cp")
                .and_then(|v| v.get(1..))
                .and_then(|m| m.parse::<u64>().ok());
            match minor {
                // A free-threaded build's wheel: not the interpreter terrarium runs.
                Some(_) if abi_tag.ends_with('t') => {}
                Some(minor) if abi_tag == "abi3" => pythons.extend(
                    PYTHONS
                        .iter()
                        .filter(|k| k.minor >= minor)
                        .map(|k| (k.major, k.minor)),
                ),
                Some(minor) => {
                    pythons.insert((3, minor));
                }
                // `py3`, `py2.py3`: any CPython 3.
                None if tag.starts_with("py3") || tag.starts_with("py2") => return None,
                None => {}
            }
        }
    }
    Some(pythons)
}

/// Binary packages of the lock and of the index's pinned releases, with the Pythons they serve.
fn wheel_supports(project: &Project, options: &PlanOptions) -> Vec<WheelSupport> {
    let mut supports = Vec::new();
    if let Some(lock) = project.dependencies.lock() {
        for package in lock.packages.iter().filter(|p| p.group == Group::Main) {
            let filenames: Vec<&str> = package
                .artifacts
                .iter()
                .filter_map(|a| a.filename.as_deref())
                .collect();
            if !filenames.iter().any(|f| f.ends_with(".whl")) {
                continue; // file names unknown, or only a source distribution
            }
            if let Some(pythons) = wheel_pythons(filenames.iter().copied()) {
                supports.push(WheelSupport {
                    what: format!("{} {}", package.name, package.version),
                    source: Source::file(&lock.path),
                    pythons,
                    buildable: filenames.iter().any(|f| !f.ends_with(".whl")),
                    released: None,
                });
            }
        }
    }
    for pin in &options.pinned {
        if pin.wheels.is_empty() || pin.dev {
            continue;
        }
        if let Some(pythons) = wheel_pythons(pin.wheels.iter().map(String::as_str)) {
            let what = match &pin.range {
                Some(range) => format!("{} {} (newest of {range})", pin.name, pin.version),
                None => format!("{} {}", pin.name, pin.version),
            };
            supports.push(WheelSupport {
                what,
                source: pin.source.clone(),
                pythons,
                buildable: pin.has_sdist,
                released: pin.uploaded,
            });
        }
    }
    supports
}

/// The packages the last build took from after the cut-off (`terrarium.lock`), when the plan
/// has a cut-off: said in its reason, for the Dockerfile's uv to give way for the same ones.
pub(crate) fn late_packages(
    project: &Project,
    exclude_newer: &mut Decision<Option<jiff::Timestamp>>,
) -> Vec<(String, jiff::Timestamp)> {
    let (Some(era), Some(late)) = (exclude_newer.value, &project.locked_exclude_newer_package)
    else {
        return Vec::new();
    };
    let later: Vec<(String, jiff::Timestamp)> = late
        .value
        .iter()
        .filter(|(_, moment)| *moment > era)
        .cloned()
        .collect();
    if later.is_empty() {
        return later;
    }
    let names: Vec<String> = later
        .iter()
        .map(|(name, moment)| format!("{name} ({})", moment.strftime("%Y-%m-%d")))
        .collect();
    exclude_newer.reason.push_str(&format!(
        "; the last build took these from after it, none before it installing on this \
         Python: {} (terrarium.lock; the Dockerfile's uv gets the same exceptions)",
        names.join(", ")
    ));
    exclude_newer.sources.push(late.source.clone());
    later
}

/// The moment requirements the project does not pin are resolved as of: `exclude-newer` in
/// the configuration, else the last commit that changed the dependency declarations, else the
/// newest upload among the releases it pins. `None` when everything is locked or nothing tells.
pub(crate) fn decide_exclude_newer(
    project: &Project,
    options: &PlanOptions,
) -> Decision<Option<jiff::Timestamp>> {
    if !project.dependencies.has_unpinned() {
        return match &project.dependencies_changed {
            Some(changed) => Decision::new(
                Some(changed.value),
                Origin::Detected,
                "the lock pins every dependency and was last changed then: what it doesn't \
                 cover (the build requirements of source distributions) is resolved as of that \
                 day, and the Python of its time is preferred",
                vec![changed.source.clone()],
            ),
            None => Decision::new(
                None,
                Origin::Detected,
                "the lock pins every dependency",
                vec![],
            ),
        };
    }
    if let Some(cutoff) = &project.config.exclude_newer {
        return Decision::new(
            Some(cutoff.value),
            Origin::Config,
            "set in the configuration: requirements the project does not pin are resolved as \
             of then",
            vec![cutoff.source.clone()],
        );
    }
    // The next whole second after the upload: installers compare at their own precision (uv
    // drops the fraction), and the pin itself must stay on the right side of the cut-off.
    let newest_pin = options
        .pinned
        .iter()
        .filter(|pin| pin.range.is_none())
        .filter_map(|pin| {
            let moment = pin.uploaded?;
            let after = jiff::Timestamp::from_second(moment.as_second() + 1).ok()?;
            Some((after, pin))
        })
        .max_by_key(|(moment, _)| *moment);
    match (&project.dependencies_changed, newest_pin) {
        (Some(changed), pin) if pin.is_none_or(|(moment, _)| moment <= changed.value) => {
            Decision::new(
                Some(changed.value),
                Origin::Detected,
                format!(
                    "the dependencies were last changed then: what they don't pin is resolved \
                     as of that day, so a {} project doesn't get today's releases",
                    changed.value.strftime("%Y")
                ),
                vec![changed.source.clone()],
            )
        }
        (_, Some((moment, pin))) => Decision::new(
            Some(moment),
            Origin::Detected,
            format!(
                "the newest release the project pins ({} {}) was uploaded then: what it doesn't \
                 pin is resolved as of that moment",
                pin.name, pin.version
            ),
            vec![pin.source.clone()],
        ),
        _ => Decision::new(
            None,
            Origin::Default,
            "nothing dates the dependencies (no git history, no exact pins): what they don't \
             pin is resolved as of today",
            vec![],
        ),
    }
}

/// How well a Python serves the binary packages: every one has a wheel, or the missing ones
/// can be built from source, or some can't be installed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    Wheels,
    Builds,
    Fails,
}

fn fit(python: (u64, u64), supports: &[WheelSupport]) -> (Fit, Vec<&WheelSupport>) {
    let missing: Vec<&WheelSupport> = supports
        .iter()
        .filter(|s| !s.pythons.contains(&python))
        .collect();
    let fit = if missing.is_empty() {
        Fit::Wheels
    } else if missing.iter().all(|s| s.buildable) {
        Fit::Builds
    } else {
        Fit::Fails
    };
    (fit, missing)
}

/// The CPython each Debian release terrarium builds on ships: `bookworm: 3.11, trixie: 3.13, …`.
pub(crate) fn debian_pythons() -> String {
    Distro::ALL
        .iter()
        .map(|d| format!("{d}: {}", d.python_version()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a constraint comes from a `.python-version` file (pyenv, uv).
fn is_python_version_file(source: &Source) -> bool {
    source
        .file
        .file_name()
        .is_some_and(|name| name == ".python-version")
}

/// Whether a constraint names the interpreter a developer ran rather than what the code
/// needs: a `.python-version` file, or a Pipfile's `python_version` (pipenv itself only
/// warns when the Python differs, unless `--deploy`).
fn is_interpreter_preference(source: &Source) -> bool {
    is_python_version_file(source)
        || source
            .file
            .file_name()
            .is_some_and(|name| name == "Pipfile")
}

/// The feature release a preference names (`==3.7.*` gives 3.7), known to terrarium or not.
fn preferred_release(constraint: &terrarium_project::PythonConstraint) -> Option<(u64, u64)> {
    (0..=30).find_map(|minor| constraint.allows(3, minor).then_some((3, minor)))
}

/// How far a build on `python` reaches past what the packages it would compile were made
/// for: the most feature releases between `python` and the newest one a missing package has
/// a wheel for, counting only sources released before `python` came out (`era` stands in for
/// a release date the index didn't give). 0 when nothing compiles or nothing is that old.
fn staleness(python: (u64, u64), missing: &[&WheelSupport], era: Option<jiff::Timestamp>) -> u64 {
    let Some(python_released) = released(PythonVersion {
        major: python.0,
        minor: python.1,
    }) else {
        return 0;
    };
    // A package with no Linux wheel at all compiles on every Python alike: it tells none
    // apart.
    missing
        .iter()
        .filter(|s| s.released.or(era).is_some_and(|day| day < python_released))
        .filter_map(|s| {
            let (_, newest) = s.pythons.iter().next_back()?;
            Some(python.1.saturating_sub(*newest))
        })
        .max()
        .unwrap_or(0)
}

/// The day CPython `python` first came out, when terrarium knows the release.
pub(crate) fn released(python: PythonVersion) -> Option<jiff::Timestamp> {
    PYTHONS
        .iter()
        .find(|k| k.major == python.major && k.minor == python.minor)
        .and_then(|k| parse_day(k.released))
}

fn parse_day(day: &str) -> Option<jiff::Timestamp> {
    let date: jiff::civil::Date = day.parse().ok()?;
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// A release's fit, with the binary packages it has no wheel for.
type Fitted<'s> = (Fit, Vec<&'s WheelSupport>);

/// A release's fit as a score to compare, best lowest: every wheel; compiling only sources
/// its own age or younger; compiling older ones, by how far (`staleness`); failing.
fn score(k: &KnownPython, (fit, missing): &Fitted, era: Option<jiff::Timestamp>) -> (u8, u64) {
    match fit {
        Fit::Wheels => (0, 0),
        Fit::Builds => (1, staleness((k.major, k.minor), missing, era)),
        Fit::Fails => (2, 0),
    }
}

/// Keep end-of-life Debian runtimes among the candidates only as the last resort (see
/// `decide_python`): when the best maintained release that `usable` accepts scores worse than
/// compiling sources no older than itself, and an end-of-life runtime scores better. Then only
/// the end-of-life runtimes stay, with the reason; otherwise they go, but for the one the last
/// build chose (`locked`), which the plan keeps while it is allowed (the pins that made it the
/// choice are not read again then).
fn last_resort_filter<'a, 's>(
    candidates: Vec<&'a KnownPython>,
    fits: Vec<Fitted<'s>>,
    era: Option<jiff::Timestamp>,
    locked: Option<&str>,
    usable: impl Fn(&KnownPython, &Fit) -> bool,
) -> (Vec<&'a KnownPython>, Vec<Fitted<'s>>, Option<String>) {
    let end_of_life = |k: &KnownPython| k.has_debian_runtime() && !k.maintained;
    let best = |wanted: &dyn Fn(&KnownPython, &Fit) -> bool| {
        candidates
            .iter()
            .zip(&fits)
            .filter(|(k, (f, _))| wanted(k, f))
            .map(|(k, fit)| (score(k, fit, era), *k, fit))
            .min_by_key(|(score, _, _)| *score)
    };
    let maintained = best(&|k, f| k.maintained && usable(k, f));
    let old = best(&|k, _| end_of_life(k));
    let reason = match (maintained, old) {
        (_, None) => None,
        (None, Some((_, k, _))) => Some(format!(
            "only end-of-life releases are allowed: CPython {}.{} is the one a Debian runtime \
             ships",
            k.major, k.minor
        )),
        (Some((m_score, m, (m_fit, missing))), Some((o_score, o, _)))
            if m_score > (1, 0) && o_score < m_score =>
        {
            let named: Vec<String> = missing.iter().take(3).map(|s| s.describe()).collect();
            let why = if *m_fit == Fit::Fails {
                "can't install them all".to_string()
            } else {
                "would compile them from sources released before it came out, and old C \
                 sources seldom compile against a newer Python's C API"
                    .to_string()
            };
            Some(format!(
                "on CPython {}.{}, the best maintained release, {}: {why}; CPython {}.{} (Debian \
                 {}) {}",
                m.major,
                m.minor,
                named.join("; "),
                o.major,
                o.minor,
                Distro::for_python(o.major, o.minor).map_or("", Distro::codename),
                if o_score == (0, 0) {
                    "has a wheel for each"
                } else {
                    "compiles sources closer to their time"
                }
            ))
        }
        _ => None,
    };
    let was_locked = |k: &KnownPython| locked == Some(format!("{}.{}", k.major, k.minor).as_str());
    let keep = |k: &KnownPython| end_of_life(k) == reason.is_some() || was_locked(k);
    let (kept, kept_fits): (Vec<&KnownPython>, Vec<_>) = candidates
        .into_iter()
        .zip(fits)
        .filter(|(k, _)| keep(k))
        .unzip();
    (kept, kept_fits, reason)
}

/// Decide the Python when neither `--distro` nor the configuration fixes it.
pub(crate) fn decide_python(
    project: &Project,
    options: &PlanOptions,
    era: &Decision<Option<jiff::Timestamp>>,
) -> Result<Decision<PythonVersion>, PlanError> {
    if let Some(configured) = &project.config.python {
        let (major, minor) = configured.value.split_once('.').unwrap_or(("3", "13"));
        return Ok(Decision::new(
            PythonVersion {
                major: major.parse().unwrap_or(3),
                minor: minor.parse().unwrap_or(13),
            },
            Origin::Config,
            "set in the configuration",
            vec![configured.source.clone()],
        ));
    }
    // Releases both back ends provide (a Debian runtime for `terrarium build`, an official
    // image for the Dockerfile) come first, so the two build the same Python.
    let mut candidates: Vec<&KnownPython> = PYTHONS.iter().collect();
    candidates.sort_by_key(|k| !k.has_debian_runtime());
    let mut sources = Vec::new();
    let mut preference = None;
    for constraint in &project.python {
        let before = candidates.clone();
        candidates.retain(|k| constraint.value.allows(k.major, k.minor));
        sources.push(constraint.source.clone());
        // `.python-version` and a Pipfile's `python_version` name the interpreter a developer
        // runs, not what the code needs: when Debian ships no runtime for it, the nearest
        // maintained release it does ship stands in (newer first: code written for 3.12 runs
        // on 3.13 more often than on 3.11; an end-of-life one only when the pins need it,
        // below), and the constraints that follow still apply.
        if is_interpreter_preference(&constraint.source)
            && !candidates.iter().any(|k| k.has_debian_runtime())
            && let Some(wanted) = preferred_release(&constraint.value)
        {
            let mut nearest: Vec<&KnownPython> = before
                .iter()
                .copied()
                .filter(|k| k.has_debian_runtime())
                .collect();
            if !nearest.is_empty() {
                nearest.sort_by_key(|k| {
                    (
                        !k.maintained,
                        k.minor.abs_diff(wanted.1),
                        k.minor < wanted.1,
                    )
                });
                preference = Some((wanted, constraint.source.clone()));
                candidates = nearest;
                continue;
            }
        }
        if candidates.is_empty() {
            return Err(PlanError::NoPython {
                constraint: constraint.value.specifiers.clone(),
                location: Source {
                    file: shown(project, &constraint.source.file),
                    line: constraint.source.line,
                },
                known: before
                    .iter()
                    .map(|k| format!("{}.{}", k.major, k.minor))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let constrained = !project.python.is_empty();
    let mut reasons = vec![if constrained {
        let written: Vec<String> = project
            .python
            .iter()
            .filter(|c| preference.as_ref().is_none_or(|(_, s)| *s != c.source))
            .map(|c| format!("{} ({})", c.value.specifiers, c.source))
            .collect();
        if written.is_empty() {
            "no other constraint".to_string()
        } else {
            format!(
                "the preferred supported release allowed by {} (a release a Debian runtime ships \
             first, so `terrarium build` and the Dockerfile run the same Python)",
                written.join(" and ")
            )
        }
    } else {
        "nothing in the project constrains it".to_string()
    }];
    if let Some(((major, minor), source)) = &preference {
        let tag = PYTHONS
            .iter()
            .find(|k| (k.major, k.minor) == (*major, *minor))
            .map_or_else(
                || format!("{major}.{minor}"),
                |k| k.patch_release.to_owned(),
            );
        reasons.push(format!(
            "{source} asks for CPython {major}.{minor}, which no Debian release terrarium \
             supports ships: the nearest maintained release one does stands in, unless the pins \
             need an older one (set `base = \"python:{tag}-slim-{}\"` to run {major}.{minor} \
             itself on the official image)",
            crate::tools::BASE_DEBIAN,
        ));
    }

    // The wheels the binary packages publish rule Pythons out before anything is downloaded.
    let supports = wheel_supports(project, options);
    let mut fits: Vec<(Fit, Vec<&WheelSupport>)> = candidates
        .iter()
        .map(|k| fit((k.major, k.minor), &supports))
        .collect();
    // A release with a Debian runtime that can install everything (building what has no wheel)
    // beats one without a runtime that has every wheel: old pins with wheels only for 3.10
    // would otherwise pick an end-of-life Python neither back end here can build.
    let runtime = |k: &KnownPython| k.has_debian_runtime();
    // A maintained release without a Debian runtime that has every wheel: built on its
    // official image.
    let on_official_image =
        |k: &KnownPython, f: &Fit| !runtime(k) && k.maintained && *f == Fit::Wheels;
    let debian_extras =
        project.config.system_packages.is_some() || project.config.build_packages.is_some();
    // An end-of-life release with a Debian runtime (3.9 on bullseye) is the last resort: only
    // when every maintained release would compile sources older than itself further past
    // their wheels than it would (generated C seldom compiles against a C API newer than it),
    // or can't install the pins at all.
    let (kept, kept_fits, last_resort) = last_resort_filter(
        candidates,
        fits,
        era.value,
        project.locked_python.as_ref().map(|l| l.value.as_str()),
        |k, f| runtime(k) || (on_official_image(k, f) && !debian_extras),
    );
    candidates = kept;
    fits = kept_fits;
    if let Some(reason) = last_resort {
        reasons.push(reason);
        sources.extend(era.sources.iter().cloned());
    }
    let runtime_fit = candidates
        .iter()
        .zip(&fits)
        .filter(|(k, _)| runtime(k))
        .map(|(_, (f, _))| *f)
        .min();
    // But compiling binary packages on a newer Python than their wheels serve often fails
    // (old generated C against a changed C API): a maintained release that has every wheel,
    // run on its official image, beats it. Only without Debian packages to add, which a base
    // image doesn't take.
    let wheels_elsewhere = candidates
        .iter()
        .zip(&fits)
        .any(|(k, (f, _))| on_official_image(k, f));
    if runtime_fit.is_some_and(|f| f != Fit::Wheels) && wheels_elsewhere && !debian_extras {
        let compiled: Vec<String> = candidates
            .iter()
            .zip(&fits)
            .find(|(k, _)| runtime(k))
            .map(|(_, (_, missing))| missing.iter().map(|s| s.what.clone()).collect())
            .unwrap_or_default();
        let (kept, kept_fits): (Vec<&KnownPython>, Vec<_>) = candidates
            .iter()
            .copied()
            .zip(fits)
            .filter(|(k, (f, _))| on_official_image(k, f))
            .unzip();
        reasons.push(format!(
            "on the releases a Debian runtime ships, {} would have to compile from source (no \
             wheel for them); this release has a wheel for every binary package, so \
             `terrarium build` runs it on its official image",
            compiled.join(", ")
        ));
        candidates = kept;
        fits = kept_fits;
    } else if runtime_fit.is_some_and(|f| f != Fit::Fails) {
        let (kept, kept_fits): (Vec<&KnownPython>, Vec<_>) = candidates
            .iter()
            .copied()
            .zip(fits)
            .filter(|(k, _)| runtime(k))
            .unzip();
        candidates = kept;
        fits = kept_fits;
    }
    let best = fits.iter().map(|(f, _)| *f).min().unwrap_or(Fit::Wheels);
    if best == Fit::Fails {
        let lines: Vec<String> = candidates
            .iter()
            .zip(&fits)
            .filter(|(k, _)| runtime(k))
            .map(|(k, (_, missing))| {
                let named: Vec<String> = missing.iter().take(3).map(|s| s.describe()).collect();
                let more = missing.len().saturating_sub(3);
                format!(
                    "  CPython {}.{}: {}{}",
                    k.major,
                    k.minor,
                    named.join("; "),
                    if more > 0 {
                        format!("; and {more} more")
                    } else {
                        String::new()
                    }
                )
            })
            .collect();
        return Err(PlanError::NoWheels {
            pythons: lines.join("\n"),
        });
    }
    let first_missing: Vec<&WheelSupport> = fits
        .iter()
        .find(|(f, _)| *f != Fit::Wheels)
        .map(|(_, missing)| missing.clone())
        .unwrap_or_default();
    let before = candidates.len();
    let (kept, kept_missing): (Vec<&KnownPython>, Vec<Vec<&WheelSupport>>) = candidates
        .iter()
        .copied()
        .zip(fits)
        .filter(|(_, (f, _))| *f == best)
        .map(|(k, (_, missing))| (k, missing))
        .unzip();
    candidates = kept;
    if candidates.len() < before {
        let named: Vec<String> = first_missing.iter().take(3).map(|s| s.describe()).collect();
        if best == Fit::Wheels && !named.is_empty() {
            reasons.push(format!("ruled out by the wheels: {}", named.join("; ")));
        }
        sources.extend(first_missing.iter().take(3).map(|s| s.source.clone()));
    }
    if best == Fit::Builds {
        let named: Vec<String> = kept_missing[0].iter().map(|s| s.what.clone()).collect();
        reasons.push(format!(
            "no release has wheels for every binary package: {} will be built from source",
            named.join(", ")
        ));
    }

    // The choice of the last build sticks while it is still allowed.
    if let Some(locked) = &project.locked_python
        && let Some(k) = candidates
            .iter()
            .find(|k| format!("{}.{}", k.major, k.minor) == locked.value)
    {
        sources.push(locked.source.clone());
        return Ok(Decision::new(
            PythonVersion {
                major: k.major,
                minor: k.minor,
            },
            Origin::Detected,
            "the Python the last build chose (terrarium.lock), still allowed: kept so builds \
             don't flip",
            sources,
        ));
    }

    // A project from before a release never ran on it: prefer the newest one of its era.
    if let Some(moment) = era.value {
        let debian_first = |k: &KnownPython| !runtime(k);
        let after = |k: &KnownPython| parse_day(k.released).is_none_or(|day| day > moment);
        let mut ordered = candidates.clone();
        ordered.sort_by_key(|k| {
            (
                debian_first(k),
                after(k),
                // Among releases of its time the preference order stands; among later ones
                // the oldest is closest to what the project knew.
                if after(k) { k.minor } else { 0 },
            )
        });
        if ordered[0] != candidates[0] {
            let later = candidates[0];
            reasons.push(format!(
                "the dependencies date from {} (exclude-newer), before CPython {}.{} came out \
                 ({}): the newest release of their time a Debian runtime ships",
                moment.strftime("%Y-%m-%d"),
                later.major,
                later.minor,
                later.released
            ));
            sources.extend(era.sources.iter().cloned());
        }
        candidates = ordered;
    }
    let chosen = candidates[0];
    if !chosen.maintained {
        reasons.push(format!(
            "CPython {}.{} no longer gets security fixes (end of life): chosen only because \
             the pinned binary packages need it; upgrade those pins to move on",
            chosen.major, chosen.minor
        ));
    }
    if reasons.len() == 1 && !constrained {
        reasons[0].push_str(": the newest mature CPython release");
    }
    Ok(Decision::new(
        PythonVersion {
            major: chosen.major,
            minor: chosen.minor,
        },
        if constrained || reasons.len() > 1 {
            Origin::Detected
        } else {
            Origin::Default
        },
        reasons.join("; "),
        sources,
    ))
}

/// The Python of `--distro`: its CPython, when the project's constraints allow it.
pub(crate) fn python_of_distro(
    project: &Project,
    distro: Distro,
) -> Result<Decision<PythonVersion>, PlanError> {
    let (major, minor) = distro.python();
    if !project.python.iter().all(|c| c.value.allows(major, minor)) {
        return Err(PlanError::DistroMismatch {
            distro: distro.codename().to_owned(),
            python: distro.python_version().to_owned(),
            constraint: project
                .python
                .iter()
                .map(|c| format!("{} ({})", c.value.specifiers, c.source))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(Decision::new(
        PythonVersion { major, minor },
        Origin::Config,
        format!("--distro {distro}: Debian {distro} ships CPython {major}.{minor}"),
        project.python.iter().map(|c| c.source.clone()).collect(),
    ))
}

/// The CPython a base image's tag names (`python:3.12-slim-bookworm`, `…:3.11.9-bookworm`,
/// `docker://python:3.13`): the first `3.N` of the tag, not followed by another digit.
pub fn tag_python(base: &str) -> Option<(u64, u64)> {
    let name = base.split('@').next().unwrap_or(base);
    let last = name.rsplit('/').next().unwrap_or(name);
    let (_, tag) = last.split_once(':')?;
    let bytes = tag.as_bytes();
    (0..bytes.len()).find_map(|i| {
        let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let rest = tag[i..].strip_prefix("3.")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (boundary && !digits.is_empty())
            .then(|| digits.parse().ok())
            .flatten()
            .map(|minor| (3, minor))
    })
}

/// The Python of a build on a base image: its tag's, the one the last build found in it
/// (`terrarium.lock`), or (when neither says) the usual choice, which the build then checks
/// against the base's own.
pub(crate) fn python_of_base(
    project: &Project,
    options: &PlanOptions,
    era: &Decision<Option<jiff::Timestamp>>,
    base: &str,
) -> Result<Decision<PythonVersion>, PlanError> {
    if project.config.python.is_some() {
        return decide_python(project, options, era);
    }
    let constraints = || {
        project
            .python
            .iter()
            .map(|c| format!("{} ({})", c.value.specifiers, c.source))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut sources: Vec<Source> = project.python.iter().map(|c| c.source.clone()).collect();
    if let Some((major, minor)) = tag_python(base) {
        // A `.python-version` is the developer's interpreter: a base given explicitly wins.
        if !project
            .python
            .iter()
            .filter(|c| !is_interpreter_preference(&c.source))
            .all(|c| c.value.allows(major, minor))
        {
            return Err(PlanError::BaseMismatch {
                base: base.to_owned(),
                python: format!("{major}.{minor}"),
                constraint: constraints(),
            });
        }
        return Ok(Decision::new(
            PythonVersion { major, minor },
            Origin::Detected,
            format!(
                "the base {base} runs CPython {major}.{minor} (its tag says so; the build \
                 checks the base's own Python)"
            ),
            sources,
        ));
    }
    if let Some(locked) = &project.locked_python
        && let Some((major, minor)) = locked.value.split_once('.')
        && let (Ok(major), Ok(minor)) = (major.parse(), minor.parse())
    {
        sources.push(locked.source.clone());
        return Ok(Decision::new(
            PythonVersion { major, minor },
            Origin::Detected,
            format!(
                "the Python the last build found in the base {base} (terrarium.lock; its tag \
                 names none)"
            ),
            sources,
        ));
    }
    let mut decision = decide_python(project, options, era)?;
    decision.reason.push_str(&format!(
        "; the base {base}'s tag names no Python: the build uses the base's own and records it"
    ));
    Ok(decision)
}

/// The Debian release `terrarium build` takes the planned Python from.
pub(crate) fn decide_runtime(python: &Decision<PythonVersion>) -> Decision<Option<Distro>> {
    let PythonVersion { major, minor } = python.value;
    let origin = python.origin.clone();
    match Distro::for_python(major, minor) {
        Some(distro) => {
            let mut reason = format!(
                "Debian {distro} ships CPython {major}.{minor}: `terrarium build` assembles the \
                 runtime from its signed packages"
            );
            if let Some(day) = distro.end_of_life() {
                reason.push_str(&format!(
                    "; Debian {distro}'s security support ended on {day}: its packages get no \
                     more fixes"
                ));
            }
            Decision::new(Some(distro), origin, reason, python.sources.clone())
        }
        None => {
            let known = debian_pythons();
            Decision::new(
                None,
                origin,
                format!(
                    "no Debian release terrarium builds on ships CPython {major}.{minor} \
                     ({known}): `terrarium build` can't assemble its runtime; `terrarium init` \
                     and `docker build` can, or set `python` to one of those"
                ),
                python.sources.clone(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_tags_name_their_python() {
        assert_eq!(tag_python("python:3.12-slim-bookworm"), Some((3, 12)));
        assert_eq!(tag_python("docker://python:3.11.9-bookworm"), Some((3, 11)));
        assert_eq!(
            tag_python("127.0.0.1:5000/terrarium-test/python:3.10-slim"),
            Some((3, 10))
        );
        assert_eq!(tag_python("ghcr.io/acme/py:prod-3.13"), Some((3, 13)));
        assert_eq!(tag_python("python:latest"), None);
        assert_eq!(tag_python("localhost:5000/python"), None);
        assert_eq!(tag_python("oci:/tmp/layout"), None);
        assert_eq!(tag_python("acme:v13.3"), None);
    }

    #[test]
    fn wheel_tags_give_pythons() {
        let pythons = wheel_pythons([
            "psycopg2_binary-2.9.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "psycopg2_binary-2.9.6-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "psycopg2_binary-2.9.6-cp312-cp312-macosx_11_0_arm64.whl",
            "psycopg2_binary-2.9.6-cp313-cp313t-manylinux_2_17_x86_64.whl",
        ])
        .unwrap();
        assert_eq!(pythons, BTreeSet::from([(3, 10), (3, 11)]));
        assert_eq!(wheel_pythons(["flask-2.0.1-py3-none-any.whl"]), None);
        let abi3 =
            wheel_pythons(["cryptography-41.0.0-cp37-abi3-manylinux_2_28_x86_64.whl"]).unwrap();
        assert!(abi3.contains(&(3, 11)) && abi3.contains(&(3, 13)));
    }
}
