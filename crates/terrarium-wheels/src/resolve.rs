//! Resolving requirements that are not locked (a server terrarium adds, an unlocked project)
//! into [`Pin`]s, on top of packages already pinned by the project's lock.
//!
//! The search is PubGrub's ([`pubgrub`]), so it backtracks: when `sqlmodel==0.0.8` caps
//! `SQLAlchemy<=1.4.41`, an unpinned `sqlalchemy` gets a 1.4 release instead of stopping at 2.0,
//! and when no choice satisfies everything the error lists which requirements conflict and who
//! needed each. The rules:
//!
//! - Locked pins are fixed (their dependencies are the lock's business); a requirement they do
//!   not satisfy is a conflict.
//! - Markers are evaluated for the target at every level, the requirements given included (as
//!   top-level requirements, no extras are active): a `pywin32; sys_platform == "win32"` is not
//!   resolved for a Linux image. `pkg[extra]` adds the requirements that extra enables.
//! - A release is a candidate when it is neither yanked nor a pre-release (unless pinned with
//!   `==` or the project has only pre-releases, as uv's default), its file's
//!   `Requires-Python` allows the target's Python and it has a wheel for the target, or a source
//!   distribution when the [`WheelBuilder`] builds (dependencies are then read from the wheel it
//!   builds). The newest candidate is tried first; packages are decided in the order they were
//!   first required (breadth first, like pip), those in conflicts earlier.
//! - The cut-off (the index's `exclude-newer`, the project's era) dates what is not pinned
//!   exactly (`==`), as a preference that gives way: among the releases a requirement allows,
//!   the newest uploaded before it is taken; when none of them has a wheel for the target, the
//!   OLDEST later release that has one is preferred to building an old source distribution
//!   (greenlet 1.1.2, the last of early 2022, has no wheel for CPython 3.11 and its sdist does
//!   not compile there: 1.1.3 of August 2022 is taken), and later releases are also the last resort when the
//!   earlier ones conflict. Each such choice is reported as a [`ProgressEvent::Notice`].
//! - Dependencies come from each tried release's METADATA (`Requires-Dist`), read from its
//!   wheel (downloaded and verified into the blob cache) and remembered per file in the cache's
//!   metadata, so only releases the search tries are downloaded, once.
//!
//! The result is recorded in `terrarium.lock`, so it is decided once.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;

use pep508_rs::pep440_rs::{Operator, Version, VersionSpecifiers};
use pep508_rs::{ExtraName, MarkerEnvironment, Requirement, VersionOrUrl};
use pubgrub::{
    DependencyConstraints, DependencyProvider, DerivationTree, External,
    PackageResolutionStatistics, PubGrubError, Ranges,
};
use terrarium_image::{Progress, ProgressEvent};
use terrarium_project::PackageName;

use crate::error::Error;
use crate::fetch::fetch_wheel;
use crate::index::{Index, IndexFile};
use crate::install::requires_dist;
use crate::sdist::{WheelBuilder, is_sdist};
use crate::select::{Pin, no_wheel};
use crate::tags::{Tag, Target, WheelName};

/// Parse a PEP 508 requirement; `what` names where it came from.
pub fn parse_requirement(text: &str, what: &str) -> Result<Requirement, Error> {
    Requirement::from_str(text).map_err(|err| Error::Parse {
        what: what.to_owned(),
        message: format!("bad requirement `{text}`: {err}"),
    })
}

/// A `Requires-Dist` of a published file, read as leniently as installers do: releases on the
/// index carry specifiers PEP 440 doesn't allow and pip and uv accept (uvicorn 0.12.0 has
/// `colorama (>=0.4.*)`; others write `>=1.0 <2.0` without the comma). When the text doesn't
/// parse, a wildcard after an ordering operator is dropped (`>=0.4.*` is `>=0.4`) and
/// specifiers separated by spaces alone get their comma; what still doesn't parse is an error.
fn parse_published_requirement(text: &str, what: &str) -> Result<Requirement, Error> {
    static WILDCARD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(>=|<=|>|<|~=)\s*([0-9][0-9A-Za-z.+!-]*?)\.\*").expect("static regex")
    });
    static NO_COMMA: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"((?:==|!=|>=|<=|~=|>|<)\s*[0-9][0-9A-Za-z.*+!-]*)\s+(==|!=|>=|<=|~=|>|<)",
        )
        .expect("static regex")
    });
    parse_requirement(text, what).or_else(|err| {
        // Only the specifiers are mended, never the marker after `;`.
        let (specifiers, marker) = text.split_at(text.find(';').unwrap_or(text.len()));
        let mut mended = WILDCARD.replace_all(specifiers, "$1$2").into_owned();
        // Each pass mends every other gap of a run like `>=1 <2 !=1.5`.
        for _ in 0..4 {
            let next = NO_COMMA.replace_all(&mended, "$1, $2").into_owned();
            if next == mended {
                break;
            }
            mended = next;
        }
        if mended == specifiers {
            return Err(err);
        }
        parse_requirement(&format!("{mended}{marker}"), what).map_err(|_| err)
    })
}

/// How many index pages are fetched at once when a release's dependencies are read.
const PARALLEL_PAGES: usize = 8;

/// Resolve `requirements` (with who asked for them) for `target`, given `locked` pins that are
/// already decided. Requirements whose marker does not hold on the target are skipped (as
/// top-level requirements, no extras are active). A version without a wheel for the target is
/// pinned to its source distribution when `builder` builds them (its dependencies are read
/// from the wheel `builder` makes). Returns only the new pins, sorted by name; see the module
/// docs for the rules, the cut-off's included.
pub fn resolve(
    requirements: Vec<(Requirement, String)>,
    locked: &[Pin],
    target: &Target,
    index: &Index,
    progress: &dyn Progress,
    builder: &dyn WheelBuilder,
) -> Result<Vec<Pin>, Error> {
    Ok(resolve_dated(requirements, locked, target, index, progress, builder)?.pins)
}

