//! A pipeline transaction's message rows and writes. The rows it changes are locked and read in
//! one statement; what its records change is gathered in memory while they are applied and sent
//! at the end in one statement. A batch of a hundred records then costs the same five round
//! trips as a batch of one — the round trips, not PostgreSQL's work, are what a transaction
//! waits for.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use io_core::{
    CallbackCursor, Delivery, FiscalCode, JournalEntry, JournalEvent, JournalHead, Message,
    MessageId, MessageStatus, ServiceId, StoreError, Timestamp,
};
use sqlx::{PgConnection, Row};

use super::queue::{NoticeThrottle, callback_sub, delivery_sub};
use super::{WORK_CHANNEL, backend, decode, encode, id_bytes, message_id, millis, signed};

/// A message row locked by the transaction, as it will be written back at its end.
pub(super) struct Locked {
    pub(super) id: MessageId,
    pub(super) service_id: ServiceId,
    pub(super) status: MessageStatus,
    pub(super) updated_at: Timestamp,
    pub(super) head: Option<JournalHead>,
    pub(super) outbox: Option<CallbackCursor>,
    row: RowWrite,
}

/// What becomes of a locked row at the end of the transaction.
enum RowWrite {
    Unchanged,
    Changed,
    /// The message is new: its row is inserted, with its first state.
    New {
        fiscal_code: String,
        body: String,
        created_at: Timestamp,
    },
}

impl Locked {
    /// The row of a message being accepted, inserted at the end of the transaction.
    pub(super) fn new(
        message: &Message,
        status: MessageStatus,
        outbox: Option<CallbackCursor>,
    ) -> Self {
        Self {
            id: message.id,
            service_id: message.sender_service_id.clone(),
            status,
            updated_at: message.created_at,
            head: None,
            outbox,
            row: RowWrite::New {
                fiscal_code: message.body.fiscal_code.as_str().to_owned(),
                body: encode(message),
                created_at: message.created_at,
            },
        }
    }

    /// The number of entries in the message's journal.
    pub(super) fn journal_len(&self) -> u64 {
        self.head.as_ref().map_or(0, |head| head.seq + 1)
    }

    /// Marks the row to be written back (its status, time or outbox changed).
    pub(super) fn changed(&mut self) {
        if matches!(self.row, RowWrite::Unchanged) {
            self.row = RowWrite::Changed;
        }
    }
}

fn corrupt(what: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.into(),
    }
}

/// Locks and reads the rows of `messages`, in id order (two transactions locking overlapping
/// sets cannot deadlock); a message that is gone (erased) has no entry.
pub(super) async fn lock_rows(
    conn: &mut PgConnection,
    messages: impl IntoIterator<Item = MessageId>,
) -> Result<HashMap<MessageId, Locked>, StoreError> {
    let mut ids: Vec<MessageId> = messages.into_iter().collect();
    ids.sort();
    ids.dedup();
    let bytes: Vec<Vec<u8>> = ids.iter().map(id_bytes).collect();
    let rows = sqlx::query(
        "SELECT message_id, service_id, status::text, updated_at, head_seq, head_hash,
             outbox::text
         FROM messages WHERE message_id = ANY($1) ORDER BY message_id FOR UPDATE",
    )
    .bind(&bytes)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let mut locked = HashMap::with_capacity(rows.len());
    for row in rows {
        let id = message_id(row.try_get::<&[u8], _>(0).map_err(backend)?)?;
        let service_id = ServiceId::parse(row.try_get::<&str, _>(1).map_err(backend)?)
            .map_err(|e| corrupt("messages", e.to_string()))?;
        let status: MessageStatus = decode("message status", row.try_get(2).map_err(backend)?)?;
        let head = match (
            row.try_get::<Option<i64>, _>(4).map_err(backend)?,
            row.try_get::<Option<String>, _>(5).map_err(backend)?,
        ) {
            (Some(seq), Some(hash)) => Some(JournalHead {
                seq: u64::try_from(seq).map_err(|_| corrupt("messages", "negative journal seq"))?,
                hash,
            }),
            _ => None,
        };
        let outbox = row
            .try_get::<Option<&str>, _>(6)
            .map_err(backend)?
            .map(|text| decode("callback outbox", text))
            .transpose()?;
        locked.insert(
            id,
            Locked {
                id,
                service_id,
                status,
                updated_at: Timestamp::from_millis(row.try_get(3).map_err(backend)?),
                head,
                outbox,
                row: RowWrite::Unchanged,
            },
        );
    }
    Ok(locked)
}

