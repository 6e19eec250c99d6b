//! The server's secrets, kept in the data directory, never in the store: API keys are derived
//! from `key_derivation` and only their hashes are stored, so a copy of the database (a sled
//! directory backup, a PostgreSQL dump) reveals no key; citizen tokens are signed with
//! `token_signing`. Generated on first start; files are created readable by the owner only.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The two server secrets.
#[derive(Clone, Serialize, Deserialize)]
pub struct Secrets {
    /// Derives every service's API keys (HMAC-SHA256).
    pub key_derivation: String,
    /// Signs citizen tokens (HS256).
    pub token_signing: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// A random 256-bit secret as hex.
pub fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

/// Writes `contents` to a new file readable by its owner only; fails if it exists.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Creates `path` with `contents` (owner-only) unless it exists, atomically: the file appears
/// whole or not at all, and of several processes starting together on one data directory (a
/// PostgreSQL deployment) exactly one writes it. Returns the contents in force: `contents`,
/// or what the first writer wrote.
pub fn create_once(path: &Path, contents: &[u8]) -> io::Result<Vec<u8>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary =
        path.with_file_name(format!(".{name}.{}.{}", std::process::id(), random_hex(4)));
    write_private(&temporary, contents)?;
    let linked = fs::hard_link(&temporary, path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(contents.to_vec()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => fs::read(path),
        Err(error) => Err(error),
    }
}

impl Secrets {
    /// Reads `<dir>/secrets.json`, creating it on first start.
    pub fn load_or_create(dir: &Path) -> io::Result<Self> {
        let path = dir.join("secrets.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let secrets = Self {
                    key_derivation: random_hex(32),
                    token_signing: random_hex(32),
                };
                let json = serde_json::to_vec_pretty(&secrets).map_err(io::Error::other)?;
                let in_force = create_once(&path, &json)?;
                serde_json::from_slice(&in_force).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })
            }
            Err(error) => Err(error),
        }
    }
}

/// The admin token: from the configuration, else `<dir>/admin-token`, else a new one written
/// there. Returns the token and whether it was just generated (the caller prints it once).
pub fn admin_token(configured: Option<&str>, dir: &Path) -> io::Result<(String, bool)> {
    if let Some(token) = configured.filter(|t| !t.trim().is_empty()) {
        return Ok((token.trim().to_string(), false));
    }
    let path = dir.join("admin-token");
    match fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => Ok((token.trim().to_string(), false)),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is empty", path.display()),
        )),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let token = random_hex(24);
            let in_force = create_once(&path, token.as_bytes())?;
            let generated = in_force == token.as_bytes();
            Ok((
                String::from_utf8_lossy(&in_force).trim().to_string(),
                generated,
            ))
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_starting_together_agree_on_one_set_of_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let loaded: Vec<Secrets> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| Secrets::load_or_create(dir.path()).unwrap()))
                .collect();
            starts.into_iter().map(|s| s.join().unwrap()).collect()
        });
        for secrets in &loaded {
            assert_eq!(secrets.key_derivation, loaded[0].key_derivation);
            assert_eq!(secrets.token_signing, loaded[0].token_signing);
        }
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secrets.json")]);
        let tokens: Vec<(String, bool)> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| admin_token(None, dir.path()).unwrap()))
                .collect();
            starts.into_iter().map(|s| s.join().unwrap()).collect()
        });
        assert!(tokens.iter().all(|(t, _)| *t == tokens[0].0));
        assert_eq!(tokens.iter().filter(|(_, generated)| *generated).count(), 1);
    }
}
