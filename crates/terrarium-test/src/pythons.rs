//! Which CPythons a suite runs on: the ones terrarium can provide natively (a Debian release
//! ships each: 3.11 bookworm, 3.13 trixie, 3.14 forky, and 3.9 bullseye, end of life, only when
//! asked for or named by a classifier) that the project's constraints allow.

use terrarium_debian::Distro;
use terrarium_project::Project;

use crate::error::TestError;

/// What `--python` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonChoice {
    /// Every Python terrarium provides that the project allows (`--python all`).
    All,
    /// These feature versions (`--python 3.11,3.13`).
    Listed(Vec<String>),
}

impl std::str::FromStr for PythonChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim() == "all" {
            return Ok(PythonChoice::All);
        }
        let listed: Vec<String> = text
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        let bad = listed.iter().find(|p| {
            let mut parts = p.split('.');
            !(parts.next().is_some_and(|m| m.parse::<u64>().is_ok())
                && parts.next().is_some_and(|m| m.parse::<u64>().is_ok())
                && parts.next().is_none())
        });
        match (bad, listed.is_empty()) {
            (Some(bad), _) => Err(format!(
                "`{bad}` is not a Python feature version; write `all` or a list like 3.11,3.13"
            )),
            (None, true) => Err("write `all` or a list like 3.11,3.13".into()),
            (None, false) => Ok(PythonChoice::Listed(listed)),
        }
    }
}

fn known() -> String {
    Distro::ALL
        .iter()
        .map(|d| d.python_version())
        .collect::<Vec<_>>()
        .join(", ")
}

fn allowed_by(project: &Project, distro: Distro) -> Result<(), (String, String)> {
    let (major, minor) = distro.python();
    match project
        .python
        .iter()
        .find(|c| !c.value.allows(major, minor))
    {
        Some(constraint) => Err((constraint.value.to_string(), constraint.source.to_string())),
        None => Ok(()),
    }
}

/// The Debian releases (and so CPythons) to run the suite on, oldest Python first. `all` is
/// every one the constraints allow, narrowed to those the `classifiers` name when they name
/// any; an end-of-life one only when they name it.
pub fn pythons(project: &Project, choice: &PythonChoice) -> Result<Vec<Distro>, TestError> {
    let allowed: Vec<Distro> = Distro::ALL
        .into_iter()
        .filter(|d| allowed_by(project, *d).is_ok())
        .collect();
    let named = |d: &Distro| {
        project
            .python_classifiers
            .iter()
            .any(|c| c.value == d.python_version())
    };
    // An end-of-life Python (bullseye's 3.9) only when the classifiers name it.
    let classified: Vec<Distro> = allowed
        .iter()
        .copied()
        .filter(|d| {
            if d.end_of_life().is_some() {
                named(d)
            } else {
                project.python_classifiers.is_empty() || named(d)
            }
        })
        .collect();
    let allowed_text = || {
        allowed
            .iter()
            .map(|d| d.python_version())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match choice {
        PythonChoice::All if classified.is_empty() => Err(TestError::NoPython {
            known: known(),
            constraints: project
                .python
                .iter()
                .map(|c| format!("`{}` in {}", c.value, c.source))
                .chain(
                    project
                        .python_classifiers
                        .iter()
                        .map(|c| format!("classifier {} in {}", c.value, c.source)),
                )
                .collect::<Vec<_>>()
                .join(", "),
        }),
        PythonChoice::All => Ok(classified),
        PythonChoice::Listed(listed) => {
            let mut distros = Vec::new();
            for python in listed {
                let distro = Distro::ALL
                    .into_iter()
                    .find(|d| d.python_version() == python)
                    .ok_or_else(|| TestError::UnknownPython {
                        python: python.clone(),
                        known: known(),
                    })?;
                if let Err((constraint, source)) = allowed_by(project, distro) {
                    return Err(TestError::Excluded {
                        python: python.clone(),
                        constraint,
                        source_file: source,
                        allowed: allowed_text(),
                    });
                }
                if !distros.contains(&distro) {
                    distros.push(distro);
                }
            }
            distros.sort();
            Ok(distros)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices() {
        assert_eq!("all".parse::<PythonChoice>().unwrap(), PythonChoice::All);
        assert_eq!(
            "3.13, 3.11".parse::<PythonChoice>().unwrap(),
            PythonChoice::Listed(vec!["3.13".into(), "3.11".into()])
        );
        for bad in ["", "3", "three", "3.11.2", "3.11,x"] {
            assert!(bad.parse::<PythonChoice>().is_err(), "{bad}");
        }
    }

    fn project(pyproject: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pyproject.toml"), pyproject).unwrap();
        std::fs::write(
            dir.path().join("app.py"),
            "from flask import Flask\napp = Flask(__name__)\n",
        )
        .unwrap();
        let project = terrarium_project::detect(dir.path()).unwrap();
        (dir, project)
    }

    #[test]
    fn all_is_the_allowed_pythons_the_classifiers_name() {
        let (_dir, constrained) = project(
            "[project]\nname = \"x\"\nrequires-python = \">=3.11,<3.14\"\ndependencies = [\"flask\"]\n",
        );
        assert_eq!(
            pythons(&constrained, &PythonChoice::All).unwrap(),
            [Distro::Bookworm, Distro::Trixie]
        );
        let (_dir, classified) = project(
            "[project]\nname = \"x\"\nrequires-python = \">=3.11\"\ndependencies = [\"flask\"]\nclassifiers = [\n  \"Programming Language :: Python :: 3\",\n  \"Programming Language :: Python :: 3.11\",\n  \"Programming Language :: Python :: 3.12\",\n]\n",
        );
        assert_eq!(
            pythons(&classified, &PythonChoice::All).unwrap(),
            [Distro::Bookworm]
        );
        // Every maintained one with no constraint; 3.9 (end of life) only when named.
        let (_dir, open) = project("[project]\nname = \"x\"\ndependencies = [\"flask\"]\n");
        assert_eq!(
            pythons(&open, &PythonChoice::All).unwrap(),
            [Distro::Bookworm, Distro::Trixie, Distro::Forky]
        );
        assert_eq!(
            pythons(&open, &"3.9".parse().unwrap()).unwrap(),
            [Distro::Bullseye]
        );
        // An explicit list is not narrowed by the classifiers, only by the constraints.
        assert_eq!(
            pythons(&classified, &"3.13".parse().unwrap()).unwrap(),
            [Distro::Trixie]
        );
        let err = pythons(&constrained, &"3.14".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(">=3.11,<3.14") && err.contains("pyproject.toml:3"),
            "{err}"
        );
    }
}
