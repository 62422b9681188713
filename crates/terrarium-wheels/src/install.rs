//! Installing a wheel into a layer, per the wheel spec (binary distribution format): purelib and
//! platlib into site-packages, the `.data/` directories to their schemes, console-script
//! launchers with the image's interpreter, a regenerated RECORD and INSTALLER. Every member is
//! checked against the wheel's own RECORD (sha256 and size, hashed while it is decompressed into
//! the spool) before anything goes into the layer. File contents are decompressed into a spool
//! file and referenced by range, so memory stays flat.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use terrarium_image::{Content, Entry, LayerPath, LayerTree};

use crate::error::{Error, RecordProblem, io_error};
use crate::tags::Target;

/// What `INSTALLER` says.
const INSTALLER: &str = "terrarium\n";

/// An append-only scratch file holding decompressed file contents for [`Content::Range`].
#[derive(Debug, Clone)]
pub struct Spool {
    file: Arc<File>,
    len: u64,
}

impl Spool {
    /// A new spool in `dir` (deleted when the last reference to it goes).
    pub fn new(dir: &Path) -> Result<Self, Error> {
        let file = tempfile::tempfile_in(dir).map_err(io_error(dir))?;
        Ok(Self {
            file: Arc::new(file),
            len: 0,
        })
    }

    /// Copy `reader` into the spool; returns its content, size and urlsafe-base64 sha256.
    fn append(
        &mut self,
        mut reader: impl Read,
        what: &str,
    ) -> Result<(Content, u64, String), Error> {
        let start = self.len;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(Error::BadWheel {
                        file: what.to_owned(),
                        message: err.to_string(),
                    });
                }
            };
            hasher.update(&buf[..n]);
            self.file
                .write_all_at(&buf[..n], self.len)
                .map_err(io_error("(spool file)"))?;
            self.len += n as u64;
        }
        let size = self.len - start;
        let content = Content::Range {
            file: Arc::clone(&self.file),
            offset: start,
            len: size,
        };
        Ok((content, size, record_hash(&hasher.finalize())))
    }
}

fn record_hash(digest: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// What an installed wheel put where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Files installed (RECORD included).
    pub files: usize,
    /// Console scripts generated, by name.
    pub scripts: Vec<String>,
}

/// The `.dist-info` directory of a wheel: the one top-level `*.dist-info/` holding `WHEEL`.
fn dist_info_dir(names: &[String], file: &str) -> Result<String, Error> {
    let mut dirs: Vec<&str> = names
        .iter()
        .filter_map(|name| name.strip_suffix("/WHEEL"))
        .filter(|dir| !dir.contains('/') && dir.ends_with(".dist-info"))
        .collect();
    dirs.dedup();
    match dirs.as_slice() {
        [dir] => Ok((*dir).to_owned()),
        _ => Err(Error::BadWheel {
            file: file.to_owned(),
            message: "expected exactly one top-level *.dist-info/WHEEL".into(),
        }),
    }
}

fn open_zip(path: &Path, file: &str) -> Result<zip::ZipArchive<io::BufReader<File>>, Error> {
    let reader = io::BufReader::new(File::open(path).map_err(io_error(path))?);
    zip::ZipArchive::new(reader).map_err(|err| Error::BadWheel {
        file: file.to_owned(),
        message: err.to_string(),
    })
}

fn read_member(
    archive: &mut zip::ZipArchive<io::BufReader<File>>,
    name: &str,
    file: &str,
) -> Result<Option<String>, Error> {
    let bad = |message: String| Error::BadWheel {
        file: file.to_owned(),
        message,
    };
    let mut member = match archive.by_name(name) {
        Ok(member) => member,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(err) => return Err(bad(err.to_string())),
    };
    let mut text = String::new();
    member
        .read_to_string(&mut text)
        .map_err(|err| bad(format!("{name}: {err}")))?;
    Ok(Some(text))
}

