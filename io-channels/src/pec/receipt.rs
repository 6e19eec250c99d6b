//! A PEC receipt as it arrives in the sender's mailbox: recognised by its headers
//! (`X-Ricevuta`, `X-Riferimento-Message-ID`, `X-TipoRicevuta`), its `daticert.xml` read
//! strictly, and the two cross-checked, so that a receipt whose headers and certification data
//! disagree is refused rather than trusted for either. The raw bytes are kept with their SHA-256:
//! a receipt is evidence, stored byte for byte.
//!
//! Not a receipt: a transport envelope (`X-Trasporto: posta-certificata`, a PEC someone sent to
//! the sender's mailbox) or an anomaly envelope (`X-Trasporto: errore`): [`ReceiptError::NotAReceipt`]
//! says which, so a reader can leave them for a person. The provider's S/MIME signature is not
//! checked here.

use mail_parser::{HeaderName, Message, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

use super::daticert::{Daticert, DaticertError, PecKind, ReceiptKind};
use super::signature::{self, ProviderCertificates, Signature};

/// The largest receipt accepted. A complete delivery receipt carries the original message, so
/// the bound is that of a PEC message (providers accept up to 100 MB; io sends text only).
pub const MAX_RECEIPT_BYTES: usize = 16 * 1024 * 1024;

/// A recognised, cross-checked PEC receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// What it certifies (`X-Ricevuta`, the same as its `daticert.xml` says).
    pub kind: PecKind,
    /// The `Message-ID` of the message it is about (`X-Riferimento-Message-ID`, the same as
    /// `daticert.xml`'s `msgid`): the key that ties it to a delivery.
    pub refers_to: String,
    /// Its certification data.
    pub data: Daticert,
    /// SHA-256 of the raw bytes, for the evidence record.
    pub sha256: [u8; 32],
}

/// Why a message of the sender's mailbox is not taken as a receipt. All permanent: the same
/// bytes are refused the same way again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Larger than [`MAX_RECEIPT_BYTES`].
    #[error("the message is {size} bytes, more than the {max} accepted for a receipt")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a parseable email.
    #[error("the message is not a parseable email")]
    NotEmail,
    /// A PEC envelope, not a receipt (`X-Trasporto` has the value given).
    #[error("a PEC envelope (X-Trasporto: {0}), not a receipt")]
    NotAReceipt(String),
    /// Neither `X-Ricevuta` nor `X-Trasporto`: not PEC at all.
    #[error("not a PEC message: no X-Ricevuta header")]
    NotPec,
    /// A header a receipt must have once is absent.
    #[error("the receipt has no {0} header")]
    MissingHeader(&'static str),
    /// A header a receipt has once appears more than once.
    #[error("the receipt has more than one {0} header")]
    RepeatedHeader(&'static str),
    /// A header value the format does not allow.
    #[error("the receipt's {header} header has the invalid value `{value}`")]
    InvalidHeader {
        /// The header.
        header: &'static str,
        /// Its value.
        value: String,
    },
    /// No `daticert.xml` attachment, or more than one.
    #[error("the receipt has {0} daticert.xml attachments, not one")]
    Daticert(usize),
    /// The `daticert.xml` attachment is refused.
    #[error("the receipt's {0}")]
    InvalidDaticert(#[from] DaticertError),
    /// The headers and the certification data disagree.
    #[error(
        "the receipt's {header} header says `{header_value}` but daticert.xml says `{data_value}`"
    )]
    Mismatch {
        /// The header.
        header: &'static str,
        /// The header's value.
        header_value: String,
        /// What `daticert.xml` says.
        data_value: String,
    },
}

const RICEVUTA: &str = "X-Ricevuta";
const RIFERIMENTO: &str = "X-Riferimento-Message-ID";
const TIPO_RICEVUTA: &str = "X-TipoRicevuta";
const TRASPORTO: &str = "X-Trasporto";

