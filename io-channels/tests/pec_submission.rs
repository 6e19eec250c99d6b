//! The PEC channel against a real SMTP server (aiosmtpd on loopback, STARTTLS and
//! authentication required, as PEC providers do), through the engine and a real sled store:
//! what the provider received (the full message, the Message-ID the receipts will refer to),
//! what each answer does to the delivery, and a resubmission after an overdue acceptance.

mod support;

use std::sync::Arc;
use std::time::Duration;

use io_channels::email::{EmailConfig, SmtpSecurity};
use io_channels::{PecChannel, PecConfig, TrustedRoots};
use io_core::pec::ReceiptWindows;
use io_core::{
    Channel, ChannelKind, DeliveryId, DeliveryState, EmailAddress, FailureReason, FiscalCode,
    Store, TransientCause,
};
use io_store::SledStore;
use support::{Harness, SmtpPeer, SmtpPeerMode, TestCa, citizen, markdown, profile};

const USER: &str = "protocollo@pec.comune.example.it";
const PASSWORD: &str = "s3greta";

fn config(port: u16, ca: &TestCa, password: &str) -> PecConfig {
    PecConfig {
        smtp: EmailConfig {
            host: "localhost".into(),
            port: Some(port),
            security: SmtpSecurity::StartTls,
            username: Some(USER.into()),
            password: Some(password.into()),
            from: format!("Comune di Esempio <{USER}>"),
            hello_name: Some("io.test".into()),
            roots: TrustedRoots::only(ca.ca_pem.clone()),
            timeout: Duration::from_millis(1500),
            pool_size: 2,
            limit: None,
        },
        message_id_domain: None,
    }
}

async fn harness(config: PecConfig) -> Harness {
    let store = Arc::new(SledStore::temporary().unwrap());
    let channel: Arc<dyn Channel> = Arc::new(PecChannel::new(config).unwrap());
    Harness::new(store, vec![channel], false).await
}

/// A citizen with a digital domicile at `address`.
async fn citizen_with_domicile(store: &SledStore, n: u32, address: &str) -> FiscalCode {
    let fiscal_code = citizen(n);
    let mut p = profile(&fiscal_code);
    p.digital_domicile = Some(EmailAddress::parse(address).unwrap());
    store.put_profile(&p).await.unwrap();
    fiscal_code
}

