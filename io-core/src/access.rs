//! A service's API access: its permission groups and the generations of its two keys, plus the
//! hashes of the keys in force. The keys themselves are derived by whoever issues them (the
//! server, from a secret the store never sees); the store keeps only what authenticating a
//! presented key needs, and keeps the index from key hash to service in step with the
//! generations in one atomic write.

use serde::{Deserialize, Serialize};

use crate::{Groups, ServiceId};

/// Which of a service's two keys. Both are equivalent, so one can be regenerated while clients
/// move to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeySlot {
    /// IO's `PRIMARY_KEY`.
    #[serde(rename = "PRIMARY_KEY")]
    Primary,
    /// IO's `SECONDARY_KEY`.
    #[serde(rename = "SECONDARY_KEY")]
    Secondary,
}

impl KeySlot {
    /// Both slots.
    pub const ALL: [KeySlot; 2] = [Self::Primary, Self::Secondary];
}

/// The SHA-256 of an API key: what the store indexes, never the key.
pub type KeyHash = [u8; 32];

/// What a service's keys may do and which keys are in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccess {
    /// What the service's keys may do.
    pub groups: Groups,
    /// Generation of the primary key (bumped on regeneration).
    pub primary: u64,
    /// Generation of the secondary key.
    pub secondary: u64,
    /// The hash of the primary key of this generation.
    pub primary_hash: KeyHash,
    /// The hash of the secondary key of this generation.
    pub secondary_hash: KeyHash,
    /// 1 when created, one more at every write: the store refuses a write that does not follow
    /// the stored version, so two concurrent changes (a key regeneration and a group update,
    /// or two regenerations) cannot undo each other and bring a replaced key back. 0 in
    /// records written before versions existed.
    #[serde(default)]
    pub version: u64,
}

impl ServiceAccess {
    /// The generation of `slot`.
    pub fn generation(&self, slot: KeySlot) -> u64 {
        match slot {
            KeySlot::Primary => self.primary,
            KeySlot::Secondary => self.secondary,
        }
    }

    /// The hash of the key in force in `slot`.
    pub fn key_hash(&self, slot: KeySlot) -> &KeyHash {
        match slot {
            KeySlot::Primary => &self.primary_hash,
            KeySlot::Secondary => &self.secondary_hash,
        }
    }
}

/// What a key hash leads to: the service and the slot whose key it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyOwner {
    /// The service.
    pub service_id: ServiceId,
    /// The slot.
    pub slot: KeySlot,
}
