//! Identifiers. Message ids are ULIDs, so they sort by creation millisecond (in random order
//! within one, so that they cannot be guessed): the inbox and the journal are range scans.
//! Every id is validated when it is parsed, never later.

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
    /// 26 base-32 characters whose first one is above '7': 130 bits that do not fit the 128 of
    /// a ULID. Decoding them would drop the top bits and alias another id ("81…" to "01…").
    #[error("{value:?} is not a message id (its first character must be 0 to 7)")]
    MessageIdOverflow {
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
    /// Builds an id from its parts: `millis` (the low 48 bits are kept) and `random` (the low
    /// 80). The engine's generator draws `random` afresh for every id.
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
}

/// The largest first character of a ULID's text: 26 base-32 characters carry 130 bits, so the
/// first one may only use the low 3 of its 5 (`7ZZZZZZZZZZZZZZZZZZZZZZZZZ` is 2^128 - 1).
const ULID_MAX_FIRST_CHAR: u8 = b'7';

impl FromStr for MessageId {
    type Err = IdError;
    /// Parses the 26-character text of a ULID (either case, surrounding blanks ignored).
    /// Refuses a first character above '7' instead of letting the ulid crate drop the top bits,
    /// which would read "81…" as the id of "01…".
    fn from_str(raw: &str) -> Result<Self, IdError> {
        let trimmed = raw.trim();
        if trimmed.len() != ulid::ULID_LEN {
            return Err(IdError::MessageId { value: cut(raw) });
        }
        let id = Ulid::from_string(trimmed).map_err(|_| IdError::MessageId { value: cut(raw) })?;
        // Well-formed base 32 from here on, so the first byte is an ASCII digit or letter.
        if trimmed.as_bytes()[0] > ULID_MAX_FIRST_CHAR {
            return Err(IdError::MessageIdOverflow { value: cut(raw) });
        }
        Ok(Self(id))
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

    /// The largest ULID, and a well-formed id to put other first characters in front of.
    const MAX_ULID: &str = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ";
    const SAMPLE: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

    #[test]
    fn message_ids_beyond_128_bits_are_refused_not_aliased() {
        let max: MessageId = MAX_ULID.parse().unwrap();
        assert_eq!(max.to_bytes(), [0xff; 16]);
        assert_eq!(max.to_string(), MAX_ULID);
        let sample: MessageId = SAMPLE.parse().unwrap();
        for first in ['8', '9', 'A', 'H', 'Z', 'z'] {
            // "81ARZ…" used to decode to the id of "01ARZ…" (its top bits dropped).
            let raw = format!("{first}{}", &SAMPLE[1..]);
            let refused = raw.parse::<MessageId>();
            assert_eq!(
                refused,
                Err(IdError::MessageIdOverflow { value: raw.clone() }),
                "{raw} is refused, not read as {sample}"
            );
            let text = refused.unwrap_err().to_string();
            assert!(text.contains(&raw) && text.contains("0 to 7"), "{text}");
            let json = serde_json::to_string(&raw).unwrap();
            assert!(serde_json::from_str::<MessageId>(&json).is_err(), "{json}");
        }
        let all_z = "Z".repeat(26);
        assert!(all_z.parse::<MessageId>().is_err(), "{all_z}");
    }

    /// Crockford base 32, as the ULID crate decodes it (either case).
    const BASE32: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz";

    proptest::proptest! {
        #[test]
        fn a_message_id_parses_iff_it_fits_128_bits_and_then_round_trips(
            chars in proptest::collection::vec(proptest::sample::select(BASE32.as_bytes()), 26)
        ) {
            let raw = String::from_utf8(chars).unwrap();
            match raw.parse::<MessageId>() {
                Ok(id) => {
                    proptest::prop_assert!(raw.as_bytes()[0] <= b'7', "{raw}");
                    proptest::prop_assert_eq!(id.to_string(), raw.to_ascii_uppercase());
                    proptest::prop_assert_eq!(id.to_string().parse::<MessageId>().unwrap(), id);
                }
                Err(error) => {
                    proptest::prop_assert!(raw.as_bytes()[0] > b'7', "{raw}: {error}");
                    proptest::prop_assert_eq!(error, IdError::MessageIdOverflow { value: raw });
                }
            }
        }
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
