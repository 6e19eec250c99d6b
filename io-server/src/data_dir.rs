//! The data directory holds fiscal codes, profiles and message content in clear (the store)
//! and the server's secrets: it is private to the user running the server, whatever the umask.
//! The directory is created `0700` and every file in it made `0600`; a directory that other
//! users can write to is refused, since someone else could have placed or replaced files in it.

use std::io;
use std::path::{Path, PathBuf};

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Creating, reading or restricting it failed.
    #[error("data directory {path}: {source}")]
    Io {
        /// The path at fault.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Not a directory.
    #[error("data directory {0} is not a directory")]
    NotADirectory(PathBuf),
    /// Group or other users may write to it.
    #[error(
        "data directory {path} is writable by other users (mode {mode:o}); make it private with `chmod 700 {path}` after checking its contents"
    )]
    WritableByOthers {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `path` (and missing parents) private to the owner, or checks an existing one: refused
/// when group or others may write to it, tightened to `0700` (with a warning) when they may
/// only read it.
pub fn prepare(path: &Path) -> Result<(), DataDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if path.exists() && !path.is_dir() {
            return Err(DataDirError::NotADirectory(path.to_path_buf()));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(io_error(path))?;
        let metadata = std::fs::metadata(path).map_err(io_error(path))?;
        if !metadata.is_dir() {
            return Err(DataDirError::NotADirectory(path.to_path_buf()));
        }
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(DataDirError::WritableByOthers {
                path: path.to_path_buf(),
                mode,
            });
        }
        if mode != 0o700 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the data directory was readable by other users; restricted to 0700");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(io_error(path))?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(path).map_err(io_error(path))?;
    Ok(())
}

/// Makes every file under `path` `0600` and every directory `0700` (the store's files are
/// created by sled with the process's umask).
pub fn restrict_contents(path: &Path) -> Result<(), DataDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let entries = std::fs::read_dir(path).map_err(io_error(path))?;
        for entry in entries {
            let entry = entry.map_err(io_error(path))?;
            let child = entry.path();
            // Not followed: a symbolic link's target is not ours to change.
            let kind = entry.file_type().map_err(io_error(&child))?;
            let wanted = if kind.is_dir() {
                restrict_contents(&child)?;
                0o700
            } else if kind.is_file() {
                0o600
            } else {
                continue;
            };
            let mode = entry
                .metadata()
                .map_err(io_error(&child))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&child, std::fs::Permissions::from_mode(wanted))
                    .map_err(io_error(&child))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_directory_is_private_and_an_open_one_is_refused_or_tightened() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("a/b/data");
        prepare(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        for open in [0o777, 0o770, 0o702] {
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(open)).unwrap();
            let error = prepare(&data).unwrap_err();
            assert!(
                matches!(error, DataDirError::WritableByOthers { .. }),
                "{error}"
            );
            assert!(error.to_string().contains("chmod 700"), "{error}");
        }
        let file = root.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            prepare(&file),
            Err(DataDirError::NotADirectory(_))
        ));
    }

    #[test]
    fn contents_become_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let nested = root.path().join("store/blobs");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::set_permissions(&nested, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = nested.join("db");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict_contents(root.path()).unwrap();
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(&file), 0o600);
    }
}
