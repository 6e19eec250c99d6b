//! The database schema and its migrations, embedded in the binary and run at start-up.
//!
//! Each migration runs once, in its own transaction, under an advisory lock: several processes
//! starting together on one database apply it once. Text keys are compared byte for byte
//! (`COLLATE "C"`), the order the `Store` trait's listings promise whatever the database's
//! locale. Times are milliseconds since the epoch (`bigint`), as the engine gives them: the
//! store never reads the database's clock. Records the domain defines (a service, a profile, a
//! delivery) are kept as `jsonb` beside the columns that are searched, ordered or unique.

use sqlx::{Executor, PgPool};

use io_core::StoreError;

use super::backend;

/// A migration: its version (applied in order, never edited once released) and its SQL.
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "the io store",
        sql: r#"
-- Reference data -------------------------------------------------------------------------------
CREATE TABLE services (
    service_id  text COLLATE "C" PRIMARY KEY,
    version     bigint NOT NULL,
    body        jsonb NOT NULL
);
CREATE TABLE service_access (
    service_id  text COLLATE "C" PRIMARY KEY,
    version     bigint NOT NULL,
    body        jsonb NOT NULL
);
-- The keys in force, by hash: a key authenticates while its hash is here.
CREATE TABLE api_keys (
    key_hash    bytea PRIMARY KEY,
    service_id  text COLLATE "C" NOT NULL,
    body        jsonb NOT NULL
);
CREATE INDEX api_keys_by_service ON api_keys (service_id);
CREATE TABLE callback_targets (
    service_id  text COLLATE "C" PRIMARY KEY,
    body        jsonb NOT NULL
);

-- Citizens -------------------------------------------------------------------------------------
CREATE TABLE profiles (
    fiscal_code text COLLATE "C" PRIMARY KEY,
    version     bigint NOT NULL,
    body        jsonb NOT NULL
);
-- A validated email address belongs to one citizen at a time (lower case).
CREATE TABLE validated_emails (
    email       text COLLATE "C" PRIMARY KEY,
    fiscal_code text COLLATE "C" NOT NULL
);
CREATE INDEX validated_emails_by_citizen ON validated_emails (fiscal_code);
CREATE TABLE preferences (
    fiscal_code      text COLLATE "C" NOT NULL,
    service_id       text COLLATE "C" NOT NULL,
    settings_version bigint NOT NULL,
    body             jsonb NOT NULL,
    PRIMARY KEY (fiscal_code, service_id, settings_version)
);
CREATE TABLE activations (
    service_id  text COLLATE "C" NOT NULL,
    fiscal_code text COLLATE "C" NOT NULL,
    version     bigint NOT NULL,
    body        jsonb NOT NULL,
    PRIMARY KEY (service_id, fiscal_code)
);
CREATE INDEX activations_by_citizen ON activations (fiscal_code, service_id);
CREATE TABLE installations (
    fiscal_code     text COLLATE "C" NOT NULL,
    installation_id text COLLATE "C" NOT NULL,
    body            jsonb NOT NULL,
    PRIMARY KEY (fiscal_code, installation_id)
);
CREATE TABLE message_flags (
    fiscal_code text COLLATE "C" NOT NULL,
    message_id  bytea NOT NULL,
    body        jsonb NOT NULL,
    PRIMARY KEY (fiscal_code, message_id)
);
-- The subscriptions feed: the day's last change per scope ('*': every service) and citizen.
CREATE TABLE feed (
    day         bigint NOT NULL,
    scope       text COLLATE "C" NOT NULL,
    citizen     text COLLATE "C" NOT NULL,
    subscribed  boolean NOT NULL,
    PRIMARY KEY (day, scope, citizen)
);

-- Messages -------------------------------------------------------------------------------------
-- The message (body, written once) with what changes: status, journal head, callback outbox.
CREATE TABLE messages (
    message_id  bytea PRIMARY KEY,
    service_id  text COLLATE "C" NOT NULL,
    fiscal_code text COLLATE "C" NOT NULL,
    body        jsonb NOT NULL,
    -- {"status": "REJECTED", "rejection_reason": ...} as the API shows it.
    status      jsonb NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    head_seq    bigint,
    head_hash   text,
    outbox      jsonb
);
CREATE INDEX messages_by_recipient ON messages (fiscal_code, message_id);
CREATE TABLE inbox (
    fiscal_code text COLLATE "C" NOT NULL,
    message_id  bytea NOT NULL,
    PRIMARY KEY (fiscal_code, message_id)
);
CREATE TABLE idempotency (
    service_id   text COLLATE "C" NOT NULL,
    key          text COLLATE "C" NOT NULL,
    message_id   bytea NOT NULL,
    content_hash text NOT NULL,
    expires_at   bigint NOT NULL,
    PRIMARY KEY (service_id, key)
);
CREATE INDEX idempotency_by_expiry ON idempotency (expires_at);
CREATE TABLE deliveries (
    message_id  bytea NOT NULL,
    channel     smallint NOT NULL,
    body        jsonb NOT NULL,
    PRIMARY KEY (message_id, channel)
);
-- Journal entries, canonical bytes, written once. Kept when the message is erased.
CREATE TABLE journal (
    message_id  bytea NOT NULL,
    seq         bigint NOT NULL,
    entry       bytea NOT NULL,
    PRIMARY KEY (message_id, seq)
);
-- The journal head of an erased message: its evidence outlives it.
CREATE TABLE erased_heads (
    message_id  bytea PRIMARY KEY,
    head_seq    bigint NOT NULL,
    head_hash   text NOT NULL
);
-- PEC receipts kept as evidence, byte for byte, named by SHA-256.
CREATE TABLE evidence (
    message_id  bytea NOT NULL,
    sha256      bytea NOT NULL,
    seq         bigint NOT NULL,
    bytes       bytea NOT NULL,
    PRIMARY KEY (message_id, sha256)
);

