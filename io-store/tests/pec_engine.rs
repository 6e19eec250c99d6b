//! The PEC state machine through the engine on the sled store, under tokio's paused clock:
//! a message with legal value goes to the digital domicile, is SUBMITTED, and its receipts
//! (recorded as the mailbox reader hands them over) make it SENT at the legal delivery time or
//! FAILED; an overdue acceptance resubmits with the same delivery; an overdue delivery receipt
//! fails it; a restart between submission and receipt loses nothing and counts nothing twice.

mod support;

use std::sync::Arc;
use std::time::Duration;

use io_core::pec::{Receipt, ReceiptKind, ReceiptWindows, failure};
use io_core::{
    Channel, ChannelKind, Clock, DeliveryId, DeliveryState, EmailAddress, Engine, EngineConfig,
    FailureReason, JournalEvent, MessageId, Outcome, ReceiptOutcome, Store, Submission, Timestamp,
    TokioClock,
};
use io_store::SledStore;
use support::{RecordingChannel, T0, citizen, profile_with_email, service, submission};

const DOMICILE: &str = "mario.rossi@pec.example.it";

fn submitted() -> Outcome {
    Outcome::Submitted {
        provider_ref: Some("250 2.0.0 Ok: queued".into()),
    }
}

struct World {
    engine: Engine<SledStore>,
    store: Arc<SledStore>,
    pec: Arc<RecordingChannel>,
    clock: Arc<dyn Clock>,
}

fn engine(
    store: Arc<SledStore>,
    pec: Arc<RecordingChannel>,
    clock: Arc<dyn Clock>,
) -> Engine<SledStore> {
    let channels: Vec<Arc<dyn Channel>> = vec![pec];
    let config = EngineConfig {
        rng_seed: Some(7),
        ..EngineConfig::default()
    };
    Engine::new(store, channels, clock, config).unwrap()
}

/// A service, and a citizen with a digital domicile; the PEC channel answers `script`.
async fn world(dir: &std::path::Path, script: Vec<Outcome>) -> World {
    let store = Arc::new(SledStore::open(dir).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(T0));
    store.put_service(&service("svc")).await.unwrap();
    let mut profile = profile_with_email(&citizen(1));
    profile.digital_domicile = Some(EmailAddress::parse(DOMICILE).unwrap());
    store.put_profile(&profile).await.unwrap();
    let pec = RecordingChannel::new(ChannelKind::Pec, clock.clone(), script);
    World {
        engine: engine(store.clone(), pec.clone(), clock.clone()),
        store,
        pec,
        clock,
    }
}

fn legal(subject: &str) -> Submission {
    let mut submission = submission("svc", &citizen(1), subject);
    submission.message.legal_value = Some(true);
    submission
}

impl World {
    async fn delivery(&self, id: MessageId) -> io_core::Delivery {
        let delivery = DeliveryId::new(id, ChannelKind::Pec);
        self.store.delivery(&delivery).await.unwrap().unwrap()
    }

    async fn advance_and_run(&self, by: Duration) {
        tokio::time::advance(by).await;
        self.engine.run_until_idle().await.unwrap();
    }

    fn receipt(&self, id: MessageId, kind: ReceiptKind, raw: &str) -> Receipt {
        Receipt {
            delivery: DeliveryId::new(id, ChannelKind::Pec),
            kind,
            issued_at: self.clock.now().minus(Duration::from_secs(1)),
            provider_id: "opec210.20260101.1@pec.provider.example".into(),
            detail: Some("destinatario sconosciuto".into()),
            signer: Some("CN=Posta certificata, O=Gestore".into()),
            raw: raw.as_bytes().to_vec(),
        }
    }