/// [`resolve`], also saying which of the new pins were taken from after the index's cut-off.
pub fn resolve_dated(
    requirements: Vec<(Requirement, String)>,
    locked: &[Pin],
    target: &Target,
    index: &Index,
    progress: &dyn Progress,
    builder: &dyn WheelBuilder,
) -> Result<Resolution, Error> {
    let env = target.marker_environment()?;
    let root: Vec<(Requirement, String)> = requirements
        .into_iter()
        .filter(|(requirement, _)| requirement.evaluate_markers(&env, &[]))
        .collect();
    if root.is_empty() {
        return Ok(Resolution::default());
    }
    let provider = Provider {
        python: Version::from_str(&target.python_full)
            .map_err(|err| Error::Internal(format!("target python version: {err}")))?,
        env,
        ranks: target
            .supported_tags()
            .into_iter()
            .enumerate()
            .rev()
            .map(|(rank, tag)| (tag, rank))
            .collect(),
        target,
        index,
        progress,
        builder,
        locked: locked
            .iter()
            .filter_map(|pin| Some((pin.name.clone(), Version::from_str(&pin.version).ok()?)))
            .collect(),
        root,
        projects: RefCell::default(),
        requires: RefCell::default(),
        exact: RefCell::default(),
        order: RefCell::default(),
        edges: RefCell::default(),
        notes: RefCell::default(),
        last_base: RefCell::default(),
    };
    let solution = match pubgrub::resolve(&provider, Package::Root, Version::new([0])) {
        Ok(solution) => solution,
        Err(PubGrubError::NoSolution(tree)) => return Err(provider.explain(&tree)),
        Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
        | Err(PubGrubError::ErrorChoosingVersion { source, .. })
        | Err(PubGrubError::ErrorInShouldCancel(source)) => return Err(source),
    };
    let mut pins = Vec::new();
    let mut notes = Vec::new();
    let mut late = Vec::new();
    for (package, version) in solution {
        let Package::Base(name) = package else {
            continue;
        };
        if provider.locked.contains_key(&name) {
            continue;
        }
        if let Some(taken) = provider
            .notes
            .borrow_mut()
            .remove(&(name.clone(), version.clone()))
        {
            notes.push(taken.note);
            if let Some(uploaded) = taken.uploaded {
                late.push(LateRelease {
                    name: name.clone(),
                    version: version.to_string(),
                    uploaded,
                });
            }
        }
        pins.push(provider.pin(&name, &version)?);
    }
    pins.sort();
    notes.sort();
    late.sort();
    for note in &notes {
        progress.event(&ProgressEvent::Notice { text: note });
    }
    Ok(Resolution { pins, late })
}

/// A node of the search: the requirements given, a distribution, or a distribution with one
/// extra (which depends on the distribution at the same version, plus what the extra enables).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Package {
    Root,
    Base(String),
    Extra(String, ExtraName),
}

impl Package {
    fn name(&self) -> Option<&str> {
        match self {
            Package::Root => None,
            Package::Base(name) | Package::Extra(name, _) => Some(name),
        }
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Package::Root => f.write_str("the requirements"),
            Package::Base(name) => f.write_str(name),
            Package::Extra(name, extra) => write!(f, "{name}[{extra}]"),
        }
    }
}

type Versions = Ranges<Version>;

/// A release: distribution name and version.
type Release = (String, Version);

/// Requirement texts per version of a dependent, for one dependency.
type Edge = BTreeMap<Version, BTreeSet<String>>;

/// What the index offers of one project.
#[derive(Default)]
struct Project {
    /// Every version with a file on the index, yanked and pre-releases too, ascending: the
    /// points a requirement's range is cut at.
    versions: Vec<Version>,
    /// The releases that are not yanked, each with its files that allow the target's Python,
    /// have a sha256 and are a wheel for the target or a source distribution.
    releases: BTreeMap<Version, Vec<Usable>>,
    /// Whether any of them is a final release: when none is, pre-releases are candidates.
    finals: bool,
    /// Every file, for error messages.
    files: Vec<IndexFile>,
    /// The index does not have the project.
    missing: bool,
}

/// A file that can be installed on the target: a wheel, ranked by its tags (lower is
/// better, ranked once per run), or a source distribution.
struct Usable {
    file: IndexFile,
    wheel_rank: Option<usize>,
}

/// The release to take of a project, and what to report when the cut-off gave way.
struct Choice {
    version: Version,
    late: Option<Late>,
}

/// Why a release from after the cut-off was taken, and when its file was uploaded.
struct Late {
    note: String,
    uploaded: Option<jiff::Timestamp>,
}

/// A release the resolver took from after the cut-off (no earlier one had a wheel for the
/// target, or the earlier ones conflicted): recorded so the Dockerfile's uv, for which the
/// cut-off is a hard limit, can be told to give way for the same packages
/// (`--exclude-newer-package NAME=UPLOADED`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct LateRelease {
    /// Normalized distribution name.
    pub name: String,
    /// The version taken.
    pub version: String,
    /// When the file taken was uploaded: the package's own cut-off that admits it.
    pub uploaded: jiff::Timestamp,
}

impl LateRelease {
    /// This package's own cut-off as uv's `--exclude-newer-package` value
    /// (`greenlet=2022-08-25T10:26:32Z`): the whole second after the file taken was uploaded,
    /// since installers compare at their own precision (uv drops the fraction).
    pub fn own_cutoff(&self) -> String {
        let after =
            jiff::Timestamp::from_second(self.uploaded.as_second() + 1).unwrap_or(self.uploaded);
        format!("{}={after}", self.name)
    }
}

/// What [`resolve_dated`] decided: the new pins, and the releases among them taken from
/// after the cut-off.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// The new pins, sorted by name.
    pub pins: Vec<Pin>,
    /// Those taken from after the index's cut-off, sorted by name.
    pub late: Vec<LateRelease>,
}

/// The index and the target as PubGrub sees them. Everything read is kept for the run: index
/// pages per project, `Requires-Dist` per release.
struct Provider<'a> {
    env: MarkerEnvironment,
    /// The target's tags and their rank, best (0) first, for [`WheelName::priority`]'s
    /// ranking without a scan of the list per tag.
    ranks: HashMap<Tag, usize>,
    python: Version,
    target: &'a Target,
    index: &'a Index,
    progress: &'a dyn Progress,
    builder: &'a dyn WheelBuilder,
    locked: BTreeMap<String, Version>,
    root: Vec<(Requirement, String)>,
    projects: RefCell<HashMap<String, Rc<Project>>>,
    requires: RefCell<HashMap<Release, Rc<Vec<Requirement>>>>,
    /// Versions some requirement pins with `==`: the cut-off does not date them.
    exact: RefCell<HashMap<String, BTreeSet<Version>>>,
    /// The order packages were first required in (the decision order, breadth first).
    order: RefCell<HashMap<Package, usize>>,
    /// Who requires what, per dependent and version: `requirement` texts for explanations.
    edges: RefCell<HashMap<(Package, Package), Edge>>,
    /// Releases taken from after the cut-off, and why.
    notes: RefCell<HashMap<Release, Late>>,
    /// The version last chosen for each distribution, preferred for its extras.
    last_base: RefCell<HashMap<String, Version>>,
}

