//! The journal's storage: the entries a write appends to a message's journal are one record,
//! keyed by message and first seq. An entry is written once and never rewritten; the message's
//! state keeps the head, so a journal's length and its newest hash are read without reading the
//! entries.
//!
//! Entries are stored **compactly**: seq, time and the event's JSON, without the two hashes
//! (128 of an entry's ≈ 330 canonical bytes). Both are functions of what is kept — the previous
//! entry's hash and this entry's fields — so reading rebuilds each entry's canonical bytes
//! (`JournalEntry::encode_after`) from the one before. Nothing is lost for verification: an
//! altered, removed or added entry changes the rebuilt chain, which then no longer ends at the
//! head kept in the state (or exported with the journal), exactly as an altered entry with
//! recomputed hashes did before. The journal's record bytes are the largest part of what
//! dispatch writes; writing records of the same keys with 8-byte values instead sped dispatch
//! up by a third (BENCHMARKS.md).
//!
//! Layout of a record: a first byte `COMPACT`, then per entry a u32 length (big-endian) and the
//! entry: seq (u64), time (i64 milliseconds), event JSON. Records written before compact
//! storage hold canonical entries, each behind its u32 length (their first byte, the top byte
//! of a length under 16 MiB, is 0); they are still read.

use io_core::{JournalEntry, JournalHead, MessageId, StoreError, Timestamp};

use super::backend;
use super::keys::{self, kind};

/// The first byte of a record of compact entries.
const COMPACT: u8 = 1;

/// The compact form of the entry `seq` at `at` with the event whose JSON is `event_json`.
pub(crate) fn compact_entry(seq: u64, at: Timestamp, event_json: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(16 + event_json.len());
    entry.extend_from_slice(&seq.to_be_bytes());
    entry.extend_from_slice(&at.as_millis().to_be_bytes());
    entry.extend_from_slice(event_json);
    entry
}

/// The stored form of compact entries written together.
pub(crate) fn encode(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + entries.iter().map(|e| e.len() + 4).sum::<usize>());
    out.push(COMPACT);
    for entry in entries {
        out.extend_from_slice(&(entry.len() as u32).to_be_bytes());
        out.extend_from_slice(entry);
    }
    out
}

/// An entry as a record holds it.
enum Stored<'a> {
    /// The canonical bytes (records written before compact storage).
    Canonical(&'a [u8]),
    /// Seq, time and event JSON.
    Compact {
        seq: u64,
        at: Timestamp,
        event_json: &'a [u8],
    },
}

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what: "journal",
        detail: detail.into(),
    }
}

/// The entries of one record, checked for structure only.
fn entries_of(bytes: &[u8]) -> Result<Vec<Stored<'_>>, StoreError> {
    let (compact, mut rest) = match bytes.split_first() {
        Some((&COMPACT, rest)) => (true, rest),
        _ => (false, bytes),
    };
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("truncated record"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(corrupt("truncated record"));
        }
        let (entry, tail) = tail.split_at(len);
        rest = tail;
        if !compact {
            entries.push(Stored::Canonical(entry));
            continue;
        }
        let (seq, entry) = entry
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("truncated entry"))?;
        let (at, event_json) = entry
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("truncated entry"))?;
        entries.push(Stored::Compact {
            seq: u64::from_be_bytes(*seq),
            at: Timestamp::from_millis(i64::from_be_bytes(*at)),
            event_json,
        });
    }
    Ok(entries)
}

/// Checks that a record's structure is sound (the store check reads every record).
pub(crate) fn check_record(bytes: &[u8]) -> Result<(), StoreError> {
    entries_of(bytes).map(drop)
}

