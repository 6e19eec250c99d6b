//! The in-app inbox. The citizen's inbox *is* the store: processing a message indexes it there
//! in the same atomic write that marks it PROCESSED. This channel's attempt confirms that the
//! message is readable in the recipient's inbox, so the inbox delivery is SENT only when the
//! citizen's app can actually list it, and an inconsistency surfaces as a FAILED delivery with
//! a reason instead of a silent success.

use std::sync::Arc;

use io_core::{Channel, ChannelKind, DeliveryJob, Outcome, PermanentReason, Store, TransientCause};

/// The inbox channel over the engine's store.
pub struct InboxChannel<S: Store> {
    store: Arc<S>,
}

impl<S: Store> InboxChannel<S> {
    /// The inbox kept in `store` (the same store the engine writes).
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }
}

#[async_trait::async_trait]
impl<S: Store> Channel for InboxChannel<S> {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Inbox
    }

    async fn send(&self, job: DeliveryJob<'_>) -> Outcome {
        let id = job.message.id;
        match self
            .store
            .inbox_contains(&job.delivery.fiscal_code, &id)
            .await
        {
            Ok(true) => Outcome::Delivered {
                provider_ref: Some(id.to_string()),
            },
            Ok(false) => Outcome::Permanent(PermanentReason::new(
                "not_in_inbox",
                format!("message {id} is not indexed in the recipient's inbox"),
            )),
            Err(error) if error.is_retriable() => Outcome::Transient {
                retry_after: None,
                cause: TransientCause::Other(error.to_string()),
            },
            Err(error) => {
                Outcome::Permanent(PermanentReason::new("store_error", error.to_string()))
            }
        }
    }
}
