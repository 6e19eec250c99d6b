//! The store conformance suite: every behaviour the [`Store`] trait documents, written once
//! against the trait and run against each backend.
//!
//! Every case is an `async fn case(store: impl Store)` that uses the trait only; the
//! `conformance!` macro instantiates one module per backend with one `#[tokio::test]` per case,
//! each on a fresh store. Time is never read from a clock: the store is told the time, so every
//! instant below is a fixed offset from [`T0`] and nothing sleeps. Backend-specific cases (a
//! sled directory reopened) live after the macro, in a module named for the backend.

use io_core::journal::verify_stored;
use io_core::{
    AcceptOutcome, AcceptRecord, Activation, ActivationStatus, ChannelKind, Delivery, DeliveryId,
    DeliveryRecord, DeliveryState, DeliveryTarget, EmailAddress, Erasure, ErasureReport,
    FiscalCode, IdempotencyKey, Installation, InstallationId, JournalEntry, JournalEvent,
    JournalHead, Message, MessageId, MessageStatus, NewMessage, NewMessageContent,
    OrganizationFiscalCode, OutcomeRecord, ProcessRecord, Profile, PushPlatform, RecipientRecords,
    RejectionReason, SenderCapabilities, SenderLimits, Service, ServiceId, ServiceMetadata,
    ServicePreference, ServicePreferencesMode, Store, StoreError, StoredJournal, StoredMessage,
    Task, TaskKind, Timestamp, TransientCause,
};
use io_core::{
    ApiKeyOwner, AttemptStart, CallbackCursor, CallbackRecord, CallbackTarget, Choice, DataRequest,
    DueRequest, Effect, FailureReason, FeedDay, FeedEvent, FeedScope, FlagsChange, FlagsError,
    Group, Groups, HistoryKind, KeySlot, MessageFlags, RequestStatus, ServiceAccess,
    ServiceLifecycle, Subscription,
};
use io_store::SledStore;

mod attempts;
mod callbacks;
mod receipts;
mod records;

use attempts::*;
use callbacks::*;
use receipts::*;
use records::*;

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

/// The suite's fixed "now": every instant is an offset from it.
const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);
/// How long a claim lasts in these cases.
const LEASE_MS: i64 = 30_000;
/// Large enough to claim every task of a service in one call.
const ALL: usize = 1_000;

/// `T0` plus `ms` milliseconds.
fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + ms)
}

/// The default lease end for a claim made at `now`.
fn lease_from(now: Timestamp) -> Timestamp {
    Timestamp::from_millis(now.as_millis() + LEASE_MS)
}

fn citizen() -> FiscalCode {
    FiscalCode::parse("RSSMRA85T10A562S").unwrap()
}

fn other_citizen() -> FiscalCode {
    FiscalCode::parse("MRTMTT25D09F205Z").unwrap()
}

/// A citizen the store knows nothing about.
fn third_citizen() -> FiscalCode {
    let first15 = "BNCGLI70C41L219";
    let check = io_core::fiscal_code::compute_check_character(first15).unwrap();
    FiscalCode::parse(&format!("{first15}{check}")).unwrap()
}

fn sid(id: &str) -> ServiceId {
    ServiceId::parse(id).unwrap()
}

fn sids(ids: &[&str]) -> Vec<ServiceId> {
    ids.iter().map(|id| sid(id)).collect()
}

fn service(id: &str, version: u64) -> Service {
    Service {
        service_id: sid(id),
        service_name: format!("Servizio {id} v{version}"),
        department_name: "Tributi".into(),
        organization_name: "Comune di Esempio".into(),
        organization_fiscal_code: OrganizationFiscalCode::parse("15376371009").unwrap(),
        authorized_cidrs: vec![],
        authorized_recipients: Default::default(),
        is_visible: true,
        max_allowed_payment_amount: 100_000,
        require_secure_channels: false,
        service_metadata: ServiceMetadata::default(),
        owner_email: Some(EmailAddress::parse("owner@comune.example.it").unwrap()),
        sandboxed: false,
        version,
    }
}

/// A message to `fiscal_code` from `service`, accepted at `at`; `n` makes ids (and content)
/// distinct within one millisecond.
fn message(service: &str, fiscal_code: &FiscalCode, at: Timestamp, n: u128) -> Message {
    let organization = OrganizationFiscalCode::parse("15376371009").unwrap();
    let body = NewMessage {
        fiscal_code: Some(fiscal_code.to_string()),
        time_to_live: Some(3_600),
        content: NewMessageContent {
            subject: Some(format!("Avviso numero {n}")),
            markdown: Some(
                "# Avviso\n\nLa informiamo che è disponibile un nuovo documento. ".repeat(3),
            ),
            ..Default::default()
        },
        feature_level_type: None,
        legal_value: None,
    }
    .validate(SenderLimits {
        max_allowed_payment_amount: 0,
        organization_fiscal_code: &organization,
        capabilities: SenderCapabilities::default(),
    })
    .unwrap();
    Message {
        id: MessageId::from_parts(at.as_millis() as u64, n),
        sender_service_id: sid(service),
        body,
        created_at: at,
    }
}

fn accept_record(message: &Message, idempotency: Option<(&str, Timestamp)>) -> AcceptRecord {
    AcceptRecord {
        message: message.clone(),
        content_hash: message.body.content_hash(),
        idempotency: idempotency
            .map(|(key, expires_at)| (IdempotencyKey::parse(key).unwrap(), expires_at)),
        status: MessageStatus::Accepted,
        deliveries: vec![],
        into_inbox: false,
        events: vec![JournalEvent::Accepted {
            service_id: message.sender_service_id.clone(),
            recipient: message.body.fiscal_code.hash(),
            content_sha256: message.body.content_hash(),
            time_to_live_secs: message.body.time_to_live_secs,
        }],
        open_callbacks: false,
    }
}

/// Accepts `message` without an idempotency key, asserting it is created.
async fn accept(store: &impl Store, message: &Message) {
    let outcome = store
        .commit_accept(accept_record(message, None))
        .await
        .unwrap();
    assert_eq!(outcome, AcceptOutcome::Created, "{:?}", message.id);
}

/// Builds and accepts a message; see [`message`].
async fn accepted(
    store: &impl Store,
    service: &str,
    fiscal_code: &FiscalCode,
    at: Timestamp,
    n: u128,
) -> Message {
    let message = message(service, fiscal_code, at, n);
    accept(store, &message).await;
    message
}

/// An erasure of `fiscal_code` at `T0` closing no request.
fn erasure(fiscal_code: FiscalCode) -> Erasure {
    Erasure {
        fiscal_code,
        at: T0,
        closes: None,
    }
}

/// Claims every task of `service` due at `now`, leased until `lease_from(now)`.
async fn claim(store: &impl Store, service: &str, now: Timestamp) -> Vec<Task> {
    store
        .claim_tasks(&[sid(service)], now, ALL, lease_from(now))
        .await
        .unwrap()
}

/// Claims the one task of `service` due at `now`.
async fn claim_one(store: &impl Store, service: &str, now: Timestamp) -> Task {
    let mut tasks = claim(store, service, now).await;
    assert_eq!(tasks.len(), 1, "expected one due task, got {tasks:?}");
    tasks.remove(0)
}

fn kinds(tasks: &[Task]) -> Vec<TaskKind> {
    tasks.iter().map(|task| task.kind).collect()
}

/// A pending delivery of `message` on `channel`, first due at `next_attempt_at`.
fn delivery(message: &Message, channel: ChannelKind, next_attempt_at: Timestamp) -> Delivery {
    Delivery {
        id: DeliveryId::new(message.id, channel),
        service_id: message.sender_service_id.clone(),
        fiscal_code: message.body.fiscal_code.clone(),
        target: match channel {
            ChannelKind::Inbox => DeliveryTarget::Inbox,
            ChannelKind::Email => DeliveryTarget::Email {
                address: EmailAddress::parse("cittadino@example.it").unwrap(),
            },
            ChannelKind::Push => DeliveryTarget::Push,
            ChannelKind::Pec => DeliveryTarget::Pec {
                address: EmailAddress::parse("cittadino@pec.example.it").unwrap(),
            },
        },
        state: DeliveryState::Pending,
        attempts: 0,
        outcome_pending: false,
        devices_notified: vec![],
        next_attempt_at,
        expires_at: message.expires_at(),
        last_outcome: None,
        legal_delivery_at: None,
        updated_at: message.created_at,
    }
}

/// A PROCESSED decision for a claimed process task, into the inbox, creating `deliveries`.
fn processed(
    task: &Task,
    message: &Message,
    deliveries: Vec<Delivery>,
    at: Timestamp,
) -> ProcessRecord {
    let channels = deliveries.iter().map(Delivery::channel).collect();
    ProcessRecord {
        task: task.clone(),
        message: message.clone(),
        status: MessageStatus::Processed,
        deliveries,
        into_inbox: true,
        events: vec![JournalEvent::Processed { channels }],
        at,
    }
}

/// Claims the process task of `message` at `at` (it must be the service's only due task) and
/// commits PROCESSED with `deliveries`.
async fn process(store: &impl Store, message: &Message, deliveries: Vec<Delivery>, at: Timestamp) {
    let task = claim_one(store, message.sender_service_id.as_str(), at).await;
    assert_eq!(task.kind, TaskKind::Process(message.id));
    store
        .commit_process(processed(&task, message, deliveries, at))
        .await
        .unwrap();
}

/// `delivery` after one attempt at `at` that ended in `state` (next attempt at `next`, if not
/// final), with the matching journal event.
fn attempted(
    delivery: &Delivery,
    state: DeliveryState,
    outcome: OutcomeRecord,
    at: Timestamp,
    next: Timestamp,
) -> (Delivery, JournalEvent) {
    let mut after = delivery.clone();
    after.attempts += 1;
    after.state = state.clone();
    after.last_outcome = Some(outcome.clone());
    after.updated_at = at;
    let next_attempt_at = (!state.is_final()).then_some(next);
    if let Some(next) = next_attempt_at {
        after.next_attempt_at = next;
    }
    let event = JournalEvent::Attempted {
        channel: delivery.channel(),
        attempt: after.attempts,
        outcome,
        state,
        next_attempt_at,
    };
    (after, event)
}

fn delivered() -> OutcomeRecord {
    OutcomeRecord::Delivered {
        provider_ref: Some("provider-ref-1".into()),
    }
}

fn timed_out() -> OutcomeRecord {
    OutcomeRecord::Transient {
        retry_after_ms: None,
        cause: TransientCause::Timeout,
    }
}

/// The journal of `id`, asserted to verify; its decoded entries.
async fn verified_journal(store: &impl Store, id: &MessageId) -> Vec<JournalEntry> {
    let stored = store.journal(id).await.unwrap();
    verify_stored(&stored.entries, stored.head.as_ref())
        .unwrap_or_else(|e| panic!("journal of {id} does not verify: {e}"))
}

fn events(entries: &[JournalEntry]) -> Vec<JournalEvent> {
    entries.iter().map(|entry| entry.event.clone()).collect()
}

fn assert_conflict(result: Result<(), StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict { what: found, .. }) => assert_eq!(found, what),
        other => panic!("expected a {what} conflict, got {other:?}"),
    }
}

fn assert_lease_lost(result: Result<(), StoreError>) {
    assert!(
        matches!(result, Err(StoreError::LeaseLost { .. })),
        "expected LeaseLost, got {result:?}"
    );
}

fn installation(id: &str, token: &str) -> Installation {
    Installation {
        installation_id: InstallationId::parse(id).unwrap(),
        platform: PushPlatform::Apns,
        push_channel: token.into(),
        updated_at: T0,
    }
}

fn preference(service: &str, settings_version: u64, inbox: bool) -> ServicePreference {
    ServicePreference {
        service_id: sid(service),
        settings_version,
        is_inbox_enabled: inbox,
        is_email_enabled: inbox,
        is_webhook_enabled: false,
        can_access_message_read_status: false,
    }
}

