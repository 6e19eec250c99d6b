//! Byte layouts of the keys of the store's one sled tree. Every key starts with a one-byte
//! prefix naming its record kind, so each kind is a contiguous range; within a kind, layouts
//! sort the way their range scans need: big-endian integers, fixed-width ids (fiscal codes are
//! always 16 bytes, message ids 16), and a 0x00 separator after variable-length text (no id or
//! key may contain 0x00).

use io_core::{
    Choice, FeedDay, FeedScope, FiscalCode, FiscalCodeHash, LogoOwner, MessageId, ServiceId,
    Timestamp,
};

/// The separator after variable-length text.
pub(crate) const SEP: u8 = 0x00;

/// Record kinds: the first byte of every key.
pub(crate) mod kind {
    /// The store format's version.
    pub(crate) const FORMAT: u8 = b'!';
    /// Service by id.
    pub(crate) const SERVICE: u8 = b'S';
    /// A service's API access, by service id.
    pub(crate) const ACCESS: u8 = b'A';
    /// Key hash → service and slot.
    pub(crate) const API_KEY: u8 = b'K';
    /// A service's callback target.
    pub(crate) const CALLBACK: u8 = b'C';
    /// A logo: owner ('s' service, 'o' institution), id → upload time (i64 millis, big-endian)
    /// and the PNG.
    pub(crate) const LOGO: u8 = b'O';
    /// A remote-content configuration, by configuration id.
    pub(crate) const REMOTE_CONTENT: u8 = b'Q';
    /// A managed service's lifecycle, by service id.
    pub(crate) const LIFECYCLE: u8 = b'L';
    /// A managed service's history item: service id SEP seq (u64, big-endian).
    pub(crate) const HISTORY: u8 = b'Y';
    /// Profile by fiscal code.
    pub(crate) const PROFILE: u8 = b'P';
    /// A validated email (lower case) → the fiscal code whose profile holds it.
    pub(crate) const EMAIL: u8 = b'E';
    /// Preference: fiscal code, service, settings version.
    pub(crate) const PREFERENCE: u8 = b'R';
    /// Activation: service, fiscal code.
    pub(crate) const ACTIVATION: u8 = b'V';
    /// Installation: fiscal code, installation id.
    pub(crate) const INSTALLATION: u8 = b'I';
    /// Message flags: fiscal code, message id.
    pub(crate) const FLAGS: u8 = b'F';
    /// Feed event: day, scope, citizen hash.
    pub(crate) const FEED: u8 = b'D';
    /// GDPR request: fiscal code, choice.
    pub(crate) const DATA_REQUEST: u8 = b'G';
    /// Open GDPR requests by due time: due, fiscal code, choice.
    pub(crate) const DATA_REQUEST_DUE: u8 = b'H';
    /// Message body (immutable) by id.
    pub(crate) const MESSAGE: u8 = b'm';
    /// Message state (status, deliveries, journal, callback outbox) by id.
    pub(crate) const STATE: u8 = b's';
    /// Journal entries of a message written together: message id, first seq.
    pub(crate) const JOURNAL: u8 = b'J';
    /// The header (journal head) of an erased message: its state is gone, its evidence kept.
    pub(crate) const ERASED: u8 = b'j';
    /// A PEC receipt kept as evidence: message id, SHA-256 of its bytes (32 bytes) → the
    /// journal seq of its entry (u64, big-endian) and the bytes.
    pub(crate) const EVIDENCE: u8 = b'x';
    /// Attempts started by one call (a round), until their outcomes are recorded: round id.
    pub(crate) const ATTEMPTS: u8 = b'a';
    /// Inbox entry: fiscal code, message id.
    pub(crate) const INBOX: u8 = b'i';
    /// Every accepted message of a citizen: fiscal code, message id.
    pub(crate) const RECIPIENT: u8 = b'r';
    /// Idempotency record: service, key.
    pub(crate) const IDEMPOTENCY: u8 = b'k';
    /// An open message older than the watermark (found at start without scanning them all).
    pub(crate) const OPEN: u8 = b'o';
    /// The watermark: every open message older than it has an `OPEN` entry.
    pub(crate) const WATERMARK: u8 = b'w';
}