/// The `Requires-Dist` lines of the wheel's METADATA.
pub fn requires_dist(path: &Path, file: &str) -> Result<Vec<String>, Error> {
    let mut archive = open_zip(path, file)?;
    let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    let dist_info = dist_info_dir(&names, file)?;
    let metadata =
        read_member(&mut archive, &format!("{dist_info}/METADATA"), file)?.ok_or_else(|| {
            Error::BadWheel {
                file: file.to_owned(),
                message: "no METADATA".into(),
            }
        })?;
    Ok(metadata
        .lines()
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.strip_prefix("Requires-Dist:"))
        .map(|value| value.trim().to_owned())
        .collect())
}

/// The first module of the wheel at `path` (named `file`) that imports `pkg_resources`
/// unguarded (`import pkg_resources`, `from pkg_resources import …`, not under a `try:`), when
/// the wheel doesn't declare setuptools, which ships it: such a package runs only where
/// setuptools happens to be installed, as it was in every virtualenv and official image for
/// years, and not in a runtime that has only what the project needs.
pub fn undeclared_pkg_resources(path: &Path, file: &str) -> Result<Option<String>, Error> {
    let declares = requires_dist(path, file)?.iter().any(|requirement| {
        let name: String = requirement
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        name.eq_ignore_ascii_case("setuptools")
    });
    if declares {
        return Ok(None);
    }
    let mut archive = open_zip(path, file)?;
    let mut modules: Vec<String> = archive
        .file_names()
        .filter(|name| name.ends_with(".py") && !name.contains("/tests/"))
        .map(str::to_owned)
        .collect();
    modules.sort();
    for module in modules {
        let Some(text) = read_member(&mut archive, &module, file)? else {
            continue;
        };
        if imports_pkg_resources(&text) {
            return Ok(Some(module));
        }
    }
    Ok(None)
}

/// Whether Python source `text` imports `pkg_resources` outside a `try:` block.
fn imports_pkg_resources(text: &str) -> bool {
    if !text.contains("pkg_resources") {
        return false;
    }
    let mut previous = "";
    for line in text.lines() {
        let code = line.trim();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        let imports = code.starts_with("import pkg_resources")
            || code.starts_with("from pkg_resources import")
            || code.starts_with("from pkg_resources.");
        if imports && previous != "try:" {
            return true;
        }
        previous = code;
    }
    false
}

/// `[console_scripts]` and `[gui_scripts]` of an `entry_points.txt`: name → `module:attr`.
pub fn console_scripts(entry_points: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut in_scripts = false;
    for line in entry_points.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_scripts = matches!(section.trim(), "console_scripts" | "gui_scripts");
            continue;
        }
        if in_scripts && let Some((name, value)) = line.split_once('=') {
            // Drop extras (`module:attr [extra]`), which only matter to the installer's resolver.
            let value = value.split('[').next().unwrap_or(value).trim();
            out.insert(name.trim().to_owned(), value.to_owned());
        }
    }
    out
}

/// A launcher script for `module:attr` run by `interpreter` (what pip writes).
pub fn launcher(interpreter: &str, target: &str) -> Option<String> {
    let (module, attr) = target.split_once(':')?;
    let (module, attr) = (module.trim(), attr.trim());
    let valid = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| c.is_alphanumeric() || c == '_')
                    && !part.starts_with(|c: char| c.is_ascii_digit())
            })
    };
    if !valid(module) || !valid(attr) {
        return None;
    }
    let head = attr.split('.').next().unwrap_or(attr);
    Some(format!(
        "#!{interpreter}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {head}\n\
         if __name__ == \"__main__\":\n    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    \
         sys.exit({attr}())\n"
    ))
}

