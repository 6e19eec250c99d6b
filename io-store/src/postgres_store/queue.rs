//! The task queue on PostgreSQL: one row per task, shared by every process on the database.
//!
//! A task's `sub` says what it is: 0 processes the message, a channel's code delivers to it, 9
//! calls the sender back; per service, tasks are taken by due time, then message, then sub, so
//! a message's deliveries are claimed together. A claim moves the row's due time to the
//! lease's end and gives it a new token from a sequence: the row is due again by itself if the
//! worker dies, and a worker whose lease was taken over fails the token check of its commit.

use std::collections::HashSet;

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

/// The claims of `tasks` that still hold, as (message, sub, token), their rows locked until
/// commit (a claim cannot take them over meanwhile). Call with their messages' rows locked.
pub(super) async fn held_leases<'a>(
    conn: &mut PgConnection,
    tasks: impl IntoIterator<Item = &'a Task>,
) -> Result<HashSet<(MessageId, i16, i64)>, StoreError> {
    let mut messages = Vec::new();
    let mut subs = Vec::new();
    let mut tokens = Vec::new();
    for task in tasks {
        messages.push(id_bytes(&task.kind.message()));
        subs.push(sub_of(&task.kind));
        tokens.push(signed(task.lease.token));
    }
    let rows = sqlx::query(
        "SELECT t.message_id, t.sub, t.token FROM tasks t
         JOIN unnest($1::bytea[], $2::smallint[], $3::bigint[]) AS k(m, s, token)
             ON t.message_id = k.m AND t.sub = k.s AND t.token = k.token
         FOR UPDATE OF t",
    )
    .bind(&messages)
    .bind(&subs)
    .bind(&tokens)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|row| {
            Ok((
                message_id(row.try_get::<&[u8], _>(0).map_err(backend)?)?,
                row.try_get(1).map_err(backend)?,
                row.try_get(2).map_err(backend)?,
            ))
        })
        .collect()
}

/// The key of `task`'s claim in [`held_leases`].
pub(super) fn claim_key(task: &Task) -> (MessageId, i16, i64) {
    (
        task.kind.message(),
        sub_of(&task.kind),
        signed(task.lease.token),
    )
}

/// The error of a task whose claim was taken over (or whose message is gone).
pub(super) fn lease_lost(task: &Task) -> StoreError {
    StoreError::LeaseLost {
        task: format!("{:?}", task.kind),
    }
}

/// At most one `NOTIFY` per [`NOTICE_INTERVAL`] from a process. A transaction that ran
/// `NOTIFY` takes a database-wide lock at commit and holds it through its WAL flush, so a
/// notice in every accept would serialize the commits of every process. A write that would
/// notify within the interval of the last notice sends none; one notice of its own then follows
/// at the interval's end, so the other processes (and an accept-only process's peers) hear of
/// every write at most [`NOTICE_INTERVAL`] late, and a woken worker claims until the queue is
/// empty.
pub(crate) struct NoticeThrottle {
    started: std::time::Instant,
    /// Milliseconds from `started` to the last notice, plus one (0: none yet).
    last: std::sync::atomic::AtomicU64,
    /// Whether a notice is scheduled for the end of the interval.
    deferred: std::sync::atomic::AtomicBool,
    pool: sqlx::PgPool,
}

/// The least time between two notices of one process.
pub(crate) const NOTICE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

impl NoticeThrottle {
    pub(crate) fn new(pool: sqlx::PgPool) -> Self {
        Self {
            started: std::time::Instant::now(),
            last: std::sync::atomic::AtomicU64::new(0),
            deferred: std::sync::atomic::AtomicBool::new(false),
            pool,
        }
    }

    /// Whether a write that queued work due at once notifies in its own transaction; when not,
    /// a notice is scheduled for the end of the interval. A `true` counts as the notice sent.
    pub(crate) fn take(self: &std::sync::Arc<Self>) -> bool {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let last = self.last.load(Ordering::Relaxed);
        let interval = NOTICE_INTERVAL.as_millis() as u64;
        if (last == 0 || now >= last + interval)
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return true;
        }
        if !self.deferred.swap(true, Ordering::Relaxed) {
            let throttle = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(NOTICE_INTERVAL).await;
                throttle.deferred.store(false, Ordering::Relaxed);
                // After the writes that asked for it were committed (they committed within
                // the interval, or failed). Lost only if the database is down: the workers'
                // poll remains.
                let _ = sqlx::query("SELECT pg_notify($1, '')")
                    .bind(WORK_CHANNEL)
                    .execute(&throttle.pool)
                    .await;
            });
        }
        false
    }
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
