//! PEC receipts as the engine records them, and what each does to a PEC delivery.
//!
//! A PEC delivery is not done when the SMTP server takes it: the sender's provider answers with
//! an acceptance receipt (or a refusal), and the recipient's provider with a delivery receipt
//! (or an error). Channels read the receipts from the sender's mailbox and hand them to
//! [`Engine::record_receipt`](crate::Engine::record_receipt); the store commits each one (its
//! bytes as evidence, a journal entry, the delivery's new state) in one write, by
//! [`after_receipt`], and a receipt it already holds (the same SHA-256) changes nothing.
//!
//! The `Message-ID` of a submission is derived from the delivery, so a receipt's
//! `X-Riferimento-Message-ID` leads back to it without an index: [`message_id`] and
//! [`delivery_of`].

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    ChannelKind, Delivery, DeliveryId, DeliveryState, FailureReason, MessageId, OutcomeRecord,
    PermanentReason, Timestamp,
};

/// The domain part of the `Message-ID`s io gives PEC submissions when none is configured.
pub const DEFAULT_MESSAGE_ID_DOMAIN: &str = "pec.io.invalid";

/// The `Message-ID` (angle brackets included) of the PEC submission of `message`: the same for
/// every attempt, so a resubmission after a lost acceptance is recognisably the same message.
pub fn message_id(message: MessageId, domain: &str) -> String {
    format!("<{message}.pec@{domain}>")
}

/// The PEC delivery a receipt's `X-Riferimento-Message-ID` (or daticert `msgid`) refers to, if
/// it is one of io's: `<MESSAGE.pec@domain>`, brackets optional.
pub fn delivery_of(message_id: &str) -> Option<DeliveryId> {
    let trimmed = message_id.trim();
    let inner = trimmed
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or(trimmed);
    let (local, _domain) = inner.split_once('@')?;
    let message = local.strip_suffix(".pec")?;
    let message: MessageId = message.parse().ok()?;
    Some(DeliveryId::new(message, ChannelKind::Pec))
}

/// The receipts a sender gets (DPR 68/2005; the `X-Ricevuta` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptKind {
    /// `accettazione`: the sender's provider accepted the message.
    Accettazione,
    /// `non-accettazione`: the sender's provider refused it (final).
    NonAccettazione,
    /// `presa-in-carico`: the recipient's provider took charge of it.
    PresaInCarico,
    /// `avvenuta-consegna`: delivered to the recipient's mailbox, with legal value.
    AvvenutaConsegna,
    /// `preavviso-errore-consegna`: not delivered within 12 hours; a final answer follows.
    PreavvisoErroreConsegna,
    /// `errore-consegna`: not delivered (final).
    ErroreConsegna,
    /// `rilevazione-virus`: a provider found a virus and stopped the message (final).
    RilevazioneVirus,
}

impl ReceiptKind {
    /// The `X-Ricevuta` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accettazione => "accettazione",
            Self::NonAccettazione => "non-accettazione",
            Self::PresaInCarico => "presa-in-carico",
            Self::AvvenutaConsegna => "avvenuta-consegna",
            Self::PreavvisoErroreConsegna => "preavviso-errore-consegna",
            Self::ErroreConsegna => "errore-consegna",
            Self::RilevazioneVirus => "rilevazione-virus",
        }
    }
}

impl fmt::Display for ReceiptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A receipt as read from the sender's mailbox: what it certifies and its exact bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The delivery it is about.
    pub delivery: DeliveryId,
    /// What it certifies.
    pub kind: ReceiptKind,
    /// The legal time the provider certifies (daticert `data`).
    pub issued_at: Timestamp,
    /// The provider's identifier of the message (daticert `identificativo`).
    pub provider_id: String,
    /// The provider's explanation of an error (daticert `errore-esteso`).
    pub detail: Option<String>,
    /// Who signed it, when its S/MIME signature verified against a trusted provider
    /// certificate; `None` when it did not: such a receipt is kept as evidence and flagged,
    /// and changes nothing.
    pub signer: Option<String>,
    /// The receipt exactly as the mailbox holds it: the evidence.
    pub raw: Vec<u8>,
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipt")
            .field("delivery", &self.delivery)
            .field("kind", &self.kind)
            .field("issued_at", &self.issued_at)
            .field("provider_id", &self.provider_id)
            .field("signer", &self.signer)
            .field("bytes", &self.raw.len())
            .finish()
    }
}