/// What becomes of a task row.
enum TaskWrite {
    /// Queued at `due`, or moved there, its lease released.
    Put {
        service: ServiceId,
        due: Timestamp,
    },
    /// Queued at `due` unless already queued (a queued or leased task keeps its time).
    PutIfAbsent {
        service: ServiceId,
        due: Timestamp,
    },
    Remove,
}

/// The writes of a transaction, gathered in memory: one statement per table at [`Writes::flush`].
#[derive(Default)]
pub(super) struct Writes {
    deliveries: BTreeMap<(MessageId, i16), String>,
    tasks: BTreeMap<(MessageId, i16), TaskWrite>,
    journal: Vec<(MessageId, i64, Vec<u8>)>,
    inbox: BTreeSet<(String, MessageId)>,
    /// Whether a task was queued due at once: the workers are woken at commit.
    wake: bool,
}

impl Writes {
    /// Queues the message's task `sub` at `due` (or moves it there, releasing any lease).
    pub(super) fn queue(&mut self, locked: &Locked, sub: i16, due: Timestamp, now: Timestamp) {
        self.tasks.insert(
            (locked.id, sub),
            TaskWrite::Put {
                service: locked.service_id.clone(),
                due,
            },
        );
        self.wake |= due <= now;
    }

    /// Takes the message's task `sub` out of the queue (absent is fine).
    pub(super) fn unqueue(&mut self, message: MessageId, sub: i16) {
        self.tasks.insert((message, sub), TaskWrite::Remove);
    }

    /// Queues the message's task `sub` at `due` unless it is queued already; wakes the workers
    /// only if it was not.
    fn queue_if_absent(&mut self, locked: &Locked, sub: i16, due: Timestamp, now: Timestamp) {
        let key = (locked.id, sub);
        let write = match self.tasks.remove(&key) {
            // Queued in this transaction already: it keeps its time.
            Some(put @ (TaskWrite::Put { .. } | TaskWrite::PutIfAbsent { .. })) => put,
            Some(TaskWrite::Remove) => {
                self.wake |= due <= now;
                TaskWrite::Put {
                    service: locked.service_id.clone(),
                    due,
                }
            }
            None => TaskWrite::PutIfAbsent {
                service: locked.service_id.clone(),
                due,
            },
        };
        self.tasks.insert(key, write);
    }

    /// Stores a delivery as it is, its task untouched.
    pub(super) fn put_delivery(&mut self, delivery: &Delivery) {
        self.deliveries.insert(
            (delivery.id.message, delivery_sub(delivery.id.channel)),
            encode(delivery),
        );
    }

    /// Stores each delivery, queuing each not final at its next attempt (releasing any lease)
    /// and taking each final one out of the queue.
    pub(super) fn put_deliveries(
        &mut self,
        locked: &Locked,
        deliveries: &[Delivery],
        now: Timestamp,
    ) {
        for delivery in deliveries {
            self.put_delivery(delivery);
            let sub = delivery_sub(delivery.id.channel);
            if delivery.state.is_final() {
                self.unqueue(locked.id, sub);
            } else {
                self.queue(locked, sub, delivery.next_attempt_at, now);
            }
        }
    }

    /// Appends `events` to the locked message's journal, and queues its callback task if its
    /// outbox is open (a callback already queued or leased keeps its time).
    pub(super) fn append(&mut self, locked: &mut Locked, at: Timestamp, events: &[JournalEvent]) {
        if events.is_empty() {
            return;
        }
        for event in events {
            let json = serde_json::to_vec(event).unwrap_or_default();
            let (bytes, head) = JournalEntry::encode_after(locked.head.as_ref(), at, &json);
            self.journal.push((locked.id, signed(head.seq), bytes));
            locked.head = Some(head);
        }
        locked.changed();
        if locked.outbox.is_some() {
            self.queue_if_absent(locked, callback_sub(), at, at);
        }
    }

    /// Lists the message in the citizen's inbox.
    pub(super) fn list_in_inbox(&mut self, fiscal_code: &FiscalCode, message: MessageId) {
        self.inbox
            .insert((fiscal_code.as_str().to_owned(), message));
    }

