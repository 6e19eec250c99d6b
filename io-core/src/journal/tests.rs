use super::*;
use crate::{ChannelKind, DeliveryState, FiscalCode, OutcomeRecord};

fn chain(events: usize) -> Vec<JournalEntry> {
    let service = ServiceId::parse("svc").unwrap();
    let recipient = FiscalCode::parse("RSSMRA85T10A562S").unwrap().hash();
    let mut entries: Vec<JournalEntry> = Vec::new();
    for n in 0..events {
        let event = if n == 0 {
            JournalEvent::Accepted {
                service_id: service.clone(),
                recipient: recipient.clone(),
                content_sha256: "ab".repeat(32),
                time_to_live_secs: 3600,
            }
        } else {
            JournalEvent::Attempted {
                channel: ChannelKind::Email,
                attempt: n as u32,
                outcome: OutcomeRecord::Delivered {
                    provider_ref: Some(format!("ref-{n}")),
                },
                state: DeliveryState::Sent,
                next_attempt_at: None,
            }
        };
        let head = entries.last().map(JournalEntry::head);
        entries.push(JournalEntry::append_after(
            head.as_ref(),
            Timestamp::from_millis(1000 + n as i64),
            event,
        ));
    }
    entries
}

fn head(entries: &[JournalEntry]) -> Option<JournalHead> {
    entries.last().map(JournalEntry::head)
}

#[test]
fn an_intact_chain_verifies() {
    let entries = chain(4);
    assert_eq!(entries[0].prev_hash, GENESIS_HASH);
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    verify(&entries, head(&entries).as_ref()).unwrap();
    let stored: Vec<Vec<u8>> = entries.iter().map(JournalEntry::to_bytes).collect();
    assert_eq!(
        verify_stored(&stored, head(&entries).as_ref()).unwrap(),
        entries
    );
    verify(&[], None).unwrap();
}

#[test]
fn every_single_byte_alteration_is_detected() {
    let entries = chain(3);
    let head = head(&entries);
    let stored: Vec<Vec<u8>> = entries.iter().map(JournalEntry::to_bytes).collect();
    for index in 0..stored.len() {
        for position in 0..stored[index].len() {
            for replacement in [b'0', b'a', b'"', b'}', b' '] {
                let mut altered = stored.clone();
                if altered[index][position] == replacement {
                    continue;
                }
                altered[index][position] = replacement;
                assert!(
                    verify_stored(&altered, head.as_ref()).is_err(),
                    "entry {index} byte {position} -> {:?} went unnoticed",
                    replacement as char
                );
            }
        }
    }
}

#[test]
fn an_altered_event_is_a_hash_mismatch() {
    let mut entries = chain(3);
    entries[1].at = Timestamp::from_millis(5);
    let head = head(&entries);
    assert_eq!(
        verify(&entries, head.as_ref()),
        Err(JournalError::HashMismatch { seq: 1 })
    );
}

#[test]
fn a_removed_entry_is_detected() {
    let entries = chain(4);
    let head = head(&entries);
    let mut middle_removed = entries.clone();
    middle_removed.remove(1);
    assert!(matches!(
        verify(&middle_removed, head.as_ref()),
        Err(JournalError::Sequence {
            index: 1,
            expected: 1,
            found: 2
        })
    ));
    let mut tail_removed = entries.clone();
    tail_removed.pop();
    assert_eq!(
        verify(&tail_removed, head.as_ref()),
        Err(JournalError::HeadMismatch {
            expected: Some(3),
            found: Some(2)
        })
    );
}

#[test]
fn reordered_entries_are_detected() {
    let mut entries = chain(4);
    let head = head(&entries);
    entries.swap(1, 2);
    assert!(verify(&entries, head.as_ref()).is_err());
    // Renumbering the swapped entries does not help: the hashes no longer chain.
    entries[1].seq = 1;
    entries[2].seq = 2;
    assert!(matches!(
        verify(&entries, head.as_ref()),
        Err(JournalError::BrokenChain { .. } | JournalError::HashMismatch { .. })
    ));
}

#[test]
fn a_rewritten_history_with_recomputed_hashes_fails_against_the_head() {
    let entries = chain(3);
    let genuine_head = head(&entries);
    // An attacker rebuilds a consistent chain with a different event.
    let mut forged: Vec<JournalEntry> = Vec::new();
    for (n, entry) in entries.iter().enumerate() {
        let mut event = entry.event.clone();
        if n == 2 {
            event = JournalEvent::Expired {
                channel: ChannelKind::Email,
            };
        }
        let prev = forged.last().map(JournalEntry::head);
        forged.push(JournalEntry::append_after(prev.as_ref(), entry.at, event));
    }
    verify(&forged, head(&forged).as_ref()).unwrap();
    assert!(matches!(
        verify(&forged, genuine_head.as_ref()),
        Err(JournalError::HeadMismatch { .. })
    ));
}

#[test]
fn encoded_entries_are_the_canonical_bytes_of_every_event_kind() {
    let at = Timestamp::from_millis(-1_234);
    let events = vec![
        JournalEvent::Rejected {
            reason: crate::RejectionReason::UserNotFound,
        },
        JournalEvent::Failed {
            detail: "service \"x\" gone\n\u{1F600}".into(),
        },
        JournalEvent::OutcomeUnknown {
            channel: crate::ChannelKind::Push,
            attempt: 3,
        },
        JournalEvent::Attempted {
            channel: crate::ChannelKind::Email,
            attempt: 2,
            outcome: crate::OutcomeRecord::Transient {
                retry_after_ms: Some(5),
                cause: crate::TransientCause::ServerError(503),
            },
            state: crate::DeliveryState::Retrying,
            next_attempt_at: Some(Timestamp::from_millis(9)),
        },
    ];
    let mut head: Option<JournalHead> = None;
    for event in events
        .into_iter()
        .chain(chain(3).into_iter().map(|e| e.event))
    {
        let expected = JournalEntry::append_after(head.as_ref(), at, event.clone());
        let json = serde_json::to_vec(&event).unwrap();
        let (bytes, next) = JournalEntry::encode_after(head.as_ref(), at, &json);
        assert_eq!(bytes, expected.to_bytes(), "{event:?}");
        assert_eq!(next, expected.head());
        assert_eq!(JournalHead::after(head.as_ref(), at, &json), next);
        assert_eq!(JournalEntry::from_bytes(0, &bytes).unwrap(), expected);
        head = Some(next);
    }
}
