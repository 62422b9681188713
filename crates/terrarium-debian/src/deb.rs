//! Reading `.deb` files: the `ar` container, `control.tar.*` (the control stanza and md5sums)
//! and `data.tar.*`, whose entries go into a [`LayerTree`] without running any maintainer
//! script.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use terrarium_image::{Content, Entry, EntryKind, LayerPath, LayerTree, Ownership};

use crate::deb822;
use crate::error::Error;

/// How package contents are placed in the layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnpackOptions {
    /// Move `/bin`, `/sbin`, `/lib*` under `/usr` (merged /usr, as every current Debian system
    /// is); [`add_merged_usr_links`] adds the top-level symlinks.
    pub merge_usr: bool,
    /// Leave out manuals, info pages, lintian overrides and documentation except each
    /// package's `copyright` file (kept for license compliance).
    pub drop_docs: bool,
    /// More paths to leave out, each with everything below it, as they appear in the package
    /// (before merging /usr), e.g. `usr/lib/x86_64-linux-gnu/gconv` (iconv modules, 8 MB,
    /// unused by CPython itself). A last component ending in `*` matches every name that
    /// starts with what comes before it (`…/lib-dynload/_test*`).
    pub exclude: Vec<String>,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        Self {
            merge_usr: true,
            drop_docs: true,
            exclude: Vec::new(),
        }
    }
}

/// What a .deb says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebControl {
    /// The `control` file as written in the package.
    pub control: String,
    /// `Package:`.
    pub package: String,
    /// `Version:`.
    pub version: String,
    /// `Architecture:`.
    pub architecture: String,
    /// The `md5sums` file, when present.
    pub md5sums: Option<String>,
}

impl DebControl {
    /// The control stanza with `Status: install ok installed`, as a `var/lib/dpkg/status.d/`
    /// entry that scanners read.
    pub fn status_entry(&self) -> String {
        let mut out = String::new();
        for line in self.control.lines() {
            out.push_str(line);
            out.push('\n');
            if line.starts_with("Package:") {
                out.push_str("Status: install ok installed\n");
            }
        }
        out
    }
}

fn bad_deb(path: &Path, message: impl Into<String>) -> Error {
    Error::BadDeb {
        file: path.display().to_string(),
        message: message.into(),
    }
}

fn decompressor<'a>(
    name: &str,
    reader: impl Read + 'a,
    path: &Path,
) -> Result<Box<dyn Read + 'a>, Error> {
    Ok(match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("xz") => Box::new(liblzma::read::XzDecoder::new(reader)),
        Some("zst") => Box::new(
            zstd::stream::read::Decoder::new(reader)
                .map_err(|err| bad_deb(path, format!("{name}: {err}")))?,
        ),
        Some("gz") => Box::new(flate2::read::GzDecoder::new(reader)),
        Some("tar") => Box::new(reader),
        _ => return Err(bad_deb(path, format!("unsupported member `{name}`"))),
    })
}

/// Read the control information of the .deb at `path`.
pub fn read_control(path: &Path) -> Result<DebControl, Error> {
    let mut control = None;
    for_each_member(path, |name, reader| {
        if name.starts_with("control.tar") {
            control = Some(parse_control_tar(path, name, reader)?);
        }
        Ok(())
    })?;
    control.ok_or_else(|| bad_deb(path, "no control.tar member"))
}

