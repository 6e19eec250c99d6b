//! Processing an accepted message whose decision was not taken at accept: read the message and
//! its sender, decide (`engine/decide.rs`), and produce the record of PROCESSED with its
//! deliveries, or REJECTED with its reason. The round commits the records of its process tasks
//! together (`Store::commit_processes`): each is atomic on its own, and they share the store's
//! write and flush.

use crate::{
    Engine, JournalEvent, MessageId, MessageStatus, ProcessRecord, Store, StoreError, Task,
};

impl<S: Store> Engine<S> {
    /// The record of processing `id`, or `None` when the task was discarded (no message).
    pub(super) async fn process(
        &self,
        task: Task,
        id: MessageId,
    ) -> Result<Option<ProcessRecord>, StoreError> {
        let now = self.clock.now();
        let Some(stored) = self.store.message(&id).await? else {
            tracing::debug!(message = %id, "process task for a message that is gone (erased); dropping it");
            self.drop_task(&task).await?;
            return Ok(None);
        };
        let record = |status, deliveries, into_inbox, events| ProcessRecord {
            task: task.clone(),
            message: stored.message.clone(),
            status,
            deliveries,
            into_inbox,
            events,
            at: now,
        };
        if stored.status.is_final() {
            // Already decided (a replayed task): release it without a second decision.
            return Ok(Some(record(stored.status, vec![], false, vec![])));
        }
        let message = &stored.message;
        let Some(service) = self.store.service(&message.sender_service_id).await? else {
            let detail = format!(
                "sending service {} no longer exists",
                message.sender_service_id
            );
            return Ok(Some(record(
                MessageStatus::Failed,
                vec![],
                false,
                vec![JournalEvent::Failed { detail }],
            )));
        };
        let decision = self.decision(message, &service, now).await?;
        Ok(Some(record(
            decision.status,
            decision.deliveries,
            decision.into_inbox,
            decision.events,
        )))
    }
}
