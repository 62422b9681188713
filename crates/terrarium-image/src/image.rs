//! Image assembly: the OCI config (User, WorkingDir, Env, Cmd, ports, volumes, labels, history)
//! and manifest, stored as canonical JSON blobs in the cache.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use serde_json::Value;

use crate::cache::Cache;
use crate::digest::Digest;
use crate::error::Error;
use crate::layer::Layer;
use crate::time::Epoch;

/// A port the image documents with `EXPOSE` (L08).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    /// The port number.
    pub number: u16,
    /// The transport protocol.
    pub protocol: Protocol,
}

/// Transport protocol of a [`Port`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Port {
    /// A TCP port.
    pub fn tcp(number: u16) -> Self {
        Self {
            number,
            protocol: Protocol::Tcp,
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        write!(f, "{}/{protocol}", self.number)
    }
}

/// How a container from the image runs: the runtime part of the image config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    /// `user[:group]`, e.g. `65532:65532`.
    pub user: Option<String>,
    /// Working directory, e.g. `/app`.
    pub working_dir: Option<String>,
    /// Environment variables, in order.
    pub env: Vec<(String, String)>,
    /// Exec-form entrypoint.
    pub entrypoint: Vec<String>,
    /// Exec-form command.
    pub cmd: Vec<String>,
    /// Documented ports.
    pub exposed_ports: BTreeSet<Port>,
    /// Declared volumes (absolute paths).
    pub volumes: BTreeSet<String>,
    /// Labels (OCI annotations such as `org.opencontainers.image.source`).
    pub labels: BTreeMap<String, String>,
    /// Signal that stops the container (default SIGTERM).
    pub stop_signal: Option<String>,
    /// How the engine probes the container's health (L18).
    pub healthcheck: Option<Healthcheck>,
}

/// A health probe in the image config. The OCI image spec has no such field; Docker (and
/// Podman, Swarm) read `config.Healthcheck` from the config as Docker writes it, which is what
/// a Dockerfile's `HEALTHCHECK` produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// The probe, exec form (written as `["CMD", …]`).
    pub test: Vec<String>,
    /// Time between probes.
    pub interval: std::time::Duration,
    /// Time before a probe counts as failed.
    pub timeout: std::time::Duration,
    /// Start-up time during which failures don't count.
    pub start_period: std::time::Duration,
    /// Consecutive failures that make the container unhealthy.
    pub retries: u32,
}

impl Healthcheck {
    /// Docker's JSON form: durations in nanoseconds.
    fn to_json(&self) -> Value {
        let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let mut test = vec!["CMD".to_owned()];
        test.extend(self.test.iter().cloned());
        serde_json::json!({
            "Test": test,
            "Interval": nanos(self.interval),
            "Timeout": nanos(self.timeout),
            "StartPeriod": nanos(self.start_period),
            "Retries": self.retries,
        })
    }
}

/// A layer and the history entry that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    /// The stored layer.
    pub layer: Layer,
    /// What made it, e.g. `terrarium: runtime (python3.11 from Debian bookworm)`.
    pub created_by: String,
}

/// Target platform (Linux only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// linux/amd64.
    LinuxAmd64,
    /// linux/arm64.
    LinuxArm64,
}

/// Everything an image is made of, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The layers, base first.
    pub layers: Vec<ImageLayer>,
    /// How it runs.
    pub run: RunConfig,
    /// The fixed creation time.
    pub created: Epoch,
    /// Its platform.
    pub platform: Platform,
}

/// A blob an image refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
}

/// A stored image: manifest, config and layers, all in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The manifest; its digest is the image's digest.
    pub manifest: BlobRef,
    /// The config.
    pub config: BlobRef,
    /// The layers, base first.
    pub layers: Vec<Layer>,
    /// The platform.
    pub platform: Platform,
}

impl Image {
    /// The image digest (the manifest's).
    pub fn digest(&self) -> Digest {
        self.manifest.digest
    }

    /// Every blob of the image: layers, config, manifest.
    pub fn blobs(&self) -> impl Iterator<Item = Digest> + '_ {
        self.layers
            .iter()
            .map(|layer| layer.digest)
            .chain([self.config.digest, self.manifest.digest])
    }
}