impl Receipt {
    /// SHA-256 of the raw bytes, lower-case hex: the evidence's name in the journal and in the
    /// store.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.raw))
    }
}

/// How long a PEC delivery waits for its receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptWindows {
    /// From submission to the acceptance receipt; past it, the message is submitted again
    /// (the same `Message-ID`). Acceptance normally takes seconds.
    pub acceptance: Duration,
    /// From submission to the delivery receipt; past it, the delivery FAILS. The rules give
    /// providers 24 hours to send the final error receipt, so the default leaves a margin.
    pub delivery: Duration,
}

impl Default for ReceiptWindows {
    fn default() -> Self {
        Self {
            acceptance: Duration::from_secs(15 * 60),
            delivery: Duration::from_secs(26 * 3600),
        }
    }
}

/// The stable codes of PEC failures, in [`PermanentReason::code`].
pub mod failure {
    /// `non-accettazione`.
    pub const NOT_ACCEPTED: &str = "pec_not_accepted";
    /// `errore-consegna`.
    pub const DELIVERY_ERROR: &str = "pec_delivery_error";
    /// `rilevazione-virus`.
    pub const VIRUS_DETECTED: &str = "pec_virus_detected";
    /// No delivery receipt within [`ReceiptWindows::delivery`](super::ReceiptWindows).
    pub const NO_DELIVERY_RECEIPT: &str = "pec_no_delivery_receipt";
}

/// The delivery after `receipt`, received at `now`: `None` when the receipt changes nothing
/// (a final delivery, a receipt that only informs: presa-in-carico, preavviso, or one whose
/// signature did not verify). A final delivery stays as it is: a late receipt is kept as
/// evidence only.
pub fn after_receipt(
    delivery: &Delivery,
    receipt: &Receipt,
    windows: ReceiptWindows,
    now: Timestamp,
) -> Option<Delivery> {
    if delivery.state.is_final() || receipt.signer.is_none() {
        return None;
    }
    let mut next = delivery.clone();
    let failed = |code: &str| DeliveryState::Failed {
        reason: FailureReason::Permanent {
            reason: PermanentReason::new(
                code,
                receipt
                    .detail
                    .clone()
                    .unwrap_or_else(|| format!("{} receipt", receipt.kind)),
            ),
        },
    };
    next.state = match receipt.kind {
        ReceiptKind::Accettazione => {
            let submitted_at = match delivery.state {
                DeliveryState::Submitted {
                    submitted_at,
                    accepted_at: None,
                } => submitted_at,
                DeliveryState::Pending | DeliveryState::Retrying => receipt.issued_at,
                _ => return None,
            };
            next.next_attempt_at = submitted_at.plus(windows.delivery);
            DeliveryState::Submitted {
                submitted_at,
                accepted_at: Some(receipt.issued_at),
            }
        }
        ReceiptKind::AvvenutaConsegna => {
            next.legal_delivery_at = Some(receipt.issued_at);
            next.last_outcome = Some(OutcomeRecord::Delivered {
                provider_ref: Some(receipt.provider_id.clone()),
            });
            DeliveryState::Sent
        }
        ReceiptKind::NonAccettazione => failed(failure::NOT_ACCEPTED),
        ReceiptKind::ErroreConsegna => failed(failure::DELIVERY_ERROR),
        ReceiptKind::RilevazioneVirus => failed(failure::VIRUS_DETECTED),
        ReceiptKind::PresaInCarico | ReceiptKind::PreavvisoErroreConsegna => return None,
    };
    next.updated_at = now;
    Some(next)
}

#[cfg(test)]
mod tests;
