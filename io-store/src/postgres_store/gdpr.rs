//! GDPR requests and the erasure of a citizen on PostgreSQL.
//!
//! A request is one row per citizen and choice; while open it carries its due time in an
//! indexed column, so the worker reads exactly the open requests that are due, earliest first.
//! The erasure is one transaction that locks the citizen's messages first (the order every
//! pipeline write takes), so a worker committing a task of one of them waits, then finds the
//! task gone and writes nothing (`LeaseLost`).

use io_core::{
    Choice, DataRequest, DueRequest, Erasure, ErasureReport, FeedEvent, FeedScope, FiscalCode,
    StoreError, Subscription, Timestamp,
};
use sqlx::{PgConnection, Row};

use super::records::feed_in;
use super::{PostgresStore, backend, decode, encode, millis};

/// The stored code of a choice (the sled store's, so both order requests alike).
fn choice_code(choice: Choice) -> i16 {
    match choice {
        Choice::Download => i16::from(b'D'),
        Choice::Delete => i16::from(b'X'),
    }
}

async fn request_in(
    conn: &mut PgConnection,
    fiscal_code: &FiscalCode,
    choice: Choice,
    for_update: bool,
) -> Result<Option<DataRequest>, StoreError> {
    let sql = if for_update {
        "SELECT body::text FROM data_requests WHERE fiscal_code = $1 AND choice = $2 FOR UPDATE"
    } else {
        "SELECT body::text FROM data_requests WHERE fiscal_code = $1 AND choice = $2"
    };
    let body: Option<String> = sqlx::query_scalar(sql)
        .bind(fiscal_code.as_str())
        .bind(choice_code(choice))
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    body.map(|text| decode("data request", &text)).transpose()
}

/// Writes (or, with `None`, removes) a request and its due time while open.
async fn put_request_in(
    conn: &mut PgConnection,
    fiscal_code: &FiscalCode,
    choice: Choice,
    request: Option<&DataRequest>,
) -> Result<u64, StoreError> {
    let done = match request {
        Some(request) => sqlx::query(
            "INSERT INTO data_requests (fiscal_code, choice, body, open_due_at)
             VALUES ($1, $2, $3::jsonb, $4)
             ON CONFLICT (fiscal_code, choice)
             DO UPDATE SET body = excluded.body, open_due_at = excluded.open_due_at",
        )
        .bind(fiscal_code.as_str())
        .bind(choice_code(choice))
        .bind(encode(request))
        .bind(request.is_open().then(|| millis(request.due_at))),
        None => sqlx::query("DELETE FROM data_requests WHERE fiscal_code = $1 AND choice = $2")
            .bind(fiscal_code.as_str())
            .bind(choice_code(choice)),
    }
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(done.rows_affected())
}

pub(super) async fn data_request(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    choice: Choice,
) -> Result<Option<DataRequest>, StoreError> {
    let mut conn = store.pool().acquire().await.map_err(backend)?;
    request_in(&mut conn, fiscal_code, choice, false).await
}

pub(super) async fn swap_data_request(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    choice: Choice,
    expected: Option<&DataRequest>,
    new: Option<&DataRequest>,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let current = request_in(&mut tx, fiscal_code, choice, true).await?;
    if current.as_ref() != expected {
        return Ok(false);
    }
    if current.is_none() {
        let Some(new) = new else {
            return Ok(true);
        };
        // No row to lock: a concurrent swap from "absent" may insert first, and then wins.
        let inserted = sqlx::query(
            "INSERT INTO data_requests (fiscal_code, choice, body, open_due_at)
             VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT DO NOTHING",
        )
        .bind(fiscal_code.as_str())
        .bind(choice_code(choice))
        .bind(encode(new))
        .bind(new.is_open().then(|| millis(new.due_at)))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if inserted.rows_affected() == 0 {
            return Ok(false);
        }
    } else {
        put_request_in(&mut tx, fiscal_code, choice, new).await?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(true)
}

pub(super) async fn due_data_requests(
    store: &PostgresStore,
    now: Timestamp,
    after: Option<&DueRequest>,
    limit: usize,
) -> Result<Vec<DueRequest>, StoreError> {
    let (after_due, after_citizen, after_choice) = match after {
        Some(after) => (
            millis(after.request.due_at),
            after.fiscal_code.as_str().to_string(),
            choice_code(after.request.choice),
        ),
        None => (i64::MIN, String::new(), i16::MIN),
    };
    let rows = sqlx::query(
        "SELECT fiscal_code, body::text FROM data_requests
         WHERE open_due_at IS NOT NULL AND open_due_at <= $1
           AND (open_due_at, fiscal_code, choice) > ($2, $3, $4)
         ORDER BY open_due_at, fiscal_code, choice
         LIMIT $5",
    )
    .bind(millis(now))
    .bind(after_due)
    .bind(after_citizen)
    .bind(after_choice)
    .bind(super::signed(limit as u64))
    .fetch_all(store.pool())
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|row| {
            let fiscal_code = FiscalCode::parse(row.try_get::<&str, _>(0).map_err(backend)?)
                .map_err(|e| StoreError::Corrupt {
                    what: "data requests",
                    detail: e.to_string(),
                })?;
            Ok(DueRequest {
                fiscal_code,
                request: decode("data request", row.try_get(1).map_err(backend)?)?,
            })
        })
        .collect()
}

