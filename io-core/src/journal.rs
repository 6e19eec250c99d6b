//! The evidence journal: every state change of a message and of its deliveries, appended to the
//! message's own journal. Each entry carries the SHA-256 of the previous one, so altering,
//! removing or reordering any entry breaks the chain; removing the newest entries is caught
//! against the [`JournalHead`], which the store keeps apart and which senders can be given as a
//! receipt. Entries name the citizen only by hash, so they can outlive a GDPR erasure.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pec::ReceiptKind;
use crate::{
    ChannelKind, DeliveryState, FiscalCodeHash, OutcomeRecord, RejectionReason, ServiceId,
    Timestamp,
};

/// The `prev_hash` of a journal's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEvent {
    /// The message was durably accepted.
    Accepted {
        /// The sender.
        service_id: ServiceId,
        /// The recipient, hashed.
        recipient: FiscalCodeHash,
        /// SHA-256 of the validated message.
        content_sha256: String,
        /// Seconds.
        time_to_live_secs: u64,
    },
    /// The message reached the inbox; deliveries were created on these channels.
    Processed {
        /// The channels.
        channels: Vec<ChannelKind>,
    },
    /// The message was rejected.
    Rejected {
        /// Why.
        reason: RejectionReason,
    },
    /// The message failed permanently before processing (e.g. its sender was deleted).
    Failed {
        /// Why.
        detail: String,
    },
    /// A delivery attempt and what it led to.
    Attempted {
        /// The channel.
        channel: ChannelKind,
        /// 1-based attempt number.
        attempt: u32,
        /// What the channel reported.
        outcome: OutcomeRecord,
        /// The delivery's state afterwards.
        state: DeliveryState,
        /// When the next attempt is due, if one is.
        next_attempt_at: Option<Timestamp>,
    },
    /// An attempt started but its outcome was never recorded: the process died while the
    /// provider was being called. The provider may or may not have been contacted; the attempt
    /// counts as a contact, and the next attempt follows this entry.
    OutcomeUnknown {
        /// The channel.
        channel: ChannelKind,
        /// The attempt whose outcome is unknown.
        attempt: u32,
    },
    /// A delivery's time-to-live passed before it was sent.
    Expired {
        /// The channel.
        channel: ChannelKind,
    },
    /// A PEC receipt arrived; its exact bytes are kept in the store under `sha256` (the
    /// evidence a third party checks against this entry).
    ReceiptRecorded {
        /// The channel (PEC).
        channel: ChannelKind,
        /// What it certifies.
        receipt: ReceiptKind,
        /// The legal time the provider certifies.
        issued_at: Timestamp,
        /// The provider's identifier of the message.
        provider_id: String,
        /// SHA-256 of the receipt's bytes, lower-case hex.
        sha256: String,
        /// Who signed it, as its verified S/MIME signature says; `None`: the signature did
        /// not verify, and the receipt changed nothing.
        signed_by: Option<String>,
        /// The delivery's state afterwards.
        state: DeliveryState,
    },
    /// A PEC receipt did not arrive within its window.
    ReceiptOverdue {
        /// The channel (PEC).
        channel: ChannelKind,
        /// The receipt that was awaited.
        awaited: ReceiptKind,
        /// The delivery's state afterwards (submitted again, or FAILED).
        state: DeliveryState,
    },
}

/// One link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalEntry {
    /// 0 for the first entry, then +1.
    pub seq: u64,
    /// When it was recorded.
    pub at: Timestamp,
    /// What happened.
    pub event: JournalEvent,
    /// The previous entry's `hash` ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash`, `seq`, `at` and the event, lower-case hex.
    pub hash: String,
}

/// The newest entry's position and hash: enough to append the next entry, and the anchor that
/// makes truncation detectable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalHead {
    /// The newest entry's `seq`.
    pub seq: u64,
    /// The newest entry's `hash`.
    pub hash: String,
}

impl JournalHead {
    /// The head after appending, to the journal that ends at `head` (or to an empty one), the
    /// event whose JSON is `event_json` at `at`: the head of
    /// [`JournalEntry::encode_after`], without building the entry's bytes. A store that keeps
    /// entries compactly needs only this when it writes, and `encode_after` when it reads.
    pub fn after(head: Option<&JournalHead>, at: Timestamp, event_json: &[u8]) -> JournalHead {
        let (seq, prev_hash) = match head {
            Some(head) => (head.seq + 1, head.hash.as_str()),
            None => (0, GENESIS_HASH),
        };
        JournalHead {
            seq,
            hash: hash_encoded(prev_hash, seq, at, event_json),
        }
    }
}

/// How a journal fails verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// Stored bytes that do not decode to an entry.
    #[error("journal entry {index} does not decode: {detail}")]
    Malformed {
        /// Position in the stored sequence.
        index: usize,
        /// The decoder's complaint.
        detail: String,
    },
    /// Stored bytes that decode but are not the canonical encoding of the entry: altered.
    #[error("journal entry {index} is not in canonical form")]
    NotCanonical {
        /// Position in the stored sequence.
        index: usize,
    },
    /// Entries missing or out of order.
    #[error("journal entry {index} has seq {found}, expected {expected}")]
    Sequence {
        /// Position in the stored sequence.
        index: usize,
        /// The expected seq.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// An entry that does not point at its predecessor.
    #[error("journal entry {seq} does not chain to its predecessor")]
    BrokenChain {
        /// The entry's seq.
        seq: u64,
    },
    /// An entry whose content does not match its hash.
    #[error("journal entry {seq} does not match its hash")]
    HashMismatch {
        /// The entry's seq.
        seq: u64,
    },
    /// The journal ends elsewhere than its recorded head: entries were removed or added.
    #[error(
        "journal does not end at its recorded head (last seq {found:?}, head seq {expected:?})"
    )]
    HeadMismatch {
        /// The head's seq.
        expected: Option<u64>,
        /// The last entry's seq.
        found: Option<u64>,
    },
}

