//! The PEC mailbox reader against a real IMAP server (pymap on loopback), through the engine and
//! a real sled store, after a real submission over SMTP (aiosmtpd): receipts appended to the
//! mailbox as a provider delivers them are recorded, the delivery ends SENT at the legal time of
//! its delivery receipt, processed receipts leave the inbox, other messages are moved aside, and
//! reading a receipt again (a crash before it was moved) counts nothing twice.

#[path = "support/imap_peer.rs"]
mod imap_peer;
#[path = "support/pec_receipts.rs"]
mod pec_receipts;
mod support;

use std::sync::Arc;
use std::time::Duration;

use imap_peer::{ImapPeer, ImapsFront};
use io_channels::email::{EmailConfig, SmtpSecurity};
use io_channels::pec::compose::Signer;
use io_channels::pec::daticert::PecKind;
use io_channels::pec::mailbox::{ImapSecurity, MailboxConfig, Pass};
use io_channels::{PecChannel, PecConfig, ReceiptReader, TrustedRoots};
use io_core::{
    Channel, ChannelKind, DeliveryId, DeliveryState, EmailAddress, MessageId, Store, Timestamp,
};
use io_store::SledStore;
use pec_receipts::{RECEIPT_TIME_UNIX, SAMPLE_MSGID, pec_receipt};
use support::{Harness, SmtpPeer, SmtpPeerMode, citizen, markdown, profile};

/// A receipt of `kind` about the PEC submission of `message`, signed by `signer`.
fn receipt_for(kind: PecKind, message: MessageId, signer: &Signer) -> Vec<u8> {
    pec_receipt(
        kind,
        &format!("{message}.pec@pec.comune.example.it"),
        signer,
    )
}

fn mailbox(imap: &ImapPeer, provider: &Signer) -> MailboxConfig {
    MailboxConfig {
        host: "127.0.0.1".into(),
        port: Some(imap.port),
        security: ImapSecurity::Plain,
        username: imap.user.into(),
        password: imap.password.into(),
        inbox: "INBOX".into(),
        processed: "io-receipts".into(),
        other: "io-other".into(),
        roots: TrustedRoots::default(),
        provider_certificates: vec![provider.certificate_pem()],
        poll: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
    }
}

