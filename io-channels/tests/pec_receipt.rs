//! PEC receipts as they arrive in the sender's mailbox (`tests/pec_receipts/*.eml`, written by
//! `tests/pec_receipts/make.py` in the published shape: S/MIME around text, `daticert.xml` and,
//! on complete delivery receipts, the original): each is recognised with its kind and the
//! `Message-ID` it refers to; envelopes, non-PEC mail, and receipts whose headers disagree with
//! their `daticert.xml` are refused with the precise error.

use io_channels::pec::daticert::{DaticertError, PecKind, ReceiptKind};
use io_channels::pec::receipt::{MAX_RECEIPT_BYTES, Receipt, ReceiptError};
use sha2::{Digest, Sha256};

const MSGID: &str = "<01KBF3W8Z2.email@io.comune-prova.it>";

fn sample(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/pec_receipts/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text(name: &str) -> String {
    String::from_utf8(sample(name)).unwrap()
}

#[test]
fn every_receipt_sample_is_recognised_with_its_kind_and_reference() {
    for (file, kind) in [
        ("accettazione.eml", PecKind::Accepted),
        ("non-accettazione.eml", PecKind::NotAccepted),
        ("avvenuta-consegna.eml", PecKind::Delivered),
        ("errore-consegna.eml", PecKind::DeliveryError),
        (
            "preavviso-errore-consegna.eml",
            PecKind::DeliveryErrorWarning,
        ),
    ] {
        let raw = sample(file);
        let receipt = Receipt::parse(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(receipt.kind, kind, "{file}");
        assert_eq!(receipt.refers_to, MSGID, "{file}");
        assert_eq!(receipt.data.kind, kind, "{file}");
        let digest: [u8; 32] = Sha256::digest(&raw).into();
        assert_eq!(receipt.sha256, digest, "{file}");
    }
}

#[test]
fn a_delivery_receipt_carries_the_legal_time_and_the_mailbox_not_the_originals_attachments() {
    // The complete receipt carries the original message (postacert.eml): only the receipt's
    // own daticert.xml counts.
    let receipt = Receipt::parse(&sample("avvenuta-consegna.eml")).unwrap();
    assert_eq!(receipt.data.receipt, Some(ReceiptKind::Complete));
    assert_eq!(
        receipt.data.delivery_address.as_deref(),
        Some("mario.rossi@pec.cittadino-prova.it")
    );
    assert_eq!(
        receipt.data.issued_at,
        time::macros::datetime!(2026-12-02 09:15:40 +01:00)
    );
}

#[test]
fn envelopes_and_ordinary_mail_are_not_receipts() {
    let envelope = text("accettazione.eml").replacen(
        "X-Ricevuta: accettazione",
        "X-Trasporto: posta-certificata",
        1,
    );
    assert_eq!(
        Receipt::parse(envelope.as_bytes()),
        Err(ReceiptError::NotAReceipt("posta-certificata".into()))
    );
    let plain = b"From: a@example.it\r\nTo: b@example.it\r\nSubject: ciao\r\n\r\nciao\r\n";
    assert_eq!(Receipt::parse(plain), Err(ReceiptError::NotPec));
    assert_eq!(Receipt::parse(b""), Err(ReceiptError::NotEmail));
    let huge = vec![b'a'; MAX_RECEIPT_BYTES + 1];
    assert_eq!(
        Receipt::parse(&huge),
        Err(ReceiptError::TooLarge {
            size: MAX_RECEIPT_BYTES + 1,
            max: MAX_RECEIPT_BYTES
        })
    );
}

/// Found by the fuzz target: malformed MIME that reaches a `debug_assert!` of mail-parser
/// 0.11.9. Refused like any other non-email, in debug builds (these tests) as in release.
#[test]
fn mime_that_trips_the_mail_parsers_debug_assertion_is_refused_without_a_panic() {
    let raw = sample("fuzz-mail-parser-debug-assertion.eml");
    assert!(Receipt::parse(&raw).is_err());
}

/// Found by the fuzz target: a Content-Type with non-UTF-8 bytes makes OpenSSL quote them in
/// its error, which the openssl crate unwraps as UTF-8 and panics on. The signature check
/// contains it: unverified, no panic, and the next check still works.
#[test]
fn a_header_openssl_quotes_as_non_utf8_is_unverified_without_a_panic() {
    use io_channels::pec::compose::Signer;
    use io_channels::pec::signature::{self, ProviderCertificates, Signature};
    let trusted =
        ProviderCertificates::from_pem(&[Signer::generate("Gestore").unwrap().certificate_pem()])
            .unwrap();
    let raw = sample("fuzz-openssl-non-utf8-error.eml");
    for _ in 0..2 {
        assert!(matches!(
            signature::check(&raw, &trusted),
            Signature::Unverified { .. }
        ));
    }
}

#[test]
fn headers_that_disagree_with_daticert_or_repeat_are_refused() {
    let delivered = text("avvenuta-consegna.eml");
    let cases = [
        (
            delivered.replacen(
                "X-Ricevuta: avvenuta-consegna",
                "X-Ricevuta: accettazione",
                1,
            ),
            ReceiptError::Mismatch {
                header: "X-Ricevuta",
                header_value: "accettazione".into(),
                data_value: "avvenuta-consegna".into(),
            },
        ),
        (
            delivered.replacen(
                "X-Riferimento-Message-ID: <01KBF3W8Z2",
                "X-Riferimento-Message-ID: <01KBF3W8Z3",
                1,
            ),
            ReceiptError::Mismatch {
                header: "X-Riferimento-Message-ID",
                header_value: "<01KBF3W8Z3.email@io.comune-prova.it>".into(),
                data_value: MSGID.into(),
            },
        ),
        (
            delivered.replacen("X-TipoRicevuta: completa", "X-TipoRicevuta: breve", 1),
            ReceiptError::Mismatch {
                header: "X-TipoRicevuta",
                header_value: "breve".into(),
                data_value: "completa".into(),
            },
        ),
        (
            delivered.replacen(
                "X-Ricevuta: avvenuta-consegna",
                "X-Ricevuta: avvenuta-consegna\r\nX-Ricevuta: errore-consegna",
                1,
            ),
            ReceiptError::RepeatedHeader("X-Ricevuta"),
        ),
        (
            delivered.replacen("X-Ricevuta: avvenuta-consegna", "X-Ricevuta: consegnata", 1),
            ReceiptError::InvalidHeader {
                header: "X-Ricevuta",
                value: "consegnata".into(),
            },
        ),
        (
            delivered.replacen(
                "X-Riferimento-Message-ID: <01KBF3W8Z2.email@io.comune-prova.it>\r\n",
                "",
                1,
            ),
            ReceiptError::MissingHeader("X-Riferimento-Message-ID"),
        ),
        (
            delivered
                .replacen("filename=\"daticert.xml\"", "filename=\"dati.xml\"", 1)
                .replacen("name=\"daticert.xml\"", "name=\"dati.xml\"", 1),
            ReceiptError::Daticert(0),
        ),
    ];
    for (raw, expected) in cases {
        assert_eq!(Receipt::parse(raw.as_bytes()), Err(expected));
    }
}

#[test]
fn a_receipt_whose_daticert_is_refused_says_why() {
    // The daticert.xml attachment is base64: replace it with one whose kind is unknown.
    let delivered = text("accettazione.eml");
    let xml = std::fs::read_to_string(format!(
        "{}/tests/daticert/accettazione.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let encode = |s: &str| {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(s);
        b64.as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let original = encode(&xml);
    assert!(
        delivered.contains(&original),
        "the sample's encoding changed"
    );
    let broken = delivered.replacen(
        &original,
        &encode(&xml.replacen("tipo=\"accettazione\"", "tipo=\"ricevuta\"", 1)),
        1,
    );
    assert_eq!(
        Receipt::parse(broken.as_bytes()),
        Err(ReceiptError::InvalidDaticert(DaticertError::InvalidValue {
            what: "postacert@tipo",
            value: "ricevuta".into()
        }))
    );
}
