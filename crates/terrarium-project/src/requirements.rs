//! pip requirements files: requirement lines with markers and `--hash` options, `-r` includes.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::PackageName;
use crate::error::{DetectError, read_text};
use crate::lock::Hash;

/// One requirement of a requirements file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementLine {
    /// The distribution name, normalized.
    pub name: PackageName,
    /// The version specifiers as written (`==3.0.3`), empty when unpinned.
    pub specifiers: String,
    /// The environment marker, if any.
    pub marker: Option<String>,
    /// `--hash` options.
    pub hashes: Vec<Hash>,
    /// The 1-based line the requirement starts on.
    pub line: usize,
}

impl RequirementLine {
    /// Pinned to one version with `==` (or `===`).
    pub fn is_pinned(&self) -> bool {
        self.specifiers.starts_with("==")
            && !self.specifiers.contains(',')
            && !self.specifiers.contains('*')
    }

    /// The pinned version, when pinned.
    pub fn pinned_version(&self) -> Option<&str> {
        self.is_pinned()
            .then(|| self.specifiers.trim_start_matches('=').trim())
    }
}

/// A parsed requirements file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementsFile {
    /// The file, relative to the project root.
    pub path: PathBuf,
    /// Its requirements, including those of files it includes with `-r`.
    pub requirements: Vec<RequirementLine>,
    /// Files included with `-r`/`--requirement`, relative to the project root.
    pub includes: Vec<PathBuf>,
    /// Local paths and editable installs (`-e .`, `./pkg`), which terrarium installs as the project.
    pub local_paths: Vec<String>,
}

impl RequirementsFile {
    /// Every requirement carries at least one hash (pip's `--require-hashes` mode).
    pub fn fully_hashed(&self) -> bool {
        !self.requirements.is_empty() && self.requirements.iter().all(|r| !r.hashes.is_empty())
    }
}

/// Read `rel` (relative to `root`), following `-r` includes.
pub fn read(root: &Path, rel: &Path) -> Result<RequirementsFile, DetectError> {
    let mut file = RequirementsFile {
        path: rel.to_path_buf(),
        requirements: Vec::new(),
        includes: Vec::new(),
        local_paths: Vec::new(),
    };
    read_into(root, rel, &mut file, &mut Vec::new())?;
    Ok(file)
}

/// How deep `-r` includes may nest.
const MAX_INCLUDE_DEPTH: usize = 8;

/// Read `rel` into `out`. `chain` holds the files that include it, outermost first.
fn read_into(
    root: &Path,
    rel: &Path,
    out: &mut RequirementsFile,
    chain: &mut Vec<PathBuf>,
) -> Result<(), DetectError> {
    let text = read_text(root, rel)?;
    // pip ignores a byte-order mark, which some editors write.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    chain.push(normalize(rel));
    for (line_no, logical) in logical_lines(text) {
        let content = strip_comment(&logical);
        let content = content.trim();
        if content.is_empty() {
            continue;
        }
        if let Some(option) = content.strip_prefix('-') {
            parse_option(root, rel, line_no, option, out, chain)?;
            continue;
        }
        if content.starts_with('.') || content.starts_with('/') || content.contains("://") {
            out.local_paths.push(content.to_string());
            continue;
        }
        out.requirements
            .push(parse_requirement(rel, line_no, content)?);
    }
    chain.pop();
    Ok(())
}