/// An engine with the PEC channel on a plain loopback SMTP peer (credentials are checked by
/// the peer), a citizen with a domicile, and one legal message submitted; its id.
async fn submitted(smtp: &SmtpPeer) -> (Harness, MessageId) {
    let pec = PecConfig {
        smtp: EmailConfig {
            host: "127.0.0.1".into(),
            port: Some(smtp.port),
            security: SmtpSecurity::Plain,
            username: Some("protocollo@pec.comune.example.it".into()),
            password: Some("pw".into()),
            from: "Comune di Esempio <protocollo@pec.comune.example.it>".into(),
            hello_name: Some("io.test".into()),
            roots: TrustedRoots::default(),
            timeout: Duration::from_millis(1500),
            pool_size: 1,
            limit: None,
        },
        message_id_domain: None,
    };
    let store = Arc::new(SledStore::temporary().unwrap());
    let channel: Arc<dyn Channel> = Arc::new(PecChannel::new(pec).unwrap());
    let h = Harness::new(store, vec![channel], false).await;
    let fiscal_code = citizen(1);
    let mut p = profile(&fiscal_code);
    p.digital_domicile = Some(EmailAddress::parse("mario.rossi@pec.example.it").unwrap());
    h.store.put_profile(&p).await.unwrap();
    let id = h
        .submit_legal(
            &fiscal_code,
            "Notifica di un atto",
            &markdown("Testo dell'atto."),
        )
        .await;
    let delivery = &h
        .attempt_once(&[DeliveryId::new(id, ChannelKind::Pec)])
        .await[0];
    assert!(
        matches!(delivery.state, DeliveryState::Submitted { .. }),
        "{delivery:?}"
    );
    assert_eq!(smtp.received().len(), 1);
    (h, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_read_over_imap_make_the_delivery_sent_at_its_legal_time() {
    let smtp = SmtpPeer::start_with_auth(
        SmtpPeerMode::Plain,
        Some(("protocollo@pec.comune.example.it", "pw")),
    )
    .await;
    let imap = ImapPeer::start().await;
    let (h, id) = submitted(&smtp).await;
    let provider = Signer::generate("Gestore di prova").unwrap();
    let reader = ReceiptReader::new(mailbox(&imap, &provider)).unwrap();

    imap.append("INBOX", &receipt_for(PecKind::Accepted, id, &provider))
        .await;
    imap.append(
        "INBOX",
        b"From: cittadino@pec.example.it\r\nSubject: risposta\r\n\r\nGrazie.\r\n",
    )
    .await;
    let pass = reader.read_once(&h.engine).await.unwrap();
    assert_eq!(
        pass,
        Pass {
            recorded: 1,
            duplicates: 0,
            unknown: 0,
            other: 1
        }
    );
    let pec = DeliveryId::new(id, ChannelKind::Pec);
    let accepted = h.store.delivery(&pec).await.unwrap().unwrap();
    assert!(
        matches!(
            accepted.state,
            DeliveryState::Submitted {
                accepted_at: Some(_),
                ..
            }
        ),
        "{accepted:?}"
    );

    let delivered = receipt_for(PecKind::Delivered, id, &provider);
    imap.append("INBOX", &delivered).await;
    // A receipt of a message io never sent.
    let foreign = pec_receipt(PecKind::DeliveryError, SAMPLE_MSGID, &provider);
    imap.append("INBOX", &foreign).await;
    let pass = reader.read_once(&h.engine).await.unwrap();
    assert_eq!(
        pass,
        Pass {
            recorded: 1,
            duplicates: 0,
            unknown: 1,
            other: 0
        }
    );

    let sent = h.store.delivery(&pec).await.unwrap().unwrap();
    assert_eq!(sent.state, DeliveryState::Sent);
    // The time the delivery receipt's daticert certifies.
    assert_eq!(
        sent.legal_delivery_at,
        Some(Timestamp::from_millis(RECEIPT_TIME_UNIX * 1000))
    );
    // Byte for byte: what the mailbox held is what the store keeps.
    let evidence = h.store.evidence(&id).await.unwrap();
    assert_eq!(evidence.len(), 2);
    assert_eq!(evidence[1].bytes, imap.messages("io-receipts").await[1]);
    assert!(imap.messages("INBOX").await.is_empty());
    assert_eq!(imap.messages("io-receipts").await.len(), 2);
    assert_eq!(imap.messages("io-other").await.len(), 2);
    h.engine.verify_journal(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_read_again_after_a_crash_is_counted_once() {
    let smtp = SmtpPeer::start_with_auth(
        SmtpPeerMode::Plain,
        Some(("protocollo@pec.comune.example.it", "pw")),
    )
    .await;
    let imap = ImapPeer::start().await;
    let (h, id) = submitted(&smtp).await;
    let provider = Signer::generate("Gestore di prova").unwrap();
    let reader = ReceiptReader::new(mailbox(&imap, &provider)).unwrap();
    let accepted = receipt_for(PecKind::Accepted, id, &provider);
    imap.append("INBOX", &accepted).await;
    reader.read_once(&h.engine).await.unwrap();
    let journal = h.engine.verify_journal(&id).await.unwrap().len();
    // The process died after the engine's write and before the move: the receipt is still
    // there on the next pass.
    imap.append("INBOX", &accepted).await;
    let pass = reader.read_once(&h.engine).await.unwrap();
    assert_eq!(
        pass,
        Pass {
            recorded: 0,
            duplicates: 1,
            unknown: 0,
            other: 0
        }
    );
    assert_eq!(h.engine.verify_journal(&id).await.unwrap().len(), journal);
    assert_eq!(h.store.evidence(&id).await.unwrap().len(), 1);
    assert!(imap.messages("INBOX").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_waits_in_idle_and_records_a_receipt_as_it_arrives() {
    let smtp = SmtpPeer::start_with_auth(
        SmtpPeerMode::Plain,
        Some(("protocollo@pec.comune.example.it", "pw")),
    )
    .await;
    let imap = ImapPeer::start().await;
    let (h, id) = submitted(&smtp).await;
    let engine = Arc::new(h.engine);
    let provider = Signer::generate("Gestore di prova").unwrap();
    let mut config = mailbox(&imap, &provider);
    config.poll = Duration::from_secs(30);
    let reader = ReceiptReader::new(config).unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = {
        let engine = engine.clone();
        tokio::spawn(async move { reader.run(engine, shutdown).await })
    };
    // Let the reader make its first pass and go idle, then deliver the receipt.
    tokio::time::sleep(Duration::from_millis(500)).await;
    imap.append("INBOX", &receipt_for(PecKind::Delivered, id, &provider))
        .await;
    let pec = DeliveryId::new(id, ChannelKind::Pec);
    let mut sent = false;
    for _ in 0..100 {
        if h.store.delivery(&pec).await.unwrap().unwrap().state == DeliveryState::Sent {
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sent,
        "the receipt was not recorded within 5 s of its arrival (poll is 30 s)"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the reader stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn a_mailbox_configuration_is_checked() {
    let imap_less = |host: &str, security| MailboxConfig {
        host: host.into(),
        port: None,
        security,
        username: "u".into(),
        password: "p".into(),
        inbox: "INBOX".into(),
        processed: "io-receipts".into(),
        other: "io-other".into(),
        roots: TrustedRoots::default(),
        provider_certificates: vec![Signer::generate("Gestore").unwrap().certificate_pem()],
        poll: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
    };
    let error = ReceiptReader::new(imap_less("imap.pec.example.it", ImapSecurity::Plain))
        .err()
        .unwrap();
    assert!(
        error.to_string().contains("pec.mailbox.security"),
        "{error}"
    );
    let mut same = imap_less("127.0.0.1", ImapSecurity::Plain);
    same.processed = "INBOX".into();
    assert!(ReceiptReader::new(same).is_err());
    let mut quoted = imap_less("127.0.0.1", ImapSecurity::Plain);
    quoted.other = "io\"other".into();
    assert!(ReceiptReader::new(quoted).is_err());
    let shown = format!("{:?}", imap_less("127.0.0.1", ImapSecurity::Plain));
    assert!(!shown.contains("\"p\""), "{shown}");
    let mut untrusting = imap_less("127.0.0.1", ImapSecurity::Plain);
    untrusting.provider_certificates.clear();
    let error = ReceiptReader::new(untrusting).err().unwrap();
    assert!(
        error.to_string().contains("provider_certificates"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_signed_by_an_untrusted_key_is_kept_flagged_and_changes_nothing() {
    let smtp = SmtpPeer::start_with_auth(
        SmtpPeerMode::Plain,
        Some(("protocollo@pec.comune.example.it", "pw")),
    )
    .await;
    let imap = ImapPeer::start().await;
    let (h, id) = submitted(&smtp).await;
    let provider = Signer::generate("Gestore di prova").unwrap();
    let impostor = Signer::generate("Gestore di prova").unwrap();
    let reader = ReceiptReader::new(mailbox(&imap, &provider)).unwrap();
    let pec = DeliveryId::new(id, ChannelKind::Pec);
    let before = h.store.delivery(&pec).await.unwrap().unwrap();
    imap.append("INBOX", &receipt_for(PecKind::Delivered, id, &impostor))
        .await;
    let pass = reader.read_once(&h.engine).await.unwrap();
    assert_eq!(pass.recorded, 1);
    assert_eq!(h.store.delivery(&pec).await.unwrap().unwrap(), before);
    assert_eq!(h.store.evidence(&id).await.unwrap().len(), 1);
    let journal = h.engine.verify_journal(&id).await.unwrap();
    assert!(journal.iter().any(|entry| matches!(
        &entry.event,
        io_core::JournalEvent::ReceiptRecorded {
            signed_by: None,
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_is_read_over_implicit_tls_against_the_configured_roots() {
    let smtp = SmtpPeer::start_with_auth(
        SmtpPeerMode::Plain,
        Some(("protocollo@pec.comune.example.it", "pw")),
    )
    .await;
    let imap = ImapPeer::start().await;
    let ca = support::test_ca();
    let front = ImapsFront::start(&ca, &imap).await;
    let (h, id) = submitted(&smtp).await;
    let provider = Signer::generate("Gestore di prova").unwrap();
    let over_tls = |roots: TrustedRoots| {
        let mut config = mailbox(&imap, &provider);
        config.host = "localhost".into();
        config.port = Some(front.port);
        config.security = ImapSecurity::Tls;
        config.roots = roots;
        config
    };
    imap.append("INBOX", &receipt_for(PecKind::Delivered, id, &provider))
        .await;
    // The public roots do not include the test authority: nothing is read.
    let untrusting = ReceiptReader::new(over_tls(TrustedRoots::default())).unwrap();
    let error = untrusting.read_once(&h.engine).await.unwrap_err();
    assert!(error.to_string().contains("TLS"), "{error}");
    assert!(error.is_retriable());
    assert_eq!(imap.messages("INBOX").await.len(), 1);
    // Trusting it, the receipt is read over TLS and recorded.
    let reader = ReceiptReader::new(over_tls(TrustedRoots::only(ca.ca_pem.clone()))).unwrap();
    let pass = reader.read_once(&h.engine).await.unwrap();
    assert_eq!(pass.recorded, 1);
    let pec = DeliveryId::new(id, ChannelKind::Pec);
    assert_eq!(
        h.store.delivery(&pec).await.unwrap().unwrap().state,
        DeliveryState::Sent
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_a_login_error_that_is_not_retried_as_is() {
    let imap = ImapPeer::start().await;
    let provider = Signer::generate("Gestore di prova").unwrap();
    let mut config = mailbox(&imap, &provider);
    config.password = "sbagliata".into();
    let reader = ReceiptReader::new(config).unwrap();
    let store = Arc::new(SledStore::temporary().unwrap());
    let h = Harness::new(store, vec![], false).await;
    let error = reader.read_once(&h.engine).await.unwrap_err();
    assert!(
        matches!(error, io_channels::pec::mailbox::MailboxError::Login(_)),
        "{error}"
    );
    assert!(!error.is_retriable());
}