/// A message whose journal has three entries: accepted at `T0`, processed at `t(1_000)` with an
/// inbox delivery, and that delivery's attempt at `t(2_000)`.
async fn journal_of_three(store: &impl Store) -> (MessageId, StoredJournal) {
    let message = accepted(store, "svc", &citizen(), T0, 1).await;
    let inbox = delivery(&message, ChannelKind::Inbox, t(1_000));
    process(store, &message, vec![inbox.clone()], t(1_000)).await;
    let task = claim_one(store, "svc", t(1_000)).await;
    let (after, event) = attempted(&inbox, DeliveryState::Sent, delivered(), t(2_000), t(2_000));
    store
        .commit_delivery(DeliveryRecord {
            task,
            delivery: after,
            events: vec![event],
            effects: vec![],
            at: t(2_000),
        })
        .await
        .unwrap();
    let journal = store.journal(&message.id).await.unwrap();
    assert_eq!(journal.entries.len(), 3);
    verify_stored(&journal.entries, journal.head.as_ref()).unwrap();
    (message.id, journal)
}

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

async fn service_is_created_with_version_1_and_updated_with_version_2(store: impl Store) {
    assert_eq!(store.service(&sid("svc")).await.unwrap(), None);
    let created = service("svc", 1);
    store.put_service(&created).await.unwrap();
    assert_eq!(store.service(&sid("svc")).await.unwrap(), Some(created));

    let mut updated = service("svc", 2);
    updated.service_name = "Servizio rinominato".into();
    store.put_service(&updated).await.unwrap();
    assert_eq!(store.service(&sid("svc")).await.unwrap(), Some(updated));
}

async fn service_write_with_a_stale_or_skipped_version_conflicts(store: impl Store) {
    // A new service must start at version 1.
    assert_conflict(store.put_service(&service("svc", 2)).await, "service");
    assert_conflict(store.put_service(&service("svc", 0)).await, "service");
    assert_eq!(store.service(&sid("svc")).await.unwrap(), None);

    store.put_service(&service("svc", 1)).await.unwrap();
    let current = service("svc", 2);
    store.put_service(&current).await.unwrap();

    // Stale: version 2 again (based on 1, while 2 is stored), and version 1.
    let mut stale = service("svc", 2);
    stale.service_name = "stale".into();
    assert_eq!(
        store.put_service(&stale).await,
        Err(StoreError::Conflict {
            what: "service",
            stored: 2,
            given: 1,
        })
    );
    assert_conflict(store.put_service(&service("svc", 1)).await, "service");
    // Skipped: version 4 (based on 3, while 2 is stored).
    assert_eq!(
        store.put_service(&service("svc", 4)).await,
        Err(StoreError::Conflict {
            what: "service",
            stored: 2,
            given: 3,
        })
    );
    // Nothing was written by the refused updates.
    assert_eq!(store.service(&sid("svc")).await.unwrap(), Some(current));
}

async fn services_are_listed_in_id_order(store: impl Store) {
    assert_eq!(store.services().await.unwrap(), vec![]);
    for id in ["svc2", "svc-b", "svc", "A-first", "svc-a"] {
        store.put_service(&service(id, 1)).await.unwrap();
    }
    store.put_service(&service("svc-a", 2)).await.unwrap();
    let listed = store.services().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|s| s.service_id.as_str()).collect();
    assert_eq!(ids, ["A-first", "svc", "svc-a", "svc-b", "svc2"]);
    assert_eq!(listed[2], service("svc-a", 2));
}

// ---------------------------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------------------------

async fn profile_is_created_with_version_0_and_updated_with_version_1(store: impl Store) {
    assert_eq!(store.profile(&citizen()).await.unwrap(), None);
    let created = Profile::new(citizen());
    assert_eq!(created.version, 0);
    store.put_profile(&created).await.unwrap();
    assert_eq!(
        store.profile(&citizen()).await.unwrap(),
        Some(created.clone())
    );

    let mut change = created.clone();
    change.is_email_enabled = false;
    change.service_preferences_settings.mode = ServicePreferencesMode::Auto;
    let next = created.updated_with(&change).unwrap();
    assert_eq!(next.version, 1);
    store.put_profile(&next).await.unwrap();
    assert_eq!(store.profile(&citizen()).await.unwrap(), Some(next));
    // Another citizen's profile is untouched (absent).
    assert_eq!(store.profile(&other_citizen()).await.unwrap(), None);
}

async fn profile_write_with_a_stale_version_conflicts(store: impl Store) {
    let created = Profile::new(citizen());
    store.put_profile(&created).await.unwrap();
    let mut change = created.clone();
    change.is_webhook_enabled = false;
    let first = created.updated_with(&change).unwrap();
    // A second update based on version 0 too, computed before the first was stored.
    let mut other_change = created.clone();
    other_change.is_inbox_enabled = false;
    let concurrent = created.updated_with(&other_change).unwrap();
    store.put_profile(&first).await.unwrap();

    assert_eq!(
        store.put_profile(&concurrent).await,
        Err(StoreError::Conflict {
            what: "profile",
            stored: 1,
            given: 0,
        })
    );
    // Creating it again (version 0) is stale as well.
    assert_conflict(store.put_profile(&Profile::new(citizen())).await, "profile");
    // Skipping a version is refused.
    let mut skipped = first.clone();
    skipped.version = 3;
    assert_conflict(store.put_profile(&skipped).await, "profile");
    // A new profile must start at version 0.
    let mut late = Profile::new(other_citizen());
    late.version = 1;
    assert_conflict(store.put_profile(&late).await, "profile");
    assert_eq!(store.profile(&other_citizen()).await.unwrap(), None);

    assert_eq!(store.profile(&citizen()).await.unwrap(), Some(first));
}

// ---------------------------------------------------------------------------------------------
// Preferences, activations, installations
// ---------------------------------------------------------------------------------------------

async fn preference_is_stored_per_settings_version(store: impl Store) {
    let (fc, svc) = (citizen(), sid("svc"));
    let v0 = preference("svc", 0, true);
    store.put_preference(&fc, &v0).await.unwrap();
    assert_eq!(
        store.preference(&fc, &svc, 0).await.unwrap(),
        Some(v0.clone())
    );
    // Another settings version is not returned.
    assert_eq!(store.preference(&fc, &svc, 1).await.unwrap(), None);

    let v1 = preference("svc", 1, false);
    store.put_preference(&fc, &v1).await.unwrap();
    assert_eq!(store.preference(&fc, &svc, 1).await.unwrap(), Some(v1));
    assert_eq!(store.preference(&fc, &svc, 0).await.unwrap(), Some(v0));
    assert_eq!(store.preference(&fc, &svc, 2).await.unwrap(), None);

    // Neither another service nor another citizen sees it.
    assert_eq!(store.preference(&fc, &sid("svc2"), 0).await.unwrap(), None);
    assert_eq!(
        store.preference(&other_citizen(), &svc, 0).await.unwrap(),
        None
    );

    // Storing again under the same version replaces.
    let replaced = preference("svc", 0, false);
    store.put_preference(&fc, &replaced).await.unwrap();
    assert_eq!(
        store.preference(&fc, &svc, 0).await.unwrap(),
        Some(replaced)
    );
}

/// The decision's combined read answers what the single reads answer: the preference under
/// the profile's settings version only, the activation and devices only when asked for.
async fn the_recipients_records_are_read_together(store: impl Store) {
    let (fc, svc) = (citizen(), sid("svc"));
    assert_eq!(
        store.recipient(&fc, &svc, true, true).await.unwrap(),
        RecipientRecords::default()
    );
    let mut profile = Profile::new(fc.clone());
    store.put_profile(&profile).await.unwrap();
    store
        .put_preference(&fc, &preference("svc", 0, false))
        .await
        .unwrap();
    store
        .put_preference(&fc, &preference("svc", 1, true))
        .await
        .unwrap();
    let activation = store
        .put_activation(&Activation {
            service_id: svc.clone(),
            fiscal_code: fc.clone(),
            status: ActivationStatus::Active,
            updated_at: T0,
            version: 0,
        })
        .await
        .unwrap();
    store
        .put_installation(&fc, &installation("dev-a", "token-a"))
        .await
        .unwrap();
    let read = store.recipient(&fc, &svc, true, true).await.unwrap();
    assert_eq!(
        read,
        RecipientRecords {
            profile: Some(profile.clone()),
            preference: Some(preference("svc", 0, false)),
            activation: Some(activation),
            has_devices: true,
        }
    );
    // Not asked for: neither activation nor devices.
    let read = store.recipient(&fc, &svc, false, false).await.unwrap();
    assert_eq!((read.activation, read.has_devices), (None, false));
    // A new settings version: the preference stored under it.
    let mut change = profile.clone();
    change.service_preferences_settings.mode = ServicePreferencesMode::Manual;
    change.service_preferences_settings.version = 1;
    profile = profile.updated_with(&change).unwrap();
    store.put_profile(&profile).await.unwrap();
    let read = store.recipient(&fc, &svc, false, false).await.unwrap();
    assert_eq!(
        read.preference,
        store
            .preference(&fc, &svc, profile.service_preferences_settings.version)
            .await
            .unwrap()
    );
    // Another citizen: nothing, whatever is asked.
    assert_eq!(
        store
            .recipient(&other_citizen(), &svc, true, true)
            .await
            .unwrap(),
        RecipientRecords::default()
    );
}

async fn activation_is_stored_per_service_and_citizen(store: impl Store) {
    let pending = Activation {
        service_id: sid("svc"),
        fiscal_code: citizen(),
        status: ActivationStatus::Pending,
        updated_at: T0,
        version: 7, // ignored: the store numbers versions
    };
    assert_eq!(
        store.activation(&sid("svc"), &citizen()).await.unwrap(),
        None
    );
    let stored = store.put_activation(&pending).await.unwrap();
    let pending = Activation {
        version: 0,
        ..pending
    };
    assert_eq!(stored, pending);
    assert_eq!(
        store.activation(&sid("svc"), &citizen()).await.unwrap(),
        Some(pending.clone())
    );
    assert_eq!(
        store.activation(&sid("svc2"), &citizen()).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .activation(&sid("svc"), &other_citizen())
            .await
            .unwrap(),
        None
    );

    let active = Activation {
        status: ActivationStatus::Active,
        updated_at: t(1_000),
        ..pending.clone()
    };
    let stored = store.put_activation(&active).await.unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(
        store.activation(&sid("svc"), &citizen()).await.unwrap(),
        Some(stored)
    );
    // Another citizen's activation of the same service starts at 0.
    let theirs = Activation {
        fiscal_code: other_citizen(),
        ..pending
    };
    assert_eq!(store.put_activation(&theirs).await.unwrap().version, 0);
}

async fn installations_are_listed_per_citizen_only(store: impl Store) {
    assert_eq!(store.installations(&citizen()).await.unwrap(), vec![]);
    let (a, b) = (
        installation("dev-a", "token-a"),
        installation("dev-b", "token-b"),
    );
    store.put_installation(&citizen(), &a).await.unwrap();
    store.put_installation(&citizen(), &b).await.unwrap();
    let theirs = installation("dev-a", "token-other");
    store
        .put_installation(&other_citizen(), &theirs)
        .await
        .unwrap();

    let mut mine = store.installations(&citizen()).await.unwrap();
    mine.sort_by(|x, y| x.installation_id.cmp(&y.installation_id));
    assert_eq!(mine, vec![a.clone(), b.clone()]);
    assert_eq!(
        store.installations(&other_citizen()).await.unwrap(),
        vec![theirs]
    );

    // Registering the same installation again replaces it.
    let mut renewed = installation("dev-a", "token-a2");
    renewed.updated_at = t(5_000);
    store.put_installation(&citizen(), &renewed).await.unwrap();
    let mut mine = store.installations(&citizen()).await.unwrap();
    mine.sort_by(|x, y| x.installation_id.cmp(&y.installation_id));
    assert_eq!(mine, vec![renewed, b]);
}

