//! [`PostgresStore`]: the `Store` on PostgreSQL, for several io processes on one database.
//!
//! **Tables, not blobs.** Every record kind has its table (`postgres_store/schema.rs`), with
//! the uniqueness the trait promises as constraints (a validated email, an idempotency key)
//! and the versions of versioned records as columns checked in the same transaction that
//! writes. Each write method of the trait is one transaction, durable at commit.
//!
//! **A shared queue.** Tasks are rows (`postgres_store/queue.rs`); a claim takes due rows with
//! `FOR UPDATE SKIP LOCKED`, so any number of processes share the work without waiting for
//! each other, and a claimed row is due again at its lease's end, so a dead process's tasks
//! are taken over when its leases run out. Every write of a task's result first locks the
//! message's row, then checks that the task still holds the claim's token: a worker whose
//! lease was taken over writes nothing.
//!
//! **Wake-ups.** A write that queues work due at once sends `NOTIFY io_work`; each store
//! listens, so an idle worker in any process looks for work at once instead of at its next
//! poll ([`Store::work_queued`]).
//!
//! The pipeline's writes are in `postgres_store/pipeline.rs`, reference data and the citizen's
//! records in `postgres_store/records.rs`, GDPR requests and erasure in
//! `postgres_store/gdpr.rs`.

mod gdpr;
mod pipeline;
mod queue;
mod records;
mod schema;
mod writes;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use io_core::{
    AcceptOutcome, AcceptRecord, Activation, ApiKeyOwner, AttemptStart, CallbackCursor,
    CallbackRecord, CallbackTarget, Choice, ConfigurationId, DataRequest, DayFeed, Delivery,
    DeliveryId, DeliveryRecord, DueRequest, EmailAddress, Erasure, ErasureReport, Evidence,
    FeedDay, FeedEvent, FiscalCode, FlagsChange, FlagsError, Installation, InstallationId, KeyHash,
    LifecycleStatus, Logo, LogoOwner, MessageFlags, MessageId, OrganizationFiscalCode,
    ProcessRecord, Profile, ReceiptOutcome, ReceiptRecord, RecipientRecords,
    RemoteContentConfiguration, Service, ServiceAccess, ServiceChange, ServiceHistoryItem,
    ServiceId, ServiceLifecycle, ServicePreference, Store, StoreError, StoredJournal,
    StoredMessage, Task, Timestamp,
};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// Connections a store opens at most, unless told otherwise: enough for a worker's rounds in
/// flight, the HTTP handlers and the listener on a small server.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// The database the tests use unless `IO_TEST_DATABASE_URL` says otherwise: the loopback
/// server of a development machine (trust authentication, database `test`).
pub const TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The channel of the wake-up notifications.
const WORK_CHANNEL: &str = "io_work";

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// A `postgres://` URL (user, password, host, port, database, `sslmode`).
    pub url: String,
    /// The schema io's tables live in (created if absent); `None`: the database's default
    /// (`public`). Lets several io installations, or test runs, share one database.
    pub schema: Option<String>,
    /// The pool's size.
    pub max_connections: u32,
}

impl PostgresOptions {
    /// The defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Connecting to the database, or preparing it, failed.
#[derive(Debug, thiserror::Error)]
pub enum PostgresStoreError {
    /// The URL does not parse.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(String),
    /// A schema name must be a plain identifier: it is written into SQL.
    #[error(
        "invalid schema name {0:?}: use lower-case letters, digits and underscores, starting with a letter"
    )]
    Schema(String),
    /// The database is unreachable or refused the connection.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// The schema could not be created or migrated.
    #[error("cannot prepare the database schema: {0}")]
    Migrate(StoreError),
}

/// The PostgreSQL store. Cheap to clone (a shared pool).
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Woken by the listener when another process (or this one) queued work.
    work: Arc<tokio::sync::Notify>,
    listener: tokio::task::JoinHandle<()>,
    /// How often this process notifies the others of work.
    notices: Arc<queue::NoticeThrottle>,
    /// Dropped with the store: a temporary store's schema.
    temporary: Option<TemporarySchema>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// A schema dropped (with everything in it) when the store is dropped.
struct TemporarySchema {
    url: String,
    name: String,
}