impl DependencyProvider for Provider<'_> {
    type P = Package;
    type V = Version;
    type VS = Versions;
    type M = String;
    type Priority = (u8, u32, Reverse<usize>);
    type Err = Error;

    fn prioritize(
        &self,
        package: &Package,
        _range: &Versions,
        statistics: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let class = match package {
            Package::Root => 3,
            Package::Base(name) if self.locked.contains_key(name) => 3,
            Package::Base(_) => 2,
            Package::Extra(..) => 1,
        };
        let order = self
            .order
            .borrow()
            .get(package)
            .copied()
            .unwrap_or(usize::MAX);
        (class, statistics.conflict_count(), Reverse(order))
    }

    fn choose_version(
        &self,
        package: &Package,
        range: &Versions,
    ) -> Result<Option<Version>, Error> {
        let Some(name) = package.name() else {
            return Ok(Some(Version::new([0])));
        };
        if let Some(version) = self.locked.get(name) {
            return Ok(range.contains(version).then(|| version.clone()));
        }
        let project = self.project(name)?;
        if let Package::Extra(..) = package {
            let last = self.last_base.borrow().get(name).cloned();
            if let Some(version) = last.filter(|v| range.contains(v))
                && self.file_for(name, &project, &version).is_some()
            {
                return Ok(Some(version));
            }
        }
        let Some(choice) = self.choose(name, &project, range) else {
            return Ok(None);
        };
        if let Package::Base(_) = package {
            self.last_base
                .borrow_mut()
                .insert(name.to_owned(), choice.version.clone());
        }
        if let Some(late) = choice.late {
            self.notes
                .borrow_mut()
                .insert((name.to_owned(), choice.version.clone()), late);
        }
        Ok(Some(choice.version))
    }

    fn get_dependencies(
        &self,
        package: &Package,
        version: &Version,
    ) -> Result<pubgrub::Dependencies<Package, Versions, String>, Error> {
        let mut constraints = DependencyConstraints::default();
        let wanted: Vec<(Requirement, String)> = match package {
            Package::Root => self.root.clone(),
            Package::Base(name) if self.locked.contains_key(name) => Vec::new(),
            Package::Extra(name, _) if self.locked.contains_key(name) => {
                constraints.insert(
                    Package::Base(name.clone()),
                    Versions::singleton(version.clone()),
                );
                Vec::new()
            }
            Package::Base(name) => {
                let who = format!("{name} {version}");
                self.requires_of(name, version)?
                    .iter()
                    .filter(|r| r.evaluate_markers(&self.env, &[]))
                    .map(|r| (r.clone(), who.clone()))
                    .collect()
            }
            Package::Extra(name, extra) => {
                constraints.insert(
                    Package::Base(name.clone()),
                    Versions::singleton(version.clone()),
                );
                let who = format!("{name}[{extra}] {version}");
                let extras = std::slice::from_ref(extra);
                self.requires_of(name, version)?
                    .iter()
                    .filter(|r| {
                        r.evaluate_markers(&self.env, extras) && !r.evaluate_markers(&self.env, &[])
                    })
                    .map(|r| (r.clone(), who.clone()))
                    .collect()
            }
        };
        let names: Vec<String> = wanted
            .iter()
            .map(|(r, _)| normalize(r.name.as_ref()))
            .filter(|name| !self.locked.contains_key(name))
            .collect();
        self.prefetch(&names)?;
        for (requirement, who) in wanted {
            self.add(&mut constraints, package, version, &requirement, &who)?;
        }
        Ok(pubgrub::Dependencies::Available(constraints))
    }
}

