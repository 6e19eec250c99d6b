//! Write combining with group commit: one committer thread applies every write of the store.
//!
//! Each write method of the store is a *job*: a closure that reads through a [`Tx`] and
//! records writes and queue changes in it. The committer takes every job waiting at the time
//! (a *group*), runs them one after the other — each sees the writes of those before it — and
//! applies the group's writes with **one** atomic `apply_batch` on the store's one tree, then
//! calls `flush()` **once** and only then answers the writers that asked for durability.
//! sled's cost is per key written, per batch and per flush, so a hundred concurrent submits
//! cost one batch and one flush instead of a hundred transactions.
//!
//! A job that fails (a lost lease, a stale version) leaves no write and no queue change behind,
//! and never fails another job of its group. Being the only writer, the committer needs no
//! transaction: the state a job reads cannot change under it. Message states are kept decoded
//! for the length of a group, so the outcomes of a message's deliveries committed together
//! decode and encode its state once.
//!
//! *Exclusive* work (an erasure, which scans before it writes) runs as a group of its own, so
//! its scans read the tree with nothing pending.
//!
//! The committer also keeps the *watermark* (see `sled_store.rs`): every open message older
//! than it has an `OPEN` entry, so opening the store scans only recent message states.
//!
//! A dedicated thread, because sled 0.34's `flush_async` deadlocks under concurrent callers
//! (spacejam/sled#1308) and a blocking `flush()` must not run on a runtime worker thread.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use io_core::{
    AcceptOutcome, DeliveryId, ErasureReport, FlagsError, MessageFlags, MessageId, ServiceId,
    StoreError, TaskKind, Timestamp,
};
use sled::IVec;
use tokio::sync::oneshot;

use super::backend;
use super::fast_hash::FastMap;
use super::keys::{self, kind};
use super::message_state::MessageState;
use super::scheduler::{OpenChange, Scheduler};

/// The most message states the committer keeps decoded (about 1 KiB each).
const CACHED_STATES: usize = 16_384;

/// The most jobs combined into one group.
const MAX_GROUP: usize = 1024;

/// How far behind the newest accepted message the watermark trails.
const WATERMARK_LAG: Duration = Duration::from_secs(600);

/// What a job reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// Nothing to report.
    Done,
    /// An accept's outcome.
    Accept(AcceptOutcome),
    /// What an erasure removed.
    Erased(ErasureReport),
    /// Flags after a change, or the refusal.
    Flags(Result<MessageFlags, FlagsError>),
    /// Whether a conditional write happened.
    Swapped(bool),
    /// A count.
    Count(u64),
    /// One result per item of a job that does several independent things (a round's attempt
    /// starts).
    Each(Vec<Result<(), StoreError>>),
    /// What recording a PEC receipt came to.
    Receipt(io_core::ReceiptOutcome),
    /// An activation as stored (with its version).
    Activation(io_core::Activation),
}

/// A write of the store, run once on the committer thread.
pub(crate) type Job = Box<dyn FnOnce(&mut Tx<'_>) -> Result<Output, StoreError> + Send>;

/// A change of the queue or of the attempts in flight, applied when its job succeeds.
enum QueueChange {
    Put(TaskKind, ServiceId, Timestamp),
    Remove(TaskKind),
    Started(DeliveryId, u32, u64),
    Finished(DeliveryId),
}

/// Journal entries a job (or a group) appends to one message, from `first_seq` on.
struct Appended {
    first_seq: u64,
    entries: Vec<Vec<u8>>,
}

/// The attempts started and not yet recorded, per delivery, with the round that listed them:
/// what `start_attempts` made durable as one `ATTEMPTS` record per call. Reads of a delivery
/// show such an attempt as counted and its outcome pending.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    attempts: FastMap<DeliveryId, (u32, u64)>,
    /// Per round, how many of its attempts are still in flight.
    rounds: FastMap<u64, usize>,
}

impl InFlight {
    /// The attempt of `delivery` in flight, if any.
    pub(crate) fn attempt(&self, delivery: &DeliveryId) -> Option<u32> {
        self.attempts.get(delivery).map(|(attempt, _)| *attempt)
    }

    /// Records an attempt started in `round`; returns a round that no attempt is left in.
    fn start(&mut self, delivery: DeliveryId, attempt: u32, round: u64) -> Option<u64> {
        *self.rounds.entry(round).or_insert(0) += 1;
        let previous = self.attempts.insert(delivery, (attempt, round));
        previous.and_then(|(_, round)| self.leave(round))
    }

