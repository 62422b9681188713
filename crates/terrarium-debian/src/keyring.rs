//! The Debian archive signing keys shipped inside terrarium, and InRelease verification.
//!
//! The keys come from Debian's `debian-archive-keyring` package (2023.3+deb12u2,
//! `/etc/apt/trusted.gpg.d/`): the automatic archive keys and the stable release keys for
//! bookworm and trixie, and the security archive keys. See `keys/COPYRIGHT`.

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::Signature;
use pgp::types::{Fingerprint, KeyDetails, KeyId};

use crate::error::Error;

const KEYS: &[(&str, &[u8])] = &[
    (
        "Debian Archive Automatic Signing Key (12/bookworm)",
        include_bytes!("../keys/debian-archive-bookworm-automatic.asc"),
    ),
    (
        "Debian Security Archive Automatic Signing Key (12/bookworm)",
        include_bytes!("../keys/debian-archive-bookworm-security-automatic.asc"),
    ),
    (
        "Debian Stable Release Key (12/bookworm)",
        include_bytes!("../keys/debian-archive-bookworm-stable.asc"),
    ),
    (
        "Debian Archive Automatic Signing Key (13/trixie)",
        include_bytes!("../keys/debian-archive-trixie-automatic.asc"),
    ),
    (
        "Debian Security Archive Automatic Signing Key (13/trixie)",
        include_bytes!("../keys/debian-archive-trixie-security-automatic.asc"),
    ),
    (
        "Debian Stable Release Key (13/trixie)",
        include_bytes!("../keys/debian-archive-trixie-stable.asc"),
    ),
];

/// A key that may sign: a primary key, or a signing subkey whose binding to its primary key
/// verified.
#[derive(Debug)]
enum SigningKey {
    Primary(SignedPublicKey),
    Sub(SignedPublicSubKey),
}

impl SigningKey {
    fn ids(&self) -> (Fingerprint, KeyId) {
        match self {
            SigningKey::Primary(key) => (key.fingerprint(), key.legacy_key_id()),
            SigningKey::Sub(key) => (key.fingerprint(), key.legacy_key_id()),
        }
    }

    fn verify(&self, signature: &Signature, data: &[u8]) -> pgp::errors::Result<()> {
        match self {
            SigningKey::Primary(key) => signature.verify(key, data),
            SigningKey::Sub(key) => signature.verify(key, data),
        }
    }
}

/// The trusted Debian archive keys.
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<(String, SigningKey)>,
}

impl Keyring {
    /// The keys embedded in terrarium. (Their user IDs also carry certifications by other
    /// Debian keys that are not shipped, so bindings are not re-verified here; the keys are
    /// trusted because they are compiled in from Debian's keyring package.)
    pub fn debian() -> Result<Self, Error> {
        let mut keys = Vec::new();
        for (name, armored) in KEYS {
            let bad = |reason: String| Error::BadSignature {
                suite: "(embedded keyring)".into(),
                reason: format!("cannot load `{name}`: {reason}"),
            };
            let (key, _) =
                SignedPublicKey::from_armor_single(*armored).map_err(|e| bad(e.to_string()))?;
            for subkey in &key.public_subkeys {
                // Only subkeys bound to their primary key by a valid signature are trusted.
                if subkey.verify_bindings(&key.primary_key).is_ok() {
                    keys.push(((*name).to_owned(), SigningKey::Sub(subkey.clone())));
                }
            }
            keys.push(((*name).to_owned(), SigningKey::Primary(key)));
        }
        Ok(Self { keys })
    }

    /// Names of the trusted keys.
    pub fn key_names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(name, _)| name.as_str())
    }

    /// Verify a clear-signed `InRelease` for `suite` and return the signed text (LF line
    /// endings). At least one signature must come from a trusted key and verify, and no
    /// signature from a trusted key may fail; signatures by other keys are ignored.
    /// Only the signed text is returned, so nothing outside the signature is ever parsed.
    pub fn verify_inrelease(&self, bytes: &[u8], suite: &str) -> Result<String, Error> {
        let bad = |reason: String| Error::BadSignature {
            suite: suite.to_owned(),
            reason,
        };
        let text =
            std::str::from_utf8(bytes).map_err(|_| bad("InRelease is not UTF-8 text".into()))?;
        let (message, _) = CleartextSignedMessage::from_string(text)
            .map_err(|err| bad(format!("not a clear-signed OpenPGP message ({err})")))?;
        let signed = message.signed_text();
        let mut good = Vec::new();
        for signature in message.signatures() {
            let issuers: Vec<_> = signature
                .issuer_fingerprint()
                .into_iter()
                .cloned()
                .collect();
            let issuer_ids: Vec<_> = signature.issuer_key_id().into_iter().cloned().collect();
            let trusted = self.keys.iter().find(|(_, key)| {
                let (fingerprint, key_id) = key.ids();
                issuers.contains(&fingerprint) || issuer_ids.contains(&key_id)
            });
            let Some((name, key)) = trusted else {
                continue;
            };
            key.verify(signature, signed.as_bytes())
                .map_err(|err| bad(format!("signature by `{name}` does not verify ({err})")))?;
            good.push(name);
        }
        if good.is_empty() {
            return Err(bad("no signature by a trusted Debian archive key".into()));
        }
        Ok(signed.replace("\r\n", "\n"))
    }
}
