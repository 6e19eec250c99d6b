//! The `Store` trait: everything the engine keeps, in domain terms. Each method that writes is
//! one atomic group of writes, durable when it returns (that is what lets the server answer 201
//! only after the write). io-store implements it on sled; a conformance suite written once
//! against this trait checks every backend.

use std::future::Future;

use crate::{
    Activation, Delivery, DeliveryId, FiscalCode, IdempotencyKey, Installation, InstallationId,
    JournalEvent, JournalHead, Message, MessageId, MessageStatus, Profile, Service, ServiceId,
    ServicePreference, Timestamp,
};

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A versioned record was written from a stale version (HTTP 409).
    #[error("{what} was changed concurrently (stored version {stored}, update based on {given})")]
    Conflict {
        /// What kind of record.
        what: &'static str,
        /// The version stored.
        stored: u64,
        /// The version the update claimed to follow.
        given: u64,
    },
    /// The task's lease expired and another worker took it: this worker's result is dropped.
    #[error("the lease on {task} was lost to another worker")]
    LeaseLost {
        /// The task, for logs.
        task: String,
    },
    /// A record that cannot be decoded: data written by an incompatible version, or damage.
    #[error("corrupt record in {what}: {detail}")]
    Corrupt {
        /// Where.
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// The backend failed (I/O, connection). Retrying the operation may succeed.
    #[error("store backend failure: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Backend(_))
    }
}

/// The name of a space of auxiliary records (see [`Store::put_record`]): lower-case ASCII
/// letters, digits and `_`, chosen by the embedder at compile time.
pub type RecordSpace = &'static str;

/// An auxiliary record: its key and value.
pub type RecordEntry = (Vec<u8>, Vec<u8>);

/// What `commit_accept` writes atomically: message, status ACCEPTED, idempotency record, the
/// process task and the first journal entry.
#[derive(Debug, Clone)]
pub struct AcceptRecord {
    /// The message.
    pub message: Message,
    /// SHA-256 of the validated message, bound to the idempotency key.
    pub content_hash: String,
    /// The sender's idempotency key and when the record may be forgotten.
    pub idempotency: Option<(IdempotencyKey, Timestamp)>,
    /// The journal's first event.
    pub event: JournalEvent,
}

/// What `commit_accept` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// The message was stored.
    Created,
    /// The idempotency key was already used (and has not expired): nothing was written.
    Existing {
        /// The message the key was first used for.
        message_id: MessageId,
        /// The content hash it was used with.
        content_hash: String,
    },
}

/// A message with its current status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredMessage {
    /// The immutable message.
    pub message: Message,
    /// Its status.
    pub status: MessageStatus,
    /// When the status last changed.
    pub updated_at: Timestamp,
}

/// A unit of work in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskKind {
    /// Decide the channels of an accepted message.
    Process(MessageId),
    /// Attempt a delivery.
    Deliver(DeliveryId),
}

/// Exclusive, time-limited ownership of a task by one worker. When it runs out, the task is due
/// again and another worker may take it; the `token` fences the first worker's late writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// When the lease runs out.
    pub until: Timestamp,
    /// Increases with every claim of the same task.
    pub token: u64,
}

/// A claimed task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The service it belongs to (the fairness key).
    pub service_id: ServiceId,
    /// What to do.
    pub kind: TaskKind,
    /// The claim.
    pub lease: Lease,
}

/// What `commit_process` writes atomically.
#[derive(Debug, Clone)]
pub struct ProcessRecord {
    /// The claimed process task.
    pub task: Task,
    /// The message, as the engine read it (it never changes; only its status does).
    pub message: Message,
    /// PROCESSED, REJECTED or FAILED.
    pub status: MessageStatus,
    /// The deliveries to create (each becomes a task due at its `next_attempt_at`).
    pub deliveries: Vec<Delivery>,
    /// Whether to index the message in the recipient's inbox.
    pub into_inbox: bool,
    /// Journal events, in order.
    pub events: Vec<JournalEvent>,
    /// When.
    pub at: Timestamp,
}

/// What `commit_delivery` writes atomically: the delivery's new state, its next task if not
/// final, and the journal event, releasing the claimed task.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    /// The claimed delivery task.
    pub task: Task,
    /// The delivery after the attempt (or the deferral).
    pub delivery: Delivery,
    /// The journal event (`None` for a local rate-limit deferral, which is not an attempt).
    pub event: Option<JournalEvent>,
    /// When.
    pub at: Timestamp,
}

