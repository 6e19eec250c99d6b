//! [`SledStore`]: the `Store` on sled 0.34, embedded in the process.
//!
//! **One tree, one writer.** Every record lives in one sled tree, its kind named by the key's
//! first byte (layouts in `sled_store/keys.rs`), so that any group of writes is one atomic
//! `apply_batch`, cheaper than a transaction over several trees. Every write goes through the
//! committer thread (`sled_store/committer.rs`), which combines the writes waiting at the time
//! into one batch and one flush (group commit); reads go straight to the tree.
//!
//! **A message is three records**: its body (`m`, written once), its state (`s`: status,
//! deliveries, journal, callback outbox — `sled_store/message_state.rs`), and its index
//! entries (inbox `i`, recipients `r`). A delivery's outcome with its journal entry is one
//! write of one key.
//!
//! **The queue is in memory** (`sled_store/scheduler.rs`): the process owns the store, so
//! claims and leases need no write, and opening the store rebuilds the queue from the states
//! of the messages still open — with every lease released at once. To find those without
//! reading every message ever stored, the committer keeps a *watermark*: open messages older
//! than it are listed (`o`), newer ones are found by scanning the states from it.
//!
//! The pipeline's jobs are in `sled_store/pipeline.rs`, the citizen's records in
//! `sled_store/citizens.rs`, services in `sled_store/reference.rs`, GDPR requests and erasure
//! in `sled_store/gdpr.rs`.

mod check;
mod citizens;
mod committer;
mod fast_hash;
mod gdpr;
mod journal;
mod keys;
mod message_state;
mod pipeline;
mod reference;
mod scheduler;

pub use check::{CheckReport, DamagedRecord};

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use io_core::{
    AcceptOutcome, AcceptRecord, Activation, ApiKeyOwner, AttemptStart, CallbackCursor,
    CallbackRecord, CallbackTarget, Choice, ConfigurationId, DataRequest, DayFeed, Delivery,
    DeliveryId, DeliveryRecord, DueRequest, EmailAddress, Erasure, ErasureReport, Evidence,
    FeedDay, FeedEvent, FeedScope, FiscalCode, FiscalCodeHash, FlagsChange, FlagsError,
    Installation, InstallationId, KeyHash, LifecycleStatus, Logo, LogoOwner, Message, MessageFlags,
    MessageId, OrganizationFiscalCode, ProcessRecord, Profile, ReceiptOutcome, ReceiptRecord,
    RemoteContentConfiguration, Service, ServiceAccess, ServiceChange, ServiceHistoryItem,
    ServiceId, ServiceLifecycle, ServicePreference, Store, StoreError, StoredJournal,
    StoredMessage, Task, TaskKind, Timestamp,
};
use serde::{Deserialize, Serialize};

use committer::{Committer, Output, Shared};
use keys::kind;
use message_state::MessageState;
use scheduler::Scheduler;

/// When a write counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk before the method returns (group commit). The only safe choice for a server.
    Flushed,
    /// In sled's buffers; sled writes them within ~500 ms. For benchmarks of the ceiling and for
    /// throwaway data: a crash loses the last writes.
    Buffered,
}

/// sled's page cache when nothing else is asked: enough for a small server's working set
/// (sled's own default, 1 GiB, is never given back and dominated the process's memory).
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The store format this version writes: version 2 is one tree with an in-memory queue.
const FORMAT: &[u8] = b"2";

/// Opening the store failed.
#[derive(Debug, thiserror::Error)]
pub enum SledStoreError {
    /// sled could not open the directory.
    #[error("cannot open sled store: {0}")]
    Open(#[from] sled::Error),
    /// Another process (or another open store in this one) holds the directory.
    #[error(
        "the store at {path:?} is in use by another process (its lock stayed held for 10 s); stop that process or choose another data directory"
    )]
    Locked {
        /// sled's locked `db` file.
        path: std::path::PathBuf,
    },
    /// sled's `db` file exists but could not be opened to check its lock.
    #[error("cannot read the store file {path:?}: {source}")]
    Unreadable {
        /// sled's `db` file.
        path: std::path::PathBuf,
        /// Why it could not be opened.
        source: std::io::Error,
    },
    /// The committer thread could not start.
    #[error("cannot start the committer thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The directory holds a store of another format.
    #[error(
        "the store was written by another version of io (format {found:?}, this version reads {expected:?}); open it with the version that wrote it"
    )]
    Format {
        /// The format found.
        found: String,
        /// The format this version reads.
        expected: String,
    },
    /// A record needed to rebuild the queue does not decode.
    #[error("cannot rebuild the task queue: {0}")]
    Rebuild(StoreError),
}

/// The embedded store. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    durability: Durability,
    /// The next `start_attempts` round's id (unique across openings).
    rounds: AtomicU64,
    /// Declared before `shared`'s last handle: dropped (and joined) before the database.
    committer: Committer,
}

