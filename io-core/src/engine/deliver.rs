//! One delivery attempt: expire what outlived its time-to-live, pass the rate limiters, call the
//! channel with a timeout, and record the outcome with the next attempt's time.

use crate::{
    DeliveryId, DeliveryJob, DeliveryRecord, DeliveryState, Engine, FailureReason, JournalEvent,
    Outcome, OutcomeRecord, PermanentReason, Store, StoreError, Task, TransientCause,
};

impl<S: Store> Engine<S> {
    pub(super) async fn deliver(&self, task: Task, id: DeliveryId) -> Result<(), StoreError> {
        let Some(mut delivery) = self.store.delivery(&id).await? else {
            tracing::debug!(delivery = %id, "deliver task for a delivery that is gone (erased); dropping it");
            return self.drop_task(&task).await;
        };
        if delivery.state.is_final() {
            return self.store.discard_task(&task).await;
        }
        let now = self.clock.now();
        let record = |delivery, event| DeliveryRecord {
            task: task.clone(),
            delivery,
            event,
            at: now,
        };
        if now >= delivery.expires_at {
            delivery.state = DeliveryState::Expired;
            delivery.updated_at = now;
            let event = JournalEvent::Expired {
                channel: id.channel,
            };
            return self.commit_observed(record(delivery, Some(event))).await;
        }
        if let Err(wait) =
            self.limiters
                .check(&delivery.service_id, id.channel, &delivery.fiscal_code)
        {
            // Not an attempt: the delivery waits for its turn without losing one.
            delivery.next_attempt_at = now.plus(wait);
            return self.store.commit_delivery(record(delivery, None)).await;
        }
        let Some(stored) = self.store.message(&id.message).await? else {
            tracing::debug!(delivery = %id, "delivery of a message that is gone (erased); dropping it");
            return self.drop_task(&task).await;
        };
        let service = self.store.service(&delivery.service_id).await?;
        let profile = self.store.profile(&delivery.fiscal_code).await?;
        let outcome = match (self.channels.get(&id.channel), &service) {
            (Some(channel), Some(service)) => {
                let job = DeliveryJob {
                    delivery: &delivery,
                    message: &stored.message,
                    service,
                    profile: profile.as_ref(),
                };
                tokio::time::timeout(self.config.send_timeout, channel.send(job))
                    .await
                    .unwrap_or(Outcome::Transient {
                        retry_after: None,
                        cause: TransientCause::Timeout,
                    })
            }
            (None, _) => Outcome::Permanent(PermanentReason::new(
                "channel_not_configured",
                format!("no {} channel is configured", id.channel),
            )),
            (_, None) => Outcome::Permanent(PermanentReason::new(
                "service_deleted",
                format!("service {} no longer exists", delivery.service_id),
            )),
        };
        let after = self.clock.now();
        delivery.attempts += 1;
        delivery.last_outcome = Some(OutcomeRecord::from(&outcome));
        delivery.updated_at = after;
        let mut next_attempt_at = None;
        delivery.state = match &outcome {
            Outcome::Delivered { .. } => DeliveryState::Sent,
            Outcome::Transient { retry_after, .. } | Outcome::RateLimited { retry_after } => {
                let next = after.plus(self.jitter(delivery.attempts, *retry_after));
                if next >= delivery.expires_at {
                    DeliveryState::Expired
                } else {
                    delivery.next_attempt_at = next;
                    next_attempt_at = Some(next);
                    DeliveryState::Retrying
                }
            }
            Outcome::Permanent(reason) => DeliveryState::Failed {
                reason: FailureReason::Permanent {
                    reason: reason.clone(),
                },
            },
            Outcome::InvalidRecipient => DeliveryState::Failed {
                reason: FailureReason::InvalidRecipient,
            },
        };
        tracing::debug!(delivery = %id, attempt = delivery.attempts, state = delivery.state.as_str(), "attempt recorded");
        let event = JournalEvent::Attempted {
            channel: id.channel,
            attempt: delivery.attempts,
            outcome: OutcomeRecord::from(&outcome),
            state: delivery.state.clone(),
            next_attempt_at,
        };
        self.commit_observed(record(delivery, Some(event))).await
    }

    /// Commits an attempt or expiry and then tells the observer.
    async fn commit_observed(&self, record: DeliveryRecord) -> Result<(), StoreError> {
        let observed = self
            .observers
            .first()
            .and(record.event.clone())
            .map(|event| (record.delivery.service_id.clone(), record.at, event));
        let message = record.delivery.id.message;
        self.store.commit_delivery(record).await?;
        if let Some((service, at, event)) = observed {
            self.observe(message, &service, at, &[event]);
        }
        Ok(())
    }
}