    /// Sends the writes and the rows of `locked` that changed, in one statement (a
    /// data-modifying CTE per table: one round trip whatever the batch holds), and wakes the
    /// workers of the other processes at commit if work was queued due at once and `notices`
    /// allows.
    pub(super) async fn flush<'a>(
        self,
        conn: &mut PgConnection,
        locked: impl IntoIterator<Item = &'a Locked>,
        notices: &std::sync::Arc<NoticeThrottle>,
    ) -> Result<(), StoreError> {
        let may_wake = self.wake
            || self
                .tasks
                .values()
                .any(|write| matches!(write, TaskWrite::PutIfAbsent { .. }));
        let notify = may_wake && notices.take();
        let rows = Rows::of(locked);
        let mut deliveries = (Vec::new(), Vec::new(), Vec::new());
        for ((message, channel), body) in self.deliveries {
            deliveries.0.push(id_bytes(&message));
            deliveries.1.push(channel);
            deliveries.2.push(body);
        }
        let tasks = Tasks::of(self.tasks);
        let mut journal = (Vec::new(), Vec::new(), Vec::new());
        for (message, seq, entry) in self.journal {
            journal.0.push(id_bytes(&message));
            journal.1.push(seq);
            journal.2.push(entry);
        }
        let (citizens, inboxed): (Vec<String>, Vec<Vec<u8>>) = self
            .inbox
            .into_iter()
            .map(|(citizen, message)| (citizen, id_bytes(&message)))
            .unzip();
        sqlx::query(FLUSH)
            .bind(&rows.new.ids)
            .bind(&rows.services)
            .bind(&rows.citizens)
            .bind(&rows.bodies)
            .bind(&rows.new.statuses)
            .bind(&rows.created)
            .bind(&rows.new.updated)
            .bind(&rows.new.head_seqs)
            .bind(&rows.new.head_hashes)
            .bind(&rows.new.outboxes)
            .bind(&rows.changed.ids)
            .bind(&rows.changed.statuses)
            .bind(&rows.changed.updated)
            .bind(&rows.changed.head_seqs)
            .bind(&rows.changed.head_hashes)
            .bind(&rows.changed.outboxes)
            .bind(&deliveries.0)
            .bind(&deliveries.1)
            .bind(&deliveries.2)
            .bind(&tasks.removed.0)
            .bind(&tasks.removed.1)
            .bind(&tasks.put.messages)
            .bind(&tasks.put.subs)
            .bind(&tasks.put.services)
            .bind(&tasks.put.due)
            .bind(&tasks.put_if_absent.messages)
            .bind(&tasks.put_if_absent.subs)
            .bind(&tasks.put_if_absent.services)
            .bind(&tasks.put_if_absent.due)
            .bind(&journal.0)
            .bind(&journal.1)
            .bind(&journal.2)
            .bind(&citizens)
            .bind(&inboxed)
            .bind(self.wake)
            .bind(WORK_CHANNEL)
            .bind(notify)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// Every write of [`Writes::flush`], in one statement. The sub-statements touch different rows
/// (one write per task key, per delivery, per message), so their order does not matter; the
/// last line notifies the listeners, when allowed ($37), if a task was queued due at once
/// ($35) or a callback task was queued where none was.
const FLUSH: &str = "
WITH new_messages AS (
    INSERT INTO messages (message_id, service_id, fiscal_code, body, status, created_at,
        updated_at, head_seq, head_hash, outbox)
    SELECT id, service_id, fiscal_code, body::jsonb, status::jsonb, created_at, updated_at,
        head_seq, head_hash, outbox::jsonb
    FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
        $7::bigint[], $8::bigint[], $9::text[], $10::text[])
        AS m(id, service_id, fiscal_code, body, status, created_at, updated_at, head_seq,
            head_hash, outbox)
), changed_messages AS (
    UPDATE messages SET status = m.status::jsonb, updated_at = m.updated_at,
        head_seq = m.head_seq, head_hash = m.head_hash, outbox = m.outbox::jsonb
    FROM unnest($11::bytea[], $12::text[], $13::bigint[], $14::bigint[], $15::text[],
        $16::text[]) AS m(id, status, updated_at, head_seq, head_hash, outbox)
    WHERE messages.message_id = m.id
), deliveries_put AS (
    INSERT INTO deliveries (message_id, channel, body)
    SELECT m, c, b::jsonb FROM unnest($17::bytea[], $18::smallint[], $19::text[]) AS d(m, c, b)
    ON CONFLICT (message_id, channel) DO UPDATE SET body = excluded.body
), tasks_removed AS (
    DELETE FROM tasks USING unnest($20::bytea[], $21::smallint[]) AS k(m, s)
    WHERE tasks.message_id = k.m AND tasks.sub = k.s
), tasks_put AS (
    INSERT INTO tasks (message_id, sub, service_id, due_at, token)
    SELECT m, s, v, d, NULL
    FROM unnest($22::bytea[], $23::smallint[], $24::text[], $25::bigint[]) AS k(m, s, v, d)
    ON CONFLICT (message_id, sub) DO UPDATE SET due_at = excluded.due_at, token = NULL
), tasks_added AS (
    INSERT INTO tasks (message_id, sub, service_id, due_at, token)
    SELECT m, s, v, d, NULL
    FROM unnest($26::bytea[], $27::smallint[], $28::text[], $29::bigint[]) AS k(m, s, v, d)
    ON CONFLICT (message_id, sub) DO NOTHING
    RETURNING 1
), journal_added AS (
    INSERT INTO journal (message_id, seq, entry)
    SELECT * FROM unnest($30::bytea[], $31::bigint[], $32::bytea[])
), inbox_added AS (
    INSERT INTO inbox (fiscal_code, message_id)
    SELECT * FROM unnest($33::text[], $34::bytea[])
    ON CONFLICT DO NOTHING
)
SELECT pg_notify($36, '') WHERE $37 AND ($35 OR EXISTS (SELECT 1 FROM tasks_added))";

