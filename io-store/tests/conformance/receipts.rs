//! Cases of PEC receipts: evidence kept byte for byte, the delivery's state, duplicates, and a
//! receipt racing an attempt in flight.

use io_core::pec::{Receipt, ReceiptKind, ReceiptWindows};
use io_core::{Evidence, ReceiptOutcome, ReceiptRecord};

use super::*;

/// A PEC delivery submitted at `t(2_000)` (the acceptance receipt due within the window).
async fn submitted(store: &impl Store) -> (Message, Delivery) {
    let message = accepted(store, "svc", &citizen(), T0, 1).await;
    let pec = delivery(&message, ChannelKind::Pec, t(1_000));
    process(store, &message, vec![pec.clone()], t(1_000)).await;
    let task = claim_one(store, "svc", t(1_000)).await;
    let mut after = pec.clone();
    after.attempts = 1;
    after.state = DeliveryState::Submitted {
        submitted_at: t(2_000),
        accepted_at: None,
    };
    after.next_attempt_at = t(900_000);
    after.updated_at = t(2_000);
    let outcome = OutcomeRecord::Submitted {
        provider_ref: Some("250 2.0.0 queued".into()),
    };
    after.last_outcome = Some(outcome.clone());
    let event = JournalEvent::Attempted {
        channel: ChannelKind::Pec,
        attempt: 1,
        outcome,
        state: after.state.clone(),
        next_attempt_at: Some(after.next_attempt_at),
    };
    store
        .commit_delivery(DeliveryRecord {
            task,
            delivery: after.clone(),
            events: vec![event],
            effects: vec![],
            at: t(2_000),
        })
        .await
        .unwrap();
    (message, after)
}

fn receipt(message: &Message, kind: ReceiptKind, issued_at: Timestamp, raw: &[u8]) -> Receipt {
    Receipt {
        delivery: DeliveryId::new(message.id, ChannelKind::Pec),
        kind,
        issued_at,
        provider_id: "opec210.1@pec.provider.example".into(),
        detail: None,
        signer: Some("CN=Posta certificata".into()),
        raw: raw.to_vec(),
    }
}

fn record(receipt: Receipt, at: Timestamp) -> ReceiptRecord {
    ReceiptRecord {
        receipt,
        windows: ReceiptWindows::default(),
        at,
    }
}

pub(crate) async fn receipts_are_kept_byte_for_byte_and_move_the_delivery_to_sent(
    store: impl Store,
) {
    let (message, submitted) = submitted(&store).await;
    let accepted_raw = b"X-Ricevuta: accettazione\r\n\r\n\x00\xffbinary-safe".to_vec();
    let accepted = receipt(&message, ReceiptKind::Accettazione, t(3_000), &accepted_raw);
    let outcome = store
        .commit_receipt(record(accepted.clone(), t(3_500)))
        .await
        .unwrap();
    let ReceiptOutcome::Recorded { service_id, events } = outcome else {
        panic!("expected Recorded, got {outcome:?}");
    };
    assert_eq!(service_id.as_str(), "svc");
    let accepted_state = DeliveryState::Submitted {
        submitted_at: t(2_000),
        accepted_at: Some(t(3_000)),
    };
    assert_eq!(
        events,
        vec![JournalEvent::ReceiptRecorded {
            channel: ChannelKind::Pec,
            receipt: ReceiptKind::Accettazione,
            issued_at: t(3_000),
            provider_id: "opec210.1@pec.provider.example".into(),
            sha256: accepted.sha256(),
            signed_by: Some("CN=Posta certificata".into()),
            state: accepted_state.clone(),
        }]
    );
    let now = store.delivery(&submitted.id).await.unwrap().unwrap();
    assert_eq!(now.state, accepted_state);
    // The task is due at the end of the delivery window, counted from submission.
    let window = ReceiptWindows::default().delivery;
    assert_eq!(now.next_attempt_at, t(2_000).plus(window));
    assert_eq!(
        store.next_due_at().await.unwrap(),
        Some(now.next_attempt_at)
    );

    let delivered_raw = b"X-Ricevuta: avvenuta-consegna\r\n\r\nconsegnata".to_vec();
    let delivered = receipt(
        &message,
        ReceiptKind::AvvenutaConsegna,
        t(4_000),
        &delivered_raw,
    );
    store
        .commit_receipt(record(delivered.clone(), t(4_500)))
        .await
        .unwrap();
    let sent = store.delivery(&submitted.id).await.unwrap().unwrap();
    assert_eq!(sent.state, DeliveryState::Sent);
    assert_eq!(sent.legal_delivery_at, Some(t(4_000)));
    assert_eq!(sent.attempts, 1);
    assert_eq!(
        store.backlog().await.unwrap(),
        0,
        "a SENT delivery is no work"
    );

    assert_eq!(
        store.evidence(&message.id).await.unwrap(),
        vec![
            Evidence {
                sha256: accepted.sha256(),
                bytes: accepted_raw,
            },
            Evidence {
                sha256: delivered.sha256(),
                bytes: delivered_raw,
            },
        ]
    );
    let journal = verified_journal(&store, &message.id).await;
    assert_eq!(
        journal.len(),
        5,
        "accepted, processed, attempted, two receipts"
    );
}