fn entry_hash(prev_hash: &str, seq: u64, at: Timestamp, event: &JournalEvent) -> String {
    // Serializing a plain enum of owned data cannot fail; an empty body would still be hashed.
    hash_encoded(
        prev_hash,
        seq,
        at,
        &serde_json::to_vec(event).unwrap_or_default(),
    )
}

fn hash_encoded(prev_hash: &str, seq: u64, at: Timestamp, event_json: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(seq.to_be_bytes());
    hasher.update(at.as_millis().to_be_bytes());
    hasher.update(event_json);
    hex::encode(hasher.finalize())
}

impl JournalEntry {
    /// The entry that follows `head` (or starts the journal when `head` is `None`).
    pub fn append_after(head: Option<&JournalHead>, at: Timestamp, event: JournalEvent) -> Self {
        let (seq, prev_hash) = match head {
            Some(head) => (head.seq + 1, head.hash.clone()),
            None => (0, GENESIS_HASH.to_owned()),
        };
        let hash = entry_hash(&prev_hash, seq, at, &event);
        Self {
            seq,
            at,
            event,
            prev_hash,
            hash,
        }
    }

    /// The canonical bytes of the entry that follows `head` (or starts the journal) with the
    /// event whose JSON (`serde_json::to_vec` of the [`JournalEvent`]) is `event_json`, and the
    /// head it makes: the same bytes as [`JournalEntry::append_after`]`(..).to_bytes()`,
    /// without serializing the event again. A store's single writer only hashes and copies.
    pub fn encode_after(
        head: Option<&JournalHead>,
        at: Timestamp,
        event_json: &[u8],
    ) -> (Vec<u8>, JournalHead) {
        let (seq, prev_hash) = match head {
            Some(head) => (head.seq + 1, head.hash.as_str()),
            None => (0, GENESIS_HASH),
        };
        let hash = hash_encoded(prev_hash, seq, at, event_json);
        let mut bytes = Vec::with_capacity(event_json.len() + 200);
        bytes.extend_from_slice(b"{\"seq\":");
        bytes.extend_from_slice(seq.to_string().as_bytes());
        bytes.extend_from_slice(b",\"at\":");
        bytes.extend_from_slice(at.as_millis().to_string().as_bytes());
        bytes.extend_from_slice(b",\"event\":");
        bytes.extend_from_slice(event_json);
        bytes.extend_from_slice(b",\"prev_hash\":\"");
        bytes.extend_from_slice(prev_hash.as_bytes());
        bytes.extend_from_slice(b"\",\"hash\":\"");
        bytes.extend_from_slice(hash.as_bytes());
        bytes.extend_from_slice(b"\"}");
        (bytes, JournalHead { seq, hash })
    }

    /// The head this entry makes.
    pub fn head(&self) -> JournalHead {
        JournalHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }

    /// The canonical stored form.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a stored entry, refusing anything but its canonical form, so that no stored
    /// byte can change without verification noticing.
    pub fn from_bytes(index: usize, bytes: &[u8]) -> Result<Self, JournalError> {
        let entry: Self = serde_json::from_slice(bytes).map_err(|e| JournalError::Malformed {
            index,
            detail: e.to_string(),
        })?;
        if entry.to_bytes() != bytes {
            return Err(JournalError::NotCanonical { index });
        }
        Ok(entry)
    }
}

/// Verifies a journal: contiguous sequence from 0, each entry chained to its predecessor and
/// matching its own hash, ending at `head`.
pub fn verify(entries: &[JournalEntry], head: Option<&JournalHead>) -> Result<(), JournalError> {
    let mut prev_hash = GENESIS_HASH;
    for (index, entry) in entries.iter().enumerate() {
        let expected = index as u64;
        if entry.seq != expected {
            return Err(JournalError::Sequence {
                index,
                expected,
                found: entry.seq,
            });
        }
        if entry.prev_hash != prev_hash {
            return Err(JournalError::BrokenChain { seq: entry.seq });
        }
        if entry_hash(&entry.prev_hash, entry.seq, entry.at, &entry.event) != entry.hash {
            return Err(JournalError::HashMismatch { seq: entry.seq });
        }
        prev_hash = &entry.hash;
    }
    let last = entries.last();
    if last.map(JournalEntry::head).as_ref() != head {
        return Err(JournalError::HeadMismatch {
            expected: head.map(|h| h.seq),
            found: last.map(|e| e.seq),
        });
    }
    Ok(())
}

/// Decodes and verifies a journal as stored (one byte string per entry, in key order).
pub fn verify_stored(
    stored: &[Vec<u8>],
    head: Option<&JournalHead>,
) -> Result<Vec<JournalEntry>, JournalError> {
    let entries = stored
        .iter()
        .enumerate()
        .map(|(index, bytes)| JournalEntry::from_bytes(index, bytes))
        .collect::<Result<Vec<_>, _>>()?;
    verify(&entries, head)?;
    Ok(entries)
}

#[cfg(test)]
mod tests;