/// `from` → `to`, both relative to the image root, as a relative path from directory `from`.
fn relative(from_dir: &str, to: &str) -> String {
    let from: Vec<&str> = from_dir.split('/').filter(|p| !p.is_empty()).collect();
    let to_parts: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out: Vec<&str> = std::iter::repeat_n("..", from.len() - common).collect();
    out.extend(&to_parts[common..]);
    out.join("/")
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// What a RECORD row lists for a path: its hash (algorithm, urlsafe-base64 value without
/// padding) and size, each when given.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    hash: Option<(String, String)>,
    size: Option<u64>,
}

/// The fields of one CSV line (RFC 4180 quoting, as RECORD is written); `None` when a quote
/// is left open.
fn csv_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if field.is_empty() => quoted = true,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

/// The rows of a RECORD file, by path inside the wheel.
fn parse_record(text: &str) -> Result<HashMap<String, Listed>, RecordProblem> {
    let mut rows = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |message: String| RecordProblem::Malformed {
            line: index + 1,
            message,
        };
        let fields = csv_fields(line).ok_or_else(|| malformed("a quote is not closed".into()))?;
        let [path, hash, size] = <[String; 3]>::try_from(fields).map_err(|fields| {
            malformed(format!("{} fields, expected path,hash,size", fields.len()))
        })?;
        let hash = match hash.split_once('=') {
            _ if hash.is_empty() => None,
            Some((algorithm, value)) => {
                Some((algorithm.to_owned(), value.trim_end_matches('=').to_owned()))
            }
            None => return Err(malformed(format!("hash `{hash}` is not algorithm=value"))),
        };
        let size = match size.as_str() {
            "" => None,
            text => Some(
                text.parse::<u64>()
                    .map_err(|_| malformed(format!("size `{text}` is not a number")))?,
            ),
        };
        rows.insert(path, Listed { hash, size });
    }
    Ok(rows)
}

/// Check member `name`, of `size` bytes hashing to `hash` (as RECORD writes it), against its
/// RECORD row. Only `.pyc` files may be listed without a hash (the spec allows it, since they
/// may be compiled after the wheel is built).
fn check_listed(name: &str, listed: &Listed, hash: &str, size: u64) -> Result<(), RecordProblem> {
    if let Some(expected) = listed.size
        && expected != size
    {
        return Err(RecordProblem::SizeMismatch {
            expected,
            actual: size,
        });
    }
    match &listed.hash {
        None if name.ends_with(".pyc") => Ok(()),
        None => Err(RecordProblem::NoHash),
        Some((algorithm, _)) if algorithm != "sha256" => {
            Err(RecordProblem::UnsupportedHash(algorithm.clone()))
        }
        Some((_, value)) => {
            let expected = format!("sha256={value}");
            if expected == hash {
                Ok(())
            } else {
                Err(RecordProblem::HashMismatch {
                    expected,
                    actual: hash.to_owned(),
                })
            }
        }
    }
}

fn layer_path(text: &str, file: &str) -> Result<LayerPath, Error> {
    let bad = || Error::BadWheel {
        file: file.to_owned(),
        message: format!("unsafe path `{text}`"),
    };
    if text.split('/').any(|part| part == ".." || part == ".") || text.starts_with('/') {
        return Err(bad());
    }
    LayerPath::new(text).map_err(|_| bad())
}