impl Provider<'_> {
    /// The project `name` on the index (a missing one has no versions), read once per run.
    fn project(&self, name: &str) -> Result<Rc<Project>, Error> {
        if let Some(project) = self.projects.borrow().get(name) {
            return Ok(project.clone());
        }
        let project = Rc::new(self.read_project(name)?);
        self.projects
            .borrow_mut()
            .insert(name.to_owned(), project.clone());
        Ok(project)
    }

    /// Read the index pages of the `names` not read yet, [`PARALLEL_PAGES`] at once.
    fn prefetch(&self, names: &[String]) -> Result<(), Error> {
        let mut todo: Vec<&String> = names
            .iter()
            .filter(|name| !self.projects.borrow().contains_key(*name))
            .collect();
        todo.sort();
        todo.dedup();
        if todo.len() < 2 {
            return Ok(());
        }
        let chunk = todo.len().div_ceil(PARALLEL_PAGES);
        let index = self.index;
        let pages: Vec<Result<Vec<IndexFile>, Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = todo
                .chunks(chunk)
                .map(|names| {
                    scope.spawn(move || {
                        names
                            .iter()
                            .map(|name| page(index, name))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|handle| {
                    handle.join().unwrap_or_else(|_| {
                        vec![Err(Error::Internal("an index page was not read".into()))]
                    })
                })
                .collect()
        });
        for (name, page) in todo.into_iter().zip(pages) {
            let project = Rc::new(self.project_from(page)?);
            self.projects.borrow_mut().insert(name.clone(), project);
        }
        Ok(())
    }

    fn read_project(&self, name: &str) -> Result<Project, Error> {
        self.project_from(page(self.index, name))
    }

    fn project_from(&self, page: Result<Vec<IndexFile>, Error>) -> Result<Project, Error> {
        let files = match page {
            Ok(files) => files,
            Err(Error::Image(terrarium_image::Error::NotFound { .. })) => {
                return Ok(Project {
                    missing: true,
                    ..Project::default()
                });
            }
            Err(err) => return Err(err),
        };
        let mut versions = BTreeSet::new();
        let mut releases: BTreeMap<Version, Vec<Usable>> = BTreeMap::new();
        let mut python_ok: HashMap<&str, bool> = HashMap::new();
        for file in &files {
            let Some(version) = version_of(&file.filename) else {
                continue;
            };
            versions.insert(version.clone());
            if file.yanked || file.sha256.is_none() {
                continue;
            }
            let allowed = match file.requires_python.as_deref() {
                None => true,
                Some(text) => *python_ok.entry(text).or_insert_with(|| {
                    VersionSpecifiers::from_str(text).is_ok_and(|s| s.contains(&self.python))
                }),
            };
            if !allowed {
                continue;
            }
            let usable = releases.entry(version).or_default();
            if is_sdist(&file.filename) {
                usable.push(Usable {
                    file: file.clone(),
                    wheel_rank: None,
                });
            } else if let Some(rank) = WheelName::from_str(&file.filename).ok().and_then(|wheel| {
                wheel
                    .tags
                    .iter()
                    .filter_map(|t| self.ranks.get(t))
                    .min()
                    .copied()
            }) {
                usable.push(Usable {
                    file: file.clone(),
                    wheel_rank: Some(rank),
                });
            }
        }
        Ok(Project {
            finals: releases.keys().any(|v| !v.any_prerelease()),
            versions: versions.into_iter().collect(),
            releases,
            files,
            missing: false,
        })
    }

    /// Add `requirement` of `package` `version` (`who`) to `constraints`: its distribution and
    /// each extra it asks for, over the range its specifiers allow.
    fn add(
        &self,
        constraints: &mut DependencyConstraints<Package, Versions>,
        package: &Package,
        version: &Version,
        requirement: &Requirement,
        who: &str,
    ) -> Result<(), Error> {
        let specifiers = match &requirement.version_or_url {
            None => VersionSpecifiers::empty(),
            Some(VersionOrUrl::VersionSpecifier(specifiers)) => specifiers.clone(),
            Some(VersionOrUrl::Url(_)) => {
                return Err(Error::Unresolvable {
                    requirement: format!("{requirement} (needed by {who})"),
                    message: "direct URL requirements are not supported".into(),
                });
            }
        };
        let name = normalize(requirement.name.as_ref());
        let range = self.range(&name, &specifiers)?;
        let text = match package {
            Package::Root => format!("`{requirement}` (needed by {who})"),
            _ => format!("`{requirement}`"),
        };
        let targets = std::iter::once(Package::Base(name.clone())).chain(
            requirement
                .extras
                .iter()
                .map(|extra| Package::Extra(name.clone(), extra.clone())),
        );
        for dependency in targets {
            let next = self.order.borrow().len();
            self.order
                .borrow_mut()
                .entry(dependency.clone())
                .or_insert(next);
            self.edges
                .borrow_mut()
                .entry((package.clone(), dependency.clone()))
                .or_default()
                .entry(version.clone())
                .or_default()
                .insert(text.clone());
            let merged = match constraints.get(&dependency) {
                Some(existing) => existing.intersection(&range),
                None => range.clone(),
            };
            constraints.insert(dependency, merged);
        }
        Ok(())
    }

    /// The versions of `name` that `specifiers` allow, as ranges cut at the versions the index
    /// has (a locked package has only its pin). `==` pins are remembered: the cut-off does not
    /// date them.
    fn range(&self, name: &str, specifiers: &VersionSpecifiers) -> Result<Versions, Error> {
        if let Some(version) = self.locked.get(name) {
            return Ok(if specifiers.contains(version) {
                Versions::singleton(version.clone())
            } else {
                Versions::empty()
            });
        }
        let pinned: Vec<Version> = specifiers
            .iter()
            .filter(|s| matches!(s.operator(), Operator::Equal | Operator::ExactEqual))
            .map(|s| s.version().clone())
            .collect();
        if !pinned.is_empty() {
            self.exact
                .borrow_mut()
                .entry(name.to_owned())
                .or_default()
                .extend(pinned);
        }
        let project = self.project(name)?;
        // Runs of consecutive versions it allows, each from its first to its last version: no
        // range holds a version the index does not have.
        let mut range = Versions::empty();
        let mut run: Option<(&Version, &Version)> = None;
        for version in &project.versions {
            if specifiers.contains(version) {
                run = Some((run.map_or(version, |(first, _)| first), version));
            } else if let Some((first, last)) = run.take() {
                range = range.union(&Versions::from_range_bounds(first.clone()..=last.clone()));
            }
        }
        if let Some((first, last)) = run {
            range = range.union(&Versions::from_range_bounds(first.clone()..=last.clone()));
        }
        Ok(range)
    }

    /// Whether `file` counts as uploaded before the cut-off (always, without one).
    fn early(&self, file: &IndexFile) -> bool {
        match self.index.exclude_newer() {
            None => true,
            Some(cutoff) => file.upload_time.is_none_or(|t| t <= cutoff),
        }
    }

    /// The best wheel among `files` for the target, of those uploaded before the cut-off
    /// unless `late`.
    fn best_wheel<'f>(&self, files: &'f [Usable], late: bool) -> Option<&'f IndexFile> {
        files
            .iter()
            .filter(|u| late || self.early(&u.file))
            .filter_map(|u| Some((u.wheel_rank?, &u.file)))
            .min_by(|(pa, a), (pb, b)| pa.cmp(pb).then(a.filename.cmp(&b.filename)))
            .map(|(_, f)| f)
    }

    /// The source distribution among `files` (`.tar.gz` preferred to `.zip`) when the builder
    /// builds, of those uploaded before the cut-off unless `late`.
    fn best_sdist<'f>(&self, files: &'f [Usable], late: bool) -> Option<&'f IndexFile> {
        if !self.builder.builds() {
            return None;
        }
        files
            .iter()
            .filter(|u| u.wheel_rank.is_none() && (late || self.early(&u.file)))
            .map(|u| &u.file)
            .min_by_key(|f| (!f.filename.ends_with(".tar.gz"), f.filename.clone()))
    }

    fn pinned_exactly(&self, name: &str, version: &Version) -> bool {
        self.exact
            .borrow()
            .get(name)
            .is_some_and(|versions| versions.contains(version))
    }

    /// Whether `version` of `name` is a candidate as far as pre-releases go: a final release,
    /// a pre-release pinned with `==`, or any release of a project that has only pre-releases
    /// (uv's `if-necessary-or-explicit`; `sqlalchemy2-stubs` has never had a final release).
    fn allowed(&self, name: &str, project: &Project, version: &Version) -> bool {
        !version.any_prerelease() || !project.finals || self.pinned_exactly(name, version)
    }

    /// The file of `name` `version` to install: a wheel from before the cut-off, else a later
    /// wheel, else a source distribution from before it (any file for an exact pin).
    fn file_for<'p>(
        &self,
        name: &str,
        project: &'p Project,
        version: &Version,
    ) -> Option<&'p IndexFile> {
        let files = project.releases.get(version)?;
        let any = self.pinned_exactly(name, version);
        self.best_wheel(files, any)
            .or_else(|| self.best_wheel(files, true))
            .or_else(|| self.best_sdist(files, any))
    }

    /// The release of `name` in `range` to try next. Without a cut-off: the newest with a
    /// wheel or a buildable sdist. With one: the newest from before it, unless none of those
    /// has a wheel, in which case the oldest later release with a wheel comes first; later
    /// releases come after the earlier ones are exhausted.
    fn choose<'p>(&self, name: &str, project: &'p Project, range: &Versions) -> Option<Choice> {
        let in_range: Vec<(&Version, &Vec<Usable>)> = project
            .releases
            .iter()
            .filter(|(version, _)| range.contains(*version) && self.allowed(name, project, version))
            .collect();
        let early = |version: &Version, files: &'p [Usable]| {
            let any = self.pinned_exactly(name, version);
            self.best_wheel(files, any)
                .or_else(|| self.best_sdist(files, any))
        };
        let newest_early = || {
            in_range
                .iter()
                .rev()
                .find_map(|(version, files)| early(version, files).map(|_| (*version).clone()))
        };
        let Some(cutoff) = self.index.exclude_newer() else {
            let version = newest_early()?;
            return Some(Choice {
                version,
                late: None,
            });
        };
        let early_wheel = in_range.iter().any(|(version, files)| {
            self.best_wheel(files, self.pinned_exactly(name, version))
                .is_some()
        });
        let oldest_late = || {
            in_range.iter().find_map(|(version, files)| {
                self.best_wheel(files, true)
                    .map(|f| ((*version).clone(), f))
            })
        };
        let date = cutoff.strftime("%Y-%m-%d").to_string();
        let late_note = |version: &Version, file: &IndexFile, why: &str| {
            let uploaded = file
                .upload_time
                .map(|t| format!(" (uploaded {})", t.strftime("%Y-%m-%d")))
                .unwrap_or_default();
            Late {
                note: format!("{name}: {why}; took {version}{uploaded}"),
                uploaded: file.upload_time,
            }
        };
        if early_wheel {
            let version = newest_early()?;
            return Some(Choice {
                version,
                late: None,
            });
        }
        if let Some((version, file)) = oldest_late() {
            // Releases from before the cut-off that are left have no wheel for the target.
            let early_release = project.files.iter().any(|f| {
                self.early(f)
                    && version_of(&f.filename)
                        .is_some_and(|v| in_range.iter().any(|(r, _)| **r == v))
            });
            let why = if early_release {
                format!("no wheel for cp3{} before {date}", self.target.python_minor)
            } else {
                format!("no release before {date} fits")
            };
            return Some(Choice {
                late: Some(late_note(&version, file, &why)),
                version,
            });
        }
        let version = newest_early()?;
        Some(Choice {
            version,
            late: None,
        })
    }

    /// The pin of `name` `version`: its file to install, with the index's sha256.
    fn pin(&self, name: &str, version: &Version) -> Result<Pin, Error> {
        let project = self.project(name)?;
        let file = self.file_for(name, &project, version).ok_or_else(|| {
            Error::Internal(format!("{name} {version} was chosen without a file"))
        })?;
        let sha256 = file.sha256.ok_or_else(|| Error::Unresolvable {
            requirement: format!("{name}=={version}"),
            message: format!("the index gives no sha256 for {}", file.filename),
        })?;
        Ok(Pin {
            name: name.to_owned(),
            version: version.to_string(),
            filename: file.filename.clone(),
            url: file.url.clone(),
            sha256,
        })
    }

    /// The `Requires-Dist` of `name` `version`: from the cache's metadata when this file was
    /// read before, else from its wheel (downloaded and verified) or the wheel built from its
    /// sdist.
    fn requires_of(&self, name: &str, version: &Version) -> Result<Rc<Vec<Requirement>>, Error> {
        let key = (name.to_owned(), version.clone());
        if let Some(requires) = self.requires.borrow().get(&key) {
            return Ok(requires.clone());
        }
        let pin = self.pin(name, version)?;
        let texts = if is_sdist(&pin.filename) {
            requires_dist(&self.builder.build(&pin)?, &pin.filename)?
        } else {
            let cache = self.index.fetcher().cache();
            let meta = format!("wheels/requires-dist/{}.json", pin.sha256.hex());
            let remembered = cache
                .read_meta(&meta)?
                .and_then(|bytes| serde_json::from_slice::<Vec<String>>(&bytes).ok());
            match remembered {
                Some(texts) => texts,
                None => {
                    let stored = fetch_wheel(self.index.fetcher(), &pin, self.progress)?;
                    let texts = requires_dist(&stored, &pin.filename)?;
                    let json = serde_json::to_vec(&texts)
                        .map_err(|err| Error::Internal(err.to_string()))?;
                    cache.write_meta(&meta, &json)?;
                    texts
                }
            }
        };
        let requires: Vec<Requirement> = texts
            .iter()
            .map(|text| parse_published_requirement(text, &pin.filename))
            .collect::<Result<_, _>>()?;
        let requires = Rc::new(requires);
        self.requires.borrow_mut().insert(key, requires.clone());
        Ok(requires)
    }
}