impl Platform {
    /// The platform as OCI descriptors write it (`{"architecture": "arm64", "os": "linux",
    /// "variant": "v8"}`).
    pub fn descriptor(self) -> Value {
        match self {
            Platform::LinuxAmd64 => serde_json::json!({"architecture": "amd64", "os": "linux"}),
            Platform::LinuxArm64 => {
                serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
            }
        }
    }
}

/// The OCI image index media type.
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// The images of one service for several platforms, and the OCI image index that lists them,
/// each with its `platform` (what `docker pull` picks from): stored in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageIndex {
    /// The index; its digest is what a multi-platform reference resolves to.
    pub index: BlobRef,
    /// The images, in the index's order.
    pub images: Vec<Image>,
}

impl ImageIndex {
    /// Write the index of `images` (already stored) into `cache`.
    pub fn store(cache: &Cache, images: Vec<Image>) -> Result<Self, Error> {
        let manifests: Vec<Value> = images
            .iter()
            .map(|image| {
                serde_json::json!({
                    "mediaType": image.manifest.media_type,
                    "digest": image.manifest.digest.to_string(),
                    "size": image.manifest.size,
                    "platform": image.platform.descriptor(),
                })
            })
            .collect();
        let bytes = canonical_json(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX_MEDIA_TYPE,
            "manifests": manifests,
        }))?;
        let digest = cache.put_bytes(&bytes)?;
        Ok(Self {
            index: BlobRef {
                digest,
                size: bytes.len() as u64,
                media_type: OCI_INDEX_MEDIA_TYPE.to_owned(),
            },
            images,
        })
    }

    /// The index's digest.
    pub fn digest(&self) -> Digest {
        self.index.digest
    }

    /// Every blob: each image's, then the index.
    pub fn blobs(&self) -> impl Iterator<Item = Digest> + '_ {
        self.images
            .iter()
            .flat_map(Image::blobs)
            .chain([self.index.digest])
    }
}

