//! Receipts composed as a provider sends them: S/MIME `multipart/signed` (signed by a
//! [`Signer`]) around the human-readable text and `daticert.xml` (and, on a complete delivery
//! receipt, the original as `postacert.eml`). What io reads is tested against what this
//! writes; the provider simulator (`pec-simulator`) sends these.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::{X509, X509NameBuilder};
use time::{Duration, OffsetDateTime, UtcOffset};

use super::daticert::{Daticert, PecError, PecKind, ReceiptKind, Recipient, RecipientKind};

/// A provider's signing key and its self-signed certificate.
pub struct Signer {
    certificate: X509,
    key: PKey<Private>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A fresh P-256 key and a certificate for `provider`, valid for a year.
    pub fn generate(provider: &str) -> Result<Self, openssl::error::ErrorStack> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, "Posta certificata")?;
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, provider)?;
        let name = name.build();
        let mut serial = BigNum::new()?;
        serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        let serial = serial.to_asn1_integer()?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&key)?;
        let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(365)?);
        builder.set_not_before(&not_before)?;
        builder.set_not_after(&not_after)?;
        builder.sign(&key, MessageDigest::sha256())?;
        Ok(Self {
            certificate: builder.build(),
            key,
        })
    }

    /// The certificate, PEM: what a mailbox reader must trust.
    pub fn certificate_pem(&self) -> String {
        self.certificate
            .to_pem()
            .map(|pem| String::from_utf8_lossy(&pem).into_owned())
            .unwrap_or_default()
    }

    /// `content` (a MIME entity, CRLF line ends) signed: the `multipart/signed` entity,
    /// headers included.
    pub fn sign(&self, content: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let flags = Pkcs7Flags::DETACHED | Pkcs7Flags::NOOLDMIMETYPE | Pkcs7Flags::CRLFEOL;
        let no_extra: Stack<X509> = Stack::new()?;
        let pkcs7 = Pkcs7::sign(&self.certificate, &self.key, &no_extra, content, flags)?;
        pkcs7.to_smime(content, flags)
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
    /// The receipt of `kind`, the `sequence`-th of this submission, signed by `signer`.
    pub fn build(
        &self,
        kind: PecKind,
        sequence: u32,
        signer: &Signer,
    ) -> Result<Vec<u8>, openssl::error::ErrorStack> {
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
        let content = format!(
            "Content-Type: multipart/mixed; boundary=\"mixed\"\r\n\
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
             --mixed--\r\n",
            sender = self.sender,
            recipient = self.recipient,
            subject = self.subject,
            label = label(kind),
            xml = xml.replace("\r\n", "\n").replace('\n', "\r\n"),
        );
        let signed = signer.sign(content.as_bytes())?;
        let mut raw = format!(
            "From: \"Per conto di: {sender}\" <posta-certificata@{domain}>\r\n\
             To: {sender}\r\n\
             Subject: {label}: {subject}\r\n\
             Date: {date}\r\n\
             Message-ID: <{identifier}>\r\n\
             X-Ricevuta: {kind}\r\n\
             X-Riferimento-Message-ID: {message_id}\r\n\
             {tipo}",
            sender = self.sender,
            domain = self.provider_domain,
            subject = self.subject,
            label = label(kind),
            message_id = self.message_id,
        )
        .into_bytes();
        raw.extend_from_slice(&signed);
        Ok(raw)
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
    use super::super::receipt::Receipt;
    use super::super::signature::{self, ProviderCertificates, Signature};
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
    fn every_receipt_is_recognised_and_its_signature_verifies() {
        let signer = Signer::generate("Gestore di prova").unwrap();
        let trusted = ProviderCertificates::from_pem(&[signer.certificate_pem()]).unwrap();
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
            let raw = builder.build(kind, n as u32, &signer).unwrap();
            let receipt = Receipt::parse(&raw).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(receipt.kind, kind);
            assert_eq!(receipt.refers_to, builder.message_id);
            assert!(
                matches!(signature::check(&raw, &trusted), Signature::Verified { ref signer } if signer.contains("Gestore di prova")),
                "{kind}"
            );
            let engine = receipt
                .for_engine(raw, &trusted)
                .expect("one of io's deliveries");
            assert!(engine.signer.is_some(), "{kind}");
            assert_eq!(
                engine.issued_at.as_millis(),
                (1_780_000_000 + n as i64) * 1000
            );
        }
    }

    #[test]
    fn a_changed_byte_an_unknown_signer_or_no_signature_is_unverified() {
        let signer = Signer::generate("Gestore di prova").unwrap();
        let other = Signer::generate("Altro gestore").unwrap();
        let trusted = ProviderCertificates::from_pem(&[signer.certificate_pem()]).unwrap();
        let raw = builder().build(PecKind::Delivered, 1, &signer).unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        let altered = text.replacen("Testo.", "Testo!", 1).into_bytes();
        assert_ne!(altered, raw);
        assert!(matches!(
            signature::check(&altered, &trusted),
            Signature::Unverified { .. }
        ));
        let foreign = builder().build(PecKind::Delivered, 1, &other).unwrap();
        assert!(matches!(
            signature::check(&foreign, &trusted),
            Signature::Unverified { .. }
        ));
        let receipt = Receipt::parse(&foreign).unwrap();
        assert_eq!(receipt.for_engine(foreign, &trusted).unwrap().signer, None);
        assert!(matches!(
            signature::check(b"From: x\r\n\r\nnot signed\r\n", &trusted),
            Signature::Unverified { .. }
        ));
        assert!(ProviderCertificates::from_pem(&[]).is_err());
        assert!(ProviderCertificates::from_pem(&["not a pem".into()]).is_err());
    }
}
