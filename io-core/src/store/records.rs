//! The vocabulary of the [`Store`](crate::Store) trait: what each atomic write carries, the
//! queue's tasks and leases, and what reads return.

use crate::{
    Activation, CallbackCursor, DataRequest, Delivery, Effect, FiscalCode, IdempotencyKey,
    JournalEvent, JournalHead, Message, MessageId, MessageStatus, Profile, ServiceId,
    ServicePreference, Timestamp,
};

/// What `commit_accept` writes atomically: the message, its status, the idempotency record,
/// the journal's first entries and, either a *process* task (status ACCEPTED: the decision is
/// taken later by a worker) or the decision itself (status PROCESSED or REJECTED, with the
/// inbox entry and the deliveries), and the sender-callback outbox when the service has one.
#[derive(Debug, Clone)]
pub struct AcceptRecord {
    /// The message.
    pub message: Message,
    /// SHA-256 of the validated message, bound to the idempotency key.
    pub content_hash: String,
    /// The sender's idempotency key and when the record may be forgotten.
    pub idempotency: Option<(IdempotencyKey, Timestamp)>,
    /// ACCEPTED (a process task is queued), or the status the decision led to.
    pub status: MessageStatus,
    /// The deliveries the decision created (empty while ACCEPTED); each one not final becomes
    /// a task due at its `next_attempt_at`.
    pub deliveries: Vec<Delivery>,
    /// Whether to list the message in the recipient's inbox.
    pub into_inbox: bool,
    /// The journal's first events, in order (`Accepted` first).
    pub events: Vec<JournalEvent>,
    /// Opens the message's sender-callback outbox (the service has a callback registered).
    pub open_callbacks: bool,
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
    Deliver(crate::DeliveryId),
    /// Send the message's unacknowledged journal entries to its sender's callback.
    Callback(MessageId),
}

impl TaskKind {
    /// The message the task works on.
    pub fn message(&self) -> MessageId {
        match self {
            Self::Process(id) | Self::Callback(id) => *id,
            Self::Deliver(id) => id.message,
        }
    }
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

/// What `commit_processes` writes atomically for one message.
#[derive(Debug, Clone)]
pub struct ProcessRecord {
    /// The claimed process task.
    pub task: Task,
    /// The message, as the engine read it (it never changes; only its status does).
    pub message: Message,
    /// PROCESSED, REJECTED or FAILED.
    pub status: MessageStatus,
    /// The deliveries to create (each not final becomes a task due at its `next_attempt_at`).
    pub deliveries: Vec<Delivery>,
    /// Whether to index the message in the recipient's inbox.
    pub into_inbox: bool,
    /// Journal events, in order.
    pub events: Vec<JournalEvent>,
    /// When.
    pub at: Timestamp,
}

/// What `start_attempts` writes for one delivery before its channel is called: the attempt
/// counted (`attempts` + 1, `outcome_pending`), and, when the previous attempt's outcome was
/// lost in a crash, the journal entry that says so. The lease is kept.
#[derive(Debug, Clone)]
pub struct AttemptStart {
    /// The claimed delivery task.
    pub task: Task,
    /// The delivery with the attempt counted.
    pub delivery: Delivery,
    /// `OutcomeUnknown` of the previous attempt, when there is one to record.
    pub event: Option<JournalEvent>,
    /// When.
    pub at: Timestamp,
}

/// What `commit_deliveries` writes atomically for one delivery: its new state, its next task
/// if not final, the journal events and the channel's effects, releasing the claimed task.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    /// The claimed delivery task.
    pub task: Task,
    /// The delivery after the attempt (or the deferral).
    pub delivery: Delivery,
    /// The journal events, in order (none for a local rate-limit deferral, which is not an
    /// attempt and need not be durable).
    pub events: Vec<JournalEvent>,
    /// What the channel asked to change beside the delivery.
    pub effects: Vec<Effect>,
    /// When.
    pub at: Timestamp,
}

/// What `commit_callback` writes: the outbox's new cursor, releasing the claimed task.
#[derive(Debug, Clone)]
pub struct CallbackRecord {
    /// The claimed callback task.
    pub task: Task,
    /// The cursor after the attempts of this run.
    pub cursor: CallbackCursor,
    /// When to try again (a failed attempt's backoff); `None` when every entry known to the
    /// engine was acknowledged: the outbox then waits for the next journal entry, or is closed
    /// when `close` is set. The store keeps the task due at once if the journal grew meanwhile.
    pub retry_at: Option<Timestamp>,
    /// The message is final and fully reported: remove the outbox (unless the journal grew).
    pub close: bool,
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

/// A GDPR request due for carrying out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRequest {
    /// Whose request.
    pub fiscal_code: FiscalCode,
    /// The request as stored (open, due).
    pub request: DataRequest,
}

/// A GDPR erasure: whose, when, and the DELETE request it closes.
#[derive(Debug, Clone)]
pub struct Erasure {
    /// The citizen.
    pub fiscal_code: FiscalCode,
    /// When (the feed's Unsubscribed event carries it).
    pub at: Timestamp,
    /// The DELETE request as stored once the erasure is done (CLOSED), written in the same
    /// write: the trace that the erasure happened.
    pub closes: Option<DataRequest>,
}

/// What [`Store::erase_citizen`](crate::Store::erase_citizen) removed: counts of records, for
/// the GDPR request's log.
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
    /// Those messages' queued tasks (to process, deliver or call back), leased or not: the
    /// backlog shrinks by as much.
    pub tasks: u64,
    /// Messages on which the citizen had set flags.
    pub flags: u64,
}

/// What `commit_receipt` writes atomically: the receipt's bytes as evidence, the journal
/// entries, and the PEC delivery as [`pec::after_receipt`](crate::pec::after_receipt) leaves it.
#[derive(Debug, Clone)]
pub struct ReceiptRecord {
    /// The receipt.
    pub receipt: crate::pec::Receipt,
    /// The windows in force (the delivery receipt is due within `delivery` of submission).
    pub windows: crate::pec::ReceiptWindows,
    /// When it was read.
    pub at: Timestamp,
}

/// What `commit_receipt` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// Kept as evidence and journaled, with what it did to the delivery.
    Recorded {
        /// The sender, for observers.
        service_id: ServiceId,
        /// The journal events written, in order.
        events: Vec<JournalEvent>,
    },
    /// The same bytes were recorded before: nothing was written.
    Duplicate,
    /// No PEC delivery of that message exists (never sent by PEC, or erased): nothing was
    /// written.
    UnknownDelivery,
}

/// A receipt kept as evidence: its exact bytes, named by their SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct Evidence {
    /// SHA-256 of `bytes`, lower-case hex, as the journal names it.
    pub sha256: String,
    /// The receipt exactly as read.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evidence")
            .field("sha256", &self.sha256)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// What deciding a message reads about its recipient, read together ([`Store::recipient`](crate::Store::recipient)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientRecords {
    /// The citizen's profile, if any.
    pub profile: Option<Profile>,
    /// The citizen's preference for the service, under the profile's settings version.
    pub preference: Option<ServicePreference>,
    /// The citizen's activation of the service, when it was asked for.
    pub activation: Option<Activation>,
    /// Whether the citizen has a registered installation, when it was asked for.
    pub has_devices: bool,
}
