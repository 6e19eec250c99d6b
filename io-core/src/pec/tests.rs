use super::*;
use crate::{DeliveryTarget, EmailAddress, FiscalCode, ServiceId};

const T0: Timestamp = Timestamp::from_millis(1_780_000_000_000);

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

fn message() -> MessageId {
    "01JPEC0000000000000000000A".parse().expect("valid ULID")
}

fn delivery(state: DeliveryState) -> Delivery {
    Delivery {
        id: DeliveryId::new(message(), ChannelKind::Pec),
        service_id: ServiceId::parse("svc").expect("valid"),
        fiscal_code: FiscalCode::parse("RSSMRA85T10A562S").expect("valid"),
        target: DeliveryTarget::Pec {
            address: EmailAddress::parse("mario.rossi@pec.example.it").expect("valid"),
        },
        state,
        attempts: 1,
        outcome_pending: false,
        devices_notified: Vec::new(),
        next_attempt_at: T0.plus(minutes(15)),
        expires_at: T0.plus(minutes(60)),
        last_outcome: None,
        legal_delivery_at: None,
        updated_at: T0,
    }
}

fn submitted(accepted_at: Option<Timestamp>) -> Delivery {
    delivery(DeliveryState::Submitted {
        submitted_at: T0,
        accepted_at,
    })
}

fn receipt(kind: ReceiptKind, issued_at: Timestamp) -> Receipt {
    Receipt {
        delivery: DeliveryId::new(message(), ChannelKind::Pec),
        kind,
        issued_at,
        provider_id: "opec210.20260601.1@pec.provider.it".into(),
        detail: Some("casella piena".into()),
        signer: Some("CN=Posta certificata, O=Gestore".into()),
        raw: b"Received: ...\r\n\r\nbody".to_vec(),
    }
}

fn after(delivery: &Delivery, kind: ReceiptKind) -> Option<Delivery> {
    after_receipt(
        delivery,
        &receipt(kind, T0.plus(minutes(1))),
        ReceiptWindows::default(),
        T0.plus(minutes(2)),
    )
}

#[test]
fn a_message_id_leads_back_to_its_pec_delivery() {
    let id = message_id(message(), "pec.comune.example.it");
    assert_eq!(id, format!("<{}.pec@pec.comune.example.it>", message()));
    let expected = Some(DeliveryId::new(message(), ChannelKind::Pec));
    assert_eq!(delivery_of(&id), expected);
    assert_eq!(delivery_of(id.trim_matches(['<', '>'])), expected);
    assert_eq!(delivery_of(&format!("  {id} ")), expected);
    for foreign in [
        "",
        "<>",
        "<abc@example.it>",
        "<01JPEC0000000000000000000A@pec.example.it>",
        "<01JPEC0000000000000000000A.email@x>",
        "<not-a-ulid.pec@x>",
        "<81JPEC0000000000000000000A.pec@x>",
    ] {
        assert_eq!(delivery_of(foreign), None, "{foreign:?}");
    }
}

#[test]
fn acceptance_moves_the_deadline_to_the_delivery_window() {
    let next = after(&submitted(None), ReceiptKind::Accettazione).expect("a change");
    assert_eq!(
        next.state,
        DeliveryState::Submitted {
            submitted_at: T0,
            accepted_at: Some(T0.plus(minutes(1))),
        }
    );
    assert_eq!(
        next.next_attempt_at,
        T0.plus(Duration::from_secs(26 * 3600))
    );
    assert_eq!(next.updated_at, T0.plus(minutes(2)));
    // Accepted twice (the second submission's receipt): nothing more changes.
    assert_eq!(after(&next, ReceiptKind::Accettazione), None);
}

#[test]
fn acceptance_of_an_earlier_submission_stops_the_retry() {
    let next = after(
        &delivery(DeliveryState::Retrying),
        ReceiptKind::Accettazione,
    )
    .expect("a change");
    let issued = T0.plus(minutes(1));
    assert_eq!(
        next.state,
        DeliveryState::Submitted {
            submitted_at: issued,
            accepted_at: Some(issued),
        }
    );
}

#[test]
fn delivery_is_sent_at_the_legal_time_of_its_receipt() {
    for before in [
        submitted(None),
        submitted(Some(T0)),
        delivery(DeliveryState::Retrying),
    ] {
        let next = after(&before, ReceiptKind::AvvenutaConsegna).expect("a change");
        assert_eq!(next.state, DeliveryState::Sent);
        assert_eq!(next.legal_delivery_at, Some(T0.plus(minutes(1))));
        assert_eq!(
            next.last_outcome,
            Some(OutcomeRecord::Delivered {
                provider_ref: Some("opec210.20260601.1@pec.provider.it".into())
            })
        );
    }
}

#[test]
fn refusals_and_errors_fail_with_the_provider_s_reason() {
    for (kind, code) in [
        (ReceiptKind::NonAccettazione, failure::NOT_ACCEPTED),
        (ReceiptKind::ErroreConsegna, failure::DELIVERY_ERROR),
        (ReceiptKind::RilevazioneVirus, failure::VIRUS_DETECTED),
    ] {
        let next = after(&submitted(Some(T0)), kind).expect("a change");
        assert_eq!(
            next.state,
            DeliveryState::Failed {
                reason: FailureReason::Permanent {
                    reason: PermanentReason::new(code, "casella piena"),
                },
            },
            "{kind}"
        );
    }
}

#[test]
fn notices_and_late_receipts_change_nothing() {
    for kind in [
        ReceiptKind::PresaInCarico,
        ReceiptKind::PreavvisoErroreConsegna,
    ] {
        assert_eq!(after(&submitted(Some(T0)), kind), None, "{kind}");
    }
    let sent = delivery(DeliveryState::Sent);
    let failed = delivery(DeliveryState::Failed {
        reason: FailureReason::InvalidRecipient,
    });
    for final_delivery in [sent, failed, delivery(DeliveryState::Expired)] {
        for kind in [
            ReceiptKind::Accettazione,
            ReceiptKind::AvvenutaConsegna,
            ReceiptKind::ErroreConsegna,
        ] {
            assert_eq!(after(&final_delivery, kind), None, "{kind}");
        }
    }
}

#[test]
fn an_unverified_receipt_changes_nothing() {
    for kind in [
        ReceiptKind::Accettazione,
        ReceiptKind::AvvenutaConsegna,
        ReceiptKind::ErroreConsegna,
    ] {
        let mut unsigned = receipt(kind, T0);
        unsigned.signer = None;
        let changed = after_receipt(&submitted(None), &unsigned, ReceiptWindows::default(), T0);
        assert_eq!(changed, None, "{kind}");
    }
}

#[test]
fn a_receipt_s_evidence_name_is_the_sha256_of_its_bytes() {
    let r = receipt(ReceiptKind::Accettazione, T0);
    assert_eq!(r.sha256(), hex::encode(Sha256::digest(&r.raw)));
    assert_eq!(r.sha256().len(), 64);
    assert!(!format!("{r:?}").contains("body"), "Debug hides the bytes");
}
