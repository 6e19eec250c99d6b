//! The engine: accepts messages durably, decides their channels, and drives each delivery to a
//! final state with leases, fair scheduling, rate limits and persisted retries.
//!
//! - [`Engine::submit`] (in `engine/submit.rs`): validate, honour the idempotency key, one atomic
//!   durable write.
//! - [`Engine::run_round`] (in `engine/round.rs`): one fair scheduling round over the services
//!   with due work; each task is a *process* (`engine/process.rs`), a *deliver*
//!   (`engine/deliver.rs`) or a *callback* (`engine/callback.rs`). The decision itself
//!   (`engine/decide.rs`) runs at accept when it can, else in a process task.
//! - [`Engine::run`]: a worker loop of rounds; start one per worker.

mod callback;
mod decide;
mod deliver;
mod id_generator;
mod observer;
mod process;
mod receipt;
mod round;
mod submit;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

pub use observer::{Committed, Observer};
pub use round::RoundReport;
pub use submit::{Accepted, Submission, SubmitError};

use crate::pec::ReceiptWindows;
use crate::rate_limit::Limiters;
use crate::{
    CallbackPolicy, CallbackSender, Channel, ChannelKind, Clock, DEFAULT_ACTIVATION_GRACE,
    InvalidRateLimit, JournalError, MessageId, RateLimits, RetryPolicy, ServiceId, Store,
    StoreError,
};
use id_generator::IdGenerator;

/// How the engine behaves. `Default` suits one node with the embedded store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// The retry schedule of transient failures.
    pub retry: RetryPolicy,
    /// How long a worker owns a claimed task; a dead worker's tasks return after it.
    pub lease: Duration,
    /// The longest a channel may take for one attempt (must be below `lease`).
    pub send_timeout: Duration,
    /// Tasks taken per service per round: the fairness quantum. The default (256) with 4
    /// rounds in flight keeps about 1,024 sends going, so the store commits their outcomes in
    /// large groups (BENCHMARKS.md: +29 % dispatch over a quantum of 64).
    pub quantum: usize,
    /// Services visited per round.
    pub services_per_round: usize,
    /// Tasks run concurrently within a round (and callbacks sent at once); at least `quantum`
    /// times `rounds_in_flight` keeps a full round's sends going together.
    pub max_in_flight: usize,
    /// Rounds a worker loop ([`Engine::run`]) keeps going at once, so slow sends in one round
    /// do not hold up the next.
    pub rounds_in_flight: usize,
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: Duration,
    /// How long a PENDING activation of a SPECIAL service lets messages in.
    pub activation_grace: Duration,
    /// The longest an idle worker sleeps before looking for due work again.
    pub idle_poll: Duration,
    /// Delivery rate limits.
    pub rate_limits: RateLimits,
    /// Seed of the jitter generator; `None` seeds from the operating system. Message ids never
    /// use it: their generator is always seeded by the operating system, so they stay unguessable.
    pub rng_seed: Option<u64>,
    /// Decide a message's channels at accept, in the same atomic write, instead of in a later
    /// process task: one durable write per message instead of two, and the inbox delivery is
    /// done when `submit` returns. The decision reads the recipient's profile, preference,
    /// activation and devices, which the store holds.
    pub decide_at_accept: bool,
    /// Sender callbacks: retries and their limit.
    pub callbacks: CallbackPolicy,
    /// How long a PEC delivery waits for its acceptance and delivery receipts.
    pub pec_receipts: ReceiptWindows,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            lease: Duration::from_secs(120),
            send_timeout: Duration::from_secs(30),
            quantum: 256,
            services_per_round: 256,
            max_in_flight: 1024,
            rounds_in_flight: 4,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            activation_grace: DEFAULT_ACTIVATION_GRACE,
            idle_poll: Duration::from_millis(500),
            rate_limits: RateLimits::default(),
            rng_seed: None,
            decide_at_accept: true,
            callbacks: CallbackPolicy::default(),
            pec_receipts: ReceiptWindows::default(),
        }
    }
}

