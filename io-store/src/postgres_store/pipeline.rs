//! The pipeline's writes on PostgreSQL — accept, decisions, attempt starts, outcomes with the
//! channels' effects, receipts, callback progress — and the message reads.
//!
//! Every write of a task's result locks its message's row first (a batch locks all its
//! messages at once, in id order, so two batches cannot deadlock), checks the task's token,
//! and only then writes; a record whose lease was lost writes nothing and fails alone. The
//! message's row holds its journal head, so appends to one journal are serialized by that lock
//! and the chain has no gap or fork whichever process writes.

use io_core::{
    AcceptOutcome, AcceptRecord, AttemptStart, CallbackCursor, CallbackRecord, Delivery,
    DeliveryId, DeliveryRecord, Effect, Evidence, FiscalCode, Installation, JournalEntry,
    JournalEvent, JournalHead, Message, MessageId, MessageStatus, ProcessRecord, Profile,
    ReceiptOutcome, ReceiptRecord, ServiceId, StoreError, StoredJournal, StoredMessage, Task,
    Timestamp,
};
use sqlx::{PgConnection, Row};

use super::queue::{self, callback_sub, delivery_sub, process_sub};
use super::{PostgresStore, backend, decode, encode, id_bytes, message_id, millis};

/// What changes of a message, read under its row's lock and written back with the changes.
struct Locked {
    id: MessageId,
    service_id: ServiceId,
    status: MessageStatus,
    updated_at: Timestamp,
    head: Option<JournalHead>,
    outbox: Option<CallbackCursor>,
    /// Whether a task was queued due at once: the workers are woken at commit.
    wake: bool,
}

impl Locked {
    fn journal_len(&self) -> u64 {
        self.head.as_ref().map_or(0, |head| head.seq + 1)
    }
}

fn corrupt(what: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.into(),
    }
}

/// Reads the message's row under lock; `None` when it is gone (erased).
async fn lock(conn: &mut PgConnection, id: &MessageId) -> Result<Option<Locked>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT service_id, status::text, updated_at, head_seq, head_hash, outbox::text
         FROM messages WHERE message_id = $1 FOR UPDATE",
    )
    .bind(id_bytes(id))
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?
    else {
        return Ok(None);
    };
    let service_id = ServiceId::parse(row.try_get::<&str, _>(0).map_err(backend)?)
        .map_err(|e| corrupt("messages", e.to_string()))?;
    let status: MessageStatus = decode("message status", row.try_get(1).map_err(backend)?)?;
    let head = match (
        row.try_get::<Option<i64>, _>(3).map_err(backend)?,
        row.try_get::<Option<String>, _>(4).map_err(backend)?,
    ) {
        (Some(seq), Some(hash)) => Some(JournalHead {
            seq: u64::try_from(seq).map_err(|_| corrupt("messages", "negative journal seq"))?,
            hash,
        }),
        _ => None,
    };
    let outbox = row
        .try_get::<Option<&str>, _>(5)
        .map_err(backend)?
        .map(|text| decode("callback outbox", text))
        .transpose()?;
    Ok(Some(Locked {
        id: *id,
        service_id,
        status,
        updated_at: Timestamp::from_millis(row.try_get(2).map_err(backend)?),
        head,
        outbox,
        wake: false,
    }))
}

/// Locks the rows of `messages` in id order, before a batch writes any of them.
async fn lock_all(conn: &mut PgConnection, mut messages: Vec<MessageId>) -> Result<(), StoreError> {
    messages.sort();
    messages.dedup();
    let ids: Vec<Vec<u8>> = messages.iter().map(id_bytes).collect();
    sqlx::query(
        "SELECT message_id FROM messages WHERE message_id = ANY($1) ORDER BY message_id FOR UPDATE",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Writes back what changed of a locked message, and wakes the workers if it queued work.
async fn write_back(conn: &mut PgConnection, locked: &Locked) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE messages SET status = $2::jsonb, updated_at = $3, head_seq = $4, head_hash = $5,
             outbox = $6::jsonb
         WHERE message_id = $1",
    )
    .bind(id_bytes(&locked.id))
    .bind(encode(&locked.status))
    .bind(millis(locked.updated_at))
    .bind(locked.head.as_ref().map(|h| super::signed(h.seq)))
    .bind(locked.head.as_ref().map(|h| h.hash.as_str()))
    .bind(locked.outbox.as_ref().map(encode))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    if locked.wake {
        queue::wake(conn).await?;
    }
    Ok(())
}

