//! Identifiers. Message ids are ULIDs, so they sort by creation time: the inbox and the journal
//! are range scans. Every id is validated when it is parsed, never later.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ulid::Ulid;

use crate::ChannelKind;

/// The id of one message: a ULID (48-bit millisecond time, 80 random bits), rendered in
/// Crockford base 32 as IO does (26 characters).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct MessageId(Ulid);

/// An id that is not a well-formed identifier of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not 26 Crockford base-32 characters.
    #[error("{value:?} is not a message id (26 base-32 characters)")]
    MessageId {
        /// The rejected text, cut to 64 characters.
        value: String,
    },
    /// A service id must be 1 to 64 characters among A-Z a-z 0-9 '-' '_'.
    #[error("{value:?} is not a service id (1 to 64 characters among A-Z a-z 0-9 - _)")]
    ServiceId {
        /// The rejected text, cut to 64 characters.
        value: String,
    },
    /// An idempotency key must be 1 to 255 printable ASCII characters.
    #[error("idempotency key is not 1 to 255 printable ASCII characters")]
    IdempotencyKey,
    /// An installation id must be 1 to 128 characters among A-Z a-z 0-9 '-' '_' '.'.
    #[error("installation id is not 1 to 128 characters among A-Z a-z 0-9 - _ .")]
    InstallationId,
}

fn cut(raw: &str) -> String {
    raw.chars().take(64).collect()
}

impl MessageId {
    /// Builds an id from its parts; the engine's generator keeps ids monotonic.
    pub fn from_parts(millis: u64, random: u128) -> Self {
        Self(Ulid::from_parts(millis, random))
    }

    /// The 16 big-endian bytes of the ULID: the form used in store keys, so that byte order is
    /// time order.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_bytes()
    }

    /// The inverse of [`MessageId::to_bytes`].
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Ulid::from_bytes(bytes))
    }

    /// Milliseconds since the epoch at which the id was generated.
    pub fn millis(self) -> u64 {
        self.0.timestamp_ms()
    }

    /// The 80 random bits, for the generator.
    pub(crate) fn random(self) -> u128 {
        self.0.random()
    }
}

impl FromStr for MessageId {
    type Err = IdError;
    fn from_str(raw: &str) -> Result<Self, IdError> {
        let trimmed = raw.trim();
        if trimmed.len() != ulid::ULID_LEN {
            return Err(IdError::MessageId { value: cut(raw) });
        }
        Ulid::from_string(trimmed)
            .map(Self)
            .map_err(|_| IdError::MessageId { value: cut(raw) })
    }
}

impl TryFrom<String> for MessageId {
    type Error = IdError;
    fn try_from(raw: String) -> Result<Self, IdError> {
        raw.parse()
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> String {
        id.to_string()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.0)
    }
}

/// The id of a service (the sender of messages). IO's ids are opaque strings; we accept the
/// characters they use and nothing that could break a store key or a URL path.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ServiceId(String);

/// The longest service id accepted.
pub const SERVICE_ID_MAX_LEN: usize = 64;

impl ServiceId {
    /// Validates a service id.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = !raw.is_empty()
            && raw.len() <= SERVICE_ID_MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::ServiceId { value: cut(raw) })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServiceId {
    type Error = IdError;
    fn try_from(raw: String) -> Result<Self, IdError> {
        Self::parse(&raw)
    }
}

impl From<ServiceId> for String {
    fn from(id: ServiceId) -> String {
        id.0
    }
}

impl FromStr for ServiceId {
    type Err = IdError;
    fn from_str(raw: &str) -> Result<Self, IdError> {
        Self::parse(raw)
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceId({})", self.0)
    }
}

/// One delivery is one message on one channel, so its id is that pair: it is stable across
/// crashes and re-processing, which is what makes it usable as the provider's idempotency key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeliveryId {
    /// The message delivered.
    pub message: MessageId,
    /// The channel it is delivered on.
    pub channel: ChannelKind,
}

impl DeliveryId {
    /// The delivery of `message` on `channel`.
    pub fn new(message: MessageId, channel: ChannelKind) -> Self {
        Self { message, channel }
    }

    /// A UUID-shaped rendering (8-4-4-4-12 lower-case hex, version nibble 8) derived by hashing,
    /// for providers that require a UUID as idempotency key (APNs `apns-id`).
    pub fn as_uuid(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.message.to_bytes());
        hasher.update(self.channel.as_str().as_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8: custom
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
        let hex = hex::encode(bytes);
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.message, self.channel.as_str())
    }
}

impl fmt::Debug for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeliveryId({self})")
    }
}

/// A sender-chosen key that makes a submit safe to retry: the same key with the same body
/// returns the first message's id instead of creating a second message.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct IdempotencyKey(String);

/// The longest idempotency key accepted.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;

impl IdempotencyKey {
    /// Validates a key: 1 to 255 printable ASCII characters (a UUID is the usual choice).
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = !raw.is_empty()
            && raw.len() <= IDEMPOTENCY_KEY_MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::IdempotencyKey)
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = IdError;
    fn try_from(raw: String) -> Result<Self, IdError> {
        Self::parse(&raw)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> String {
        key.0
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_and_sort_by_time() {
        let early = MessageId::from_parts(1_000, 99);
        let late = MessageId::from_parts(2_000, 1);
        assert!(early < late);
        assert!(early.to_bytes() < late.to_bytes());
        assert_eq!(early.to_string().parse::<MessageId>().unwrap(), early);
        assert_eq!(MessageId::from_bytes(late.to_bytes()), late);
    }

    #[test]
    fn malformed_ids_are_rejected() {
        assert!("01ARZ3NDEKTSV4RRFFQ69G5FA".parse::<MessageId>().is_err());
        assert!("01ARZ3NDEKTSV4RRFFQ69G5FAVX".parse::<MessageId>().is_err());
        assert!("01ARZ3NDEKTSV4RRFFQ69G5FA!".parse::<MessageId>().is_err());
        assert!(ServiceId::parse("").is_err());
        assert!(ServiceId::parse("a/b").is_err());
        assert!(ServiceId::parse(&"x".repeat(65)).is_err());
        assert!(ServiceId::parse("01EYNQ0864HKYR1Q9PXPJ18W7G").is_ok());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn delivery_uuid_is_stable_and_distinct_per_channel() {
        let id = MessageId::from_parts(1_700_000_000_000, 42);
        let inbox = DeliveryId::new(id, ChannelKind::Inbox).as_uuid();
        let email = DeliveryId::new(id, ChannelKind::Email).as_uuid();
        assert_ne!(inbox, email);
        assert_eq!(inbox, DeliveryId::new(id, ChannelKind::Inbox).as_uuid());
        assert_eq!(inbox.len(), 36);
        assert_eq!(&inbox[14..15], "8");
    }
}