/// A configuration or wiring mistake found when the engine is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineConfigError {
    /// Two channels claim the same kind.
    #[error("two channels are registered for {0}")]
    DuplicateChannel(ChannelKind),
    /// The send timeout must leave time to record the outcome before the lease runs out.
    #[error("send_timeout ({send_timeout:?}) must be shorter than lease ({lease:?})")]
    TimeoutNotBelowLease {
        /// The send timeout.
        send_timeout: Duration,
        /// The lease.
        lease: Duration,
    },
    /// A quantum, service count or concurrency of zero would stall the engine.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// A rate limit the limiter cannot represent.
    #[error(transparent)]
    RateLimit(#[from] InvalidRateLimit),
    /// The inbox is the store, built into the engine: no channel implements it.
    #[error("the inbox is built into the engine; register no channel of kind inbox")]
    InboxIsBuiltIn,
}

/// Why a journal could not be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such message.
    #[error("message {0} does not exist")]
    UnknownMessage(MessageId),
    /// The journal is not intact.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The delivery engine, generic over its store. Share it behind an `Arc`.
pub struct Engine<S: Store> {
    store: Arc<S>,
    channels: BTreeMap<ChannelKind, Arc<dyn Channel>>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    limiters: Limiters,
    rng: Mutex<StdRng>,
    ids: Mutex<IdGenerator>,
    new_work: tokio::sync::Notify,
    round_robin_cursor: Mutex<Option<ServiceId>>,
    observers: Vec<Arc<dyn Observer>>,
    callbacks: Option<Arc<dyn CallbackSender>>,
}

impl<S: Store> Engine<S> {
    /// Builds an engine over `store` with `channels` (at most one per kind; the inbox is built
    /// in). A message is routed only to channels that are registered: an engine without an
    /// email channel sends no email.
    pub fn new(
        store: Arc<S>,
        channels: Vec<Arc<dyn Channel>>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Result<Self, EngineConfigError> {
        let mut by_kind = BTreeMap::new();
        for channel in channels {
            let kind = channel.kind();
            if kind == ChannelKind::Inbox {
                return Err(EngineConfigError::InboxIsBuiltIn);
            }
            if by_kind.insert(kind, channel).is_some() {
                return Err(EngineConfigError::DuplicateChannel(kind));
            }
        }
        if config.send_timeout >= config.lease {
            return Err(EngineConfigError::TimeoutNotBelowLease {
                send_timeout: config.send_timeout,
                lease: config.lease,
            });
        }
        for (name, value) in [
            ("quantum", config.quantum),
            ("services_per_round", config.services_per_round),
            ("max_in_flight", config.max_in_flight),
            ("rounds_in_flight", config.rounds_in_flight),
        ] {
            if value == 0 {
                return Err(EngineConfigError::Zero(name));
            }
        }
        let limiters = Limiters::new(&config.rate_limits, clock.clone())?;
        let rng = match config.rng_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Ok(Self {
            store,
            channels: by_kind,
            clock,
            limiters,
            rng: Mutex::new(rng),
            ids: Mutex::new(IdGenerator::from_os_rng()),
            new_work: tokio::sync::Notify::new(),
            round_robin_cursor: Mutex::new(None),
            observers: Vec::new(),
            callbacks: None,
            config,
        })
    }

    /// Sends sender callbacks through `sender`: services with a registered
    /// [`CallbackTarget`](crate::CallbackTarget) get every journal entry of their messages.
    /// Without a sender, no outbox is opened.
    pub fn with_callbacks(mut self, sender: Arc<dyn CallbackSender>) -> Self {
        self.callbacks = Some(sender);
        self
    }

    /// Adds an observer of every committed state change (metrics, sender callbacks); each
    /// observer added is told, in the order they were added.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Tells the observers about committed events of a message.
    fn observe(
        &self,
        message: MessageId,
        service_id: &ServiceId,
        at: crate::Timestamp,
        events: &[crate::JournalEvent],
    ) {
        notify_observers(&self.observers, message, service_id, at, events);
    }

    /// The store, for reads (message status, inbox, journal) and reference data.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The engine's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Verifies a message's journal as stored: chain, hashes, canonical bytes, head.
    pub async fn verify_journal(
        &self,
        id: &MessageId,
    ) -> Result<Vec<crate::JournalEntry>, VerifyError> {
        let stored = self.store.journal(id).await?;
        if stored.entries.is_empty() && stored.head.is_none() {
            return Err(VerifyError::UnknownMessage(*id));
        }
        Ok(crate::journal::verify_stored(
            &stored.entries,
            stored.head.as_ref(),
        )?)
    }

    /// Runs rounds until `shutdown` turns true: the worker loop. Up to `rounds_in_flight`
    /// rounds overlap, so a round held up by a slow provider (up to `send_timeout`) does not
    /// hold up the work that becomes due meanwhile: the next round claims it. Sleeps when idle
    /// until the next task is due, a submit arrives (in this process, or in another one
    /// sharing the store: [`Store::work_queued`]), or `idle_poll` passes. On shutdown it stops
    /// claiming and lets the rounds in flight finish. Start several loops for more concurrency;
    /// with a shared database, in several processes.
    ///
    /// Each round is a task of its own on the runtime, so a multi-threaded runtime reads,
    /// decodes and sends on all its threads while one round waits for the store.
    pub async fn run(self: &Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>)
    where
        S: 'static,
    {
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let mut started: u64 = 0;
        let mut idle = false;
        let mut sender_gone = false;
        loop {
            // A dropped sender can never say "go on": treat it as a shutdown.
            let stopping = sender_gone || *shutdown.borrow();
            if stopping && in_flight.is_empty() {
                return;
            }
            if !stopping && !idle && in_flight.len() < self.config.rounds_in_flight {
                started += 1;
                if started.is_multiple_of(1024) {
                    self.limiters.shrink();
                }
                let engine = Arc::clone(self);
                in_flight.push(tokio::spawn(async move { engine.run_round().await }));
                continue;
            }
            let wait = if idle && !stopping {
                self.idle_wait().await
            } else {
                self.config.idle_poll
            };
            tokio::select! {
                Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                    idle = match result {
                        Ok(Ok(report)) => report.tasks == 0,
                        Ok(Err(error)) => {
                            tracing::warn!(%error, "scheduling round failed; retrying after idle_poll");
                            true
                        }
                        // Its tasks return when their leases end.
                        Err(error) => {
                            tracing::error!(%error, "a scheduling round panicked; retrying after idle_poll");
                            true
                        }
                    };
                }
                () = tokio::time::sleep(wait), if idle && !stopping => idle = false,
                () = self.new_work.notified(), if idle && !stopping => idle = false,
                () = self.store.work_queued(), if idle && !stopping => idle = false,
                changed = shutdown.changed(), if !stopping => sender_gone = changed.is_err(),
            }
        }
    }