/// Runs `sql` (a fixed statement) for the citizen; returns the rows it touched.
async fn delete_all(
    conn: &mut PgConnection,
    sql: &'static str,
    fiscal_code: &FiscalCode,
) -> Result<u64, StoreError> {
    let done = sqlx::query(sql)
        .bind(fiscal_code.as_str())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(done.rows_affected())
}

/// Runs `sql` (a fixed statement) for the messages; returns the rows it touched.
async fn for_messages(
    conn: &mut PgConnection,
    sql: &'static str,
    messages: &[Vec<u8>],
) -> Result<u64, StoreError> {
    let done = sqlx::query(sql)
        .bind(messages)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(done.rows_affected())
}

pub(super) async fn erase_citizen(
    store: &PostgresStore,
    erasure: &Erasure,
) -> Result<ErasureReport, StoreError> {
    let fiscal_code = &erasure.fiscal_code;
    let mut report = ErasureReport::default();
    let mut tx = store.begin().await?;
    let messages: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT message_id FROM messages WHERE fiscal_code = $1 ORDER BY message_id FOR UPDATE",
    )
    .bind(fiscal_code.as_str())
    .fetch_all(&mut *tx)
    .await
    .map_err(backend)?;
    report.profile = delete_all(
        &mut tx,
        "DELETE FROM profiles WHERE fiscal_code = $1",
        fiscal_code,
    )
    .await?
        > 0;
    delete_all(
        &mut tx,
        "DELETE FROM validated_emails WHERE fiscal_code = $1",
        fiscal_code,
    )
    .await?;
    report.preferences = delete_all(
        &mut tx,
        "DELETE FROM preferences WHERE fiscal_code = $1",
        fiscal_code,
    )
    .await?;
    report.activations = delete_all(
        &mut tx,
        "DELETE FROM activations WHERE fiscal_code = $1",
        fiscal_code,
    )
    .await?;
    report.installations = delete_all(
        &mut tx,
        "DELETE FROM installations WHERE fiscal_code = $1",
        fiscal_code,
    )
    .await?;
    report.flags = delete_all(
        &mut tx,
        "DELETE FROM message_flags WHERE fiscal_code = $1",
        fiscal_code,
    )
    .await?;
    put_request_in(&mut tx, fiscal_code, Choice::Download, None).await?;
    delete_all(
        &mut tx,
        "DELETE FROM inbox WHERE fiscal_code = $1",
        fiscal_code,
    )
    .await?;
    if !messages.is_empty() {
        report.messages = messages.len() as u64;
        report.deliveries = for_messages(
            &mut tx,
            "DELETE FROM deliveries WHERE message_id = ANY($1)",
            &messages,
        )
        .await?;
        report.tasks = for_messages(
            &mut tx,
            "DELETE FROM tasks WHERE message_id = ANY($1)",
            &messages,
        )
        .await?;
        // The journals stay, with their heads: they name the citizen only by hash.
        for_messages(
            &mut tx,
            "INSERT INTO erased_heads (message_id, head_seq, head_hash)
             SELECT message_id, head_seq, head_hash FROM messages
             WHERE message_id = ANY($1) AND head_seq IS NOT NULL
             ON CONFLICT (message_id) DO NOTHING",
            &messages,
        )
        .await?;
        for_messages(
            &mut tx,
            "DELETE FROM messages WHERE message_id = ANY($1)",
            &messages,
        )
        .await?;
    }
    if report.profile {
        feed_in(
            &mut tx,
            &FeedEvent {
                at: erasure.at,
                scope: FeedScope::AllServices,
                citizen: fiscal_code.hash(),
                change: Subscription::Unsubscribed,
            },
        )
        .await?;
    }
    if let Some(closed) = &erasure.closes {
        put_request_in(&mut tx, fiscal_code, Choice::Delete, Some(closed)).await?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(report)
}
