//! The decision as the engine takes it: read what `decide` (io-reference §4) needs from the
//! store, decide, and turn the route into the message's new status, its deliveries and journal
//! events. Used at accept (`engine/submit.rs`, when `decide_at_accept`) and by process tasks
//! (`engine/process.rs`).
//!
//! The inbox is built in: a routed inbox delivery is SENT in the same write that lists the
//! message in the citizen's inbox, so the citizen's app can show the message the moment the
//! write is durable, and no worker has anything left to do for it.

use crate::{
    ChannelKind, DecisionInput, Delivery, DeliveryId, DeliveryState, DeliveryTarget, Engine,
    JournalEvent, Message, MessageStatus, OutcomeRecord, Route, Service, ServiceCategory, Store,
    StoreError, Timestamp, decide,
};

/// What deciding a message came to.
pub(super) struct Decision {
    /// PROCESSED or REJECTED.
    pub(super) status: MessageStatus,
    /// One delivery per routed channel the engine has; the inbox one already SENT.
    pub(super) deliveries: Vec<Delivery>,
    /// Whether the message goes into the citizen's inbox.
    pub(super) into_inbox: bool,
    /// The journal events of the decision, in order.
    pub(super) events: Vec<JournalEvent>,
}

impl<S: Store> Engine<S> {
    /// Decides `message`, sent by `service`, at `now`.
    pub(super) async fn decision(
        &self,
        message: &Message,
        service: &Service,
        now: Timestamp,
    ) -> Result<Decision, StoreError> {
        let fiscal_code = &message.body.fiscal_code;
        let push = self.channels.contains_key(&ChannelKind::Push);
        let special = service.service_metadata.category == ServiceCategory::Special;
        let records = self
            .store
            .recipient(fiscal_code, &service.service_id, special, push)
            .await?;
        let (profile, preference, activation) =
            (records.profile, records.preference, records.activation);
        let has_devices = match &profile {
            Some(p) if p.is_webhook_enabled && push => records.has_devices,
            _ => false,
        };
        let route = decide(DecisionInput {
            profile: profile.as_ref(),
            preference: preference.as_ref(),
            activation: activation.as_ref(),
            service,
            message: &message.body,
            has_devices,
            now,
            activation_grace: self.config.activation_grace,
        });
        // Without a PEC channel the domicile cannot be reached: a legal message whose inbox
        // is not allowed is then rejected as any other would be.
        let route = route.and_then(|mut route| {
            if route.pec.is_some() && !self.channels.contains_key(&ChannelKind::Pec) {
                route.pec = None;
                if !route.inbox {
                    return Err(crate::RejectionReason::ServiceNotAllowed);
                }
            }
            Ok(route)
        });
        Ok(match route {
            Ok(route) => self.processed(&route, message, now),
            Err(reason) => {
                tracing::debug!(message = %message.id, reason = reason.as_str(), "message rejected");
                Decision {
                    status: MessageStatus::Rejected(reason),
                    deliveries: Vec::new(),
                    into_inbox: false,
                    events: vec![JournalEvent::Rejected { reason }],
                }
            }
        })
    }

    /// PROCESSED with one delivery per routed channel that this engine has (the inbox always).
    fn processed(&self, route: &Route, message: &Message, now: Timestamp) -> Decision {
        let deliveries: Vec<Delivery> = route
            .channels()
            .into_iter()
            .filter(|kind| *kind == ChannelKind::Inbox || self.channels.contains_key(kind))
            .map(|kind| {
                let target = match (kind, &route.email, &route.pec) {
                    (ChannelKind::Email, Some(address), _) => DeliveryTarget::Email {
                        address: address.clone(),
                    },
                    (ChannelKind::Push, _, _) => DeliveryTarget::Push,
                    (ChannelKind::Pec, _, Some(address)) => DeliveryTarget::Pec {
                        address: address.clone(),
                    },
                    _ => DeliveryTarget::Inbox,
                };
                Delivery {
                    id: DeliveryId::new(message.id, kind),
                    service_id: message.sender_service_id.clone(),
                    fiscal_code: message.body.fiscal_code.clone(),
                    target,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    outcome_pending: false,
                    devices_notified: Vec::new(),
                    next_attempt_at: now,
                    expires_at: message.expires_at(),
                    last_outcome: None,
                    legal_delivery_at: None,
                    updated_at: now,
                }
            })
            .collect();
        let channels = deliveries.iter().map(Delivery::channel).collect();
        let mut events = vec![JournalEvent::Processed { channels }];
        let deliveries = deliveries
            .into_iter()
            .map(|mut delivery| {
                if delivery.channel() == ChannelKind::Inbox {
                    // Listed in the inbox by this very write: delivered.
                    let outcome = OutcomeRecord::Delivered {
                        provider_ref: Some(message.id.to_string()),
                    };
                    delivery.state = DeliveryState::Sent;
                    delivery.attempts = 1;
                    delivery.last_outcome = Some(outcome.clone());
                    events.push(JournalEvent::Attempted {
                        channel: ChannelKind::Inbox,
                        attempt: 1,
                        outcome,
                        state: DeliveryState::Sent,
                        next_attempt_at: None,
                    });
                }
                delivery
            })
            .collect();
        Decision {
            status: MessageStatus::Processed,
            deliveries,
            into_inbox: route.inbox,
            events,
        }
    }
}
