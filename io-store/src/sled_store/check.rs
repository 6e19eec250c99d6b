//! `SledStore::check`: reads every record of the store, so that sled verifies the checksum of
//! every page, and decodes each record whose kind has a value format into its type, reporting
//! every record that fails instead of stopping at the first. Run by `io-server store check`
//! with the server stopped (sled allows one process per directory).

use io_core::{
    Activation, DataRequest, Installation, Message, MessageFlags, MessageId, Profile,
    RemoteContentConfiguration, Service, ServiceAccess, ServiceHistoryItem, ServiceLifecycle,
    StoreError,
};
use serde::Deserialize;

use super::keys::kind;
use super::message_state::MessageState;
use super::{SledStore, backend, decode, journal, pipeline};

/// A record that could not be read or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRecord {
    /// The record kind (`"message"`, `"message state"`, `"journal"`, …), or `"store file"`
    /// when sled found a damaged page before any key could be read.
    pub what: &'static str,
    /// The record's key, hex-encoded (empty when unknown).
    pub key: String,
    /// What failed.
    pub detail: String,
}

/// What [`SledStore::check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Records read.
    pub records: u64,
    /// Messages whose body is stored (their journals are for the caller to verify).
    pub messages: Vec<MessageId>,
    /// Every record that failed.
    pub damaged: Vec<DamagedRecord>,
}

/// Decodes the record at `key` of `kind`; `None` for kinds whose value carries no format to
/// check.
fn decode_record(
    kind: u8,
    key: &[u8],
    value: &[u8],
) -> Option<(&'static str, Result<(), StoreError>)> {
    fn typed<T: for<'de> Deserialize<'de>>(
        what: &'static str,
        value: &[u8],
    ) -> Option<(&'static str, Result<(), StoreError>)> {
        Some((what, decode::<T>(what, value).map(drop)))
    }
    match kind {
        kind::SERVICE => typed::<Service>("service", value),
        kind::ACCESS => typed::<ServiceAccess>("service access", value),
        kind::LOGO => Some(("logo", super::reference::decode_logo(value).map(drop))),
        kind::REMOTE_CONTENT => {
            typed::<RemoteContentConfiguration>("remote-content configuration", value)
        }
        kind::LIFECYCLE => typed::<ServiceLifecycle>("service lifecycle", value),
        kind::HISTORY => typed::<ServiceHistoryItem>("service history", value),
        kind::PROFILE => typed::<Profile>("profile", value),
        kind::ACTIVATION => typed::<Activation>("activation", value),
        kind::INSTALLATION => typed::<Installation>("installation", value),
        kind::FLAGS => typed::<MessageFlags>("message flags", value),
        kind::DATA_REQUEST => typed::<DataRequest>("data request", value),
        kind::MESSAGE => typed::<Message>("message", value),
        kind::IDEMPOTENCY => typed::<pipeline::IdempotencyEntry>("idempotency", value),
        kind::STATE => Some(("message state", MessageState::decode(value).map(drop))),
        kind::ERASED => Some(("erased message", MessageState::decode(value).map(drop))),
        kind::JOURNAL => Some(("journal", journal::check_record(value))),
        kind::EVIDENCE => Some(("evidence", check_evidence(key, value))),
        kind::ATTEMPTS => Some((
            "attempts",
            pipeline::round_entries(value)
                .map(drop)
                .ok_or_else(|| StoreError::Corrupt {
                    what: "attempts",
                    detail: "not a list of attempts".into(),
                }),
        )),
        _ => None,
    }
}

/// A kept receipt: its bytes must still hash to the SHA-256 its key names.
fn check_evidence(key: &[u8], value: &[u8]) -> Result<(), StoreError> {
    use sha2::{Digest, Sha256};
    let corrupt = |detail: &str| StoreError::Corrupt {
        what: "evidence",
        detail: detail.into(),
    };
    let named = key
        .get(17..49)
        .ok_or_else(|| corrupt("a key shorter than its layout"))?;
    let (_, bytes) = pipeline::evidence_value(value)
        .ok_or_else(|| corrupt("a value shorter than its layout"))?;
    if Sha256::digest(bytes).as_slice() == named {
        Ok(())
    } else {
        Err(corrupt("the receipt's bytes no longer match their SHA-256"))
    }
}