/// Unpack the .deb at `path` into `tree`: `data.tar` entries (see [`UnpackOptions`]) plus
/// `var/lib/dpkg/status.d/<package>` (and `.md5sums`) from its control file. File contents are
/// spooled, uncompressed, to an anonymous temporary file in `spool_dir` that `tree` refers to;
/// nothing is held in memory.
pub fn unpack_into(
    path: &Path,
    tree: &mut LayerTree,
    options: &UnpackOptions,
    spool_dir: &Path,
) -> Result<DebControl, Error> {
    let mut control = None;
    let mut spool = None;
    for_each_member(path, |name, reader| {
        if name.starts_with("control.tar") {
            control = Some(parse_control_tar(path, name, reader)?);
        } else if name.starts_with("data.tar") {
            let mut file =
                tempfile::tempfile_in(spool_dir).map_err(crate::error::io_error(spool_dir))?;
            let mut decoded = decompressor(name, reader, path)?;
            io::copy(&mut decoded, &mut file)
                .map_err(|err| bad_deb(path, format!("{name}: {err}")))?;
            spool = Some(file);
        }
        Ok(())
    })?;
    let control = control.ok_or_else(|| bad_deb(path, "no control.tar member"))?;
    let spool = spool.ok_or_else(|| bad_deb(path, "no data.tar member"))?;
    add_data(path, Arc::new(spool), tree, options)?;

    let status = LayerPath::new(&format!("var/lib/dpkg/status.d/{}", control.package))?;
    tree.insert_bytes(status, 0o644, control.status_entry().into_bytes());
    if let Some(md5sums) = &control.md5sums {
        let path = LayerPath::new(&format!(
            "var/lib/dpkg/status.d/{}.md5sums",
            control.package
        ))?;
        tree.insert_bytes(path, 0o644, md5sums.clone().into_bytes());
    }
    Ok(control)
}

fn for_each_member(
    path: &Path,
    mut visit: impl FnMut(&str, &mut dyn Read) -> Result<(), Error>,
) -> Result<(), Error> {
    let file = File::open(path).map_err(crate::error::io_error(path))?;
    let mut archive = ar::Archive::new(BufReader::with_capacity(1 << 16, file));
    let mut first = true;
    while let Some(member) = archive.next_entry() {
        let mut member = member.map_err(|err| bad_deb(path, err.to_string()))?;
        let name = String::from_utf8_lossy(member.header().identifier())
            .trim_end_matches('/')
            .to_owned();
        if first {
            let mut magic = String::new();
            member
                .read_to_string(&mut magic)
                .map_err(|err| bad_deb(path, err.to_string()))?;
            if name != "debian-binary" || !magic.starts_with("2.") {
                return Err(bad_deb(path, "does not start with debian-binary 2.x"));
            }
            first = false;
            continue;
        }
        visit(&name, &mut member)?;
    }
    if first {
        return Err(bad_deb(path, "empty archive"));
    }
    Ok(())
}