fn header<'a>(email: &'a mail_parser::Message<'a>, name: &str) -> String {
    email
        .header_raw(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_receives_the_full_message_with_the_message_id_of_its_receipts() {
    let ca = support::test_ca();
    let peer = SmtpPeer::start_with_auth(SmtpPeerMode::StartTls(&ca), Some((USER, PASSWORD))).await;
    let h = harness(config(peer.port, &ca, PASSWORD)).await;
    let to = citizen_with_domicile(&h.store, 1, "mario.rossi@pec.example.it").await;
    let body = markdown("# Notifica\n\nLe notifichiamo l'atto n. 42. <script>x()</script>");
    let id = h.submit_legal(&to, "Notifica di un atto", &body).await;
    let pec = DeliveryId::new(id, ChannelKind::Pec);
    let delivery = &h.attempt_once(&[pec]).await[0];

    let DeliveryState::Submitted {
        submitted_at,
        accepted_at: None,
    } = delivery.state
    else {
        panic!("expected SUBMITTED, got {delivery:?}");
    };
    assert_eq!(
        delivery.next_attempt_at,
        submitted_at.plus(ReceiptWindows::default().acceptance)
    );
    assert_eq!(delivery.attempts, 1);
    let received = peer.received();
    assert_eq!(received.len(), 1);
    let email = mail_parser::MessageParser::default()
        .parse(&received[0])
        .unwrap();
    let message_id = header(&email, "Message-ID");
    assert_eq!(message_id, format!("<{id}.pec@pec.comune.example.it>"));
    assert_eq!(io_core::pec::delivery_of(&message_id), Some(pec));
    assert_eq!(email.subject(), Some("Notifica di un atto"));
    assert!(header(&email, "To").contains("mario.rossi@pec.example.it"));
    assert!(header(&email, "From").contains(USER));
    let text = email.body_text(0).unwrap();
    assert!(text.contains("Le notifichiamo l'atto n. 42."), "{text}");
    assert!(
        text.contains("Comune di Esempio - Ufficio Tributi"),
        "{text}"
    );
    let html = email.body_html(0).unwrap();
    assert!(html.contains("<h1>Notifica</h1>"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    // The inbox got it too; the store shows the submission's evidence in the journal.
    let journal = h.engine.verify_journal(&id).await.unwrap();
    assert!(journal.iter().any(|entry| matches!(
        &entry.event,
        io_core::JournalEvent::Attempted {
            channel: ChannelKind::Pec,
            state: DeliveryState::Submitted { .. },
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_acceptance_resubmits_with_the_same_message_id() {
    let ca = support::test_ca();
    let peer = SmtpPeer::start_with_auth(SmtpPeerMode::StartTls(&ca), Some((USER, PASSWORD))).await;
    let h = harness(config(peer.port, &ca, PASSWORD)).await;
    let to = citizen_with_domicile(&h.store, 1, "mario.rossi@pec.example.it").await;
    let id = h
        .submit_legal(&to, "Notifica di un atto", &markdown("Testo."))
        .await;
    let pec = DeliveryId::new(id, ChannelKind::Pec);
    h.attempt_once(&[pec]).await;
    let again = &h.attempt_again(&[pec]).await[0];
    assert_eq!(again.attempts, 2);
    assert!(matches!(again.state, DeliveryState::Submitted { .. }));
    let ids: Vec<String> = peer
        .received()
        .iter()
        .map(|raw| {
            let email = mail_parser::MessageParser::default().parse(raw).unwrap();
            header(&email, "Message-ID")
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_answers_have_their_delivery_states() {
    let ca = support::test_ca();
    let peer = SmtpPeer::start_with_auth(SmtpPeerMode::StartTls(&ca), Some((USER, PASSWORD))).await;
    // A busy provider: retried later.
    let h = harness(config(peer.port, &ca, PASSWORD)).await;
    let to = citizen_with_domicile(&h.store, 1, "busy@pec.example.it").await;
    let id = h
        .submit_legal(&to, "Notifica di un atto", &markdown("Testo."))
        .await;
    let delivery = &h
        .attempt_once(&[DeliveryId::new(id, ChannelKind::Pec)])
        .await[0];
    assert_eq!(delivery.state, DeliveryState::Retrying);
    assert!(matches!(
        delivery.last_outcome,
        Some(io_core::OutcomeRecord::Transient {
            cause: TransientCause::ServerError(451),
            ..
        })
    ));
    // A refusal: failed, the domicile left as the registry has it (no bounce effect).
    let to = citizen_with_domicile(&h.store, 2, "reject@pec.example.it").await;
    let id = h
        .submit_legal(&to, "Notifica di un atto", &markdown("Testo."))
        .await;
    let delivery = &h
        .attempt_once(&[DeliveryId::new(id, ChannelKind::Pec)])
        .await[0];
    assert!(
        matches!(&delivery.state, DeliveryState::Failed { reason: FailureReason::Permanent { reason } } if reason.code == "smtp_554"),
        "{delivery:?}"
    );
    let profile = h.store.profile(&to).await.unwrap().unwrap();
    assert!(profile.digital_domicile.is_some());
    // Wrong credentials: a permanent failure that names them, nothing received.
    let wrong = harness(config(peer.port, &ca, "wrong")).await;
    let to = citizen_with_domicile(&wrong.store, 3, "mario@pec.example.it").await;
    let id = wrong
        .submit_legal(&to, "Notifica di un atto", &markdown("Testo."))
        .await;
    let delivery = &wrong
        .attempt_once(&[DeliveryId::new(id, ChannelKind::Pec)])
        .await[0];
    assert!(
        matches!(&delivery.state, DeliveryState::Failed { reason: FailureReason::Permanent { reason } } if reason.code == "pec_authentication_failed"),
        "{delivery:?}"
    );
    assert!(peer.received().is_empty());
}

#[tokio::test]
async fn a_pec_channel_needs_credentials_and_a_plain_domain() {
    let ca = support::test_ca();
    let mut anonymous = config(2525, &ca, PASSWORD);
    anonymous.smtp.username = None;
    anonymous.smtp.password = None;
    let error = PecChannel::new(anonymous).err().expect("refused");
    assert!(error.to_string().contains("pec.smtp.username"), "{error}");
    let mut domain = config(2525, &ca, PASSWORD);
    domain.message_id_domain = Some("bad domain>".into());
    let error = PecChannel::new(domain).err().expect("refused");
    assert!(
        error.to_string().contains("pec.message_id_domain"),
        "{error}"
    );
    let mut plain = config(2525, &ca, PASSWORD);
    plain.smtp.host = "pec.provider.example".into();
    plain.smtp.security = SmtpSecurity::Plain;
    let error = PecChannel::new(plain).err().expect("refused");
    assert!(error.to_string().contains("pec.smtp.security"), "{error}");
}