impl SledStore {
    /// How many records the store holds (a full count: the length of `check`'s progress).
    pub fn record_count(&self) -> u64 {
        self.tree().len() as u64
    }

    /// Reads and decodes every record (see the module doc), calling `progress` with the count
    /// of records read so far every 1,024 records and at the end. A damaged page ends the scan
    /// where sled cannot go on, reported as a damaged `store file`.
    pub fn check(&self, progress: &mut dyn FnMut(u64)) -> CheckReport {
        let mut report = CheckReport::default();
        for item in self.tree().iter() {
            let (key, value) = match item {
                Ok(record) => record,
                Err(error) => {
                    let detail = backend(error).to_string();
                    report.damaged.push(DamagedRecord {
                        what: "store file",
                        key: String::new(),
                        detail,
                    });
                    break;
                }
            };
            report.records += 1;
            if report.records % 1024 == 0 {
                progress(report.records);
            }
            let Some(&record_kind) = key.first() else {
                continue;
            };
            if record_kind == kind::MESSAGE
                && let Ok(bytes) = <[u8; 16]>::try_from(&key[1..])
            {
                report.messages.push(MessageId::from_bytes(bytes));
            }
            if let Some((what, Err(error))) = decode_record(record_kind, &key, &value) {
                report.damaged.push(DamagedRecord {
                    what,
                    key: hex::encode(&key),
                    detail: error.to_string(),
                });
            }
        }
        progress(report.records);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sled_store::keys;

    #[test]
    fn every_damaged_record_is_reported_with_its_kind_and_the_rest_reads_on() {
        let store = SledStore::temporary().unwrap();
        let id: MessageId = "01J0000000000000000000000A".parse().unwrap();
        let tree = store.tree();
        tree.insert(
            keys::message(kind::MESSAGE, &id),
            &b"{\"not\": \"a message\"}"[..],
        )
        .unwrap();
        tree.insert(keys::journal(&id, 0), &[0, 0, 0, 9, 1][..])
            .unwrap();
        tree.insert(
            keys::text(kind::PROFILE, "RSSMRA85T10A562S"),
            &b"\x00garbage"[..],
        )
        .unwrap();
        tree.insert([b'~', 1], &b"not ours to judge"[..]).unwrap();
        let mut seen = Vec::new();
        let report = store.check(&mut |n| seen.push(n));
        assert_eq!(report.messages, vec![id]);
        let kinds: Vec<&str> = report.damaged.iter().map(|d| d.what).collect();
        assert_eq!(kinds, ["journal", "profile", "message"]);
        assert!(
            report
                .damaged
                .iter()
                .all(|d| !d.key.is_empty() && !d.detail.is_empty())
        );
        assert_eq!(seen.last(), Some(&report.records));
        assert_eq!(report.records, store.record_count());
    }

    #[test]
    fn a_kept_receipt_whose_bytes_changed_is_reported() {
        use sha2::{Digest, Sha256};
        let store = SledStore::temporary().unwrap();
        let id: MessageId = "01J0000000000000000000000A".parse().unwrap();
        let record = |bytes: &[u8]| {
            let mut value = 3u64.to_be_bytes().to_vec();
            value.extend_from_slice(bytes);
            value
        };
        let sound: [u8; 32] = Sha256::digest(b"ricevuta").into();
        let altered: [u8; 32] = Sha256::digest(b"ricevuta originale").into();
        let tree = store.tree();
        tree.insert(keys::evidence(&id, &sound), record(b"ricevuta"))
            .unwrap();
        tree.insert(keys::evidence(&id, &altered), record(b"ricevuta alterata"))
            .unwrap();
        let report = store.check(&mut |_| {});
        assert_eq!(report.damaged.len(), 1, "{:?}", report.damaged);
        assert_eq!(report.damaged[0].what, "evidence");
        assert!(report.damaged[0].detail.contains("SHA-256"));
    }

    #[test]
    fn a_checksum_failure_is_corruption_not_a_retriable_failure() {
        let error = backend(sled::Error::Corruption { at: None, bt: () });
        assert!(matches!(
            error,
            StoreError::Corrupt {
                what: "store file",
                ..
            }
        ));
        assert!(!error.is_retriable());
        let io = backend(sled::Error::Io(std::io::Error::other("disk")));
        assert!(io.is_retriable());
    }
}
