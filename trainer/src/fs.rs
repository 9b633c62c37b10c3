//! The one atomic file writer behind every file the trainer and the `dkp` tool write.
//!
//! A model, checkpoint or chart is written to a temporary file in the destination's
//! folder, synced, and renamed over the destination, so a reader (a resuming run, `dkp
//! eval`, a browser) sees the old file or the whole new one, never half of either — even
//! if the writer is killed midway.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// What to do when the destination already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace it (run outputs, checkpoints, `--force`).
    Replace,
    /// Leave it alone and fail; the check and the rename are one step, so a file that
    /// appears while the bytes are being written is not replaced either.
    Refuse,
}

impl Overwrite {
    /// [`Overwrite::Replace`] when `force` is set, as the `--force` flags mean.
    pub fn forced(force: bool) -> Overwrite {
        if force {
            Overwrite::Replace
        } else {
            Overwrite::Refuse
        }
    }
}

/// Writes `bytes` to `path` atomically, creating its folder if needed. Errors are
/// [`Error::Write`] naming `path`; on any error `path` is as it was and no temporary file
/// is left behind.
pub fn write_atomically(path: &Path, overwrite: Overwrite, bytes: &[u8]) -> Result<()> {
    let fail = |source: std::io::Error| Error::Write { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    // Named after the destination, so a file left by a killed writer says what it was.
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp =
        tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir).map_err(fail)?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_all()).map_err(fail)?;
    let persisted = match overwrite {
        Overwrite::Replace => tmp.persist(path),
        Overwrite::Refuse => tmp.persist_noclobber(path),
    };
    persisted.map_err(|e| fail(e.error))?;
    // The rename itself is durable only once the folder is synced; a folder that cannot be
    // opened for that (some platforms) still holds the complete file.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_or_refuses_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/m.st");
        write_atomically(&path, Overwrite::Refuse, b"one").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one", "the folder is created");
        let e = write_atomically(&path, Overwrite::Refuse, b"two").unwrap_err();
        assert!(
            matches!(&e, Error::Write { path: p, source } if *p == path && source.kind() == std::io::ErrorKind::AlreadyExists),
            "{e:?}"
        );
        assert!(e.to_string().contains("m.st"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"one", "a refused write leaves the file alone");
        write_atomically(&path, Overwrite::Replace, b"three").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        assert_eq!(entries(&dir.path().join("sub")), ["m.st"]);
    }

    #[test]
    fn a_failed_write_names_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the folder should be.
        std::fs::write(dir.path().join("f"), b"").unwrap();
        let path = dir.path().join("f/m.st");
        let e = write_atomically(&path, Overwrite::Replace, b"x").unwrap_err();
        assert!(matches!(&e, Error::Write { path: p, .. } if *p == path), "{e:?}");
        assert_eq!(entries(dir.path()), ["f"]);
    }
}