-- The task queue ---------------------------------------------------------------------------------
-- One row per task: sub 0 processes the message, a channel code delivers to that channel, 9
-- calls the sender back. A leased task is due at its lease's end (a dead worker's tasks come
-- back by themselves); `token` fences the late writes of a worker whose lease was taken over.
CREATE TABLE tasks (
    message_id  bytea NOT NULL,
    sub         smallint NOT NULL,
    service_id  text COLLATE "C" NOT NULL,
    due_at      bigint NOT NULL,
    token       bigint,
    PRIMARY KEY (message_id, sub)
);
CREATE INDEX tasks_by_service ON tasks (service_id, due_at, message_id, sub);
CREATE INDEX tasks_by_due ON tasks (due_at);
CREATE SEQUENCE lease_tokens;

-- GDPR -----------------------------------------------------------------------------------------
CREATE TABLE data_requests (
    fiscal_code text COLLATE "C" NOT NULL,
    -- The choice's code: 68 ('D') to download, 88 ('X') to delete.
    choice      smallint NOT NULL,
    body        jsonb NOT NULL,
    -- While the request is open: when it is due.
    open_due_at bigint,
    PRIMARY KEY (fiscal_code, choice)
);
CREATE INDEX data_requests_due ON data_requests (open_due_at, fiscal_code, choice)
    WHERE open_due_at IS NOT NULL;
"#,
    },
    Migration {
        version: 2,
        description: "services managed by their institutions",
        sql: r#"
-- A managed service's draft, review status and publication; listed by institution.
CREATE TABLE service_lifecycles (
    service_id   text COLLATE "C" PRIMARY KEY,
    organization text COLLATE "C" NOT NULL,
    version      bigint NOT NULL,
    body         jsonb NOT NULL
);
CREATE INDEX service_lifecycles_by_organization ON service_lifecycles (organization, service_id);
-- Its history, in order.
CREATE TABLE service_history (
    service_id text COLLATE "C" NOT NULL,
    seq        bigint NOT NULL,
    body       jsonb NOT NULL,
    PRIMARY KEY (service_id, seq)
);
"#,
    },
    Migration {
        version: 3,
        description: "logos of services and institutions",
        sql: r#"
-- A logo: the PNG checked at upload, by its owner ('service' or 'organization') and id.
CREATE TABLE logos (
    owner_kind text COLLATE "C" NOT NULL CHECK (owner_kind IN ('service', 'organization')),
    owner_id   text COLLATE "C" NOT NULL,
    updated_at bigint NOT NULL,
    png        bytea NOT NULL,
    PRIMARY KEY (owner_kind, owner_id)
);
"#,
    },
    Migration {
        version: 4,
        description: "remote-content configurations",
        sql: r#"
-- Where a sender keeps its messages' details; listed by institution.
CREATE TABLE remote_content_configurations (
    configuration_id text COLLATE "C" PRIMARY KEY,
    organization     text COLLATE "C" NOT NULL,
    version          bigint NOT NULL,
    body             jsonb NOT NULL
);
CREATE INDEX remote_content_configurations_by_organization
    ON remote_content_configurations (organization, configuration_id);
"#,
    },
];

/// The advisory lock key under which migrations run ("io" in ASCII, then a version).
const MIGRATION_LOCK: i64 = 0x696f_0001;

/// Applies the migrations this version knows and the database lacks, in order.
pub(super) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS io_migrations (
            version     bigint PRIMARY KEY,
            description text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(backend)?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM io_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
    if let Some(newer) = applied
        .iter()
        .find(|v| !MIGRATIONS.iter().any(|m| m.version == **v))
    {
        return Err(StoreError::Corrupt {
            what: "schema",
            detail: format!(
                "the database was migrated by a newer version of io (migration {newer}); run that version"
            ),
        });
    }
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            continue;
        }
        tracing::info!(
            version = migration.version,
            description = migration.description,
            "applying database migration"
        );
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("INSERT INTO io_migrations (version, description) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(migration.description)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}