/// How many lines of a conflict's explanation are shown.
const EXPLANATION_LINES: usize = 12;

impl Provider<'_> {
    /// The error for a search that found no solution: a release with no usable file is the
    /// same error as for a locked package ([`Error::SdistOnly`], [`Error::NoCompatibleWheel`]);
    /// otherwise [`Error::Conflict`] lists the requirements involved (the leaves of PubGrub's
    /// derivation tree), who needed each, and why a range has no release.
    fn explain(&self, tree: &DerivationTree<Package, Versions, String>) -> Error {
        let mut leaves = Vec::new();
        collect_leaves(tree, &mut leaves);
        let empty: Vec<(&Package, &Versions)> = leaves
            .iter()
            .filter_map(|leaf| match leaf {
                External::NoVersions(package, range) => Some((package, range)),
                _ => None,
            })
            .collect();
        if let [(package, range)] = empty.as_slice()
            && let Some(err) = self.unusable_files(package, range)
        {
            return err;
        }
        let mut lines: Vec<String> = Vec::new();
        let mut packages: BTreeSet<String> = BTreeSet::new();
        for leaf in &leaves {
            let line = match leaf {
                External::NotRoot(..) => continue,
                External::FromDependencyOf(dependent, versions, dependency, range) => {
                    let same = dependent.name().is_some() && dependent.name() == dependency.name();
                    if same {
                        // `pkg[extra]` requires `pkg` at its own version: not news to a user.
                        continue;
                    }
                    packages.extend(dependency.name().map(str::to_owned));
                    self.describe_edge(dependent, versions, dependency, range)
                }
                External::NoVersions(package, range) => {
                    if !self.has_versions(package, range) {
                        // Nothing of it is on the index: the dependency edges say why.
                        continue;
                    }
                    packages.extend(package.name().map(str::to_owned));
                    self.why_none(package, range)
                        .unwrap_or_else(|| format!("no release of {package} fits"))
                }
                External::Custom(_, _, message) => message.clone(),
            };
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        if lines.len() > EXPLANATION_LINES {
            let more = lines.len() - EXPLANATION_LINES;
            lines.truncate(EXPLANATION_LINES);
            lines.push(format!("… and {more} more"));
        }
        Error::Conflict {
            explanation: lines
                .iter()
                .map(|line| format!("  - {line}"))
                .collect::<Vec<_>>()
                .join("\n"),
            packages: packages.into_iter().collect::<Vec<_>>().join(", "),
        }
    }

    /// `dependent` (the `versions` of it that were tried) requires `dependency`: the texts of
    /// those requirements, and why nothing fits when nothing does.
    fn describe_edge(
        &self,
        dependent: &Package,
        versions: &Versions,
        dependency: &Package,
        range: &Versions,
    ) -> String {
        let edges = self.edges.borrow();
        let by_version = edges.get(&(dependent.clone(), dependency.clone()));
        let tried: Vec<(&Version, &BTreeSet<String>)> = by_version
            .map(|m| m.iter().filter(|(v, _)| versions.contains(*v)).collect())
            .unwrap_or_default();
        let texts: BTreeSet<&String> = tried.iter().flat_map(|(_, texts)| texts.iter()).collect();
        let texts: Vec<&str> = texts.into_iter().map(String::as_str).collect();
        let mut line = match dependent {
            Package::Root => texts.join(" and "),
            _ => {
                let mut shown: Vec<String> = tried.iter().map(|(v, _)| v.to_string()).collect();
                if shown.len() > 3 {
                    let last = shown.pop().unwrap_or_default();
                    shown.truncate(1);
                    shown.push(format!("… {last}"));
                }
                format!(
                    "{dependent} {} requires {}",
                    shown.join(", "),
                    texts.join(" or ")
                )
            }
        };
        if let Some(why) = self.why_none(dependency, range) {
            line.push_str(&format!(": {why}"));
        }
        line
    }

    /// Whether the index has any version of `package` in `range`.
    fn has_versions(&self, package: &Package, range: &Versions) -> bool {
        let Some(name) = package.name() else {
            return false;
        };
        if let Some(version) = self.locked.get(name) {
            return range.contains(version);
        }
        self.projects
            .borrow()
            .get(name)
            .is_some_and(|project| project.versions.iter().any(|v| range.contains(v)))
    }

    /// Why `range` of `package` has no release to take, or `None` when it has one.
    fn why_none(&self, package: &Package, range: &Versions) -> Option<String> {
        let name = package.name()?;
        if let Some(version) = self.locked.get(name) {
            return (!range.contains(version))
                .then(|| format!("{name} is locked at {version} by the project's lock"));
        }
        let project = self.projects.borrow().get(name).cloned()?;
        if project.missing {
            return Some(format!("{name} is not on the index"));
        }
        if self.choose(name, &project, range).is_some() {
            return None;
        }
        if !project.versions.iter().any(|v| range.contains(v)) {
            return Some(format!("no release of {name} on the index satisfies it"));
        }
        if let Some(err) = self.unusable_files(package, range) {
            return Some(err.to_string());
        }
        Some(format!(
            "no release of {name} that satisfies it is installable: yanked, a pre-release or \
             its Requires-Python excludes {}",
            self.target.python_version()
        ))
    }

    /// When `range` of `package` has releases for the target's Python but none with a file
    /// it can install: the error of the newest (only an sdist, or wheels for other targets).
    fn unusable_files(&self, package: &Package, range: &Versions) -> Option<Error> {
        let name = package.name()?;
        let project = self.projects.borrow().get(name).cloned()?;
        let (version, _) = project.releases.iter().rev().find(|(version, _)| {
            range.contains(*version) && self.allowed(name, &project, version)
        })?;
        if self.choose(name, &project, range).is_some() {
            return None;
        }
        let same: Vec<&IndexFile> = project
            .files
            .iter()
            .filter(|f| version_of(&f.filename).as_ref() == Some(version))
            .collect();
        let wheels: Vec<String> = same
            .iter()
            .filter_map(|f| WheelName::from_str(&f.filename).ok())
            .map(|w| w.tag_summary())
            .collect();
        let names: Vec<String> = same.iter().map(|f| f.filename.clone()).collect();
        Some(no_wheel(
            name,
            &version.to_string(),
            self.target,
            &wheels,
            &names,
        ))
    }
}

