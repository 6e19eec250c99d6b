//! A round's delivery attempts, in four steps so that the store sees few, large writes:
//!
//! 1. **Prepare** each claimed delivery: expire what outlived its time-to-live (never sent),
//!    defer what a rate limiter holds back (not an attempt), or count the attempt.
//! 2. **Start**: one `Store::start_attempts` for the whole round, durable before any provider
//!    is called, so `attempts` counts provider contacts even across a crash; a delivery found
//!    with an attempt still pending had its previous outcome lost, and the start records it
//!    (`OutcomeUnknown`) in the journal.
//! 3. **Send** concurrently (up to `max_in_flight`), each under `send_timeout`, with what the
//!    channel needs read once per round (message, sender, profile, devices).
//! 4. **Commit** outcomes with their journal entries and the channels' effects through
//!    `Store::commit_deliveries`, in batches of whatever has finished, while the other sends
//!    go on.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;

use crate::pec::{self, ReceiptKind};
use crate::{
    ChannelKind, Delivery, DeliveryId, DeliveryJob, DeliveryRecord, DeliveryState, Effect, Engine,
    FailureReason, FiscalCode, Installation, JournalEvent, MessageId, Outcome, OutcomeRecord,
    PermanentReason, Profile, Report, Service, ServiceId, Store, StoreError, StoredMessage, Task,
    TaskKind, Timestamp, TransientCause,
};

/// The most outcomes committed in one `commit_deliveries` call.
const COMMIT_BATCH: usize = 512;

/// What preparing a claimed delivery came to.
enum Prepared {
    /// Nothing to do: the delivery is gone (erased) or already final; the task was dropped.
    Nothing,
    /// A state change to commit without calling a channel: expired, or deferred by a limiter.
    Record(DeliveryRecord),
    /// An attempt to start, then send.
    Attempt(Task, Delivery, Option<JournalEvent>),
}

/// What the channels of a round need, read once.
#[derive(Default)]
struct Context {
    messages: HashMap<MessageId, Arc<StoredMessage>>,
    services: HashMap<ServiceId, Option<Arc<Service>>>,
    profiles: HashMap<FiscalCode, Option<Arc<Profile>>>,
    installations: HashMap<FiscalCode, Arc<[Installation]>>,
}

impl<S: Store> Engine<S> {
    /// Runs a round's deliver tasks; returns how many could not be recorded (they return when
    /// their lease ends).
    pub(super) async fn run_deliver_tasks(&self, tasks: Vec<Task>) -> usize {
        if tasks.is_empty() {
            return 0;
        }
        let mut failed = 0;
        let mut records = Vec::new();
        let mut starts = Vec::new();
        // The round's deliveries, read with one call.
        let mut messages: Vec<MessageId> = tasks
            .iter()
            .filter_map(|task| match task.kind {
                TaskKind::Deliver(id) => Some(id.message),
                _ => None,
            })
            .collect();
        messages.sort_unstable();
        messages.dedup();
        let (deliveries, unread) = self.read_deliveries(&messages).await;
        for task in tasks {
            let TaskKind::Deliver(id) = task.kind else {
                continue;
            };
            if unread.contains(&id.message) {
                failed += 1;
                continue;
            }
            let delivery = deliveries.get(&id).cloned();
            match self.prepare(task, id, delivery).await {
                Ok(Prepared::Nothing) => {}
                Ok(Prepared::Record(record)) => records.push(record),
                Ok(Prepared::Attempt(task, delivery, event)) => {
                    starts.push((task, delivery, event));
                }
                Err(error) => {
                    failed += 1;
                    tracing::warn!(%error, "delivery not prepared; it returns when its lease ends");
                }
            }
        }
        if !records.is_empty() {
            failed += self.commit_outcomes(records).await;
        }
        let (started, start_failed) = self.start(starts).await;
        failed += start_failed;
        if started.is_empty() {
            return failed;
        }
        let context = match self.context(&started).await {
            Ok(context) => context,
            Err(error) => {
                tracing::warn!(%error, "delivery context not read; the attempts return when their lease ends");
                return failed + started.len();
            }
        };
        failed + self.send_and_commit(started, &context).await
    }