/// A message row's columns, one array each.
#[derive(Default)]
struct RowColumns {
    ids: Vec<Vec<u8>>,
    statuses: Vec<String>,
    updated: Vec<i64>,
    head_seqs: Vec<Option<i64>>,
    head_hashes: Vec<Option<String>>,
    outboxes: Vec<Option<String>>,
}

impl RowColumns {
    fn push(&mut self, locked: &Locked) {
        self.ids.push(id_bytes(&locked.id));
        self.statuses.push(encode(&locked.status));
        self.updated.push(millis(locked.updated_at));
        self.head_seqs
            .push(locked.head.as_ref().map(|head| signed(head.seq)));
        self.head_hashes
            .push(locked.head.as_ref().map(|head| head.hash.clone()));
        self.outboxes.push(locked.outbox.as_ref().map(encode));
    }
}

/// The message rows to insert and to write back.
#[derive(Default)]
struct Rows {
    new: RowColumns,
    services: Vec<String>,
    citizens: Vec<String>,
    bodies: Vec<String>,
    created: Vec<i64>,
    changed: RowColumns,
}

impl Rows {
    fn of<'a>(locked: impl IntoIterator<Item = &'a Locked>) -> Self {
        let mut rows = Self::default();
        for locked in locked {
            match &locked.row {
                RowWrite::Unchanged => {}
                RowWrite::Changed => rows.changed.push(locked),
                RowWrite::New {
                    fiscal_code,
                    body,
                    created_at,
                } => {
                    rows.new.push(locked);
                    rows.services.push(locked.service_id.as_str().to_owned());
                    rows.citizens.push(fiscal_code.clone());
                    rows.bodies.push(body.clone());
                    rows.created.push(millis(*created_at));
                }
            }
        }
        rows
    }
}

/// Task rows to queue, one array per column.
#[derive(Default)]
struct TaskColumns {
    messages: Vec<Vec<u8>>,
    subs: Vec<i16>,
    services: Vec<String>,
    due: Vec<i64>,
}

/// The task rows to remove, to queue, and to queue if absent.
#[derive(Default)]
struct Tasks {
    removed: (Vec<Vec<u8>>, Vec<i16>),
    put: TaskColumns,
    put_if_absent: TaskColumns,
}

impl Tasks {
    fn of(writes: BTreeMap<(MessageId, i16), TaskWrite>) -> Self {
        let mut tasks = Self::default();
        for ((message, sub), write) in writes {
            let (columns, service, due) = match write {
                TaskWrite::Remove => {
                    tasks.removed.0.push(id_bytes(&message));
                    tasks.removed.1.push(sub);
                    continue;
                }
                TaskWrite::Put { service, due } => (&mut tasks.put, service, due),
                TaskWrite::PutIfAbsent { service, due } => (&mut tasks.put_if_absent, service, due),
            };
            columns.messages.push(id_bytes(&message));
            columns.subs.push(sub);
            columns.services.push(service.as_str().to_owned());
            columns.due.push(millis(due));
        }
        tasks
    }
}
