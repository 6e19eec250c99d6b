//! Services' API keys (`Ocp-Apim-Subscription-Key`). Each service has a primary and a secondary
//! key, equivalent, so one can be regenerated while clients move to the other. A key is
//! HMAC-SHA256(server secret, service id, slot, generation): regenerating bumps the slot's
//! generation. The store keeps only SHA-256 hashes of keys (to find the service) and the
//! generations (a [`ServiceAccess`]); the keys can be shown again to the admin because they
//! are re-derived. [`authenticate`] goes from a presented key to its service.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use io_core::{
    Groups, KeyHash, KeySlot, OrganizationFiscalCode, ServiceAccess, ServiceId, Store, StoreError,
};

/// What the id of an institution's *manage* subscription starts with. An institution's manage
/// keys are kept as the access of the subscription `MANAGE-{fiscal code}`, as IO's API
/// gateway keeps them: derived, hashed and regenerated like a service's keys. No service can
/// take such an id (the admin API refuses it; managed services get ULIDs).
pub const MANAGE_PREFIX: &str = "MANAGE-";

/// The subscription id of `organization`'s manage keys.
pub fn manage_subscription(organization: &OrganizationFiscalCode) -> ServiceId {
    ServiceId::parse(&format!("{MANAGE_PREFIX}{}", organization.as_str()))
        .expect("a prefix and 11 digits make a service id")
}

/// The institution whose manage subscription `id` is, if it is one.
pub fn managing_institution(id: &ServiceId) -> Option<OrganizationFiscalCode> {
    let code = id.as_str().strip_prefix(MANAGE_PREFIX)?;
    OrganizationFiscalCode::parse(code).ok()
}

/// The slot's name inside the derivation (never changes: it would change every key).
fn slot_code(slot: KeySlot) -> &'static str {
    match slot {
        KeySlot::Primary => "primary",
        KeySlot::Secondary => "secondary",
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
        mac.update(slot_code(slot).as_bytes());
        mac.update(b"\0");
        mac.update(&generation.to_be_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The access of `service` with `groups` and these key generations: what the store keeps,
    /// the hashes of the two keys in force included. Version 1: a new service's access.
    pub fn access(
        &self,
        service: &ServiceId,
        groups: Groups,
        primary: u64,
        secondary: u64,
    ) -> ServiceAccess {
        ServiceAccess {
            groups,
            primary,
            secondary,
            primary_hash: key_hash(&self.key(service, KeySlot::Primary, primary)),
            secondary_hash: key_hash(&self.key(service, KeySlot::Secondary, secondary)),
            version: 1,
        }
    }

    /// `access` with a new key in `slot` (its generation bumped) as the next version; the
    /// other slot's key keeps working, so clients can move to it first.
    pub fn regenerated(
        &self,
        service: &ServiceId,
        access: &ServiceAccess,
        slot: KeySlot,
    ) -> ServiceAccess {
        let (mut primary, mut secondary) = (access.primary, access.secondary);
        match slot {
            KeySlot::Primary => primary += 1,
            KeySlot::Secondary => secondary += 1,
        }
        ServiceAccess {
            version: access.version + 1,
            ..self.access(service, access.groups.clone(), primary, secondary)
        }
    }
}

/// The SHA-256 of a key: what the store indexes.
pub fn key_hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// The service a presented key belongs to, with its groups, if the key is in force: the
/// store's index finds the service by the key's hash, the service's access must still name
/// that hash in that slot, and the key re-derived from the slot's generation must equal the
/// presented one (compared in constant time: the hash lookup alone would leak nothing, but
/// the comparison is the authentication).
pub async fn authenticate<S: Store>(
    store: &S,
    deriver: &KeyDeriver,
    presented: &str,
) -> Result<Option<(ServiceId, Groups)>, StoreError> {
    let hash = key_hash(presented);
    let Some(owner) = store.api_key_owner(&hash).await? else {
        return Ok(None);
    };
    let Some(access) = store.service_access(&owner.service_id).await? else {
        return Ok(None);
    };
    if !constant_time_eq(access.key_hash(owner.slot), &hash) {
        return Ok(None);
    }
    let expected = deriver.key(&owner.service_id, owner.slot, access.generation(owner.slot));
    if !constant_time_eq(expected.as_bytes(), presented.as_bytes()) {
        return Ok(None);
    }
    Ok(Some((owner.service_id, access.groups)))
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
    fn regenerating_a_slot_changes_only_its_key() {
        let deriver = KeyDeriver::new(b"secret");
        let s = ServiceId::parse("svc").unwrap();
        let access = deriver.access(&s, Groups::default(), 1, 1);
        assert_eq!(
            access.primary_hash,
            key_hash(&deriver.key(&s, KeySlot::Primary, 1))
        );
        let next = deriver.regenerated(&s, &access, KeySlot::Secondary);
        assert_eq!((next.primary, next.secondary), (1, 2));
        assert_eq!(next.version, access.version + 1);
        assert_eq!(next.primary_hash, access.primary_hash);
        assert_ne!(next.secondary_hash, access.secondary_hash);
    }

    #[test]
    fn a_manage_subscription_names_its_institution_only() {
        let org = OrganizationFiscalCode::parse("15376371009").unwrap();
        let id = manage_subscription(&org);
        assert_eq!(id.as_str(), "MANAGE-15376371009");
        assert_eq!(managing_institution(&id), Some(org));
        assert_eq!(
            managing_institution(&ServiceId::parse("svc").unwrap()),
            None
        );
        assert_eq!(
            managing_institution(&ServiceId::parse("MANAGE-1").unwrap()),
            None
        );
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
