//! The sha256 [`Digest`] used for every blob, layer, config and manifest, and a hashing writer.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A sha256 content digest, written `sha256:<64 lowercase hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// A digest from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix (the blob file name).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits without the `sha256:` prefix (as Debian indices write them).
    pub fn from_hex(text: &str) -> Result<Self, DigestParseError> {
        let mut bytes = [0u8; 32];
        if text.len() != 64 {
            return Err(DigestParseError(text.to_owned()));
        }
        hex::decode_to_slice(text, &mut bytes).map_err(|_| DigestParseError(text.to_owned()))?;
        Ok(Self(bytes))
    }

    /// The digest of everything `reader` yields, read to its end.
    pub fn of_reader(mut reader: impl io::Read) -> io::Result<(Self, u64)> {
        let mut writer = HashingWriter::new(io::sink());
        io::copy(&mut reader, &mut writer)?;
        let (digest, size, _) = writer.finish();
        Ok((digest, size))
    }
}

/// A string that is not a `sha256:<hex>` digest.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a sha256 digest (expected `sha256:` and 64 hex digits)")]
pub struct DigestParseError(String);

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| DigestParseError(text.to_owned()))?;
        Self::from_hex(hex).map_err(|_| DigestParseError(text.to_owned()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl From<Digest> for oci_spec::image::Digest {
    fn from(digest: Digest) -> Self {
        oci_spec::image::Sha256Digest::from_str(&digest.hex())
            .map(Into::into)
            .unwrap_or_else(|_| unreachable!("64 lowercase hex digits are a valid sha256 digest"))
    }
}

/// A writer that passes bytes through to `inner` while hashing and counting them.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W> HashingWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The digest and count of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (
            Digest(self.hasher.finalize().into()),
            self.written,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest_round_trips() {
        let digest = Digest::of(b"");
        let text = digest.to_string();
        assert_eq!(
            text,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(text.parse::<Digest>().unwrap(), digest);
        let oci: oci_spec::image::Digest = digest.into();
        assert_eq!(oci.to_string(), text);
    }

    #[test]
    fn rejects_malformed_digests() {
        for bad in ["", "sha256:", "sha256:zz", "md5:00", &"a".repeat(64)] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
        assert!(Digest::from_hex(&"A".repeat(63)).is_err());
    }
}
