//! The pipeline's writes on PostgreSQL — accept, decisions, attempt starts, outcomes with the
//! channels' effects, receipts, callback progress — and the message reads.
//!
//! Every write of a task's result locks its message's row first (a batch locks all its
//! messages at once, in id order, so two batches cannot deadlock), checks the task's token,
//! and only then writes; a record whose lease was lost writes nothing and fails alone. The
//! message's row holds its journal head, so appends to one journal are serialized by that lock
//! and the chain has no gap or fork whichever process writes. A batch's writes are gathered
//! and sent together at its end ([`Writes`]): one statement per table, whatever its size.

use io_core::{
    AcceptOutcome, AcceptRecord, AttemptStart, CallbackCursor, CallbackRecord, Delivery,
    DeliveryId, DeliveryRecord, Effect, Evidence, FiscalCode, Installation, JournalEvent,
    JournalHead, Message, MessageId, MessageStatus, ProcessRecord, Profile, ReceiptOutcome,
    ReceiptRecord, StoreError, StoredJournal, StoredMessage, Task, Timestamp,
};
use sqlx::{PgConnection, Row};

use super::queue::{self, callback_sub, delivery_sub, lease_lost, process_sub};
use super::writes::{Locked, Writes, lock_rows};
use super::{PostgresStore, backend, decode, encode, id_bytes, message_id, millis};

/// The locked row of a task's message; `LeaseLost` when it is gone or the lease was taken over.
async fn lock_for(conn: &mut PgConnection, task: &Task) -> Result<Locked, StoreError> {
    let message = task.kind.message();
    let mut rows = lock_rows(conn, [message]).await?;
    let held = queue::held_leases(conn, [task]).await?;
    match rows.remove(&message) {
        Some(locked) if held.contains(&queue::claim_key(task)) => Ok(locked),
        _ => Err(lease_lost(task)),
    }
}

pub(super) async fn accept(
    store: &PostgresStore,
    record: AcceptRecord,
) -> Result<AcceptOutcome, StoreError> {
    let message = &record.message;
    let created_at = message.created_at;
    let mut locked = Locked::new(
        message,
        record.status,
        record.open_callbacks.then(CallbackCursor::default),
    );
    let mut writes = Writes::default();
    if record.status == MessageStatus::Accepted {
        writes.queue(&locked, process_sub(), created_at, created_at);
    }
    writes.put_deliveries(&locked, &record.deliveries, created_at);
    writes.append(&mut locked, created_at, &record.events);
    if record.into_inbox {
        writes.list_in_inbox(&message.body.fiscal_code, message.id);
    }
    let Some((key, expires_at)) = &record.idempotency else {
        // One statement, atomic on its own: no transaction to open and commit.
        let mut conn = store.pool().acquire().await.map_err(backend)?;
        writes.flush(&mut conn, [&locked], store.notices()).await?;
        return Ok(AcceptOutcome::Created);
    };
    let mut tx = store.begin().await?;
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
    writes.flush(&mut tx, [&locked], store.notices()).await?;
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
    fn task(&self) -> &Task {
        match self {
            Self::Process(record) => &record.task,
            Self::Start(start) => &start.task,
            Self::Deliver(record) => &record.task,
        }
    }

    /// Applies the record to its message's locked row; only a channel's effects write at once,
    /// everything else is gathered in `writes`.
    async fn apply(
        self,
        conn: &mut PgConnection,
        locked: &mut Locked,
        writes: &mut Writes,
    ) -> Result<(), StoreError> {
        match self {
            Self::Process(record) => {
                writes.unqueue(locked.id, process_sub());
                if locked.status != record.status {
                    locked.status = record.status;
                    locked.updated_at = record.at;
                    locked.changed();
                }
                writes.put_deliveries(locked, &record.deliveries, record.at);
                writes.append(locked, record.at, &record.events);
                if record.into_inbox {
                    writes.list_in_inbox(&record.message.body.fiscal_code, locked.id);
                }
            }
            Self::Start(start) => {
                // The delivery as counted, its outcome pending until the channel answers: after
                // a crash the next claim finds it so and records the outcome unknown.
                writes.put_delivery(&start.delivery);
                if let Some(event) = &start.event {
                    writes.append(locked, start.at, std::slice::from_ref(event));
                }
            }
            Self::Deliver(record) => {
                for effect in &record.effects {
                    apply_effect(conn, &record.delivery.fiscal_code, effect).await?;
                }
                writes.put_deliveries(locked, std::slice::from_ref(&record.delivery), record.at);
                writes.append(locked, record.at, &record.events);
            }
        }
        Ok(())
    }
}