/// The external incompatibilities of `tree`, in order, each once.
fn collect_leaves<'t>(
    tree: &'t DerivationTree<Package, Versions, String>,
    leaves: &mut Vec<&'t External<Package, Versions, String>>,
) {
    match tree {
        DerivationTree::External(external) => {
            let seen = leaves
                .iter()
                .any(|leaf| format!("{leaf:?}") == format!("{external:?}"));
            if !seen {
                leaves.push(external);
            }
        }
        DerivationTree::Derived(derived) => {
            collect_leaves(&derived.cause1, leaves);
            collect_leaves(&derived.cause2, leaves);
        }
    }
}

/// The files of `name` on `index`; pages cached before upload times were kept are fetched
/// again when a cut-off needs them.
fn page(index: &Index, name: &str) -> Result<Vec<IndexFile>, Error> {
    let files = index.files(name, false)?;
    if index.exclude_newer().is_some()
        && !index.fetcher().offline()
        && files.iter().any(|f| f.upload_time.is_none())
    {
        return index.files(name, true);
    }
    Ok(files)
}

/// A distribution name normalized per PEP 503.
fn normalize(name: &str) -> String {
    PackageName::new(name).as_str().to_owned()
}

pub(crate) fn version_of(filename: &str) -> Option<Version> {
    let raw = if filename.ends_with(".whl") {
        WheelName::from_str(filename).ok()?.version
    } else {
        let stem = filename
            .strip_suffix(".tar.gz")
            .or_else(|| filename.strip_suffix(".zip"))?;
        stem.rsplit_once('-')?.1.to_owned()
    };
    Version::from_str(&raw).ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::Mutex;

    use terrarium_image::{Cache, Fetcher, NoProgress};

    use super::*;
    use crate::sdist::NoBuilds;

    /// A wheel of `name` `version` whose METADATA lists `requires` as `Requires-Dist`.
    fn wheel(name: &str, version: &str, requires: &[&str]) -> Vec<u8> {
        let dist_info = format!("{}-{version}.dist-info", name.replace('-', "_"));
        let mut metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
        for requirement in requires {
            metadata.push_str(&format!("Requires-Dist: {requirement}\n"));
        }
        metadata.push('\n');
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (member, content) in [
            (
                "WHEEL",
                "Wheel-Version: 1.0\nTag: py3-none-any\n".to_owned(),
            ),
            ("METADATA", metadata),
        ] {
            zip.start_file(format!("{dist_info}/{member}"), options)
                .unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// A release file on the test index.
    struct Published<'a> {
        version: &'a str,
        requires: &'a [&'a str],
        /// `py3-none-any` or another wheel tag, or `sdist`.
        tag: &'a str,
        uploaded: Option<&'a str>,
    }

    fn release<'a>(version: &'a str, requires: &'a [&'a str]) -> Published<'a> {
        Published {
            version,
            requires,
            tag: "py3-none-any",
            uploaded: None,
        }
    }

    /// An offline index over a fresh cache. Any project not published on it is missing, and
    /// asking for it fails.
    fn empty_index(dir: &std::path::Path) -> Index {
        Index::new(
            Fetcher::new(Cache::new(dir), true).unwrap(),
            "http://127.0.0.1:9",
        )
    }

    /// Put `releases` of `name` on `index`: its index page and its files in the cache.
    fn publish(index: &Index, name: &str, releases: &[Published<'_>]) {
        let cache = index.fetcher().cache();
        let files: Vec<IndexFile> = releases
            .iter()
            .map(|r| {
                let bytes = wheel(name, r.version, r.requires);
                let stem = format!("{}-{}", name.replace('-', "_"), r.version);
                let filename = match r.tag {
                    "sdist" => format!("{stem}.tar.gz"),
                    tag => format!("{stem}-{tag}.whl"),
                };
                IndexFile {
                    url: format!("http://127.0.0.1:9/{filename}"),
                    filename,
                    sha256: Some(cache.put_bytes(&bytes).unwrap()),
                    size: Some(bytes.len() as u64),
                    requires_python: None,
                    yanked: false,
                    upload_time: r.uploaded.map(|t| t.parse().unwrap()),
                }
            })
            .collect();
        index.remember(name, 0, &files).unwrap();
    }

    /// An offline index holding `projects` (name, Requires-Dist), each with one release, 1.0.
    fn offline_index(dir: &std::path::Path, projects: &[(&str, &[&str])]) -> Index {
        let index = empty_index(dir);
        for (name, requires) in projects {
            publish(&index, name, &[release("1.0", requires)]);
        }
        index
    }

    fn requirements(texts: &[&str]) -> Vec<(Requirement, String)> {
        texts
            .iter()
            .map(|text| (parse_requirement(text, "test").unwrap(), "test".to_owned()))
            .collect()
    }

    /// `name==version` of each pin.
    fn versions(pins: &[Pin]) -> Vec<String> {
        pins.iter()
            .map(|pin| format!("{}=={}", pin.name, pin.version))
            .collect()
    }

    fn run(index: &Index, texts: &[&str]) -> Result<Vec<String>, Error> {
        resolve(
            requirements(texts),
            &[],
            &Target::bookworm(),
            index,
            &NoProgress,
            &NoBuilds,
        )
        .map(|pins| versions(&pins))
    }

    #[test]
    fn markers_are_evaluated_for_the_target_at_every_level() {
        let dir = tempfile::tempdir().unwrap();
        let index = offline_index(
            dir.path(),
            &[
                (
                    "demo",
                    &[
                        "dep-a",
                        "dep-b; extra == \"fast\"",
                        "dep-c; extra == \"later\"",
                        "dep-win; sys_platform == \"win32\"",
                        "dep-old; python_version < \"3.8\"",
                    ],
                ),
                ("dep-a", &[]),
                ("dep-b", &[]),
                ("dep-c", &[]),
            ],
        );
        let pins = run(
            &index,
            &[
                "demo[fast]",
                "pywin32; sys_platform == \"win32\"",
                "tomli; python_version < \"3.11\"",
                "demo[later]; os_name == \"posix\"",
            ],
        )
        .unwrap();
        assert_eq!(
            pins,
            ["demo==1.0", "dep-a==1.0", "dep-b==1.0", "dep-c==1.0"]
        );

        // A requirement whose marker holds is resolved: here it reaches the (offline) index.
        let err = run(&index, &["pywin32; sys_platform == \"linux\""]).unwrap_err();
        assert!(err.to_string().contains("pywin32"), "{err}");
    }

    #[test]
    fn a_later_cap_backtracks_to_an_earlier_release() {
        let dir = tempfile::tempdir().unwrap();
        let index = empty_index(dir.path());
        publish(
            &index,
            "orm",
            &[
                release("1.0", &["never-read"]),
                release("1.4", &["greenlet"]),
                release("2.0", &["typing-x"]),
            ],
        );
        publish(&index, "greenlet", &[release("1.0", &[])]);
        publish(&index, "typing-x", &[release("1.0", &[])]);
        publish(
            &index,
            "models",
            &[
                release("0.1", &["orm<1.4"]),
                release("0.2", &["orm>=1.4,<2"]),
            ],
        );
        // Greedy in the order given, `orm` would be 2.0 and `models` would find it taken.
        assert_eq!(
            run(&index, &["orm", "models"]).unwrap(),
            ["greenlet==1.0", "models==0.2", "orm==1.4"]
        );
        // Only releases the search tried were read: orm 1.0 never was.
        let read = |name: &str, version: &str, requires: &[&str]| {
            let digest = terrarium_image::Digest::of(&wheel(name, version, requires));
            let key = format!("wheels/requires-dist/{}.json", digest.hex());
            index.fetcher().cache().read_meta(&key).unwrap().is_some()
        };
        assert!(read("orm", "2.0", &["typing-x"]));
        assert!(!read("orm", "1.0", &["never-read"]));
    }

    #[test]
    fn a_conflict_names_the_requirements_and_who_needed_them() {
        let dir = tempfile::tempdir().unwrap();
        let index = empty_index(dir.path());
        publish(&index, "orm", &[release("1.4", &[]), release("2.0", &[])]);
        publish(
            &index,
            "models",
            &[
                release("0.1", &["orm<1.4"]),
                release("0.2", &["orm>=1.4,<2"]),
            ],
        );
        let err = run(&index, &["orm>=2", "models"]).unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err}");
        let text = err.to_string();
        for part in [
            "`orm>=2` (needed by test)",
            "models 0.1 requires `orm<1.4`: no release of orm on the index satisfies it",
            "models 0.2 requires `orm>=1.4,<2`",
            "pin",
            "lock",
        ] {
            assert!(text.contains(part), "{part} not in:\n{text}");
        }

        // A locked pin is fixed: a requirement it does not satisfy is a conflict.
        let locked = Pin {
            name: "orm".into(),
            version: "2.0".into(),
            filename: "orm-2.0-py3-none-any.whl".into(),
            url: "http://127.0.0.1:9/orm-2.0-py3-none-any.whl".into(),
            sha256: terrarium_image::Digest::of(b"orm"),
        };
        let err = resolve(
            requirements(&["models"]),
            &[locked],
            &Target::bookworm(),
            &index,
            &NoProgress,
            &NoBuilds,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("locked at 2.0"), "{err}");

        // A release that does not exist says so, with who asked.
        let err = run(&index, &["orm>=3"]).unwrap_err().to_string();
        assert!(
            err.contains("`orm>=3` (needed by test): no release of orm on the index"),
            "{err}"
        );
    }

    #[test]
    fn published_requirements_are_read_as_leniently_as_installers_do() {
        let read = |text: &str| {
            parse_published_requirement(text, "x.whl")
                .map(|r| r.to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            read("colorama (>=0.4.*) ; (sys_platform == \"win32\") and extra == 'standard'")
                .unwrap(),
            "colorama>=0.4 ; sys_platform == 'win32' and extra == 'standard'"
        );
        assert_eq!(read("six >=1.0 <2.0").unwrap(), "six>=1.0,<2.0");
        assert_eq!(read("six >=1 <2 !=1.5").unwrap(), "six>=1,!=1.5,<2");
        assert_eq!(read("six ==1.*").unwrap(), "six==1.*");
        assert!(read("six >>= 1").unwrap_err().contains("bad requirement"));
    }

    #[test]
    fn exclude_newer_dates_what_is_not_pinned_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let index = empty_index(dir.path());
        publish(
            &index,
            "dep",
            &[
                Published {
                    uploaded: Some("2021-03-01T00:00:00Z"),
                    ..release("1.0", &[])
                },
                Published {
                    uploaded: Some("2023-03-01T00:00:00Z"),
                    ..release("2.0", &[])
                },
            ],
        );
        assert_eq!(run(&index, &["dep"]).unwrap(), ["dep==2.0"]);
        let dated = index
            .clone()
            .with_exclude_newer(Some("2022-01-01T00:00:00Z".parse().unwrap()));
        assert_eq!(run(&dated, &["dep>=0.5"]).unwrap(), ["dep==1.0"]);
        assert_eq!(run(&dated, &["dep==2.0"]).unwrap(), ["dep==2.0"]);
        // What only a later release satisfies gets it, and the choice is reported.
        let notices = Mutex::new(Vec::new());
        let progress = |event: &ProgressEvent<'_>| {
            if let ProgressEvent::Notice { text } = event {
                notices.lock().unwrap().push(text.to_string());
            }
        };
        let pins = resolve(
            requirements(&["dep>1.0"]),
            &[],
            &Target::bookworm(),
            &dated,
            &progress,
            &NoBuilds,
        )
        .unwrap();
        assert_eq!(versions(&pins), ["dep==2.0"]);
        assert_eq!(
            *notices.lock().unwrap(),
            ["dep: no release before 2022-01-01 fits; took 2.0 (uploaded 2023-03-01)"]
        );
    }

    #[test]
    fn without_an_early_wheel_the_oldest_later_wheel_beats_building_the_old_sdist() {
        let dir = tempfile::tempdir().unwrap();
        let index = empty_index(dir.path());
        let early = Some("2021-10-01T00:00:00Z");
        publish(
            &index,
            "greenlet",
            &[
                Published {
                    tag: "sdist",
                    uploaded: early,
                    ..release("1.1", &[])
                },
                Published {
                    tag: "cp310-cp310-manylinux_2_17_x86_64",
                    uploaded: early,
                    ..release("1.1", &[])
                },
                Published {
                    uploaded: Some("2022-10-31T12:00:00Z"),
                    ..release("2.0", &[])
                },
                Published {
                    uploaded: Some("2023-06-01T00:00:00Z"),
                    ..release("3.0", &[])
                },
            ],
        );
        publish(
            &index,
            "orm",
            &[Published {
                uploaded: Some("2022-04-01T00:00:00Z"),
                ..release("1.4", &["greenlet!=0.4.17"])
            }],
        );
        publish(&index, "dep-a", &[release("1.0", &[])]);
        let dated = index.with_exclude_newer(Some("2022-05-01T00:00:00Z".parse().unwrap()));
        let builder = CachedBuilds {
            cache: dated.fetcher().cache().clone(),
            built: Default::default(),
        };
        let notices = Mutex::new(Vec::new());
        let progress = |event: &ProgressEvent<'_>| {
            if let ProgressEvent::Notice { text } = event {
                notices.lock().unwrap().push(text.to_string());
            }
        };
        let resolve_with = |texts: &[&str]| {
            resolve(
                requirements(texts),
                &[],
                &Target::bookworm(),
                &dated,
                &progress,
                &builder,
            )
            .unwrap()
        };
        assert_eq!(
            versions(&resolve_with(&["orm"])),
            ["greenlet==2.0", "orm==1.4"]
        );
        assert!(builder.built.borrow().is_empty());
        assert_eq!(
            *notices.lock().unwrap(),
            ["greenlet: no wheel for cp311 before 2022-05-01; took 2.0 (uploaded 2022-10-31)"]
        );
        // When no later release fits either, the early sdist is built.
        let pins = resolve_with(&["orm", "greenlet<2"]);
        assert_eq!(versions(&pins), ["dep-a==1.0", "greenlet==1.1", "orm==1.4"]);
        assert_eq!(*builder.built.borrow(), ["greenlet-1.1.tar.gz"]);
    }

    /// Builds every sdist into a wheel (requiring `dep-a`) stored in the cache.
    struct CachedBuilds {
        cache: Cache,
        built: std::cell::RefCell<Vec<String>>,
    }

    impl WheelBuilder for CachedBuilds {
        fn build(&self, sdist: &Pin) -> Result<std::path::PathBuf, Error> {
            self.built.borrow_mut().push(sdist.filename.clone());
            let bytes = wheel(&sdist.name, &sdist.version, &["dep-a"]);
            let digest = self.cache.put_bytes(&bytes)?;
            Ok(self.cache.blob_path(&digest))
        }
    }

    #[test]
    fn an_sdist_only_version_is_built_and_its_wheel_read_for_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        let index = offline_index(dir.path(), &[("dep-a", &[])]);
        let sdist = IndexFile {
            upload_time: None,
            filename: "only-source-1.0.tar.gz".into(),
            url: "http://127.0.0.1:9/only-source-1.0.tar.gz".into(),
            sha256: Some(terrarium_image::Digest::of(b"sdist")),
            size: None,
            requires_python: None,
            yanked: false,
        };
        index.remember("only-source", 0, &[sdist]).unwrap();
        let builder = CachedBuilds {
            cache: Cache::new(dir.path()),
            built: Default::default(),
        };
        let pins = resolve(
            requirements(&["only-source==1.0"]),
            &[],
            &Target::bookworm(),
            &index,
            &NoProgress,
            &builder,
        )
        .unwrap();
        let files: Vec<&str> = pins.iter().map(|p| p.filename.as_str()).collect();
        assert_eq!(
            files,
            ["dep_a-1.0-py3-none-any.whl", "only-source-1.0.tar.gz"]
        );
        assert_eq!(*builder.built.borrow(), ["only-source-1.0.tar.gz"]);

        // A resolver that builds nothing finds no version with a wheel, and says so.
        let err = run(&index, &["only-source==1.0"]).unwrap_err();
        assert!(matches!(err, Error::SdistOnly { .. }), "{err}");
    }

    #[test]
    fn versions_from_file_names() {
        assert_eq!(
            version_of("flask-3.1.2-py3-none-any.whl")
                .unwrap()
                .to_string(),
            "3.1.2"
        );
        assert_eq!(
            version_of("my-pkg-1.0rc1.tar.gz").unwrap().to_string(),
            "1.0rc1"
        );
        assert!(version_of("x.exe").is_none());
    }
}