fn oci_err(what: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> Error {
    move |err| Error::Oci {
        what,
        message: err.to_string(),
    }
}

impl ImageSpec {
    /// Write the config and manifest into `cache` (the layers must already be there).
    pub fn store(&self, cache: &Cache) -> Result<Image, Error> {
        for layer in &self.layers {
            if cache.get(&layer.layer.digest)?.is_none() {
                return Err(Error::MissingBlob(layer.layer.digest));
            }
        }
        let config_json = canonical_json(&self.config_value()?)?;
        let config_digest = cache.put_bytes(&config_json)?;
        let config = BlobRef {
            digest: config_digest,
            size: config_json.len() as u64,
            media_type: MediaType::ImageConfig.to_string(),
        };
        let layer_descriptors = self
            .layers
            .iter()
            .map(|layer| {
                Descriptor::new(
                    MediaType::from(layer.layer.media_type()),
                    layer.layer.size,
                    layer.layer.digest,
                )
            })
            .collect::<Vec<_>>();
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(
                MediaType::ImageConfig,
                config.size,
                config.digest,
            ))
            .layers(layer_descriptors)
            .build()
            .map_err(oci_err("manifest"))?;
        let manifest_json = canonical_json(&to_value(&manifest)?)?;
        let manifest_digest = cache.put_bytes(&manifest_json)?;
        Ok(Image {
            manifest: BlobRef {
                digest: manifest_digest,
                size: manifest_json.len() as u64,
                media_type: MediaType::ImageManifest.to_string(),
            },
            config,
            layers: self
                .layers
                .iter()
                .map(|layer| layer.layer.clone())
                .collect(),
            platform: self.platform,
        })
    }

    fn config_value(&self) -> Result<Value, Error> {
        let run = &self.run;
        let mut config = ConfigBuilder::default();
        if let Some(user) = &run.user {
            config = config.user(user.clone());
        }
        if let Some(dir) = &run.working_dir {
            config = config.working_dir(dir.clone());
        }
        if !run.env.is_empty() {
            config = config.env(
                run.env
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect::<Vec<_>>(),
            );
        }
        if !run.entrypoint.is_empty() {
            config = config.entrypoint(run.entrypoint.clone());
        }
        if !run.cmd.is_empty() {
            config = config.cmd(run.cmd.clone());
        }
        if !run.exposed_ports.is_empty() {
            config = config.exposed_ports(
                run.exposed_ports
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            );
        }
        if !run.volumes.is_empty() {
            config = config.volumes(run.volumes.iter().cloned().collect::<Vec<_>>());
        }
        if !run.labels.is_empty() {
            config = config.labels(
                run.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<HashMap<_, _>>(),
            );
        }
        if let Some(signal) = &run.stop_signal {
            config = config.stop_signal(signal.clone());
        }
        let created = self.created.rfc3339();
        let history = self
            .layers
            .iter()
            .map(|layer| {
                HistoryBuilder::default()
                    .created(created.clone())
                    .created_by(layer.created_by.clone())
                    .build()
                    .map_err(oci_err("history"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (architecture, variant) = match self.platform {
            Platform::LinuxAmd64 => (Arch::Amd64, None),
            Platform::LinuxArm64 => (Arch::ARM64, Some("v8")),
        };
        let mut image = ImageConfigurationBuilder::default()
            .created(created)
            .architecture(architecture)
            .os(Os::Linux)
            .config(config.build().map_err(oci_err("config"))?)
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(
                        self.layers
                            .iter()
                            .map(|layer| layer.layer.diff_id.to_string())
                            .collect::<Vec<_>>(),
                    )
                    .build()
                    .map_err(oci_err("rootfs"))?,
            )
            .history(history);
        if let Some(variant) = variant {
            image = image.variant(variant);
        }
        let mut value = to_value(&image.build().map_err(oci_err("image config"))?)?;
        if let Some(check) = &run.healthcheck
            && let Some(config) = value.get_mut("config").and_then(Value::as_object_mut)
        {
            config.insert("Healthcheck".into(), check.to_json());
        }
        Ok(value)
    }
}

fn to_value(value: &impl serde::Serialize) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|err| Error::Oci {
        what: "JSON",
        message: err.to_string(),
    })
}

/// JSON with object keys sorted at every level and no insignificant whitespace, so the same
/// value always gives the same bytes (whatever map type or feature flags produced it).
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, Error> {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for key in keys {
                    out.insert(key.clone(), sorted(&map[key]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // Serialise through a writer that emits keys in the order of a sorted Vec, independent of
    // serde_json's `preserve_order` feature.
    let mut out = Vec::new();
    write_canonical(&sorted(value), &mut out)?;
    Ok(out)
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    let json_err = |err: serde_json::Error| Error::Oci {
        what: "JSON",
        message: err.to_string(),
    };
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).map_err(json_err)?;
                out.push(b':');
                write_canonical(item, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).map_err(json_err)?,
    }
    Ok(())
}

/// A name and tag to publish an image under, e.g. `example.com/team/app:1.2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    name: String,
    tag: String,
}

impl ImageRef {
    /// The repository name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    /// `NAME[:TAG]`; the tag defaults to `latest`.
    fn from_str(text: &str) -> Result<Self, Error> {
        let bad = || Error::BadTag(text.to_owned());
        let (name, tag) = match text.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (text, "latest"),
        };
        let name_ok = !name.is_empty()
            && name.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-:".contains(&b)
                    })
            });
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !name_ok || !tag_ok {
            return Err(bad());
        }
        Ok(Self {
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys() {
        let value: Value = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": "x"}});
        assert_eq!(
            String::from_utf8(canonical_json(&value).unwrap()).unwrap(),
            r#"{"a":{"c":"x","d":[1,{"y":1,"z":0}]},"b":1}"#
        );
    }

    #[test]
    fn parses_image_refs() {
        let r: ImageRef = "app".parse().unwrap();
        assert_eq!(r.to_string(), "app:latest");
        let r: ImageRef = "localhost:5000/team/app:v1.2".parse().unwrap();
        assert_eq!((r.name(), r.tag()), ("localhost:5000/team/app", "v1.2"));
        for bad in ["", "App:1", "app:", "app:-x", "a b"] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad}");
        }
    }
}