/// Appends `events` to the locked message's journal, and queues its callback outbox if it was
/// waiting for an entry.
async fn append(
    conn: &mut PgConnection,
    locked: &mut Locked,
    at: Timestamp,
    events: &[JournalEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut seqs = Vec::with_capacity(events.len());
    let mut entries = Vec::with_capacity(events.len());
    for event in events {
        let json = serde_json::to_vec(event).unwrap_or_default();
        let (bytes, head) = JournalEntry::encode_after(locked.head.as_ref(), at, &json);
        seqs.push(super::signed(head.seq));
        entries.push(bytes);
        locked.head = Some(head);
    }
    sqlx::query(
        "INSERT INTO journal (message_id, seq, entry)
         SELECT $1, seq, entry FROM unnest($2::bigint[], $3::bytea[]) AS e(seq, entry)",
    )
    .bind(id_bytes(&locked.id))
    .bind(&seqs)
    .bind(&entries)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    if locked.outbox.is_some() {
        // A callback task already queued (or leased) keeps its time.
        let queued = sqlx::query(
            "INSERT INTO tasks (message_id, sub, service_id, due_at, token) VALUES ($1, $2, $3, $4, NULL)
             ON CONFLICT (message_id, sub) DO NOTHING",
        )
        .bind(id_bytes(&locked.id))
        .bind(callback_sub())
        .bind(locked.service_id.as_str())
        .bind(millis(at))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        locked.wake |= queued.rows_affected() == 1;
    }
    Ok(())
}

/// Stores each delivery, queuing each not final at its next attempt (releasing any lease) and
/// taking each final one out of the queue.
async fn put_deliveries(
    conn: &mut PgConnection,
    locked: &mut Locked,
    deliveries: &[Delivery],
    at: Timestamp,
) -> Result<(), StoreError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let channels: Vec<i16> = deliveries
        .iter()
        .map(|d| delivery_sub(d.id.channel))
        .collect();
    let bodies: Vec<String> = deliveries.iter().map(encode).collect();
    sqlx::query(
        "INSERT INTO deliveries (message_id, channel, body)
         SELECT $1, channel, body::jsonb FROM unnest($2::smallint[], $3::text[]) AS d(channel, body)
         ON CONFLICT (message_id, channel) DO UPDATE SET body = excluded.body",
    )
    .bind(id_bytes(&locked.id))
    .bind(&channels)
    .bind(&bodies)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    for delivery in deliveries {
        let sub = delivery_sub(delivery.id.channel);
        if delivery.state.is_final() {
            queue::remove(conn, &locked.id, sub).await?;
        } else {
            queue::put(
                conn,
                &locked.id,
                sub,
                &locked.service_id,
                delivery.next_attempt_at,
            )
            .await?;
            locked.wake |= delivery.next_attempt_at <= at;
        }
    }
    Ok(())
}

