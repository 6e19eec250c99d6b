//! The engine on the sled store, step by step under tokio's paused clock: the decision at
//! accept with the built-in inbox, retries, expiry, Retry-After, permanent failures, lease
//! hand-over with honest attempt counts, fairness, idempotency, rate limits, a citizen erased
//! mid-round.

mod support;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use io_core::{
    Channel, ChannelKind, Clock, DeliveryId, DeliveryState, Engine, EngineConfig, FailureReason,
    IdempotencyKey, JournalEvent, MessageId, MessageStatus, Outcome, PermanentReason, RateLimit,
    RejectionReason, Report, RetryPolicy, Store, SubmitError, TokioClock, TransientCause,
};
use io_store::{Durability, SledStore};
use support::{RecordingChannel, T0, citizen, seed, submission};

fn config() -> EngineConfig {
    EngineConfig {
        retry: RetryPolicy {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(600),
        },
        rng_seed: Some(42),
        ..EngineConfig::default()
    }
}

struct World {
    engine: Engine<SledStore>,
    store: Arc<SledStore>,
    email: Arc<RecordingChannel>,
    clock: Arc<dyn Clock>,
}

/// One service "svc", one citizen with a validated email; the email channel answers `script`.
async fn world(script: Vec<Outcome>, config: EngineConfig) -> World {
    let store = Arc::new(SledStore::temporary().unwrap());
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(T0));
    let email = RecordingChannel::new(ChannelKind::Email, clock.clone(), script);
    seed(&*store, &["svc"], &[citizen(1)]).await;
    let channels: Vec<Arc<dyn Channel>> = vec![email.clone()];
    let engine = Engine::new(store.clone(), channels, clock.clone(), config).unwrap();
    World {
        engine,
        store,
        email,
        clock,
    }
}

impl World {
    async fn submit(&self, subject: &str) -> MessageId {
        let accepted = self
            .engine
            .submit(submission("svc", &citizen(1), subject))
            .await
            .unwrap();
        accepted.id
    }

    async fn email_delivery(&self, id: MessageId) -> io_core::Delivery {
        let delivery_id = DeliveryId::new(id, ChannelKind::Email);
        self.store.delivery(&delivery_id).await.unwrap().unwrap()
    }

    async fn inbox_delivery(&self, id: MessageId) -> io_core::Delivery {
        let delivery_id = DeliveryId::new(id, ChannelKind::Inbox);
        self.store.delivery(&delivery_id).await.unwrap().unwrap()
    }

    /// Advances paused time to `at` and runs the engine until nothing is due.
    async fn run_at(&self, at: io_core::Timestamp) {
        let now = self.clock.now();
        if at > now {
            tokio::time::advance(at.since(now)).await;
        }
        self.engine.run_until_idle().await.unwrap();
    }

    async fn attempts_in_journal(&self, id: MessageId) -> Vec<JournalEvent> {
        self.engine
            .verify_journal(&id)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.event)
            .filter(|event| {
                matches!(
                    event,
                    JournalEvent::Attempted {
                        channel: ChannelKind::Email,
                        ..
                    }
                )
            })
            .collect()
    }
}

fn transient() -> Outcome {
    Outcome::Transient {
        retry_after: None,
        cause: TransientCause::ServerError(503),
    }
}

