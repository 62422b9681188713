//! Layer compression on every core, reproducibly: the input is cut into fixed-size chunks (by
//! position, never by timing or thread count) and each chunk becomes one gzip member or one
//! zstd frame, compressed on its own thread while the caller keeps writing; they are written in
//! order. A gzip file may hold several members (RFC 1952 §2.2) and a zstd stream several frames
//! (RFC 8878 §3.1): Docker, containerd, Podman, `gzip -d`/`zstd -d` and flate2's
//! `MultiGzDecoder` or the zstd crate's decoder read them as one stream. The same input gives
//! the same bytes on any machine.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::str::FromStr;
use std::thread::JoinHandle;

/// Uncompressed bytes per member or frame: big enough that the ratio stays within a fraction
/// of a percent of one stream, small enough that a 3 MB layer still uses two cores.
pub const CHUNK: usize = 1 << 20;

/// The gzip level of gzip layers (pinned so digests are reproducible).
const GZIP_LEVEL: u32 = 6;

/// The zstd level of zstd layers (zstd's default; pinned so digests are reproducible).
const ZSTD_LEVEL: i32 = 3;

/// How a layer blob is compressed. Gzip is the default because every engine and registry
/// reads it; zstd (Docker 23+, containerd 1.5+, Podman) is smaller and faster to decompress.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// `application/vnd.oci.image.layer.v1.tar+gzip`, level 6, 1 MiB members.
    #[default]
    Gzip,
    /// `application/vnd.oci.image.layer.v1.tar+zstd`, level 3, 1 MiB frames.
    Zstd,
}

/// A compression name that is not `gzip` or `zstd`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression `{0}` (expected `gzip` or `zstd`)")]
pub struct UnknownCompression(pub String);

impl Compression {
    /// Its name, as `--compression` and `[tool.terrarium] compression` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// The compression of a layer blob from its media type (OCI or Docker), if it names one.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
            Some(Compression::Zstd)
        } else if media_type.ends_with("+gzip") || media_type.ends_with(".gzip") {
            Some(Compression::Gzip)
        } else {
            None
        }
    }

    /// The compression of a blob from its first bytes; `None` for an uncompressed tar.
    pub fn detect(magic: &[u8]) -> Option<Self> {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    /// Everything that decides the bytes (level and chunk size): the cache keeps remembered
    /// layers under it, so a change of format never mixes old blobs into new images.
    pub(crate) fn format(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip6-members1m",
            Compression::Zstd => "zstd3-frames1m",
        }
    }

    /// A reader of the uncompressed stream of `compressed` (every member or frame).
    pub fn decoder<'a, R: BufRead + 'a>(self, compressed: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(compressed)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(compressed)?),
        })
    }

    /// One member or frame of `data`. Gzip: no name, mtime 0, OS "unknown"; zstd: the content
    /// size in the frame header, no checksum (the blob digest covers it).
    fn chunk(self, data: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Compression::Gzip => {
                let mut encoder = flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(
                        Vec::with_capacity(data.len() / 2 + 64),
                        flate2::Compression::new(GZIP_LEVEL),
                    );
                encoder.write_all(data)?;
                encoder.finish()
            }
            Compression::Zstd => zstd::bulk::compress(data, ZSTD_LEVEL),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = UnknownCompression;

    fn from_str(text: &str) -> Result<Self, UnknownCompression> {
        match text {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => Err(UnknownCompression(other.to_owned())),
        }
    }
}

/// A writer compressing [`CHUNK`]-sized members or frames in parallel;
/// [`finish`](Self::finish) returns the inner writer.
pub struct ParallelEncoder<W: Write> {
    inner: W,
    compression: Compression,
    buffer: Vec<u8>,
    running: VecDeque<JoinHandle<io::Result<Vec<u8>>>>,
    parallel: usize,
    chunks: usize,
}

impl<W: Write> ParallelEncoder<W> {
    /// Compress into `inner`, on as many threads as the machine has cores (at most four; the
    /// bytes do not depend on it).
    pub fn new(inner: W, compression: Compression) -> Self {
        let parallel = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4);
        Self {
            inner,
            compression,
            buffer: Vec::with_capacity(CHUNK),
            running: VecDeque::new(),
            parallel,
            chunks: 0,
        }
    }

    /// Start compressing the buffered chunk; write finished chunks while too many run.
    fn dispatch(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        let compression = self.compression;
        self.running
            .push_back(std::thread::spawn(move || compression.chunk(&chunk)));
        self.chunks += 1;
        while self.running.len() > self.parallel {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(handle) = self.running.pop_front() {
            let compressed = handle
                .join()
                .map_err(|_| io::Error::other("a compression thread panicked"))??;
            self.inner.write_all(&compressed)?;
        }
        Ok(())
    }

    /// Compress what is left, write every chunk in order and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buffer.is_empty() || self.chunks == 0 {
            self.dispatch()?;
        }
        while !self.running.is_empty() {
            self.write_oldest()?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParallelEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let taken = room.min(buf.len());
        self.buffer.extend_from_slice(&buf[..taken]);
        if self.buffer.len() == CHUNK {
            self.dispatch()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivially: a repeating text with a counter.
        let mut out = Vec::with_capacity(len);
        let mut i = 0u64;
        while out.len() < len {
            out.extend_from_slice(format!("line {i} of the sample, {}\n", i % 97).as_bytes());
            i += 1;
        }
        out.truncate(len);
        out
    }

    fn compress(compression: Compression, data: &[u8], parallel: usize, step: usize) -> Vec<u8> {
        let mut encoder = ParallelEncoder::new(Vec::new(), compression);
        encoder.parallel = parallel;
        for piece in data.chunks(step) {
            encoder.write_all(piece).unwrap();
        }
        encoder.finish().unwrap()
    }

    #[test]
    fn round_trips_and_is_independent_of_threads_and_write_sizes() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345] {
                let data = sample(len);
                let one = compress(compression, &data, 1, 4096);
                let four = compress(compression, &data, 4, 7919);
                assert_eq!(
                    one, four,
                    "{compression} len {len}: same bytes whatever the threads"
                );
                let mut back = Vec::new();
                compression
                    .decoder(&one[..])
                    .unwrap()
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, data, "{compression} len {len}");
                assert_eq!(Compression::detect(&one), Some(compression));
            }
        }
    }

    #[test]
    fn a_single_chunk_is_plain_gzip_or_one_zstd_frame() {
        let data = sample(1000);
        let ours = compress(Compression::Gzip, &data, 2, 100);
        let mut reference = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), flate2::Compression::new(6));
        reference.write_all(&data).unwrap();
        assert_eq!(ours, reference.finish().unwrap());

        let ours = compress(Compression::Zstd, &data, 2, 100);
        assert_eq!(ours, zstd::bulk::compress(&data, 3).unwrap());
        assert_eq!(zstd::decode_all(&ours[..]).unwrap(), data);
    }

    #[test]
    fn names_and_media_types_round_trip() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            assert_eq!(compression.name().parse::<Compression>(), Ok(compression));
            assert_eq!(
                Compression::from_media_type(compression.media_type()),
                Some(compression)
            );
        }
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(
            "xz".parse::<Compression>().unwrap_err().to_string(),
            "unknown compression `xz` (expected `gzip` or `zstd`)"
        );
    }
}