    /// The deliveries of `messages`, with one call; when that fails (a damaged record, say),
    /// message by message, so that only the messages that cannot be read wait for their
    /// leases to end. Returns those read and the messages not read.
    async fn read_deliveries(
        &self,
        messages: &[MessageId],
    ) -> (HashMap<DeliveryId, Delivery>, Vec<MessageId>) {
        let mut unread = Vec::new();
        let deliveries = match self.store.deliveries_of_messages(messages).await {
            Ok(deliveries) => deliveries,
            Err(_) => {
                let mut read = Vec::new();
                for message in messages {
                    match self.store.deliveries(message).await {
                        Ok(deliveries) => read.extend(deliveries),
                        Err(error) => {
                            tracing::warn!(%error, %message, "deliveries not read; they return when their leases end");
                            unread.push(*message);
                        }
                    }
                }
                read
            }
        };
        (deliveries.into_iter().map(|d| (d.id, d)).collect(), unread)
    }

    /// Step 1 for one task, whose delivery was read as `delivery`.
    async fn prepare(
        &self,
        task: Task,
        id: DeliveryId,
        delivery: Option<Delivery>,
    ) -> Result<Prepared, StoreError> {
        let Some(mut delivery) = delivery else {
            tracing::debug!(delivery = %id, "deliver task for a delivery that is gone (erased); dropping it");
            self.drop_task(&task).await?;
            return Ok(Prepared::Nothing);
        };
        if delivery.state.is_final() {
            self.store.discard_task(&task).await?;
            return Ok(Prepared::Nothing);
        }
        let now = self.clock.now();
        let unknown = delivery
            .outcome_pending
            .then_some(JournalEvent::OutcomeUnknown {
                channel: id.channel,
                attempt: delivery.attempts,
            });
        let mut overdue = None;
        if let DeliveryState::Submitted { accepted_at, .. } = delivery.state {
            if accepted_at.is_some() {
                // Accepted, and no delivery receipt within the window: failed, whatever the
                // time-to-live (the message left io long ago).
                return Ok(Prepared::Record(
                    self.delivery_receipt_overdue(task, delivery, now),
                ));
            }
            // Not accepted in time: submitted again (the same Message-ID), unless it expired.
            overdue = Some(JournalEvent::ReceiptOverdue {
                channel: id.channel,
                awaited: ReceiptKind::Accettazione,
                state: DeliveryState::Retrying,
            });
        }
        if now >= delivery.expires_at {
            delivery.state = DeliveryState::Expired;
            delivery.outcome_pending = false;
            delivery.updated_at = now;
            let mut events: Vec<JournalEvent> = unknown.into_iter().collect();
            events.extend(overdue);
            events.push(JournalEvent::Expired {
                channel: id.channel,
            });
            return Ok(Prepared::Record(DeliveryRecord {
                task,
                delivery,
                events,
                effects: Vec::new(),
                at: now,
            }));
        }
        if let Err(wait) =
            self.limiters
                .check(&delivery.service_id, id.channel, &delivery.fiscal_code)
        {
            // Not an attempt: the delivery waits for its turn without losing one.
            delivery.next_attempt_at = now.plus(wait);
            return Ok(Prepared::Record(DeliveryRecord {
                task,
                delivery,
                events: Vec::new(),
                effects: Vec::new(),
                at: now,
            }));
        }
        if unknown.is_some() {
            tracing::warn!(delivery = %id, attempt = delivery.attempts, "the outcome of an interrupted attempt is unknown; attempting again");
        }
        delivery.attempts += 1;
        delivery.outcome_pending = true;
        // One entry at most goes with a start: an interrupted attempt says more than an
        // overdue acceptance (the next attempt's outcome follows either way).
        Ok(Prepared::Attempt(task, delivery, unknown.or(overdue)))
    }

    /// A PEC delivery accepted by the sender's provider whose delivery receipt did not come
    /// within the window: FAILED, recorded as such.
    fn delivery_receipt_overdue(
        &self,
        task: Task,
        mut delivery: Delivery,
        now: Timestamp,
    ) -> DeliveryRecord {
        let window = self.config.pec_receipts.delivery;
        tracing::warn!(delivery = %delivery.id, hours = window.as_secs() / 3600, "no PEC delivery receipt within its window: failed");
        delivery.state = DeliveryState::Failed {
            reason: FailureReason::Permanent {
                reason: PermanentReason::new(
                    pec::failure::NO_DELIVERY_RECEIPT,
                    format!(
                        "no delivery receipt within {} hours of submission",
                        window.as_secs() / 3600
                    ),
                ),
            },
        };
        delivery.outcome_pending = false;
        delivery.updated_at = now;
        let event = JournalEvent::ReceiptOverdue {
            channel: delivery.id.channel,
            awaited: ReceiptKind::AvvenutaConsegna,
            state: delivery.state.clone(),
        };
        DeliveryRecord {
            task,
            delivery,
            events: vec![event],
            effects: Vec::new(),
            at: now,
        }
    }