/// `path` with `.` dropped and `..` applied, so that one file has one spelling.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn parse_option(
    root: &Path,
    rel: &Path,
    line_no: usize,
    option: &str,
    out: &mut RequirementsFile,
    chain: &mut Vec<PathBuf>,
) -> Result<(), DetectError> {
    let (flag, value) = split_flag(option);
    match flag {
        "r" | "-requirement" => {
            let included = rel.parent().unwrap_or(Path::new("")).join(value);
            if value.is_empty() || !root.join(&included).is_file() {
                return Err(DetectError::malformed(
                    rel,
                    Some(line_no),
                    format!("`-r {value}` names a file that does not exist"),
                    "fix the path or remove the line",
                ));
            }
            if chain.contains(&normalize(&included)) {
                return Err(DetectError::malformed(
                    rel,
                    Some(line_no),
                    format!(
                        "`-r {value}` includes a file that is already being read (an include cycle)"
                    ),
                    "remove the circular `-r` include",
                ));
            }
            if chain.len() > MAX_INCLUDE_DEPTH {
                return Err(DetectError::malformed(
                    rel,
                    Some(line_no),
                    format!("`-r {value}` nests includes more than {MAX_INCLUDE_DEPTH} files deep"),
                    "include the files from one top-level requirements file instead",
                ));
            }
            out.includes.push(included.clone());
            read_into(root, &included, out, chain)
        }
        "e" | "-editable" => {
            out.local_paths.push(value.to_string());
            Ok(())
        }
        // Index and build options change where packages come from, not which ones.
        "c" | "-constraint" | "i" | "-index-url" | "-extra-index-url" | "f" | "-find-links"
        | "-no-index" | "-trusted-host" | "-pre" | "-prefer-binary" | "-only-binary"
        | "-no-binary" | "-require-hashes" | "-use-feature" | "-config-settings" => Ok(()),
        _ => Err(DetectError::malformed(
            rel,
            Some(line_no),
            format!("unknown option `-{option}`"),
            "remove it; requirements files accept pip's per-file options (-r, -c, -e, --index-url, …)",
        )),
    }
}

/// Split `r file.txt`, `-requirement=file.txt` into the flag and its value.
fn split_flag(option: &str) -> (&str, &str) {
    if let Some((flag, value)) = option.split_once('=')
        && !flag.contains(char::is_whitespace)
    {
        return (flag, value.trim());
    }
    match option.split_once(char::is_whitespace) {
        Some((flag, value)) => (flag, value.trim()),
        // A short flag glued to its value: `rbase.txt`, `e.`.
        None if !option.starts_with('-') => {
            let first = option.chars().next().map_or(0, char::len_utf8);
            let (flag, value) = option.split_at(first);
            (flag, value.trim())
        }
        None => (option, ""),
    }
}