    async fn events(&self, id: MessageId) -> Vec<JournalEvent> {
        self.engine
            .verify_journal(&id)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.event)
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_legal_message_is_sent_when_the_delivery_receipt_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path(), vec![submitted()]).await;
    let id = w.engine.submit(legal("Notifica atto")).await.unwrap().id;
    w.engine.run_until_idle().await.unwrap();

    let submitted_at = w.clock.now();
    let delivery = w.delivery(id).await;
    assert_eq!(
        delivery.state,
        DeliveryState::Submitted {
            submitted_at,
            accepted_at: None
        }
    );
    assert_eq!(delivery.attempts, 1);
    assert_eq!(w.pec.calls().len(), 1);

    w.advance_and_run(Duration::from_secs(5)).await;
    let accepted = w.receipt(id, ReceiptKind::Accettazione, "accettazione");
    assert!(matches!(
        w.engine.record_receipt(accepted).await,
        Ok(ReceiptOutcome::Recorded { .. })
    ));
    w.advance_and_run(Duration::from_secs(60)).await;
    let delivered = w.receipt(id, ReceiptKind::AvvenutaConsegna, "avvenuta-consegna");
    let legal_time = delivered.issued_at;
    w.engine.record_receipt(delivered).await.unwrap();

    let delivery = w.delivery(id).await;
    assert_eq!(delivery.state, DeliveryState::Sent);
    assert_eq!(delivery.legal_delivery_at, Some(legal_time));
    // Nothing more happens: no resubmission, no timeout, however long we wait.
    w.advance_and_run(Duration::from_secs(48 * 3600)).await;
    assert_eq!(w.pec.calls().len(), 1);
    assert_eq!(w.delivery(id).await.state, DeliveryState::Sent);
    let receipts: Vec<ReceiptKind> = w
        .events(id)
        .await
        .into_iter()
        .filter_map(|event| match event {
            JournalEvent::ReceiptRecorded { receipt, .. } => Some(receipt),
            _ => None,
        })
        .collect();
    assert_eq!(
        receipts,
        [ReceiptKind::Accettazione, ReceiptKind::AvvenutaConsegna]
    );
    assert_eq!(w.store.evidence(&id).await.unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_overdue_acceptance_resubmits_the_same_delivery_then_an_overdue_delivery_fails() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path(), vec![submitted(), submitted()]).await;
    let id = w.engine.submit(legal("Notifica atto")).await.unwrap().id;
    w.engine.run_until_idle().await.unwrap();
    let windows = ReceiptWindows::default();

    // Just before the acceptance window ends: nothing happens.
    w.advance_and_run(windows.acceptance - Duration::from_secs(1))
        .await;
    assert_eq!(w.pec.calls().len(), 1);
    // Past it: submitted again, the same delivery (so the same Message-ID).
    w.advance_and_run(Duration::from_secs(1)).await;
    let calls = w.pec.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].delivery, calls[1].delivery);
    let resubmitted = w.delivery(id).await;
    assert_eq!(resubmitted.attempts, 2);
    assert!(w.events(id).await.contains(&JournalEvent::ReceiptOverdue {
        channel: ChannelKind::Pec,
        awaited: ReceiptKind::Accettazione,
        state: DeliveryState::Retrying,
    }));

    // Accepted this time, but no delivery receipt ever comes.
    let DeliveryState::Submitted { submitted_at, .. } = resubmitted.state else {
        panic!("expected SUBMITTED, got {resubmitted:?}");
    };
    w.advance_and_run(Duration::from_secs(3)).await;
    w.engine
        .record_receipt(w.receipt(id, ReceiptKind::Accettazione, "accettazione"))
        .await
        .unwrap();
    let deadline = submitted_at.plus(windows.delivery);
    w.advance_and_run(deadline.since(w.clock.now()) - Duration::from_secs(1))
        .await;
    assert!(matches!(
        w.delivery(id).await.state,
        DeliveryState::Submitted { .. }
    ));
    w.advance_and_run(Duration::from_secs(1)).await;
    let failed = w.delivery(id).await;
    let DeliveryState::Failed {
        reason: FailureReason::Permanent { reason },
    } = &failed.state
    else {
        panic!("expected FAILED, got {failed:?}");
    };
    assert_eq!(reason.code, failure::NO_DELIVERY_RECEIPT);
    assert_eq!(w.pec.calls().len(), 2, "a failure is not resubmitted");
    assert_eq!(w.store.backlog().await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_or_a_delivery_error_fails_with_the_provider_s_reason() {
    for (kind, code) in [
        (ReceiptKind::NonAccettazione, failure::NOT_ACCEPTED),
        (ReceiptKind::ErroreConsegna, failure::DELIVERY_ERROR),
        (ReceiptKind::RilevazioneVirus, failure::VIRUS_DETECTED),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let w = world(dir.path(), vec![submitted()]).await;
        let id = w.engine.submit(legal("Notifica atto")).await.unwrap().id;
        w.engine.run_until_idle().await.unwrap();
        w.advance_and_run(Duration::from_secs(30)).await;
        w.engine
            .record_receipt(w.receipt(id, kind, kind.as_str()))
            .await
            .unwrap();
        let failed = w.delivery(id).await;
        let DeliveryState::Failed {
            reason: FailureReason::Permanent { reason },
        } = &failed.state
        else {
            panic!("{kind}: expected FAILED, got {failed:?}");
        };
        assert_eq!(reason.code, code, "{kind}");
        assert_eq!(reason.detail, "destinatario sconosciuto", "{kind}");
        w.advance_and_run(Duration::from_secs(48 * 3600)).await;
        assert_eq!(w.pec.calls().len(), 1, "{kind}: not resubmitted");
    }
}

#[tokio::test(start_paused = true)]
async fn a_preavviso_is_recorded_and_the_delivery_keeps_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path(), vec![submitted()]).await;
    let id = w.engine.submit(legal("Notifica atto")).await.unwrap().id;
    w.engine.run_until_idle().await.unwrap();
    w.advance_and_run(Duration::from_secs(2)).await;
    w.engine
        .record_receipt(w.receipt(id, ReceiptKind::Accettazione, "a"))
        .await
        .unwrap();
    w.advance_and_run(Duration::from_secs(12 * 3600)).await;
    let before = w.delivery(id).await;
    w.engine
        .record_receipt(w.receipt(id, ReceiptKind::PreavvisoErroreConsegna, "p"))
        .await
        .unwrap();
    assert_eq!(w.delivery(id).await, before);
    assert!(w.events(id).await.iter().any(|event| matches!(
        event,
        JournalEvent::ReceiptRecorded {
            receipt: ReceiptKind::PreavvisoErroreConsegna,
            ..
        }
    )));
    w.advance_and_run(Duration::from_secs(3600)).await;
    w.engine
        .record_receipt(w.receipt(id, ReceiptKind::AvvenutaConsegna, "c"))
        .await
        .unwrap();
    assert_eq!(w.delivery(id).await.state, DeliveryState::Sent);
}

