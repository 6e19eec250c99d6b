//! Accepting a message: validate, honour the idempotency key, decide its channels when
//! `decide_at_accept` (the recipient's data is in the store), write everything in one atomic,
//! durable store write, and only then return.

use std::sync::PoisonError;

use crate::{
    AcceptOutcome, AcceptRecord, Engine, FiscalCode, IdempotencyKey, JournalEvent, Message,
    MessageId, MessageStatus, NewMessage, SenderCapabilities, SenderLimits, ServiceId, Store,
    StoreError, ValidationError,
};

/// A message submitted by a service.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The sender (authenticated by the caller).
    pub service_id: ServiceId,
    /// The message as received.
    pub message: NewMessage,
    /// What the sender's key may do.
    pub capabilities: SenderCapabilities,
    /// Makes the submit safe to retry.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// A durably accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its id.
    pub id: MessageId,
    /// Its recipient (for the `Location` header).
    pub fiscal_code: FiscalCode,
    /// True when the idempotency key had already been used with the same message: nothing new
    /// was stored and `id` is the first message's.
    pub duplicate: bool,
}

/// Why a submit was refused. Nothing was stored in any case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The sender does not exist.
    #[error("service {0} does not exist")]
    UnknownService(ServiceId),
    /// The message breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The idempotency key was used before with a different message.
    #[error("idempotency key was already used for message {message_id} with a different body")]
    IdempotencyConflict {
        /// The message the key was first used for.
        message_id: MessageId,
    },
    /// The store failed; the message may be resubmitted (with the same idempotency key).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<S: Store> Engine<S> {
    /// Accepts a message. Returns only once the message, its status, the idempotency record,
    /// its first journal entries, and either its process task or its decision (inbox entry and
    /// deliveries) are one durable write; with them, the sender-callback outbox when the
    /// service has a callback and the engine a callback sender.
    pub async fn submit(&self, submission: Submission) -> Result<Accepted, SubmitError> {
        let service = self
            .store
            .service(&submission.service_id)
            .await?
            .ok_or_else(|| SubmitError::UnknownService(submission.service_id.clone()))?;
        let body = submission.message.validate(SenderLimits {
            max_allowed_payment_amount: service.max_allowed_payment_amount,
            organization_fiscal_code: &service.organization_fiscal_code,
            capabilities: submission.capabilities,
        })?;
        let now = self.clock.now();
        let id = self
            .ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next(now);
        let content_hash = body.content_hash();
        let fiscal_code = body.fiscal_code.clone();
        let accepted = JournalEvent::Accepted {
            service_id: service.service_id.clone(),
            recipient: fiscal_code.hash(),
            content_sha256: content_hash.clone(),
            time_to_live_secs: body.time_to_live_secs,
        };
        let idempotency = submission
            .idempotency_key
            .map(|key| (key, now.plus(self.config.idempotency_ttl)));
        let message = Message {
            id,
            sender_service_id: service.service_id.clone(),
            body,
            created_at: now,
        };
        let open_callbacks = match &self.callbacks {
            Some(_) => self.store.callback(&service.service_id).await?.is_some(),
            None => false,
        };
        let mut events = vec![accepted];
        let (status, deliveries, into_inbox) = if self.config.decide_at_accept {
            let decision = self.decision(&message, &service, now).await?;
            events.extend(decision.events);
            (decision.status, decision.deliveries, decision.into_inbox)
        } else {
            (MessageStatus::Accepted, Vec::new(), false)
        };
        let observed = self
            .observers
            .first()
            .map(|_| (message.sender_service_id.clone(), events.clone()));
        let has_work = status == MessageStatus::Accepted
            || open_callbacks
            || deliveries.iter().any(|d| !d.state.is_final());
        let record = AcceptRecord {
            message,
            content_hash: content_hash.clone(),
            idempotency,
            status,
            deliveries,
            into_inbox,
            events,
            open_callbacks,
        };
        // The commit and the observers' notice run as a task of their own: a caller that stops
        // waiting (an HTTP client hanging up) cancels neither, so an observer counts every
        // accept that was committed, acknowledged or not.
        let store = self.store.clone();
        let observers = observed.as_ref().map(|_| self.observers.clone());
        let committed = tokio::spawn(async move {
            let outcome = store.commit_accept(record).await;
            if let (Ok(AcceptOutcome::Created), Some((service, events)), Some(observers)) =
                (&outcome, &observed, &observers)
            {
                super::notify_observers(observers, id, service, now, events);
            }
            outcome
        })
        .await
        .map_err(|error| {
            StoreError::Backend(format!("the accept's commit task failed: {error}"))
        })?;
        match committed? {
            AcceptOutcome::Created => {
                if has_work {
                    self.new_work.notify_one();
                }
                Ok(Accepted {
                    id,
                    fiscal_code,
                    duplicate: false,
                })
            }
            AcceptOutcome::Existing {
                message_id,
                content_hash: first_hash,
            } if first_hash == content_hash => Ok(Accepted {
                id: message_id,
                fiscal_code,
                duplicate: true,
            }),
            AcceptOutcome::Existing { message_id, .. } => {
                Err(SubmitError::IdempotencyConflict { message_id })
            }
        }
    }
}
