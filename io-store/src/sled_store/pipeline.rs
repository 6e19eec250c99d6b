//! The pipeline's writes as committer jobs: accept, decisions, attempt starts, outcomes (with
//! the channels' effects), callback progress and discards.
//!
//! Each job is built on the caller's thread, where everything that can be encoded ahead is
//! (the message body, the deliveries, the journal events' JSON), so the committer thread only
//! checks leases, splices bytes into the message's state, hashes the journal entries and
//! queues tasks. Every job that appends to a message's journal wakes its callback outbox if it
//! was waiting.
//!
//! Attempt starts are written compactly: one job and one `ATTEMPTS` record per
//! `start_attempts` call, the record listing its deliveries and attempt numbers, and the
//! attempts in flight are kept in memory, where reads of a delivery see them (counted, outcome
//! pending). An outcome ends its attempt; a round record is removed once none of its attempts
//! is in flight. If the process dies, the records that remain tell the next opening which
//! attempts were cut short (`recover_attempts` in `sled_store.rs`).

use io_core::{
    AcceptOutcome, AcceptRecord, AttemptStart, CallbackRecord, Delivery, DeliveryRecord, Effect,
    FiscalCode, Installation, JournalEvent, JournalHead, MessageId, MessageStatus, ProcessRecord,
    Profile, ReceiptOutcome, ReceiptRecord, StoreError, Task, TaskKind, Timestamp,
};
use serde::{Deserialize, Serialize};

use super::committer::{Job, Output, Tx};
use super::keys::{self, kind};
use super::message_state::{Header, MessageState, Outbox, encode_delivery};
use super::{decode, encode};

/// The stored form of an idempotency record.
#[derive(Serialize, Deserialize)]
pub(crate) struct IdempotencyEntry {
    pub(crate) message_id: MessageId,
    pub(crate) content_hash: String,
    pub(crate) expires_at: Timestamp,
}

/// Journal events with their JSON, encoded off the committer thread.
type EncodedEvents = Vec<Vec<u8>>;

fn encode_events(events: &[JournalEvent]) -> EncodedEvents {
    events.iter().map(encode).collect()
}

/// A delivery's channel and encoded form, with its place in the queue if not final.
struct EncodedDelivery {
    kind: TaskKind,
    bytes: Vec<u8>,
    due: Option<Timestamp>,
}

fn encode_deliveries(deliveries: &[Delivery]) -> Vec<EncodedDelivery> {
    deliveries
        .iter()
        .map(|d| EncodedDelivery {
            kind: TaskKind::Deliver(d.id),
            bytes: encode_delivery(d),
            due: (!d.state.is_final()).then_some(d.next_attempt_at),
        })
        .collect()
}

/// Appends events to the message's journal (its head in the state), and wakes its callback
/// outbox if it was waiting.
fn append(
    tx: &mut Tx<'_>,
    message: MessageId,
    state: &mut MessageState,
    at: Timestamp,
    events: &[Vec<u8>],
) {
    if events.is_empty() {
        return;
    }
    let first_seq = state.journal_len();
    let mut entries = Vec::with_capacity(events.len());
    for event in events {
        let head = JournalHead::after(state.header.head.as_ref(), at, event);
        entries.push(super::journal::compact_entry(head.seq, at, event));
        state.header.head = Some(head);
    }
    tx.append_journal(message, first_seq, entries);
    if let Some(outbox) = &mut state.header.outbox
        && outbox.due.is_none()
    {
        outbox.due = Some(at);
        let service = state.header.service_id.clone();
        tx.queue(TaskKind::Callback(message), &service, at);
    }
}

/// `LeaseLost` unless `task` holds its lease.
fn check_lease(tx: &Tx<'_>, task: &Task) -> Result<(), StoreError> {
    if tx.scheduler().holds(task) {
        Ok(())
    } else {
        Err(StoreError::LeaseLost {
            task: format!("{:?}", task.kind),
        })
    }
}

/// The state of a task's message; `LeaseLost` when it is gone (erased with its tasks).
fn task_state(tx: &Tx<'_>, task: &Task) -> Result<MessageState, StoreError> {
    tx.state(&task.kind.message())?
        .ok_or_else(|| StoreError::LeaseLost {
            task: format!("{:?}", task.kind),
        })
}

/// Queues each delivery not final; stores each.
fn put_deliveries(tx: &mut Tx<'_>, state: &mut MessageState, deliveries: Vec<EncodedDelivery>) {
    let service = state.header.service_id.clone();
    for delivery in deliveries {
        let TaskKind::Deliver(id) = delivery.kind else {
            continue;
        };
        match delivery.due {
            Some(due) => tx.queue(delivery.kind, &service, due),
            None => tx.unqueue(delivery.kind),
        }
        state.put_delivery(id.channel, delivery.bytes);
    }
}

