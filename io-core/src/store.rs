//! The `Store` trait: everything the engine and the server keep, in domain terms. Each method
//! that writes is one atomic group of writes, durable when it returns (that is what lets the
//! server answer 201 only after the write), so a backend can give each record kind its table,
//! unique index and transaction. io-store implements it on sled; a conformance suite written
//! once against this trait checks every backend.
//!
//! Sections: reference data (services, their API access and callbacks); citizens (profiles
//! with the uniqueness of validated emails, preferences, activations, installations, message
//! flags, the subscriptions feed); the pipeline (accept, the task queue with leases, decisions,
//! attempts, callbacks); reads; GDPR (requests and erasure); maintenance.

mod records;

use std::future::Future;

pub use records::{
    AcceptOutcome, AcceptRecord, AttemptStart, CallbackRecord, DeliveryRecord, DueRequest, Erasure,
    ErasureReport, Evidence, Lease, ProcessRecord, ReceiptOutcome, ReceiptRecord, RecipientRecords,
    StoredJournal, StoredMessage, Task, TaskKind,
};

use crate::{
    Activation, ApiKeyOwner, CallbackCursor, CallbackTarget, Choice, ConfigurationId, DataRequest,
    DayFeed, Delivery, DeliveryId, EmailAddress, FeedDay, FeedEvent, FiscalCode, FlagsChange,
    FlagsError, Installation, InstallationId, KeyHash, LifecycleStatus, Logo, LogoOwner,
    MessageFlags, MessageId, OrganizationFiscalCode, Profile, RemoteContentConfiguration, Service,
    ServiceAccess, ServiceChange, ServiceHistoryItem, ServiceId, ServiceLifecycle,
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
    /// A value that must be unique is held by another record: a validated email address of
    /// another citizen (HTTP 412).
    #[error("{what} is already taken")]
    Taken {
        /// What kind of value.
        what: &'static str,
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

/// The engine's and the server's persistence. Reads return `Ok(None)` for absent records.
/// Implementations make each write method atomic, and durable before it returns, except where a
/// method says otherwise: claims, discards and deferrals change no evidence, and losing one in
/// a crash only makes a task due again sooner.
pub trait Store: Send + Sync + 'static {
    // -- Reference data -------------------------------------------------------------------

    /// Creates (version 1) or updates (stored version + 1) a service.
    fn put_service(&self, service: &Service)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    /// [`Store::put_service`] and [`Store::put_service_access`] in one atomic write: a service
    /// is never visible without its keys, nor its groups out of step with it. Either version
    /// out of step refuses both (`Conflict`).
    fn put_service_with_access(
        &self,
        service: &Service,
        access: &ServiceAccess,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A service by id.
    fn service(
        &self,
        id: &ServiceId,
    ) -> impl Future<Output = Result<Option<Service>, StoreError>> + Send;
    /// Every service, ordered by id.
    fn services(&self) -> impl Future<Output = Result<Vec<Service>, StoreError>> + Send;
    /// Replaces a service's API access and, in the same write, the index from key hash to
    /// service: the hashes of replaced keys stop authenticating, the new ones start.
    /// `Conflict` unless `access.version` is the stored version plus one (1 for a service
    /// without access): a change computed from a stale read is refused, never merged.
    fn put_service_access(
        &self,
        service: &ServiceId,
        access: &ServiceAccess,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A service's API access.
    fn service_access(
        &self,
        service: &ServiceId,
    ) -> impl Future<Output = Result<Option<ServiceAccess>, StoreError>> + Send;
    /// Whose key has this hash (a key in force).
    fn api_key_owner(
        &self,
        hash: &KeyHash,
    ) -> impl Future<Output = Result<Option<ApiKeyOwner>, StoreError>> + Send;
    /// Writes a managed service's change in one atomic write: its lifecycle, the history
    /// items the change adds, the service the engine sends with and, for a new service, its
    /// access. `Conflict` unless the lifecycle's and the service's versions each follow the
    /// stored ones (1 for new records) and the access, if any, is a new service's; nothing is
    /// written then.
    fn commit_service_change(
        &self,
        change: &ServiceChange,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A managed service's lifecycle.
    fn service_lifecycle(
        &self,
        service: &ServiceId,
    ) -> impl Future<Output = Result<Option<ServiceLifecycle>, StoreError>> + Send;
    /// The lifecycles of an institution's services, ordered by service id (deleted ones
    /// included: the caller filters).
    fn service_lifecycles(
        &self,
        organization: &OrganizationFiscalCode,
    ) -> impl Future<Output = Result<Vec<ServiceLifecycle>, StoreError>> + Send;
    /// The managed services of every institution whose lifecycle is in `status`, ordered by
    /// service id: the platform's review queue is those `Submitted`.
    fn service_lifecycles_with_status(
        &self,
        status: LifecycleStatus,
    ) -> impl Future<Output = Result<Vec<ServiceLifecycle>, StoreError>> + Send;
    /// A managed service's history, oldest first.
    fn service_history(
        &self,
        service: &ServiceId,
    ) -> impl Future<Output = Result<Vec<ServiceHistoryItem>, StoreError>> + Send;
    /// Sets (`Some`, replacing the one kept) or removes (`None`) the logo of a service or an
    /// institution.
    fn put_logo(
        &self,
        owner: &LogoOwner,
        logo: Option<&Logo>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The logo of a service or an institution.
    fn logo(
        &self,
        owner: &LogoOwner,
    ) -> impl Future<Output = Result<Option<Logo>, StoreError>> + Send;
    /// Writes a remote-content configuration: `Conflict` unless its version follows the
    /// stored one (1 for a new configuration); nothing is written then.
    fn put_remote_content_configuration(
        &self,
        configuration: &RemoteContentConfiguration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A remote-content configuration.
    fn remote_content_configuration(
        &self,
        id: &ConfigurationId,
    ) -> impl Future<Output = Result<Option<RemoteContentConfiguration>, StoreError>> + Send;
    /// An institution's remote-content configurations, by id.
    fn remote_content_configurations(
        &self,
        organization: &OrganizationFiscalCode,
    ) -> impl Future<Output = Result<Vec<RemoteContentConfiguration>, StoreError>> + Send;
    /// Registers (`Some`) or removes (`None`) a service's callback target. Outboxes already
    /// open keep going to the registration in force when each event is sent.
    fn put_callback(
        &self,
        service: &ServiceId,
        target: Option<&CallbackTarget>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A service's callback target.
    fn callback(
        &self,
        service: &ServiceId,
    ) -> impl Future<Output = Result<Option<CallbackTarget>, StoreError>> + Send;

    // -- Citizens ---------------------------------------------------------------------------

    /// Creates (version 0) or updates (stored version + 1) a profile. A validated email is
    /// unique across citizens: `Taken` when another citizen's profile holds the same address
    /// validated; an address the citizen gives up (changed or no longer validated) is free at
    /// once.
    fn put_profile(&self, profile: &Profile)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    /// [`Store::put_profile`] and a feed event in one atomic write.
    fn put_profile_with_feed(
        &self,
        profile: &Profile,
        event: &FeedEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A profile by fiscal code.
    fn profile(
        &self,
        fiscal_code: &FiscalCode,
    ) -> impl Future<Output = Result<Option<Profile>, StoreError>> + Send;
    /// The citizen whose profile holds `email` validated, if any.
    fn email_owner(
        &self,
        email: &EmailAddress,
    ) -> impl Future<Output = Result<Option<FiscalCode>, StoreError>> + Send;

    /// Stores a preference under its settings version.
    fn put_preference(
        &self,
        fiscal_code: &FiscalCode,
        preference: &ServicePreference,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// [`Store::put_preference`] and a feed event in one atomic write.
    fn put_preference_with_feed(
        &self,
        fiscal_code: &FiscalCode,
        preference: &ServicePreference,
        event: &FeedEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The preference for a service under a settings version.
    fn preference(
        &self,
        fiscal_code: &FiscalCode,
        service: &ServiceId,
        settings_version: u64,
    ) -> impl Future<Output = Result<Option<ServicePreference>, StoreError>> + Send;
    /// What deciding a message of `service` to `fiscal_code` reads, in one call: the profile,
    /// the preference under the profile's settings version, the activation when `activation`
    /// (SPECIAL services), and whether any installation is registered when `devices`. A backend
    /// with round trips (PostgreSQL) reads them with one query instead of four.
    fn recipient(
        &self,
        fiscal_code: &FiscalCode,
        service: &ServiceId,
        activation: bool,
        devices: bool,
    ) -> impl Future<Output = Result<RecipientRecords, StoreError>> + Send {
        async move {
            let profile = self.profile(fiscal_code).await?;
            let preference = match &profile {
                Some(p) => {
                    let version = p.service_preferences_settings.version;
                    self.preference(fiscal_code, service, version).await?
                }
                None => None,
            };
            let activation = match activation {
                true => self.activation(service, fiscal_code).await?,
                false => None,
            };
            let has_devices = devices && !self.installations(fiscal_code).await?.is_empty();
            Ok(RecipientRecords {
                profile,
                preference,
                activation,
                has_devices,
            })
        }
    }
    /// Every preference a citizen has stored, for any service and under any settings version,
    /// ordered by service, then settings version: part of a GDPR download.
    fn preferences_of(
        &self,
        fiscal_code: &FiscalCode,
    ) -> impl Future<Output = Result<Vec<ServicePreference>, StoreError>> + Send;

    /// Stores an activation as the next version of the service's activation for the citizen
    /// (0 for the first; the given `version` is ignored) and returns it as stored.
    fn put_activation(
        &self,
        activation: &Activation,
    ) -> impl Future<Output = Result<Activation, StoreError>> + Send;
    /// The activation of a service by a citizen.
    fn activation(
        &self,
        service: &ServiceId,
        fiscal_code: &FiscalCode,
    ) -> impl Future<Output = Result<Option<Activation>, StoreError>> + Send;
    /// Every activation of a citizen, ordered by service: part of a GDPR download.
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
    /// Removes a device installation; absent is fine.
    fn remove_installation(
        &self,
        fiscal_code: &FiscalCode,
        installation: &InstallationId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A citizen's installations, ordered by id.
    fn installations(
        &self,
        fiscal_code: &FiscalCode,
    ) -> impl Future<Output = Result<Vec<Installation>, StoreError>> + Send;

    /// The citizen's flags on a message (all false when never set).
    fn message_flags(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
    ) -> impl Future<Output = Result<MessageFlags, StoreError>> + Send;
    /// Applies `change` to the flags atomically (a concurrent change of the other flag is
    /// kept); returns the flags stored, or the domain's refusal (`MessageFlags::changed`).
    fn change_message_flags(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
        change: FlagsChange,
    ) -> impl Future<Output = Result<Result<MessageFlags, FlagsError>, StoreError>> + Send;

    /// Records a feed event on its own (the `_with_feed` writes record theirs atomically).
    fn record_feed_event(
        &self,
        event: &FeedEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// `service`'s feed for `day`: events for every service and for this one, the last of the
    /// day per citizen winning, a service-level event over a profile-level one.
    fn subscriptions_feed(
        &self,
        day: FeedDay,
        service: &ServiceId,
    ) -> impl Future<Output = Result<DayFeed, StoreError>> + Send;

    // -- The pipeline -----------------------------------------------------------------------

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
    /// first (a message's tasks next to each other), leased until `lease_until`. A claim needs
    /// not be durable: a claim lost in a crash only makes the task due again sooner. A backend
    /// that a single process owns (sled) keeps leases in memory, so a restart releases them
    /// all at once.
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
    /// Resolves when work may have been queued by another process sharing the store, so that
    /// an idle worker looks for it at once rather than at its next poll. A store that one
    /// process owns never resolves: the engine knows its own submits.
    fn work_queued(&self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }

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
    /// Records that attempts start, each atomically (one result per start, in order;
    /// `LeaseLost` as above), durably before any of them calls its provider: after a crash the
    /// delivery says an attempt's outcome is pending, and the next claim records it unknown.
    fn start_attempts(
        &self,
        starts: Vec<AttemptStart>,
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> + Send;
    /// Records delivery outcomes or deferrals, each atomically with its journal events and
    /// effects (one result per record, in order; `LeaseLost` as above). Records without events
    /// (deferrals) need not be durable.
    fn commit_deliveries(
        &self,
        records: Vec<DeliveryRecord>,
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> + Send;
    /// Records one delivery outcome (see [`Store::commit_deliveries`]).
    fn commit_delivery(
        &self,
        record: DeliveryRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.commit_deliveries(vec![record])
                .await
                .pop()
                .unwrap_or_else(|| Err(StoreError::Backend("no result for the record".into())))
        }
    }
    /// Records a PEC receipt in one atomic, durable write: its bytes as [`Evidence`] of the
    /// message, a `ReceiptRecorded` journal entry, and the PEC delivery as
    /// [`pec::after_receipt`](crate::pec::after_receipt) leaves it (queued again, or out of the
    /// queue when final). A lease on the delivery's task is released, so an attempt in flight
    /// cannot overwrite what the receipt says; its outcome is journaled unknown. The same bytes
    /// again write nothing (`Duplicate`): reading a mailbox twice counts nothing twice.
    fn commit_receipt(
        &self,
        record: ReceiptRecord,
    ) -> impl Future<Output = Result<ReceiptOutcome, StoreError>> + Send;
    /// The receipts kept as evidence of a message, in the order they were recorded.
    fn evidence(
        &self,
        message: &MessageId,
    ) -> impl Future<Output = Result<Vec<Evidence>, StoreError>> + Send;
    /// A message's callback outbox, if open.
    fn callback_cursor(
        &self,
        message: &MessageId,
    ) -> impl Future<Output = Result<Option<CallbackCursor>, StoreError>> + Send;
    /// Records a callback task's progress atomically; `LeaseLost` as above.
    fn commit_callback(
        &self,
        record: CallbackRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    // -- Reads ------------------------------------------------------------------------------

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
    /// The deliveries of each of `messages` (those gone have none), in no particular order. A
    /// backend with round trips (PostgreSQL) reads them in one query: a round of deliveries
    /// reads once, not once per message.
    fn deliveries_of_messages(
        &self,
        messages: &[MessageId],
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send {
        async move {
            let mut all = Vec::new();
            for message in messages {
                all.extend(self.deliveries(message).await?);
            }
            Ok(all)
        }
    }
    /// The messages of `ids` that exist, with their status, in no particular order; see
    /// [`Store::deliveries_of_messages`].
    fn messages_by_id(
        &self,
        ids: &[MessageId],
    ) -> impl Future<Output = Result<Vec<StoredMessage>, StoreError>> + Send {
        async move {
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                found.extend(self.message(id).await?);
            }
            Ok(found)
        }
    }
    /// The profiles of `citizens` that exist, in no particular order; see
    /// [`Store::deliveries_of_messages`].
    fn profiles_of(
        &self,
        citizens: &[FiscalCode],
    ) -> impl Future<Output = Result<Vec<Profile>, StoreError>> + Send {
        async move {
            let mut found = Vec::with_capacity(citizens.len());
            for citizen in citizens {
                found.extend(self.profile(citizen).await?);
            }
            Ok(found)
        }
    }
    /// The installations of each of `citizens`: one entry per citizen in `citizens` order,
    /// empty for none, each ordered by id; see [`Store::deliveries_of_messages`].
    fn installations_of(
        &self,
        citizens: &[FiscalCode],
    ) -> impl Future<Output = Result<Vec<(FiscalCode, Vec<Installation>)>, StoreError>> + Send {
        async move {
            let mut found = Vec::with_capacity(citizens.len());
            for citizen in citizens {
                found.push((citizen.clone(), self.installations(citizen).await?));
            }
            Ok(found)
        }
    }
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
    /// A message's journal as stored.
    fn journal(
        &self,
        message: &MessageId,
    ) -> impl Future<Output = Result<StoredJournal, StoreError>> + Send;

    // -- GDPR -------------------------------------------------------------------------------

    /// A citizen's request of `choice`.
    fn data_request(
        &self,
        fiscal_code: &FiscalCode,
        choice: Choice,
    ) -> impl Future<Output = Result<Option<DataRequest>, StoreError>> + Send;
    /// Replaces the citizen's request of `choice` only if it still is `expected` (`None`:
    /// absent) with `new` (`None`: removes it); false when it changed meanwhile. An open
    /// request is listed by [`Store::due_data_requests`] from its due time on, in step.
    fn swap_data_request(
        &self,
        fiscal_code: &FiscalCode,
        choice: Choice,
        expected: Option<&DataRequest>,
        new: Option<&DataRequest>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Up to `limit` open requests due at `now`, earliest first, strictly after `after` when
    /// given: the worker reads only what is due, however many requests wait.
    fn due_data_requests(
        &self,
        now: Timestamp,
        after: Option<&DueRequest>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DueRequest>, StoreError>> + Send;
    /// Erases a citizen's data (GDPR deletion) in one atomic, durable write: the profile (and
    /// with it the claim on a validated email), every preference, activation, installation and
    /// message flag, their DOWNLOAD request, and every message ever accepted for them (those
    /// [`Store::messages_to`] lists) with its inbox entry, deliveries and queued tasks; the
    /// feed records them unsubscribed from every service at `erasure.at` if they had a profile;
    /// the DELETE request is written as `erasure.closes`. A task of those messages held by a
    /// worker loses its lease, so that worker's commit fails with `LeaseLost` and writes
    /// nothing back (an attempt already started may still reach its provider). The messages'
    /// journals and journal heads are kept: they name the citizen only by hash. A citizen without data is fine (all counts zero). Writes for the citizen
    /// not ordered before the erasure (a new message, a profile written meanwhile) may outlive
    /// it: a caller that must keep the citizen erased refuses them first.
    fn erase_citizen(
        &self,
        erasure: &Erasure,
    ) -> impl Future<Output = Result<ErasureReport, StoreError>> + Send;

    // -- Maintenance ------------------------------------------------------------------------

    /// Forgets idempotency records whose expiry is at or before `now`; returns how many.
    fn purge_idempotency(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
