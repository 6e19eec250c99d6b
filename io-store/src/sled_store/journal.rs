//! The journal's storage: the entries a write appends to a message's journal are one record,
//! keyed by message and first seq, holding the entries' canonical bytes length-prefixed. An
//! entry is written once and never rewritten; the message's state keeps the head, so a
//! journal's length and its newest hash are read without reading the entries.

use io_core::{MessageId, StoreError};

use super::backend;
use super::keys::{self, kind};

/// The stored form of entries written together.
pub(crate) fn encode(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 4).sum());
    for entry in entries {
        out.extend_from_slice(&(entry.len() as u32).to_be_bytes());
        out.extend_from_slice(entry);
    }
    out
}

pub(crate) fn decode_into(bytes: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), StoreError> {
    let corrupt = || StoreError::Corrupt {
        what: "journal",
        detail: "truncated record".into(),
    };
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(corrupt());
        }
        let (entry, tail) = tail.split_at(len);
        out.push(entry.to_vec());
        rest = tail;
    }
    Ok(())
}

/// Every entry of `message`'s journal, in sequence order.
pub(crate) fn read(tree: &sled::Tree, message: &MessageId) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut entries = Vec::new();
    for item in tree.scan_prefix(keys::message(kind::JOURNAL, message)) {
        let (_, bytes) = item.map_err(backend)?;
        decode_into(&bytes, &mut entries)?;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_truncation_is_corrupt() {
        let entries = vec![b"{\"seq\":0}".to_vec(), Vec::new(), b"x".to_vec()];
        let bytes = encode(&entries);
        let mut back = Vec::new();
        decode_into(&bytes, &mut back).unwrap();
        assert_eq!(back, entries);
        for cut in 1..bytes.len() {
            let mut partial = Vec::new();
            let whole_entries = decode_into(&bytes[..cut], &mut partial).is_ok();
            // Only cuts at entry boundaries decode; the head then catches the missing tail.
            assert!(!whole_entries || [13, 17].contains(&cut), "cut {cut}");
        }
    }
}
