//! Which CPythons a suite runs on: the ones terrarium can provide natively (a Debian release
//! ships each: 3.11 bookworm, 3.13 trixie, 3.14 forky) that the project's constraints allow.

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

/// The Debian releases (and so CPythons) to run the suite on, oldest Python first.
pub fn pythons(project: &Project, choice: &PythonChoice) -> Result<Vec<Distro>, TestError> {
    let allowed: Vec<Distro> = Distro::ALL
        .into_iter()
        .filter(|d| allowed_by(project, *d).is_ok())
        .collect();
    let allowed_text = || {
        allowed
            .iter()
            .map(|d| d.python_version())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match choice {
        PythonChoice::All if allowed.is_empty() => Err(TestError::NoPython {
            known: known(),
            constraints: project
                .python
                .iter()
                .map(|c| format!("`{}` in {}", c.value, c.source))
                .collect::<Vec<_>>()
                .join(", "),
        }),
        PythonChoice::All => Ok(allowed),
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
}
