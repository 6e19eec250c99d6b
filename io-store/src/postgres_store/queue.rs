//! The task queue on PostgreSQL: one row per task, shared by every process on the database.
//!
//! A task's `sub` says what it is: 0 processes the message, a channel's code delivers to it, 9
//! calls the sender back; per service, tasks are taken by due time, then message, then sub, so
//! a message's deliveries are claimed together. A claim moves the row's due time to the
//! lease's end and gives it a new token from a sequence: the row is due again by itself if the
//! worker dies, and a worker whose lease was taken over fails the token check of its commit.

use io_core::{
    ChannelKind, DeliveryId, Lease, MessageId, ServiceId, StoreError, Task, TaskKind, Timestamp,
};
use sqlx::{PgConnection, Row};

use super::{PostgresStore, WORK_CHANNEL, backend, id_bytes, message_id, millis, signed};

/// The `sub` of a process task.
const SUB_PROCESS: i16 = 0;
/// The `sub` of a callback task.
const SUB_CALLBACK: i16 = 9;

/// A task's `sub`.
pub(super) fn sub_of(kind: &TaskKind) -> i16 {
    match kind {
        TaskKind::Process(_) => SUB_PROCESS,
        TaskKind::Deliver(id) => i16::from(id.channel.code()),
        TaskKind::Callback(_) => SUB_CALLBACK,
    }
}

/// The `sub` of a deliver task to `channel`.
pub(super) fn delivery_sub(channel: ChannelKind) -> i16 {
    i16::from(channel.code())
}

/// The `sub` of a callback task.
pub(super) const fn callback_sub() -> i16 {
    SUB_CALLBACK
}

/// The `sub` of a process task.
pub(super) const fn process_sub() -> i16 {
    SUB_PROCESS
}

fn kind_of(message: MessageId, sub: i16) -> Result<TaskKind, StoreError> {
    match sub {
        SUB_PROCESS => Ok(TaskKind::Process(message)),
        SUB_CALLBACK => Ok(TaskKind::Callback(message)),
        code => u8::try_from(code)
            .ok()
            .and_then(ChannelKind::from_code)
            .map(|channel| TaskKind::Deliver(DeliveryId::new(message, channel)))
            .ok_or_else(|| StoreError::Corrupt {
                what: "tasks",
                detail: format!("unknown task sub {code}"),
            }),
    }
}

/// `LeaseLost` unless `task` still holds its claim. Call with the message's row locked.
pub(super) async fn check_lease(conn: &mut PgConnection, task: &Task) -> Result<(), StoreError> {
    let token: Option<Option<i64>> =
        sqlx::query_scalar("SELECT token FROM tasks WHERE message_id = $1 AND sub = $2 FOR UPDATE")
            .bind(id_bytes(&task.kind.message()))
            .bind(sub_of(&task.kind))
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    if token.flatten() == Some(signed(task.lease.token)) {
        Ok(())
    } else {
        Err(StoreError::LeaseLost {
            task: format!("{:?}", task.kind),
        })
    }
}

/// Queues a task at `due`, or moves it there, releasing any lease.
pub(super) async fn put(
    conn: &mut PgConnection,
    message: &MessageId,
    sub: i16,
    service: &ServiceId,
    due: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tasks (message_id, sub, service_id, due_at, token) VALUES ($1, $2, $3, $4, NULL)
         ON CONFLICT (message_id, sub) DO UPDATE SET due_at = excluded.due_at, token = NULL",
    )
    .bind(id_bytes(message))
    .bind(sub)
    .bind(service.as_str())
    .bind(millis(due))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Removes a task (absent is fine).