/// Plain data serializes; an empty value would fail to decode, never pass silently.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// A sled failure as a store error: damage sled's checksums found is corruption (permanent,
/// reported as such), anything else a backend failure that retrying may fix.
fn backend(error: sled::Error) -> StoreError {
    match error {
        sled::Error::Corruption { .. } => StoreError::Corrupt {
            what: "store file",
            detail: error.to_string(),
        },
        error => StoreError::Backend(error.to_string()),
    }
}

/// How long `open` waits for the directory's lock. sled releases it from its own background
/// I/O threads a moment after the last handle is dropped, so a reopen in the same process
/// right after a drop may find it still held (seen for a few hundred milliseconds under
/// parallel tests); another process holding it is a real conflict, reported as `Locked`.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Opens the database once its lock is free, waiting up to `LOCK_WAIT` for it.
///
/// sled reports a held lock as an `Other` I/O error with only a message to tell it from the
/// rest, so the lock is probed first with the standard library's own `flock` on sled's `db`
/// file: the same lock, a typed answer.
fn open_waiting_for_lock(config: &sled::Config) -> Result<sled::Db, SledStoreError> {
    let lock_file = config.get_path().join("db");
    let started = std::time::Instant::now();
    loop {
        match probe_lock(&lock_file) {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SledStoreError::Locked { path: lock_file });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(SledStoreError::Unreadable {
                    path: lock_file,
                    source,
                });
            }
        }
    }
    Ok(config.open()?)
}

/// Takes and at once releases the lock on sled's `db` file; a store not yet created has no
/// lock to wait for.
fn probe_lock(lock_file: &std::path::Path) -> Result<(), std::fs::TryLockError> {
    match std::fs::File::open(lock_file) {
        // Dropping the file releases the lock.
        Ok(file) => file.try_lock(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(std::fs::TryLockError::Error(error)),
    }
}

/// Checks (or, for a new store, writes) the format marker.
fn check_format(db: &sled::Db, tree: &sled::Tree) -> Result<(), SledStoreError> {
    match tree.get([kind::FORMAT])? {
        Some(found) if found.as_ref() == FORMAT => Ok(()),
        Some(found) => Err(SledStoreError::Format {
            found: String::from_utf8_lossy(&found).into_owned(),
            expected: String::from_utf8_lossy(FORMAT).into_owned(),
        }),
        None => {
            // The first format kept one tree per record kind, `messages` among them.
            if db
                .tree_names()
                .iter()
                .any(|name| name.as_ref() == b"messages")
            {
                return Err(SledStoreError::Format {
                    found: "1".into(),
                    expected: String::from_utf8_lossy(FORMAT).into_owned(),
                });
            }
            tree.insert([kind::FORMAT], FORMAT)?;
            Ok(())
        }
    }
}

/// Queues the tasks a message's state implies.
fn queue_tasks_of(
    scheduler: &mut Scheduler,
    message: MessageId,
    state: &MessageState,
) -> Result<(), StoreError> {
    let header = &state.header;
    if header.status == io_core::MessageStatus::Accepted {
        scheduler.put(
            TaskKind::Process(message),
            &header.service_id,
            header.created_at,
        );
    }
    for delivery in state.decoded_deliveries(message)? {
        if !delivery.state.is_final() {
            scheduler.put(
                TaskKind::Deliver(delivery.id),
                &header.service_id,
                delivery.next_attempt_at,
            );
        }
    }
    if let Some(outbox) = header.outbox {
        let due = match outbox.due {
            Some(due) => Some(due),
            // Behind its journal: due since forever.
            None if state.outbox_is_behind() => Some(Timestamp::EPOCH),
            None => None,
        };
        if let Some(due) = due {
            scheduler.put(TaskKind::Callback(message), &header.service_id, due);
        }
    }
    Ok(())
}

/// Records the attempts that a dead process started and never finished: each delivery listed
/// by an `ATTEMPTS` record with a greater attempt number than its state counts gets that
/// attempt counted and its outcome pending, so the next claim journals it as unknown. One
/// atomic batch, which also removes every round record.
fn recover_attempts(db: &sled::Db, tree: &sled::Tree) -> Result<(), StoreError> {
    let mut states: std::collections::BTreeMap<MessageId, MessageState> = Default::default();
    let mut batch = sled::Batch::default();
    let mut found = false;
    for item in tree.scan_prefix([kind::ATTEMPTS]) {
        let (key, value) = item.map_err(backend)?;
        found = true;
        batch.remove(key);
        let entries = pipeline::round_entries(&value).ok_or_else(|| StoreError::Corrupt {
            what: "attempts",
            detail: "malformed record".into(),
        })?;
        for (delivery, attempt) in entries {
            let state = match states.entry(delivery.message) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => {
                    match tree
                        .get(keys::message(kind::STATE, &delivery.message))
                        .map_err(backend)?
                    {
                        Some(bytes) => entry.insert(MessageState::decode(&bytes)?),
                        None => continue, // erased
                    }
                }
            };
            let Some(mut stored) = state.delivery(delivery.message, delivery.channel)? else {
                continue;
            };
            if stored.state.is_final() || stored.attempts >= attempt {
                continue; // its outcome was recorded
            }
            tracing::warn!(delivery = %delivery, attempt, "an attempt was cut short by a crash; its outcome is unknown");
            stored.attempts = attempt;
            stored.outcome_pending = true;
            state.put_delivery(delivery.channel, message_state::encode_delivery(&stored));
        }
    }
    if !found {
        return Ok(());
    }
    for (message, state) in states {
        batch.insert(keys::message(kind::STATE, &message), state.encode());
    }
    tree.apply_batch(batch).map_err(backend)?;
    db.flush().map_err(backend)?;
    Ok(())
}