/// The reads a round of deliveries makes together answer what the single reads answer;
/// absent messages and citizens are left out (or listed without devices).
async fn batched_reads_answer_as_the_single_reads(store: impl Store) {
    store.put_profile(&Profile::new(citizen())).await.unwrap();
    store
        .put_profile(&Profile::new(other_citizen()))
        .await
        .unwrap();
    let (a, b) = (
        installation("dev-a", "token-a"),
        installation("dev-b", "token-b"),
    );
    store.put_installation(&citizen(), &b).await.unwrap();
    store.put_installation(&citizen(), &a).await.unwrap();
    let first = accepted(&store, "svc", &citizen(), t(1_000), 1).await;
    let deliveries = vec![
        delivery(&first, ChannelKind::Email, t(90_000)),
        delivery(&first, ChannelKind::Push, t(90_000)),
    ];
    process(&store, &first, deliveries, t(3_000)).await;
    let second = accepted(&store, "svc", &other_citizen(), t(2_000), 2).await;
    let email = delivery(&second, ChannelKind::Email, t(90_000));
    process(&store, &second, vec![email], t(3_000)).await;
    let missing = message("svc", &third_citizen(), t(4_000), 3).id;
    let ids = [second.id, missing, first.id];

    let mut single = Vec::new();
    for id in &ids {
        single.extend(store.deliveries(id).await.unwrap());
    }
    assert_eq!(single.len(), 3);
    let mut batched = store.deliveries_of_messages(&ids).await.unwrap();
    batched.sort_by_key(|d| (d.id.message, d.id.channel.code()));
    single.sort_by_key(|d| (d.id.message, d.id.channel.code()));
    assert_eq!(batched, single);

    let mut messages = store.messages_by_id(&ids).await.unwrap();
    messages.sort_by_key(|m| m.message.id);
    assert_eq!(
        messages,
        vec![
            store.message(&first.id).await.unwrap().unwrap(),
            store.message(&second.id).await.unwrap().unwrap(),
        ]
    );

    let citizens = [third_citizen(), citizen(), other_citizen()];
    let mut profiles = store.profiles_of(&citizens).await.unwrap();
    profiles.sort_by(|x, y| x.fiscal_code.cmp(&y.fiscal_code));
    let mut expected = vec![Profile::new(citizen()), Profile::new(other_citizen())];
    expected.sort_by(|x, y| x.fiscal_code.cmp(&y.fiscal_code));
    assert_eq!(profiles, expected);

    assert_eq!(
        store.installations_of(&citizens).await.unwrap(),
        vec![
            (third_citizen(), vec![]),
            (citizen(), vec![a, b]),
            (other_citizen(), vec![]),
        ]
    );
    assert_eq!(store.deliveries_of_messages(&[]).await.unwrap(), vec![]);
}

async fn removing_an_installation_removes_only_it_and_absent_is_ok(store: impl Store) {
    let (a, b) = (
        installation("dev-a", "token-a"),
        installation("dev-b", "token-b"),
    );
    store.put_installation(&citizen(), &a).await.unwrap();
    store.put_installation(&citizen(), &b).await.unwrap();
    let theirs = installation("dev-a", "token-other");
    store
        .put_installation(&other_citizen(), &theirs)
        .await
        .unwrap();

    store
        .remove_installation(&citizen(), &a.installation_id)
        .await
        .unwrap();
    assert_eq!(store.installations(&citizen()).await.unwrap(), vec![b]);
    // The other citizen's installation with the same id is still there.
    assert_eq!(
        store.installations(&other_citizen()).await.unwrap(),
        vec![theirs]
    );

    // Removing it again, or one that never existed, is fine.
    store
        .remove_installation(&citizen(), &a.installation_id)
        .await
        .unwrap();
    store
        .remove_installation(&citizen(), &InstallationId::parse("never").unwrap())
        .await
        .unwrap();
    assert_eq!(store.installations(&citizen()).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// commit_accept
// ---------------------------------------------------------------------------------------------

async fn accepted_message_is_stored_with_a_due_process_task_and_one_journal_entry(
    store: impl Store,
) {
    let message = message("svc", &citizen(), T0, 1);
    let record = accept_record(&message, None);
    let event = record.events[0].clone();
    assert_eq!(
        store.commit_accept(record).await.unwrap(),
        AcceptOutcome::Created
    );

    assert_eq!(
        store.message(&message.id).await.unwrap(),
        Some(StoredMessage {
            message: message.clone(),
            status: MessageStatus::Accepted,
            updated_at: T0,
        })
    );
    assert_eq!(store.backlog().await.unwrap(), 1);
    assert_eq!(store.next_due_at().await.unwrap(), Some(T0));
    assert_eq!(
        store.due_services(T0, None, 10).await.unwrap(),
        sids(&["svc"])
    );
    let tasks = store
        .claim_tasks(&sids(&["svc"]), T0, 10, lease_from(T0))
        .await
        .unwrap();
    assert_eq!(kinds(&tasks), vec![TaskKind::Process(message.id)]);
    assert_eq!(tasks[0].service_id, sid("svc"));
    assert_eq!(tasks[0].lease.until, lease_from(T0));

    let entries = verified_journal(&store, &message.id).await;
    assert_eq!(events(&entries), vec![event]);
    assert_eq!(entries[0].seq, 0);

    // Not in the inbox before it is processed, and no deliveries yet.
    assert!(!store.inbox_contains(&citizen(), &message.id).await.unwrap());
    assert_eq!(store.inbox(&citizen(), None, 10).await.unwrap(), vec![]);
    assert_eq!(store.deliveries(&message.id).await.unwrap(), vec![]);
}

async fn accept_with_a_used_idempotency_key_returns_the_first_message_and_writes_nothing(
    store: impl Store,
) {
    let expiry = t(3_600_000);
    let first = message("svc", &citizen(), T0, 1);
    let first_hash = first.body.content_hash();
    assert_eq!(
        store
            .commit_accept(accept_record(&first, Some(("key-1", expiry))))
            .await
            .unwrap(),
        AcceptOutcome::Created
    );
    let journal_before = store.journal(&first.id).await.unwrap();

    // A retry (a new id, a later time, here even another body) with the same key.
    let second = message("svc", &citizen(), t(1_000), 2);
    assert_ne!(second.body.content_hash(), first_hash);
    let existing = AcceptOutcome::Existing {
        message_id: first.id,
        content_hash: first_hash.clone(),
    };
    assert_eq!(
        store
            .commit_accept(accept_record(&second, Some(("key-1", t(3_601_000)))))
            .await
            .unwrap(),
        existing
    );

    // Nothing was written: no second message, task or journal; the backlog is unchanged.
    assert_eq!(store.message(&second.id).await.unwrap(), None);
    let journal = store.journal(&second.id).await.unwrap();
    assert!(journal.entries.is_empty() && journal.head.is_none());
    assert_eq!(store.backlog().await.unwrap(), 1);
    assert_eq!(
        kinds(&claim(&store, "svc", t(10_000)).await),
        vec![TaskKind::Process(first.id)]
    );
    let journal_after = store.journal(&first.id).await.unwrap();
    assert_eq!(journal_after.entries, journal_before.entries);
    assert_eq!(journal_after.head, journal_before.head);

    // The record still names the first message (it was not rebound to the retry), until just
    // before it expires.
    let third = message("svc", &citizen(), t(3_599_999), 3);
    assert_eq!(
        store
            .commit_accept(accept_record(&third, Some(("key-1", t(7_200_000)))))
            .await
            .unwrap(),
        existing
    );
    assert_eq!(store.message(&third.id).await.unwrap(), None);
    assert_eq!(store.backlog().await.unwrap(), 1);
}

async fn accept_after_the_idempotency_record_expired_creates_a_new_message(store: impl Store) {
    let expiry = t(3_600_000);
    let first = message("svc", &citizen(), T0, 1);
    store
        .commit_accept(accept_record(&first, Some(("key-1", expiry))))
        .await
        .unwrap();

    // Accepted at the first record's expiry: the record no longer counts.
    let second = message("svc", &citizen(), expiry, 2);
    assert_eq!(
        store
            .commit_accept(accept_record(&second, Some(("key-1", t(7_200_000)))))
            .await
            .unwrap(),
        AcceptOutcome::Created
    );
    assert_eq!(
        store.message(&second.id).await.unwrap().map(|m| m.status),
        Some(MessageStatus::Accepted)
    );
    assert_eq!(store.backlog().await.unwrap(), 2);
    verified_journal(&store, &second.id).await;

    // The key now names the second message.
    let third = message("svc", &citizen(), t(3_601_000), 3);
    assert_eq!(
        store
            .commit_accept(accept_record(&third, Some(("key-1", t(7_201_000)))))
            .await
            .unwrap(),
        AcceptOutcome::Existing {
            message_id: second.id,
            content_hash: second.body.content_hash(),
        }
    );
    assert_eq!(store.backlog().await.unwrap(), 2);
}

async fn same_idempotency_key_under_another_service_is_independent(store: impl Store) {
    let expiry = t(3_600_000);
    let for_a = message("svc", &citizen(), T0, 1);
    let for_b = message("svc2", &citizen(), T0, 2);
    for m in [&for_a, &for_b] {
        assert_eq!(
            store
                .commit_accept(accept_record(m, Some(("shared-key", expiry))))
                .await
                .unwrap(),
            AcceptOutcome::Created
        );
    }
    assert_eq!(store.backlog().await.unwrap(), 2);

    for (service, first) in [("svc", &for_a), ("svc2", &for_b)] {
        let retry = message(service, &citizen(), t(1_000), 9);
        assert_eq!(
            store
                .commit_accept(accept_record(&retry, Some(("shared-key", expiry))))
                .await
                .unwrap(),
            AcceptOutcome::Existing {
                message_id: first.id,
                content_hash: first.body.content_hash(),
            }
        );
    }
    assert_eq!(store.backlog().await.unwrap(), 2);
}

// ---------------------------------------------------------------------------------------------
// Claims and leases
// ---------------------------------------------------------------------------------------------

async fn claim_takes_only_tasks_due_at_now(store: impl Store) {
    let now = accepted(&store, "svc", &citizen(), T0, 1).await;
    let later = accepted(&store, "svc", &citizen(), t(10_000), 2).await;

    assert_eq!(
        kinds(&claim(&store, "svc", t(5_000)).await),
        vec![TaskKind::Process(now.id)]
    );
    assert_eq!(claim(&store, "svc", t(9_999)).await, vec![]);
    // Due exactly at `now` counts as due.
    assert_eq!(
        kinds(&claim(&store, "svc", t(10_000)).await),
        vec![TaskKind::Process(later.id)]
    );
    // A service not asked for is not claimed.
    let other = accepted(&store, "svc2", &citizen(), T0, 3).await;
    assert_eq!(claim(&store, "svc", t(20_000)).await, vec![]);
    assert_eq!(
        kinds(&claim(&store, "svc2", t(20_000)).await),
        vec![TaskKind::Process(other.id)]
    );
    assert_eq!(store.backlog().await.unwrap(), 3);
}

async fn claim_takes_at_most_per_service_tasks_oldest_first(store: impl Store) {
    // Accepted out of order: the queue orders by due time.
    let a2 = accepted(&store, "svc-a", &citizen(), t(2), 2).await;
    let a0 = accepted(&store, "svc-a", &citizen(), T0, 0).await;
    let a1 = accepted(&store, "svc-a", &citizen(), t(1), 1).await;
    let b0 = accepted(&store, "svc-b", &citizen(), t(5), 5).await;
    let b1 = accepted(&store, "svc-b", &citizen(), t(6), 6).await;
    let c0 = accepted(&store, "svc-c", &citizen(), T0, 7).await;

    let now = t(100);
    let tasks = store
        .claim_tasks(&sids(&["svc-a", "svc-b"]), now, 2, lease_from(now))
        .await
        .unwrap();
    let of = |service: &str| -> Vec<TaskKind> {
        tasks
            .iter()
            .filter(|task| task.service_id.as_str() == service)
            .map(|task| task.kind)
            .collect()
    };
    assert_eq!(tasks.len(), 4, "{tasks:?}");
    assert_eq!(
        of("svc-a"),
        vec![TaskKind::Process(a0.id), TaskKind::Process(a1.id)]
    );
    assert_eq!(
        of("svc-b"),
        vec![TaskKind::Process(b0.id), TaskKind::Process(b1.id)]
    );
    assert!(tasks.iter().all(|task| task.lease.until == lease_from(now)));

    // What was left: the youngest of svc-a; svc-c was never asked for.
    let rest = store
        .claim_tasks(&sids(&["svc-a", "svc-b", "svc-c"]), now, 2, lease_from(now))
        .await
        .unwrap();
    let mut rest = kinds(&rest);
    rest.sort();
    let mut want = vec![TaskKind::Process(a2.id), TaskKind::Process(c0.id)];
    want.sort();
    assert_eq!(rest, want);
    assert_eq!(store.backlog().await.unwrap(), 6);
}

async fn claimed_task_is_not_claimable_again_before_its_lease_ends(store: impl Store) {
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let task = claim_one(&store, "svc", T0).await;
    let lease_end = task.lease.until;
    assert_eq!(lease_end, lease_from(T0));

    let just_before = Timestamp::from_millis(lease_end.as_millis() - 1);
    assert_eq!(claim(&store, "svc", T0).await, vec![]);
    assert_eq!(claim(&store, "svc", just_before).await, vec![]);
    assert_eq!(
        store.due_services(just_before, None, 10).await.unwrap(),
        vec![]
    );
    // Still queued, due again when the lease ends.
    assert_eq!(store.backlog().await.unwrap(), 1);
    assert_eq!(store.next_due_at().await.unwrap(), Some(lease_end));
    assert_eq!(task.kind, TaskKind::Process(message.id));
}

async fn expired_lease_is_retaken_with_a_greater_token(store: impl Store) {
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let first = claim_one(&store, "svc", T0).await;

    // At the lease's end the task is due again.
    assert_eq!(
        store
            .due_services(first.lease.until, None, 10)
            .await
            .unwrap(),
        sids(&["svc"])
    );
    let second = claim_one(&store, "svc", first.lease.until).await;
    assert_eq!(second.kind, TaskKind::Process(message.id));
    assert_eq!(second.lease.until, lease_from(first.lease.until));
    assert!(
        second.lease.token > first.lease.token,
        "{:?} then {:?}",
        first.lease,
        second.lease
    );
    let third = claim_one(&store, "svc", second.lease.until).await;
    assert!(third.lease.token > second.lease.token);
    assert_eq!(store.backlog().await.unwrap(), 1);
}

async fn process_commit_with_a_superseded_lease_is_lost_and_changes_nothing(store: impl Store) {
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let stale = claim_one(&store, "svc", T0).await;
    let current = claim_one(&store, "svc", stale.lease.until).await;

    let inbox = delivery(&message, ChannelKind::Inbox, t(40_000));
    let late = processed(&stale, &message, vec![inbox.clone()], t(40_000));
    assert_lease_lost(store.commit_process(late).await);

    // No change: still ACCEPTED, not in the inbox, no deliveries, one journal entry, the
    // backlog as it was, and the task still leased to the current holder.
    let stored = store.message(&message.id).await.unwrap().unwrap();
    assert_eq!(stored.status, MessageStatus::Accepted);
    assert_eq!(stored.updated_at, T0);
    assert!(!store.inbox_contains(&citizen(), &message.id).await.unwrap());
    assert_eq!(store.deliveries(&message.id).await.unwrap(), vec![]);
    assert_eq!(store.delivery(&inbox.id).await.unwrap(), None);
    assert_eq!(verified_journal(&store, &message.id).await.len(), 1);
    assert_eq!(store.backlog().await.unwrap(), 1);
    assert_eq!(claim(&store, "svc", t(40_000)).await, vec![]);

    // The current holder's commit goes through.
    store
        .commit_process(processed(&current, &message, vec![inbox], t(40_000)))
        .await
        .unwrap();
    assert_eq!(
        store.message(&message.id).await.unwrap().unwrap().status,
        MessageStatus::Processed
    );
    // Committing again with the released lease is refused too.
    assert_lease_lost(
        store
            .commit_process(processed(&current, &message, vec![], t(41_000)))
            .await,
    );
    assert_eq!(verified_journal(&store, &message.id).await.len(), 2);
}

async fn decisions_committed_together_succeed_or_fail_one_by_one(store: impl Store) {
    let first = accepted(&store, "svc", &citizen(), T0, 1).await;
    let second = accepted(&store, "svc", &other_citizen(), T0, 2).await;
    let stale = claim(&store, "svc", T0).await;
    assert_eq!(stale.len(), 2);
    // Both leases run out and another worker takes both tasks over; the first worker still
    // commits its decision about the second.
    let current = claim(&store, "svc", stale[1].lease.until).await;
    assert_eq!(kinds(&current), kinds(&stale));
    let (first_task, second_stale) = (current[0].clone(), stale[1].clone());

    let results = store
        .commit_processes(vec![
            processed(&first_task, &first, vec![], t(40_000)),
            processed(&second_stale, &second, vec![], t(40_000)),
        ])
        .await;
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0],
        Ok(()),
        "a lost lease elsewhere must not fail this record"
    );
    assert!(
        matches!(results[1], Err(StoreError::LeaseLost { .. })),
        "{:?}",
        results[1]
    );
    let status = |m: &Message| {
        let id = m.id;
        let store = &store;
        async move { store.message(&id).await.unwrap().unwrap().status }
    };
    assert_eq!(status(&first).await, MessageStatus::Processed);
    assert_eq!(status(&second).await, MessageStatus::Accepted);
    assert_eq!(verified_journal(&store, &first.id).await.len(), 2);
    assert_eq!(verified_journal(&store, &second.id).await.len(), 1);
    assert_eq!(store.commit_processes(vec![]).await, vec![]);
}

