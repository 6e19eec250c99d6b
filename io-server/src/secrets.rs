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
                write_private(&path, &json)?;
                Ok(secrets)
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
            write_private(&path, token.as_bytes())?;
            Ok((token, true))
        }
        Err(error) => Err(error),
    }
}
