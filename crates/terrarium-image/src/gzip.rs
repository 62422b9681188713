//! Gzip on every core, reproducibly: the input is cut into fixed-size chunks (by position, never
//! by timing or thread count) and each chunk becomes one gzip member, compressed on its own
//! thread while the caller keeps writing; members are written in order. A gzip file may hold
//! several members (RFC 1952 §2.2): Docker, containerd, Podman, `gzip -d` and flate2's
//! `MultiGzDecoder` read them as one stream. The same input gives the same bytes on any
//! machine.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::JoinHandle;

use flate2::Compression;

/// Uncompressed bytes per member: big enough that the ratio stays within a fraction of a
/// percent of one stream, small enough that a 3 MB layer still uses two cores.
pub const CHUNK: usize = 1 << 20;

/// A gzip writer compressing [`CHUNK`]-sized members in parallel; [`finish`](Self::finish)
/// returns the inner writer.
pub struct ParallelGzEncoder<W: Write> {
    inner: W,
    level: u32,
    buffer: Vec<u8>,
    running: VecDeque<JoinHandle<io::Result<Vec<u8>>>>,
    parallel: usize,
    members: usize,
}

/// One gzip member of `data`: no name, mtime 0, OS "unknown", as every member.
fn member(data: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(
            Vec::with_capacity(data.len() / 2 + 64),
            Compression::new(level),
        );
    encoder.write_all(data)?;
    encoder.finish()
}

impl<W: Write> ParallelGzEncoder<W> {
    /// Compress into `inner` at `level`, on as many threads as the machine has cores (at most
    /// four; the bytes do not depend on it).
    pub fn new(inner: W, level: u32) -> Self {
        let parallel = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4);
        Self {
            inner,
            level,
            buffer: Vec::with_capacity(CHUNK),
            running: VecDeque::new(),
            parallel,
            members: 0,
        }
    }

    /// Start compressing the buffered chunk; write finished members while too many run.
    fn dispatch(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        let level = self.level;
        self.running
            .push_back(std::thread::spawn(move || member(&chunk, level)));
        self.members += 1;
        while self.running.len() > self.parallel {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(handle) = self.running.pop_front() {
            let compressed = handle
                .join()
                .map_err(|_| io::Error::other("a gzip thread panicked"))??;
            self.inner.write_all(&compressed)?;
        }
        Ok(())
    }

    /// Compress what is left, write every member in order and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buffer.is_empty() || self.members == 0 {
            self.dispatch()?;
        }
        while !self.running.is_empty() {
            self.write_oldest()?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
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
    use std::io::Read;

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

    fn compress(data: &[u8], parallel: usize, step: usize) -> Vec<u8> {
        let mut encoder = ParallelGzEncoder::new(Vec::new(), 6);
        encoder.parallel = parallel;
        for piece in data.chunks(step) {
            encoder.write_all(piece).unwrap();
        }
        encoder.finish().unwrap()
    }

    #[test]
    fn round_trips_and_is_independent_of_threads_and_write_sizes() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345] {
            let data = sample(len);
            let one = compress(&data, 1, 4096);
            let four = compress(&data, 4, 7919);
            assert_eq!(one, four, "len {len}: same bytes whatever the threads");
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&one[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "len {len}");
            assert_eq!(&one[..2], &[0x1f, 0x8b]);
        }
    }

    #[test]
    fn a_single_chunk_is_plain_gzip() {
        let data = sample(1000);
        let ours = compress(&data, 2, 100);
        let mut reference = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), Compression::new(6));
        reference.write_all(&data).unwrap();
        assert_eq!(ours, reference.finish().unwrap());
    }
}
