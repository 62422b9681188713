//! `terrarium build --load`: put a stored image into the engine, sending only what it lacks.
//!
//! One `docker image inspect` asks for the image by its ID and for every tag. When the engine
//! has the image, the tags that point elsewhere (or nowhere) are moved with `docker tag` and
//! nothing is loaded. When it doesn't, the archive is streamed into `docker load` without the
//! layers the engine already has below an image under one of the tags (a load skips a layer
//! whose chain the engine knows without opening its file); should the engine still want one of
//! them, the whole archive is sent again.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use terrarium_image::{ArchiveLayers, Cache, Compression, Image, ImageRef, stream_docker_archive};

use crate::docker::{Engine, command_line};
use crate::error::EngineError;

/// What [`Engine::load_image`] had to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// The engine had the image under every tag: nothing was sent.
    UpToDate,
    /// The engine had the image; these tags were pointed at it.
    Retagged(Vec<String>),
    /// The image was loaded; the engine already had the bottom `layers_present` of its layers,
    /// which were not sent.
    Loaded {
        /// Layers sent.
        layers_sent: usize,
        /// Layers the engine had, left out of the archive.
        layers_present: usize,
    },
}

/// One image `docker image inspect` found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    id: String,
    tags: Vec<String>,
    layers: Vec<String>,
}

/// The format of each line of `docker image inspect`: the ID, the tags and the diff IDs.
const INSPECT_FORMAT: &str = "{{.Id}}\t{{json .RepoTags}}\t{{json .RootFS.Layers}}";

/// Parse `docker image inspect --format INSPECT_FORMAT` output: one line per image found (a
/// missing one is only named on stderr).
fn parse_inspect(stdout: &str) -> Vec<Found> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            let id = fields.next()?.trim().to_owned();
            let list = |text: Option<&str>| -> Vec<String> {
                text.and_then(|t| serde_json::from_str::<Option<Vec<String>>>(t.trim()).ok())
                    .flatten()
                    .unwrap_or_default()
            };
            let tags = list(fields.next());
            let layers = list(fields.next());
            id.starts_with("sha256:")
                .then_some(Found { id, tags, layers })
        })
        .collect()
}

/// Whether an engine reporting `version` (`docker version`'s server version, e.g.
/// `20.10.24+dfsg1` or `28.1.1`) reads zstd layers: Docker 23 and later.
fn docker_reads_zstd(version: &str) -> bool {
    version
        .trim()
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok())
        .is_some_and(|major| major >= 23)
}

/// How many of `ours` (bottom first) the engine has as the bottom of `theirs`.
fn common_prefix(ours: &[String], theirs: &[String]) -> usize {
    ours.iter().zip(theirs).take_while(|(a, b)| a == b).count()
}

impl Engine {
    /// Make the engine have `image` from `cache` under every one of `tags`, sending only what
    /// it lacks (see the module documentation). Works on an [`Engine::unchecked`]: the engine
    /// is checked only when the image must be loaded.
    pub fn load_image(
        &self,
        cache: &Cache,
        image: &Image,
        tags: &[ImageRef],
    ) -> Result<LoadOutcome, EngineError> {
        let tags: Vec<String> = tags.iter().map(ToString::to_string).collect();
        // The classic image store names an image by its config's digest, the containerd store
        // by its manifest's.
        let ids = [image.config.digest.to_string(), image.digest().to_string()];
        let mut args = vec![
            "image".to_owned(),
            "inspect".into(),
            "--format".into(),
            INSPECT_FORMAT.into(),
        ];
        args.extend(ids.iter().cloned());
        args.extend(tags.iter().cloned());
        // Exits non-zero when any of them is missing; what was found is still printed. A
        // missing client or engine shows as nothing found, and is named by the check below.
        let found = Command::new(self.client())
            .args(&args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|output| parse_inspect(&String::from_utf8_lossy(&output.stdout)))
            .unwrap_or_default();
        if let Some(present) = found.iter().find(|f| ids.contains(&f.id)) {
            let missing: Vec<String> = tags
                .iter()
                .filter(|tag| !present.tags.contains(tag))
                .cloned()
                .collect();
            for tag in &missing {
                self.run_quiet(&["tag".into(), present.id.clone(), tag.clone()])?;
            }
            return Ok(if missing.is_empty() {
                LoadOutcome::UpToDate
            } else {
                LoadOutcome::Retagged(missing)
            });
        }
        let ours: Vec<String> = image
            .layers
            .iter()
            .map(|layer| layer.diff_id.to_string())
            .collect();
        self.check()?;
        let present = found
            .iter()
            .map(|f| common_prefix(&ours, &f.layers))
            .max()
            .unwrap_or(0);
        let zstd = image
            .layers
            .iter()
            .any(|layer| layer.compression == Compression::Zstd);
        let form = if zstd && !self.reads_zstd() {
            ArchiveLayers::Uncompressed
        } else {
            ArchiveLayers::AsStored
        };
        match self.stream_load(cache, image, &tags, present, form) {
            Err(_) if present > 0 => {
                // The engine lost a layer in between (or loads differently): send everything.
                self.stream_load(cache, image, &tags, 0, form)?;
                Ok(LoadOutcome::Loaded {
                    layers_sent: ours.len(),
                    layers_present: 0,
                })
            }
            Err(err) => Err(err),
            Ok(()) => Ok(LoadOutcome::Loaded {
                layers_sent: ours.len() - present,
                layers_present: present,
            }),
        }
    }