/// Rebuilds the queue from the open messages: those listed below the watermark, and every
/// message from the watermark on. Drops the listings of messages no longer open.
fn rebuild(tree: &sled::Tree) -> Result<(Scheduler, MessageId), StoreError> {
    let watermark = match tree.get([kind::WATERMARK]).map_err(backend)? {
        Some(bytes) => {
            MessageId::from_bytes(bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                what: "watermark",
                detail: "not 16 bytes".into(),
            })?)
        }
        None => MessageId::from_bytes([0; 16]),
    };
    let mut scheduler = Scheduler::default();
    let mut stale = Vec::new();
    for item in tree.scan_prefix([kind::OPEN]).keys() {
        let key = item.map_err(backend)?;
        let message = keys::trailing_message_id(&key).ok_or_else(|| StoreError::Corrupt {
            what: "open messages",
            detail: "malformed key".into(),
        })?;
        match tree
            .get(keys::message(kind::STATE, &message))
            .map_err(backend)?
        {
            Some(bytes) => queue_tasks_of(&mut scheduler, message, &MessageState::decode(&bytes)?)?,
            None => stale.push(key),
        }
    }
    let from = keys::message(kind::STATE, &watermark);
    for item in tree.range(from..keys::prefix_end(&[kind::STATE])) {
        let (key, bytes) = item.map_err(backend)?;
        let message = keys::trailing_message_id(&key).ok_or_else(|| StoreError::Corrupt {
            what: "message state",
            detail: "malformed key".into(),
        })?;
        queue_tasks_of(&mut scheduler, message, &MessageState::decode(&bytes)?)?;
    }
    for key in stale {
        tree.remove(key).map_err(backend)?;
    }
    Ok((scheduler, watermark))
}

impl SledStore {
    /// Opens (or creates) a durable store in `path`, with [`DEFAULT_CACHE_BYTES`] of cache.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SledStoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) a durable store in `path` with `cache_bytes` of page cache.
    pub fn open_with_cache(
        path: impl AsRef<Path>,
        cache_bytes: u64,
    ) -> Result<Self, SledStoreError> {
        Self::open_with(
            sled::Config::new().path(path).cache_capacity(cache_bytes),
            Durability::Flushed,
            Duration::ZERO,
        )
    }

    /// A store in a temporary directory removed on drop: for tests and examples.
    pub fn temporary() -> Result<Self, SledStoreError> {
        Self::open_with(
            sled::Config::new()
                .temporary(true)
                .cache_capacity(DEFAULT_CACHE_BYTES),
            Durability::Flushed,
            Duration::ZERO,
        )
    }