    /// How long an idle worker may sleep: until the next task is due, at most `idle_poll`.
    async fn idle_wait(&self) -> Duration {
        match self.store.next_due_at().await {
            Ok(Some(due)) => due.since(self.clock.now()).min(self.config.idle_poll),
            Ok(None) | Err(_) => self.config.idle_poll,
        }
    }

    /// Runs rounds until no task is due now; returns the tasks run. For tests, examples and
    /// batch tools: a long-running process uses [`Engine::run`].
    pub async fn run_until_idle(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let report = self.run_round().await?;
            if report.tasks == 0 {
                return Ok(total);
            }
            total += report.tasks as u64;
        }
    }

    /// Drops a claimed task whose record is gone. Its record goes only with an erased
    /// citizen, whose erasure takes the task and its lease too: `LeaseLost` then means the task
    /// is already gone (or another worker holds it), not a failure.
    async fn drop_task(&self, task: &crate::Task) -> Result<(), StoreError> {
        match self.store.discard_task(task).await {
            Err(StoreError::LeaseLost { .. }) => Ok(()),
            other => other,
        }
    }

    fn jitter(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        self.config.retry.delay(attempt, retry_after, &mut *rng)
    }
}

/// Tells `observers` about committed events of a message (also from a task of its own, see
/// `submit`).
fn notify_observers(
    observers: &[Arc<dyn Observer>],
    message: MessageId,
    service_id: &ServiceId,
    at: crate::Timestamp,
    events: &[crate::JournalEvent],
) {
    for observer in observers {
        for event in events {
            observer.committed(Committed {
                message,
                service_id,
                at,
                event,
            });
        }
    }
}
