//! A node's P2P identity: an ed25519 key kept in its data directory, made
//! on first start (mode 0600), so a restarted node keeps its peer id.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use libp2p::PeerId;
use libp2p::identity::Keypair;

/// The file, in the data directory, that holds the key.
pub const KEY_FILE: &str = "p2p-identity.key";

/// Why the identity could not be had.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file holds no key this version can read.
    #[error("{path} does not hold a P2P key ({why}); move it away to make a new identity")]
    Corrupt {
        /// The key file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Others may read the key.
    #[error("{path} may be read by others (mode {mode:o}); chmod 600 it")]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
}

/// The key kept in `dir`, if there is one (nothing is written).
pub fn load(dir: &Path) -> Result<Option<Keypair>, IdentityError> {
    let path = dir.join(KEY_FILE);
    let io = |error| IdentityError::Io {
        path: path.clone(),
        error,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(IdentityError::Exposed { path, mode });
            }
            let key =
                Keypair::from_protobuf_encoding(&bytes).map_err(|e| IdentityError::Corrupt {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

/// The key in `dir`, made (and written, mode 0600) when there is none.
/// Returns it and whether it was made now.
pub fn load_or_create(dir: &Path) -> Result<(Keypair, bool), IdentityError> {
    let path = dir.join(KEY_FILE);
    let io = |error| IdentityError::Io {
        path: path.clone(),
        error,
    };
    match load(dir)? {
        Some(key) => Ok((key, false)),
        None => {
            std::fs::create_dir_all(dir).map_err(io)?;
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| io(std::io::Error::other(e)))?;
            // Written whole under a temporary name, then renamed: a crash
            // leaves either no key or the whole key.
            let tmp = dir.join(format!("{KEY_FILE}.new"));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
            Ok((key, true))
        }
    }
}

/// The peer id of `key`.
pub fn peer_id(key: &Keypair) -> PeerId {
    key.public().to_peer_id()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (a, made) = load_or_create(dir.path()).unwrap();
        assert!(made);
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (b, made) = load_or_create(dir.path()).unwrap();
        assert!(!made);
        assert_eq!(peer_id(&a), peer_id(&b));

        std::fs::set_permissions(
            dir.path().join(KEY_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(IdentityError::Exposed { .. })
        ));
        std::fs::write(dir.path().join(KEY_FILE), b"not a key").unwrap();
        std::fs::set_permissions(
            dir.path().join(KEY_FILE),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let e = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("does not hold a P2P key"), "{e}");
    }
}