async fn delivery_commit_with_a_superseded_lease_is_lost_and_changes_nothing(store: impl Store) {
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let email = delivery(&message, ChannelKind::Email, t(1_000));
    process(&store, &message, vec![email.clone()], t(1_000)).await;
    let stale = claim_one(&store, "svc", t(1_000)).await;
    let current = claim_one(&store, "svc", stale.lease.until).await;
    assert_eq!(current.kind, TaskKind::Deliver(email.id));
    let journal_before = store.journal(&message.id).await.unwrap();

    let (sent, event) = attempted(
        &email,
        DeliveryState::Sent,
        delivered(),
        t(40_000),
        t(40_000),
    );
    assert_lease_lost(
        store
            .commit_delivery(DeliveryRecord {
                task: stale,
                delivery: sent.clone(),
                events: vec![event.clone()],
                effects: vec![],
                at: t(40_000),
            })
            .await,
    );
    assert_eq!(store.delivery(&email.id).await.unwrap(), Some(email));
    let journal = store.journal(&message.id).await.unwrap();
    assert_eq!(journal.entries, journal_before.entries);
    assert_eq!(journal.head, journal_before.head);
    assert_eq!(store.backlog().await.unwrap(), 1);

    store
        .commit_delivery(DeliveryRecord {
            task: current,
            delivery: sent.clone(),
            events: vec![event],
            effects: vec![],
            at: t(40_000),
        })
        .await
        .unwrap();
    assert_eq!(store.delivery(&sent.id).await.unwrap(), Some(sent));
    assert_eq!(store.backlog().await.unwrap(), 0);
}