impl Drop for TemporarySchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop may run inside a runtime: the drop gets a thread and a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(PgConnectOptions::from_str(&url).ok()?)
                    .await
                    .ok()?;
                // A session of the store may still hold locks in its schema: a transaction
                // dropped without commit is rolled back by a task of the store's runtime, which
                // cannot run while this drop blocks it (a test's current-thread runtime). The
                // store is gone; its sessions are ended.
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&name)
                .execute(&pool)
                .await
                .ok();
                let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .ok()?;
                pool.close().await;
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            tracing::warn!(schema = %self.name, "a temporary schema could not be dropped");
        }
    }
}

/// Whether `name` is a plain lower-case identifier (safe to write into SQL unquoted).
fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// A sqlx failure as a store error. Everything the database reports at run time (a lost
/// connection, a deadlock, a serialization failure) may pass on retry.
pub(crate) fn backend(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::Corrupt {
            what: "database row",
            detail: error.to_string(),
        },
        error => StoreError::Backend(error.to_string()),
    }
}

/// A record as JSON text, for a `jsonb` column.
pub(crate) fn encode<T: Serialize>(value: &T) -> String {
    // Plain data: serializing it cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// A `jsonb` column's text as a record.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// A message id as stored (16 bytes, ordered like the ids).
pub(crate) fn id_bytes(id: &MessageId) -> Vec<u8> {
    id.to_bytes().to_vec()
}

/// A stored message id.
pub(crate) fn message_id(bytes: &[u8]) -> Result<MessageId, StoreError> {
    let bytes: [u8; 16] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        what: "message id",
        detail: format!("{} bytes, not 16", bytes.len()),
    })?;
    Ok(MessageId::from_bytes(bytes))
}

/// A stored time (milliseconds since the epoch).
pub(crate) fn millis(at: Timestamp) -> i64 {
    at.as_millis()
}

/// A stored unsigned count or version.
pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored count or version back.
pub(crate) fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl PostgresStore {
    /// Connects to `url` with the default options and prepares the schema.
    pub async fn connect(url: &str) -> Result<Self, PostgresStoreError> {
        Self::connect_with(PostgresOptions::new(url)).await
    }

    /// Connects, creates the schema if asked and absent, and applies the migrations this
    /// version knows (several processes starting together apply each once).
    pub async fn connect_with(options: PostgresOptions) -> Result<Self, PostgresStoreError> {
        Self::open(options, None).await
    }

    /// A store in a fresh schema of the database at `url`, dropped with the store: for tests
    /// and benchmarks, which then never see each other's data.
    pub async fn temporary(url: &str) -> Result<Self, PostgresStoreError> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("io_tmp_{}_{n}_{nanos}", std::process::id());
        let options = PostgresOptions {
            schema: Some(name.clone()),
            max_connections: 4,
            ..PostgresOptions::new(url)
        };
        let temporary = TemporarySchema {
            url: url.to_string(),
            name,
        };
        Self::open(options, Some(temporary)).await
    }

    async fn open(
        options: PostgresOptions,
        temporary: Option<TemporarySchema>,
    ) -> Result<Self, PostgresStoreError> {
        let mut connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| PostgresStoreError::Url(e.to_string()))?
            // A temporary store's sessions carry its schema's name, so that dropping it can end
            // any it left behind.
            .application_name(temporary.as_ref().map_or("io", |t| t.name.as_str()));
        if let Some(schema) = &options.schema {
            if !is_plain_identifier(schema) {
                return Err(PostgresStoreError::Schema(schema.clone()));
            }
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(connect.clone())
                .await
                .map_err(|e| PostgresStoreError::Connect(e.to_string()))?;
            let sql = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .map_err(|e| PostgresStoreError::Migrate(backend(e)))?;
            pool.close().await;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            // No ping before each use: it is a round trip per transaction (a third of a
            // submit's). A connection the server closed (a restart) fails its next statement
            // once and is discarded; the engine retries that work, an HTTP request gets a 503.
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(|e| PostgresStoreError::Connect(e.to_string()))?;
        schema::migrate(&pool)
            .await
            .map_err(PostgresStoreError::Migrate)?;
        let work = Arc::new(tokio::sync::Notify::new());
        let listener = tokio::spawn(listen(pool.clone(), work.clone()));
        let notices = Arc::new(queue::NoticeThrottle::new(pool.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                work,
                listener,
                notices,
                temporary,
            }),
        })
    }

    /// The connection pool (for operators' tools and tests).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema a temporary store lives in.
    pub fn temporary_schema(&self) -> Option<&str> {
        self.inner.temporary.as_ref().map(|t| t.name.as_str())
    }

    /// Whether a write that queued work due at once should notify the other processes.
    pub(crate) fn notices(&self) -> &Arc<queue::NoticeThrottle> {
        &self.inner.notices
    }

    pub(crate) async fn begin(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        self.inner.pool.begin().await.map_err(backend)
    }
}