/// Install the wheel at `path` (named `file`) into `tree` for `target`, file contents spooled
/// into `spool`. Every archive member is checked against the wheel's RECORD first (a member
/// missing from it, or with another sha256 or size, is [`Error::BadRecord`]); `tree` is left
/// untouched when the wheel fails.
pub fn install_wheel(
    tree: &mut LayerTree,
    path: &Path,
    file: &str,
    target: &Target,
    spool: &mut Spool,
) -> Result<Installed, Error> {
    let bad = |message: String| Error::BadWheel {
        file: file.to_owned(),
        message,
    };
    let site = target.site_packages();
    let bin = "usr/local/bin".to_owned();
    let interpreter = target.interpreter();
    let mut archive = open_zip(path, file)?;
    let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    let dist_info = dist_info_dir(&names, file)?;
    let data_dir = format!(
        "{}.data",
        dist_info.strip_suffix(".dist-info").unwrap_or(&dist_info)
    );
    let dist_name = dist_info.split('-').next().unwrap_or(&dist_info).to_owned();
    let wheel_meta = read_member(&mut archive, &format!("{dist_info}/WHEEL"), file)?
        .ok_or_else(|| bad("no WHEEL file".into()))?;
    if let Some(version) = wheel_meta
        .lines()
        .find_map(|l| l.strip_prefix("Wheel-Version:"))
        && !version.trim().starts_with("1.")
    {
        return Err(bad(format!(
            "Wheel-Version {} is not supported (1.x only)",
            version.trim()
        )));
    }
    let entry_points = read_member(&mut archive, &format!("{dist_info}/entry_points.txt"), file)?;
    let record_name = format!("{dist_info}/RECORD");
    let bad_record = |member: &str, problem: RecordProblem| Error::BadRecord {
        file: file.to_owned(),
        member: member.to_owned(),
        problem,
    };
    let listed = read_member(&mut archive, &record_name, file)?
        .ok_or_else(|| bad_record(&record_name, RecordProblem::Missing))
        .and_then(|text| parse_record(&text).map_err(|p| bad_record(&record_name, p)))?;
    let unlisted = [
        record_name.clone(),
        format!("{dist_info}/RECORD.jws"),
        format!("{dist_info}/RECORD.p7s"),
    ];
    let wheel_installer = format!("{dist_info}/INSTALLER");

    // Everything for the layer, inserted only once the whole wheel has checked out.
    let mut entries: Vec<(Entry, Content)> = Vec::new();
    // (path in the image, RECORD hash, size) of everything installed.
    let mut record: Vec<(String, String, u64)> = Vec::new();
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(|err| bad(err.to_string()))?;
        if member.is_dir() {
            continue;
        }
        let name = member.name().to_owned();
        if unlisted.contains(&name) {
            continue;
        }
        let row = listed
            .get(&name)
            .ok_or_else(|| bad_record(&name, RecordProblem::NotListed))?;
        let verify = |hash: &str, size: u64| {
            check_listed(&name, row, hash, size).map_err(|p| bad_record(&name, p))
        };
        let executable = member.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        let (dest, script) = match name.strip_prefix(&format!("{data_dir}/")) {
            Some(rest) => {
                let (scheme, rest) = rest
                    .split_once('/')
                    .ok_or_else(|| bad(format!("stray file `{name}`")))?;
                match scheme {
                    "purelib" | "platlib" => (format!("{site}/{rest}"), false),
                    "scripts" => (format!("{bin}/{rest}"), true),
                    "headers" => (
                        format!(
                            "usr/local/include/python{}/{dist_name}/{rest}",
                            target.python_version()
                        ),
                        false,
                    ),
                    "data" => (format!("usr/local/{rest}"), false),
                    other => return Err(bad(format!("unknown .data scheme `{other}`"))),
                }
            }
            None => (format!("{site}/{name}"), false),
        };
        let dest_path = layer_path(&dest, file)?;
        let (spooled, size, hash) = if script {
            // Scripts: `#!python` becomes the image's interpreter, once RECORD has vouched for
            // the script as built.
            let mut content = Vec::new();
            member
                .read_to_end(&mut content)
                .map_err(|err| bad(format!("{name}: {err}")))?;
            verify(
                &record_hash(&Sha256::digest(&content)),
                content.len() as u64,
            )?;
            if let Some(rest) = content
                .strip_prefix(b"#!pythonw")
                .or_else(|| content.strip_prefix(b"#!python"))
                && rest.first().is_none_or(|b| b.is_ascii_whitespace())
            {
                let mut rewritten = format!("#!{interpreter}").into_bytes();
                rewritten.extend_from_slice(rest);
                content = rewritten;
            }
            spool.append(&content[..], file)?
        } else {
            let (spooled, size, hash) = spool.append(&mut member, file)?;
            verify(&hash, size)?;
            (spooled, size, hash)
        };
        // A wheel's INSTALLER (if any) was checked with the rest, and is replaced by ours.
        if name == wheel_installer {
            continue;
        }
        let mode = if script || executable { 0o755 } else { 0o644 };
        entries.push((Entry::file(dest_path, size, mode), spooled));
        record.push((dest, hash, size));
    }
    let generated = |path: &str, mode: u32, bytes: Vec<u8>| -> Result<(Entry, Content), Error> {
        let entry = Entry::file(layer_path(path, file)?, bytes.len() as u64, mode);
        Ok((entry, Content::Bytes(bytes.into())))
    };

    let mut scripts = Vec::new();
    if let Some(entry_points) = entry_points {
        for (name, target_ref) in console_scripts(&entry_points) {
            let text = launcher(&interpreter, &target_ref).ok_or_else(|| {
                bad(format!(
                    "entry point `{name} = {target_ref}` is not `module:attr`"
                ))
            })?;
            if name.contains('/') || name.is_empty() {
                return Err(bad(format!("bad console script name `{name}`")));
            }
            let dest = format!("{bin}/{name}");
            let bytes = text.into_bytes();
            record.push((
                dest.clone(),
                record_hash(&Sha256::digest(&bytes)),
                bytes.len() as u64,
            ));
            entries.push(generated(&dest, 0o755, bytes)?);
            scripts.push(name);
        }
    }
    let installer = format!("{site}/{dist_info}/INSTALLER");
    record.push((
        installer.clone(),
        record_hash(&Sha256::digest(INSTALLER.as_bytes())),
        INSTALLER.len() as u64,
    ));
    entries.push(generated(&installer, 0o644, INSTALLER.as_bytes().to_vec())?);
    let record_path = format!("{site}/{dist_info}/RECORD");
    record.push((record_path.clone(), String::new(), 0));
    record.sort();
    let mut text = String::new();
    for (dest, hash, size) in &record {
        let rel = relative(&site, dest);
        if dest == &record_path {
            text.push_str(&format!("{},,\n", csv_field(&rel)));
        } else {
            text.push_str(&format!("{},{hash},{size}\n", csv_field(&rel)));
        }
    }
    entries.push(generated(&record_path, 0o644, text.into_bytes())?);
    for (entry, content) in entries {
        tree.insert(entry, content);
    }
    Ok(Installed {
        files: record.len(),
        scripts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkg_resources_imports_outside_try_blocks_count() {
        assert!(imports_pkg_resources(
            "import os\nimport pkg_resources as pkg  # type: ignore\n"
        ));
        assert!(imports_pkg_resources(
            "def version():\n    from pkg_resources import get_distribution\n"
        ));
        assert!(!imports_pkg_resources(
            "try:\n    import pkg_resources\nexcept ImportError:\n    pkg_resources = None\n"
        ));
        assert!(!imports_pkg_resources(
            "# import pkg_resources\nimport importlib.metadata\n"
        ));
    }

    #[test]
    fn relative_paths_and_scripts() {
        let site = "usr/local/lib/python3.11/dist-packages";
        assert_eq!(relative(site, &format!("{site}/a/b.py")), "a/b.py");
        assert_eq!(relative(site, "usr/local/bin/flask"), "../../../bin/flask");
        let scripts = console_scripts(
            "[console_scripts]\nflask = flask.cli:main\n\n[flask.commands]\nx = y:z\n[gui_scripts]\ng = m.n:o.p [extra]\n",
        );
        assert_eq!(scripts.len(), 2);
        assert_eq!(scripts["g"], "m.n:o.p");
        let text = launcher("/usr/bin/python3.11", "m.n:o.p").unwrap();
        assert!(text.starts_with("#!/usr/bin/python3.11\n"));
        assert!(text.contains("from m.n import o\n"));
        assert!(text.contains("sys.exit(o.p())"));
        assert!(launcher("/x", "no colon").is_none());
        assert!(launcher("/x", "os:system('x')").is_none());
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }

    const FILE: &str = "demo-1.0-py3-none-any.whl";

    /// The members of a small wheel (RECORD aside): a module, a `#!python` script, a
    /// console-script entry point, a .pyc and a file whose name needs CSV quoting.
    const MEMBERS: &[(&str, &[u8])] = &[
        ("demo/__init__.py", b"def main():\n    print('hi')\n"),
        (
            "demo/__pycache__/__init__.cpython-311.pyc",
            b"\x0d\x0d\x0a\x00",
        ),
        ("demo/a,b.txt", b"comma"),
        (
            "demo-1.0.data/scripts/demo-tool",
            b"#!python\nprint('tool')\n",
        ),
        (
            "demo-1.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n\n",
        ),
        (
            "demo-1.0.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (
            "demo-1.0.dist-info/entry_points.txt",
            b"[console_scripts]\ndemo = demo:main\n",
        ),
    ];

    /// The RECORD row a wheel builder writes for `content` at `name`.
    fn row(name: &str, content: &[u8]) -> String {
        let hash = record_hash(&Sha256::digest(content));
        format!("{},{hash},{}\n", csv_field(name), content.len())
    }

    /// The RECORD of [`MEMBERS`], the .pyc without a hash (as the spec allows), with `edit`
    /// applied to each row.
    fn record(edit: impl Fn(&str, String) -> String) -> String {
        let mut text = String::new();
        for (name, content) in MEMBERS {
            let line = if name.ends_with(".pyc") {
                format!("{name},,\n")
            } else {
                row(name, content)
            };
            text.push_str(&edit(name, line));
        }
        text.push_str("demo-1.0.dist-info/RECORD,,\n");
        text
    }

    /// Build the wheel of `members` and `record` (none when `None`) and install it; returns the
    /// tree as it is afterwards and the outcome.
    fn install(
        members: &[(&str, &[u8])],
        record: Option<&str>,
    ) -> (LayerTree, Result<Installed, Error>) {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
        for (name, content) in members {
            zip.start_file(*name, options).unwrap();
            zip.write_all(content).unwrap();
        }
        if let Some(record) = record {
            zip.start_file("demo-1.0.dist-info/RECORD", options)
                .unwrap();
            zip.write_all(record.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        let mut spool = Spool::new(dir.path()).unwrap();
        let mut tree = LayerTree::new();
        let result = install_wheel(&mut tree, &path, FILE, &Target::bookworm(), &mut spool);
        (tree, result)
    }

    /// The wheel failed on `member` with `problem`, naming both, and left the tree untouched.
    fn assert_bad_record(
        outcome: (LayerTree, Result<Installed, Error>),
        member: &str,
        problem: impl Fn(&RecordProblem) -> bool,
    ) {
        let (tree, result) = outcome;
        let err = result.unwrap_err();
        let message = err.to_string();
        match &err {
            Error::BadRecord {
                file,
                member: failed,
                problem: found,
            } => {
                assert_eq!(file, FILE);
                assert_eq!(failed, member);
                assert!(problem(found), "{message}");
            }
            other => panic!("expected a RECORD error, got {other}"),
        }
        assert!(
            message.contains(FILE) && message.contains(member),
            "{message}"
        );
        assert!(tree.is_empty(), "nothing is installed from a bad wheel");
    }

    #[test]
    fn a_wheel_matching_its_record_installs() {
        let (tree, result) = install(MEMBERS, Some(&record(|_, line| line)));
        let installed = result.unwrap();
        assert_eq!(installed.scripts, ["demo"]);
        let target = Target::bookworm();
        let site = target.site_packages();
        let read = |path: &str| tree.read_file(&LayerPath::new(path).unwrap()).unwrap();
        assert_eq!(
            read(&format!("{site}/demo/a,b.txt")).unwrap(),
            b"comma".to_vec()
        );
        let tool = String::from_utf8(read("usr/local/bin/demo-tool").unwrap()).unwrap();
        assert_eq!(tool, format!("#!{}\nprint('tool')\n", target.interpreter()));
        let record =
            String::from_utf8(read(&format!("{site}/demo-1.0.dist-info/RECORD")).unwrap()).unwrap();
        assert!(record.contains("\"demo/a,b.txt\","), "{record}");
        assert!(record.contains("demo-1.0.dist-info/INSTALLER,"), "{record}");
    }

    #[test]
    fn a_tampered_member_fails_naming_it() {
        let mut members = MEMBERS.to_vec();
        members[0].1 = b"def main():\n    print('ho')\n";
        assert_bad_record(
            install(&members, Some(&record(|_, line| line))),
            "demo/__init__.py",
            |p| matches!(p, RecordProblem::HashMismatch { .. }),
        );
        // A script is checked as built, before its `#!python` line is rewritten.
        members = MEMBERS.to_vec();
        members[3].1 = b"#!python\nprint('TOOL')\n";
        assert_bad_record(
            install(&members, Some(&record(|_, line| line))),
            "demo-1.0.data/scripts/demo-tool",
            |p| matches!(p, RecordProblem::HashMismatch { .. }),
        );
    }

    #[test]
    fn a_member_missing_from_record_fails_naming_it() {
        let record = record(|name, line| {
            if name == "demo/a,b.txt" {
                String::new()
            } else {
                line
            }
        });
        assert_bad_record(install(MEMBERS, Some(&record)), "demo/a,b.txt", |p| {
            *p == RecordProblem::NotListed
        });
        assert_bad_record(install(MEMBERS, None), "demo-1.0.dist-info/RECORD", |p| {
            *p == RecordProblem::Missing
        });
    }

    #[test]
    fn a_wrong_size_fails_naming_the_member() {
        let record = record(|name, line| {
            if name == "demo-1.0.dist-info/WHEEL" {
                line.replace(",59\n", ",60\n")
            } else {
                line
            }
        });
        assert_bad_record(
            install(MEMBERS, Some(&record)),
            "demo-1.0.dist-info/WHEEL",
            |p| {
                *p == RecordProblem::SizeMismatch {
                    expected: 60,
                    actual: 59,
                }
            },
        );
    }

    #[test]
    fn only_record_and_pyc_files_may_lack_a_hash() {
        let unhashed = record(|name, line| {
            if name == "demo/__init__.py" {
                format!("{name},,\n")
            } else {
                line
            }
        });
        assert_bad_record(install(MEMBERS, Some(&unhashed)), "demo/__init__.py", |p| {
            *p == RecordProblem::NoHash
        });
        let md5 = record(|name, line| {
            if name == "demo/__init__.py" {
                format!("{name},md5=AAAA,\n")
            } else {
                line
            }
        });
        assert_bad_record(install(MEMBERS, Some(&md5)), "demo/__init__.py", |p| {
            *p == RecordProblem::UnsupportedHash("md5".into())
        });
    }

    #[test]
    fn malformed_record_lines_are_reported_by_line() {
        let line_of = |text: &str| match parse_record(text) {
            Err(RecordProblem::Malformed { line, .. }) => line,
            other => panic!("expected a malformed RECORD, got {other:?}"),
        };
        assert_eq!(line_of("a,,\n\"b,sha256=x,1\n"), 2);
        assert_eq!(line_of("a,sha256=x\n"), 1);
        assert_eq!(line_of("a,,\r\n\nb,sha256=x,big\n"), 3);
        assert_eq!(line_of("a,nohash,1\n"), 1);
        let rows = parse_record("\"x\"\"y\",sha256=abc==,3\r\n").unwrap();
        assert_eq!(
            rows["x\"y"],
            Listed {
                hash: Some(("sha256".into(), "abc".into())),
                size: Some(3),
            }
        );
    }
}
