//! [`SledStore`]: the `Store` on sled 0.34, embedded in the process.
//!
//! Layout (one sled tree each; key layouts in `sled_store/keys.rs`): `services`, `profiles`,
//! `preferences` (fiscal code + service + settings version), `activations` (service + fiscal
//! code, the decision's lookup: a citizen's activations are found by scanning them all, which
//! only GDPR requests do, rather than through a second index that every write would have to
//! keep and that existing stores would lack), `installations` (fiscal code + installation),
//! `messages` (by ULID), `inbox` (fiscal code + ULID), `recipients` (fiscal code + ULID: every
//! accepted message, whatever became of it), `idempotency` (service + key), `queue` (service +
//! due time + task: process and delivery tasks in one per-service time order, which is what the
//! fair scheduler walks), `leases` (task → token and end), `deliveries`, `journal` (message +
//! seq), `journal_heads`.
//!
//! `recipients` is written with each accept; a store created before it existed opens with it
//! empty, so the messages accepted earlier are neither listed by `messages_to` nor found by
//! `erase_citizen`.
//!
//! Every write method is one sled transaction over the trees it touches; those that must be
//! durable then wait for the group-commit flusher (`sled_store/committer.rs`). Erasing a
//! citizen (`sled_store/erase.rs`) is one transaction too, which the committer runs alone.

mod committer;
mod erase;
mod keys;

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use io_core::{
    AcceptOutcome, AcceptRecord, Activation, Delivery, DeliveryId, DeliveryRecord, ErasureReport,
    FiscalCode, Installation, InstallationId, JournalEntry, JournalEvent, JournalHead, Lease,
    MessageId, MessageStatus, ProcessRecord, Profile, RecordEntry, RecordSpace, Service, ServiceId,
    ServicePreference, Store, StoreError, StoredJournal, StoredMessage, Task, TaskKind, Timestamp,
};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use committer::{Committer, Job, Output, PipelineTrees, Tx, TxResult, from_tx};

/// When a write counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk before the method returns (group commit). The only safe choice for a server.
    Flushed,
    /// In sled's buffers; sled writes them within ~500 ms. For benchmarks of the ceiling and for
    /// throwaway data: a crash loses the last writes.
    Buffered,
}

