//! The email channel against a real SMTP server (aiosmtpd on loopback), through the engine and
//! a real sled store: what each SMTP answer does to the delivery (and, for a bounce, to the
//! profile, through the effect the engine commits), and what the bytes the server received say.

mod support;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use io_channels::email::{EmailConfig, SmtpSecurity};
use io_channels::{EmailChannel, ProviderLimit, TrustedRoots};
use io_core::notification_text::email_teaser;
use io_core::{
    Channel, ChannelKind, DeliveryId, DeliveryState, EmailAddress, FailureReason, FiscalCode,
    OutcomeRecord, PreferredLanguage, RateLimit, Store, TransientCause,
};
use io_store::SledStore;
use support::{Harness, SmtpPeer, SmtpPeerMode, citizen, markdown, profile};

fn config(port: u16) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        security: SmtpSecurity::Plain,
        username: None,
        password: None,
        from: "IO <no-reply@io.example.it>".into(),
        hello_name: Some("io.test".into()),
        roots: TrustedRoots::default(),
        timeout: Duration::from_millis(1500),
        pool_size: 4,
        limit: None,
    }
}

async fn citizen_with_email(store: &SledStore, n: u32, address: &str) -> FiscalCode {
    let fiscal_code = citizen(n);
    let mut p = profile(&fiscal_code);
    p.email = Some(EmailAddress::parse(address).unwrap());
    p.is_email_validated = true;
    p.is_email_enabled = true;
    store.put_profile(&p).await.unwrap();
    fiscal_code
}

async fn harness(config: EmailConfig) -> Harness {
    let store = Arc::new(SledStore::temporary().unwrap());
    let channel: Arc<dyn Channel> = Arc::new(EmailChannel::new(config).unwrap());
    Harness::new(store, vec![channel], false).await
}

