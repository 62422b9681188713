//! Licenses as SPDX expressions: from Debian's machine-readable `copyright` files (DEP-5), and
//! from Python distributions' `METADATA` (PEP 639's `License-Expression`, else the `License ::`
//! classifiers, else a short `License:` field).
//!
//! Every `Files:` stanza names a license; the package's declared license is all of them joined
//! with `AND` (each file is under its own). Debian's short names are mapped to SPDX identifiers
//! (`GPL-2+` → `GPL-2.0-or-later`, `Expat` → `MIT`); a name SPDX doesn't know becomes
//! `LicenseRef-…` so the expression stays valid. A copyright file that isn't DEP-5 gives none.

/// Debian short names (lowercase) and their SPDX identifiers.
const DEBIAN_TO_SPDX: &[(&str, &str)] = &[
    ("expat", "MIT"),
    ("mit", "MIT"),
    ("isc", "ISC"),
    ("zlib", "Zlib"),
    ("apache-2.0", "Apache-2.0"),
    ("apache-2", "Apache-2.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("cc0-1.0", "CC0-1.0"),
    ("cc0", "CC0-1.0"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("psf-2", "PSF-2.0"),
    ("psf-2.0", "PSF-2.0"),
    ("python-2.0", "Python-2.0"),
    ("python", "Python-2.0"),
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-1.0", "Artistic-1.0"),
    ("artistic-2.0", "Artistic-2.0"),
    ("bzip2-1.0.6", "bzip2-1.0.6"),
    ("curl", "curl"),
    ("openssl", "OpenSSL"),
    ("x11", "X11"),
    ("fsfap", "FSFAP"),
    ("fsful", "FSFUL"),
    ("fsfullr", "FSFULLR"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    (
        "mpl-2.0-no-copyleft-exception",
        "MPL-2.0-no-copyleft-exception",
    ),
    ("gfdl-1.2", "GFDL-1.2-only"),
    ("gfdl-1.2+", "GFDL-1.2-or-later"),
    ("gfdl-1.3", "GFDL-1.3-only"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
    ("gpl-1", "GPL-1.0-only"),
    ("gpl-1+", "GPL-1.0-or-later"),
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-2+", "GPL-2.0-or-later"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl-3+", "GPL-3.0-or-later"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2+", "LGPL-2.0-or-later"),
    ("lgpl-2.0", "LGPL-2.0-only"),
    ("lgpl-2.0+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl-3+", "LGPL-3.0-or-later"),
    ("agpl-3", "AGPL-3.0-only"),
    ("agpl-3+", "AGPL-3.0-or-later"),
];

/// One license term as an SPDX identifier or `LicenseRef-…`.
fn spdx_term(term: &str) -> String {
    let key = term.trim().to_ascii_lowercase();
    if let Some((_, id)) = DEBIAN_TO_SPDX.iter().find(|(name, _)| *name == key) {
        return (*id).to_owned();
    }
    let mut reference = String::from("LicenseRef-");
    let mut dash = false;
    for c in term.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            reference.push(c);
            dash = false;
        } else if c == '+' {
            reference.push_str("-or-later");
            dash = false;
        } else if !dash {
            reference.push('-');
            dash = true;
        }
    }
    reference.trim_end_matches('-').to_owned()
}

/// A DEP-5 license line (`GPL-2+ or Artistic`, `LGPL-2.1+ with GCC exception`) as an SPDX
/// expression. Exceptions are kept in a `LicenseRef-` of the whole term.
fn spdx_expression(line: &str) -> Option<String> {
    let line = line.trim().trim_end_matches(',');
    if line.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    // Split on " or " / " and " (any case), keeping the operators.
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut term: Vec<&str> = Vec::new();
    for word in words {
        let lower = word.to_ascii_lowercase();
        if lower == "or" || lower == "and" {
            if !term.is_empty() {
                parts.push(spdx_term(&term.join(" ")));
                term.clear();
            }
            parts.push(lower.to_ascii_uppercase());
        } else {
            term.push(word.trim_matches(|c| c == '(' || c == ')' || c == ','));
        }
    }
    if !term.is_empty() {
        parts.push(spdx_term(&term.join(" ")));
    }
    // A dangling operator means the line was not an expression.
    if parts.first().is_none_or(|p| p == "OR" || p == "AND")
        || parts.last().is_none_or(|p| p == "OR" || p == "AND")
    {
        return None;
    }
    Some(parts.join(" "))
}

/// The declared license of a Debian package from its `copyright` file, when it is DEP-5.
pub fn debian_license(copyright: &str) -> Option<String> {
    let first = copyright.lines().next()?;
    if !first.starts_with("Format:") {
        return None;
    }
    let mut licenses: Vec<String> = Vec::new();
    for stanza in copyright.split("\n\n") {
        let is_files = stanza
            .lines()
            .any(|line| line.starts_with("Files:") || line.starts_with("Files :"));
        if !is_files {
            continue;
        }
        let Some(line) = stanza
            .lines()
            .find_map(|line| line.strip_prefix("License:"))
        else {
            continue;
        };
        if let Some(expression) = spdx_expression(line)
            && !licenses.contains(&expression)
        {
            licenses.push(expression);
        }
    }
    match licenses.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(
            many.iter()
                .map(|e| {
                    if e.contains(' ') {
                        format!("({e})")
                    } else {
                        e.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" AND "),
        ),
    }
}

/// The `LicenseRef-…` identifiers an expression uses (SPDX documents must declare them).
pub(crate) fn license_refs(expression: &str) -> Vec<String> {
    expression
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|t| t.starts_with("LicenseRef-"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_dep5_files_stanzas() {
        let text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
                    Upstream-Name: demo\n\nFiles: *\nCopyright: 2020 A\nLicense: GPL-2+\n\n\
                    Files: lib/*\nCopyright: 2021 B\nLicense: Expat\n\n\
                    Files: doc/*\nLicense: GPL-2+ or Artistic\n\n\
                    License: GPL-2+\n This program is free software…\n";
        assert_eq!(
            debian_license(text).unwrap(),
            "GPL-2.0-or-later AND MIT AND (GPL-2.0-or-later OR Artistic-1.0-Perl)"
        );
    }

    #[test]
    fn one_license_and_unknown_names() {
        let text = "Format: x\n\nFiles: *\nLicense: public-domain\n";
        assert_eq!(debian_license(text).unwrap(), "LicenseRef-public-domain");
        let text = "Format: x\n\nFiles: *\nLicense: GPL-2+ or LGPL-2.1+\n";
        assert_eq!(
            debian_license(text).unwrap(),
            "GPL-2.0-or-later OR LGPL-2.1-or-later"
        );
        let text = "Format: x\n\nFiles: *\nLicense: LGPL-2.1+ with GCC exception\n";
        assert_eq!(
            debian_license(text).unwrap(),
            "LicenseRef-LGPL-2.1-or-later-with-GCC-exception"
        );
        assert_eq!(
            license_refs("MIT AND (LicenseRef-a OR X)"),
            ["LicenseRef-a"]
        );
    }

    #[test]
    fn free_form_copyright_files_give_none() {
        assert_eq!(
            debian_license("This is the Debian prepackaged version of zlib.\n"),
            None
        );
        assert_eq!(debian_license("Format: x\n\nFiles: *\nLicense:\n"), None);
    }
}

/// The trove classifiers (`License :: OSI Approved :: MIT License`) and their SPDX identifiers;
/// the ones that name a family, not a license (`BSD License`), are left out.
const CLASSIFIER_TO_SPDX: &[(&str, &str)] = &[
    ("MIT License", "MIT"),
    ("MIT No Attribution License (MIT-0)", "MIT-0"),
    ("Apache Software License", "Apache-2.0"),
    ("ISC License (ISCL)", "ISC"),
    ("Python Software Foundation License", "PSF-2.0"),
    ("Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
    ("The Unlicense (Unlicense)", "Unlicense"),
    ("zlib/libpng License", "Zlib"),
    ("GNU General Public License v2 (GPLv2)", "GPL-2.0-only"),
    (
        "GNU General Public License v2 or later (GPLv2+)",
        "GPL-2.0-or-later",
    ),
    ("GNU General Public License v3 (GPLv3)", "GPL-3.0-only"),
    (
        "GNU General Public License v3 or later (GPLv3+)",
        "GPL-3.0-or-later",
    ),
    (
        "GNU Lesser General Public License v2 (LGPLv2)",
        "LGPL-2.0-only",
    ),
    (
        "GNU Lesser General Public License v2 or later (LGPLv2+)",
        "LGPL-2.0-or-later",
    ),
    (
        "GNU Lesser General Public License v3 (LGPLv3)",
        "LGPL-3.0-only",
    ),
    (
        "GNU Lesser General Public License v3 or later (LGPLv3+)",
        "LGPL-3.0-or-later",
    ),
    ("GNU Affero General Public License v3", "AGPL-3.0-only"),
    (
        "GNU Affero General Public License v3 or later (AGPLv3+)",
        "AGPL-3.0-or-later",
    ),
    ("Academic Free License (AFL)", "AFL-3.0"),
    ("Eclipse Public License 2.0 (EPL-2.0)", "EPL-2.0"),
];

/// Whether `text` reads as an SPDX expression: identifiers, `LicenseRef-…`, `AND`/`OR`/`WITH`
/// and parentheses, nothing else.
fn looks_like_expression(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 200
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " .-+()".contains(c))
}

/// The declared license of a Python distribution from its `METADATA` headers: PEP 639's
/// `License-Expression`, else its `License ::` classifiers (several are a choice: `OR`), else
/// a `License:` field short enough to be a name, not the license's text.
pub fn python_license(headers: &str) -> Option<String> {
    let values = |key: &str| -> Vec<&str> {
        headers
            .lines()
            .filter_map(|line| {
                let (k, v) = line.split_once(':')?;
                (k == key).then(|| v.trim())
            })
            .collect()
    };
    if let Some(expression) = values("License-Expression").first()
        && looks_like_expression(expression)
    {
        return Some((*expression).to_owned());
    }
    let mut ids: Vec<&str> = values("Classifier")
        .iter()
        .filter_map(|c| c.strip_prefix("License :: "))
        .filter_map(|c| {
            let name = c.rsplit(" :: ").next()?;
            CLASSIFIER_TO_SPDX
                .iter()
                .find(|(classifier, _)| *classifier == name)
                .map(|(_, id)| *id)
        })
        .collect();
    ids.dedup();
    if !ids.is_empty() {
        return Some(if ids.len() == 1 {
            ids[0].to_owned()
        } else {
            format!("({})", ids.join(" OR "))
        });
    }
    let field = values("License").first().copied()?;
    (!field.is_empty() && field.len() <= 40 && !field.contains('\n'))
        .then(|| spdx_expression(field))
        .flatten()
}

#[cfg(test)]
mod python_tests {
    use super::*;

    #[test]
    fn python_licenses_from_metadata() {
        assert_eq!(
            python_license("Name: flask\nLicense-Expression: BSD-3-Clause\n"),
            Some("BSD-3-Clause".into())
        );
        assert_eq!(
            python_license(
                "Name: cryptography\nClassifier: License :: OSI Approved :: Apache Software License\nClassifier: License :: OSI Approved :: BSD License\nClassifier: License :: OSI Approved :: MIT License\n"
            ),
            Some("(Apache-2.0 OR MIT)".into())
        );
        assert_eq!(
            python_license("Name: gunicorn\nLicense: MIT\n"),
            Some("MIT".into())
        );
        assert_eq!(
            python_license(
                "Name: x\nLicense: Copyright (c) 2010 by the authors, all rights reserved and more\n"
            ),
            None
        );
        assert_eq!(python_license("Name: bare\n"), None);
    }
}
