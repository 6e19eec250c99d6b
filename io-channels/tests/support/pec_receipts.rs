//! PEC receipts for the mailbox tests, composed and signed as a provider sends them; apart
//! from `mod.rs` because only the PEC tests build with the `pec` feature.

/// The `Message-ID` the samples of tests/daticert/ refer to.
pub(crate) const SAMPLE_MSGID: &str = "01KBF3W8Z2.email@io.comune-prova.it";

/// The legal time of the receipts [`pec_receipt`] makes: 2026-12-02T09:15:40+01:00.
pub(crate) const RECEIPT_TIME_UNIX: i64 = 1_796_199_340;

/// A receipt of `kind` about the message `msgid` (angle brackets excluded), composed and
/// signed by `signer` as a provider sends it.
pub(crate) fn pec_receipt(
    kind: io_channels::pec::daticert::PecKind,
    msgid: &str,
    signer: &io_channels::pec::compose::Signer,
) -> Vec<u8> {
    io_channels::pec::compose::ReceiptBuilder {
        sender: "protocollo@pec.comune.example.it".into(),
        recipient: "mario.rossi@pec.example.it".into(),
        subject: "Notifica di un atto".into(),
        message_id: format!("<{msgid}>"),
        original: b"Subject: Notifica di un atto\r\n\r\nTesto.\r\n".to_vec(),
        provider_domain: "pec.gestore-prova.it".into(),
        received_at: time::OffsetDateTime::from_unix_timestamp(RECEIPT_TIME_UNIX).unwrap(),
    }
    .build(kind, 0, signer)
    .unwrap()
}
