//! Atomic file writes for checkpoints and state files.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// How old the temporary file of another process must be to count as abandoned
/// where the process table cannot be read (not Linux).
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);

/// Writes `bytes` to `path` atomically: a temporary file `.<name>.tmp-<pid>` in the
/// same directory is written, flushed to disk, then renamed over `path`, so a crash
/// leaves either the old file or the new one, never a torn one. Temporary files of
/// `path` left by killed processes are deleted first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.tmp-");
    remove_stale_temps(dir, &prefix);
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Deletes the files `<prefix><pid>` in `dir` whose process is gone (best effort: a
/// file that cannot be deleted stays).
fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_may_live(pid, &entry) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` may still be writing `entry`: from `/proc` where there is
/// one, else by the file's age.
fn process_may_live(pid: u32, entry: &std::fs::DirEntry) -> bool {
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return proc.join(pid.to_string()).exists();
    }
    let age = entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    age.is_none_or(|a| a < STALE_TEMP_AGE)
}

/// Checks that files can be created in `dir` by creating and deleting a small one,
/// so that a run learns before any work that it could not save its results.
pub fn check_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".coptim-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| Error::NotWritable {
            path: dir.display().to_string(),
            source,
        })
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_of_dead_processes_are_removed_on_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.safetensors");
        // Linux pids stop at 2^22, so this process never existed; pid 1 always lives.
        let dead = dir.path().join(".checkpoint.safetensors.tmp-4194400");
        let live = dir.path().join(".checkpoint.safetensors.tmp-1");
        let other = dir.path().join(".metrics.csv.tmp-4194400");
        for f in [&dead, &live, &other] {
            std::fs::write(f, b"torn").unwrap();
        }
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(!dead.exists(), "the dead process's file is gone");
        assert!(live.exists(), "a live process's file is kept");
        assert!(other.exists(), "another file's temporaries are not touched");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn an_unwritable_directory_is_reported() {
        let err = check_writable(Path::new("/nonexistent-coptim-dir")).unwrap_err();
        assert!(matches!(err, Error::NotWritable { .. }), "{err}");
    }
}