/// Applies each record in one transaction (one commit, one WAL flush for the batch), each
/// failing alone: a record whose lease was lost writes nothing, since the leases are checked
/// before any write. A failure of the database itself fails them all.
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
        let mut rows = lock_rows(&mut tx, batch.iter().map(|w| w.task().kind.message())).await?;
        let mut held = queue::held_leases(&mut tx, batch.iter().map(Work::task)).await?;
        let mut writes = Writes::default();
        let mut results = Vec::with_capacity(count);
        for work in batch {
            let task = work.task();
            let key = queue::claim_key(task);
            let is_held = held.contains(&key);
            // A decision or an outcome releases (or ends) its claim: a second record with the
            // same claim in the batch finds it gone, as it would in a transaction of its own.
            // An attempt start keeps it.
            if !matches!(work, Work::Start(_)) {
                held.remove(&key);
            }
            let locked = rows.get_mut(&task.kind.message()).filter(|_| is_held);
            let Some(locked) = locked else {
                results.push(Err(lease_lost(task)));
                continue;
            };
            work.apply(&mut tx, locked, &mut writes).await?;
            results.push(Ok(()));
        }
        writes
            .flush(&mut tx, rows.values(), store.notices())
            .await?;
        tx.commit().await.map_err(backend)?;
        Ok(results)
    }
    .await;
    match outcome {
        Ok(results) => results,
        Err(error) => vec![Err(error); count],
    }
}

pub(super) async fn processes(
    store: &PostgresStore,
    records: Vec<ProcessRecord>,
) -> Vec<Result<(), StoreError>> {
    if records.is_empty() {
        return Vec::new();
    }
    let batch = records.into_iter().map(Work::Process).collect();
    each_in_one_transaction(store, batch, true).await
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
    let Some(mut locked) = lock_rows(&mut tx, [id.message]).await?.remove(&id.message) else {
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
    let mut writes = Writes::default();
    if changed {
        // Requeued at its next attempt: a lease held by an attempt in flight is released, so
        // that attempt's outcome cannot overwrite the receipt's.
        writes.put_deliveries(&locked, std::slice::from_ref(&delivery), at);
    }
    let seq = locked.journal_len() + events.len() as u64 - 1;
    writes.append(&mut locked, at, &events);
    sqlx::query("INSERT INTO evidence (message_id, sha256, seq, bytes) VALUES ($1, $2, $3, $4)")
        .bind(id_bytes(&id.message))
        .bind(sha256.to_vec())
        .bind(super::signed(seq))
        .bind(&receipt.raw)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    writes.flush(&mut tx, [&locked], store.notices()).await?;
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
        return Err(lease_lost(&task));
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
    locked.changed();
    let mut writes = Writes::default();
    match due {
        Some(due) => writes.queue(&locked, callback_sub(), due, at),
        None => writes.unqueue(locked.id, callback_sub()),
    }
    writes.flush(&mut tx, [&locked], store.notices()).await?;
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

pub(super) async fn deliveries_of_messages(
    store: &PostgresStore,
    messages: &[MessageId],
) -> Result<Vec<Delivery>, StoreError> {
    let ids: Vec<Vec<u8>> = messages.iter().map(id_bytes).collect();
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body::text FROM deliveries WHERE message_id = ANY($1) ORDER BY message_id, channel",
    )
    .bind(&ids)
    .fetch_all(store.pool())
    .await
    .map_err(backend)?;
    bodies.iter().map(|text| decode("delivery", text)).collect()
}

pub(super) async fn messages_by_id(
    store: &PostgresStore,
    ids: &[MessageId],
) -> Result<Vec<StoredMessage>, StoreError> {
    let bytes: Vec<Vec<u8>> = ids.iter().map(id_bytes).collect();
    let rows = sqlx::query(
        "SELECT body::text, status::text, updated_at FROM messages WHERE message_id = ANY($1)",
    )
    .bind(&bytes)
    .fetch_all(store.pool())
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|row| {
            Ok(StoredMessage {
                message: decode("message", row.try_get(0).map_err(backend)?)?,
                status: decode("message status", row.try_get(1).map_err(backend)?)?,
                updated_at: Timestamp::from_millis(row.try_get(2).map_err(backend)?),
            })
        })
        .collect()
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
