//! The receipts a provider sends for one submission, built as providers shape them:
//! `multipart/signed` around the human-readable text and `daticert.xml` (and, on a complete
//! delivery receipt, the original as `postacert.eml`).

use io_channels::pec::daticert::{
    Daticert, PecError, PecKind, ReceiptKind, Recipient, RecipientKind,
};
use time::{Duration, OffsetDateTime, UtcOffset};

/// What happens to a submission, chosen by the recipient's local part (crate doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted, then delivered.
    Delivered,
    /// Accepted, a 12-hour warning, then delivered.
    WarnedThenDelivered,
    /// Refused by the sender's provider.
    NotAccepted,
    /// Accepted, then not delivered.
    DeliveryError,
    /// Accepted, then stopped for a virus.
    Virus,
    /// Accepted, then nothing.
    AcceptedOnly,
    /// Nothing at all.
    Silent,
}

impl Outcome {
    /// The outcome the recipient `address` asks for.
    pub fn for_recipient(address: &str) -> Self {
        let local = address
            .split('@')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let starts = |prefix: &str| local.starts_with(prefix);
        if starts("non-accettazione") {
            Self::NotAccepted
        } else if starts("errore-consegna") {
            Self::DeliveryError
        } else if starts("preavviso") {
            Self::WarnedThenDelivered
        } else if starts("virus") {
            Self::Virus
        } else if starts("silenzio") {
            Self::AcceptedOnly
        } else if starts("muto") {
            Self::Silent
        } else {
            Self::Delivered
        }
    }

    /// The receipts, in the order the providers send them.
    pub fn receipts(self) -> &'static [PecKind] {
        match self {
            Self::Delivered => &[PecKind::Accepted, PecKind::Delivered],
            Self::WarnedThenDelivered => &[
                PecKind::Accepted,
                PecKind::DeliveryErrorWarning,
                PecKind::Delivered,
            ],
            Self::NotAccepted => &[PecKind::NotAccepted],
            Self::DeliveryError => &[PecKind::Accepted, PecKind::DeliveryError],
            Self::Virus => &[PecKind::Accepted, PecKind::VirusDetected],
            Self::AcceptedOnly => &[PecKind::Accepted],
            Self::Silent => &[],
        }
    }
}

/// Builds the receipts of one submission.
#[derive(Debug, Clone)]
pub struct ReceiptBuilder {
    /// The submission's sender (the mailbox).
    pub sender: String,
    /// Its recipient (the domicile).
    pub recipient: String,
    /// Its subject.
    pub subject: String,
    /// Its `Message-ID`, brackets included.
    pub message_id: String,
    /// The submission as received, for a complete delivery receipt.
    pub original: Vec<u8>,
    /// The provider's domain.
    pub provider_domain: String,
    /// When the submission arrived.
    pub received_at: OffsetDateTime,
}

impl ReceiptBuilder {
    /// The receipt of `kind`, the `sequence`-th of this submission.
    pub fn build(&self, kind: PecKind, sequence: u32) -> Vec<u8> {
        let zone = UtcOffset::from_hms(1, 0, 0).unwrap_or(UtcOffset::UTC);
        let issued_at = (self.received_at + Duration::seconds(i64::from(sequence))).to_offset(zone);
        let identifier = format!(
            "opec-sim.{}.{}@{}",
            issued_at.unix_timestamp(),
            sequence,
            self.provider_domain
        );
        let (error, extended_error) = match kind {
            PecKind::NotAccepted => (
                Some(PecError::Other),
                Some("messaggio non accettato: il simulatore lo rifiuta".to_owned()),
            ),
            PecKind::DeliveryError => (
                Some(PecError::NoRecipient),
                Some("5.1.1 - casella del destinatario inesistente".to_owned()),
            ),
            PecKind::VirusDetected => (
                Some(PecError::Virus),
                Some("virus rilevato nel messaggio".to_owned()),
            ),
            _ => (None, None),
        };
        let delivered = matches!(kind, PecKind::Delivered | PecKind::DeliveryError);
        let daticert = Daticert {
            kind,
            error,
            sender: self.sender.clone(),
            recipients: vec![Recipient {
                address: self.recipient.clone(),
                kind: RecipientKind::Certified,
            }],
            reply_to: Some(self.sender.clone()),
            subject: self.subject.clone(),
            provider: format!("Simulatore PEC di io ({})", self.provider_domain),
            issued_at,
            identifier: identifier.clone(),
            msgid: Some(self.message_id.clone()),
            receipt: (kind == PecKind::Delivered).then_some(ReceiptKind::Complete),
            delivery_address: delivered.then(|| self.recipient.clone()),
            taken_in_charge: Vec::new(),
            extended_error,
        };
        let xml = daticert.to_xml();
        let tipo = if kind == PecKind::Delivered {
            "X-TipoRicevuta: completa\r\n"
        } else {
            ""
        };
        let original = if kind == PecKind::Delivered {
            format!(
                "--mixed\r\n\
                 Content-Type: message/rfc822; name=\"postacert.eml\"\r\n\
                 Content-Disposition: attachment; filename=\"postacert.eml\"\r\n\
                 \r\n\
                 {}\r\n",
                String::from_utf8_lossy(&self.original)
                    .replace("\r\n", "\n")
                    .replace('\n', "\r\n")
            )
        } else {
            String::new()
        };
        let date = issued_at
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let base64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .encode(b"placeholder: the simulator does not sign yet")
        };
        format!(
            "From: \"Per conto di: {sender}\" <posta-certificata@{domain}>\r\n\
             To: {sender}\r\n\
             Subject: {label}: {subject}\r\n\
             Date: {date}\r\n\
             Message-ID: <{identifier}>\r\n\
             X-Ricevuta: {kind}\r\n\
             X-Riferimento-Message-ID: {message_id}\r\n\
             {tipo}\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"signed\"\r\n\
             \r\n\
             --signed\r\n\
             Content-Type: multipart/mixed; boundary=\"mixed\"\r\n\
             \r\n\
             --mixed\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             \r\n\
             {label}: il messaggio \"{subject}\" inviato da {sender} a {recipient}.\r\n\
             --mixed\r\n\
             Content-Type: application/xml; name=\"daticert.xml\"\r\n\
             Content-Disposition: attachment; filename=\"daticert.xml\"\r\n\
             Content-Transfer-Encoding: 8bit\r\n\
             \r\n\
             {xml}\r\n\
             {original}\
             --mixed--\r\n\
             --signed\r\n\
             Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
             Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             \r\n\
             {base64}\r\n\
             --signed--\r\n",
            sender = self.sender,
            recipient = self.recipient,
            domain = self.provider_domain,
            subject = self.subject,
            label = label(kind),
            message_id = self.message_id,
            xml = xml.replace("\r\n", "\n").replace('\n', "\r\n"),
        )
        .into_bytes()
    }
}

