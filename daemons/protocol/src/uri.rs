//! Where a job's inputs or result live.
//!
//! Three forms: `blob:<sha256 hex>` (stored by the broker, fetched with
//! `getProofData`), `data:application/octet-stream;base64,<...>` (inline, for
//! small payloads), and any other URI, which is passed through untouched for
//! stores the broker does not manage.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::job::sha256;

const BLOB_PREFIX: &str = "blob:";
const DATA_PREFIX: &str = "data:application/octet-stream;base64,";

/// A location of proof inputs or outputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProofUri(String);

/// What a [`ProofUri`] points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriKind {
    /// A content-addressed blob held by the broker.
    Blob([u8; 32]),
    /// Inline bytes.
    Inline(Vec<u8>),
    /// Some other store.
    External,
}

/// A URI that claims a scheme we manage but is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed proof URI {0:?}: {1}")]
pub struct MalformedUri(pub String, pub &'static str);

impl ProofUri {
    /// The URI of the broker blob with this digest.
    pub fn blob(digest: &[u8; 32]) -> ProofUri {
        ProofUri(format!("{BLOB_PREFIX}{}", hex::encode(digest)))
    }

    /// The URI of the broker blob holding `data`.
    pub fn blob_of(data: &[u8]) -> ProofUri {
        ProofUri::blob(&sha256(data))
    }

    /// An inline URI carrying `data`.
    pub fn inline(data: &[u8]) -> ProofUri {
        ProofUri(format!("{DATA_PREFIX}{}", BASE64.encode(data)))
    }

    /// Wraps text received from outside without checking it; see [`ProofUri::kind`].
    pub fn from_text(s: impl Into<String>) -> ProofUri {
        ProofUri(s.into())
    }

    /// Classifies the URI, checking the forms we manage.
    pub fn kind(&self) -> Result<UriKind, MalformedUri> {
        let short = || self.0.chars().take(120).collect::<String>();
        if let Some(hexpart) = self.0.strip_prefix(BLOB_PREFIX) {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hexpart, &mut digest)
                .map_err(|_| MalformedUri(short(), "a blob URI needs 64 hex digits"))?;
            Ok(UriKind::Blob(digest))
        } else if let Some(b64) = self.0.strip_prefix(DATA_PREFIX) {
            BASE64
                .decode(b64)
                .map(UriKind::Inline)
                .map_err(|_| MalformedUri(short(), "inline data is not valid base64"))
        } else if self.0.starts_with("data:") {
            Err(MalformedUri(
                short(),
                "only application/octet-stream;base64 data URIs are supported",
            ))
        } else if self.0.is_empty() {
            Err(MalformedUri(String::new(), "empty URI"))
        } else {
            Ok(UriKind::External)
        }
    }

    /// The URI as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProofUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() > 80 {
            write!(
                f,
                "{}...",
                &self.0[..self
                    .0
                    .char_indices()
                    .nth(77)
                    .map_or(self.0.len(), |(i, _)| i)]
            )
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Encodes bytes as standard base64 (the form byte payloads take in JSON).
pub fn to_base64(data: &[u8]) -> String {
    BASE64.encode(data)
}

/// Decodes standard base64.
pub fn from_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    BASE64.decode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_and_inline_uris_round_trip() {
        let data = b"some proof inputs";
        assert_eq!(
            ProofUri::blob_of(data).kind(),
            Ok(UriKind::Blob(sha256(data)))
        );
        assert_eq!(
            ProofUri::inline(data).kind(),
            Ok(UriKind::Inline(data.to_vec()))
        );
        assert_eq!(
            ProofUri::from_text("gs://bucket/x").kind(),
            Ok(UriKind::External)
        );
    }

    #[test]
    fn malformed_managed_uris_are_refused() {
        assert!(ProofUri::from_text("blob:1234").kind().is_err());
        assert!(
            ProofUri::from_text("data:application/octet-stream;base64,@@")
                .kind()
                .is_err()
        );
        assert!(ProofUri::from_text("data:text/plain,hi").kind().is_err());
        assert!(ProofUri::from_text("").kind().is_err());
    }
}