fn parse_control_tar(path: &Path, name: &str, reader: &mut dyn Read) -> Result<DebControl, Error> {
    let decoded = decompressor(name, reader, path)?;
    let mut archive = tar::Archive::new(decoded);
    let mut control = None;
    let mut md5sums = None;
    let entries = archive
        .entries()
        .map_err(|err| bad_deb(path, format!("{name}: {err}")))?;
    for entry in entries {
        let entry = entry.map_err(|err| bad_deb(path, format!("{name}: {err}")))?;
        let entry_path = entry
            .path()
            .map_err(|err| bad_deb(path, format!("{name}: {err}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        let slot = match entry_path.as_str() {
            "control" => &mut control,
            "md5sums" => &mut md5sums,
            _ => continue,
        };
        let mut text = String::new();
        entry
            .take(1 << 24)
            .read_to_string(&mut text)
            .map_err(|err| bad_deb(path, format!("{name}/{entry_path}: {err}")))?;
        *slot = Some(text);
    }
    let control = control.ok_or_else(|| bad_deb(path, format!("{name} has no control file")))?;
    let stanzas = deb822::parse_all(&control, &format!("{}: control", path.display()))?;
    let stanza = stanzas
        .first()
        .ok_or_else(|| bad_deb(path, "empty control file"))?;
    let field = |name: &str| {
        stanza
            .get(name)
            .map(str::to_owned)
            .ok_or_else(|| bad_deb(path, format!("control file has no {name}")))
    };
    let package = field("Package")?;
    if LayerPath::new(&package)
        .map(|p| p.as_str() != package)
        .unwrap_or(true)
    {
        return Err(bad_deb(path, format!("invalid package name `{package}`")));
    }
    Ok(DebControl {
        package,
        version: field("Version")?,
        architecture: field("Architecture")?,
        control: if control.ends_with('\n') {
            control
        } else {
            control + "\n"
        },
        md5sums,
    })
}

/// Top-level directories that merged /usr moves under `usr/`.
const MERGED_DIRS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Add the merged-/usr symlinks (`bin -> usr/bin`, `lib -> usr/lib`, ...) for the directories
/// present under `usr/` in `tree`.
pub fn add_merged_usr_links(tree: &mut LayerTree) -> Result<(), Error> {
    for dir in MERGED_DIRS {
        let target = LayerPath::new(&format!("usr/{dir}"))?;
        if tree.get(&target).is_some() {
            tree.insert(
                Entry::symlink(LayerPath::new(dir)?, format!("usr/{dir}")),
                Content::Empty,
            );
        }
    }
    Ok(())
}

fn merged(path: &str) -> Option<String> {
    let (top, rest) = match path.split_once('/') {
        Some((top, rest)) => (top, Some(rest)),
        None => (path, None),
    };
    MERGED_DIRS.contains(&top).then(|| match rest {
        Some(rest) => format!("usr/{top}/{rest}"),
        None => format!("usr/{top}"),
    })
}

fn excluded(options: &UnpackOptions, path: &str) -> bool {
    options
        .exclude
        .iter()
        .map(|prefix| prefix.trim_matches('/'))
        .any(|prefix| match prefix.strip_suffix('*') {
            // Every name starting with the stem, and everything below such a directory.
            Some(stem) => path.starts_with(stem),
            None => {
                path == prefix
                    || path
                        .strip_prefix(prefix)
                        .is_some_and(|r| r.starts_with('/'))
            }
        })
        || (options.drop_docs && !keep_doc_path(path))
}

fn keep_doc_path(path: &str) -> bool {
    for dropped in [
        "usr/share/man",
        "usr/share/info",
        "usr/share/lintian",
        "usr/share/doc-base",
    ] {
        if path == dropped || path.starts_with(&format!("{dropped}/")) {
            return false;
        }
    }
    match path.strip_prefix("usr/share/doc/") {
        Some(rest) => {
            let parts: Vec<&str> = rest.split('/').collect();
            parts.len() == 1 || (parts.len() == 2 && parts[1] == "copyright")
        }
        None => true,
    }
}

/// Lexically resolve `target` (a symlink's target) relative to directory `dir`.
fn resolve_lexically(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// The relative path from directory `from` to `to` (both root-relative).
fn relative(from: &str, to: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|p| !p.is_empty()).collect();
    let to: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

fn add_data(
    deb: &Path,
    spool: Arc<File>,
    tree: &mut LayerTree,
    options: &UnpackOptions,
) -> Result<(), Error> {
    let mut reader: &File = &spool;
    reader
        .seek(SeekFrom::Start(0))
        .map_err(crate::error::io_error(deb))?;
    let mut archive = tar::Archive::new(reader);
    let tar_err = |err: io::Error| bad_deb(deb, format!("data.tar: {err}"));
    for entry in archive.entries_with_seek().map_err(tar_err)? {
        let entry = entry.map_err(tar_err)?;
        let raw_path = entry
            .path()
            .map_err(tar_err)?
            .to_string_lossy()
            .into_owned();
        let Ok(original) = LayerPath::new(&raw_path) else {
            // `./` itself, or a path escaping the root: nothing to add.
            if raw_path
                .trim_start_matches("./")
                .trim_end_matches('/')
                .is_empty()
            {
                continue;
            }
            return Err(bad_deb(
                deb,
                format!("unsafe path `{raw_path}` in data.tar"),
            ));
        };
        if excluded(options, original.as_str()) {
            continue;
        }
        let moved = options
            .merge_usr
            .then(|| merged(original.as_str()))
            .flatten();
        let path = match &moved {
            Some(moved) => LayerPath::new(moved)?,
            None => original.clone(),
        };
        let header = entry.header();
        let mode = header.mode().map_err(tar_err)? & 0o7777;
        let owner = Ownership {
            uid: header.uid().map_err(tar_err)?,
            gid: header.gid().map_err(tar_err)?,
            uname: header
                .username()
                .ok()
                .flatten()
                .filter(|name| !name.is_empty())
                .unwrap_or("root")
                .to_owned(),
            gname: header
                .groupname()
                .ok()
                .flatten()
                .filter(|name| !name.is_empty())
                .unwrap_or("root")
                .to_owned(),
        };
        let link_target = || -> Result<String, Error> {
            Ok(entry
                .link_name()
                .map_err(tar_err)?
                .ok_or_else(|| bad_deb(deb, format!("link `{raw_path}` without a target")))?
                .to_string_lossy()
                .into_owned())
        };
        let (kind, content) = match header.entry_type() {
            tar::EntryType::Directory => (EntryKind::Directory, Content::Empty),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                let content = Content::Range {
                    file: Arc::clone(&spool),
                    offset: entry.raw_file_position(),
                    len: size,
                };
                (EntryKind::File { size }, content)
            }
            tar::EntryType::Symlink => {
                let mut target = link_target()?;
                if moved.is_some() && !target.starts_with('/') {
                    let old_dir = original.parent().map(|p| p.to_string()).unwrap_or_default();
                    let absolute = resolve_lexically(&old_dir, &target);
                    let absolute = merged(&absolute).unwrap_or(absolute);
                    let new_dir = path.parent().map(|p| p.to_string()).unwrap_or_default();
                    target = relative(&new_dir, &absolute);
                }
                (EntryKind::Symlink { target }, Content::Empty)
            }
            tar::EntryType::Link => {
                let target = LayerPath::new(&link_target()?)?;
                if excluded(options, target.as_str()) {
                    continue;
                }
                let target = match options.merge_usr.then(|| merged(target.as_str())).flatten() {
                    Some(moved) => LayerPath::new(&moved)?,
                    None => target,
                };
                (EntryKind::HardLink { target }, Content::Empty)
            }
            // Device nodes and FIFOs have no place in an image layer.
            _ => continue,
        };
        tree.insert(
            Entry {
                path,
                kind,
                mode,
                owner,
            },
            content,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn excludes_prefixes_and_name_stems() {
        let options = super::UnpackOptions {
            exclude: vec![
                "usr/lib/gconv".into(),
                "usr/lib/py/lib-dynload/_test*".into(),
            ],
            ..super::UnpackOptions::default()
        };
        for (path, out) in [
            ("usr/lib/gconv", true),
            ("usr/lib/gconv/x.so", true),
            ("usr/lib/gconvx", false),
            ("usr/lib/py/lib-dynload/_testcapi.so", true),
            ("usr/lib/py/lib-dynload/_ssl.so", false),
            ("usr/lib/py/lib-dynload", false),
        ] {
            assert_eq!(super::excluded(&options, path), out, "{path}");
        }
    }

    use super::*;

    #[test]
    fn merges_usr_and_rewrites_relative_links() {
        assert_eq!(
            merged("lib/x86_64-linux-gnu/libc.so.6").as_deref(),
            Some("usr/lib/x86_64-linux-gnu/libc.so.6")
        );
        assert_eq!(merged("lib64").as_deref(), Some("usr/lib64"));
        assert_eq!(merged("usr/lib/x"), None);
        assert_eq!(merged("library/x"), None);
        let absolute = resolve_lexically("lib/x86_64-linux-gnu", "../../usr/lib/foo");
        assert_eq!(absolute, "usr/lib/foo");
        assert_eq!(
            relative("usr/lib/x86_64-linux-gnu", "usr/lib/foo"),
            "../foo"
        );
        assert_eq!(relative("usr/bin", "usr/bin/python3.11"), "python3.11");
    }

    #[test]
    fn keeps_only_copyright_docs() {
        assert!(keep_doc_path("usr/share/doc/libc6/copyright"));
        assert!(keep_doc_path("usr/share/doc/libc6"));
        assert!(!keep_doc_path("usr/share/doc/libc6/changelog.Debian.gz"));
        assert!(!keep_doc_path("usr/share/man/man1/python3.11.1.gz"));
        assert!(keep_doc_path("usr/share/zoneinfo/UTC"));
    }
}
