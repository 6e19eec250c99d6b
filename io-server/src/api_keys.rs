//! Services' API keys (`Ocp-Apim-Subscription-Key`). Each service has a primary and a secondary
//! key, equivalent, so one can be regenerated while clients move to the other. A key is
//! HMAC-SHA256(server secret, service id, slot, generation): regenerating bumps the slot's
//! generation. The store keeps only SHA-256 hashes of keys (to find the service) and the
//! generations; the keys can be shown again to the admin because they are re-derived.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use io_core::ServiceId;

/// Which of the two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeySlot {
    /// `PRIMARY_KEY`.
    #[serde(rename = "PRIMARY_KEY")]
    Primary,
    /// `SECONDARY_KEY`.
    #[serde(rename = "SECONDARY_KEY")]
    Secondary,
}

impl KeySlot {
    fn code(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Secondary => "secondary",
        }
    }
}

/// Derives keys from the server secret.
#[derive(Clone)]
pub struct KeyDeriver {
    secret: Vec<u8>,
}

impl std::fmt::Debug for KeyDeriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyDeriver(..)")
    }
}

impl KeyDeriver {
    /// A deriver over `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
        }
    }

    /// The key of `service` in `slot` at `generation`: 32 lower-case hex characters, like IO's.
    pub fn key(&self, service: &ServiceId, slot: KeySlot, generation: u64) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any size");
        mac.update(b"io-api-key\0");
        mac.update(service.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(slot.code().as_bytes());
        mac.update(b"\0");
        mac.update(&generation.to_be_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

/// The SHA-256 of a presented key: the lookup key of the key index.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_service_slot_generation_and_secret() {
        let deriver = KeyDeriver::new(b"secret");
        let s = ServiceId::parse("svc").unwrap();
        let k = deriver.key(&s, KeySlot::Primary, 1);
        assert_eq!(k.len(), 32);
        assert_eq!(k, deriver.key(&s, KeySlot::Primary, 1));
        assert_ne!(k, deriver.key(&s, KeySlot::Secondary, 1));
        assert_ne!(k, deriver.key(&s, KeySlot::Primary, 2));
        assert_ne!(
            k,
            deriver.key(&ServiceId::parse("svd").unwrap(), KeySlot::Primary, 1)
        );
        assert_ne!(k, KeyDeriver::new(b"other").key(&s, KeySlot::Primary, 1));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
