//! Processing an accepted message: read what the decision needs and decide, producing the
//! record of PROCESSED with one delivery per channel, or REJECTED with its reason. The round
//! commits the records of its process tasks together (`Store::commit_processes`): each is
//! atomic on its own, and they share the store's transaction and flush.

use crate::{
    DecisionInput, Delivery, DeliveryId, DeliveryState, DeliveryTarget, Engine, JournalEvent,
    MessageId, MessageStatus, ProcessRecord, Route, ServiceCategory, Store, StoreError, Task,
    decide,
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
        let fiscal_code = &message.body.fiscal_code;
        let profile = self.store.profile(fiscal_code).await?;
        let preference = match &profile {
            Some(p) => {
                let version = p.service_preferences_settings.version;
                self.store
                    .preference(fiscal_code, &service.service_id, version)
                    .await?
            }
            None => None,
        };
        let activation = match service.service_metadata.category {
            ServiceCategory::Special => {
                self.store
                    .activation(&service.service_id, fiscal_code)
                    .await?
            }
            ServiceCategory::Standard => None,
        };
        let has_devices = match &profile {
            Some(p)
                if p.is_webhook_enabled
                    && self.channels.contains_key(&crate::ChannelKind::Push) =>
            {
                !self.store.installations(fiscal_code).await?.is_empty()
            }
            _ => false,
        };
        let decision = decide(DecisionInput {
            profile: profile.as_ref(),
            preference: preference.as_ref(),
            activation: activation.as_ref(),
            service: &service,
            message: &message.body,
            has_devices,
            now,
            activation_grace: self.config.activation_grace,
        });
        let route = match decision {
            Ok(route) => route,
            Err(reason) => {
                tracing::debug!(message = %id, reason = reason.as_str(), "message rejected");
                return Ok(Some(record(
                    MessageStatus::Rejected(reason),
                    vec![],
                    false,
                    vec![JournalEvent::Rejected { reason }],
                )));
            }
        };
        let deliveries = self.deliveries_for(&route, message, now);
        let channels = deliveries.iter().map(Delivery::channel).collect();
        Ok(Some(record(
            MessageStatus::Processed,
            deliveries,
            route.inbox,
            vec![JournalEvent::Processed { channels }],
        )))
    }

    /// One pending delivery per routed channel that this engine has.
    fn deliveries_for(
        &self,
        route: &Route,
        message: &crate::Message,
        now: crate::Timestamp,
    ) -> Vec<Delivery> {
        route
            .channels()
            .into_iter()
            .filter(|kind| self.channels.contains_key(kind))
            .map(|kind| {
                let target = match (kind, &route.email) {
                    (crate::ChannelKind::Email, Some(address)) => DeliveryTarget::Email {
                        address: address.clone(),
                    },
                    (crate::ChannelKind::Push, _) => DeliveryTarget::Push,
                    _ => DeliveryTarget::Inbox,
                };
                Delivery {
                    id: DeliveryId::new(message.id, kind),
                    service_id: message.sender_service_id.clone(),
                    fiscal_code: message.body.fiscal_code.clone(),
                    target,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_attempt_at: now,
                    expires_at: message.expires_at(),
                    last_outcome: None,
                    updated_at: now,
                }
            })
            .collect()
    }
}