    /// Opens with explicit sled configuration, durability and group-commit linger.
    pub fn open_with(
        config: sled::Config,
        durability: Durability,
        linger: Duration,
    ) -> Result<Self, SledStoreError> {
        let db = open_waiting_for_lock(&config)?;
        let tree = db.open_tree("io")?;
        check_format(&db, &tree)?;
        recover_attempts(&db, &tree).map_err(SledStoreError::Rebuild)?;
        let (mut scheduler, watermark) = rebuild(&tree).map_err(SledStoreError::Rebuild)?;
        // Lease tokens and round ids never repeat across openings: a task claimed before a
        // reopen cannot commit over a claim made after it.
        let floor = db.generate_id()? << 32;
        scheduler.start_tokens_after(floor);
        let shared = Arc::new(Shared {
            db,
            tree,
            scheduler: Mutex::new(scheduler),
            in_flight: Mutex::new(committer::InFlight::default()),
        });
        let flush = durability == Durability::Flushed;
        let committer = Committer::start(shared.clone(), linger, flush, watermark)?;
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                durability,
                rounds: AtomicU64::new(floor),
                committer,
            }),
        })
    }

    /// Makes every write made so far durable (one flush shared with concurrent writers).
    pub async fn sync(&self) -> Result<(), StoreError> {
        match self.inner.durability {
            Durability::Flushed => self.inner.committer.sync().await,
            Durability::Buffered => Ok(()),
        }
    }

    fn tree(&self) -> &sled::Tree {
        &self.inner.shared.tree
    }

    fn scheduler(&self) -> std::sync::MutexGuard<'_, Scheduler> {
        self.inner
            .shared
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn write(&self, job: committer::Job) -> Result<Output, StoreError> {
        self.inner.committer.apply(job, true).await
    }

    async fn write_done(&self, job: committer::Job) -> Result<(), StoreError> {
        self.write(job).await.map(drop)
    }

    /// Applies jobs together, durably or not; one result per job.
    async fn write_all(
        &self,
        jobs: Vec<committer::Job>,
        durable: bool,
    ) -> Vec<Result<(), StoreError>> {
        self.inner
            .committer
            .apply_all(jobs, durable)
            .await
            .into_iter()
            .map(|result| result.map(drop))
            .collect()
    }

    fn get<T: for<'de> Deserialize<'de>>(
        &self,
        what: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.tree().get(key).map_err(backend)? {
            Some(bytes) => decode(what, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every value under `prefix`, decoded, in key order.
    fn scan<T: for<'de> Deserialize<'de>>(
        &self,
        what: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<T>, StoreError> {
        self.tree()
            .scan_prefix(prefix)
            .values()
            .map(|bytes| decode(what, &bytes.map_err(backend)?))
            .collect()
    }

    /// The message ids under `prefix` (inbox, recipients) in `range` order.
    fn message_ids(
        &self,
        range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        let id = |item: Result<(sled::IVec, sled::IVec), sled::Error>| {
            let (key, _) = item.map_err(backend)?;
            keys::trailing_message_id(&key).ok_or_else(|| StoreError::Corrupt {
                what: "message index",
                detail: "malformed key".into(),
            })
        };
        let entries = self.tree().range(range);
        if newest_first {
            entries.rev().take(limit).map(id).collect()
        } else {
            entries.take(limit).map(id).collect()
        }
    }

    /// `delivery` as reads show it: an attempt in flight is counted, its outcome pending.
    fn with_attempt_in_flight(&self, mut delivery: Delivery) -> Delivery {
        let in_flight = self
            .inner
            .shared
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .attempt(&delivery.id);
        if let Some(attempt) = in_flight {
            delivery.attempts = attempt;
            delivery.outcome_pending = true;
        }
        delivery
    }

    fn state(&self, message: &MessageId) -> Result<Option<MessageState>, StoreError> {
        match self
            .tree()
            .get(keys::message(kind::STATE, message))
            .map_err(backend)?
        {
            Some(bytes) => MessageState::decode(&bytes).map(Some),
            None => Ok(None),
        }
    }
}

impl Store for SledStore {
    async fn put_service(&self, service: &Service) -> Result<(), StoreError> {
        self.write_done(reference::put_service(service.clone()))
            .await
    }

    async fn put_service_with_access(
        &self,
        service: &Service,
        access: &ServiceAccess,
    ) -> Result<(), StoreError> {
        self.write_done(reference::put_service_with_access(
            service.clone(),
            access.clone(),
        ))
        .await
    }

    async fn service(&self, id: &ServiceId) -> Result<Option<Service>, StoreError> {
        self.get("service", &keys::text(kind::SERVICE, id.as_str()))
    }

    async fn services(&self) -> Result<Vec<Service>, StoreError> {
        self.scan("service", &[kind::SERVICE])
    }

    async fn put_service_access(
        &self,
        service: &ServiceId,
        access: &ServiceAccess,
    ) -> Result<(), StoreError> {
        self.write_done(reference::put_access(service.clone(), access.clone()))
            .await
    }

    async fn service_access(
        &self,
        service: &ServiceId,
    ) -> Result<Option<ServiceAccess>, StoreError> {
        self.get(
            "service access",
            &keys::text(kind::ACCESS, service.as_str()),
        )
    }

    async fn api_key_owner(&self, hash: &KeyHash) -> Result<Option<ApiKeyOwner>, StoreError> {
        self.get("api key", &keys::raw(kind::API_KEY, hash))
    }

    async fn commit_service_change(&self, change: &ServiceChange) -> Result<(), StoreError> {
        self.write_done(reference::commit_service_change(change.clone()))
            .await
    }

    async fn service_lifecycle(
        &self,
        service: &ServiceId,
    ) -> Result<Option<ServiceLifecycle>, StoreError> {
        self.get(
            "service lifecycle",
            &keys::text(kind::LIFECYCLE, service.as_str()),
        )
    }

    async fn service_lifecycles(
        &self,
        organization: &OrganizationFiscalCode,
    ) -> Result<Vec<ServiceLifecycle>, StoreError> {
        let mut all: Vec<ServiceLifecycle> = self.scan("service lifecycle", &[kind::LIFECYCLE])?;
        all.retain(|l| &l.service.organization_fiscal_code == organization);
        Ok(all)
    }

    async fn service_lifecycles_with_status(
        &self,
        status: LifecycleStatus,
    ) -> Result<Vec<ServiceLifecycle>, StoreError> {
        let mut all: Vec<ServiceLifecycle> = self.scan("service lifecycle", &[kind::LIFECYCLE])?;
        all.retain(|l| l.status == status);
        Ok(all)
    }

    async fn service_history(
        &self,
        service: &ServiceId,
    ) -> Result<Vec<ServiceHistoryItem>, StoreError> {
        self.scan(
            "service history",
            &keys::pair_prefix(kind::HISTORY, service.as_str()),
        )
    }

    async fn put_callback(
        &self,
        service: &ServiceId,
        target: Option<&CallbackTarget>,
    ) -> Result<(), StoreError> {
        self.write_done(reference::put_callback(service.clone(), target.cloned()))
            .await
    }

    async fn callback(&self, service: &ServiceId) -> Result<Option<CallbackTarget>, StoreError> {
        self.get("callback", &keys::text(kind::CALLBACK, service.as_str()))
    }

    async fn put_remote_content_configuration(
        &self,
        configuration: &RemoteContentConfiguration,
    ) -> Result<(), StoreError> {
        self.write_done(reference::put_remote_content(configuration.clone()))
            .await
    }

    async fn remote_content_configuration(
        &self,
        id: &ConfigurationId,
    ) -> Result<Option<RemoteContentConfiguration>, StoreError> {
        self.get(
            "remote-content configuration",
            &keys::text(kind::REMOTE_CONTENT, id.as_str()),
        )
    }

    async fn remote_content_configurations(
        &self,
        organization: &OrganizationFiscalCode,
    ) -> Result<Vec<RemoteContentConfiguration>, StoreError> {
        let mut all: Vec<RemoteContentConfiguration> =
            self.scan("remote-content configuration", &[kind::REMOTE_CONTENT])?;
        all.retain(|c| &c.organization == organization);
        Ok(all)
    }

    async fn put_logo(&self, owner: &LogoOwner, logo: Option<&Logo>) -> Result<(), StoreError> {
        self.write_done(reference::put_logo(owner.clone(), logo.cloned()))
            .await
    }

    async fn logo(&self, owner: &LogoOwner) -> Result<Option<Logo>, StoreError> {
        match self.tree().get(keys::logo(owner)).map_err(backend)? {
            Some(value) => reference::decode_logo(&value).map(Some),
            None => Ok(None),
        }
    }

    async fn put_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        self.write_done(citizens::put_profile(profile.clone(), None))
            .await
    }

    async fn put_profile_with_feed(
        &self,
        profile: &Profile,
        event: &FeedEvent,
    ) -> Result<(), StoreError> {
        self.write_done(citizens::put_profile(profile.clone(), Some(event.clone())))
            .await
    }

    async fn profile(&self, fiscal_code: &FiscalCode) -> Result<Option<Profile>, StoreError> {
        self.get("profile", &keys::citizen(kind::PROFILE, fiscal_code))
    }

    async fn email_owner(&self, email: &EmailAddress) -> Result<Option<FiscalCode>, StoreError> {
        match self
            .tree()
            .get(citizens::email_key(email))
            .map_err(backend)?
        {
            Some(bytes) => FiscalCode::parse(&String::from_utf8_lossy(&bytes))
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    what: "email owner",
                    detail: e.to_string(),
                }),
            None => Ok(None),
        }
    }

    async fn put_preference(
        &self,
        fiscal_code: &FiscalCode,
        preference: &ServicePreference,
    ) -> Result<(), StoreError> {
        self.write_done(citizens::put_preference(
            fiscal_code.clone(),
            preference.clone(),
            None,
        ))
        .await
    }

    async fn put_preference_with_feed(
        &self,
        fiscal_code: &FiscalCode,
        preference: &ServicePreference,
        event: &FeedEvent,
    ) -> Result<(), StoreError> {
        self.write_done(citizens::put_preference(
            fiscal_code.clone(),
            preference.clone(),
            Some(event.clone()),
        ))
        .await
    }

    async fn preference(
        &self,
        fiscal_code: &FiscalCode,
        service: &ServiceId,
        settings_version: u64,
    ) -> Result<Option<ServicePreference>, StoreError> {
        self.get(
            "preference",
            &keys::preference(fiscal_code, service, settings_version),
        )
    }

    async fn preferences_of(
        &self,
        fiscal_code: &FiscalCode,
    ) -> Result<Vec<ServicePreference>, StoreError> {
        self.scan(
            "preference",
            &keys::pair_prefix(kind::PREFERENCE, fiscal_code.as_str()),
        )
    }

    async fn put_activation(&self, activation: &Activation) -> Result<Activation, StoreError> {
        match self
            .write(citizens::put_activation(activation.clone()))
            .await?
        {
            Output::Activation(stored) => Ok(stored),
            _ => Err(unexpected()),
        }
    }

    async fn activation(
        &self,
        service: &ServiceId,
        fiscal_code: &FiscalCode,
    ) -> Result<Option<Activation>, StoreError> {
        self.get(
            "activation",
            &keys::pair(kind::ACTIVATION, service.as_str(), fiscal_code.as_str()),
        )
    }

    async fn activations_of(
        &self,
        fiscal_code: &FiscalCode,
    ) -> Result<Vec<Activation>, StoreError> {
        let mut found = Vec::new();
        for item in self.tree().scan_prefix([kind::ACTIVATION]) {
            let (key, value) = item.map_err(backend)?;
            if keys::pair_second(&key[1..]) == Some(fiscal_code.as_str().as_bytes()) {
                found.push(decode("activation", &value)?);
            }
        }
        Ok(found)
    }

    async fn put_installation(
        &self,
        fiscal_code: &FiscalCode,
        installation: &Installation,
    ) -> Result<(), StoreError> {
        self.write_done(citizens::put_installation(
            fiscal_code.clone(),
            installation.clone(),
        ))
        .await
    }

    async fn remove_installation(
        &self,
        fiscal_code: &FiscalCode,
        installation: &InstallationId,
    ) -> Result<(), StoreError> {
        self.write_done(citizens::remove_installation(
            fiscal_code.clone(),
            installation.clone(),
        ))
        .await
    }

    async fn installations(
        &self,
        fiscal_code: &FiscalCode,
    ) -> Result<Vec<Installation>, StoreError> {
        self.scan(
            "installation",
            &keys::pair_prefix(kind::INSTALLATION, fiscal_code.as_str()),
        )
    }

    async fn message_flags(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
    ) -> Result<MessageFlags, StoreError> {
        Ok(self
            .get(
                "message flags",
                &keys::citizen_message(kind::FLAGS, fiscal_code, message),
            )?
            .unwrap_or_default())
    }

    async fn change_message_flags(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
        change: FlagsChange,
    ) -> Result<Result<MessageFlags, FlagsError>, StoreError> {
        match self
            .write(citizens::change_flags(
                fiscal_code.clone(),
                *message,
                change,
            ))
            .await?
        {
            Output::Flags(flags) => Ok(flags),
            _ => Err(unexpected()),
        }
    }

    async fn record_feed_event(&self, event: &FeedEvent) -> Result<(), StoreError> {
        self.write_done(citizens::record_feed(event.clone())).await
    }

    async fn subscriptions_feed(
        &self,
        day: FeedDay,
        service: &ServiceId,
    ) -> Result<DayFeed, StoreError> {
        // Profile-level first, so that a service-level event of the same citizen overrides it.
        let mut latest = std::collections::BTreeMap::new();
        for scope in [FeedScope::AllServices, FeedScope::Service(service.clone())] {
            let prefix = keys::feed_prefix(day, &scope);
            for item in self.tree().scan_prefix(&prefix) {
                let (key, value) = item.map_err(backend)?;
                let hash = FiscalCodeHash::parse(&String::from_utf8_lossy(&key[prefix.len()..]))
                    .map_err(|e| StoreError::Corrupt {
                        what: "feed",
                        detail: e.to_string(),
                    })?;
                latest.insert(hash, value.as_ref() == b"S");
            }
        }
        let mut feed = DayFeed::default();
        for (hash, subscribed) in latest {
            if subscribed {
                feed.subscribed.push(hash);
            } else {
                feed.unsubscribed.push(hash);
            }
        }
        Ok(feed)
    }

    async fn commit_accept(&self, record: AcceptRecord) -> Result<AcceptOutcome, StoreError> {
        // Durable also for `Existing`: the first write may still be waiting for its flush.
        match self.write(pipeline::accept(record)).await? {
            Output::Accept(outcome) => Ok(outcome),
            _ => Err(unexpected()),
        }
    }

    async fn due_services(
        &self,
        now: Timestamp,
        after: Option<&ServiceId>,
        limit: usize,
    ) -> Result<Vec<ServiceId>, StoreError> {
        Ok(self.scheduler().due_services(now, after, limit))
    }

    async fn claim_tasks(
        &self,
        services: &[ServiceId],
        now: Timestamp,
        per_service: usize,
        lease_until: Timestamp,
    ) -> Result<Vec<Task>, StoreError> {
        Ok(self
            .scheduler()
            .claim(services, now, per_service, lease_until))
    }

    async fn discard_task(&self, task: &Task) -> Result<(), StoreError> {
        self.inner
            .committer
            .apply(pipeline::discard(task.clone()), false)
            .await
            .map(drop)
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.scheduler().next_due_at())
    }

    async fn backlog(&self) -> Result<u64, StoreError> {
        Ok(self.scheduler().backlog())
    }

    async fn commit_processes(&self, records: Vec<ProcessRecord>) -> Vec<Result<(), StoreError>> {
        let jobs = records.into_iter().map(pipeline::process).collect();
        self.write_all(jobs, true).await
    }

    async fn start_attempts(&self, starts: Vec<AttemptStart>) -> Vec<Result<(), StoreError>> {
        if starts.is_empty() {
            return Vec::new();
        }
        let round = self.inner.rounds.fetch_add(1, Ordering::Relaxed);
        let count = starts.len();
        match self
            .inner
            .committer
            .apply(pipeline::starts(round, starts), true)
            .await
        {
            Ok(Output::Each(results)) => results,
            Ok(_) => vec![Err(StoreError::Backend("unexpected output".into())); count],
            Err(error) => vec![Err(error); count],
        }
    }

    async fn commit_deliveries(&self, records: Vec<DeliveryRecord>) -> Vec<Result<(), StoreError>> {
        // Deferrals (no event) change no evidence: they need not wait for a flush.
        let durable = records.iter().any(|r| !r.events.is_empty());
        let jobs = records.into_iter().map(pipeline::delivery).collect();
        self.write_all(jobs, durable).await
    }

    async fn commit_receipt(&self, record: ReceiptRecord) -> Result<ReceiptOutcome, StoreError> {
        match self.write(pipeline::receipt(record)).await? {
            Output::Receipt(outcome) => Ok(outcome),
            _ => Err(unexpected()),
        }
    }

    async fn evidence(&self, message: &MessageId) -> Result<Vec<Evidence>, StoreError> {
        let mut found = Vec::new();
        for item in self
            .tree()
            .scan_prefix(keys::message(kind::EVIDENCE, message))
        {
            let (key, value) = item.map_err(backend)?;
            let corrupt = || StoreError::Corrupt {
                what: "evidence",
                detail: "a record shorter than its layout".into(),
            };
            let sha256 = key.get(17..49).ok_or_else(corrupt)?;
            let (seq, bytes) = pipeline::evidence_value(&value).ok_or_else(corrupt)?;
            found.push((
                seq,
                Evidence {
                    sha256: hex::encode(sha256),
                    bytes: bytes.to_vec(),
                },
            ));
        }
        found.sort_by_key(|(seq, _)| *seq);
        Ok(found.into_iter().map(|(_, evidence)| evidence).collect())
    }

    async fn callback_cursor(
        &self,
        message: &MessageId,
    ) -> Result<Option<CallbackCursor>, StoreError> {
        match self
            .tree()
            .get(keys::message(kind::STATE, message))
            .map_err(backend)?
        {
            Some(bytes) => Ok(MessageState::decode_header(&bytes)?
                .outbox
                .map(|outbox| outbox.cursor)),
            None => Ok(None),
        }
    }

    async fn commit_callback(&self, record: CallbackRecord) -> Result<(), StoreError> {
        self.write_done(pipeline::callback(record)).await
    }

    async fn message(&self, id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let Some(message) = self.get::<Message>("message", &keys::message(kind::MESSAGE, id))?
        else {
            return Ok(None);
        };
        let Some(bytes) = self
            .tree()
            .get(keys::message(kind::STATE, id))
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let header = MessageState::decode_header(&bytes)?;
        Ok(Some(StoredMessage {
            message,
            status: header.status,
            updated_at: header.updated_at,
        }))
    }

    async fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let delivery = match self
            .tree()
            .get(keys::message(kind::STATE, &id.message))
            .map_err(backend)?
        {
            Some(bytes) => MessageState::decode_one_delivery(&bytes, id.message, id.channel)?,
            None => None,
        };
        Ok(delivery.map(|d| self.with_attempt_in_flight(d)))
    }

    async fn deliveries(&self, message: &MessageId) -> Result<Vec<Delivery>, StoreError> {
        match self.state(message)? {
            Some(state) => Ok(state
                .decoded_deliveries(*message)?
                .into_iter()
                .map(|d| self.with_attempt_in_flight(d))
                .collect()),
            None => Ok(Vec::new()),
        }
    }

    async fn inbox(
        &self,
        fiscal_code: &FiscalCode,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        let lower = keys::citizen(kind::INBOX, fiscal_code);
        let upper = match before {
            Some(id) => Bound::Excluded(keys::citizen_message(kind::INBOX, fiscal_code, &id)),
            None => Bound::Excluded(keys::prefix_end(&lower)),
        };
        self.message_ids((Bound::Included(lower), upper), true, limit)
    }

    async fn inbox_contains(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
    ) -> Result<bool, StoreError> {
        self.tree()
            .contains_key(keys::citizen_message(kind::INBOX, fiscal_code, message))
            .map_err(backend)
    }

    async fn messages_to(
        &self,
        fiscal_code: &FiscalCode,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        let prefix = keys::citizen(kind::RECIPIENT, fiscal_code);
        let lower = match after {
            Some(id) => Bound::Excluded(keys::citizen_message(kind::RECIPIENT, fiscal_code, &id)),
            None => Bound::Included(prefix.clone()),
        };
        self.message_ids(
            (lower, Bound::Excluded(keys::prefix_end(&prefix))),
            false,
            limit,
        )
    }

    async fn journal(&self, message: &MessageId) -> Result<StoredJournal, StoreError> {
        let head = match self.state(message)? {
            Some(state) => state.header.head,
            None => match self
                .tree()
                .get(keys::message(kind::ERASED, message))
                .map_err(backend)?
            {
                Some(bytes) => MessageState::decode_header(&bytes)?.head,
                None => None,
            },
        };
        Ok(StoredJournal {
            entries: journal::read(self.tree(), message)?,
            head,
        })
    }

    async fn data_request(
        &self,
        fiscal_code: &FiscalCode,
        choice: Choice,
    ) -> Result<Option<DataRequest>, StoreError> {
        self.get("data request", &keys::data_request(fiscal_code, choice))
    }

    async fn swap_data_request(
        &self,
        fiscal_code: &FiscalCode,
        choice: Choice,
        expected: Option<&DataRequest>,
        new: Option<&DataRequest>,
    ) -> Result<bool, StoreError> {
        match self
            .write(gdpr::swap_request(
                fiscal_code.clone(),
                choice,
                expected.copied(),
                new.copied(),
            ))
            .await?
        {
            Output::Swapped(swapped) => Ok(swapped),
            _ => Err(unexpected()),
        }
    }

    async fn due_data_requests(
        &self,
        now: Timestamp,
        after: Option<&DueRequest>,
        limit: usize,
    ) -> Result<Vec<DueRequest>, StoreError> {
        let lower = match after {
            Some(after) => Bound::Excluded(keys::data_request_due(
                after.request.due_at,
                &after.fiscal_code,
                after.request.choice,
            )),
            None => Bound::Included(vec![kind::DATA_REQUEST_DUE]),
        };
        let upper = Bound::Excluded(keys::prefix_end(&[kind::DATA_REQUEST_DUE]));
        let mut due = Vec::new();
        for item in self.tree().range((lower, upper)) {
            if due.len() >= limit {
                break;
            }
            let (key, _) = item.map_err(backend)?;
            let (at, fiscal_code, choice) =
                keys::data_request_due_parts(&key).ok_or_else(|| StoreError::Corrupt {
                    what: "due data requests",
                    detail: "malformed key".into(),
                })?;
            if at > now {
                break;
            }
            if let Some(request) =
                self.get::<DataRequest>("data request", &keys::data_request(&fiscal_code, choice))?
                && request.is_open()
                && request.due_at == at
            {
                due.push(DueRequest {
                    fiscal_code,
                    request,
                });
            }
        }
        Ok(due)
    }

    async fn erase_citizen(&self, erasure: &Erasure) -> Result<ErasureReport, StoreError> {
        match self
            .inner
            .committer
            .apply_exclusive(gdpr::erase(erasure.clone()), true)
            .await?
        {
            Output::Erased(report) => Ok(report),
            _ => Err(unexpected()),
        }
    }

    async fn purge_idempotency(&self, now: Timestamp) -> Result<u64, StoreError> {
        let job: committer::Job = Box::new(move |tx| {
            let mut purged = 0;
            let expired: Vec<sled::IVec> = tx
                .tree()
                .scan_prefix([kind::IDEMPOTENCY])
                .map(|item| {
                    let (key, bytes) = item.map_err(backend)?;
                    let entry: pipeline::IdempotencyEntry = decode("idempotency", &bytes)?;
                    Ok((entry.expires_at <= now).then_some(key))
                })
                .filter_map(Result::transpose)
                .collect::<Result<_, StoreError>>()?;
            for key in expired {
                tx.remove(key.to_vec());
                purged += 1;
            }
            Ok(Output::Count(purged))
        });
        match self.inner.committer.apply_exclusive(job, true).await? {
            Output::Count(purged) => Ok(purged),
            _ => Err(unexpected()),
        }
    }
}

fn unexpected() -> StoreError {
    StoreError::Backend("unexpected committer output".into())
}