/// The wait the engine scheduled before the next attempt.
fn wait(delivery: &io_core::Delivery) -> Duration {
    delivery.next_attempt_at.since(delivery.updated_at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_smtp_answer_has_its_delivery_state() {
    let peer = SmtpPeer::start(SmtpPeerMode::Plain).await;
    let main = harness(config(peer.port)).await;
    let store = main.store.clone();
    let body = markdown("Il suo avviso di pagamento TARI è disponibile.");
    let mut scenarios = Vec::new();
    for (n, address) in [
        (1, "ok@example.it"),
        (2, "busy@example.it"),
        (3, "reject@example.it"),
        (4, "nobody@example.it"),
        (5, "slow@example.it"),
        (6, "gone@example.it"),
        (7, "badbox@example.it"),
    ] {
        let fiscal_code = citizen_with_email(&store, n, address).await;
        let id = main.submit(&fiscal_code, "Avviso TARI 2026", &body).await;
        scenarios.push((
            address,
            fiscal_code,
            DeliveryId::new(id, ChannelKind::Email),
        ));
    }
    let ids: Vec<DeliveryId> = scenarios.iter().map(|s| s.2).collect();
    let deliveries = main.attempt_once(&ids).await;

    for ((address, fiscal_code, _), delivery) in scenarios.iter().zip(&deliveries) {
        assert_eq!(delivery.attempts, 1, "{address}");
        let bounced = store
            .profile(fiscal_code)
            .await
            .unwrap()
            .unwrap()
            .is_email_bounced;
        match *address {
            "ok@example.it" => {
                assert_eq!(delivery.state, DeliveryState::Sent);
                assert!(matches!(
                    &delivery.last_outcome,
                    Some(OutcomeRecord::Delivered { provider_ref: Some(r) }) if r.contains("queued as io")
                ));
                assert!(!bounced);
            }
            "busy@example.it" | "slow@example.it" => {
                assert_eq!(delivery.state, DeliveryState::Retrying, "{address}");
                assert!(wait(delivery) <= Duration::from_secs(1), "{address}");
                let expected = if *address == "busy@example.it" {
                    TransientCause::ServerError(451)
                } else {
                    TransientCause::Timeout
                };
                assert!(
                    matches!(&delivery.last_outcome, Some(OutcomeRecord::Transient { cause, .. }) if *cause == expected),
                    "{address}: {:?}",
                    delivery.last_outcome
                );
                assert!(!bounced);
            }
            "reject@example.it" => {
                assert!(matches!(
                    &delivery.state,
                    DeliveryState::Failed { reason: FailureReason::Permanent { reason } } if reason.code == "smtp_554"
                ));
                assert!(!bounced, "a policy refusal is not a bounce");
            }
            _ => {
                assert_eq!(
                    delivery.state,
                    DeliveryState::Failed {
                        reason: FailureReason::InvalidRecipient
                    },
                    "{address}"
                );
                assert!(bounced, "{address} is marked bounced");
            }
        }
    }
    assert_eq!(peer.received().len(), 1, "only ok@ was accepted");

    // The bounce was recorded by the engine with the outcome: the profile's address is marked
    // (one versioned write), so the next message gets no email delivery at all.
    let nobody = &scenarios[3].1;
    let marked = store.profile(nobody).await.unwrap().unwrap();
    assert_eq!(marked.version, 1, "one write marked the address bounced");
    assert_eq!(
        marked.email,
        Some(EmailAddress::parse("nobody@example.it").unwrap())
    );
    // Decided at accept: processed (inbox SENT) when `submit` returns.
    let next = main.submit(nobody, "Secondo avviso TARI", &body).await;
    assert_eq!(
        main.store.message(&next).await.unwrap().unwrap().status,
        io_core::MessageStatus::Processed
    );
    assert!(main.delivery(next, ChannelKind::Email).await.is_none());
    assert_eq!(
        main.delivery(next, ChannelKind::Inbox).await.unwrap().state,
        DeliveryState::Sent,
        "the message still reaches the inbox"
    );
    assert_eq!(peer.received().len(), 1, "nothing more reached the relay");
    // Changing the address clears the mark.
    let mut changed = marked;
    let mut update = changed.clone();
    update.email = Some(EmailAddress::parse("ok@example.it").unwrap());
    changed = changed.updated_with(&update).unwrap();
    assert!(!changed.is_email_bounced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_limit_and_a_dead_relay_are_retried_later() {
    let peer = SmtpPeer::start(SmtpPeerMode::Plain).await;
    let mut limited_config = config(peer.port);
    limited_config.limit = Some(ProviderLimit {
        rate: RateLimit {
            count: NonZeroU32::new(1).unwrap(),
            per: Duration::from_secs(3600),
        },
        max_wait: Duration::from_secs(1),
    });
    let limited = harness(limited_config).await;
    let body = markdown("Promemoria: la scadenza della rata è vicina.");
    // A validated address belongs to one citizen only.
    let a = citizen_with_email(&limited.store, 1, "first@example.it").await;
    let b = citizen_with_email(&limited.store, 2, "second@example.it").await;
    let first = limited.submit(&a, "Promemoria scadenza", &body).await;
    let first = DeliveryId::new(first, ChannelKind::Email);
    assert_eq!(
        limited.attempt_once(&[first]).await[0].state,
        DeliveryState::Sent
    );
    let second = limited.submit(&b, "Promemoria scadenza", &body).await;
    let second = DeliveryId::new(second, ChannelKind::Email);
    let delivery = &limited.attempt_once(&[second]).await[0];
    assert_eq!(delivery.state, DeliveryState::Retrying);
    assert_eq!(delivery.attempts, 1);
    assert!(matches!(
        delivery.last_outcome,
        Some(OutcomeRecord::RateLimited { retry_after_ms: Some(ms) }) if ms > 3_590_000
    ));
    assert!(
        wait(delivery) > Duration::from_secs(3590),
        "{:?}",
        wait(delivery)
    );
    assert_eq!(peer.received().len(), 1, "the limited email did not leave");

    let port = support::closed_port().await;
    let dead = harness(config(port)).await;
    let c = citizen_with_email(&dead.store, 3, "ok@example.it").await;
    let id = dead.submit(&c, "Avviso di pagamento", &body).await;
    let id = DeliveryId::new(id, ChannelKind::Email);
    let delivery = &dead.attempt_once(&[id]).await[0];
    assert_eq!(delivery.state, DeliveryState::Retrying);
    assert!(matches!(
        &delivery.last_outcome,
        Some(OutcomeRecord::Transient {
            cause: TransientCause::Connection,
            ..
        })
    ));
    assert!(wait(delivery) <= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_teaser_and_the_language_are_in_the_bytes_the_relay_received() {
    let peer = SmtpPeer::start(SmtpPeerMode::Plain).await;
    let h = harness(config(peer.port)).await;
    let body = "## Avviso di pagamento\n\nGentile contribuente, l'avviso **TARI 2026** è \
                disponibile. Paghi su [pagoPA](https://checkout.pagopa.it/pay?id=1) oppure \
                visiti www.comune.esempio.it/tari per i dettagli. Le ricordiamo che il termine \
                di pagamento è il 16.12.2026 e che in caso di ritardo si applicano sanzioni.";
    let expected_teaser = email_teaser(body);
    assert!(
        expected_teaser.ends_with('…'),
        "the body is long enough to be cut"
    );
    let languages = [
        (
            PreferredLanguage::ItIt,
            "Hai un nuovo messaggio da Comune di Esempio",
            "entra nell'app IO",
        ),
        (
            PreferredLanguage::EnGb,
            "You have a new message from Comune di Esempio",
            "open the IO app",
        ),
        (
            PreferredLanguage::DeDe,
            "Sie haben eine neue Nachricht von Comune di Esempio",
            "öffnen Sie die App IO",
        ),
        (
            PreferredLanguage::FrFr,
            "Vous avez un nouveau message de Comune di Esempio",
            "ouvrez l'application IO",
        ),
        (
            PreferredLanguage::EsEs,
            "Tienes un nuevo mensaje de Comune di Esempio",
            "entra en la app IO",
        ),
    ];
    let mut ids = Vec::new();
    for (n, (language, ..)) in languages.iter().enumerate() {
        let fiscal_code = citizen(10 + n as u32);
        let mut p = profile(&fiscal_code);
        p.email = Some(EmailAddress::parse(&format!("citizen{n}@example.it")).unwrap());
        p.is_email_validated = true;
        p.is_email_enabled = true;
        p.preferred_languages = vec![*language, PreferredLanguage::ItIt];
        h.store.put_profile(&p).await.unwrap();
        let id = h
            .submit(&fiscal_code, "Avviso di pagamento TARI", body)
            .await;
        ids.push(DeliveryId::new(id, ChannelKind::Email));
    }
    for delivery in h.attempt_once(&ids).await {
        assert_eq!(delivery.state, DeliveryState::Sent);
    }
    let received = peer.received();
    assert_eq!(received.len(), languages.len());
    for raw in &received {
        let email = mail_parser::MessageParser::default().parse(raw).unwrap();
        let to = email
            .to()
            .unwrap()
            .first()
            .unwrap()
            .address()
            .unwrap()
            .to_owned();
        let n: usize = to["citizen".len()..to.find('@').unwrap()].parse().unwrap();
        let (_, subject, call_to_action) = languages[n];
        assert_eq!(email.subject(), Some(subject), "{to}");
        let plain = email.body_text(0).unwrap();
        let html = email.body_html(0).unwrap();
        assert!(plain.contains(&expected_teaser), "{to}: {plain}");
        assert!(plain.contains(call_to_action), "{to}: {plain}");
        assert!(plain.contains("Ufficio Tributi"), "{to}");
        assert!(
            html.contains(call_to_action.replace('\'', "&#39;").as_str()),
            "{to}: {html}"
        );
        for part in [plain.as_ref(), html.as_ref()] {
            assert!(!part.contains("http"), "{to}: no link survives: {part}");
            assert!(!part.contains("www."), "{to}");
            assert!(part.contains("[link rimosso]"), "{to}");
            assert!(!part.contains("TARI 2026**"), "{to}: markdown is stripped");
            assert!(
                part.contains(".\u{200B}"),
                "{to}: a zero-width space follows each dot"
            );
        }
        let teaser_chars = expected_teaser.chars().filter(|c| *c != '\u{200B}').count();
        assert_eq!(teaser_chars, 135, "134 characters and the ellipsis");
        let message_id = email.message_id().unwrap();
        assert!(message_id.ends_with("@io.example.it"), "{message_id}");
        let delivery = ids
            .iter()
            .find(|id| message_id.starts_with(&id.as_uuid()))
            .expect("Message-ID is derived from the delivery id");
        assert_eq!(delivery.channel, ChannelKind::Email);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_requiring_secure_channels_produces_no_email() {
    let peer = SmtpPeer::start(SmtpPeerMode::Plain).await;
    for (service_secure, message_secure) in [(true, None), (false, Some(true))] {
        let store = Arc::new(SledStore::temporary().unwrap());
        let channel: Arc<dyn Channel> = Arc::new(EmailChannel::new(config(peer.port)).unwrap());
        let h = Harness::new(store, vec![channel], service_secure).await;
        let fiscal_code = citizen_with_email(&h.store, 1, "ok@example.it").await;
        let id = h
            .submit_with(
                &fiscal_code,
                "Esito della visita medica",
                &markdown("Il referto della sua visita è disponibile."),
                message_secure,
            )
            .await;
        h.engine.run_until_idle().await.unwrap();
        let stored = h.store.message(&id).await.unwrap().unwrap();
        assert_eq!(stored.status, io_core::MessageStatus::Processed);
        assert!(h.delivery(id, ChannelKind::Email).await.is_none());
    }
    assert!(peer.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_implicit_tls_verify_the_relay_against_the_configured_roots() {
    let ca = support::test_ca();
    for (mode, security) in [
        (SmtpPeerMode::StartTls(&ca), SmtpSecurity::StartTls),
        (SmtpPeerMode::Tls(&ca), SmtpSecurity::Tls),
    ] {
        let peer = SmtpPeer::start(mode).await;
        let trusted = |roots: TrustedRoots| {
            let mut config = config(peer.port);
            config.host = "localhost".into();
            config.security = security;
            config.roots = roots;
            config
        };
        let good = harness(trusted(TrustedRoots::only(ca.ca_pem.clone()))).await;
        let fiscal_code = citizen_with_email(&good.store, 1, "ok@example.it").await;
        let id = good
            .submit(&fiscal_code, "Avviso importante", &markdown("Testo."))
            .await;
        let delivery = &good
            .attempt_once(&[DeliveryId::new(id, ChannelKind::Email)])
            .await[0];
        assert_eq!(delivery.state, DeliveryState::Sent, "{security:?}");

        // The public roots do not include the test authority: the relay is not trusted.
        let untrusted = harness(trusted(TrustedRoots::default())).await;
        let fiscal_code = citizen_with_email(&untrusted.store, 1, "ok@example.it").await;
        let id = untrusted
            .submit(&fiscal_code, "Avviso importante", &markdown("Testo."))
            .await;
        let delivery = &untrusted
            .attempt_once(&[DeliveryId::new(id, ChannelKind::Email)])
            .await[0];
        assert_ne!(delivery.state, DeliveryState::Sent, "{security:?}");
        assert_eq!(peer.received().len(), 1, "{security:?}");
    }
}

#[tokio::test]
async fn plain_smtp_to_a_remote_relay_is_a_configuration_error() {
    let mut config = config(25);
    config.host = "smtp.example.it".into();
    let error = EmailChannel::new(config).err().unwrap();
    assert!(error.to_string().starts_with("email.security"), "{error}");
}

#[test]
fn building_outside_a_runtime_is_an_error_not_a_panic() {
    let error = EmailChannel::new(config(25)).err().unwrap();
    assert!(error.to_string().contains("tokio runtime"), "{error}");
}