/// The job of an accept.
pub(crate) fn accept(record: AcceptRecord) -> Job {
    let message = record.message;
    let id = message.id;
    let body = encode(&message);
    let fiscal_code = message.body.fiscal_code.clone();
    let service = message.sender_service_id.clone();
    let created_at = message.created_at;
    let expires_at = message.expires_at();
    let idempotency = record.idempotency.as_ref().map(|(key, expires_at)| {
        let entry = encode(&IdempotencyEntry {
            message_id: id,
            content_hash: record.content_hash.clone(),
            expires_at: *expires_at,
        });
        (
            keys::pair(kind::IDEMPOTENCY, service.as_str(), key.as_str()),
            entry,
        )
    });
    let events = encode_events(&record.events);
    let deliveries = encode_deliveries(&record.deliveries);
    let (status, into_inbox, open_callbacks) =
        (record.status, record.into_inbox, record.open_callbacks);
    Box::new(move |tx| {
        if let Some((key, entry)) = &idempotency {
            if let Some(bytes) = tx.get(key)? {
                let earlier: IdempotencyEntry = decode("idempotency", &bytes)?;
                if earlier.expires_at > created_at {
                    return Ok(Output::Accept(AcceptOutcome::Existing {
                        message_id: earlier.message_id,
                        content_hash: earlier.content_hash,
                    }));
                }
            }
            tx.insert(key.clone(), entry.as_slice());
        }
        let mut state = MessageState::new(Header {
            service_id: service.clone(),
            fiscal_code: fiscal_code.clone(),
            expires_at,
            status,
            updated_at: created_at,
            created_at,
            head: None,
            outbox: open_callbacks.then_some(Outbox {
                cursor: Default::default(),
                due: None,
            }),
        });
        if status == MessageStatus::Accepted {
            tx.queue(TaskKind::Process(id), &service, created_at);
        }
        put_deliveries(tx, &mut state, deliveries);
        append(tx, id, &mut state, created_at, &events);
        tx.insert(keys::message(kind::MESSAGE, &id), body);
        tx.insert(
            keys::citizen_message(kind::RECIPIENT, &fiscal_code, &id),
            &[][..],
        );
        if into_inbox {
            tx.insert(
                keys::citizen_message(kind::INBOX, &fiscal_code, &id),
                &[][..],
            );
        }
        tx.put_state(id, Some(state));
        tx.accepted(created_at);
        Ok(Output::Accept(AcceptOutcome::Created))
    })
}

/// The job of one processing decision.
pub(crate) fn process(record: ProcessRecord) -> Job {
    let id = record.message.id;
    let fiscal_code = record.message.body.fiscal_code.clone();
    let events = encode_events(&record.events);
    let deliveries = encode_deliveries(&record.deliveries);
    let ProcessRecord {
        task,
        status,
        into_inbox,
        at,
        ..
    } = record;
    Box::new(move |tx| {
        check_lease(tx, &task)?;
        let mut state = task_state(tx, &task)?;
        tx.unqueue(task.kind);
        if state.header.status != status {
            state.header.status = status;
            state.header.updated_at = at;
        }
        put_deliveries(tx, &mut state, deliveries);
        append(tx, id, &mut state, at, &events);
        if into_inbox {
            tx.insert(
                keys::citizen_message(kind::INBOX, &fiscal_code, &id),
                &[][..],
            );
        }
        tx.put_state(id, Some(state));
        Ok(Output::Done)
    })
}

/// The job of a `start_attempts` call, one for the whole round: the record that lists its
/// attempts (per attempt, the message id, the channel code and the attempt number), then each
/// attempt started on its own — in flight (listed by that record), the lease kept; when the
/// previous attempt's outcome was lost, the delivery as counted and the journal entry that says
/// so are written too. One result per attempt (`Output::Each`): an attempt whose lease is lost
/// fails before it writes anything, and fails alone.
pub(crate) fn starts(round: u64, starts: Vec<AttemptStart>) -> Job {
    let mut value = Vec::with_capacity(starts.len() * 21);
    for start in &starts {
        value.extend_from_slice(&start.delivery.id.message.to_bytes());
        value.push(start.delivery.id.channel.code());
        value.extend_from_slice(&start.delivery.attempts.to_be_bytes());
    }
    let prepared: Vec<PreparedStart> = starts.into_iter().map(PreparedStart::new).collect();
    Box::new(move |tx| {
        tx.insert(keys::raw(kind::ATTEMPTS, &round.to_be_bytes()), value);
        let results = prepared
            .into_iter()
            .map(|start| start.apply(tx, round))
            .collect();
        Ok(Output::Each(results))
    })
}

