//! The development and test dependencies of a project, from every place they are declared:
//! the lock's dev group (uv's dependency groups, poetry's dev group: the build pins those from
//! the lock itself), a development requirements file (`requirements-dev.txt` and its
//! spellings), PEP 735 `[dependency-groups]` (and uv's `dev-dependencies`) of a project
//! without a lock, and pytest when it is the runner and none of them brings it.

use terrarium_build::TestDependencies;
use terrarium_project::{DependencySource, PackageName, Project};

use crate::runner::Runner;

/// The test runner terrarium adds when it runs the suite and the project declares none.
pub const RUNNER: &str = "pytest";

/// What the test image installs over the production image's wheels, for `runner`.
pub fn test_dependencies(project: &Project, runner: &Runner) -> TestDependencies {
    let mut requirements = Vec::new();
    if let DependencySource::Requirements { dev: Some(dev), .. } = &project.dependencies {
        let file = dev.path.display().to_string();
        for line in &dev.requirements {
            let mut text = format!("{}{}", line.name, line.specifiers);
            if let Some(marker) = &line.marker {
                text.push_str(&format!(" ; {marker}"));
            }
            requirements.push((text, format!("{file}:{}", line.line)));
        }
    }
    if !matches!(project.dependencies, DependencySource::Locked { .. }) {
        requirements.extend(
            project
                .dev_requirements
                .iter()
                .map(|r| (r.clone(), "pyproject.toml [dependency-groups]".to_string())),
        );
    }
    let pytest = PackageName::new(RUNNER);
    if runner.needs_pytest()
        && !project.dev_packages.contains(&pytest)
        && !project.runtime_packages.contains(&pytest)
    {
        requirements.push((
            RUNNER.to_string(),
            "the test runner (no development dependency brings it)".to_string(),
        ));
    }
    TestDependencies { requirements }
}