#[tokio::test(start_paused = true)]
async fn a_restart_between_submission_and_receipts_loses_nothing_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let w = world(dir.path(), vec![submitted()]).await;
        let id = w.engine.submit(legal("Notifica atto")).await.unwrap().id;
        w.engine.run_until_idle().await.unwrap();
        w.advance_and_run(Duration::from_secs(2)).await;
        // The acceptance is recorded, then the process stops before the mailbox reader moves
        // the receipt out of the inbox.
        w.engine
            .record_receipt(w.receipt(id, ReceiptKind::Accettazione, "accettazione"))
            .await
            .unwrap();
        id
    };
    // Reopened: the reader finds the same acceptance again, then the delivery receipt.
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(T0.plus(Duration::from_secs(60))));
    let pec = RecordingChannel::new(ChannelKind::Pec, clock.clone(), vec![]);
    let w = World {
        engine: engine(store.clone(), pec.clone(), clock.clone()),
        store,
        pec,
        clock,
    };
    let mut again = w.receipt(id, ReceiptKind::Accettazione, "accettazione");
    again.issued_at = Timestamp::from_millis(0);
    assert_eq!(
        w.engine.record_receipt(again).await,
        Ok(ReceiptOutcome::Duplicate)
    );
    w.engine.run_until_idle().await.unwrap();
    assert!(w.pec.calls().is_empty(), "accepted: nothing to resubmit");
    w.engine
        .record_receipt(w.receipt(id, ReceiptKind::AvvenutaConsegna, "avvenuta-consegna"))
        .await
        .unwrap();
    let delivery = w.delivery(id).await;
    assert_eq!(delivery.state, DeliveryState::Sent);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(w.store.evidence(&id).await.unwrap().len(), 2);
    let recorded = w
        .events(id)
        .await
        .into_iter()
        .filter(|event| matches!(event, JournalEvent::ReceiptRecorded { .. }))
        .count();
    assert_eq!(recorded, 2);
}