/// Opening the store failed.
#[derive(Debug, thiserror::Error)]
pub enum SledStoreError {
    /// sled could not open the directory (a lock error means another process uses it).
    #[error("cannot open sled store: {0}")]
    Open(#[from] sled::Error),
    /// The flusher thread could not start.
    #[error("cannot start the flusher thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The embedded store. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

struct Inner {
    services: sled::Tree,
    profiles: sled::Tree,
    preferences: sled::Tree,
    activations: sled::Tree,
    installations: sled::Tree,
    pipeline: PipelineTrees,
    durability: Durability,
    /// Declared after the trees and before `db`: dropped (and joined) before the database.
    committer: Committer,
    backlog: AtomicI64,
    /// Auxiliary record spaces, opened on first use.
    record_spaces: Mutex<HashMap<RecordSpace, sled::Tree>>,
    db: sled::Db,
}

/// A write of a versioned record (service, profile).
struct VersionedWrite<'a> {
    tree: &'a sled::Tree,
    what: &'static str,
    key: &'a [u8],
    version: u64,
    first: u64,
    value: Vec<u8>,
}

/// The stored form of an idempotency record.
#[derive(Serialize, Deserialize)]
struct IdempotencyEntry {
    message_id: MessageId,
    content_hash: String,
    expires_at: Timestamp,
}

/// The stored form of a lease.
#[derive(Serialize, Deserialize)]
struct LeaseEntry {
    token: u64,
    until: Timestamp,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our records are plain data: serializing them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn tx_decode<T: for<'de> Deserialize<'de>>(what: &'static str, bytes: &[u8]) -> TxResult<T> {
    decode(what, bytes).map_err(ConflictableTransactionError::Abort)
}

/// The message id of an `inbox` or `recipients` key.
fn citizen_message_id(what: &'static str, key: &[u8]) -> Result<MessageId, StoreError> {
    keys::citizen_message_id(key).ok_or_else(|| StoreError::Corrupt {
        what,
        detail: "malformed key".into(),
    })
}

/// Appends `events` to a message's journal inside a transaction.
fn append_journal(
    tx: &Tx<'_>,
    message: &MessageId,
    at: Timestamp,
    events: &[JournalEvent],
) -> TxResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut head: Option<JournalHead> = match tx.journal_heads.get(message.to_bytes())? {
        Some(bytes) => Some(tx_decode("journal_heads", &bytes)?),
        None => None,
    };
    for event in events {
        let entry = JournalEntry::append_after(head.as_ref(), at, event.clone());
        tx.journal
            .insert(&keys::journal(message, entry.seq), entry.to_bytes())?;
        head = Some(entry.head());
    }
    if let Some(head) = head {
        tx.journal_heads
            .insert(&message.to_bytes(), encode(&head))?;
    }
    Ok(())
}

/// Checks that `task` still holds its lease, then releases it and its queue entry.
fn release_lease(tx: &Tx<'_>, task: &Task) -> TxResult<()> {
    let id = keys::task_id(&task.kind);
    let held = match tx.leases.get(id)? {
        Some(bytes) => tx_decode::<LeaseEntry>("leases", &bytes)?.token == task.lease.token,
        None => false,
    };
    if !held {
        return Err(ConflictableTransactionError::Abort(StoreError::LeaseLost {
            task: format!("{:?}", task.kind),
        }));
    }
    tx.leases.remove(&id)?;
    tx.queue
        .remove(keys::queue(&task.service_id, task.lease.until, &task.kind))?;
    Ok(())
}

/// How long `open` waits for the directory's lock. sled releases it from its own background
/// I/O threads a moment after the last handle is dropped, so a reopen in the same process
/// right after a drop may find it still held; another process holding it is a real conflict.
const LOCK_WAIT: Duration = Duration::from_secs(3);

fn open_waiting_for_lock(config: &sled::Config) -> Result<sled::Db, SledStoreError> {
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            Err(sled::Error::Io(error))
                if error.kind() == std::io::ErrorKind::WouldBlock
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other.map_err(SledStoreError::from),
        }
    }
}

/// The committer job of one processing decision.
fn process_job(record: ProcessRecord) -> Job {
    let id = record.message.id;
    let deliveries: Vec<([u8; 17], Vec<u8>, Vec<u8>)> = record
        .deliveries
        .iter()
        .map(|d| {
            let queue_key = keys::queue(&d.service_id, d.next_attempt_at, &TaskKind::Deliver(d.id));
            (keys::delivery(&d.id), encode(d), queue_key)
        })
        .collect();
    let inbox_key = record
        .into_inbox
        .then(|| keys::citizen_message(&record.message.body.fiscal_code, &id));
    // Encoded here, off the committer thread, which only checks the lease and writes bytes.
    let stored = encode(&StoredMessage {
        message: record.message,
        status: record.status,
        updated_at: record.at,
    });
    let (task, at, events) = (record.task, record.at, record.events);
    Box::new(move |tx| {
        release_lease(tx, &task)?;
        tx.messages.insert(&id.to_bytes(), stored.as_slice())?;
        if let Some(inbox_key) = &inbox_key {
            tx.inbox.insert(inbox_key.as_slice(), &[])?;
        }
        for (key, value, queue_key) in &deliveries {
            tx.deliveries.insert(key, value.as_slice())?;
            tx.queue.insert(queue_key.as_slice(), &[])?;
        }
        append_journal(tx, &id, at, &events)?;
        Ok(Output::QueueDelta(deliveries.len() as i64 - 1))
    })
}

