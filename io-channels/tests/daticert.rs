//! `daticert.xml`: every kind of PEC document of the corpus in `tests/daticert/` (written for
//! these tests from the published format: DM 2 November 2005, technical annex) parses to the
//! expected values; malformed and hostile documents are refused with the precise error; and
//! what parses, written back and parsed again, is the same value.

use io_channels::pec::daticert::{
    Daticert, DaticertError, MAX_DATICERT_BYTES, PecError, PecKind, ReceiptKind, RecipientKind,
};
use proptest::prelude::*;
use time::macros::datetime;

fn corpus(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/daticert/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(name: &str) -> Daticert {
    Daticert::parse(&corpus(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const MSGID: &str = "<01KBF3W8Z2.email@io.comune-prova.it>";
const CITIZEN: &str = "mario.rossi@pec.cittadino-prova.it";

#[test]
fn a_delivery_receipt_gives_every_field_with_the_legal_time_in_its_zone() {
    let receipt = parse("avvenuta-consegna.xml");
    assert_eq!(receipt.kind, PecKind::Delivered);
    assert_eq!(receipt.error, None);
    assert_eq!(receipt.sender, "protocollo@pec.comune-prova.it");
    assert_eq!(receipt.recipients.len(), 1);
    assert_eq!(receipt.recipients[0].address, CITIZEN);
    assert_eq!(receipt.recipients[0].kind, RecipientKind::Certified);
    assert_eq!(
        receipt.reply_to.as_deref(),
        Some("protocollo@pec.comune-prova.it")
    );
    assert_eq!(
        receipt.subject,
        "Avviso di pagamento TARI 2026 & rateizzazione"
    );
    assert_eq!(receipt.provider, "Gestore del Destinatario S.r.l.");
    assert_eq!(receipt.issued_at, datetime!(2026-12-02 09:15:40 +01:00));
    // 08:15:40 UTC (`date -u -d "2026-12-02 08:15:40" +%s`).
    assert_eq!(receipt.issued_at.unix_timestamp(), 1_796_199_340);
    assert_eq!(
        receipt.identifier,
        "opec21010.20261202091532.04711.123.1.7@pec.gestore-prova.it"
    );
    assert_eq!(receipt.msgid.as_deref(), Some(MSGID));
    assert_eq!(receipt.receipt, Some(ReceiptKind::Complete));
    assert_eq!(receipt.delivery_address.as_deref(), Some(CITIZEN));
    assert!(receipt.taken_in_charge.is_empty());
    assert_eq!(receipt.extended_error, None);
}

#[test]
fn every_kind_of_document_in_the_corpus_parses_as_its_kind() {
    for (file, kind, error) in [
        ("posta-certificata.xml", PecKind::Envelope, None),
        ("accettazione.xml", PecKind::Accepted, None),
        (
            "non-accettazione.xml",
            PecKind::NotAccepted,
            Some(PecError::Other),
        ),
        ("presa-in-carico.xml", PecKind::TakenInCharge, None),
        ("avvenuta-consegna.xml", PecKind::Delivered, None),
        ("avvenuta-consegna-breve.xml", PecKind::Delivered, None),
        ("avvenuta-consegna-sintetica.xml", PecKind::Delivered, None),
        (
            "errore-consegna.xml",
            PecKind::DeliveryError,
            Some(PecError::NoRecipient),
        ),
        (
            "preavviso-errore-consegna.xml",
            PecKind::DeliveryErrorWarning,
            Some(PecError::Other),
        ),
        (
            "rilevazione-virus.xml",
            PecKind::VirusDetected,
            Some(PecError::Virus),
        ),
        ("errore.xml", PecKind::Anomaly, None),
    ] {
        let document = parse(file);
        assert_eq!(document.kind, kind, "{file}");
        assert_eq!(document.error, error, "{file}");
        assert_eq!(PecKind::parse(kind.as_str()), Some(kind));
        // The corpus is the canonical form's test too: written back, it parses the same.
        assert_eq!(
            Daticert::parse(document.to_xml().as_bytes()).as_ref(),
            Ok(&document),
            "{file}"
        );
    }
}

#[test]
fn the_kind_specific_fields_are_read() {
    assert_eq!(
        parse("avvenuta-consegna-breve.xml").receipt,
        Some(ReceiptKind::Short)
    );
    let summary = parse("avvenuta-consegna-sintetica.xml");
    assert_eq!(summary.receipt, Some(ReceiptKind::Summary));
    assert_eq!(summary.recipients[1].kind, RecipientKind::External);
    assert_eq!(
        parse("avvenuta-consegna-breve.xml").issued_at,
        datetime!(2026-06-30 09:15:32 +02:00)
    );
    assert_eq!(parse("presa-in-carico.xml").taken_in_charge, vec![CITIZEN]);
    let failed = parse("errore-consegna.xml");
    assert_eq!(failed.delivery_address.as_deref(), Some(CITIZEN));
    assert_eq!(
        failed.extended_error.as_deref(),
        Some("5.1.1 - Casella del destinatario inesistente")
    );
    assert_eq!(parse("errore.xml").reply_to, None);
    assert_eq!(parse("posta-certificata.xml").msgid, None);
}

/// The delivery receipt with `from` replaced by `to` (which must occur in it).
fn altered(from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(corpus("avvenuta-consegna.xml")).unwrap();
    assert!(text.contains(from), "{from} not in the sample");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn a_document_type_with_an_internal_subset_or_an_unknown_entity_is_refused() {
    let billion_laughs = altered(
        "<!DOCTYPE postacert SYSTEM \"daticert.dtd\">",
        "<!DOCTYPE postacert [<!ENTITY lol \"lol\">]>",
    );
    assert_eq!(
        Daticert::parse(&billion_laughs),
        Err(DaticertError::DocumentType)
    );
    let external = altered(
        "<!DOCTYPE postacert SYSTEM \"daticert.dtd\">",
        "<!DOCTYPE postacert SYSTEM \"http://127.0.0.1/evil.dtd\">",
    );
    assert_eq!(Daticert::parse(&external), Err(DaticertError::DocumentType));
    let entity = altered("&amp; rateizzazione", "&lol; rateizzazione");
    assert_eq!(
        Daticert::parse(&entity),
        Err(DaticertError::UnknownEntity("lol".into()))
    );
    let without = altered("<!DOCTYPE postacert SYSTEM \"daticert.dtd\">\n", "");
    assert!(Daticert::parse(&without).is_ok(), "the DOCTYPE is optional");
}

#[test]
fn each_structural_fault_has_its_own_error() {
    let cases: Vec<(Vec<u8>, DaticertError)> = vec![
        (
            altered("tipo=\"avvenuta-consegna\"", "tipo=\"consegnata\""),
            DaticertError::InvalidValue {
                what: "postacert@tipo",
                value: "consegnata".into(),
            },
        ),
        (
            altered("errore=\"nessuno\"", "errore=\"boh\""),
            DaticertError::InvalidValue {
                what: "postacert@errore",
                value: "boh".into(),
            },
        ),
        (
            altered(" errore=\"nessuno\"", ""),
            DaticertError::MissingAttribute {
                attribute: "errore",
                element: "postacert",
            },
        ),
        (
            altered("<postacert ", "<postacert versione=\"2\" "),
            DaticertError::UnexpectedAttribute {
                attribute: "versione".into(),
                element: "postacert".into(),
            },
        ),
        (
            altered(
                "    <risposte>",
                "    <mittente>altro@pec.example.it</mittente>\n    <risposte>",
            ),
            DaticertError::Duplicate {
                element: "mittente",
            },
        ),
        (
            altered(
                "    <mittente>protocollo@pec.comune-prova.it</mittente>\n",
                "",
            ),
            DaticertError::Missing {
                element: "mittente",
            },
        ),
        (
            altered("<oggetto>", "<allegato>x</allegato><oggetto>"),
            DaticertError::UnexpectedElement {
                element: "allegato".into(),
                parent: "<intestazione>".into(),
            },
        ),
        (
            altered("<giorno>02/12/2026</giorno>", "<giorno>31/02/2026</giorno>"),
            DaticertError::InvalidValue {
                what: "data/giorno",
                value: "31/02/2026".into(),
            },
        ),
        (
            altered("<ora>09:15:40</ora>", "<ora>9:15:40</ora>"),
            DaticertError::InvalidValue {
                what: "data/ora",
                value: "9:15:40".into(),
            },
        ),
        (
            altered("zona=\"+0100\"", "zona=\"CET\""),
            DaticertError::InvalidValue {
                what: "data@zona",
                value: "CET".into(),
            },
        ),
        (
            altered(
                "    <consegna>mario.rossi@pec.cittadino-prova.it</consegna>\n",
                "",
            ),
            DaticertError::MissingForKind {
                kind: PecKind::Delivered,
                element: "consegna",
            },
        ),
        (
            altered(
                "    <msgid>&lt;01KBF3W8Z2.email@io.comune-prova.it&gt;</msgid>\n",
                "",
            ),
            DaticertError::MissingForKind {
                kind: PecKind::Delivered,
                element: "msgid",
            },
        ),
        (
            altered(
                "&lt;01KBF3W8Z2.email@io.comune-prova.it&gt;",
                "01KBF3W8Z2.email@io.comune-prova.it",
            ),
            DaticertError::InvalidValue {
                what: "msgid",
                value: "01KBF3W8Z2.email@io.comune-prova.it".into(),
            },
        ),
        (
            altered(
                "<consegna>mario.rossi@pec.cittadino-prova.it</consegna>",
                "<consegna>mario rossi</consegna>",
            ),
            DaticertError::InvalidValue {
                what: "consegna",
                value: "mario rossi".into(),
            },
        ),
        (
            altered("<oggetto>Avviso", "<oggetto><b>Avviso</b>"),
            DaticertError::MixedContent {
                element: "oggetto".into(),
            },
        ),
        (
            altered("<oggetto>Avviso", "<oggetto>&#7;Avviso"),
            DaticertError::InvalidValue {
                what: "text (control character)",
                value: "\\u{7}Avviso di pagamento TARI 2026 & rateizzazione".into(),
            },
        ),
    ];
    for (document, expected) in cases {
        assert_eq!(
            Daticert::parse(&document),
            Err(expected.clone()),
            "{}",
            String::from_utf8_lossy(&document)
        );
        // Every error says what is wrong in words an operator can act on.
        assert!(expected.to_string().starts_with("daticert.xml"));
    }
}

#[test]
fn malformed_oversized_and_non_utf8_input_is_refused() {
    assert!(matches!(
        Daticert::parse(&altered("</dati>", "</data>")),
        Err(DaticertError::Xml(_))
    ));
    assert!(matches!(
        Daticert::parse(b"<postacert"),
        Err(DaticertError::Xml(_))
    ));
    assert!(matches!(Daticert::parse(b""), Err(DaticertError::Xml(_))));
    let mut latin1 = corpus("avvenuta-consegna.xml");
    let at = latin1.windows(6).position(|w| w == b"Avviso").unwrap();
    latin1[at] = 0xC0; // not UTF-8 on its own
    assert_eq!(Daticert::parse(&latin1), Err(DaticertError::NotUtf8));
    let mut huge = corpus("avvenuta-consegna.xml");
    huge.resize(MAX_DATICERT_BYTES + 1, b' ');
    assert_eq!(
        Daticert::parse(&huge),
        Err(DaticertError::TooLarge {
            size: MAX_DATICERT_BYTES + 1,
            max: MAX_DATICERT_BYTES
        })
    );
    let deep = altered("<giorno>", "<giorno><x>");
    assert_eq!(Daticert::parse(&deep), Err(DaticertError::TooDeep));
    let after = [corpus("avvenuta-consegna.xml"), b"<postacert/>".to_vec()].concat();
    assert!(matches!(
        Daticert::parse(&after),
        Err(DaticertError::Xml(_))
    ));
}

fn text_strategy() -> impl Strategy<Value = String> {
    // Printable text with XML's special characters, trimmed as the parser trims.
    "[a-zA-Z0-9 àèéìòù&<>\"'.,:;/_-]{1,40}".prop_map(|s| s.trim().to_owned())
}

fn address_strategy() -> impl Strategy<Value = String> {
    "[a-z0-9._-]{1,12}@[a-z0-9.-]{1,12}"
}

proptest! {
    /// What the writer writes, the parser reads back unchanged.
    #[test]
    fn written_documents_parse_to_the_same_value(
        kind in prop::sample::select(vec![
            PecKind::Envelope, PecKind::Accepted, PecKind::NotAccepted, PecKind::TakenInCharge,
            PecKind::Delivered, PecKind::DeliveryError, PecKind::DeliveryErrorWarning,
            PecKind::VirusDetected, PecKind::Anomaly,
        ]),
        error in prop::option::of(prop::sample::select(vec![
            PecError::NoRecipient, PecError::NoDomain, PecError::Virus, PecError::Other,
        ])),
        sender in address_strategy(),
        recipients in prop::collection::vec((address_strategy(), any::<bool>()), 1..4),
        reply_to in prop::option::of(address_strategy()),
        subject in text_strategy(),
        provider in text_strategy().prop_filter("non-empty", |s| !s.is_empty()),
        seconds in 0i64..4_102_444_800,
        offset_minutes in -14i16 * 60..=14 * 60,
        local in "[a-z0-9.]{1,12}",
        receipt in prop::option::of(prop::sample::select(vec![
            ReceiptKind::Complete, ReceiptKind::Short, ReceiptKind::Summary,
        ])),
        taken in prop::collection::vec(address_strategy(), 0..3),
        extended_error in prop::option::of(text_strategy()),
    ) {
        let offset = time::UtcOffset::from_whole_seconds(i32::from(offset_minutes) * 60).unwrap();
        let issued_at = time::OffsetDateTime::from_unix_timestamp(seconds).unwrap().to_offset(offset);
        let needs_address = matches!(kind, PecKind::Delivered | PecKind::DeliveryError);
        let document = Daticert {
            kind,
            error,
            sender: sender.clone(),
            recipients: recipients
                .into_iter()
                .map(|(address, certified)| io_channels::pec::daticert::Recipient {
                    address,
                    kind: if certified { RecipientKind::Certified } else { RecipientKind::External },
                })
                .collect(),
            reply_to,
            subject,
            provider,
            issued_at,
            identifier: format!("opec.{local}@pec.example.it"),
            msgid: Some(format!("<{local}@io.example.it>")),
            receipt,
            delivery_address: needs_address.then(|| sender.clone()),
            taken_in_charge: taken,
            extended_error,
        };
        prop_assert_eq!(Daticert::parse(document.to_xml().as_bytes()), Ok(document));
    }

    /// Arbitrary bytes never panic the parser.
    #[test]
    fn arbitrary_input_is_refused_or_parsed_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Daticert::parse(&bytes);
    }
}