    /// Step 2: records the round's attempts as started; returns those that may now call their
    /// channel, and how many could not be started.
    async fn start(
        &self,
        starts: Vec<(Task, Delivery, Option<JournalEvent>)>,
    ) -> (Vec<(Task, Delivery)>, usize) {
        if starts.is_empty() {
            return (Vec::new(), 0);
        }
        let now = self.clock.now();
        let observed: Vec<_> = starts
            .iter()
            .map(|(_, delivery, event)| {
                event
                    .clone()
                    .map(|event| (delivery.id.message, delivery.service_id.clone(), event))
            })
            .collect();
        let (records, kept): (Vec<_>, Vec<_>) = starts
            .into_iter()
            .map(|(task, delivery, event)| {
                let start = crate::AttemptStart {
                    task: task.clone(),
                    delivery: delivery.clone(),
                    event,
                    at: now,
                };
                (start, (task, delivery))
            })
            .unzip();
        let results = self.store.start_attempts(records).await;
        let mut started = Vec::with_capacity(kept.len());
        let mut failed = 0;
        for ((attempt, result), observed) in kept.into_iter().zip(results).zip(observed) {
            match result {
                Ok(()) => {
                    if let Some((message, service, event)) = observed {
                        self.observe(message, &service, now, &[event]);
                    }
                    started.push(attempt);
                }
                Err(error) => {
                    failed += 1;
                    tracing::warn!(%error, delivery = %attempt.1.id, "attempt not started; it returns when its lease ends");
                }
            }
        }
        (started, failed)
    }

    /// Reads what the round's channels need: the messages, profiles and devices with one call
    /// each, the senders once each.
    async fn context(&self, started: &[(Task, Delivery)]) -> Result<Context, StoreError> {
        let mut context = Context::default();
        let mut messages = Vec::new();
        let mut citizens = Vec::new();
        let mut with_devices = Vec::new();
        for (_, delivery) in started {
            messages.push(delivery.id.message);
            citizens.push(delivery.fiscal_code.clone());
            if delivery.channel() == ChannelKind::Push {
                with_devices.push(delivery.fiscal_code.clone());
            }
            if !context.services.contains_key(&delivery.service_id) {
                let service = self.store.service(&delivery.service_id).await?;
                context
                    .services
                    .insert(delivery.service_id.clone(), service.map(Arc::new));
            }
        }
        for list in [&mut citizens, &mut with_devices] {
            list.sort_unstable();
            list.dedup();
        }
        messages.sort_unstable();
        messages.dedup();
        for stored in self.store.messages_by_id(&messages).await? {
            context.messages.insert(stored.message.id, Arc::new(stored));
        }
        for citizen in &citizens {
            context.profiles.insert(citizen.clone(), None);
        }
        for profile in self.store.profiles_of(&citizens).await? {
            context
                .profiles
                .insert(profile.fiscal_code.clone(), Some(Arc::new(profile)));
        }
        for (citizen, devices) in self.store.installations_of(&with_devices).await? {
            context.installations.insert(citizen, devices.into());
        }
        Ok(context)
    }