pub(super) async fn remove(
    conn: &mut PgConnection,
    message: &MessageId,
    sub: i16,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM tasks WHERE message_id = $1 AND sub = $2")
        .bind(id_bytes(message))
        .bind(sub)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Wakes the idle workers of every process at this transaction's commit.
pub(super) async fn wake(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WORK_CHANNEL)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(super) async fn due_services(
    store: &PostgresStore,
    now: Timestamp,
    after: Option<&ServiceId>,
    limit: usize,
) -> Result<Vec<ServiceId>, StoreError> {
    // A loose index scan: one index probe per service queued, not one row per task.
    let rows: Vec<String> = sqlx::query_scalar(
        "WITH RECURSIVE queued AS (
             (SELECT service_id FROM tasks WHERE service_id > $1 ORDER BY service_id LIMIT 1)
             UNION ALL
             SELECT (SELECT t.service_id FROM tasks t WHERE t.service_id > q.service_id
                     ORDER BY t.service_id LIMIT 1)
             FROM queued q WHERE q.service_id IS NOT NULL
         )
         SELECT q.service_id FROM queued q
         WHERE q.service_id IS NOT NULL
           AND EXISTS (SELECT 1 FROM tasks t WHERE t.service_id = q.service_id AND t.due_at <= $2)
         LIMIT $3",
    )
    .bind(after.map_or("", |a| a.as_str()))
    .bind(millis(now))
    .bind(signed(limit as u64))
    .fetch_all(store.pool())
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|id| {
            ServiceId::parse(id).map_err(|e| StoreError::Corrupt {
                what: "tasks",
                detail: e.to_string(),
            })
        })
        .collect()
}

pub(super) async fn claim(
    store: &PostgresStore,
    services: &[ServiceId],
    now: Timestamp,
    per_service: usize,
    lease_until: Timestamp,
) -> Result<Vec<Task>, StoreError> {
    if services.is_empty() || per_service == 0 {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = services.iter().map(ServiceId::as_str).collect();
    // Rows another process is claiming are skipped, not waited for.
    let rows = sqlx::query(
        "WITH picked AS (
             SELECT t.message_id, t.sub, t.due_at
             FROM unnest($1::text[]) AS s(service_id)
             CROSS JOIN LATERAL (
                 SELECT message_id, sub, due_at FROM tasks
                 WHERE tasks.service_id = s.service_id AND tasks.due_at <= $2
                 ORDER BY due_at, message_id, sub
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED
             ) t
         )
         UPDATE tasks SET due_at = $4, token = nextval('lease_tokens')
         FROM picked
         WHERE tasks.message_id = picked.message_id AND tasks.sub = picked.sub
         RETURNING tasks.service_id, tasks.message_id, tasks.sub, tasks.token, picked.due_at",
    )
    .bind(&names)
    .bind(millis(now))
    .bind(signed(per_service as u64))
    .bind(millis(lease_until))
    .fetch_all(store.pool())
    .await
    .map_err(backend)?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let service: &str = row.try_get(0).map_err(backend)?;
        let service_id = ServiceId::parse(service).map_err(|e| StoreError::Corrupt {
            what: "tasks",
            detail: e.to_string(),
        })?;
        let message = message_id(row.try_get::<&[u8], _>(1).map_err(backend)?)?;
        let kind = kind_of(message, row.try_get(2).map_err(backend)?)?;
        let token: i64 = row.try_get(3).map_err(backend)?;
        let was_due: i64 = row.try_get(4).map_err(backend)?;
        let order = names
            .iter()
            .position(|n| *n == service)
            .unwrap_or(usize::MAX);
        claimed.push((
            (order, was_due, message, sub_of(&kind)),
            Task {
                service_id,
                kind,
                lease: Lease {
                    until: lease_until,
                    token: u64::try_from(token).unwrap_or(0),
                },
            },
        ));
    }
    claimed.sort_by_key(|(order, _)| *order);
    Ok(claimed.into_iter().map(|(_, task)| task).collect())
}

pub(super) async fn discard(store: &PostgresStore, task: &Task) -> Result<(), StoreError> {
    let removed =
        sqlx::query("DELETE FROM tasks WHERE message_id = $1 AND sub = $2 AND token = $3")
            .bind(id_bytes(&task.kind.message()))
            .bind(sub_of(&task.kind))
            .bind(signed(task.lease.token))
            .execute(store.pool())
            .await
            .map_err(backend)?;
    if removed.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::LeaseLost {
            task: format!("{:?}", task.kind),
        })
    }
}

pub(super) async fn next_due_at(store: &PostgresStore) -> Result<Option<Timestamp>, StoreError> {
    let due: Option<i64> = sqlx::query_scalar("SELECT min(due_at) FROM tasks")
        .fetch_one(store.pool())
        .await
        .map_err(backend)?;
    Ok(due.map(Timestamp::from_millis))
}

pub(super) async fn backlog(store: &PostgresStore) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks")
        .fetch_one(store.pool())
        .await
        .map_err(backend)?;
    Ok(u64::try_from(count).unwrap_or(0))
}