/// The entries of a round record: delivery and attempt number.
pub(crate) fn round_entries(value: &[u8]) -> Option<Vec<(io_core::DeliveryId, u32)>> {
    value
        .chunks(21)
        .map(|chunk| {
            let message = MessageId::from_bytes(chunk.get(..16)?.try_into().ok()?);
            let channel = io_core::ChannelKind::from_code(*chunk.get(16)?)?;
            let attempt = u32::from_be_bytes(chunk.get(17..21)?.try_into().ok()?);
            Some((io_core::DeliveryId::new(message, channel), attempt))
        })
        .collect()
}

/// One attempt start, encoded off the committer thread.
struct PreparedStart {
    task: Task,
    id: io_core::DeliveryId,
    attempt: u32,
    /// The delivery as counted and the `OutcomeUnknown` entry, when the previous outcome was
    /// lost.
    rewrite: Option<(Vec<u8>, EncodedEvents)>,
    at: Timestamp,
}

impl PreparedStart {
    fn new(start: AttemptStart) -> Self {
        let AttemptStart {
            task,
            delivery,
            event,
            at,
        } = start;
        let (id, attempt) = (delivery.id, delivery.attempts);
        let rewrite = event.map(|event| {
            let mut counted = delivery;
            // Stored as the attempt before this one, its outcome unknown: the attempt in
            // flight is shown by the in-memory record, and counted when its outcome is written.
            counted.attempts = attempt.saturating_sub(1);
            counted.outcome_pending = false;
            (encode_delivery(&counted), encode_events(&[event]))
        });
        PreparedStart {
            task,
            id,
            attempt,
            rewrite,
            at,
        }
    }

    fn apply(self, tx: &mut Tx<'_>, round: u64) -> Result<(), StoreError> {
        check_lease(tx, &self.task)?;
        if let Some((bytes, events)) = self.rewrite {
            let mut state = task_state(tx, &self.task)?;
            state.put_delivery(self.id.channel, bytes);
            append(tx, self.id.message, &mut state, self.at, &events);
            tx.put_state(self.id.message, Some(state));
        }
        tx.attempt_started(self.id, self.attempt, round);
        Ok(())
    }
}

/// The job of one delivery outcome or deferral, with the channel's effects.
pub(crate) fn delivery(record: DeliveryRecord) -> Job {
    let DeliveryRecord {
        task,
        delivery,
        events,
        effects,
        at,
    } = record;
    let events = encode_events(&events);
    let fiscal_code = delivery.fiscal_code.clone();
    let encoded = encode_deliveries(std::slice::from_ref(&delivery));
    let id = delivery.id;
    Box::new(move |tx| {
        check_lease(tx, &task)?;
        let message = task.kind.message();
        let mut state = task_state(tx, &task)?;
        for effect in &effects {
            apply_effect(tx, &fiscal_code, effect)?;
        }
        put_deliveries(tx, &mut state, encoded);
        append(tx, message, &mut state, at, &events);
        tx.put_state(message, Some(state));
        if !events.is_empty() {
            tx.attempt_finished(id);
        }
        Ok(Output::Done)
    })
}

/// Records what a channel asked for beside the delivery.
fn apply_effect(
    tx: &mut Tx<'_>,
    fiscal_code: &FiscalCode,
    effect: &Effect,
) -> Result<(), StoreError> {
    match effect {
        Effect::EmailBounced(address) => {
            let key = keys::citizen(kind::PROFILE, fiscal_code);
            let Some(bytes) = tx.get(&key)? else {
                return Ok(());
            };
            let profile: Profile = decode("profile", &bytes)?;
            if let Some(bounced) = profile.with_bounced_email(address) {
                tracing::info!(citizen = ?fiscal_code, "email address marked bounced: the relay says the mailbox does not exist");
                tx.insert(key, encode(&bounced));
            }
        }
        Effect::PruneDevice {
            installation_id,
            registered_at,
        } => {
            let key = keys::pair(
                kind::INSTALLATION,
                fiscal_code.as_str(),
                installation_id.as_str(),
            );
            let Some(bytes) = tx.get(&key)? else {
                return Ok(());
            };
            let installation: Installation = decode("installation", &bytes)?;
            if installation.updated_at == *registered_at {
                tracing::info!(installation = installation_id.as_str(), platform = ?installation.platform, "device token pruned: the provider no longer knows it");
                tx.remove(key);
            }
        }
        // Folded into the delivery by the engine.
        Effect::DevicesNotified(_) => {}
    }
    Ok(())
}