fn with_kind(kind: u8, capacity: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(capacity + 1);
    key.push(kind);
    key
}

/// `kind` + raw bytes.
pub(crate) fn raw(kind: u8, bytes: &[u8]) -> Vec<u8> {
    let mut key = with_kind(kind, bytes.len());
    key.extend_from_slice(bytes);
    key
}

/// `kind` + text.
pub(crate) fn text(kind: u8, value: &str) -> Vec<u8> {
    raw(kind, value.as_bytes())
}

/// A logo's key: its owner's kind and id.
pub(crate) fn logo(owner: &LogoOwner) -> Vec<u8> {
    let (tag, id) = match owner {
        LogoOwner::Service(id) => (b's', id.as_str()),
        LogoOwner::Organization(code) => (b'o', code.as_str()),
    };
    let mut key = with_kind(kind::LOGO, 1 + id.len());
    key.push(tag);
    key.extend_from_slice(id.as_bytes());
    key
}

/// `kind` + message id.
pub(crate) fn message(kind: u8, id: &MessageId) -> Vec<u8> {
    raw(kind, &id.to_bytes())
}

/// Evidence record: message id + the SHA-256 of the receipt's bytes.
pub(crate) fn evidence(message: &MessageId, sha256: &[u8; 32]) -> Vec<u8> {
    let mut key = with_kind(kind::EVIDENCE, 48);
    key.extend_from_slice(&message.to_bytes());
    key.extend_from_slice(sha256);
    key
}

/// Journal record: message id + the seq of its first entry.
pub(crate) fn journal(message: &MessageId, first_seq: u64) -> Vec<u8> {
    let mut key = with_kind(kind::JOURNAL, 24);
    key.extend_from_slice(&message.to_bytes());
    key.extend_from_slice(&first_seq.to_be_bytes());
    key
}

/// The message id at the end of a key (the last 16 bytes).
pub(crate) fn trailing_message_id(key: &[u8]) -> Option<MessageId> {
    let start = key.len().checked_sub(16)?;
    Some(MessageId::from_bytes(key[start..].try_into().ok()?))
}

/// `kind` + fiscal code + message id: inbox, recipients, flags. A citizen's entries are
/// contiguous and in message (time) order.
pub(crate) fn citizen_message(kind: u8, fiscal_code: &FiscalCode, id: &MessageId) -> Vec<u8> {
    let mut key = with_kind(kind, 32);
    key.extend_from_slice(fiscal_code.as_str().as_bytes());
    key.extend_from_slice(&id.to_bytes());
    key
}

/// `kind` + fiscal code: the prefix of a citizen's entries of fixed-width kinds.
pub(crate) fn citizen(kind: u8, fiscal_code: &FiscalCode) -> Vec<u8> {
    text(kind, fiscal_code.as_str())
}

/// `kind` + a SEP b.
pub(crate) fn pair(kind: u8, a: &str, b: &str) -> Vec<u8> {
    let mut key = with_kind(kind, a.len() + b.len() + 1);
    key.extend_from_slice(a.as_bytes());
    key.push(SEP);
    key.extend_from_slice(b.as_bytes());
    key
}

/// `kind` + a SEP: the prefix of every [`pair`] key whose first part is `a`.
pub(crate) fn pair_prefix(kind: u8, a: &str) -> Vec<u8> {
    pair(kind, a, "")
}

/// What follows the first separator of a [`pair`] key.
pub(crate) fn pair_second(key: &[u8]) -> Option<&[u8]> {
    let sep = key.iter().position(|b| *b == SEP)?;
    Some(&key[sep + 1..])
}