async fn discarded_task_is_gone_and_leaves_the_backlog(store: impl Store) {
    let gone = accepted(&store, "svc", &citizen(), T0, 1).await;
    let kept = accepted(&store, "svc", &citizen(), t(1), 2).await;
    assert_eq!(store.backlog().await.unwrap(), 2);
    let tasks = claim(&store, "svc", t(1)).await;
    let task = tasks
        .iter()
        .find(|task| task.kind == TaskKind::Process(gone.id))
        .unwrap();

    store.discard_task(task).await.unwrap();
    assert_eq!(store.backlog().await.unwrap(), 1);
    // Long after every lease ended, only the other task comes back.
    assert_eq!(
        kinds(&claim(&store, "svc", t(1_000_000)).await),
        vec![TaskKind::Process(kept.id)]
    );
    // The message itself is not the task: it stays.
    assert!(store.message(&gone.id).await.unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// due_services and next_due_at
// ---------------------------------------------------------------------------------------------

async fn due_services_are_in_id_order_strictly_after_and_up_to_the_limit(store: impl Store) {
    assert_eq!(store.due_services(T0, None, 10).await.unwrap(), vec![]);
    for (n, service) in ["svc-c", "svc-a", "svc-b"].into_iter().enumerate() {
        accepted(&store, service, &citizen(), T0, n as u128).await;
    }
    // Two tasks for one service still list it once.
    accepted(&store, "svc-b", &citizen(), T0, 10).await;

    let due = |after: Option<&str>, limit: usize| {
        let after = after.map(sid);
        let store = &store;
        async move { store.due_services(T0, after.as_ref(), limit).await.unwrap() }
    };
    assert_eq!(due(None, 10).await, sids(&["svc-a", "svc-b", "svc-c"]));
    assert_eq!(due(None, 2).await, sids(&["svc-a", "svc-b"]));
    assert_eq!(due(None, 0).await, vec![]);
    assert_eq!(due(Some("svc-a"), 10).await, sids(&["svc-b", "svc-c"]));
    assert_eq!(due(Some("svc-b"), 1).await, sids(&["svc-c"]));
    assert_eq!(due(Some("svc-c"), 10).await, vec![]);
    // `after` need not name a service with tasks.
    assert_eq!(due(Some("svc-ab"), 10).await, sids(&["svc-b", "svc-c"]));
    assert_eq!(due(Some("A"), 10).await, sids(&["svc-a", "svc-b", "svc-c"]));
    assert_eq!(due(Some("zzz"), 10).await, vec![]);
}

async fn due_services_skip_services_whose_earliest_task_is_not_due(store: impl Store) {
    accepted(&store, "svc-a", &citizen(), t(10_000), 1).await;
    accepted(&store, "svc-b", &citizen(), T0, 2).await;
    accepted(&store, "svc-c", &citizen(), t(20_000), 3).await;
    accepted(&store, "svc-d", &citizen(), t(5_000), 4).await;

    assert_eq!(
        store.due_services(T0, None, 10).await.unwrap(),
        sids(&["svc-b"])
    );
    // The limit counts due services, not the ones skipped.
    assert_eq!(
        store.due_services(t(5_000), None, 1).await.unwrap(),
        sids(&["svc-b"])
    );
    assert_eq!(
        store
            .due_services(t(5_000), Some(&sid("svc-b")), 1)
            .await
            .unwrap(),
        sids(&["svc-d"])
    );
    assert_eq!(
        store.due_services(t(10_000), None, 10).await.unwrap(),
        sids(&["svc-a", "svc-b", "svc-d"])
    );
    // A service whose only task is leased is not due until the lease ends.
    claim_one(&store, "svc-b", t(10_000)).await;
    assert_eq!(
        store.due_services(t(10_000), None, 10).await.unwrap(),
        sids(&["svc-a", "svc-d"])
    );
}

async fn due_services_and_claims_tell_apart_a_service_id_that_prefixes_another(store: impl Store) {
    let short = accepted(&store, "svc", &citizen(), T0, 1).await;
    let short_later = accepted(&store, "svc", &citizen(), t(50_000), 2).await;
    let long = accepted(&store, "svc2", &citizen(), t(1_000), 3).await;
    let dash = accepted(&store, "svc-x", &citizen(), t(2_000), 4).await;

    assert_eq!(
        store.due_services(t(2_000), None, 10).await.unwrap(),
        sids(&["svc", "svc-x", "svc2"])
    );
    assert_eq!(
        store
            .due_services(t(2_000), Some(&sid("svc")), 10)
            .await
            .unwrap(),
        sids(&["svc-x", "svc2"])
    );
    assert_eq!(
        store
            .due_services(t(2_000), Some(&sid("svc-x")), 10)
            .await
            .unwrap(),
        sids(&["svc2"])
    );
    assert_eq!(
        store
            .due_services(t(2_000), Some(&sid("svc2")), 10)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        store.due_services(t(1_000), None, 10).await.unwrap(),
        sids(&["svc", "svc2"])
    );

    // Each claim takes only its own service's tasks.
    assert_eq!(
        kinds(&claim(&store, "svc", t(2_000)).await),
        vec![TaskKind::Process(short.id)]
    );
    assert_eq!(
        kinds(&claim(&store, "svc2", t(2_000)).await),
        vec![TaskKind::Process(long.id)]
    );
    assert_eq!(
        kinds(&claim(&store, "svc-x", t(2_000)).await),
        vec![TaskKind::Process(dash.id)]
    );

    // "svc"'s remaining task is not due yet; "svc2"'s lease ends first.
    assert_eq!(
        store
            .due_services(lease_from(t(2_000)), None, 10)
            .await
            .unwrap(),
        sids(&["svc", "svc-x", "svc2"])
    );
    assert_eq!(
        kinds(&claim(&store, "svc", t(50_000)).await),
        vec![
            TaskKind::Process(short.id),
            TaskKind::Process(short_later.id)
        ]
    );
}

async fn next_due_at_is_none_when_nothing_is_queued(store: impl Store) {
    assert_eq!(store.next_due_at().await.unwrap(), None);
    assert_eq!(store.backlog().await.unwrap(), 0);
    accepted(&store, "svc", &citizen(), T0, 1).await;
    let task = claim_one(&store, "svc", T0).await;
    store.discard_task(&task).await.unwrap();
    assert_eq!(store.next_due_at().await.unwrap(), None);
    assert_eq!(store.backlog().await.unwrap(), 0);
}

async fn next_due_at_is_the_earliest_due_time_across_services(store: impl Store) {
    accepted(&store, "svc-a", &citizen(), t(20_000), 1).await;
    accepted(&store, "svc-a", &citizen(), t(25_000), 2).await;
    accepted(&store, "svc-c", &citizen(), t(9_000), 3).await;
    accepted(&store, "svc-b", &citizen(), t(5_000), 4).await;
    assert_eq!(store.next_due_at().await.unwrap(), Some(t(5_000)));

    // A leased task counts at its lease's end.
    let task = claim_one(&store, "svc-b", t(5_000)).await;
    assert_eq!(task.lease.until, t(35_000));
    assert_eq!(store.next_due_at().await.unwrap(), Some(t(9_000)));
    claim_one(&store, "svc-c", t(9_000)).await;
    assert_eq!(store.next_due_at().await.unwrap(), Some(t(20_000)));
    store
        .claim_tasks(&sids(&["svc-a"]), t(30_000), ALL, t(90_000))
        .await
        .unwrap();
    assert_eq!(store.next_due_at().await.unwrap(), Some(t(35_000)));
}

// ---------------------------------------------------------------------------------------------
// commit_process
// ---------------------------------------------------------------------------------------------

async fn processed_message_enters_the_inbox_and_its_deliveries_are_queued(store: impl Store) {
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let task = claim_one(&store, "svc", T0).await;
    let at = t(1_000);
    // Given out of channel order on purpose.
    let email = delivery(&message, ChannelKind::Email, t(5_000));
    let inbox = delivery(&message, ChannelKind::Inbox, at);
    let record = processed(&task, &message, vec![email.clone(), inbox.clone()], at);
    let processed_event = record.events[0].clone();
    store.commit_process(record).await.unwrap();

    assert_eq!(
        store.message(&message.id).await.unwrap(),
        Some(StoredMessage {
            message: message.clone(),
            status: MessageStatus::Processed,
            updated_at: at,
        })
    );
    assert!(store.inbox_contains(&citizen(), &message.id).await.unwrap());
    assert!(
        !store
            .inbox_contains(&other_citizen(), &message.id)
            .await
            .unwrap()
    );
    assert_eq!(
        store.inbox(&citizen(), None, 10).await.unwrap(),
        vec![message.id]
    );
    assert_eq!(
        store.deliveries(&message.id).await.unwrap(),
        vec![inbox.clone(), email.clone()]
    );
    assert_eq!(
        store.delivery(&email.id).await.unwrap(),
        Some(email.clone())
    );
    assert_eq!(
        store.delivery(&inbox.id).await.unwrap(),
        Some(inbox.clone())
    );

    // The process task is done; each delivery is a task due at its next_attempt_at.
    assert_eq!(store.backlog().await.unwrap(), 2);
    assert_eq!(store.next_due_at().await.unwrap(), Some(at));
    assert_eq!(
        kinds(&claim(&store, "svc", t(4_999)).await),
        vec![TaskKind::Deliver(inbox.id)]
    );
    assert_eq!(
        kinds(&claim(&store, "svc", t(5_000)).await),
        vec![TaskKind::Deliver(email.id)]
    );

    let entries = verified_journal(&store, &message.id).await;
    assert_eq!(
        events(&entries),
        vec![
            accept_record(&message, None).events[0].clone(),
            processed_event
        ]
    );
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(entries[1].at, at);
}

async fn rejected_message_has_its_reason_and_no_inbox_entry_or_deliveries(store: impl Store) {
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let task = claim_one(&store, "svc", T0).await;
    let status = MessageStatus::Rejected(RejectionReason::ServiceNotAllowed);
    let event = JournalEvent::Rejected {
        reason: RejectionReason::ServiceNotAllowed,
    };
    store
        .commit_process(ProcessRecord {
            task,
            message: message.clone(),
            status,
            deliveries: vec![],
            into_inbox: false,
            events: vec![event.clone()],
            at: t(1_000),
        })
        .await
        .unwrap();

    let stored = store.message(&message.id).await.unwrap().unwrap();
    assert_eq!(stored.status, status);
    assert_eq!(stored.updated_at, t(1_000));
    assert!(!store.inbox_contains(&citizen(), &message.id).await.unwrap());
    assert_eq!(store.inbox(&citizen(), None, 10).await.unwrap(), vec![]);
    assert_eq!(store.deliveries(&message.id).await.unwrap(), vec![]);
    assert_eq!(store.backlog().await.unwrap(), 0);
    assert_eq!(store.next_due_at().await.unwrap(), None);
    assert_eq!(claim(&store, "svc", t(1_000_000)).await, vec![]);
    let entries = verified_journal(&store, &message.id).await;
    assert_eq!(
        events(&entries),
        vec![accept_record(&message, None).events[0].clone(), event]
    );
}

// ---------------------------------------------------------------------------------------------
// commit_delivery
// ---------------------------------------------------------------------------------------------

async fn retried_delivery_is_requeued_at_its_next_attempt(store: impl Store) {
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let email = delivery(&message, ChannelKind::Email, t(1_000));
    process(&store, &message, vec![email.clone()], t(1_000)).await;
    let task = claim_one(&store, "svc", t(1_000)).await;
    assert_eq!(task.kind, TaskKind::Deliver(email.id));

    let next = t(61_000);
    let (retrying, event) = attempted(&email, DeliveryState::Retrying, timed_out(), t(2_000), next);
    store
        .commit_delivery(DeliveryRecord {
            task,
            delivery: retrying.clone(),
            events: vec![event.clone()],
            effects: vec![],
            at: t(2_000),
        })
        .await
        .unwrap();

    assert_eq!(store.delivery(&email.id).await.unwrap(), Some(retrying));
    assert_eq!(store.backlog().await.unwrap(), 1);
    assert_eq!(store.next_due_at().await.unwrap(), Some(next));
    assert_eq!(claim(&store, "svc", t(60_999)).await, vec![]);
    assert_eq!(
        kinds(&claim(&store, "svc", next).await),
        vec![TaskKind::Deliver(email.id)]
    );
    let entries = verified_journal(&store, &message.id).await;
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2].event, event);
    assert_eq!(entries[2].at, t(2_000));
}

async fn final_delivery_leaves_the_queue_and_the_backlog(store: impl Store) {
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let email = delivery(&message, ChannelKind::Email, t(1_000));
    let push = delivery(&message, ChannelKind::Push, t(1_000));
    process(
        &store,
        &message,
        vec![email.clone(), push.clone()],
        t(1_000),
    )
    .await;
    assert_eq!(store.backlog().await.unwrap(), 2);
    let tasks = claim(&store, "svc", t(1_000)).await;
    let task_of = |id: DeliveryId| {
        tasks
            .iter()
            .find(|task| task.kind == TaskKind::Deliver(id))
            .unwrap()
            .clone()
    };

    let (sent, sent_event) =
        attempted(&email, DeliveryState::Sent, delivered(), t(2_000), t(2_000));
    store
        .commit_delivery(DeliveryRecord {
            task: task_of(email.id),
            delivery: sent.clone(),
            events: vec![sent_event.clone()],
            effects: vec![],
            at: t(2_000),
        })
        .await
        .unwrap();
    assert_eq!(store.delivery(&email.id).await.unwrap(), Some(sent));
    assert_eq!(store.backlog().await.unwrap(), 1);

    let failed = DeliveryState::Failed {
        reason: io_core::FailureReason::InvalidRecipient,
    };
    let (dead, dead_event) = attempted(
        &push,
        failed,
        OutcomeRecord::InvalidRecipient,
        t(3_000),
        t(3_000),
    );
    store
        .commit_delivery(DeliveryRecord {
            task: task_of(push.id),
            delivery: dead.clone(),
            events: vec![dead_event.clone()],
            effects: vec![],
            at: t(3_000),
        })
        .await
        .unwrap();
    assert_eq!(store.delivery(&push.id).await.unwrap(), Some(dead));
    assert_eq!(store.backlog().await.unwrap(), 0);
    assert_eq!(store.next_due_at().await.unwrap(), None);
    assert_eq!(claim(&store, "svc", t(10_000_000)).await, vec![]);

    let entries = verified_journal(&store, &message.id).await;
    assert_eq!(events(&entries[2..]), vec![sent_event, dead_event]);
}

async fn deferral_without_event_requeues_and_adds_no_journal_entry(store: impl Store) {
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let email = delivery(&message, ChannelKind::Email, t(1_000));
    process(&store, &message, vec![email.clone()], t(1_000)).await;
    let task = claim_one(&store, "svc", t(1_000)).await;
    let journal_before = store.journal(&message.id).await.unwrap();

    let mut deferred = email.clone();
    deferred.next_attempt_at = t(11_000);
    store
        .commit_delivery(DeliveryRecord {
            task,
            delivery: deferred.clone(),
            events: vec![],
            effects: vec![],
            at: t(1_000),
        })
        .await
        .unwrap();

    assert_eq!(store.delivery(&email.id).await.unwrap(), Some(deferred));
    let journal = store.journal(&message.id).await.unwrap();
    assert_eq!(journal.entries, journal_before.entries);
    assert_eq!(journal.head, journal_before.head);
    assert_eq!(store.backlog().await.unwrap(), 1);
    assert_eq!(claim(&store, "svc", t(10_999)).await, vec![]);
    assert_eq!(
        kinds(&claim(&store, "svc", t(11_000)).await),
        vec![TaskKind::Deliver(email.id)]
    );
}

// ---------------------------------------------------------------------------------------------
// Inbox
// ---------------------------------------------------------------------------------------------