#[tokio::test(start_paused = true)]
async fn transient_failures_retry_with_backoff_until_sent() {
    let w = world(vec![transient(), transient()], config()).await;
    let id = w.submit("Avviso di pagamento TARI").await;
    w.engine.run_until_idle().await.unwrap();

    let message = w.store.message(&id).await.unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Processed);
    let mut delivery = w.email_delivery(id).await;
    let mut previous_attempt = w.clock.now();
    for attempt in 1..=2u32 {
        assert_eq!(
            delivery.state,
            DeliveryState::Retrying,
            "after attempt {attempt}"
        );
        assert_eq!(delivery.attempts, attempt);
        let wait = delivery.next_attempt_at.since(previous_attempt);
        let ceiling = config().retry.ceiling(attempt);
        assert!(
            wait <= ceiling,
            "attempt {attempt}: waited {wait:?}, ceiling {ceiling:?}"
        );
        // Not a moment early: one millisecond before the due time nothing is sent.
        w.run_at(delivery.next_attempt_at.plus(Duration::ZERO))
            .await;
        previous_attempt = delivery.next_attempt_at;
        delivery = w.email_delivery(id).await;
    }
    assert_eq!(delivery.state, DeliveryState::Sent);
    assert_eq!(delivery.attempts, 3);
    let calls = w.email.calls();
    assert_eq!(calls.len(), 3);
    assert!(calls.windows(2).all(|c| c[0].at < c[1].at));
    assert_eq!(w.attempts_in_journal(id).await.len(), 3);
    let inbox = w.inbox_delivery(id).await;
    assert_eq!(
        (inbox.state, inbox.attempts),
        (DeliveryState::Sent, 1),
        "the inbox is delivered once, unaffected by email retries"
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_is_never_made_before_its_due_time() {
    let w = world(vec![transient()], config()).await;
    let id = w.submit("Avviso di pagamento TARI").await;
    w.engine.run_until_idle().await.unwrap();
    let delivery = w.email_delivery(id).await;
    let due = delivery.next_attempt_at;
    w.run_at(io_core::Timestamp::from_millis(due.as_millis() - 1))
        .await;
    assert_eq!(w.email.calls().len(), 1);
    w.run_at(due).await;
    assert_eq!(w.email.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn retries_until_the_time_to_live_then_expired() {
    let always_failing = vec![transient(); 1000];
    let w = world(always_failing, config()).await;
    let id = w.submit("Avviso di pagamento TARI").await;
    w.engine.run_until_idle().await.unwrap();
    let expires_at = w.email_delivery(id).await.expires_at;
    let mut guard = 0;
    loop {
        let delivery = w.email_delivery(id).await;
        if delivery.state.is_final() {
            assert_eq!(delivery.state, DeliveryState::Expired);
            break;
        }
        w.run_at(delivery.next_attempt_at).await;
        guard += 1;
        assert!(guard < 200, "never expired");
    }
    let calls = w.email.calls();
    assert!(
        calls.len() >= 3,
        "retried several times within the hour: {}",
        calls.len()
    );
    assert!(
        calls.iter().all(|c| c.at < expires_at),
        "nothing is attempted after the TTL"
    );
    let attempts = w.attempts_in_journal(id).await;
    assert_eq!(
        attempts.len(),
        calls.len(),
        "every attempt is in the journal"
    );
    assert!(matches!(
        attempts.last(),
        Some(JournalEvent::Attempted {
            state: DeliveryState::Expired,
            next_attempt_at: None,
            ..
        })
    ));
    // The inbox copy stays.
    assert!(w.store.inbox_contains(&citizen(1), &id).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_delivery_due_after_its_time_to_live_expires_unsent() {
    let rate_limited = Outcome::RateLimited {
        retry_after: Some(Duration::from_secs(3000)),
    };
    let w = world(vec![rate_limited], config()).await;
    let id = w.submit("Avviso di pagamento TARI").await;
    w.engine.run_until_idle().await.unwrap();
    let delivery = w.email_delivery(id).await;
    assert_eq!(delivery.state, DeliveryState::Retrying);
    // Retry-After of 3000 s lands inside the 3600 s TTL; a second one would not.
    tokio::time::advance(Duration::from_secs(3700)).await;
    w.engine.run_until_idle().await.unwrap();
    assert_eq!(w.email_delivery(id).await.state, DeliveryState::Expired);
    assert_eq!(
        w.email.calls().len(),
        1,
        "an expired delivery is never sent"
    );
    let events = w.engine.verify_journal(&id).await.unwrap();
    assert!(matches!(
        events.last().map(|e| &e.event),
        Some(JournalEvent::Expired {
            channel: ChannelKind::Email
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn retry_after_from_the_provider_is_honoured() {
    let asked = Duration::from_secs(900); // beyond the jitter ceiling of the first retry
    let w = world(
        vec![Outcome::RateLimited {
            retry_after: Some(asked),
        }],
        config(),
    )
    .await;
    let id = w.submit("Avviso di pagamento TARI").await;
    w.engine.run_until_idle().await.unwrap();
    let first = w.email.calls()[0].at;
    let delivery = w.email_delivery(id).await;
    assert!(delivery.next_attempt_at >= first.plus(asked));
    w.run_at(first.plus(asked - Duration::from_secs(1))).await;
    assert_eq!(w.email.calls().len(), 1, "not retried before Retry-After");
    w.run_at(delivery.next_attempt_at).await;
    assert_eq!(w.email.calls().len(), 2);
    assert_eq!(w.email_delivery(id).await.state, DeliveryState::Sent);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_is_not_retried() {
    let reason = PermanentReason::new("bad_payload", "552 message too large");
    let w = world(vec![Outcome::Permanent(reason.clone())], config()).await;
    let id = w.submit("Avviso di pagamento TARI").await;
    w.engine.run_until_idle().await.unwrap();
    tokio::time::advance(Duration::from_secs(86_400)).await;
    w.engine.run_until_idle().await.unwrap();
    let delivery = w.email_delivery(id).await;
    assert_eq!(
        delivery.state,
        DeliveryState::Failed {
            reason: FailureReason::Permanent { reason }
        }
    );
    assert_eq!(delivery.attempts, 1);
    assert_eq!(w.email.calls().len(), 1);
    assert_eq!(w.store.backlog().await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_invalid_recipient_fails_without_retry() {
    let w = world(vec![Outcome::InvalidRecipient], config()).await;
    let id = w.submit("Avviso di pagamento TARI").await;
    w.engine.run_until_idle().await.unwrap();
    tokio::time::advance(Duration::from_secs(86_400)).await;
    w.engine.run_until_idle().await.unwrap();
    let delivery = w.email_delivery(id).await;
    assert_eq!(
        delivery.state,
        DeliveryState::Failed {
            reason: FailureReason::InvalidRecipient
        }
    );
    assert_eq!(w.email.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_message_without_a_profile_is_rejected_at_accept_or_by_its_process_task() {
    for decide_at_accept in [true, false] {
        let w = world(
            vec![],
            EngineConfig {
                decide_at_accept,
                ..config()
            },
        )
        .await;
        let stranger = citizen(999);
        let accepted = w
            .engine
            .submit(submission("svc", &stranger, "Avviso di pagamento TARI"))
            .await
            .unwrap();
        let status = w.store.message(&accepted.id).await.unwrap().unwrap().status;
        if decide_at_accept {
            assert_eq!(
                status,
                MessageStatus::Rejected(RejectionReason::UserNotFound)
            );
            assert_eq!(w.store.backlog().await.unwrap(), 0, "nothing left to do");
        } else {
            assert_eq!(status, MessageStatus::Accepted);
            assert_eq!(w.engine.run_until_idle().await.unwrap(), 1);
        }
        let message = w.store.message(&accepted.id).await.unwrap().unwrap();
        assert_eq!(
            message.status,
            MessageStatus::Rejected(RejectionReason::UserNotFound)
        );
        assert!(w.store.deliveries(&accepted.id).await.unwrap().is_empty());
        assert!(
            !w.store
                .inbox_contains(&stranger, &accepted.id)
                .await
                .unwrap()
        );
        assert_eq!(
            w.engine.verify_journal(&accepted.id).await.unwrap().len(),
            2
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_inbox_delivery_is_sent_in_the_write_that_accepts_the_message() {
    for decide_at_accept in [true, false] {
        let w = world(
            vec![],
            EngineConfig {
                decide_at_accept,
                ..config()
            },
        )
        .await;
        let id = w.submit("Avviso di pagamento TARI").await;
        if !decide_at_accept {
            assert_eq!(
                w.store.message(&id).await.unwrap().unwrap().status,
                MessageStatus::Accepted
            );
            assert!(w.store.deliveries(&id).await.unwrap().is_empty());
            w.engine.run_round().await.unwrap();
        }
        // PROCESSED, listed in the inbox, the inbox delivery SENT, the email pending: one
        // write, before any worker sends anything.
        assert_eq!(
            w.store.message(&id).await.unwrap().unwrap().status,
            MessageStatus::Processed
        );
        assert!(w.store.inbox_contains(&citizen(1), &id).await.unwrap());
        let inbox = w.inbox_delivery(id).await;
        assert_eq!((inbox.state, inbox.attempts), (DeliveryState::Sent, 1));
        assert_eq!(w.email_delivery(id).await.state, DeliveryState::Pending);
        assert!(w.email.calls().is_empty());
        let events: Vec<JournalEvent> = w
            .engine
            .verify_journal(&id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert!(matches!(events[0], JournalEvent::Accepted { .. }));
        assert_eq!(
            events[1],
            JournalEvent::Processed {
                channels: vec![ChannelKind::Inbox, ChannelKind::Email]
            }
        );
        assert!(matches!(
            events[2],
            JournalEvent::Attempted {
                channel: ChannelKind::Inbox,
                attempt: 1,
                state: DeliveryState::Sent,
                ..
            }
        ));
        assert_eq!(
            w.store.backlog().await.unwrap(),
            1,
            "only the email is work"
        );
    }
}

#[test]
fn an_inbox_channel_is_refused_because_the_inbox_is_built_in() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(SledStore::temporary().unwrap());
        let clock: Arc<dyn Clock> = Arc::new(io_core::SystemClock);
        let inbox = RecordingChannel::new(ChannelKind::Inbox, clock.clone(), vec![]);
        let refused = Engine::new(store, vec![inbox as Arc<dyn Channel>], clock, config());
        assert!(matches!(
            refused.err(),
            Some(io_core::EngineConfigError::InboxIsBuiltIn)
        ));
    });
}

/// A channel that signals its first call and then never answers: a worker that hangs or dies
/// mid-send.
struct HangingChannel {
    called: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl Channel for HangingChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }
    async fn send(&self, _job: io_core::DeliveryJob<'_>) -> Report {
        self.called.notify_one();
        futures::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_taken_over_by_another_worker() {
    let w = world(vec![], config()).await;
    let id = w.submit("Avviso di pagamento TARI").await;
    // Process only (the email delivery becomes due) with the healthy engine, but keep the
    // email delivery for the doomed worker: it runs first on the due delivery.
    let hanging = Arc::new(HangingChannel {
        called: tokio::sync::Notify::new(),
    });
    let doomed = Arc::new(
        Engine::new(
            w.store.clone(),
            vec![hanging.clone() as Arc<dyn Channel>],
            w.clock.clone(),
            config(),
        )
        .unwrap(),
    );
    let worker = {
        let doomed = doomed.clone();
        tokio::spawn(async move { doomed.run_until_idle().await })
    };
    hanging.called.notified().await;
    worker.abort(); // the worker dies holding the lease
    let _ = worker.await;

    // The healthy worker cannot take the delivery while the lease runs; the dead worker's
    // attempt was recorded as started before its channel was called.
    w.engine.run_until_idle().await.unwrap();
    assert!(w.email.calls().is_empty());
    let interrupted = w.email_delivery(id).await;
    assert_eq!(interrupted.state, DeliveryState::Pending);
    assert_eq!(
        (interrupted.attempts, interrupted.outcome_pending),
        (1, true)
    );

    tokio::time::advance(config().lease).await;
    w.engine.run_until_idle().await.unwrap();
    let calls = w.email.calls();
    assert_eq!(calls.len(), 1, "taken over once");
    let delivery = w.email_delivery(id).await;
    assert_eq!(delivery.state, DeliveryState::Sent);
    assert_eq!(
        (delivery.attempts, delivery.outcome_pending),
        (2, false),
        "the interrupted attempt counts as a provider contact"
    );
    let events: Vec<JournalEvent> = w
        .engine
        .verify_journal(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    let tail = &events[events.len() - 2..];
    assert_eq!(
        tail[0],
        JournalEvent::OutcomeUnknown {
            channel: ChannelKind::Email,
            attempt: 1
        }
    );
    assert!(matches!(
        tail[1],
        JournalEvent::Attempted {
            attempt: 2,
            state: DeliveryState::Sent,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_late_result_from_a_superseded_worker_is_refused() {
    // Worker A claims, its lease ends, worker B claims: A's commit must not land.
    let w = world(
        vec![],
        EngineConfig {
            decide_at_accept: false,
            ..config()
        },
    )
    .await;
    let id = w.submit("Avviso di pagamento TARI").await;
    let now = w.clock.now();
    let services = w.store.due_services(now, None, 10).await.unwrap();
    let a = w
        .store
        .claim_tasks(&services, now, 10, now.plus(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    w.engine.run_until_idle().await.unwrap(); // B processes and delivers
    let message = w.store.message(&id).await.unwrap().unwrap().message;
    let stale = io_core::ProcessRecord {
        task: a[0].clone(),
        message,
        status: MessageStatus::Rejected(RejectionReason::ServiceNotAllowed),
        deliveries: vec![],
        into_inbox: false,
        events: vec![],
        at: w.clock.now(),
    };
    assert!(matches!(
        w.store.commit_process(stale).await,
        Err(io_core::StoreError::LeaseLost { .. })
    ));
    let message = w.store.message(&id).await.unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Processed);
}

#[tokio::test(start_paused = true)]
async fn idempotency_key_returns_the_same_message_for_the_same_body() {
    let w = world(vec![], config()).await;
    let key = IdempotencyKey::parse("3f1c2a9e-0b7d-4c5e-9a51-6d2f8e4b7c10").unwrap();
    let mut first = submission("svc", &citizen(1), "Avviso di pagamento TARI");
    first.idempotency_key = Some(key.clone());
    let a = w.engine.submit(first.clone()).await.unwrap();
    let b = w.engine.submit(first).await.unwrap();
    assert_eq!(a.id, b.id);
    assert!(!a.duplicate);
    assert!(b.duplicate);
    w.engine.run_until_idle().await.unwrap();
    assert_eq!(w.email.calls().len(), 1, "one message, one email");
}

#[tokio::test(start_paused = true)]
async fn idempotency_key_with_a_different_body_is_a_conflict() {
    let w = world(vec![], config()).await;
    let key = IdempotencyKey::parse("order-2026-0001").unwrap();
    let mut first = submission("svc", &citizen(1), "Avviso di pagamento TARI");
    first.idempotency_key = Some(key.clone());
    let a = w.engine.submit(first).await.unwrap();
    let mut second = submission("svc", &citizen(1), "Avviso di pagamento IMU");
    second.idempotency_key = Some(key.clone());
    assert_eq!(
        w.engine.submit(second).await,
        Err(SubmitError::IdempotencyConflict { message_id: a.id })
    );
    // After the key's time-to-live it may be reused.
    tokio::time::advance(config().idempotency_ttl).await;
    let mut third = submission("svc", &citizen(1), "Avviso di pagamento IMU");
    third.idempotency_key = Some(key);
    let c = w.engine.submit(third).await.unwrap();
    assert_ne!(c.id, a.id);
}

#[tokio::test(start_paused = true)]
async fn per_service_rate_limit_defers_without_spending_attempts() {
    let mut config = config();
    config.rate_limits.per_service = Some(RateLimit {
        count: NonZeroU32::new(2).unwrap(),
        per: Duration::from_secs(60),
    });
    let w = world(vec![], config).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(w.submit(&format!("Avviso numero {n:04}")).await);
    }
    w.engine.run_until_idle().await.unwrap();
    // 3 emails, 2 per minute for the service (the inbox is the store: never rate-limited).
    let sent = |w: &World| w.email.calls().len();
    assert_eq!(sent(&w), 2);
    for id in &ids {
        assert_eq!(w.inbox_delivery(*id).await.state, DeliveryState::Sent);
        let delivery = w.email_delivery(*id).await;
        if delivery.state == DeliveryState::Pending {
            assert_eq!(delivery.attempts, 0, "a deferral is not an attempt");
        }
    }
    let mut guard = 0;
    while sent(&w) < 3 {
        let next = w.store.next_due_at().await.unwrap().unwrap();
        w.run_at(next).await;
        guard += 1;
        assert!(guard < 50);
    }
    let mut times: Vec<_> = w.email.calls().into_iter().map(|c| c.at).collect();
    times.sort();
    // GCRA, 2 per 60 s: one token every 30 s, bursts of 2. Between send i and send j > i at
    // least (j - i - 1) * 30 s pass.
    for i in 0..times.len() {
        for j in i + 1..times.len() {
            let floor = Duration::from_secs(30 * (j - i - 1) as u64);
            assert!(times[j].since(times[i]) >= floor, "{times:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn per_citizen_cap_limits_notifications_but_not_the_inbox() {
    let mut config = config();
    config.rate_limits.per_citizen = Some(RateLimit {
        count: NonZeroU32::new(1).unwrap(),
        per: Duration::from_secs(600),
    });
    let w = world(vec![], config).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(w.submit(&format!("Avviso numero {n:04}")).await);
    }
    w.engine.run_until_idle().await.unwrap();
    for id in ids {
        assert_eq!(
            w.inbox_delivery(id).await.state,
            DeliveryState::Sent,
            "the inbox is never capped per citizen"
        );
    }
    assert_eq!(w.email.calls().len(), 1);
    let mut guard = 0;
    while w.email.calls().len() < 3 {
        let next = w.store.next_due_at().await.unwrap().unwrap();
        w.run_at(next).await;
        guard += 1;
        assert!(guard < 50);
    }
    let emails = w.email.calls();
    assert!(
        emails
            .windows(2)
            .all(|c| c[1].at.since(c[0].at) >= Duration::from_secs(600))
    );
}

#[tokio::test(start_paused = true)]
async fn a_burst_from_one_service_delays_another_by_at_most_one_round() {
    const BURST: u32 = 100_000;
    let config = EngineConfig {
        quantum: 64,
        ..config()
    };
    // Fairness is about scheduling, not durability: buffered writes keep the burst fast.
    let store = Arc::new(
        SledStore::open_with(
            sled::Config::new().temporary(true),
            Durability::Buffered,
            Duration::ZERO,
        )
        .unwrap(),
    );
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(T0));
    let email = RecordingChannel::new(ChannelKind::Email, clock.clone(), vec![]);
    let citizens: Vec<_> = (0..10).map(citizen).collect();
    seed(&*store, &["burst", "urgent"], &citizens).await;
    let engine = Arc::new(
        Engine::new(
            store.clone(),
            vec![email.clone() as Arc<dyn Channel>],
            clock.clone(),
            config.clone(),
        )
        .unwrap(),
    );
    let mut submits = tokio::task::JoinSet::new();
    for worker in 0..8u32 {
        let engine = engine.clone();
        let citizens = citizens.clone();
        submits.spawn(async move {
            for n in (worker..BURST).step_by(8) {
                let who = &citizens[(n % 10) as usize];
                engine
                    .submit(submission("burst", who, "Avviso di massa 2026"))
                    .await
                    .unwrap();
            }
        });
    }
    submits.join_all().await;
    let urgent = engine
        .submit(submission("urgent", &citizens[0], "Avviso urgente 2026"))
        .await
        .unwrap()
        .id;
    assert_eq!(store.backlog().await.unwrap(), u64::from(BURST) + 1);

    let urgent_delivery = DeliveryId::new(urgent, ChannelKind::Email);
    let mut rounds = 0;
    while !email.calls().iter().any(|c| c.delivery == urgent_delivery) {
        engine.run_round().await.unwrap();
        rounds += 1;
        assert!(rounds <= 1, "the urgent message waited more than one round");
    }
    // Decided at accept, it was sent in the first round; the burst got one quantum in it.
    let calls = email.calls();
    let burst_before = calls
        .iter()
        .take_while(|c| c.delivery != urgent_delivery)
        .count();
    assert!(
        burst_before <= config.quantum,
        "{burst_before} burst deliveries went first"
    );
}

#[tokio::test(start_paused = true)]
async fn the_worker_loop_delivers_retries_on_its_own_and_stops_on_shutdown() {
    let w = world(vec![transient()], config()).await;
    let engine = Arc::new(w.engine);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run(shutdown).await })
    };
    let id = engine
        .submit(submission("svc", &citizen(1), "Avviso di pagamento TARI"))
        .await
        .unwrap()
        .id;
    // No manual rounds: the loop is woken by the submit, then sleeps until the retry is due
    // (paused time jumps to it) and sends again.
    let email = DeliveryId::new(id, ChannelKind::Email);
    let mut waited = 0;
    loop {
        let delivery = w.store.delivery(&email).await.unwrap();
        if delivery
            .as_ref()
            .is_some_and(|d| d.state == DeliveryState::Sent)
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += 1;
        assert!(waited < 3600, "the worker loop never finished the delivery");
    }
    assert_eq!(w.email.calls().len(), 2, "one failure, one retry");
    assert_eq!(
        w.store
            .delivery(&DeliveryId::new(id, ChannelKind::Inbox))
            .await
            .unwrap()
            .unwrap()
            .state,
        DeliveryState::Sent
    );
    stop.send(true).unwrap();
    // No timeout guard here: under paused time the runtime jumps to the next timer whenever it
    // waits for the store's committer thread, so any guard would fire spuriously.
    worker.await.unwrap();
}

/// An email channel whose first send blocks until the test opens the gate.
struct GatedChannel {
    entered: tokio::sync::Notify,
    gate: tokio::sync::Notify,
    first: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Channel for GatedChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }
    async fn send(&self, _job: io_core::DeliveryJob<'_>) -> Report {
        if self.first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.entered.notify_one();
            self.gate.notified().await;
        }
        Outcome::Delivered { provider_ref: None }.into()
    }
}

// Real time on purpose: the store's committer thread makes paused time jump to the next timer
// whenever the runtime waits for it, which would end the slow send early. Nothing here waits
// on the clock; the timeouts only keep a failure from hanging the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_send_does_not_hold_up_work_that_becomes_due_meanwhile() {
    let store = Arc::new(SledStore::temporary().unwrap());
    let clock: Arc<dyn Clock> = Arc::new(io_core::SystemClock);
    seed(&*store, &["svc"], &[citizen(1), citizen(2)]).await;
    let gated = Arc::new(GatedChannel {
        entered: tokio::sync::Notify::new(),
        gate: tokio::sync::Notify::new(),
        first: std::sync::atomic::AtomicBool::new(true),
    });
    let channels: Vec<Arc<dyn Channel>> = vec![gated.clone()];
    let engine = Arc::new(Engine::new(store.clone(), channels, clock, config()).unwrap());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run(shutdown).await })
    };
    let guard = Duration::from_secs(60);

    let first = engine
        .submit(submission("svc", &citizen(1), "Primo avviso di prova"))
        .await
        .unwrap()
        .id;
    tokio::time::timeout(guard, gated.entered.notified())
        .await
        .expect("the first email send starts");
    // The first message's email is stuck in its round; a second message arrives.
    let second = engine
        .submit(submission("svc", &citizen(2), "Secondo avviso di prova"))
        .await
        .unwrap()
        .id;
    let second_email = DeliveryId::new(second, ChannelKind::Email);
    tokio::time::timeout(guard, async {
        while store.delivery(&second_email).await.unwrap().unwrap().state != DeliveryState::Sent {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the second message is delivered while the first email is still in flight");
    let first_email = DeliveryId::new(first, ChannelKind::Email);
    assert_eq!(
        store.delivery(&first_email).await.unwrap().unwrap().state,
        DeliveryState::Pending
    );

    gated.gate.notify_one();
    stop.send(true).unwrap();
    tokio::time::timeout(guard, worker)
        .await
        .expect("shutdown finishes the round in flight")
        .unwrap();
    assert_eq!(
        store.delivery(&first_email).await.unwrap().unwrap().state,
        DeliveryState::Sent
    );
}

/// An email channel that erases a citizen during its first send, while the round that called
/// it holds that citizen's delivery tasks.
struct ErasingEmail {
    store: Arc<SledStore>,
    citizen: io_core::FiscalCode,
    report: std::sync::Mutex<Option<io_core::ErasureReport>>,
    sent: std::sync::Mutex<Vec<DeliveryId>>,
}

#[async_trait::async_trait]
impl Channel for ErasingEmail {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }
    async fn send(&self, job: io_core::DeliveryJob<'_>) -> Report {
        self.sent.lock().unwrap().push(job.delivery.id);
        if self.report.lock().unwrap().is_none() {
            let erasure = io_core::Erasure {
                fiscal_code: self.citizen.clone(),
                at: job.now,
                closes: None,
            };
            let report = self.store.erase_citizen(&erasure).await.unwrap();
            *self.report.lock().unwrap() = Some(report);
        }
        Outcome::Delivered { provider_ref: None }.into()
    }
}

// Real time on purpose: under paused time, waiting for the committer inside a send would let
// the runtime jump to the send timeout. Nothing here waits on the clock.
#[tokio::test]
async fn a_citizen_erased_during_a_round_gets_nothing_written_back() {
    let store = Arc::new(SledStore::temporary().unwrap());
    let clock: Arc<dyn Clock> = Arc::new(io_core::SystemClock);
    seed(&*store, &["svc"], &[citizen(1), citizen(2), citizen(3)]).await;
    let email = Arc::new(ErasingEmail {
        store: store.clone(),
        citizen: citizen(2),
        report: std::sync::Mutex::new(None),
        sent: std::sync::Mutex::new(Vec::new()),
    });
    let channels: Vec<Arc<dyn Channel>> = vec![email.clone()];
    // One send at a time, in claim order: the first email (citizen 1's) erases citizen 2.
    let config = EngineConfig {
        max_in_flight: 1,
        ..config()
    };
    let engine = Engine::new(store.clone(), channels, clock, config).unwrap();
    let mut ids = Vec::new();
    for n in [1, 2] {
        let accepted = engine
            .submit(submission("svc", &citizen(n), "Avviso di pagamento TARI"))
            .await
            .unwrap();
        ids.push(accepted.id);
    }
    let (kept, erased) = (ids[0], ids[1]);
    assert_eq!(store.backlog().await.unwrap(), 2, "two emails to send");

    // The round started both attempts before the erasure: citizen 2's attempt was in flight
    // when it happened, so it may reach the provider, but its outcome is refused (the lease
    // went with the erasure) and nothing of the citizen is written back.
    let round = engine.run_round().await.unwrap();
    assert_eq!(
        round,
        io_core::RoundReport {
            services: 1,
            tasks: 2,
            failed: 1
        }
    );
    let report = email.report.lock().unwrap().expect("the erasure ran");
    assert_eq!(
        (report.messages, report.deliveries, report.tasks),
        (1, 2, 1)
    );
    assert_eq!(store.message(&erased).await.unwrap(), None);
    assert!(store.deliveries(&erased).await.unwrap().is_empty());
    // Nothing comes back for the erased citizen.
    assert_eq!(engine.run_until_idle().await.unwrap(), 0);
    assert_eq!(store.backlog().await.unwrap(), 0);
    assert_eq!(store.next_due_at().await.unwrap(), None);
    for delivery in store.deliveries(&kept).await.unwrap() {
        assert_eq!(delivery.state, DeliveryState::Sent, "{}", delivery.id);
    }
    // A message accepted after the erasure (of another citizen) starts no attempt for it.
    let third = engine
        .submit(submission("svc", &citizen(3), "Avviso di pagamento TARI"))
        .await
        .unwrap()
        .id;
    engine.run_until_idle().await.unwrap();
    assert_eq!(
        email.sent.lock().unwrap().last(),
        Some(&DeliveryId::new(third, ChannelKind::Email))
    );
    let journal = engine.verify_journal(&erased).await.unwrap();
    assert_eq!(
        journal.len(),
        3,
        "accepted, processed and the inbox delivery; the refused outcome left no entry"
    );
}

/// Counts the accepts an observer is told about.
#[derive(Default)]
struct AcceptCounter(std::sync::atomic::AtomicU64);

impl io_core::Observer for AcceptCounter {
    fn committed(&self, change: io_core::Committed<'_>) {
        if matches!(change.event, JournalEvent::Accepted { .. }) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn an_accept_whose_caller_stops_waiting_is_still_observed() {
    use futures::FutureExt;
    let store = Arc::new(SledStore::temporary().unwrap());
    seed(&*store, &["svc"], &[citizen(1)]).await;
    let counter = Arc::new(AcceptCounter::default());
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(T0));
    let engine = Engine::new(store.clone(), Vec::new(), clock, config())
        .unwrap()
        .with_observer(counter.clone());
    // One poll takes the submit to its commit; then the caller goes away (an HTTP client
    // hanging up while its request waits for the durable write).
    let dropped = engine
        .submit(submission("svc", &citizen(1), "Avviso di pagamento TARI"))
        .now_or_never();
    assert!(
        dropped.is_none(),
        "the durable write takes more than one poll"
    );
    // Bounded wait for the committer thread (not a timing assertion).
    let mut committed = Vec::new();
    for _ in 0..2_000 {
        committed = store.messages_to(&citizen(1), None, 10).await.unwrap();
        if !committed.is_empty() && counter.0.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(committed.len(), 1, "the write was handed to the store");
    assert_eq!(
        counter.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a committed accept is observed whether or not its caller waited"
    );
}