impl Receipt {
    /// The receipt as the engine records it, with `raw`, the bytes it was parsed from, as
    /// evidence, and its signer when its S/MIME signature verifies against `trusted` (an
    /// unverified receipt is recorded, flagged, and changes nothing); `None` when it refers to
    /// a message io did not send (its `Message-ID` is not one of a PEC delivery), or certifies
    /// an envelope rather than a receipt.
    pub fn for_engine(
        &self,
        raw: Vec<u8>,
        trusted: &ProviderCertificates,
    ) -> Option<io_core::pec::Receipt> {
        use io_core::pec::ReceiptKind as Kind;
        let kind = match self.kind {
            PecKind::Accepted => Kind::Accettazione,
            PecKind::NotAccepted => Kind::NonAccettazione,
            PecKind::TakenInCharge => Kind::PresaInCarico,
            PecKind::Delivered => Kind::AvvenutaConsegna,
            PecKind::DeliveryErrorWarning => Kind::PreavvisoErroreConsegna,
            PecKind::DeliveryError => Kind::ErroreConsegna,
            PecKind::VirusDetected => Kind::RilevazioneVirus,
            PecKind::Envelope | PecKind::Anomaly => return None,
        };
        let delivery = io_core::pec::delivery_of(&self.refers_to)?;
        let millis = self.data.issued_at.unix_timestamp_nanos() / 1_000_000;
        let issued_at = io_core::Timestamp::from_millis(i64::try_from(millis).ok()?);
        let signer = match signature::check(&raw, trusted) {
            Signature::Verified { signer } => Some(signer),
            Signature::Unverified { reason } => {
                tracing::warn!(receipt = %self.kind, %reason, "PEC receipt signature not verified: kept as evidence, flagged, not trusted");
                None
            }
        };
        Some(io_core::pec::Receipt {
            delivery,
            kind,
            issued_at,
            provider_id: self.data.identifier.clone(),
            detail: self.data.extended_error.clone(),
            signer,
            raw,
        })
    }

    /// Recognises and checks a message read from the sender's mailbox.
    pub fn parse(raw: &[u8]) -> Result<Self, ReceiptError> {
        if raw.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::TooLarge {
                size: raw.len(),
                max: MAX_RECEIPT_BYTES,
            });
        }
        // mail-parser 0.11.9 has a `debug_assert!` that malformed MIME reaches (found by the
        // `pec_receipt` fuzz target): without this, a debug build would panic on a hostile
        // message. Release builds compile it out; either way such input is not an email.
        let message = std::panic::catch_unwind(|| MessageParser::default().parse(raw))
            .ok()
            .flatten()
            .ok_or(ReceiptError::NotEmail)?;
        let Some(kind_text) = single_header(&message, RICEVUTA)? else {
            return match single_header(&message, TRASPORTO)? {
                Some(transport) => Err(ReceiptError::NotAReceipt(transport)),
                None => Err(ReceiptError::NotPec),
            };
        };
        let kind = PecKind::parse(&kind_text)
            .filter(|kind| !matches!(kind, PecKind::Envelope | PecKind::Anomaly))
            .ok_or_else(|| ReceiptError::InvalidHeader {
                header: RICEVUTA,
                value: kind_text.clone(),
            })?;
        let refers_to = single_header(&message, RIFERIMENTO)?
            .ok_or(ReceiptError::MissingHeader(RIFERIMENTO))?;
        let receipt_kind = single_header(&message, TIPO_RICEVUTA)?;

        let attachments: Vec<&[u8]> = message
            .attachments()
            .filter(|part| !part.is_message() && part.attachment_name() == Some("daticert.xml"))
            .map(|part| part.contents())
            .collect();
        let [daticert] = attachments[..] else {
            return Err(ReceiptError::Daticert(attachments.len()));
        };
        let data = Daticert::parse(daticert)?;

        if data.kind != kind {
            return Err(mismatch(RICEVUTA, &kind_text, data.kind.as_str()));
        }
        if data.msgid.as_deref() != Some(refers_to.as_str()) {
            return Err(mismatch(
                RIFERIMENTO,
                &refers_to,
                data.msgid.as_deref().unwrap_or("(none)"),
            ));
        }
        if let Some(text) = receipt_kind {
            let said = data.receipt.map(ReceiptKind::as_str);
            if said != Some(text.as_str()) {
                return Err(mismatch(TIPO_RICEVUTA, &text, said.unwrap_or("(none)")));
            }
        }
        Ok(Receipt {
            kind,
            refers_to,
            data,
            sha256: Sha256::digest(raw).into(),
        })
    }
}

fn mismatch(header: &'static str, header_value: &str, data_value: &str) -> ReceiptError {
    ReceiptError::Mismatch {
        header,
        header_value: header_value.to_owned(),
        data_value: data_value.to_owned(),
    }
}

/// The trimmed value of a header that may appear at most once.
fn single_header(
    message: &Message<'_>,
    name: &'static str,
) -> Result<Option<String>, ReceiptError> {
    let mut values = message
        .headers()
        .iter()
        .filter(|header| header.name == HeaderName::Other(name.into()))
        .map(|header| {
            let start = header.offset_start as usize;
            let end = header.offset_end as usize;
            message
                .raw_message()
                .get(start..end)
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                // Unfolded (RFC 5322 §2.2.3): a long Message-ID may be folded over lines.
                .map(|text| text.replace("\r\n", "").replace('\n', "").trim().to_owned())
        });
    let first = values.next();
    if values.next().is_some() {
        return Err(ReceiptError::RepeatedHeader(name));
    }
    match first {
        None => Ok(None),
        Some(Some(value)) if !value.is_empty() => Ok(Some(value)),
        Some(_) => Err(ReceiptError::InvalidHeader {
            header: name,
            value: String::new(),
        }),
    }
}