    /// Whether the engine is Docker 23 or later, which unpacks zstd layers. Docker 20.10 takes
    /// a zstd layer for a broken tar (`archive/tar: invalid tar header`), so any other engine,
    /// or one whose version cannot be read, is sent uncompressed layers, which every engine
    /// loads into the same image ID.
    fn reads_zstd(&self) -> bool {
        let args = ["version", "--format", "{{.Server.Version}}"];
        Command::new(self.client())
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|output| output.status.success())
            .is_some_and(|output| docker_reads_zstd(&String::from_utf8_lossy(&output.stdout)))
    }

    /// `docker load`, its archive (with its layers in `form`) streamed into its standard input.
    fn stream_load(
        &self,
        cache: &Cache,
        image: &Image,
        tags: &[String],
        present: usize,
        form: ArchiveLayers,
    ) -> Result<(), EngineError> {
        let refs: Vec<ImageRef> = tags.iter().filter_map(|t| t.parse().ok()).collect();
        let args = ["load".to_owned(), "-q".into()];
        let mut child = Command::new(self.client())
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| EngineError::Spawn {
                command: command_line(self.client(), &args),
                source,
            })?;
        let mut stderr = child.stderr.take();
        // Read stderr while writing, so a chatty failure cannot block the pipe.
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(stderr) = stderr.as_mut() {
                let _ = stderr.read_to_string(&mut text);
            }
            text
        });
        let written = match child.stdin.take() {
            Some(stdin) => {
                let out = std::io::BufWriter::with_capacity(1 << 16, stdin);
                stream_docker_archive(
                    cache,
                    image,
                    &refs,
                    present,
                    form,
                    out,
                    Path::new("docker load"),
                )
                .map_err(EngineError::from)
                .and_then(|mut out| {
                    out.flush().map_err(|source| EngineError::Spawn {
                        command: command_line(self.client(), &args),
                        source,
                    })
                })
            }
            None => Ok(()),
        };
        let status = child.wait().map_err(|source| EngineError::Spawn {
            command: command_line(self.client(), &args),
            source,
        })?;
        let stderr = reader.join().unwrap_or_default();
        if !status.success() {
            return Err(EngineError::Command {
                command: command_line(self.client(), &args),
                stderr,
            });
        }
        written
    }

    /// Run docker with `args` without BuildKit detection; an error carries its stderr.
    fn run_quiet(&self, args: &[String]) -> Result<(), EngineError> {
        let output = Command::new(self.client())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| EngineError::Spawn {
                command: command_line(self.client(), args),
                source,
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(EngineError::Command {
                command: command_line(self.client(), args),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_needs_docker_23() {
        assert!(!docker_reads_zstd("20.10.24+dfsg1\n"));
        assert!(docker_reads_zstd("23.0.0"));
        assert!(docker_reads_zstd("28.1.1\n"));
        assert!(!docker_reads_zstd(""));
        assert!(!docker_reads_zstd("dev"));
    }

    #[test]
    fn parses_inspect_lines_and_skips_noise() {
        let stdout = "sha256:aa\t[\"app:latest\",\"app:1\"]\t[\"sha256:1\",\"sha256:2\"]\n\
                      sha256:bb\tnull\t[\"sha256:1\"]\n\
                      \n\
                      not an id\t[]\t[]\n";
        assert_eq!(
            parse_inspect(stdout),
            vec![
                Found {
                    id: "sha256:aa".into(),
                    tags: vec!["app:latest".into(), "app:1".into()],
                    layers: vec!["sha256:1".into(), "sha256:2".into()],
                },
                Found {
                    id: "sha256:bb".into(),
                    tags: vec![],
                    layers: vec!["sha256:1".into()],
                },
            ]
        );
    }

    #[test]
    fn only_the_common_bottom_counts() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(common_prefix(&s(&["a", "b", "c"]), &s(&["a", "b", "x"])), 2);
        assert_eq!(common_prefix(&s(&["a", "b", "c"]), &s(&["x", "b", "c"])), 0);
        assert_eq!(common_prefix(&s(&["a"]), &s(&["a", "b"])), 1);
    }
}