/// History item: service id SEP seq. A service's items are contiguous and in seq order.
pub(crate) fn history(service: &ServiceId, seq: u64) -> Vec<u8> {
    let mut key = pair_prefix(kind::HISTORY, service.as_str());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Preference: fiscal code SEP service SEP settings version.
pub(crate) fn preference(fiscal_code: &FiscalCode, service: &ServiceId, version: u64) -> Vec<u8> {
    let mut key = pair(kind::PREFERENCE, fiscal_code.as_str(), service.as_str());
    key.push(SEP);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// A timestamp as 8 bytes that sort like the signed value.
pub(crate) fn time(at: Timestamp) -> [u8; 8] {
    ((at.as_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

/// The inverse of [`time`].
pub(crate) fn time_from(bytes: &[u8]) -> Option<Timestamp> {
    let raw: [u8; 8] = bytes.try_into().ok()?;
    Some(Timestamp::from_millis(
        (u64::from_be_bytes(raw) ^ (1 << 63)) as i64,
    ))
}

/// One byte per GDPR choice.
fn choice_code(choice: Choice) -> u8 {
    match choice {
        Choice::Download => b'D',
        Choice::Delete => b'X',
    }
}

fn choice_from(code: u8) -> Option<Choice> {
    Choice::ALL.into_iter().find(|c| choice_code(*c) == code)
}

/// GDPR request: fiscal code + choice.
pub(crate) fn data_request(fiscal_code: &FiscalCode, choice: Choice) -> Vec<u8> {
    let mut key = citizen(kind::DATA_REQUEST, fiscal_code);
    key.push(choice_code(choice));
    key
}

/// Open GDPR request by due time: due + fiscal code + choice.
pub(crate) fn data_request_due(
    due: Timestamp,
    fiscal_code: &FiscalCode,
    choice: Choice,
) -> Vec<u8> {
    let mut key = with_kind(kind::DATA_REQUEST_DUE, 25);
    key.extend_from_slice(&time(due));
    key.extend_from_slice(fiscal_code.as_str().as_bytes());
    key.push(choice_code(choice));
    key
}

/// The parts of a [`data_request_due`] key.
pub(crate) fn data_request_due_parts(key: &[u8]) -> Option<(Timestamp, FiscalCode, Choice)> {
    let rest = key.strip_prefix(&[kind::DATA_REQUEST_DUE])?;
    if rest.len() != 8 + 16 + 1 {
        return None;
    }
    let due = time_from(&rest[..8])?;
    let fiscal_code = FiscalCode::parse(std::str::from_utf8(&rest[8..24]).ok()?).ok()?;
    Some((due, fiscal_code, choice_from(rest[24])?))
}

/// Feed event: day + scope (`*` or the service id) SEP + citizen hash.
pub(crate) fn feed(day: FeedDay, scope: &FeedScope, citizen: &FiscalCodeHash) -> Vec<u8> {
    let mut key = feed_prefix(day, scope);
    key.extend_from_slice(citizen.as_str().as_bytes());
    key
}

/// The prefix of a day's events of one scope.
pub(crate) fn feed_prefix(day: FeedDay, scope: &FeedScope) -> Vec<u8> {
    let scope = match scope {
        FeedScope::AllServices => "*",
        FeedScope::Service(id) => id.as_str(),
    };
    let mut key = with_kind(kind::FEED, 8 + scope.len() + 1 + 64);
    key.extend_from_slice(&day.days_since_epoch().to_be_bytes());
    key.extend_from_slice(scope.as_bytes());
    key.push(SEP);
    key
}

/// The smallest key greater than every key starting with `prefix` (for range ends).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_like_time_including_before_the_epoch() {
        let times = [-5_000, -1, 0, 1, 1_700_000_000_000];
        let keys: Vec<[u8; 8]> = times
            .iter()
            .map(|t| time(Timestamp::from_millis(*t)))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (t, k) in times.iter().zip(&keys) {
            assert_eq!(time_from(k), Some(Timestamp::from_millis(*t)));
        }
    }

    #[test]
    fn due_request_keys_round_trip_and_sort_by_due_time() {
        let citizen = FiscalCode::parse("RSSMRA85T10A562S").unwrap();
        let early = data_request_due(Timestamp::from_millis(5), &citizen, Choice::Delete);
        let late = data_request_due(Timestamp::from_millis(6), &citizen, Choice::Download);
        assert!(early < late);
        assert_eq!(
            data_request_due_parts(&early),
            Some((Timestamp::from_millis(5), citizen, Choice::Delete))
        );
    }

    #[test]
    fn a_prefix_end_follows_every_key_with_the_prefix() {
        let prefix = pair_prefix(kind::INSTALLATION, "RSSMRA85T10A562S");
        let end = prefix_end(&prefix);
        assert!(pair(kind::INSTALLATION, "RSSMRA85T10A562S", "zzz") < end);
        assert!(prefix < end);
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }
}
