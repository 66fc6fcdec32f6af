//! One daemon per data directory: an exclusive lock on `<dir>/lock`, held
//! for the life of the process (the kernel drops it when the process ends,
//! however it ends), taken before anything in the directory is read or
//! written. The holder's pid is written in the file, so that a second
//! daemon can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A held lock on a data directory; dropping it releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Locks `dir` (created if missing) for a daemon named `what`; the error
    /// names the directory and, when another process holds it, its pid.
    pub fn acquire(dir: &Path, what: &str) -> Result<DirLock, String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the {what} data directory {}: {e}",
                dir.display()
            )
        })?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(format!(
                    "the {what} data directory {} is in use by another process{}: one {what} per directory",
                    dir.display(),
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {holder})")
                    }
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        // Ours now: say who we are.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_naming_the_first_and_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), "broker").unwrap();
        let e = DirLock::acquire(dir.path(), "broker").unwrap_err();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        assert!(
            DirLock::acquire(dir.path(), "broker").is_ok(),
            "released on drop"
        );
    }
}