async fn inbox_pages_newest_first_with_exclusive_before_and_a_limit(store: impl Store) {
    // Five messages for the citizen, three for another interleaved in time.
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    for n in 0..8u128 {
        let fc = if n % 3 == 1 {
            other_citizen()
        } else {
            citizen()
        };
        let m = accepted(&store, "svc", &fc, t(n as i64 * 1_000), n).await;
        if n % 3 == 1 { &mut theirs } else { &mut mine }.push(m.id);
    }
    let now = t(10_000);
    let tasks = claim(&store, "svc", now).await;
    assert_eq!(tasks.len(), 8);
    for task in tasks {
        let TaskKind::Process(id) = task.kind else {
            panic!("unexpected {task:?}")
        };
        let message = store.message(&id).await.unwrap().unwrap().message;
        store
            .commit_process(processed(&task, &message, vec![], now))
            .await
            .unwrap();
    }
    mine.reverse(); // newest first
    theirs.reverse();
    assert_eq!(mine.len(), 5);

    let page = |fc: FiscalCode, before: Option<MessageId>, limit: usize| {
        let store = &store;
        async move { store.inbox(&fc, before, limit).await.unwrap() }
    };
    assert_eq!(page(citizen(), None, 100).await, mine);
    assert_eq!(page(other_citizen(), None, 100).await, theirs);
    assert_eq!(page(citizen(), None, 2).await, mine[..2]);
    assert_eq!(page(citizen(), Some(mine[1]), 2).await, mine[2..4]);
    assert_eq!(page(citizen(), Some(mine[3]), 2).await, mine[4..]);
    assert_eq!(page(citizen(), Some(mine[4]), 2).await, vec![]);
    assert_eq!(page(citizen(), None, 0).await, vec![]);
    // `before` may name a message of someone else: the page starts strictly older than it.
    let older_than_theirs: Vec<MessageId> =
        mine.iter().copied().filter(|id| *id < theirs[0]).collect();
    assert_eq!(
        page(citizen(), Some(theirs[0]), 100).await,
        older_than_theirs
    );

    for id in &mine {
        assert!(store.inbox_contains(&citizen(), id).await.unwrap());
        assert!(!store.inbox_contains(&other_citizen(), id).await.unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// A citizen's data (GDPR download)
// ---------------------------------------------------------------------------------------------

async fn messages_to_lists_every_message_of_the_citizen_oldest_first_after_a_cursor(
    store: impl Store,
) {
    assert_eq!(
        store.messages_to(&citizen(), None, 100).await.unwrap(),
        vec![]
    );
    // Accepted out of time order, for two citizens; one of mine from another service.
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    for (n, at) in [
        (0u128, 3_000),
        (1, 0),
        (2, 5_000),
        (3, 1_000),
        (4, 4_000),
        (5, 2_000),
    ] {
        let fc = if n % 3 == 1 {
            other_citizen()
        } else {
            citizen()
        };
        let m = accepted(&store, "svc", &fc, t(at), n).await;
        if n % 3 == 1 { &mut theirs } else { &mut mine }.push(m.id);
    }
    let waiting = accepted(&store, "svc2", &citizen(), t(2_500), 6).await;
    mine.push(waiting.id);
    // A retry with a used idempotency key is not a second message.
    let keyed = message("svc2", &citizen(), t(6_000), 7);
    for record in [
        accept_record(&keyed, Some(("key-1", t(3_600_000)))),
        accept_record(
            &message("svc2", &citizen(), t(7_000), 8),
            Some(("key-1", t(3_600_000))),
        ),
    ] {
        store.commit_accept(record).await.unwrap();
    }
    mine.push(keyed.id);
    mine.sort();
    theirs.sort();

    // Whatever became of them: "svc"'s are processed into the inbox, except one rejected;
    // "svc2"'s are still waiting to be processed.
    let now = t(10_000);
    for task in claim(&store, "svc", now).await {
        let TaskKind::Process(id) = task.kind else {
            panic!("unexpected {task:?}")
        };
        let message = store.message(&id).await.unwrap().unwrap().message;
        let mut record = processed(&task, &message, vec![], now);
        if id == mine[0] {
            record.status = MessageStatus::Rejected(RejectionReason::ServiceNotAllowed);
            record.into_inbox = false;
        }
        store.commit_process(record).await.unwrap();
    }
    assert!(!store.inbox_contains(&citizen(), &mine[0]).await.unwrap());
    assert!(!store.inbox_contains(&citizen(), &waiting.id).await.unwrap());

    let page = |fc: FiscalCode, after: Option<MessageId>, limit: usize| {
        let store = &store;
        async move { store.messages_to(&fc, after, limit).await.unwrap() }
    };
    assert_eq!(mine.len(), 6);
    assert_eq!(page(citizen(), None, 100).await, mine);
    assert_eq!(page(other_citizen(), None, 100).await, theirs);
    assert_eq!(page(citizen(), None, 2).await, mine[..2]);
    assert_eq!(page(citizen(), Some(mine[1]), 2).await, mine[2..4]);
    assert_eq!(page(citizen(), Some(mine[3]), 2).await, mine[4..]);
    assert_eq!(page(citizen(), Some(mine[5]), 2).await, vec![]);
    assert_eq!(page(citizen(), None, 0).await, vec![]);
    // `after` may name a message of someone else: the page starts strictly after it.
    let after_theirs: Vec<MessageId> = mine.iter().copied().filter(|id| *id > theirs[1]).collect();
    assert!(!after_theirs.is_empty() && after_theirs.len() < mine.len());
    assert_eq!(page(citizen(), Some(theirs[1]), 100).await, after_theirs);
}

async fn preferences_and_activations_of_a_citizen_are_listed_in_service_order(store: impl Store) {
    assert_eq!(store.preferences_of(&citizen()).await.unwrap(), vec![]);
    assert_eq!(store.activations_of(&citizen()).await.unwrap(), vec![]);

    // Ids chosen so that byte order matters: "svc" < "svc-a" < "svc2", and version 256 sorts
    // after version 1 only if versions are compared as numbers.
    for (service, version) in [
        ("svc2", 0),
        ("svc", 256),
        ("svc-a", 3),
        ("svc", 0),
        ("svc", 1),
    ] {
        store
            .put_preference(&citizen(), &preference(service, version, true))
            .await
            .unwrap();
    }
    let theirs = preference("svc", 0, false);
    store
        .put_preference(&other_citizen(), &theirs)
        .await
        .unwrap();
    // Stored again under the same version: listed once, as replaced.
    store
        .put_preference(&citizen(), &preference("svc", 1, false))
        .await
        .unwrap();
    assert_eq!(
        store.preferences_of(&citizen()).await.unwrap(),
        vec![
            preference("svc", 0, true),
            preference("svc", 1, false),
            preference("svc", 256, true),
            preference("svc-a", 3, true),
            preference("svc2", 0, true),
        ]
    );
    assert_eq!(
        store.preferences_of(&other_citizen()).await.unwrap(),
        vec![theirs]
    );

    let activation = |service: &str, fiscal_code: FiscalCode, status| Activation {
        service_id: sid(service),
        fiscal_code,
        status,
        updated_at: T0,
        version: 0,
    };
    let mine = [
        activation("svc", citizen(), ActivationStatus::Pending),
        activation("svc-b", citizen(), ActivationStatus::Active),
        activation("svc2", citizen(), ActivationStatus::Inactive),
    ];
    let theirs = activation("svc-b", other_citizen(), ActivationStatus::Active);
    for a in [&mine[2], &theirs, &mine[0], &mine[1]] {
        store.put_activation(a).await.unwrap();
    }
    assert_eq!(store.activations_of(&citizen()).await.unwrap(), mine);
    assert_eq!(
        store.activations_of(&other_citizen()).await.unwrap(),
        vec![theirs]
    );
}

// ---------------------------------------------------------------------------------------------
// Erasing a citizen (GDPR deletion)
// ---------------------------------------------------------------------------------------------

/// For each of `citizen()` and `other_citizen()`: a profile, two preferences, an activation, an
/// installation, and four messages in different services — one waiting to be processed
/// ("svc-wait"), one whose processing is claimed ("svc-held"), one rejected ("svc-no"), one
/// processed ("svc") with its inbox delivery SENT, its email delivery RETRYING and its push
/// delivery claimed. Each citizen thus has 4 queued tasks, 2 of them leased. Returns each
/// citizen's message ids, oldest first.
async fn two_citizens_with_data(store: &impl Store) -> [Vec<MessageId>; 2] {
    let both = [citizen(), other_citizen()];
    for (i, fc) in both.iter().enumerate() {
        store.put_profile(&Profile::new(fc.clone())).await.unwrap();
        for (service, version) in [("svc", 0), ("svc-wait", 1)] {
            store
                .put_preference(fc, &preference(service, version, true))
                .await
                .unwrap();
        }
        let activation = Activation {
            service_id: sid("svc"),
            fiscal_code: fc.clone(),
            status: ActivationStatus::Active,
            updated_at: T0,
            version: 0,
        };
        store.put_activation(&activation).await.unwrap();
        store
            .put_installation(fc, &installation("dev-a", &format!("token-{i}")))
            .await
            .unwrap();
    }
    let mut ids = [Vec::new(), Vec::new()];
    for (k, service) in ["svc-wait", "svc-held", "svc-no", "svc"]
        .into_iter()
        .enumerate()
    {
        for (i, fc) in both.iter().enumerate() {
            let n = 10 * k as u128 + i as u128;
            ids[i].push(accepted(store, service, fc, T0, n).await.id);
        }
    }
    assert_eq!(claim(store, "svc-held", T0).await.len(), 2);
    for task in claim(store, "svc-no", T0).await {
        let TaskKind::Process(id) = task.kind else {
            panic!("unexpected {task:?}")
        };
        let message = store.message(&id).await.unwrap().unwrap().message;
        let reason = RejectionReason::ServiceNotAllowed;
        let record = ProcessRecord {
            task,
            message,
            status: MessageStatus::Rejected(reason),
            deliveries: vec![],
            into_inbox: false,
            events: vec![JournalEvent::Rejected { reason }],
            at: t(500),
        };
        store.commit_process(record).await.unwrap();
    }
    for task in claim(store, "svc", T0).await {
        let TaskKind::Process(id) = task.kind else {
            panic!("unexpected {task:?}")
        };
        let message = store.message(&id).await.unwrap().unwrap().message;
        let deliveries = [ChannelKind::Inbox, ChannelKind::Email, ChannelKind::Push]
            .into_iter()
            .map(|channel| delivery(&message, channel, t(1_000)))
            .collect();
        store
            .commit_process(processed(&task, &message, deliveries, t(500)))
            .await
            .unwrap();
    }
    let tasks = claim(store, "svc", t(1_000)).await;
    assert_eq!(tasks.len(), 6);
    for task in tasks {
        let TaskKind::Deliver(id) = task.kind else {
            panic!("unexpected {task:?}")
        };
        let pending = store.delivery(&id).await.unwrap().unwrap();
        let (after, event) = match id.channel {
            ChannelKind::Inbox => attempted(
                &pending,
                DeliveryState::Sent,
                delivered(),
                t(2_000),
                t(2_000),
            ),
            ChannelKind::Email => attempted(
                &pending,
                DeliveryState::Retrying,
                timed_out(),
                t(2_000),
                t(61_000),
            ),
            ChannelKind::Push | ChannelKind::Pec => continue, // left claimed
        };
        store
            .commit_delivery(DeliveryRecord {
                task,
                delivery: after,
                events: vec![event],
                effects: vec![],
                at: t(2_000),
            })
            .await
            .unwrap();
    }
    assert_eq!(store.backlog().await.unwrap(), 8);
    for list in &mut ids {
        list.sort();
    }
    ids
}

/// What the store shows, through the trait, of a citizen and of the messages `ids`.
#[derive(Debug, PartialEq)]
struct Holdings {
    profile: Option<Profile>,
    preferences: Vec<ServicePreference>,
    activations: Vec<Activation>,
    installations: Vec<Installation>,
    inbox: Vec<MessageId>,
    listed: Vec<MessageId>,
    messages: Vec<Option<StoredMessage>>,
    deliveries: Vec<Vec<Delivery>>,
    journals: Vec<(Vec<Vec<u8>>, Option<JournalHead>)>,
}

async fn holdings(store: &impl Store, fiscal_code: &FiscalCode, ids: &[MessageId]) -> Holdings {
    let mut installations = store.installations(fiscal_code).await.unwrap();
    installations.sort_by(|a, b| a.installation_id.cmp(&b.installation_id));
    let mut held = Holdings {
        profile: store.profile(fiscal_code).await.unwrap(),
        preferences: store.preferences_of(fiscal_code).await.unwrap(),
        activations: store.activations_of(fiscal_code).await.unwrap(),
        installations,
        inbox: store.inbox(fiscal_code, None, ALL).await.unwrap(),
        listed: store.messages_to(fiscal_code, None, ALL).await.unwrap(),
        messages: Vec::new(),
        deliveries: Vec::new(),
        journals: Vec::new(),
    };
    for id in ids {
        held.messages.push(store.message(id).await.unwrap());
        let mut deliveries = store.deliveries(id).await.unwrap();
        for channel in ChannelKind::ALL {
            let one = store
                .delivery(&DeliveryId::new(*id, channel))
                .await
                .unwrap();
            assert_eq!(
                one.as_ref(),
                deliveries.iter().find(|d| d.channel() == channel)
            );
        }
        deliveries.sort_by_key(Delivery::channel);
        held.deliveries.push(deliveries);
        verified_journal(store, id).await;
        let journal = store.journal(id).await.unwrap();
        held.journals.push((journal.entries, journal.head));
    }
    held
}

async fn erasing_a_citizen_removes_their_data_only_and_keeps_every_journal(store: impl Store) {
    let [mine, theirs] = two_citizens_with_data(&store).await;
    let before = holdings(&store, &citizen(), &mine).await;
    assert_eq!(before.listed, mine);
    assert_eq!(before.inbox.len(), 1);
    assert_eq!(before.deliveries.iter().flatten().count(), 3);
    let theirs_before = holdings(&store, &other_citizen(), &theirs).await;

    let report = store.erase_citizen(&erasure(citizen())).await.unwrap();
    assert_eq!(
        report,
        ErasureReport {
            profile: true,
            preferences: 2,
            activations: 1,
            installations: 1,
            messages: 4,
            deliveries: 3,
            tasks: 4,
            flags: 0,
        }
    );

    // Nothing of the citizen is left but the journals, which still verify, unchanged.
    let after = holdings(&store, &citizen(), &mine).await;
    assert_eq!(
        after,
        Holdings {
            profile: None,
            preferences: vec![],
            activations: vec![],
            installations: vec![],
            inbox: vec![],
            listed: vec![],
            messages: vec![None; 4],
            deliveries: vec![vec![]; 4],
            journals: before.journals,
        }
    );
    for id in &mine {
        assert!(!store.inbox_contains(&citizen(), id).await.unwrap());
    }
    // The other citizen's data is untouched, and so are their tasks: only theirs come back,
    // queued or leased alike.
    assert_eq!(
        holdings(&store, &other_citizen(), &theirs).await,
        theirs_before
    );
    assert_eq!(store.backlog().await.unwrap(), 4);
    let services = sids(&["svc", "svc-held", "svc-no", "svc-wait"]);
    let later = t(10_000_000);
    let mut left = kinds(
        &store
            .claim_tasks(&services, later, ALL, lease_from(later))
            .await
            .unwrap(),
    );
    left.sort();
    let mut want = vec![
        TaskKind::Process(theirs[0]),
        TaskKind::Process(theirs[1]),
        TaskKind::Deliver(DeliveryId::new(theirs[3], ChannelKind::Email)),
        TaskKind::Deliver(DeliveryId::new(theirs[3], ChannelKind::Push)),
    ];
    want.sort();
    assert_eq!(left, want);

    // Erasing again finds nothing; a message accepted afterwards is the citizen's only one.
    assert_eq!(
        store.erase_citizen(&erasure(citizen())).await.unwrap(),
        ErasureReport::default()
    );
    assert_eq!(store.backlog().await.unwrap(), 4);
    let new = accepted(&store, "svc", &citizen(), t(20_000_000), 99).await;
    assert_eq!(
        store.messages_to(&citizen(), None, ALL).await.unwrap(),
        vec![new.id]
    );
    assert_eq!(store.backlog().await.unwrap(), 5);
}

async fn erasing_a_citizen_without_data_reports_zeros_and_changes_nothing(store: impl Store) {
    assert_eq!(
        store
            .erase_citizen(&erasure(third_citizen()))
            .await
            .unwrap(),
        ErasureReport::default()
    );
    let [mine, theirs] = two_citizens_with_data(&store).await;
    let before = [
        holdings(&store, &citizen(), &mine).await,
        holdings(&store, &other_citizen(), &theirs).await,
    ];

    assert_eq!(
        store
            .erase_citizen(&erasure(third_citizen()))
            .await
            .unwrap(),
        ErasureReport::default()
    );
    let after = [
        holdings(&store, &citizen(), &mine).await,
        holdings(&store, &other_citizen(), &theirs).await,
    ];
    assert_eq!(after, before);
    assert_eq!(store.backlog().await.unwrap(), 8);
}

async fn commits_racing_an_erasure_lose_their_lease_and_write_nothing(store: impl Store) {
    let held = accepted(&store, "svc", &citizen(), T0, 1).await;
    let sent = accepted(&store, "svc-b", &citizen(), T0, 2).await;
    let email = delivery(&sent, ChannelKind::Email, t(1_000));
    process(&store, &sent, vec![email.clone()], t(1_000)).await;
    let theirs = accepted(&store, "svc", &other_citizen(), T0, 3).await;
    // Workers hold the processing of `held` (and of `theirs`) and the delivery of `sent`.
    let process_tasks = claim(&store, "svc", t(1_000)).await;
    assert_eq!(process_tasks.len(), 2);
    let task_of = |id: MessageId| {
        process_tasks
            .iter()
            .find(|task| task.kind == TaskKind::Process(id))
            .unwrap()
            .clone()
    };
    let delivery_task = claim_one(&store, "svc-b", t(1_000)).await;
    assert_eq!(store.backlog().await.unwrap(), 3);
    let journals_before = [
        store.journal(&held.id).await.unwrap(),
        store.journal(&sent.id).await.unwrap(),
    ];

    let report = store.erase_citizen(&erasure(citizen())).await.unwrap();
    assert_eq!((report.messages, report.tasks), (2, 2));
    assert_eq!(store.backlog().await.unwrap(), 1);

    // The workers' results arrive after the erasure: refused, and nothing is written back.
    let inbox = delivery(&held, ChannelKind::Inbox, t(2_000));
    assert_lease_lost(
        store
            .commit_process(processed(
                &task_of(held.id),
                &held,
                vec![inbox.clone()],
                t(2_000),
            ))
            .await,
    );
    let (after, event) = attempted(&email, DeliveryState::Sent, delivered(), t(2_000), t(2_000));
    assert_lease_lost(
        store
            .commit_delivery(DeliveryRecord {
                task: delivery_task.clone(),
                delivery: after,
                events: vec![event],
                effects: vec![],
                at: t(2_000),
            })
            .await,
    );
    assert_lease_lost(store.discard_task(&delivery_task).await);
    for id in [held.id, sent.id] {
        assert_eq!(store.message(&id).await.unwrap(), None);
        assert_eq!(store.deliveries(&id).await.unwrap(), vec![]);
    }
    assert_eq!(store.delivery(&inbox.id).await.unwrap(), None);
    assert_eq!(store.delivery(&email.id).await.unwrap(), None);
    assert!(!store.inbox_contains(&citizen(), &held.id).await.unwrap());
    assert_eq!(
        store.messages_to(&citizen(), None, ALL).await.unwrap(),
        vec![]
    );
    for (id, before) in [held.id, sent.id].iter().zip(&journals_before) {
        let journal = store.journal(id).await.unwrap();
        assert_eq!(journal.entries, before.entries);
        assert_eq!(journal.head, before.head);
        verified_journal(&store, id).await;
    }
    assert_eq!(store.backlog().await.unwrap(), 1);
    let later = t(10_000_000);
    assert_eq!(
        kinds(
            &store
                .claim_tasks(&sids(&["svc", "svc-b"]), later, ALL, lease_from(later))
                .await
                .unwrap()
        ),
        vec![TaskKind::Process(theirs.id)]
    );
}

// ---------------------------------------------------------------------------------------------
// Journal integrity (what `verify_stored` catches in what the store returns)
// ---------------------------------------------------------------------------------------------

async fn altering_any_byte_of_a_stored_journal_entry_is_detected(store: impl Store) {
    let (_, journal) = journal_of_three(&store).await;
    let head = journal.head.as_ref();
    for entry in 0..journal.entries.len() {
        for index in 0..journal.entries[entry].len() {
            let original = journal.entries[entry][index];
            let replacements = [original ^ 0x01, original ^ 0x20, b'0', b' ', 0xff];
            for replacement in replacements.into_iter().filter(|r| *r != original) {
                let mut altered = journal.entries.clone();
                altered[entry][index] = replacement;
                assert!(
                    verify_stored(&altered, head).is_err(),
                    "entry {entry}, byte {index}: {:?} -> {:?} went unnoticed",
                    original as char,
                    replacement as char,
                );
            }
        }
    }
}

async fn removing_the_last_journal_entry_is_detected_against_the_head(store: impl Store) {
    let (_, journal) = journal_of_three(&store).await;
    let head = journal.head.as_ref();
    let mut truncated = journal.entries.clone();
    truncated.pop();
    assert!(verify_stored(&truncated, head).is_err());
    assert!(verify_stored(&[], head).is_err());
    let mut headless = journal.entries.clone();
    headless.remove(0);
    assert!(verify_stored(&headless, head).is_err());
}

async fn swapping_two_journal_entries_is_detected(store: impl Store) {
    let (_, journal) = journal_of_three(&store).await;
    let head = journal.head.as_ref();
    for (a, b) in [(0, 1), (1, 2), (0, 2)] {
        let mut swapped = journal.entries.clone();
        swapped.swap(a, b);
        assert!(verify_stored(&swapped, head).is_err(), "swap {a} and {b}");
    }
}

// ---------------------------------------------------------------------------------------------
// Idempotency records
// ---------------------------------------------------------------------------------------------

async fn purge_removes_only_expired_idempotency_records_and_counts_them(store: impl Store) {
    let keyed = [
        ("svc", "k-early", t(1_000), 1),
        ("svc", "k-later", t(4_000), 2),
        ("svc2", "k-early", t(2_000), 3),
        ("svc", "k-kept", t(3_600_000), 4),
        ("svc2", "k-kept", t(3_600_000), 5),
    ];
    let mut messages = Vec::new();
    for (service, key, expires_at, n) in keyed {
        let m = message(service, &citizen(), T0, n);
        store
            .commit_accept(accept_record(&m, Some((key, expires_at))))
            .await
            .unwrap();
        messages.push(m);
    }
    accepted(&store, "svc", &citizen(), T0, 6).await; // no key at all

    assert_eq!(store.purge_idempotency(T0).await.unwrap(), 0);
    assert_eq!(store.purge_idempotency(t(5_000)).await.unwrap(), 3);
    assert_eq!(store.purge_idempotency(t(5_000)).await.unwrap(), 0);
    assert_eq!(store.purge_idempotency(t(10_000)).await.unwrap(), 0);

    // The unexpired records still answer; the messages and tasks are untouched.
    for (service, first) in [("svc", &messages[3]), ("svc2", &messages[4])] {
        let retry = message(service, &citizen(), t(6_000), 9);
        assert_eq!(
            store
                .commit_accept(accept_record(&retry, Some(("k-kept", t(3_606_000)))))
                .await
                .unwrap(),
            AcceptOutcome::Existing {
                message_id: first.id,
                content_hash: first.body.content_hash(),
            }
        );
    }
    for m in &messages {
        assert!(store.message(&m.id).await.unwrap().is_some());
    }
    assert_eq!(store.backlog().await.unwrap(), 6);
    // A purged key is free for a new message.
    let reuse = message("svc", &citizen(), t(6_000), 10);
    assert_eq!(
        store
            .commit_accept(accept_record(&reuse, Some(("k-early", t(3_606_000)))))
            .await
            .unwrap(),
        AcceptOutcome::Created
    );
}

// ---------------------------------------------------------------------------------------------
// Instantiation
// ---------------------------------------------------------------------------------------------

/// One `#[tokio::test]` per case, each on a store from `$fresh` (a future).
macro_rules! cases {
    ($fresh:expr; $($case:ident),* $(,)?) => { $(
        #[tokio::test]
        async fn $case() {
            super::$case($fresh.await).await
        }
    )* };
}

/// The whole suite against one backend, in a module named `$backend`.
macro_rules! conformance {
    ($backend:ident, $fresh:expr) => {
        mod $backend {
            use super::*;
            cases!($fresh;
                service_is_created_with_version_1_and_updated_with_version_2,
                service_write_with_a_stale_or_skipped_version_conflicts,
                services_are_listed_in_id_order,
                a_managed_service_changes_with_its_history_and_engine_service,
                logos_are_kept_per_owner_and_replaced_whole,
                managed_services_are_listed_by_status_across_institutions,
                remote_content_configurations_are_versioned_and_listed_per_institution,
                profile_is_created_with_version_0_and_updated_with_version_1,
                profile_write_with_a_stale_version_conflicts,
                preference_is_stored_per_settings_version,
                activation_is_stored_per_service_and_citizen,
                the_recipients_records_are_read_together,
                installations_are_listed_per_citizen_only,
                batched_reads_answer_as_the_single_reads,
                removing_an_installation_removes_only_it_and_absent_is_ok,
                accepted_message_is_stored_with_a_due_process_task_and_one_journal_entry,
                accept_with_a_used_idempotency_key_returns_the_first_message_and_writes_nothing,
                accept_after_the_idempotency_record_expired_creates_a_new_message,
                same_idempotency_key_under_another_service_is_independent,
                claim_takes_only_tasks_due_at_now,
                claim_takes_at_most_per_service_tasks_oldest_first,
                claimed_task_is_not_claimable_again_before_its_lease_ends,
                expired_lease_is_retaken_with_a_greater_token,
                process_commit_with_a_superseded_lease_is_lost_and_changes_nothing,
                decisions_committed_together_succeed_or_fail_one_by_one,
                delivery_commit_with_a_superseded_lease_is_lost_and_changes_nothing,
                discarded_task_is_gone_and_leaves_the_backlog,
                due_services_are_in_id_order_strictly_after_and_up_to_the_limit,
                due_services_skip_services_whose_earliest_task_is_not_due,
                due_services_and_claims_tell_apart_a_service_id_that_prefixes_another,
                next_due_at_is_none_when_nothing_is_queued,
                next_due_at_is_the_earliest_due_time_across_services,
                processed_message_enters_the_inbox_and_its_deliveries_are_queued,
                rejected_message_has_its_reason_and_no_inbox_entry_or_deliveries,
                retried_delivery_is_requeued_at_its_next_attempt,
                final_delivery_leaves_the_queue_and_the_backlog,
                deferral_without_event_requeues_and_adds_no_journal_entry,
                inbox_pages_newest_first_with_exclusive_before_and_a_limit,
                messages_to_lists_every_message_of_the_citizen_oldest_first_after_a_cursor,
                preferences_and_activations_of_a_citizen_are_listed_in_service_order,
                erasing_a_citizen_removes_their_data_only_and_keeps_every_journal,
                erasing_a_citizen_without_data_reports_zeros_and_changes_nothing,
                commits_racing_an_erasure_lose_their_lease_and_write_nothing,
                altering_any_byte_of_a_stored_journal_entry_is_detected,
                removing_the_last_journal_entry_is_detected_against_the_head,
                swapping_two_journal_entries_is_detected,
                accept_with_a_decision_writes_it_in_the_same_write,
                an_attempt_start_keeps_the_lease_and_records_an_unknown_outcome,
                outcomes_committed_together_succeed_or_fail_one_by_one,
                effects_commit_with_the_outcome,
                callback_registrations_are_kept_per_service,
                an_outbox_opened_at_accept_is_due_and_follows_the_journal,
                an_outbox_behind_its_journal_is_not_left_waiting_or_closed,
                outcomes_committed_together_queue_one_callback_and_keep_a_held_one,
                service_access_and_its_key_index_change_together,
                an_access_change_from_a_stale_read_is_refused_and_writes_nothing,
                a_validated_email_belongs_to_one_citizen_at_a_time,
                message_flags_change_atomically_and_reading_is_one_way,
                the_feed_keeps_the_day_s_last_change_with_services_over_profiles,
                open_data_requests_are_listed_when_due_in_due_order,
                an_erasure_closes_its_request_and_forgets_flags_download_and_profile,
                purge_removes_only_expired_idempotency_records_and_counts_them,
                receipts_are_kept_byte_for_byte_and_move_the_delivery_to_sent,
                a_receipt_read_again_writes_nothing,
                a_receipt_for_no_pec_delivery_writes_nothing,
                a_notice_or_a_late_receipt_is_evidence_only,
                a_receipt_fences_an_attempt_in_flight,
            );
        }
    };
}

/// A fresh sled store in its own temporary directory, removed on drop.
async fn fresh_sled() -> SledStore {
    SledStore::temporary().expect("a temporary sled store opens")
}

conformance!(on_sled, fresh_sled());

/// A fresh PostgreSQL store in a schema of its own, dropped with the store, on the database of
/// `IO_TEST_DATABASE_URL` (default: the loopback server `.ci/run` starts).
#[cfg(feature = "postgres")]
async fn fresh_postgres() -> io_store::PostgresStore {
    let url = std::env::var("IO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| io_store::postgres_store::TEST_DATABASE_URL.to_string());
    io_store::PostgresStore::temporary(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is needed by these tests: {e}"))
}

#[cfg(feature = "postgres")]
conformance!(on_postgres, fresh_postgres());

/// Cases only PostgreSQL has: several processes on one database.
#[cfg(feature = "postgres")]
mod postgres_processes {
    use super::*;
    use io_store::postgres_store::{PostgresOptions, TEST_DATABASE_URL};

    /// Work one process queues wakes the workers another has waiting (`LISTEN`/`NOTIFY`),
    /// without waiting for their poll. The second store's listener connects in the background,
    /// so accepts are repeated until one is heard (each wait is bounded; none is timed).
    #[tokio::test]
    async fn work_queued_by_one_process_wakes_the_workers_of_another() {
        let first = fresh_postgres().await;
        let url =
            std::env::var("IO_TEST_DATABASE_URL").unwrap_or_else(|_| TEST_DATABASE_URL.into());
        let second = io_store::PostgresStore::connect_with(PostgresOptions {
            schema: first.temporary_schema().map(str::to_owned),
            max_connections: 2,
            ..PostgresOptions::new(&url)
        })
        .await
        .unwrap();
        for n in 0..30 {
            // Polled once before the accept, so the wait is registered when the notice comes.
            let waiting = second.work_queued();
            tokio::pin!(waiting);
            let _ = futures::poll!(waiting.as_mut());
            accept(&first, &message("svc", &citizen(), t(n * 1_000), n as u128)).await;
            if tokio::time::timeout(std::time::Duration::from_secs(1), waiting)
                .await
                .is_ok()
            {
                return;
            }
        }
        panic!("no accept of the first store woke the second store's workers");
    }
}

// ---------------------------------------------------------------------------------------------
// Backend-specific: sled
// ---------------------------------------------------------------------------------------------

/// Cases that need to know the backend (reopening a sled directory), outside the shared suite.
mod sled_only {

    use super::*;

    #[tokio::test]
    async fn dropping_the_store_releases_its_directory_at_once() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..20 {
            let store = SledStore::open(dir.path())
                .unwrap_or_else(|e| panic!("reopen {round} right after the drop: {e}"));
            store
                .put_service(&service(&format!("svc{round}"), 1))
                .await
                .unwrap();
            drop(store);
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.services().await.unwrap().len(), 20);
    }

    /// A directory another open store holds is refused with `Locked`, naming the file, once
    /// the wait for a late release is over (10 s).
    #[test]
    fn a_directory_held_open_is_reported_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _held = SledStore::open(dir.path()).unwrap();
        match SledStore::open(dir.path()) {
            Err(io_store::SledStoreError::Locked { path }) => {
                assert_eq!(path, dir.path().join("db"));
            }
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("a second store opened a directory held by the first"),
        }
    }

    /// A journal appended to by several openings of the store keeps every entry, in order,
    /// and verifies.
    #[tokio::test]
    async fn a_journal_written_across_reopenings_keeps_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let first = message("svc", &citizen(), T0, 1);
        let accepted = {
            let store = SledStore::open(dir.path()).unwrap();
            store.put_service(&service("svc", 1)).await.unwrap();
            store.put_profile(&Profile::new(citizen())).await.unwrap();
            store
                .commit_accept(accept_record(&first, None))
                .await
                .unwrap();
            store.journal(&first.id).await.unwrap().entries
        };
        assert!(!accepted.is_empty());
        let processed = {
            let store = SledStore::open(dir.path()).unwrap();
            let email = delivery(&first, ChannelKind::Email, t(5_000));
            process(&store, &first, vec![email], t(1_000)).await;
            store.journal(&first.id).await.unwrap().entries
        };
        assert!(processed.len() > accepted.len());
        assert_eq!(processed[..accepted.len()], accepted[..]);
        let store = SledStore::open(dir.path()).unwrap();
        // A second message accepted after the reopening writes under a new number too.
        let second = message("svc", &citizen(), t(2_000), 2);
        store
            .commit_accept(accept_record(&second, None))
            .await
            .unwrap();
        assert_eq!(store.journal(&first.id).await.unwrap().entries, processed);
        verified_journal(&store, &first.id).await;
        verified_journal(&store, &second.id).await;
    }

    #[tokio::test]
    async fn committed_data_survives_dropping_and_reopening_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = message("svc", &citizen(), T0, 1);
        let email = delivery(&first, ChannelKind::Email, t(5_000));
        let profile = Profile::new(citizen());
        let (journal_before, claimed_before) = {
            let store = SledStore::open(dir.path()).unwrap();
            store.put_service(&service("svc", 1)).await.unwrap();
            store.put_profile(&profile).await.unwrap();
            store
                .commit_accept(accept_record(&first, Some(("key-1", t(3_600_000)))))
                .await
                .unwrap();
            process(&store, &first, vec![email.clone()], t(1_000)).await;
            let journal = store.journal(&first.id).await.unwrap();
            let claimed = claim_one(&store, "svc", t(5_000)).await;
            (journal, claimed)
        };

        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.service(&sid("svc")).await.unwrap(),
            Some(service("svc", 1))
        );
        assert_eq!(store.profile(&citizen()).await.unwrap(), Some(profile));
        let stored = store.message(&first.id).await.unwrap().unwrap();
        assert_eq!(stored.message, first);
        assert_eq!(stored.status, MessageStatus::Processed);
        assert!(store.inbox_contains(&citizen(), &first.id).await.unwrap());
        assert_eq!(
            store.deliveries(&first.id).await.unwrap(),
            vec![email.clone()]
        );
        let journal = store.journal(&first.id).await.unwrap();
        assert_eq!(journal.entries, journal_before.entries);
        assert_eq!(journal.head, journal_before.head);
        verified_journal(&store, &first.id).await;
        assert_eq!(store.backlog().await.unwrap(), 1);
        // The idempotency record survived too.
        let retry = message("svc", &citizen(), t(2_000), 2);
        assert_eq!(
            store
                .commit_accept(accept_record(&retry, Some(("key-1", t(3_602_000)))))
                .await
                .unwrap(),
            AcceptOutcome::Existing {
                message_id: first.id,
                content_hash: first.body.content_hash(),
            }
        );
        // The claim does not survive: the process that reopens the store owns it alone, so
        // every lease is released at once and the task is due again at its own time (not at
        // the lease's end), retaken with a greater token.
        let retaken = claim_one(&store, "svc", t(5_000)).await;
        assert_eq!(retaken.kind, TaskKind::Deliver(email.id));
        assert!(retaken.lease.token > claimed_before.lease.token);
    }
}