fn parse_requirement(
    rel: &Path,
    line_no: usize,
    content: &str,
) -> Result<RequirementLine, DetectError> {
    let mut hashes = Vec::new();
    let mut spec = Vec::new();
    let mut tokens = content.split_whitespace().peekable();
    while let Some(token) = tokens.next() {
        let value = if let Some(v) = token.strip_prefix("--hash=") {
            Some(v.to_string())
        } else if token == "--hash" {
            tokens.next().map(str::to_string)
        } else {
            None
        };
        match value {
            Some(v) => hashes.push(Hash::parse(&v).ok_or_else(|| {
                DetectError::malformed(
                    rel,
                    Some(line_no),
                    format!("`--hash={v}` is not ALGORITHM:HEXDIGEST"),
                    "write hashes as --hash=sha256:<64 hex digits>",
                )
            })?),
            None if token.starts_with("--") => {
                return Err(DetectError::malformed(
                    rel,
                    Some(line_no),
                    format!("unsupported per-requirement option `{token}`"),
                    "only --hash is supported after a requirement",
                ));
            }
            None => spec.push(token),
        }
    }
    let spec = spec.join(" ");
    // pep508_rs 0.9.2 slices by character counts in markers, and panics on a non-ASCII
    // character there (`a; python_version > "3" é`). Names, versions and markers are ASCII.
    if let Some(c) = spec.chars().find(|c| !c.is_ascii()) {
        return Err(DetectError::malformed(
            rel,
            Some(line_no),
            format!(
                "not a valid requirement: it contains {c:?} (U+{:04X}), which is not ASCII",
                u32::from(c)
            ),
            "requirements are ASCII (names, versions, markers); remove the character (copy and paste can bring invisible ones)",
        ));
    }
    // pep508_rs 0.9 panics on a name that ends in `-`, `_` or `.` when more text follows
    // (`flask- ==1`): refuse those names before it sees them.
    let name_end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    let name = spec.get(..name_end).unwrap_or_default();
    if name.ends_with(['-', '_', '.']) {
        return Err(DetectError::malformed(
            rel,
            Some(line_no),
            format!("not a valid requirement: the name `{name}` must end with a letter or digit"),
            "write a PEP 508 requirement such as `flask==3.0.3`",
        ));
    }
    // Likewise for an extra (`uvicorn[standard.]`, `x[async..]`).
    if let Some(extras) = spec
        .get(name_end..)
        .and_then(|rest| rest.trim_start().strip_prefix('['))
        .and_then(|rest| rest.split_once(']'))
        .map(|(extras, _)| extras)
        && let Some(extra) = extras
            .split(',')
            .map(str::trim)
            .find(|e| e.ends_with(['-', '_', '.']))
    {
        return Err(DetectError::malformed(
            rel,
            Some(line_no),
            format!("not a valid requirement: the extra `{extra}` must end with a letter or digit"),
            "write a PEP 508 requirement such as `uvicorn[standard]==0.34.0`",
        ));
    }
    let requirement = pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(&spec).map_err(|err| {
        DetectError::malformed(
            rel,
            Some(line_no),
            // The message only: pep508_rs's caret drawing (its `Display`) can slice inside a
            // character.
            format!("not a valid requirement: {}", first_line(&err.message.to_string())),
            "write a PEP 508 requirement such as `flask==3.0.3` or `flask>=3; python_version >= \"3.11\"`",
        )
    })?;
    let specifiers = match &requirement.version_or_url {
        Some(pep508_rs::VersionOrUrl::VersionSpecifier(s)) => s.to_string(),
        Some(pep508_rs::VersionOrUrl::Url(url)) => format!("@ {url}"),
        None => String::new(),
    };
    let marker = requirement.marker.contents().map(|m| m.to_string());
    Ok(RequirementLine {
        name: PackageName::new(requirement.name.as_ref()),
        specifiers,
        marker,
        hashes,
        line: line_no,
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Join backslash continuations; yield each logical line with the line it starts on.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (index, line) in text.lines().enumerate() {
        if current.is_empty() {
            start = index + 1;
        }
        let trimmed = line.trim_end();
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            out.push((start, std::mem::take(&mut current)));
        }
    }
    if !current.is_empty() {
        out.push((start, current));
    }
    out
}

/// Drop a `#` comment: at the start of the line or after whitespace (pip's rule).
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #").or_else(|| line.find("\t#")) {
        Some(index) => line.get(..index).unwrap_or(line),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RequirementsFile, DetectError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.txt"), text).unwrap();
        read(dir.path(), Path::new("requirements.txt"))
    }

    #[test]
    fn reads_pins_markers_and_hashes_across_continuations() {
        let file = parse(
            "# comment\nflask==3.0.3 \\\n    --hash=sha256:34e815dfaa43340d1d15a5c3a02b8476004037eb4840b34910c6e21679d288f3 \\\n    --hash sha256:ceb27b0af3823ea2737928a4d99d125a06175b8512c445cbd9a9ce200ef76842\ngunicorn>=22 ; sys_platform == 'linux'  # server\n",
        )
        .unwrap();
        assert_eq!(file.requirements.len(), 2);
        let flask = &file.requirements[0];
        assert_eq!(flask.name.as_str(), "flask");
        assert_eq!(flask.pinned_version(), Some("3.0.3"));
        assert_eq!(flask.hashes.len(), 2);
        assert_eq!(flask.line, 2);
        let gunicorn = &file.requirements[1];
        assert_eq!(gunicorn.line, 5);
        assert!(!gunicorn.is_pinned());
        assert_eq!(gunicorn.marker.as_deref(), Some("sys_platform == 'linux'"));
        assert!(!file.fully_hashed());
    }

    #[test]
    fn follows_includes_and_keeps_local_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.txt"), "six==1.16.0\n").unwrap();
        std::fs::write(
            dir.path().join("requirements.txt"),
            "-r base.txt\n-e .\n--index-url https://pypi.org/simple\n",
        )
        .unwrap();
        let file = read(dir.path(), Path::new("requirements.txt")).unwrap();
        assert_eq!(file.requirements[0].name.as_str(), "six");
        assert_eq!(file.includes, vec![PathBuf::from("base.txt")]);
        assert_eq!(file.local_paths, vec![".".to_string()]);
    }

    #[test]
    fn bad_requirement_names_the_line() {
        let err = parse("flask==3.0\nthis is not ( valid\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("requirements.txt:2: not a valid requirement"),
            "{err}"
        );
        assert!(err.contains("fix:"), "{err}");
    }

    #[test]
    fn bad_hash_and_missing_include_are_reported() {
        let err = parse("flask==3.0 --hash=nothex\n").unwrap_err().to_string();
        assert!(
            err.contains("requirements.txt:1") && err.contains("--hash=nothex"),
            "{err}"
        );
        let err = parse("-r missing.txt\n").unwrap_err().to_string();
        assert!(
            err.contains("requirements.txt:1") && err.contains("missing.txt"),
            "{err}"
        );
    }

    #[test]
    fn non_ascii_option_is_an_error_not_a_panic() {
        // `-é` once sliced the flag at byte 1, inside the `é`.
        let err = parse("flask==3.0\n-é\n").unwrap_err().to_string();
        assert!(
            err.starts_with("requirements.txt:2: unknown option `-é`") && err.contains("fix:"),
            "{err}"
        );
        let err = parse("-ré.txt\n").unwrap_err().to_string();
        assert!(
            err.starts_with("requirements.txt:1: `-r é.txt` names a file that does not exist"),
            "{err}"
        );
    }

    #[test]
    fn include_cycles_name_the_line() {
        let err = parse("six==1.16.0\n-r ./requirements.txt\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("requirements.txt:2:") && err.contains("include cycle"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("requirements")).unwrap();
        std::fs::write(dir.path().join("requirements/a.txt"), "-r b.txt\n").unwrap();
        std::fs::write(
            dir.path().join("requirements/b.txt"),
            "six==1.16.0\n-r ../requirements/a.txt\n",
        )
        .unwrap();
        let err = read(dir.path(), Path::new("requirements/a.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("requirements/b.txt:2:") && err.contains("include cycle"),
            "{err}"
        );
    }

    #[test]
    fn deep_includes_are_refused_at_the_including_line() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..12 {
            std::fs::write(
                dir.path().join(format!("r{i}.txt")),
                format!("-r r{}.txt\n", i + 1),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("r12.txt"), "six==1.16.0\n").unwrap();
        let err = read(dir.path(), Path::new("r0.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(".txt:1:") && err.contains("deep"), "{err}");
    }

    #[test]
    fn text_that_is_not_utf8_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("requirements.txt"),
            b"flask==3.0\nsix\xff==1\n",
        )
        .unwrap();
        let err = read(dir.path(), Path::new("requirements.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("requirements.txt:2: the file is not UTF-8 text")
                && err.contains("fix:"),
            "{err}"
        );
    }

    #[test]
    fn names_ending_in_a_separator_are_an_error_not_a_panic() {
        // pep508_rs 0.9.2 panicked ("`PackageName` validation should match PEP 508 parsing")
        // on these.
        for line in [
            "A-!",
            "flask- ==1.0",
            "a_[x]",
            "zope. ; python_version > '3'",
            "b.@ x",
        ] {
            let err = parse(&format!("{line}\n")).unwrap_err().to_string();
            assert!(
                err.starts_with("requirements.txt:1: not a valid requirement: the name")
                    && err.contains("fix:"),
                "{line}: {err}"
            );
        }
        let err = parse("flask-\n").unwrap_err().to_string();
        assert!(err.starts_with("requirements.txt:1:"), "{err}");
        for line in ["x[async..]==1", "uvicorn[standard, http.]"] {
            let err = parse(&format!("{line}\n")).unwrap_err().to_string();
            assert!(
                err.starts_with("requirements.txt:1: not a valid requirement: the extra"),
                "{line}: {err}"
            );
        }
    }

    #[test]
    fn non_ascii_in_a_requirement_is_an_error_not_a_panic() {
        // pep508_rs 0.9.2 sliced inside the U+FEFF here (markers are read by character count).
        for line in [
            "flask[async]==3.1.2 ; python_version >= \"3.11\"\u{feff} x",
            "a ; python_version > '3' é",
            "a ; python_version > '3' xé",
            "flåsk==1.0",
        ] {
            let err = parse(&format!("{line}\n")).unwrap_err().to_string();
            assert!(
                err.starts_with("requirements.txt:1: not a valid requirement: it contains")
                    && err.contains("not ASCII")
                    && err.contains("fix:"),
                "{line}: {err}"
            );
        }
    }

    #[test]
    fn a_byte_order_mark_is_ignored_like_pip_does() {
        let file = parse("\u{feff}flask==3.0.3\n").unwrap();
        assert_eq!(file.requirements[0].name.as_str(), "flask");
    }
}
