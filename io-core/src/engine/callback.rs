//! Callback tasks: post a message's unacknowledged journal entries to its sender, in order,
//! through the engine's [`CallbackSender`](crate::CallbackSender), and commit the outbox's
//! cursor. A failure waits the policy's backoff (on the engine's clock, honouring
//! `Retry-After`, at most [`MAX_CALLBACK_WAIT`]); after `max_attempts` the event is abandoned
//! (logged) and the next one follows. The outbox closes once the message is final and every
//! entry is acknowledged; a service that removed its registration has its pending events
//! dropped.

use std::time::Duration;

use futures::StreamExt;

use crate::{
    CallbackEvent, CallbackRecord, Engine, JournalEntry, MessageId, MessageStatus, Outcome, Store,
    StoreError, Task, TaskKind, TransientCause,
};

/// The longest a callback waits before its next attempt: a guard against a hostile
/// `Retry-After`.
const MAX_CALLBACK_WAIT: Duration = Duration::from_secs(3600);

impl<S: Store> Engine<S> {
    /// Runs a round's callback tasks concurrently; returns how many could not be recorded.
    pub(super) async fn run_callback_tasks(&self, tasks: Vec<Task>) -> usize {
        futures::stream::iter(tasks)
            .map(|task| async move {
                let TaskKind::Callback(message) = task.kind else {
                    return Ok(());
                };
                let result = self.call_back(task, message).await;
                if let Err(error) = &result {
                    tracing::warn!(%message, %error, "callback progress not recorded; it returns when its lease ends");
                }
                result
            })
            .buffer_unordered(self.config.max_in_flight)
            .filter(|result| std::future::ready(result.is_err()))
            .count()
            .await
    }

    /// Posts what `message`'s receiver has not acknowledged yet, then records how far it got.
    async fn call_back(&self, task: Task, message: MessageId) -> Result<(), StoreError> {
        let (Some(sender), Some(mut cursor), Some(stored)) = (
            self.callbacks.as_ref(),
            self.store.callback_cursor(&message).await?,
            self.store.message(&message).await?,
        ) else {
            // No sender in this engine, or the outbox or the message is gone (erased).
            return self.drop_task(&task).await;
        };
        let service = stored.message.sender_service_id.clone();
        let journal = self.store.journal(&message).await?;
        let entries = journal.entries.len() as u64;
        let Some(target) = self.store.callback(&service).await? else {
            tracing::debug!(%message, "the service removed its callback; pending events dropped");
            cursor.acknowledged = entries;
            return self.commit_callback(task, cursor, None, true).await;
        };
        // Stop posting early enough to commit before the lease runs out.
        let deadline = task.lease.until.minus(self.config.send_timeout);
        let mut retry_at = None;
        while cursor.acknowledged < entries {
            let now = self.clock.now();
            if now >= deadline {
                retry_at = Some(now);
                break;
            }
            let index = cursor.acknowledged as usize;
            let entry =
                JournalEntry::from_bytes(index, &journal.entries[index]).map_err(|error| {
                    StoreError::Corrupt {
                        what: "journal entry",
                        detail: error.to_string(),
                    }
                })?;
            let event = CallbackEvent::of(message, &service, &entry);
            let outcome =
                tokio::time::timeout(self.config.send_timeout, sender.post(&target, &event, now))
                    .await
                    .unwrap_or(Outcome::Transient {
                        retry_after: None,
                        cause: TransientCause::Timeout,
                    });
            match outcome {
                // A receiver answer is never "submitted": only PEC reports that.
                Outcome::Delivered { .. } | Outcome::Submitted { .. } => {
                    cursor.acknowledged += 1;
                    cursor.attempts = 0;
                }
                Outcome::Transient { retry_after, .. } | Outcome::RateLimited { retry_after } => {
                    cursor.attempts += 1;
                    if cursor.attempts >= self.config.callbacks.max_attempts {
                        tracing::warn!(event = %event.id, attempts = cursor.attempts, ?outcome, "callback abandoned after its last attempt");
                        cursor.acknowledged += 1;
                        cursor.attempts = 0;
                    } else {
                        let wait = {
                            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                            self.config.callbacks.retry.delay(
                                cursor.attempts,
                                retry_after,
                                &mut *rng,
                            )
                        };
                        retry_at = Some(self.clock.now().plus(wait.min(MAX_CALLBACK_WAIT)));
                        break;
                    }
                }
                Outcome::Permanent(_) | Outcome::InvalidRecipient => {
                    tracing::warn!(event = %event.id, ?outcome, "callback refused by the receiver; abandoned");
                    cursor.acknowledged += 1;
                    cursor.attempts = 0;
                }
            }
        }
        let close = retry_at.is_none() && self.is_final(&message, stored.status).await?;
        self.commit_callback(task, cursor, retry_at, close).await
    }

    /// Whether nothing more will be journaled for the message.
    async fn is_final(
        &self,
        message: &MessageId,
        status: MessageStatus,
    ) -> Result<bool, StoreError> {
        Ok(match status {
            MessageStatus::Accepted => false,
            MessageStatus::Rejected(_) | MessageStatus::Failed => true,
            MessageStatus::Processed => self
                .store
                .deliveries(message)
                .await?
                .iter()
                .all(|d| d.state.is_final()),
        })
    }

    async fn commit_callback(
        &self,
        task: Task,
        cursor: crate::CallbackCursor,
        retry_at: Option<crate::Timestamp>,
        close: bool,
    ) -> Result<(), StoreError> {
        let at = self.clock.now();
        self.store
            .commit_callback(CallbackRecord {
                task,
                cursor,
                retry_at,
                close,
                at,
            })
            .await
    }
}