/// Listens for wake-ups until the store is dropped, reconnecting after a failure; a failure
/// only delays wake-ups to the engine's next poll.
async fn listen(pool: PgPool, work: Arc<tokio::sync::Notify>) {
    loop {
        let result: Result<(), sqlx::Error> = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen(WORK_CHANNEL).await?;
            loop {
                listener.recv().await?;
                work.notify_waiters();
            }
        }
        .await;
        if let Err(error) = result {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(%error, "PostgreSQL wake-up listener failed; reconnecting in 1 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

impl Store for PostgresStore {
    async fn put_service(&self, service: &Service) -> Result<(), StoreError> {
        records::put_service(self, service, None).await
    }

    async fn put_service_with_access(
        &self,
        service: &Service,
        access: &ServiceAccess,
    ) -> Result<(), StoreError> {
        records::put_service(self, service, Some(access)).await
    }

    async fn service(&self, id: &ServiceId) -> Result<Option<Service>, StoreError> {
        records::service(self, id).await
    }

    async fn services(&self) -> Result<Vec<Service>, StoreError> {
        records::services(self).await
    }

    async fn put_service_access(
        &self,
        service: &ServiceId,
        access: &ServiceAccess,
    ) -> Result<(), StoreError> {
        records::put_service_access(self, service, access).await
    }

    async fn service_access(
        &self,
        service: &ServiceId,
    ) -> Result<Option<ServiceAccess>, StoreError> {
        records::service_access(self, service).await
    }

    async fn api_key_owner(&self, hash: &KeyHash) -> Result<Option<ApiKeyOwner>, StoreError> {
        records::api_key_owner(self, hash).await
    }

    async fn commit_service_change(&self, change: &ServiceChange) -> Result<(), StoreError> {
        records::commit_service_change(self, change).await
    }

    async fn service_lifecycle(
        &self,
        service: &ServiceId,
    ) -> Result<Option<ServiceLifecycle>, StoreError> {
        records::service_lifecycle(self, service).await
    }

    async fn service_lifecycles(
        &self,
        organization: &OrganizationFiscalCode,
    ) -> Result<Vec<ServiceLifecycle>, StoreError> {
        records::service_lifecycles(self, organization).await
    }

    async fn service_lifecycles_with_status(
        &self,
        status: LifecycleStatus,
    ) -> Result<Vec<ServiceLifecycle>, StoreError> {
        records::service_lifecycles_with_status(self, status).await
    }

    async fn service_history(
        &self,
        service: &ServiceId,
    ) -> Result<Vec<ServiceHistoryItem>, StoreError> {
        records::service_history(self, service).await
    }

    async fn put_callback(
        &self,
        service: &ServiceId,
        target: Option<&CallbackTarget>,
    ) -> Result<(), StoreError> {
        records::put_callback(self, service, target).await
    }

    async fn callback(&self, service: &ServiceId) -> Result<Option<CallbackTarget>, StoreError> {
        records::callback(self, service).await
    }

    async fn put_remote_content_configuration(
        &self,
        configuration: &RemoteContentConfiguration,
    ) -> Result<(), StoreError> {
        records::put_remote_content(self, configuration).await
    }

    async fn remote_content_configuration(
        &self,
        id: &ConfigurationId,
    ) -> Result<Option<RemoteContentConfiguration>, StoreError> {
        records::remote_content(self, id).await
    }

    async fn remote_content_configurations(
        &self,
        organization: &OrganizationFiscalCode,
    ) -> Result<Vec<RemoteContentConfiguration>, StoreError> {
        records::remote_contents(self, organization).await
    }

    async fn put_logo(&self, owner: &LogoOwner, logo: Option<&Logo>) -> Result<(), StoreError> {
        records::put_logo(self, owner, logo).await
    }

    async fn logo(&self, owner: &LogoOwner) -> Result<Option<Logo>, StoreError> {
        records::logo(self, owner).await
    }

    async fn put_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        records::put_profile(self, profile, None).await
    }

    async fn put_profile_with_feed(
        &self,
        profile: &Profile,
        event: &FeedEvent,
    ) -> Result<(), StoreError> {
        records::put_profile(self, profile, Some(event)).await
    }

    async fn profile(&self, fiscal_code: &FiscalCode) -> Result<Option<Profile>, StoreError> {
        records::profile(self, fiscal_code).await
    }

    async fn recipient(
        &self,
        fiscal_code: &FiscalCode,
        service: &ServiceId,
        activation: bool,
        devices: bool,
    ) -> Result<RecipientRecords, StoreError> {
        records::recipient(self, fiscal_code, service, activation, devices).await
    }

    async fn email_owner(&self, email: &EmailAddress) -> Result<Option<FiscalCode>, StoreError> {
        records::email_owner(self, email).await
    }

    async fn put_preference(
        &self,
        fiscal_code: &FiscalCode,
        preference: &ServicePreference,
    ) -> Result<(), StoreError> {
        records::put_preference(self, fiscal_code, preference, None).await
    }

    async fn put_preference_with_feed(
        &self,
        fiscal_code: &FiscalCode,
        preference: &ServicePreference,
        event: &FeedEvent,
    ) -> Result<(), StoreError> {
        records::put_preference(self, fiscal_code, preference, Some(event)).await
    }

    async fn preference(
        &self,
        fiscal_code: &FiscalCode,
        service: &ServiceId,
        settings_version: u64,
    ) -> Result<Option<ServicePreference>, StoreError> {
        records::preference(self, fiscal_code, service, settings_version).await
    }

    async fn preferences_of(
        &self,
        fiscal_code: &FiscalCode,
    ) -> Result<Vec<ServicePreference>, StoreError> {
        records::preferences_of(self, fiscal_code).await
    }

    async fn put_activation(&self, activation: &Activation) -> Result<Activation, StoreError> {
        records::put_activation(self, activation).await
    }

    async fn activation(
        &self,
        service: &ServiceId,
        fiscal_code: &FiscalCode,
    ) -> Result<Option<Activation>, StoreError> {
        records::activation(self, service, fiscal_code).await
    }

    async fn activations_of(
        &self,
        fiscal_code: &FiscalCode,
    ) -> Result<Vec<Activation>, StoreError> {
        records::activations_of(self, fiscal_code).await
    }

    async fn put_installation(
        &self,
        fiscal_code: &FiscalCode,
        installation: &Installation,
    ) -> Result<(), StoreError> {
        records::put_installation(self, fiscal_code, installation).await
    }

    async fn remove_installation(
        &self,
        fiscal_code: &FiscalCode,
        installation: &InstallationId,
    ) -> Result<(), StoreError> {
        records::remove_installation(self, fiscal_code, installation).await
    }

    async fn installations(
        &self,
        fiscal_code: &FiscalCode,
    ) -> Result<Vec<Installation>, StoreError> {
        records::installations(self, fiscal_code).await
    }

    async fn message_flags(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
    ) -> Result<MessageFlags, StoreError> {
        records::message_flags(self, fiscal_code, message).await
    }

    async fn change_message_flags(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
        change: FlagsChange,
    ) -> Result<Result<MessageFlags, FlagsError>, StoreError> {
        records::change_message_flags(self, fiscal_code, message, change).await
    }

    async fn record_feed_event(&self, event: &FeedEvent) -> Result<(), StoreError> {
        records::record_feed_event(self, event).await
    }

    async fn subscriptions_feed(
        &self,
        day: FeedDay,
        service: &ServiceId,
    ) -> Result<DayFeed, StoreError> {
        records::subscriptions_feed(self, day, service).await
    }

    async fn commit_accept(&self, record: AcceptRecord) -> Result<AcceptOutcome, StoreError> {
        pipeline::accept(self, record).await
    }

    async fn due_services(
        &self,
        now: Timestamp,
        after: Option<&ServiceId>,
        limit: usize,
    ) -> Result<Vec<ServiceId>, StoreError> {
        queue::due_services(self, now, after, limit).await
    }

    async fn claim_tasks(
        &self,
        services: &[ServiceId],
        now: Timestamp,
        per_service: usize,
        lease_until: Timestamp,
    ) -> Result<Vec<Task>, StoreError> {
        queue::claim(self, services, now, per_service, lease_until).await
    }

    async fn discard_task(&self, task: &Task) -> Result<(), StoreError> {
        queue::discard(self, task).await
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        queue::next_due_at(self).await
    }

    async fn backlog(&self) -> Result<u64, StoreError> {
        queue::backlog(self).await
    }

    async fn work_queued(&self) {
        self.inner.work.notified().await;
    }

    async fn commit_processes(&self, records: Vec<ProcessRecord>) -> Vec<Result<(), StoreError>> {
        pipeline::processes(self, records).await
    }

    async fn start_attempts(&self, starts: Vec<AttemptStart>) -> Vec<Result<(), StoreError>> {
        pipeline::starts(self, starts).await
    }

    async fn commit_deliveries(&self, records: Vec<DeliveryRecord>) -> Vec<Result<(), StoreError>> {
        pipeline::deliveries(self, records).await
    }

    async fn commit_receipt(&self, record: ReceiptRecord) -> Result<ReceiptOutcome, StoreError> {
        pipeline::receipt(self, record).await
    }

    async fn evidence(&self, message: &MessageId) -> Result<Vec<Evidence>, StoreError> {
        pipeline::evidence(self, message).await
    }

    async fn callback_cursor(
        &self,
        message: &MessageId,
    ) -> Result<Option<CallbackCursor>, StoreError> {
        pipeline::callback_cursor(self, message).await
    }

    async fn commit_callback(&self, record: CallbackRecord) -> Result<(), StoreError> {
        pipeline::callback(self, record).await
    }

    async fn message(&self, id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        pipeline::message(self, id).await
    }

    async fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
        pipeline::delivery(self, id).await
    }

    async fn deliveries(&self, message: &MessageId) -> Result<Vec<Delivery>, StoreError> {
        pipeline::deliveries_of(self, message).await
    }

    async fn deliveries_of_messages(
        &self,
        messages: &[MessageId],
    ) -> Result<Vec<Delivery>, StoreError> {
        pipeline::deliveries_of_messages(self, messages).await
    }

    async fn messages_by_id(&self, ids: &[MessageId]) -> Result<Vec<StoredMessage>, StoreError> {
        pipeline::messages_by_id(self, ids).await
    }

    async fn profiles_of(&self, citizens: &[FiscalCode]) -> Result<Vec<Profile>, StoreError> {
        records::profiles_of(self, citizens).await
    }

    async fn installations_of(
        &self,
        citizens: &[FiscalCode],
    ) -> Result<Vec<(FiscalCode, Vec<Installation>)>, StoreError> {
        records::installations_of(self, citizens).await
    }

    async fn inbox(
        &self,
        fiscal_code: &FiscalCode,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        pipeline::inbox(self, fiscal_code, before, limit).await
    }

    async fn inbox_contains(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
    ) -> Result<bool, StoreError> {
        pipeline::inbox_contains(self, fiscal_code, message).await
    }

    async fn messages_to(
        &self,
        fiscal_code: &FiscalCode,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        pipeline::messages_to(self, fiscal_code, after, limit).await
    }

    async fn journal(&self, message: &MessageId) -> Result<StoredJournal, StoreError> {
        pipeline::journal(self, message).await
    }

    async fn data_request(
        &self,
        fiscal_code: &FiscalCode,
        choice: Choice,
    ) -> Result<Option<DataRequest>, StoreError> {
        gdpr::data_request(self, fiscal_code, choice).await
    }

    async fn swap_data_request(
        &self,
        fiscal_code: &FiscalCode,
        choice: Choice,
        expected: Option<&DataRequest>,
        new: Option<&DataRequest>,
    ) -> Result<bool, StoreError> {
        gdpr::swap_data_request(self, fiscal_code, choice, expected, new).await
    }

    async fn due_data_requests(
        &self,
        now: Timestamp,
        after: Option<&DueRequest>,
        limit: usize,
    ) -> Result<Vec<DueRequest>, StoreError> {
        gdpr::due_data_requests(self, now, after, limit).await
    }

    async fn erase_citizen(&self, erasure: &Erasure) -> Result<ErasureReport, StoreError> {
        gdpr::erase_citizen(self, erasure).await
    }

    async fn purge_idempotency(&self, now: Timestamp) -> Result<u64, StoreError> {
        pipeline::purge_idempotency(self, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_schema_names() {
        for good in ["io", "io_tmp_1_2", "a9"] {
            assert!(is_plain_identifier(good), "{good}");
        }
        for bad in ["", "9a", "Io", "io-x", "io;drop", "io x", &"a".repeat(64)] {
            assert!(!is_plain_identifier(bad), "{bad}");
        }
    }
}