pub(crate) async fn a_receipt_read_again_writes_nothing(store: impl Store) {
    let (message, _) = submitted(&store).await;
    let accepted = receipt(&message, ReceiptKind::Accettazione, t(3_000), b"same bytes");
    assert!(matches!(
        store
            .commit_receipt(record(accepted.clone(), t(3_500)))
            .await,
        Ok(ReceiptOutcome::Recorded { .. })
    ));
    let journal = verified_journal(&store, &message.id).await.len();
    for at in [t(3_600), t(9_000)] {
        assert_eq!(
            store.commit_receipt(record(accepted.clone(), at)).await,
            Ok(ReceiptOutcome::Duplicate)
        );
    }
    assert_eq!(verified_journal(&store, &message.id).await.len(), journal);
    assert_eq!(store.evidence(&message.id).await.unwrap().len(), 1);
}

pub(crate) async fn a_receipt_for_no_pec_delivery_writes_nothing(store: impl Store) {
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let email = delivery(&message, ChannelKind::Email, t(1_000));
    process(&store, &message, vec![email], t(1_000)).await;
    let journal = verified_journal(&store, &message.id).await.len();
    let stray = receipt(&message, ReceiptKind::Accettazione, t(3_000), b"stray");
    assert_eq!(
        store.commit_receipt(record(stray, t(3_500))).await,
        Ok(ReceiptOutcome::UnknownDelivery)
    );
    let never_accepted = super::message("svc", &citizen(), T0, 99);
    let unknown = Receipt {
        delivery: DeliveryId::new(never_accepted.id, ChannelKind::Pec),
        ..receipt(&message, ReceiptKind::Accettazione, t(3_000), b"unknown")
    };
    assert_eq!(
        store.commit_receipt(record(unknown, t(3_500))).await,
        Ok(ReceiptOutcome::UnknownDelivery)
    );
    assert_eq!(verified_journal(&store, &message.id).await.len(), journal);
    assert!(store.evidence(&message.id).await.unwrap().is_empty());
}

pub(crate) async fn a_notice_or_a_late_receipt_is_evidence_only(store: impl Store) {
    let (message, submitted) = submitted(&store).await;
    let warning = receipt(
        &message,
        ReceiptKind::PreavvisoErroreConsegna,
        t(3_000),
        b"preavviso",
    );
    store
        .commit_receipt(record(warning, t(3_500)))
        .await
        .unwrap();
    assert_eq!(
        store.delivery(&submitted.id).await.unwrap(),
        Some(submitted.clone())
    );
    let error = receipt(&message, ReceiptKind::ErroreConsegna, t(4_000), b"errore");
    store.commit_receipt(record(error, t(4_500))).await.unwrap();
    let failed = store.delivery(&submitted.id).await.unwrap().unwrap();
    assert!(
        matches!(failed.state, DeliveryState::Failed { .. }),
        "{failed:?}"
    );
    assert_eq!(store.backlog().await.unwrap(), 0);
    // A delivery receipt after the final error: kept, the state unchanged.
    let late = receipt(
        &message,
        ReceiptKind::AvvenutaConsegna,
        t(5_000),
        b"tardiva",
    );
    store.commit_receipt(record(late, t(5_500))).await.unwrap();
    assert_eq!(store.delivery(&submitted.id).await.unwrap(), Some(failed));
    assert_eq!(store.evidence(&message.id).await.unwrap().len(), 3);
    assert_eq!(verified_journal(&store, &message.id).await.len(), 6);
}

pub(crate) async fn a_receipt_fences_an_attempt_in_flight(store: impl Store) {
    let (message, submitted) = submitted(&store).await;
    // The acceptance is overdue: a worker claims the delivery and starts a resubmission.
    let task = claim_one(&store, "svc", submitted.next_attempt_at).await;
    let mut started = submitted.clone();
    started.attempts = 2;
    started.outcome_pending = true;
    let results = store
        .start_attempts(vec![AttemptStart {
            task: task.clone(),
            delivery: started.clone(),
            event: None,
            at: t(900_000),
        }])
        .await;
    assert_eq!(results, vec![Ok(())]);
    // Meanwhile the first submission's acceptance arrives.
    let accepted = receipt(
        &message,
        ReceiptKind::Accettazione,
        t(3_000),
        b"accettazione",
    );
    let outcome = store
        .commit_receipt(record(accepted, t(900_100)))
        .await
        .unwrap();
    let ReceiptOutcome::Recorded { events, .. } = outcome else {
        panic!("expected Recorded, got {outcome:?}");
    };
    assert_eq!(
        events.first(),
        Some(&JournalEvent::OutcomeUnknown {
            channel: ChannelKind::Pec,
            attempt: 2,
        })
    );
    let now = store.delivery(&submitted.id).await.unwrap().unwrap();
    assert_eq!(
        now.attempts, 2,
        "the resubmission counts as a provider contact"
    );
    assert!(!now.outcome_pending);
    assert!(matches!(
        now.state,
        DeliveryState::Submitted {
            accepted_at: Some(_),
            ..
        }
    ));
    // The resubmission's outcome comes too late: its lease was released.
    let (after, event) = attempted(
        &started,
        DeliveryState::Retrying,
        timed_out(),
        t(900_200),
        t(960_000),
    );
    let lost = store
        .commit_delivery(DeliveryRecord {
            task,
            delivery: after,
            events: vec![event],
            effects: vec![],
            at: t(900_200),
        })
        .await;
    assert!(
        matches!(lost, Err(StoreError::LeaseLost { .. })),
        "{lost:?}"
    );
    assert_eq!(store.delivery(&submitted.id).await.unwrap(), Some(now));
}