    /// Steps 3 and 4: sends concurrently and commits outcomes in batches as they finish.
    async fn send_and_commit(&self, started: Vec<(Task, Delivery)>, context: &Context) -> usize {
        let (finished, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
        let sends = futures::stream::iter(started)
            .map(|(task, delivery)| self.attempt(task, delivery, context))
            .buffer_unordered(self.config.max_in_flight)
            .for_each(move |record| {
                let _ = finished.send(record);
                std::future::ready(())
            });
        let commits = async {
            let mut failed = 0;
            let mut batch = Vec::new();
            while let Some(first) = outcomes.recv().await {
                batch.push(first);
                while batch.len() < COMMIT_BATCH {
                    match outcomes.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let records: Vec<DeliveryRecord> =
                    std::mem::take(&mut batch).into_iter().flatten().collect();
                if !records.is_empty() {
                    failed += self.commit_outcomes(records).await;
                }
            }
            failed
        };
        let ((), failed) = futures::join!(sends, commits);
        failed
    }

    /// Step 3 for one delivery: the channel's report turned into the delivery's next state.
    /// `None` when the message is gone (erased since the claim) and the task was dropped.
    async fn attempt(
        &self,
        task: Task,
        mut delivery: Delivery,
        context: &Context,
    ) -> Option<DeliveryRecord> {
        let id = delivery.id;
        let Some(stored) = context.messages.get(&id.message) else {
            tracing::debug!(delivery = %id, "delivery of a message that is gone (erased); dropping it");
            if let Err(error) = self.drop_task(&task).await {
                tracing::warn!(%error, delivery = %id, "could not drop the task of an erased message");
            }
            return None;
        };
        let service = context
            .services
            .get(&delivery.service_id)
            .and_then(Option::as_ref);
        let profile = context
            .profiles
            .get(&delivery.fiscal_code)
            .and_then(Option::as_deref);
        let installations: &[Installation] = context
            .installations
            .get(&delivery.fiscal_code)
            .map_or(&[], |devices| devices);
        let now = self.clock.now();
        let report = match (self.channels.get(&id.channel), service) {
            (Some(channel), Some(service)) => {
                let job = DeliveryJob {
                    delivery: &delivery,
                    message: &stored.message,
                    service,
                    profile,
                    installations,
                    now,
                };
                tokio::time::timeout(self.config.send_timeout, channel.send(job))
                    .await
                    .unwrap_or_else(|_| {
                        Report::from(Outcome::Transient {
                            retry_after: None,
                            cause: TransientCause::Timeout,
                        })
                    })
            }
            (None, _) => Report::from(Outcome::Permanent(PermanentReason::new(
                "channel_not_configured",
                format!("no {} channel is configured", id.channel),
            ))),
            (_, None) => Report::from(Outcome::Permanent(PermanentReason::new(
                "service_deleted",
                format!("service {} no longer exists", delivery.service_id),
            ))),
        };
        let after = self.clock.now();
        Some(self.outcome_record(task, &mut delivery, report, after))
    }

    /// The delivery's next state after `report`, as the record to commit.
    fn outcome_record(
        &self,
        task: Task,
        delivery: &mut Delivery,
        report: Report,
        after: Timestamp,
    ) -> DeliveryRecord {
        let Report { outcome, effects } = report;
        let mut stored_effects = Vec::with_capacity(effects.len());
        for effect in effects {
            match effect {
                Effect::DevicesNotified(devices) => {
                    for device in devices {
                        if !delivery.devices_notified.contains(&device) {
                            delivery.devices_notified.push(device);
                        }
                    }
                }
                other => stored_effects.push(other),
            }
        }
        let record = OutcomeRecord::from(&outcome);
        delivery.outcome_pending = false;
        delivery.last_outcome = Some(record.clone());
        delivery.updated_at = after;
        let mut next_attempt_at = None;
        delivery.state = match &outcome {
            Outcome::Delivered { .. } => DeliveryState::Sent,
            Outcome::Submitted { .. } => {
                // Due again if the acceptance receipt does not come in time.
                let next = after.plus(self.config.pec_receipts.acceptance);
                delivery.next_attempt_at = next;
                next_attempt_at = Some(next);
                DeliveryState::Submitted {
                    submitted_at: after,
                    accepted_at: None,
                }
            }
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
        tracing::debug!(delivery = %delivery.id, attempt = delivery.attempts, state = delivery.state.as_str(), "attempt recorded");
        let event = JournalEvent::Attempted {
            channel: delivery.id.channel,
            attempt: delivery.attempts,
            outcome: record,
            state: delivery.state.clone(),
            next_attempt_at,
        };
        DeliveryRecord {
            task,
            delivery: delivery.clone(),
            events: vec![event],
            effects: stored_effects,
            at: after,
        }
    }

    /// Step 4: commits outcomes (or deferrals) together, then tells the observers; returns how
    /// many were not recorded.
    async fn commit_outcomes(&self, records: Vec<DeliveryRecord>) -> usize {
        let observed: Vec<_> = if self.observers.is_empty() {
            Vec::new()
        } else {
            records
                .iter()
                .map(|r| {
                    (
                        r.delivery.id.message,
                        r.delivery.service_id.clone(),
                        r.at,
                        r.events.clone(),
                    )
                })
                .collect()
        };
        let kinds: Vec<_> = records.iter().map(|r| r.task.kind).collect();
        let results = self.store.commit_deliveries(records).await;
        let mut failed = 0;
        for (index, result) in results.into_iter().enumerate() {
            match result {
                Ok(()) => {
                    if let Some((message, service, at, events)) = observed.get(index) {
                        self.observe(*message, service, *at, events);
                    }
                }
                Err(error) => {
                    failed += 1;
                    tracing::warn!(task = ?kinds.get(index), %error, "delivery result not recorded; it returns when its lease ends");
                }
            }
        }
        failed
    }
}
