//! PEC receipts: the one place where a receipt read from the sender's mailbox becomes a state
//! change. The store commits it (`Store::commit_receipt`); the engine tells its observers.

use crate::pec::Receipt;
use crate::{Engine, ReceiptOutcome, ReceiptRecord, Store, StoreError};

impl<S: Store> Engine<S> {
    /// Records a PEC receipt: its bytes as evidence, a journal entry, and what it does to the
    /// PEC delivery (`pec::after_receipt`): accepted, delivered (SENT at the receipt's legal
    /// time), failed, or only noted. Idempotent: a receipt read again is a `Duplicate`, so a
    /// reader that dies before moving a processed receipt out of the inbox may read it again.
    pub async fn record_receipt(&self, receipt: Receipt) -> Result<ReceiptOutcome, StoreError> {
        let at = self.clock.now();
        let message = receipt.delivery.message;
        let kind = receipt.kind;
        let outcome = self
            .store
            .commit_receipt(ReceiptRecord {
                receipt,
                windows: self.config.pec_receipts,
                at,
            })
            .await?;
        match &outcome {
            ReceiptOutcome::Recorded { service_id, events } => {
                tracing::info!(%message, receipt = %kind, "PEC receipt recorded");
                self.observe(message, service_id, at, events);
            }
            ReceiptOutcome::Duplicate => {
                tracing::debug!(%message, receipt = %kind, "PEC receipt already recorded");
            }
            ReceiptOutcome::UnknownDelivery => {
                tracing::warn!(%message, receipt = %kind, "PEC receipt for no known PEC delivery; ignored");
            }
        }
        Ok(outcome)
    }
}