async fn into_inbox(
    conn: &mut PgConnection,
    fiscal_code: &FiscalCode,
    message: &MessageId,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO inbox (fiscal_code, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(fiscal_code.as_str())
    .bind(id_bytes(message))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// The locked message of a task; `LeaseLost` when it is gone or the lease was taken over.
async fn lock_for(conn: &mut PgConnection, task: &Task) -> Result<Locked, StoreError> {
    let locked = lock(conn, &task.kind.message())
        .await?
        .ok_or_else(|| StoreError::LeaseLost {
            task: format!("{:?}", task.kind),
        })?;
    queue::check_lease(conn, task).await?;
    Ok(locked)
}

pub(super) async fn accept(
    store: &PostgresStore,
    record: AcceptRecord,
) -> Result<AcceptOutcome, StoreError> {
    let message = &record.message;
    let created_at = message.created_at;
    let mut tx = store.begin().await?;
    if let Some((key, expires_at)) = &record.idempotency {
        // An expired record is taken over; a live one is the earlier use.
        let taken = sqlx::query(
            "INSERT INTO idempotency (service_id, key, message_id, content_hash, expires_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (service_id, key) DO UPDATE SET message_id = excluded.message_id,
                 content_hash = excluded.content_hash, expires_at = excluded.expires_at
             WHERE idempotency.expires_at <= $6",
        )
        .bind(message.sender_service_id.as_str())
        .bind(key.as_str())
        .bind(id_bytes(&message.id))
        .bind(&record.content_hash)
        .bind(millis(*expires_at))
        .bind(millis(created_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if taken.rows_affected() == 0 {
            let row = sqlx::query(
                "SELECT message_id, content_hash FROM idempotency WHERE service_id = $1 AND key = $2",
            )
            .bind(message.sender_service_id.as_str())
            .bind(key.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
            return Ok(AcceptOutcome::Existing {
                message_id: message_id(row.try_get::<&[u8], _>(0).map_err(backend)?)?,
                content_hash: row.try_get(1).map_err(backend)?,
            });
        }
    }
    let fiscal_code = &message.body.fiscal_code;
    sqlx::query(
        "INSERT INTO messages (message_id, service_id, fiscal_code, body, status, created_at,
             updated_at)
         VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $6)",
    )
    .bind(id_bytes(&message.id))
    .bind(message.sender_service_id.as_str())
    .bind(fiscal_code.as_str())
    .bind(encode(message))
    .bind(encode(&record.status))
    .bind(millis(created_at))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let mut locked = Locked {
        id: message.id,
        service_id: message.sender_service_id.clone(),
        status: record.status,
        updated_at: created_at,
        head: None,
        outbox: record.open_callbacks.then(CallbackCursor::default),
        wake: false,
    };
    if record.status == MessageStatus::Accepted {
        queue::put(
            &mut tx,
            &message.id,
            process_sub(),
            &locked.service_id,
            created_at,
        )
        .await?;
        locked.wake = true;
    }
    put_deliveries(&mut tx, &mut locked, &record.deliveries, created_at).await?;
    append(&mut tx, &mut locked, created_at, &record.events).await?;
    if record.into_inbox {
        into_inbox(&mut tx, fiscal_code, &message.id).await?;
    }
    write_back(&mut tx, &locked).await?;
    tx.commit().await.map_err(backend)?;
    Ok(AcceptOutcome::Created)
}

/// One record of a batch: each is applied atomically and fails alone.
enum Work {
    Process(ProcessRecord),
    Start(AttemptStart),
    Deliver(DeliveryRecord),
}

impl Work {
    fn message(&self) -> MessageId {
        match self {
            Self::Process(record) => record.task.kind.message(),
            Self::Start(start) => start.task.kind.message(),
            Self::Deliver(record) => record.task.kind.message(),
        }
    }

    async fn apply(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        match self {
            Self::Process(record) => process_one(conn, record).await,
            Self::Start(start) => start_one(conn, start).await,
            Self::Deliver(record) => delivery_one(conn, record).await,
        }
    }
}

/// Applies each record in one transaction (one commit, one WAL flush for the batch), each
/// failing alone: a record that fails writes nothing, since every check comes before its
/// first write. A failure of the database itself fails them all.
async fn each_in_one_transaction(
    store: &PostgresStore,
    batch: Vec<Work>,
    durable: bool,
) -> Vec<Result<(), StoreError>> {
    let count = batch.len();
    let outcome: Result<Vec<Result<(), StoreError>>, StoreError> = async {
        let mut tx = store.begin().await?;
        if !durable {
            sqlx::query("SET LOCAL synchronous_commit TO OFF")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        lock_all(&mut tx, batch.iter().map(Work::message).collect()).await?;
        let mut results = Vec::with_capacity(count);
        for work in batch {
            match work.apply(&mut tx).await {
                Err(StoreError::LeaseLost { task }) => {
                    results.push(Err(StoreError::LeaseLost { task }));
                }
                Err(error) => return Err(error),
                Ok(()) => results.push(Ok(())),
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(results)
    }
    .await;
    match outcome {
        Ok(results) => results,
        Err(error) => vec![Err(error); count],
    }
}

async fn process_one(conn: &mut PgConnection, record: ProcessRecord) -> Result<(), StoreError> {
    let mut locked = lock_for(conn, &record.task).await?;
    queue::remove(conn, &locked.id, process_sub()).await?;
    if locked.status != record.status {
        locked.status = record.status;
        locked.updated_at = record.at;
    }
    put_deliveries(conn, &mut locked, &record.deliveries, record.at).await?;
    append(conn, &mut locked, record.at, &record.events).await?;
    if record.into_inbox {
        into_inbox(conn, &record.message.body.fiscal_code, &locked.id).await?;
    }
    write_back(conn, &locked).await
}

pub(super) async fn processes(
    store: &PostgresStore,
    records: Vec<ProcessRecord>,
) -> Vec<Result<(), StoreError>> {
    let batch = records.into_iter().map(Work::Process).collect();
    each_in_one_transaction(store, batch, true).await
}

async fn start_one(conn: &mut PgConnection, start: AttemptStart) -> Result<(), StoreError> {
    let mut locked = lock_for(conn, &start.task).await?;
    // The delivery as counted, its outcome pending until the channel answers: after a crash
    // the next claim finds it so and records the outcome unknown.
    let channels = vec![delivery_sub(start.delivery.id.channel)];
    let bodies = vec![encode(&start.delivery)];
    sqlx::query(
        "INSERT INTO deliveries (message_id, channel, body)
         SELECT $1, channel, body::jsonb FROM unnest($2::smallint[], $3::text[]) AS d(channel, body)
         ON CONFLICT (message_id, channel) DO UPDATE SET body = excluded.body",
    )
    .bind(id_bytes(&locked.id))
    .bind(&channels)
    .bind(&bodies)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    if let Some(event) = &start.event {
        append(conn, &mut locked, start.at, std::slice::from_ref(event)).await?;
        write_back(conn, &locked).await?;
    }
    Ok(())
}

pub(super) async fn starts(
    store: &PostgresStore,
    starts: Vec<AttemptStart>,
) -> Vec<Result<(), StoreError>> {
    if starts.is_empty() {
        return Vec::new();
    }
    let batch = starts.into_iter().map(Work::Start).collect();
    each_in_one_transaction(store, batch, true).await
}

/// Records what a channel asked for beside the delivery.
async fn apply_effect(
    conn: &mut PgConnection,
    fiscal_code: &FiscalCode,
    effect: &Effect,
) -> Result<(), StoreError> {
    match effect {
        Effect::EmailBounced(address) => {
            let stored: Option<String> = sqlx::query_scalar(
                "SELECT body::text FROM profiles WHERE fiscal_code = $1 FOR UPDATE",
            )
            .bind(fiscal_code.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
            let Some(stored) = stored else {
                return Ok(());
            };
            let profile: Profile = decode("profile", &stored)?;
            if let Some(bounced) = profile.with_bounced_email(address) {
                tracing::info!(citizen = ?fiscal_code, "email address marked bounced: the relay says the mailbox does not exist");
                sqlx::query(
                    "UPDATE profiles SET version = $2, body = $3::jsonb WHERE fiscal_code = $1",
                )
                .bind(fiscal_code.as_str())
                .bind(super::signed(bounced.version))
                .bind(encode(&bounced))
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            }
        }
        Effect::PruneDevice {
            installation_id,
            registered_at,
        } => {
            let stored: Option<String> = sqlx::query_scalar(
                "SELECT body::text FROM installations
                 WHERE fiscal_code = $1 AND installation_id = $2 FOR UPDATE",
            )
            .bind(fiscal_code.as_str())
            .bind(installation_id.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
            let Some(stored) = stored else {
                return Ok(());
            };
            let installation: Installation = decode("installation", &stored)?;
            if installation.updated_at == *registered_at {
                tracing::info!(installation = installation_id.as_str(), platform = ?installation.platform, "device token pruned: the provider no longer knows it");
                sqlx::query(
                    "DELETE FROM installations WHERE fiscal_code = $1 AND installation_id = $2",
                )
                .bind(fiscal_code.as_str())
                .bind(installation_id.as_str())
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            }
        }
        // Folded into the delivery by the engine.
        Effect::DevicesNotified(_) => {}
    }
    Ok(())
}

async fn delivery_one(conn: &mut PgConnection, record: DeliveryRecord) -> Result<(), StoreError> {
    let mut locked = lock_for(conn, &record.task).await?;
    for effect in &record.effects {
        apply_effect(conn, &record.delivery.fiscal_code, effect).await?;
    }
    put_deliveries(
        conn,
        &mut locked,
        std::slice::from_ref(&record.delivery),
        record.at,
    )
    .await?;
    append(conn, &mut locked, record.at, &record.events).await?;
    write_back(conn, &locked).await
}

pub(super) async fn deliveries(
    store: &PostgresStore,
    records: Vec<DeliveryRecord>,
) -> Vec<Result<(), StoreError>> {
    if records.is_empty() {
        return Vec::new();
    }
    // Deferrals (no event) change no evidence: they need not wait for the WAL's flush.
    let durable = records.iter().any(|r| !r.events.is_empty());
    let batch = records.into_iter().map(Work::Deliver).collect();
    each_in_one_transaction(store, batch, durable).await
}

pub(super) async fn receipt(
    store: &PostgresStore,
    record: ReceiptRecord,
) -> Result<ReceiptOutcome, StoreError> {
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
    let mut tx = store.begin().await?;
    let Some(mut locked) = lock(&mut tx, &id.message).await? else {
        return Ok(ReceiptOutcome::UnknownDelivery);
    };
    let duplicate: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM evidence WHERE message_id = $1 AND sha256 = $2")
            .bind(id_bytes(&id.message))
            .bind(sha256.to_vec())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
    if duplicate.is_some() {
        return Ok(ReceiptOutcome::Duplicate);
    }
    let Some(mut delivery) = read_delivery(&mut tx, &id).await? else {
        return Ok(ReceiptOutcome::UnknownDelivery);
    };
    let mut events = Vec::with_capacity(2);
    // An attempt in flight (or cut short by a crash) ends here, its outcome unknown.
    let interrupted = delivery.outcome_pending;
    if interrupted {
        events.push(JournalEvent::OutcomeUnknown {
            channel: id.channel,
            attempt: delivery.attempts,
        });
        delivery.outcome_pending = false;
    }
    let next = io_core::pec::after_receipt(&delivery, &receipt, windows, at);
    let changed = next.is_some() || interrupted;
    let delivery = next.unwrap_or(delivery);
    events.push(JournalEvent::ReceiptRecorded {
        channel: id.channel,
        receipt: receipt.kind,
        issued_at: receipt.issued_at,
        provider_id: receipt.provider_id.clone(),
        sha256: sha256_hex,
        signed_by: receipt.signer.clone(),
        state: delivery.state.clone(),
    });
    if changed {
        put_deliveries(&mut tx, &mut locked, std::slice::from_ref(&delivery), at).await?;
    }
    let seq = locked.journal_len() + events.len() as u64 - 1;
    append(&mut tx, &mut locked, at, &events).await?;
    sqlx::query("INSERT INTO evidence (message_id, sha256, seq, bytes) VALUES ($1, $2, $3, $4)")
        .bind(id_bytes(&id.message))
        .bind(sha256.to_vec())
        .bind(super::signed(seq))
        .bind(&receipt.raw)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    write_back(&mut tx, &locked).await?;
    tx.commit().await.map_err(backend)?;
    Ok(ReceiptOutcome::Recorded {
        service_id: locked.service_id,
        events,
    })
}

pub(super) async fn evidence(
    store: &PostgresStore,
    message: &MessageId,
) -> Result<Vec<Evidence>, StoreError> {
    sqlx::query("SELECT sha256, bytes FROM evidence WHERE message_id = $1 ORDER BY seq")
        .bind(id_bytes(message))
        .fetch_all(store.pool())
        .await
        .map_err(backend)?
        .iter()
        .map(|row| {
            Ok(Evidence {
                sha256: hex::encode(row.try_get::<&[u8], _>(0).map_err(backend)?),
                bytes: row.try_get(1).map_err(backend)?,
            })
        })
        .collect()
}

pub(super) async fn callback_cursor(
    store: &PostgresStore,
    message: &MessageId,
) -> Result<Option<CallbackCursor>, StoreError> {
    let outbox: Option<Option<String>> =
        sqlx::query_scalar("SELECT outbox::text FROM messages WHERE message_id = $1")
            .bind(id_bytes(message))
            .fetch_optional(store.pool())
            .await
            .map_err(backend)?;
    outbox
        .flatten()
        .map(|text| decode("callback outbox", &text))
        .transpose()
}

pub(super) async fn callback(
    store: &PostgresStore,
    record: CallbackRecord,
) -> Result<(), StoreError> {
    let CallbackRecord {
        task,
        cursor,
        retry_at,
        close,
        at,
    } = record;
    let mut tx = store.begin().await?;
    let mut locked = lock_for(&mut tx, &task).await?;
    if locked.outbox.is_none() {
        return Err(StoreError::LeaseLost {
            task: format!("{:?}", task.kind),
        });
    }
    let behind = cursor.acknowledged < locked.journal_len();
    let due = match retry_at {
        Some(retry_at) => Some(retry_at),
        // The journal grew while the task ran: go on at once.
        None if behind => Some(at),
        None => None,
    };
    locked.outbox = match due {
        None if close => None,
        _ => Some(cursor),
    };
    match due {
        Some(due) => {
            queue::put(&mut tx, &locked.id, callback_sub(), &locked.service_id, due).await?;
            locked.wake |= due <= at;
        }
        None => queue::remove(&mut tx, &locked.id, callback_sub()).await?,
    }
    write_back(&mut tx, &locked).await?;
    tx.commit().await.map_err(backend)
}

// -- Reads --------------------------------------------------------------------------------------

async fn read_delivery(
    conn: &mut PgConnection,
    id: &DeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    let body: Option<String> = sqlx::query_scalar(
        "SELECT body::text FROM deliveries WHERE message_id = $1 AND channel = $2",
    )
    .bind(id_bytes(&id.message))
    .bind(delivery_sub(id.channel))
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    body.map(|text| decode("delivery", &text)).transpose()
}

pub(super) async fn message(
    store: &PostgresStore,
    id: &MessageId,
) -> Result<Option<StoredMessage>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT body::text, status::text, updated_at FROM messages WHERE message_id = $1",
    )
    .bind(id_bytes(id))
    .fetch_optional(store.pool())
    .await
    .map_err(backend)?
    else {
        return Ok(None);
    };
    let message: Message = decode("message", row.try_get(0).map_err(backend)?)?;
    Ok(Some(StoredMessage {
        message,
        status: decode("message status", row.try_get(1).map_err(backend)?)?,
        updated_at: Timestamp::from_millis(row.try_get(2).map_err(backend)?),
    }))
}

pub(super) async fn delivery(
    store: &PostgresStore,
    id: &DeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    let mut conn = store.pool().acquire().await.map_err(backend)?;
    read_delivery(&mut conn, id).await
}

pub(super) async fn deliveries_of(
    store: &PostgresStore,
    message: &MessageId,
) -> Result<Vec<Delivery>, StoreError> {
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body::text FROM deliveries WHERE message_id = $1 ORDER BY channel",
    )
    .bind(id_bytes(message))
    .fetch_all(store.pool())
    .await
    .map_err(backend)?;
    bodies.iter().map(|text| decode("delivery", text)).collect()
}

fn message_ids(rows: Vec<Vec<u8>>) -> Result<Vec<MessageId>, StoreError> {
    rows.iter().map(|bytes| message_id(bytes)).collect()
}

pub(super) async fn inbox(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    before: Option<MessageId>,
    limit: usize,
) -> Result<Vec<MessageId>, StoreError> {
    let before = before.map_or_else(|| vec![0xff; 17], |id| id_bytes(&id));
    message_ids(
        sqlx::query_scalar(
            "SELECT message_id FROM inbox WHERE fiscal_code = $1 AND message_id < $2
             ORDER BY message_id DESC LIMIT $3",
        )
        .bind(fiscal_code.as_str())
        .bind(before)
        .bind(super::signed(limit as u64))
        .fetch_all(store.pool())
        .await
        .map_err(backend)?,
    )
}

pub(super) async fn inbox_contains(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    message: &MessageId,
) -> Result<bool, StoreError> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM inbox WHERE fiscal_code = $1 AND message_id = $2")
            .bind(fiscal_code.as_str())
            .bind(id_bytes(message))
            .fetch_optional(store.pool())
            .await
            .map_err(backend)?;
    Ok(found.is_some())
}

pub(super) async fn messages_to(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    after: Option<MessageId>,
    limit: usize,
) -> Result<Vec<MessageId>, StoreError> {
    // Below every id: the empty byte string.
    let after = after.map_or_else(Vec::new, |id| id_bytes(&id));
    message_ids(
        sqlx::query_scalar(
            "SELECT message_id FROM messages WHERE fiscal_code = $1 AND message_id > $2
             ORDER BY message_id LIMIT $3",
        )
        .bind(fiscal_code.as_str())
        .bind(after)
        .bind(super::signed(limit as u64))
        .fetch_all(store.pool())
        .await
        .map_err(backend)?,
    )
}

pub(super) async fn journal(
    store: &PostgresStore,
    message: &MessageId,
) -> Result<StoredJournal, StoreError> {
    // One snapshot: the entries and the head agree.
    let mut tx = store.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let head = sqlx::query(
        "SELECT head_seq, head_hash FROM messages WHERE message_id = $1 AND head_seq IS NOT NULL
         UNION ALL
         SELECT head_seq, head_hash FROM erased_heads WHERE message_id = $1",
    )
    .bind(id_bytes(message))
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?
    .map(|row| -> Result<JournalHead, StoreError> {
        Ok(JournalHead {
            seq: super::unsigned(row.try_get(0).map_err(backend)?),
            hash: row.try_get(1).map_err(backend)?,
        })
    })
    .transpose()?;
    let entries: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT entry FROM journal WHERE message_id = $1 ORDER BY seq")
            .bind(id_bytes(message))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(StoredJournal { entries, head })
}

pub(super) async fn purge_idempotency(
    store: &PostgresStore,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let purged = sqlx::query("DELETE FROM idempotency WHERE expires_at <= $1")
        .bind(millis(now))
        .execute(store.pool())
        .await
        .map_err(backend)?;
    Ok(purged.rows_affected())
}