/// The job of a PEC receipt: a duplicate (the same bytes kept already) or a receipt for no PEC
/// delivery writes nothing; otherwise the evidence, the journal entries and the delivery as
/// `pec::after_receipt` leaves it, in one write. An attempt in flight is ended (its outcome
/// journaled unknown) and its lease released by the requeue, so it cannot overwrite the
/// receipt's state.
pub(crate) fn receipt(record: ReceiptRecord) -> Job {
    let ReceiptRecord {
        receipt,
        windows,
        at,
    } = record;
    let id = receipt.delivery;
    let sha256_hex = receipt.sha256();
    let mut sha256 = [0u8; 32];
    // Always 64 hex digits: it was just computed.
    let _ = hex::decode_to_slice(&sha256_hex, &mut sha256);
    let key = keys::evidence(&id.message, &sha256);
    Box::new(move |tx| {
        if tx.get(&key)?.is_some() {
            return Ok(Output::Receipt(ReceiptOutcome::Duplicate));
        }
        let Some(mut state) = tx.state(&id.message)? else {
            return Ok(Output::Receipt(ReceiptOutcome::UnknownDelivery));
        };
        let Some(mut delivery) = state.delivery(id.message, id.channel)? else {
            return Ok(Output::Receipt(ReceiptOutcome::UnknownDelivery));
        };
        let mut events = Vec::with_capacity(2);
        let interrupted = tx.attempt_in_flight(&id);
        if let Some(attempt) = interrupted {
            delivery.attempts = attempt;
            events.push(JournalEvent::OutcomeUnknown {
                channel: id.channel,
                attempt,
            });
            tx.attempt_finished(id);
        }
        let next = io_core::pec::after_receipt(&delivery, &receipt, windows, at);
        let changed = next.is_some() || interrupted.is_some();
        let delivery = next.unwrap_or(delivery);
        events.push(JournalEvent::ReceiptRecorded {
            channel: id.channel,
            receipt: receipt.kind,
            issued_at: receipt.issued_at,
            provider_id: receipt.provider_id.clone(),
            sha256: sha256_hex.clone(),
            signed_by: receipt.signer.clone(),
            state: delivery.state.clone(),
        });
        if changed {
            put_deliveries(
                tx,
                &mut state,
                encode_deliveries(std::slice::from_ref(&delivery)),
            );
        }
        let seq = state.journal_len() + events.len() as u64 - 1;
        append(tx, id.message, &mut state, at, &encode_events(&events));
        let mut value = Vec::with_capacity(8 + receipt.raw.len());
        value.extend_from_slice(&seq.to_be_bytes());
        value.extend_from_slice(&receipt.raw);
        tx.insert(key.clone(), value);
        let service_id = state.header.service_id.clone();
        tx.put_state(id.message, Some(state));
        Ok(Output::Receipt(ReceiptOutcome::Recorded {
            service_id,
            events,
        }))
    })
}

/// The evidence record's journal seq and bytes.
pub(crate) fn evidence_value(value: &[u8]) -> Option<(u64, &[u8])> {
    let seq = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    Some((seq, value.get(8..)?))
}

/// The job of a callback task's progress.
pub(crate) fn callback(record: CallbackRecord) -> Job {
    let CallbackRecord {
        task,
        cursor,
        retry_at,
        close,
        at,
    } = record;
    Box::new(move |tx| {
        check_lease(tx, &task)?;
        let message = task.kind.message();
        let mut state = task_state(tx, &task)?;
        if state.header.outbox.is_none() {
            return Err(StoreError::LeaseLost {
                task: format!("{:?}", task.kind),
            });
        }
        let service = state.header.service_id.clone();
        let behind = cursor.acknowledged < state.journal_len();
        let due = match retry_at {
            Some(retry_at) => Some(retry_at),
            // The journal grew while the task ran: go on at once.
            None if behind => Some(at),
            None => None,
        };
        state.header.outbox = match due {
            None if close => None,
            due => Some(Outbox { cursor, due }),
        };
        match due {
            Some(due) => tx.queue(task.kind, &service, due),
            None => tx.unqueue(task.kind),
        }
        tx.put_state(message, Some(state));
        Ok(Output::Done)
    })
}

/// The job of a discard: the task leaves the queue (nothing on disk changes).
pub(crate) fn discard(task: Task) -> Job {
    Box::new(move |tx| {
        check_lease(tx, &task)?;
        tx.unqueue(task.kind);
        Ok(Output::Done)
    })
}
