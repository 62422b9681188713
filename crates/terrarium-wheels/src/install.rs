//! Installing a wheel into a layer, per the wheel spec (binary distribution format): purelib and
//! platlib into site-packages, the `.data/` directories to their schemes, console-script
//! launchers with the image's interpreter, a regenerated RECORD and INSTALLER. File contents are
//! decompressed into a spool file and referenced by range, so memory stays flat.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use terrarium_image::{Entry, LayerPath, LayerTree, Source};

use crate::error::{Error, io_error};
use crate::tags::Target;

/// What `INSTALLER` says.
const INSTALLER: &str = "terrarium\n";

/// An append-only scratch file holding decompressed file contents for [`Source::Range`].
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

    /// Copy `reader` into the spool; returns its source, size and urlsafe-base64 sha256.
    fn append(
        &mut self,
        mut reader: impl Read,
        what: &str,
    ) -> Result<(Source, u64, String), Error> {
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
        let source = Source::Range {
            file: Arc::clone(&self.file),
            offset: start,
            len: size,
        };
        Ok((source, size, record_hash(&hasher.finalize())))
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
/// into `spool`.
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

    // (path in the image, RECORD hash, size) of everything installed.
    let mut record: Vec<(String, String, u64)> = Vec::new();
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(|err| bad(err.to_string()))?;
        if member.is_dir() {
            continue;
        }
        let name = member.name().to_owned();
        if name == format!("{dist_info}/RECORD")
            || name == format!("{dist_info}/RECORD.jws")
            || name == format!("{dist_info}/RECORD.p7s")
            || name == format!("{dist_info}/INSTALLER")
        {
            continue;
        }
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
        let (source, size, hash) = if script {
            // Scripts: `#!python` becomes the image's interpreter.
            let mut content = Vec::new();
            member
                .read_to_end(&mut content)
                .map_err(|err| bad(format!("{name}: {err}")))?;
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
            spool.append(&mut member, file)?
        };
        let mode = if script || executable { 0o755 } else { 0o644 };
        tree.insert(Entry::file(dest_path, size, mode), source);
        record.push((dest, hash, size));
    }

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
            tree.insert_bytes(layer_path(&dest, file)?, 0o755, bytes);
            scripts.push(name);
        }
    }
    let installer = format!("{site}/{dist_info}/INSTALLER");
    record.push((
        installer.clone(),
        record_hash(&Sha256::digest(INSTALLER.as_bytes())),
        INSTALLER.len() as u64,
    ));
    tree.insert_bytes(
        layer_path(&installer, file)?,
        0o644,
        INSTALLER.as_bytes().to_vec(),
    );
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
    tree.insert_bytes(layer_path(&record_path, file)?, 0o644, text.into_bytes());
    Ok(Installed {
        files: record.len(),
        scripts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