/// Every entry of `message`'s journal, in sequence order, as canonical bytes.
pub(crate) fn read(tree: &sled::Tree, message: &MessageId) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut entries = Vec::new();
    let mut head: Option<JournalHead> = None;
    for item in tree.scan_prefix(keys::message(kind::JOURNAL, message)) {
        let (_, bytes) = item.map_err(backend)?;
        for stored in entries_of(&bytes)? {
            match stored {
                Stored::Canonical(bytes) => {
                    // A damaged entry is returned as it is, for verification to report; a
                    // compact entry after it cannot be rebuilt and is reported here.
                    head = JournalEntry::from_bytes(entries.len(), bytes)
                        .ok()
                        .map(|entry| entry.head());
                    entries.push(bytes.to_vec());
                }
                Stored::Compact {
                    seq,
                    at,
                    event_json,
                } => {
                    let expected = match (&head, entries.is_empty()) {
                        (Some(head), _) => head.seq + 1,
                        (None, true) => 0,
                        (None, false) => {
                            return Err(corrupt(format!(
                                "entry {seq} follows an entry that does not decode"
                            )));
                        }
                    };
                    if seq != expected {
                        return Err(corrupt(format!("entry {seq} where {expected} belongs")));
                    }
                    let (bytes, next) = JournalEntry::encode_after(head.as_ref(), at, event_json);
                    entries.push(bytes);
                    head = Some(next);
                }
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use io_core::JournalEvent;
    use io_core::journal::verify_stored;

    use super::*;

    fn event_json(n: u64) -> Vec<u8> {
        serde_json::to_vec(&JournalEvent::Failed {
            detail: format!("event {n}"),
        })
        .unwrap()
    }

    #[test]
    fn compact_records_read_back_as_the_canonical_chain_and_truncation_is_corrupt() {
        let at = Timestamp::from_millis(1_700_000_000_000);
        let entries: Vec<Vec<u8>> = (0..3)
            .map(|n| compact_entry(n, at, &event_json(n)))
            .collect();
        let bytes = encode(&entries);
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let message = MessageId::from_parts(7, 1);
        tree.insert(keys::journal(&message, 0), bytes.clone())
            .unwrap();
        let read_back = read(&tree, &message).unwrap();
        let mut head = None;
        for n in 0..3 {
            let (canonical, next) = JournalEntry::encode_after(head.as_ref(), at, &event_json(n));
            assert_eq!(read_back[n as usize], canonical);
            head = Some(next);
        }
        assert_eq!(verify_stored(&read_back, head.as_ref()).unwrap().len(), 3);
        for cut in 1..bytes.len() {
            // Only cuts at entry boundaries decode (1: the marker alone, no entry).
            let cut_at_entry = [
                1,
                1 + 4 + entries[0].len(),
                1 + 8 + entries[0].len() + entries[1].len(),
            ];
            let decodes = check_record(&bytes[..cut]).is_ok();
            assert!(!decodes || cut_at_entry.contains(&cut), "cut {cut}");
        }
    }

    #[test]
    fn an_altered_compact_entry_no_longer_ends_at_the_head() {
        let at = Timestamp::from_millis(5);
        let entries: Vec<Vec<u8>> = (0..2)
            .map(|n| compact_entry(n, at, &event_json(n)))
            .collect();
        let mut head = None;
        for n in 0..2 {
            head = Some(JournalHead::after(head.as_ref(), at, &event_json(n)));
        }
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let message = MessageId::from_parts(7, 1);
        let mut bytes = encode(&entries);
        let last = bytes.len() - 3;
        bytes[last] ^= 0x01; // one bit of the second event's JSON
        tree.insert(keys::journal(&message, 0), bytes).unwrap();
        let read_back = read(&tree, &message).unwrap();
        assert!(verify_stored(&read_back, head.as_ref()).is_err());
    }

    #[test]
    fn canonical_records_of_earlier_stores_and_compact_ones_after_them_form_one_chain() {
        let at = Timestamp::from_millis(5);
        let (first, head0) = JournalEntry::encode_after(None, at, &event_json(0));
        let mut old = Vec::new();
        old.extend_from_slice(&(first.len() as u32).to_be_bytes());
        old.extend_from_slice(&first);
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let message = MessageId::from_parts(7, 1);
        tree.insert(keys::journal(&message, 0), old).unwrap();
        tree.insert(
            keys::journal(&message, 1),
            encode(&[compact_entry(1, at, &event_json(1))]),
        )
        .unwrap();
        let head1 = JournalHead::after(Some(&head0), at, &event_json(1));
        let read_back = read(&tree, &message).unwrap();
        assert_eq!(read_back[0], first);
        assert_eq!(verify_stored(&read_back, Some(&head1)).unwrap().len(), 2);
        // A compact entry out of place is damage, reported as such.
        tree.insert(
            keys::journal(&message, 2),
            encode(&[compact_entry(5, at, &event_json(5))]),
        )
        .unwrap();
        assert!(matches!(
            read(&tree, &message),
            Err(StoreError::Corrupt {
                what: "journal",
                ..
            })
        ));
    }
}
