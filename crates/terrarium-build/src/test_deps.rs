//! The `test` layer of `terrarium test`'s image: the project's development and test
//! dependencies (the lock's dev group, `requirements-dev.txt`, PEP 735 `[dependency-groups]`,
//! the test runner), installed over the production image as one more layer, so the tests run
//! on exactly the production runtime, wheels and bytecode, and an edit of the tests rebuilds
//! nothing but the app layer.

use terrarium_project::Group;
use terrarium_wheels::{Pin, Target, parse_requirement};

use crate::lockfile::{DebianLock, WheelsLock};
use crate::{BuildError, INPUTS_VERSION, Session, digest_json, sdist};

/// The dev/test dependencies `terrarium test` adds to the production image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestDependencies {
    /// PEP 508 requirements beyond the lock's dev group, each with where it came from
    /// (`requirements-dev.txt:3`, `pyproject.toml [dependency-groups]`, `the test runner`).
    pub requirements: Vec<(String, String)>,
}

impl Session<'_> {
    /// The test layer's wheels: from `terrarium.lock` when the production wheels and the test
    /// requirements are unchanged, else the lock's dev group pinned and the rest resolved on
    /// top of the production wheels.
    pub(crate) fn test_wheels(
        &self,
        test: &TestDependencies,
        locked: Option<WheelsLock>,
        target: &Target,
        debian: &DebianLock,
        production: &WheelsLock,
    ) -> Result<WheelsLock, BuildError> {
        let inputs = digest_json(&serde_json::json!({
            "v": INPUTS_VERSION,
            "layer": "test",
            "production": production.inputs.to_string(),
            "requirements": test.requirements.iter().map(|(r, _)| r).collect::<Vec<_>>(),
        }))?;
        let builder = sdist::Builder::new(self, target, debian, locked.as_ref());
        if let Some(locked) = locked.filter(|w| w.inputs == inputs) {
            return builder.finish(self.read_linked(locked)?);
        }
        self.reporter.stage("resolving the test dependencies");
        let index = self.index();
        let requirements = test
            .requirements
            .iter()
            .map(|(text, from)| Ok((parse_requirement(text, from)?, from.clone())))
            .collect::<Result<Vec<_>, terrarium_wheels::Error>>()?;
        let lock = self.plan.dependencies.value.lock();
        crate::prefetch_pages(&index, lock, Group::Dev, &requirements)?;
        let mut pins: Vec<Pin> = match lock {
            Some(lock) => terrarium_wheels::pins_from_lock_group(lock, Group::Dev, target, &index)?,
            None => Vec::new(),
        };
        let mut below = production.installed();
        below.extend(pins.iter().cloned());
        let extra = terrarium_wheels::resolve(
            requirements,
            &below,
            target,
            &index,
            self.reporter,
            &builder,
        )?;
        pins.extend(extra);
        pins.sort();
        pins.dedup_by(|a, b| a.name == b.name);
        builder.finish(self.read_linked(WheelsLock {
            inputs,
            wheel: pins,
            built: Vec::new(),
            added: Some(Vec::new()),
            system: Vec::new(),
            linked: None,
            late: Vec::new(),
        })?)
    }
}