/// The subject prefix providers use for each receipt.
fn label(kind: PecKind) -> &'static str {
    match kind {
        PecKind::Accepted => "ACCETTAZIONE",
        PecKind::NotAccepted => "AVVISO DI NON ACCETTAZIONE",
        PecKind::TakenInCharge => "PRESA IN CARICO",
        PecKind::Delivered => "CONSEGNA",
        PecKind::DeliveryErrorWarning => "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO",
        PecKind::DeliveryError => "AVVISO DI MANCATA CONSEGNA",
        PecKind::VirusDetected => "PROBLEMA DI SICUREZZA",
        PecKind::Envelope | PecKind::Anomaly => "POSTA CERTIFICATA",
    }
}

#[cfg(test)]
mod tests {
    use io_channels::pec::receipt::Receipt;

    use super::*;

    fn builder() -> ReceiptBuilder {
        ReceiptBuilder {
            sender: "protocollo@pec.comune.example.it".into(),
            recipient: "mario.rossi@pec.example.it".into(),
            subject: "Notifica di un atto".into(),
            message_id: "<01KBF3W8Z2000000000000000A.pec@pec.comune.example.it>".into(),
            original: b"From: a@b\r\nSubject: Notifica di un atto\r\n\r\nTesto.\r\n".to_vec(),
            provider_domain: "pec.gestore.example".into(),
            received_at: OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap(),
        }
    }

    #[test]
    fn every_receipt_is_recognised_by_io_s_parser_with_its_kind_and_message() {
        let builder = builder();
        for (n, kind) in [
            PecKind::Accepted,
            PecKind::NotAccepted,
            PecKind::Delivered,
            PecKind::DeliveryErrorWarning,
            PecKind::DeliveryError,
            PecKind::VirusDetected,
        ]
        .into_iter()
        .enumerate()
        {
            let raw = builder.build(kind, n as u32);
            let receipt = Receipt::parse(&raw).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(receipt.kind, kind);
            assert_eq!(receipt.refers_to, builder.message_id);
            let engine = receipt.for_engine(raw).expect("one of io's deliveries");
            assert_eq!(
                engine.issued_at.as_millis(),
                (1_780_000_000 + n as i64) * 1000
            );
        }
    }

    #[test]
    fn the_recipient_chooses_the_outcome() {
        for (address, outcome) in [
            ("mario@pec.example.it", Outcome::Delivered),
            ("non-accettazione@x", Outcome::NotAccepted),
            ("Errore-Consegna.1@x", Outcome::DeliveryError),
            ("preavviso@x", Outcome::WarnedThenDelivered),
            ("virus@x", Outcome::Virus),
            ("silenzio@x", Outcome::AcceptedOnly),
            ("muto@x", Outcome::Silent),
        ] {
            assert_eq!(Outcome::for_recipient(address), outcome, "{address}");
        }
    }
}