    /// Forgets the attempt of `delivery` in flight; returns a round that no attempt is left in.
    fn finish(&mut self, delivery: &DeliveryId) -> Option<u64> {
        let (_, round) = self.attempts.remove(delivery)?;
        self.leave(round)
    }

    fn leave(&mut self, round: u64) -> Option<u64> {
        let left = self.rounds.get_mut(&round)?;
        *left -= 1;
        if *left == 0 {
            self.rounds.remove(&round);
            Some(round)
        } else {
            None
        }
    }
}

type Overlay = FastMap<Vec<u8>, Option<IVec>>;

/// A job's view of the store: the tree, the writes of the group's earlier jobs, its own writes,
/// and the queue as it stands.
pub(crate) struct Tx<'a> {
    tree: &'a sled::Tree,
    group: &'a Overlay,
    group_states: &'a FastMap<MessageId, Option<MessageState>>,
    cached: &'a FastMap<MessageId, MessageState>,
    scheduler: &'a Scheduler,
    in_flight: &'a InFlight,
    writes: Overlay,
    states: FastMap<MessageId, Option<MessageState>>,
    journals: FastMap<MessageId, Appended>,
    queue: Vec<QueueChange>,
    accepted: Option<Timestamp>,
}

impl Tx<'_> {
    /// The current value of `key` (not a message state: see [`Tx::state`]).
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        if let Some(value) = self.writes.get(key) {
            return Ok(value.clone());
        }
        if let Some(value) = self.group.get(key) {
            return Ok(value.clone());
        }
        self.tree.get(key).map_err(backend)
    }

    /// Writes `value` at `key`.
    pub(crate) fn insert(&mut self, key: Vec<u8>, value: impl Into<IVec>) {
        self.writes.insert(key, Some(value.into()));
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// The tree itself, for scans: only exclusive work, which runs with nothing pending, may
    /// scan.
    pub(crate) fn tree(&self) -> &sled::Tree {
        self.tree
    }

    /// A message's state, as this group left it.
    pub(crate) fn state(&self, message: &MessageId) -> Result<Option<MessageState>, StoreError> {
        if let Some(state) = self.states.get(message) {
            return Ok(state.clone());
        }
        if let Some(state) = self.group_states.get(message) {
            return Ok(state.clone());
        }
        if let Some(state) = self.cached.get(message) {
            return Ok(Some(state.clone()));
        }
        match self
            .tree
            .get(keys::message(kind::STATE, message))
            .map_err(backend)?
        {
            Some(bytes) => MessageState::decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Writes a message's state (`None` removes it).
    pub(crate) fn put_state(&mut self, message: MessageId, state: Option<MessageState>) {
        self.states.insert(message, state);
    }

    /// Appends canonical journal entries to `message`'s journal, the first at `first_seq`.
    pub(crate) fn append_journal(
        &mut self,
        message: MessageId,
        first_seq: u64,
        entries: Vec<Vec<u8>>,
    ) {
        match self.journals.get_mut(&message) {
            Some(appended) => appended.entries.extend(entries),
            None => {
                self.journals
                    .insert(message, Appended { first_seq, entries });
            }
        }
    }

    /// Records that an attempt of `delivery` started in `round`, if the job succeeds.
    pub(crate) fn attempt_started(&mut self, delivery: DeliveryId, attempt: u32, round: u64) {
        self.queue
            .push(QueueChange::Started(delivery, attempt, round));
    }

    /// Records that `delivery`'s attempt in flight (if any) is over, if the job succeeds.
    pub(crate) fn attempt_finished(&mut self, delivery: DeliveryId) {
        self.queue.push(QueueChange::Finished(delivery));
    }

    /// The queue, as it stands before this job.
    pub(crate) fn scheduler(&self) -> &Scheduler {
        self.scheduler
    }

    /// The attempt of `delivery` in flight, as it stands before this job.
    pub(crate) fn attempt_in_flight(&self, delivery: &DeliveryId) -> Option<u32> {
        self.in_flight.attempt(delivery)
    }

    /// Queues `kind` (or moves it) at `due`, releasing its lease, if the job succeeds.
    pub(crate) fn queue(&mut self, kind: TaskKind, service: &ServiceId, due: Timestamp) {
        self.queue
            .push(QueueChange::Put(kind, service.clone(), due));
    }

    /// Removes `kind` from the queue, if the job succeeds.
    pub(crate) fn unqueue(&mut self, kind: TaskKind) {
        self.queue.push(QueueChange::Remove(kind));
    }

    /// Notes a newly accepted message's creation time (it moves the watermark on).
    pub(crate) fn accepted(&mut self, at: Timestamp) {
        self.accepted = Some(self.accepted.map_or(at, |seen| seen.max(at)));
    }
}

/// The store's parts the committer writes.
pub(crate) struct Shared {
    pub(crate) db: sled::Db,
    pub(crate) tree: sled::Tree,
    pub(crate) scheduler: Mutex<Scheduler>,
    pub(crate) in_flight: Mutex<InFlight>,
}

/// What a writer asks of the committer.
enum Work {
    /// Jobs to combine with other writers' (none for a plain sync).
    Jobs(Vec<Job>),
    /// A job to run in a group of its own.
    Exclusive(Job),
}

/// One writer's work, answered together.
struct Request {
    work: Work,
    durable: bool,
    reply: Reply,
}

/// Where a writer waits for its results: one per job.
type Reply = oneshot::Sender<Vec<Result<Output, StoreError>>>;

/// The handle writers use. Dropping it stops the thread after it has served every waiting
/// writer, and waits for that: the thread holds a handle on the database, and the directory's
/// lock must be free once the store is dropped (a reopen must not find it taken).
pub(crate) struct Committer {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Committer {
    /// Starts the committer thread. `linger` is how long it waits after the first job of a
    /// group for others to join; `flush` false skips flushing (buffered durability);
    /// `watermark` is the one the store opened with.
    pub(crate) fn start(
        shared: Arc<Shared>,
        linger: Duration,
        flush: bool,
        watermark: MessageId,
    ) -> std::io::Result<Self> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let thread = thread::Builder::new()
            .name("io-sled-committer".into())
            .spawn(move || {
                let mut state = CommitterState {
                    shared,
                    linger,
                    flush,
                    watermark,
                    cached: FastMap::default(),
                    newest: None,
                    failed: None,
                };
                state.run(&incoming);
            })?;
        Ok(Self {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Applies `job` (combined with whatever other jobs are waiting) and, if `durable`, returns
    /// only once it is on disk.
    pub(crate) async fn apply(&self, job: Job, durable: bool) -> Result<Output, StoreError> {
        self.apply_all(vec![job], durable)
            .await
            .pop()
            .unwrap_or_else(|| Err(no_output()))
    }

    /// Applies several jobs with one hand-over to the committer thread; one result per job, in
    /// order. Each job succeeds or fails on its own.
    pub(crate) async fn apply_all(
        &self,
        jobs: Vec<Job>,
        durable: bool,
    ) -> Vec<Result<Output, StoreError>> {
        let count = jobs.len();
        match self.send(Work::Jobs(jobs), durable).await {
            Ok(results) => results,
            Err(error) => vec![Err(error); count],
        }
    }

    /// Runs `job` in a group of its own (it may scan the tree) and, if `durable`, returns only
    /// once its writes are on disk.
    pub(crate) async fn apply_exclusive(
        &self,
        job: Job,
        durable: bool,
    ) -> Result<Output, StoreError> {
        self.send(Work::Exclusive(job), durable)
            .await?
            .pop()
            .unwrap_or_else(|| Err(no_output()))
    }

    /// Returns once every write made before this call is on disk.
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        // A sync has no job: its answer is empty, or the flush's failure.
        match self.send(Work::Jobs(Vec::new()), true).await?.pop() {
            Some(Err(error)) => Err(error),
            _ => Ok(()),
        }
    }

    async fn send(
        &self,
        work: Work,
        durable: bool,
    ) -> Result<Vec<Result<Output, StoreError>>, StoreError> {
        let stopped = || StoreError::Backend("the committer thread has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(Request {
                work,
                durable,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        drop(self.requests.take()); // the thread's `recv` fails once the queue is empty
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn no_output() -> StoreError {
    StoreError::Backend("the committer returned no output".into())
}

/// The committer thread's own state.
struct CommitterState {
    shared: Arc<Shared>,
    linger: Duration,
    flush: bool,
    /// Every open message older than this has an `OPEN` entry.
    watermark: MessageId,
    /// The states of open messages this thread wrote last, decoded: the committer is the
    /// only writer, so they are the states on disk, and a message's next write (an attempt's
    /// outcome, moments after its accept) needs not read and decode it again.
    cached: FastMap<MessageId, MessageState>,
    /// The newest accepted message's creation time seen since the last watermark move.
    newest: Option<Timestamp>,
    /// Set when a batch could not be applied: the queue in memory may no longer match the
    /// tree, so every later write is refused until the store is reopened.
    failed: Option<String>,
}

/// A writer's results, waiting to be sent (after the flush if it asked for durability).
struct Answer {
    reply: Reply,
    durable: bool,
    results: Vec<Result<Output, StoreError>>,
}

impl CommitterState {
    fn run(&mut self, incoming: &mpsc::Receiver<Request>) {
        // Exclusive work that arrived while a group was being gathered: it runs next, alone.
        let mut next: Option<Request> = None;
        while let Some(first) = next.take().or_else(|| incoming.recv().ok()) {
            let answers = match first.work {
                Work::Exclusive(job) => {
                    let results = self.apply_group(vec![job]);
                    vec![Answer {
                        reply: first.reply,
                        durable: first.durable,
                        results,
                    }]
                }
                Work::Jobs(jobs) => {
                    if !self.linger.is_zero() {
                        thread::sleep(self.linger);
                    }
                    let mut count = jobs.len();
                    let mut group = vec![(first.reply, first.durable, jobs)];
                    while count < MAX_GROUP {
                        let Ok(request) = incoming.try_recv() else {
                            break;
                        };
                        match request.work {
                            Work::Jobs(jobs) => {
                                count += jobs.len();
                                group.push((request.reply, request.durable, jobs));
                            }
                            work @ Work::Exclusive(_) => {
                                next = Some(Request { work, ..request });
                                break;
                            }
                        }
                    }
                    let sizes: Vec<usize> = group.iter().map(|(_, _, jobs)| jobs.len()).collect();
                    let mut replies = Vec::with_capacity(group.len());
                    let mut jobs = Vec::with_capacity(count);
                    for (reply, durable, batch) in group {
                        replies.push((reply, durable));
                        jobs.extend(batch);
                    }
                    let mut results = self.apply_group(jobs).into_iter();
                    replies
                        .into_iter()
                        .zip(sizes)
                        .map(|((reply, durable), size)| Answer {
                            reply,
                            durable,
                            results: results.by_ref().take(size).collect(),
                        })
                        .collect()
                }
            };
            self.answer(answers);
        }
    }

    /// Runs the jobs of a group and applies their writes in one batch; one result per job.
    fn apply_group(&mut self, jobs: Vec<Job>) -> Vec<Result<Output, StoreError>> {
        if jobs.is_empty() {
            return Vec::new();
        }
        if let Some(failure) = &self.failed {
            let error = StoreError::Backend(format!(
                "the store refuses writes after a failed write ({failure}); reopen it"
            ));
            return jobs.iter().map(|_| Err(error.clone())).collect();
        }
        let shared = self.shared.clone();
        let mut scheduler = shared
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut in_flight = shared
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut group: Overlay = FastMap::default();
        let mut group_states: FastMap<MessageId, Option<MessageState>> = FastMap::default();
        let mut group_journals: FastMap<MessageId, Appended> = FastMap::default();
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            let mut tx = Tx {
                tree: &shared.tree,
                group: &group,
                group_states: &group_states,
                cached: &self.cached,
                scheduler: &scheduler,
                in_flight: &in_flight,
                writes: FastMap::default(),
                states: FastMap::default(),
                journals: FastMap::default(),
                queue: Vec::new(),
                accepted: None,
            };
            let result = job(&mut tx);
            let Tx {
                writes,
                states,
                journals,
                queue,
                accepted,
                ..
            } = tx;
            if result.is_ok() {
                group.extend(writes);
                group_states.extend(states);
                for (message, appended) in journals {
                    match group_journals.get_mut(&message) {
                        Some(pending) => pending.entries.extend(appended.entries),
                        None => {
                            group_journals.insert(message, appended);
                        }
                    }
                }
                if let Some(at) = accepted {
                    self.newest = Some(self.newest.map_or(at, |seen| seen.max(at)));
                }
                for change in queue {
                    let (message, open) = match change {
                        QueueChange::Put(kind, service, due) => {
                            (kind.message(), scheduler.put(kind, &service, due))
                        }
                        QueueChange::Remove(kind) => (kind.message(), scheduler.remove(&kind)),
                        QueueChange::Started(delivery, attempt, round) => {
                            if let Some(done) = in_flight.start(delivery, attempt, round) {
                                group.insert(keys::raw(kind::ATTEMPTS, &done.to_be_bytes()), None);
                            }
                            continue;
                        }
                        QueueChange::Finished(delivery) => {
                            if let Some(done) = in_flight.finish(&delivery) {
                                group.insert(keys::raw(kind::ATTEMPTS, &done.to_be_bytes()), None);
                            }
                            continue;
                        }
                    };
                    self.track_open(&mut group, message, open);
                }
            }
            results.push(result);
        }
        drop(in_flight);
        self.move_watermark(&scheduler, &mut group);
        let mut batch = sled::Batch::default();
        for (key, value) in group {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        for (message, appended) in group_journals {
            batch.insert(
                keys::journal(&message, appended.first_seq),
                super::journal::encode(&appended.entries),
            );
        }
        for (message, state) in group_states {
            let key = keys::message(kind::STATE, &message);
            match state {
                Some(state) => {
                    batch.insert(key, state.encode());
                    if !scheduler.is_open(&message) {
                        self.cached.remove(&message);
                    } else if self.cached.len() < CACHED_STATES
                        || self.cached.contains_key(&message)
                    {
                        self.cached.insert(message, state);
                    }
                }
                None => {
                    self.cached.remove(&message);
                    batch.remove(key);
                }
            }
        }
        if let Err(error) = shared.tree.apply_batch(batch) {
            tracing::error!(%error, "sled could not apply a batch; the store refuses writes until reopened");
            self.failed = Some(error.to_string());
            let error = StoreError::Backend(format!("sled could not apply the batch: {error}"));
            return results.iter().map(|_| Err(error.clone())).collect();
        }
        results
    }

    /// Keeps the `OPEN` entries of messages older than the watermark in step with the queue.
    fn track_open(&self, group: &mut Overlay, message: MessageId, change: OpenChange) {
        if message >= self.watermark {
            return;
        }
        let key = keys::message(kind::OPEN, &message);
        match change {
            OpenChange::Opened => {
                group.insert(key, Some(IVec::default()));
            }
            OpenChange::Closed => {
                group.insert(key, None);
            }
            OpenChange::None => {}
        }
    }

    /// Moves the watermark up to [`WATERMARK_LAG`] behind the newest accepted message once it
    /// trails by twice that, listing the open messages it passes.
    fn move_watermark(&mut self, scheduler: &Scheduler, group: &mut Overlay) {
        let Some(newest) = self.newest else {
            return;
        };
        let target = newest.minus(WATERMARK_LAG);
        let current = Timestamp::from_millis(i64::try_from(self.watermark.millis()).unwrap_or(0));
        if target <= current.plus(WATERMARK_LAG) {
            return;
        }
        let Ok(millis) = u64::try_from(target.as_millis()) else {
            return;
        };
        let watermark = MessageId::from_parts(millis, 0);
        for message in scheduler.open_messages() {
            if *message >= self.watermark && *message < watermark {
                group.insert(keys::message(kind::OPEN, message), Some(IVec::default()));
            }
        }
        group.insert(
            vec![kind::WATERMARK],
            Some(IVec::from(&watermark.to_bytes()[..])),
        );
        self.watermark = watermark;
        self.newest = None;
    }

    /// Answers writers that need no durability at once, and the others after one flush.
    fn answer(&self, answers: Vec<Answer>) {
        let mut waiting = Vec::new();
        for answer in answers {
            if answer.durable && self.flush {
                waiting.push(answer);
            } else {
                let _ = answer.reply.send(answer.results);
            }
        }
        if waiting.is_empty() {
            return;
        }
        let flushed = self
            .shared
            .db
            .flush()
            .map(drop)
            .map_err(|e| StoreError::Backend(format!("flush failed: {e}")));
        if let Err(error) = &flushed {
            tracing::error!(%error, "sled flush failed; writers are told their write is not durable");
        }
        for Answer { reply, results, .. } in waiting {
            let answer = match &flushed {
                Ok(()) => results,
                // Without a job (a sync) the flush's failure is the answer.
                Err(error) if results.is_empty() => vec![Err(error.clone())],
                Err(error) => results
                    .into_iter()
                    .map(|r| r.and(Err(error.clone())))
                    .collect(),
            };
            // A writer that gave up waiting is not an error.
            let _ = reply.send(answer);
        }
    }
}