/// A message's journal as stored: the raw entries (so verification sees every byte) and the
/// head kept apart.
#[derive(Debug, Clone, Default)]
pub struct StoredJournal {
    /// Canonical entry encodings, in sequence order.
    pub entries: Vec<Vec<u8>>,
    /// The head.
    pub head: Option<JournalHead>,
}

/// What [`Store::erase_citizen`] removed: counts of records, for the GDPR request's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErasureReport {
    /// Whether the citizen had a profile.
    pub profile: bool,
    /// Per-service preferences, under every settings version.
    pub preferences: u64,
    /// Activations of SPECIAL services.
    pub activations: u64,
    /// Device installations.
    pub installations: u64,
    /// Messages to the citizen, whatever their status, with their inbox entries.
    pub messages: u64,
    /// Those messages' deliveries.
    pub deliveries: u64,
    /// Those messages' queued tasks (to process or to deliver), leased or not: the backlog
    /// shrinks by as much.
    pub tasks: u64,
}

/// The engine's persistence. Reads return `Ok(None)` for absent records. Implementations must
/// make each write method atomic, and durable before it returns, except where a method says
/// otherwise: claims, discards and deferrals change no evidence, and losing one in a crash only
/// makes a task due again sooner.
pub trait Store: Send + Sync + 'static {
    /// Creates (version 1) or updates (stored version + 1) a service.
    fn put_service(&self, service: &Service)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A service by id.
    fn service(
        &self,
        id: &ServiceId,
    ) -> impl Future<Output = Result<Option<Service>, StoreError>> + Send;
    /// Every service, ordered by id.
    fn services(&self) -> impl Future<Output = Result<Vec<Service>, StoreError>> + Send;

    /// Creates (version 0) or updates (stored version + 1) a profile.
    fn put_profile(&self, profile: &Profile)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A profile by fiscal code.
    fn profile(
        &self,
        fiscal_code: &FiscalCode,
    ) -> impl Future<Output = Result<Option<Profile>, StoreError>> + Send;

    /// Stores a preference under its settings version.
    fn put_preference(
        &self,
        fiscal_code: &FiscalCode,
        preference: &ServicePreference,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The preference for a service under a settings version.
    fn preference(
        &self,
        fiscal_code: &FiscalCode,
        service: &ServiceId,
        settings_version: u64,
    ) -> impl Future<Output = Result<Option<ServicePreference>, StoreError>> + Send;
    /// Every preference a citizen has stored, for any service and under any settings version,
    /// ordered by service, then settings version: part of a GDPR download.
    fn preferences_of(
        &self,
        fiscal_code: &FiscalCode,
    ) -> impl Future<Output = Result<Vec<ServicePreference>, StoreError>> + Send;

    /// Stores an activation.
    fn put_activation(
        &self,
        activation: &Activation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The activation of a service by a citizen.
    fn activation(
        &self,
        service: &ServiceId,
        fiscal_code: &FiscalCode,
    ) -> impl Future<Output = Result<Option<Activation>, StoreError>> + Send;
    /// Every activation of a citizen, ordered by service: part of a GDPR download. A backend
    /// may have to scan every activation for it (sled does): it serves rare requests, never
    /// the pipeline.
    fn activations_of(
        &self,
        fiscal_code: &FiscalCode,
    ) -> impl Future<Output = Result<Vec<Activation>, StoreError>> + Send;

    /// Registers or replaces a device installation.
    fn put_installation(
        &self,
        fiscal_code: &FiscalCode,
        installation: &Installation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes a device installation (pruned token); absent is fine.
    fn remove_installation(
        &self,
        fiscal_code: &FiscalCode,
        installation: &InstallationId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A citizen's installations.
    fn installations(
        &self,
        fiscal_code: &FiscalCode,
    ) -> impl Future<Output = Result<Vec<Installation>, StoreError>> + Send;

    /// Accepts a message atomically, or reports the earlier use of its idempotency key.
    fn commit_accept(
        &self,
        record: AcceptRecord,
    ) -> impl Future<Output = Result<AcceptOutcome, StoreError>> + Send;

    /// Services with at least one task due at `now`, in id order, strictly after `after` when
    /// given, at most `limit`.
    fn due_services(
        &self,
        now: Timestamp,
        after: Option<&ServiceId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ServiceId>, StoreError>> + Send;
    /// Claims, for each of `services`, up to `per_service` of its tasks due at `now`, oldest
    /// first, leased until `lease_until`. A claim needs not be durable: a claim lost in a crash
    /// only makes the task due again sooner.
    fn claim_tasks(
        &self,
        services: &[ServiceId],
        now: Timestamp,
        per_service: usize,
        lease_until: Timestamp,
    ) -> impl Future<Output = Result<Vec<Task>, StoreError>> + Send;
    /// Drops a claimed task whose record is gone or already final (need not be durable);
    /// `LeaseLost` if the lease was taken over, or the task is gone with an erased citizen.
    fn discard_task(&self, task: &Task) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// When the earliest queued task is due (leased tasks count at their lease's end).
    fn next_due_at(&self) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send;
    /// Number of queued tasks (due or not, leased or not): the engine's backlog.
    fn backlog(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Records processing decisions, each atomically and independently of the others (one
    /// result per record, in order; `LeaseLost` for a task whose lease was taken over). Taking
    /// them together lets a backend share one transaction and one flush among them.
    fn commit_processes(
        &self,
        records: Vec<ProcessRecord>,
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> + Send;
    /// Records one processing decision atomically (see [`Store::commit_processes`]).
    fn commit_process(
        &self,
        record: ProcessRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.commit_processes(vec![record])
                .await
                .pop()
                .unwrap_or_else(|| Err(StoreError::Backend("no result for the record".into())))
        }
    }
    /// Records a delivery attempt or deferral atomically; `LeaseLost` as above. A deferral
    /// (`event: None`) need not be durable.
    fn commit_delivery(
        &self,
        record: DeliveryRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A message with its status.
    fn message(
        &self,
        id: &MessageId,
    ) -> impl Future<Output = Result<Option<StoredMessage>, StoreError>> + Send;
    /// A delivery.
    fn delivery(
        &self,
        id: &DeliveryId,
    ) -> impl Future<Output = Result<Option<Delivery>, StoreError>> + Send;
    /// A message's deliveries, in channel order.
    fn deliveries(
        &self,
        message: &MessageId,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;
    /// A citizen's inbox, newest first, strictly older than `before` when given.
    fn inbox(
        &self,
        fiscal_code: &FiscalCode,
        before: Option<MessageId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<MessageId>, StoreError>> + Send;
    /// Whether a message is in a citizen's inbox.
    fn inbox_contains(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Every message ever accepted for a citizen, whatever its status and whether or not it
    /// reached the inbox, oldest first, strictly after `after` when given, at most `limit`:
    /// what a GDPR download lists. `after` may name any message, the citizen's or not.
    fn messages_to(
        &self,
        fiscal_code: &FiscalCode,
        after: Option<MessageId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<MessageId>, StoreError>> + Send;
    /// Erases a citizen's data (GDPR deletion), atomically and durably: the profile, every
    /// preference, activation and installation, and every message ever accepted for them
    /// (those [`Store::messages_to`] lists) with its inbox entry, its deliveries and its queued
    /// tasks. A task of those messages held by a worker loses its lease, so that worker's
    /// commit fails with `LeaseLost` and writes nothing back. The messages' journals and
    /// journal heads are kept: they name the citizen only by hash. A citizen without data is
    /// fine (all counts zero). Writes for the citizen not ordered before the erasure (a new
    /// message, a profile written meanwhile) may outlive it: a caller that must keep the
    /// citizen erased refuses them first.
    fn erase_citizen(
        &self,
        fiscal_code: &FiscalCode,
    ) -> impl Future<Output = Result<ErasureReport, StoreError>> + Send;

    /// A message's journal as stored.
    fn journal(
        &self,
        message: &MessageId,
    ) -> impl Future<Output = Result<StoredJournal, StoreError>> + Send;

    /// Writes (or, with `None`, deletes) an auxiliary record, durably. Auxiliary records are
    /// what an embedder keeps beside the engine's data (the server keeps API-key hashes,
    /// read flags and subscription events there), grouped in named spaces so that a backend
    /// can store each space apart; keys sort bytewise within a space.
    fn put_record(
        &self,
        space: RecordSpace,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Replaces a record only if it still holds `expected` (`None`: absent), durably: the
    /// building block of uniqueness checks. Returns the value found when it did not.
    fn swap_record(
        &self,
        space: RecordSpace,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> impl Future<Output = Result<Result<(), Option<Vec<u8>>>, StoreError>> + Send;
    /// An auxiliary record.
    fn record(
        &self,
        space: RecordSpace,
        key: &[u8],
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Up to `limit` records of a space whose key starts with `prefix`, in key order,
    /// strictly after `after` when given.
    fn records(
        &self,
        space: RecordSpace,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordEntry>, StoreError>> + Send;

    /// Forgets idempotency records whose expiry is at or before `now`; returns how many.
    fn purge_idempotency(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