impl SledStore {
    /// Opens (or creates) a durable store in `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SledStoreError> {
        Self::open_with(
            sled::Config::new().path(path),
            Durability::Flushed,
            Duration::ZERO,
        )
    }

    /// A store in a temporary directory removed on drop: for tests and examples.
    pub fn temporary() -> Result<Self, SledStoreError> {
        Self::open_with(
            sled::Config::new().temporary(true),
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
        let tree = |name: &str| db.open_tree(name);
        let pipeline = PipelineTrees {
            messages: tree("messages")?,
            idempotency: tree("idempotency")?,
            queue: tree("queue")?,
            leases: tree("leases")?,
            inbox: tree("inbox")?,
            deliveries: tree("deliveries")?,
            journal: tree("journal")?,
            journal_heads: tree("journal_heads")?,
            recipients: tree("recipients")?,
        };
        let backlog = AtomicI64::new(pipeline.queue.len() as i64);
        let flush = durability == Durability::Flushed;
        let inner = Inner {
            services: tree("services")?,
            profiles: tree("profiles")?,
            preferences: tree("preferences")?,
            activations: tree("activations")?,
            installations: tree("installations")?,
            committer: Committer::start(db.clone(), pipeline.clone(), linger, flush)?,
            pipeline,
            durability,
            backlog,
            record_spaces: Mutex::new(HashMap::new()),
            db,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Makes every write made so far durable (one flush shared with concurrent writers).
    pub async fn sync(&self) -> Result<(), StoreError> {
        match self.inner.durability {
            Durability::Flushed => self.inner.committer.sync().await,
            Durability::Buffered => Ok(()),
        }
    }

    /// Applies a pipeline job through the committer.
    async fn apply(&self, job: Job, durable: bool) -> Result<Output, StoreError> {
        self.inner.committer.apply(job, durable).await
    }

    async fn put(&self, tree: &sled::Tree, key: &[u8], value: Vec<u8>) -> Result<(), StoreError> {
        tree.insert(key, value).map_err(backend)?;
        self.sync().await
    }

    fn get<T: for<'de> Deserialize<'de>>(
        &self,
        tree: &sled::Tree,
        what: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key).map_err(backend)? {
            Some(bytes) => decode(what, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Writes a versioned record if its version follows the stored one (or is the first
    /// version for a new record); `stored_version` reads the version of the stored bytes.
    async fn put_versioned(
        &self,
        write: VersionedWrite<'_>,
        stored_version: impl Fn(&[u8]) -> Result<u64, StoreError>,
    ) -> Result<(), StoreError> {
        let VersionedWrite {
            tree,
            what,
            key,
            version,
            first,
            value,
        } = write;
        tree.transaction(|tx| {
            let expected = match tx.get(key)? {
                Some(bytes) => {
                    stored_version(&bytes).map_err(ConflictableTransactionError::Abort)? + 1
                }
                None => first,
            };
            if version != expected {
                return Err(ConflictableTransactionError::Abort(StoreError::Conflict {
                    what,
                    stored: expected.saturating_sub(1),
                    given: version.saturating_sub(1),
                }));
            }
            tx.insert(key, value.as_slice())?;
            Ok(())
        })
        .map_err(from_tx)?;
        self.sync().await
    }

    /// The tree of an auxiliary record space (`rec:` + its name).
    fn record_space(&self, space: RecordSpace) -> Result<sled::Tree, StoreError> {
        let valid = !space.is_empty()
            && space
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(StoreError::Backend(format!(
                "invalid record space name {space:?}"
            )));
        }
        let mut spaces = self
            .inner
            .record_spaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(tree) = spaces.get(space) {
            return Ok(tree.clone());
        }
        let tree = self
            .inner
            .db
            .open_tree(format!("rec:{space}"))
            .map_err(backend)?;
        spaces.insert(space, tree.clone());
        Ok(tree)
    }

    /// A citizen's activations as stored (key and value), in service order: a scan of every
    /// activation, which are keyed service first.
    fn activation_entries(
        &self,
        fiscal_code: &FiscalCode,
    ) -> Result<Vec<(sled::IVec, sled::IVec)>, StoreError> {
        let mut entries = Vec::new();
        for item in self.inner.activations.iter() {
            let (key, value) = item.map_err(backend)?;
            if keys::pair_second(&key) == Some(fiscal_code.as_str().as_bytes()) {
                entries.push((key, value));
            }
        }
        Ok(entries)
    }

    fn add_backlog(&self, delta: i64) {
        self.inner.backlog.fetch_add(delta, Ordering::Relaxed);
    }
}

impl Store for SledStore {
    async fn put_service(&self, service: &Service) -> Result<(), StoreError> {
        let write = VersionedWrite {
            tree: &self.inner.services,
            what: "service",
            key: service.service_id.as_str().as_bytes(),
            version: service.version,
            first: 1,
            value: encode(service),
        };
        self.put_versioned(write, |bytes| {
            decode::<Service>("services", bytes).map(|s| s.version)
        })
        .await
    }

    async fn service(&self, id: &ServiceId) -> Result<Option<Service>, StoreError> {
        self.get(&self.inner.services, "services", id.as_str().as_bytes())
    }

    async fn services(&self) -> Result<Vec<Service>, StoreError> {
        self.inner
            .services
            .iter()
            .values()
            .map(|bytes| decode("services", &bytes.map_err(backend)?))
            .collect()
    }

    async fn put_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        let write = VersionedWrite {
            tree: &self.inner.profiles,
            what: "profile",
            key: profile.fiscal_code.as_str().as_bytes(),
            version: profile.version,
            first: 0,
            value: encode(profile),
        };
        self.put_versioned(write, |bytes| {
            decode::<Profile>("profiles", bytes).map(|p| p.version)
        })
        .await
    }

    async fn profile(&self, fiscal_code: &FiscalCode) -> Result<Option<Profile>, StoreError> {
        self.get(
            &self.inner.profiles,
            "profiles",
            fiscal_code.as_str().as_bytes(),
        )
    }

    async fn put_preference(
        &self,
        fiscal_code: &FiscalCode,
        preference: &ServicePreference,
    ) -> Result<(), StoreError> {
        let key = keys::preference(
            fiscal_code,
            &preference.service_id,
            preference.settings_version,
        );
        self.put(&self.inner.preferences, &key, encode(preference))
            .await
    }

    async fn preference(
        &self,
        fiscal_code: &FiscalCode,
        service: &ServiceId,
        settings_version: u64,
    ) -> Result<Option<ServicePreference>, StoreError> {
        let key = keys::preference(fiscal_code, service, settings_version);
        self.get(&self.inner.preferences, "preferences", &key)
    }

    async fn preferences_of(
        &self,
        fiscal_code: &FiscalCode,
    ) -> Result<Vec<ServicePreference>, StoreError> {
        let prefix = keys::pair(fiscal_code.as_str(), "");
        self.inner
            .preferences
            .scan_prefix(prefix)
            .values()
            .map(|bytes| decode("preferences", &bytes.map_err(backend)?))
            .collect()
    }

    async fn put_activation(&self, activation: &Activation) -> Result<(), StoreError> {
        let key = keys::pair(
            activation.service_id.as_str(),
            activation.fiscal_code.as_str(),
        );
        self.put(&self.inner.activations, &key, encode(activation))
            .await
    }

    async fn activation(
        &self,
        service: &ServiceId,
        fiscal_code: &FiscalCode,
    ) -> Result<Option<Activation>, StoreError> {
        let key = keys::pair(service.as_str(), fiscal_code.as_str());
        self.get(&self.inner.activations, "activations", &key)
    }

    async fn activations_of(
        &self,
        fiscal_code: &FiscalCode,
    ) -> Result<Vec<Activation>, StoreError> {
        self.activation_entries(fiscal_code)?
            .iter()
            .map(|(_, bytes)| decode("activations", bytes))
            .collect()
    }

    async fn put_installation(
        &self,
        fiscal_code: &FiscalCode,
        installation: &Installation,
    ) -> Result<(), StoreError> {
        let key = keys::pair(fiscal_code.as_str(), installation.installation_id.as_str());
        self.put(&self.inner.installations, &key, encode(installation))
            .await
    }

    async fn remove_installation(
        &self,
        fiscal_code: &FiscalCode,
        installation: &InstallationId,
    ) -> Result<(), StoreError> {
        let key = keys::pair(fiscal_code.as_str(), installation.as_str());
        self.inner.installations.remove(key).map_err(backend)?;
        self.sync().await
    }

    async fn installations(
        &self,
        fiscal_code: &FiscalCode,
    ) -> Result<Vec<Installation>, StoreError> {
        let prefix = keys::pair(fiscal_code.as_str(), "");
        self.inner
            .installations
            .scan_prefix(prefix)
            .values()
            .map(|bytes| decode("installations", &bytes.map_err(backend)?))
            .collect()
    }

    async fn commit_accept(&self, record: AcceptRecord) -> Result<AcceptOutcome, StoreError> {
        let message = record.message;
        let stored = encode(&StoredMessage {
            message: message.clone(),
            status: MessageStatus::Accepted,
            updated_at: message.created_at,
        });
        let idempotency = record.idempotency.as_ref().map(|(key, expires_at)| {
            let entry = encode(&IdempotencyEntry {
                message_id: message.id,
                content_hash: record.content_hash.clone(),
                expires_at: *expires_at,
            });
            (
                keys::pair(message.sender_service_id.as_str(), key.as_str()),
                entry,
            )
        });
        let task = TaskKind::Process(message.id);
        let queue_key = keys::queue(&message.sender_service_id, message.created_at, &task);
        let recipient_key = keys::citizen_message(&message.body.fiscal_code, &message.id);
        let event = record.event;
        let job: Job = Box::new(move |tx| {
            if let Some((key, entry)) = &idempotency {
                if let Some(bytes) = tx.idempotency.get(key)? {
                    let earlier: IdempotencyEntry = tx_decode("idempotency", &bytes)?;
                    if earlier.expires_at > message.created_at {
                        return Ok(Output::Accept(AcceptOutcome::Existing {
                            message_id: earlier.message_id,
                            content_hash: earlier.content_hash,
                        }));
                    }
                }
                tx.idempotency.insert(key.as_slice(), entry.as_slice())?;
            }
            tx.messages
                .insert(&message.id.to_bytes(), stored.as_slice())?;
            tx.queue.insert(queue_key.as_slice(), &[])?;
            tx.recipients.insert(recipient_key.as_slice(), &[])?;
            append_journal(
                tx,
                &message.id,
                message.created_at,
                std::slice::from_ref(&event),
            )?;
            Ok(Output::Accept(AcceptOutcome::Created))
        });
        // Durable also for `Existing`: the first write may still be waiting for its flush.
        match self.apply(job, true).await? {
            Output::Accept(outcome) => {
                if outcome == AcceptOutcome::Created {
                    self.add_backlog(1);
                }
                Ok(outcome)
            }
            _ => Err(StoreError::Backend("unexpected committer output".into())),
        }
    }

    async fn due_services(
        &self,
        now: Timestamp,
        after: Option<&ServiceId>,
        limit: usize,
    ) -> Result<Vec<ServiceId>, StoreError> {
        let mut start = match after {
            Some(service) => {
                let mut key = service.as_str().as_bytes().to_vec();
                key.push(keys::SEP + 1);
                key
            }
            None => Vec::new(),
        };
        let mut due = Vec::new();
        while due.len() < limit {
            let Some(item) = self.inner.pipeline.queue.range(start.as_slice()..).next() else {
                break;
            };
            let (key, _) = item.map_err(backend)?;
            let Some((service, at, _)) = keys::queue_parts(&key) else {
                return Err(StoreError::Corrupt {
                    what: "queue",
                    detail: "malformed key".into(),
                });
            };
            // The first entry of a service is its earliest.
            start = service.as_str().as_bytes().to_vec();
            start.push(keys::SEP + 1);
            if at <= now {
                due.push(service);
            }
        }
        Ok(due)
    }

    async fn claim_tasks(
        &self,
        services: &[ServiceId],
        now: Timestamp,
        per_service: usize,
        lease_until: Timestamp,
    ) -> Result<Vec<Task>, StoreError> {
        let inner = &*self.inner;
        let mut claimed = Vec::new();
        for service in services {
            let lower = keys::service_prefix(service);
            let upper = keys::queue_upper(service, now);
            let candidates: Vec<sled::IVec> = inner
                .pipeline
                .queue
                .range(lower..=upper)
                .keys()
                .take(per_service)
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            if candidates.is_empty() {
                continue;
            }
            let token = inner.db.generate_id().map_err(backend)?;
            let lease = Lease {
                until: lease_until,
                token,
            };
            let lease_bytes = encode(&LeaseEntry {
                token,
                until: lease_until,
            });
            let batch = (&inner.pipeline.queue, &inner.pipeline.leases)
                .transaction(|(queue, leases)| {
                    let mut batch = Vec::with_capacity(candidates.len());
                    for key in &candidates {
                        if queue.remove(key)?.is_none() {
                            continue; // another worker took it
                        }
                        let Some((service, _, kind)) = keys::queue_parts(key) else {
                            return Err(ConflictableTransactionError::Abort(StoreError::Corrupt {
                                what: "queue",
                                detail: "malformed key".into(),
                            }));
                        };
                        queue.insert(keys::queue(&service, lease_until, &kind), &[])?;
                        leases.insert(&keys::task_id(&kind), lease_bytes.as_slice())?;
                        batch.push(Task {
                            service_id: service,
                            kind,
                            lease,
                        });
                    }
                    Ok(batch)
                })
                .map_err(from_tx)?;
            claimed.extend(batch);
        }
        Ok(claimed)
    }

    async fn discard_task(&self, task: &Task) -> Result<(), StoreError> {
        let task = task.clone();
        let job: Job = Box::new(move |tx| {
            release_lease(tx, &task)?;
            Ok(Output::QueueDelta(-1))
        });
        self.apply(job, false).await?;
        self.add_backlog(-1);
        Ok(())
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let mut start = Vec::new();
        let mut earliest: Option<Timestamp> = None;
        while let Some(item) = self.inner.pipeline.queue.range(start.as_slice()..).next() {
            let (key, _) = item.map_err(backend)?;
            let Some((service, at, _)) = keys::queue_parts(&key) else {
                return Err(StoreError::Corrupt {
                    what: "queue",
                    detail: "malformed key".into(),
                });
            };
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
            start = service.as_str().as_bytes().to_vec();
            start.push(keys::SEP + 1);
        }
        Ok(earliest)
    }

    async fn backlog(&self) -> Result<u64, StoreError> {
        Ok(self.inner.backlog.load(Ordering::Relaxed).max(0) as u64)
    }

    async fn commit_processes(&self, records: Vec<ProcessRecord>) -> Vec<Result<(), StoreError>> {
        let jobs = records.into_iter().map(process_job).collect();
        let results = self.inner.committer.apply_all(jobs, true).await;
        results
            .into_iter()
            .map(|result| match result? {
                Output::QueueDelta(delta) => {
                    self.add_backlog(delta);
                    Ok(())
                }
                _ => Err(StoreError::Backend("unexpected committer output".into())),
            })
            .collect()
    }

    async fn commit_delivery(&self, record: DeliveryRecord) -> Result<(), StoreError> {
        let delivery = &record.delivery;
        let key = keys::delivery(&delivery.id);
        let value = encode(delivery);
        let requeue = (!delivery.state.is_final()).then(|| {
            keys::queue(
                &delivery.service_id,
                delivery.next_attempt_at,
                &TaskKind::Deliver(delivery.id),
            )
        });
        let message = delivery.id.message;
        // A deferral (no event) changes no evidence: losing it in a crash only makes the
        // delivery due again sooner, so it need not wait for a flush.
        let durable = record.event.is_some();
        let events: Vec<JournalEvent> = record.event.into_iter().collect();
        let (task, at) = (record.task, record.at);
        let job: Job = Box::new(move |tx| {
            release_lease(tx, &task)?;
            tx.deliveries.insert(&key, value.as_slice())?;
            if let Some(queue_key) = &requeue {
                tx.queue.insert(queue_key.as_slice(), &[])?;
            }
            append_journal(tx, &message, at, &events)?;
            Ok(Output::QueueDelta(if requeue.is_some() { 0 } else { -1 }))
        });
        if let Output::QueueDelta(delta) = self.apply(job, durable).await? {
            self.add_backlog(delta);
        }
        Ok(())
    }

    async fn message(&self, id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        self.get(&self.inner.pipeline.messages, "messages", &id.to_bytes())
    }

    async fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
        self.get(
            &self.inner.pipeline.deliveries,
            "deliveries",
            &keys::delivery(id),
        )
    }

    async fn deliveries(&self, message: &MessageId) -> Result<Vec<Delivery>, StoreError> {
        self.inner
            .pipeline
            .deliveries
            .scan_prefix(message.to_bytes())
            .values()
            .map(|bytes| decode("deliveries", &bytes.map_err(backend)?))
            .collect()
    }

    async fn inbox(
        &self,
        fiscal_code: &FiscalCode,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        let lower = fiscal_code.as_str().as_bytes().to_vec();
        let upper = match before {
            Some(id) => keys::citizen_message(fiscal_code, &id),
            None => keys::citizen_message(fiscal_code, &MessageId::from_bytes([0xff; 16])),
        };
        self.inner
            .pipeline
            .inbox
            .range(lower..upper)
            .rev()
            .take(limit)
            .map(|item| citizen_message_id("inbox", &item.map_err(backend)?.0))
            .collect()
    }

    async fn inbox_contains(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
    ) -> Result<bool, StoreError> {
        self.inner
            .pipeline
            .inbox
            .contains_key(keys::citizen_message(fiscal_code, message))
            .map_err(backend)
    }

    async fn messages_to(
        &self,
        fiscal_code: &FiscalCode,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        let lower = match after {
            Some(id) => Bound::Excluded(keys::citizen_message(fiscal_code, &id)),
            None => Bound::Included(fiscal_code.as_str().as_bytes().to_vec()),
        };
        let upper = keys::citizen_message(fiscal_code, &MessageId::from_bytes([0xff; 16]));
        self.inner
            .pipeline
            .recipients
            .range((lower, Bound::Included(upper)))
            .take(limit)
            .map(|item| citizen_message_id("recipients", &item.map_err(backend)?.0))
            .collect()
    }

    async fn erase_citizen(&self, fiscal_code: &FiscalCode) -> Result<ErasureReport, StoreError> {
        erase::erase_citizen(self, fiscal_code).await
    }

    async fn journal(&self, message: &MessageId) -> Result<StoredJournal, StoreError> {
        let entries = self
            .inner
            .pipeline
            .journal
            .scan_prefix(message.to_bytes())
            .values()
            .map(|v| v.map(|bytes| bytes.to_vec()).map_err(backend))
            .collect::<Result<_, _>>()?;
        let head = self.get(
            &self.inner.pipeline.journal_heads,
            "journal_heads",
            &message.to_bytes(),
        )?;
        Ok(StoredJournal { entries, head })
    }

    async fn put_record(
        &self,
        space: RecordSpace,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let tree = self.record_space(space)?;
        match value {
            Some(value) => tree.insert(key, value).map(drop),
            None => tree.remove(key).map(drop),
        }
        .map_err(backend)?;
        self.sync().await
    }

    async fn swap_record(
        &self,
        space: RecordSpace,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), Option<Vec<u8>>>, StoreError> {
        let tree = self.record_space(space)?;
        let swapped = tree.compare_and_swap(key, expected, new).map_err(backend)?;
        match swapped {
            Ok(()) => {
                self.sync().await?;
                Ok(Ok(()))
            }
            Err(found) => Ok(Err(found.current.map(|v| v.to_vec()))),
        }
    }

    async fn record(&self, space: RecordSpace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tree = self.record_space(space)?;
        Ok(tree.get(key).map_err(backend)?.map(|v| v.to_vec()))
    }

    async fn records(
        &self,
        space: RecordSpace,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RecordEntry>, StoreError> {
        let tree = self.record_space(space)?;
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        let mut out = Vec::new();
        for item in tree.range((start, Bound::Unbounded)) {
            let (key, value) = item.map_err(backend)?;
            if !key.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((key.to_vec(), value.to_vec()));
        }
        Ok(out)
    }

    async fn purge_idempotency(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut purged = 0;
        for item in self.inner.pipeline.idempotency.iter() {
            let (key, bytes) = item.map_err(backend)?;
            let entry: IdempotencyEntry = decode("idempotency", &bytes)?;
            if entry.expires_at <= now {
                // Compare-and-swap: a concurrent reuse of the key is kept (and not counted).
                let swapped = self
                    .inner
                    .pipeline
                    .idempotency
                    .compare_and_swap(&key, Some(bytes), None::<Vec<u8>>)
                    .map_err(backend)?;
                if swapped.is_ok() {
                    purged += 1;
                }
            }
        }
        self.sync().await?;
        Ok(purged)
    }
}
