//! Write combining with group commit: one committer thread applies the pipeline's writes.
//!
//! Every pipeline write (accept, process, delivery outcome) is a *job*: a closure over the
//! transactional trees. The committer takes every job waiting at the time, applies them all in
//! **one** sled transaction, calls `flush()` **once**, and only then answers the writers that
//! asked for durability. sled's cost is mostly per transaction and per flush, so a hundred
//! concurrent submits cost one of each instead of a hundred (BENCHMARKS.md has the figures).
//!
//! If one job aborts (a lost lease, say), the combined transaction is discarded and each job
//! of the group is applied in its own transaction, so one writer's refusal never fails another.
//!
//! A write that must scan before it writes (a sled transaction can only get, insert and remove)
//! is *exclusive* work instead: the committer runs it alone, between two groups, so no other
//! pipeline write lands between its scan and its transaction. The citizen erasure is one.
//!
//! A dedicated thread, because sled 0.34's `flush_async` deadlocks under concurrent callers
//! (spacejam/sled#1308) and a blocking `flush()` must not run on a runtime worker thread.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use io_core::{AcceptOutcome, ErasureReport, StoreError};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use tokio::sync::oneshot;

/// The most jobs combined into one transaction.
const MAX_GROUP: usize = 512;

/// The trees a job may write, inside the combined transaction.
pub(crate) struct Tx<'a> {
    pub(crate) messages: &'a TransactionalTree,
    pub(crate) idempotency: &'a TransactionalTree,
    pub(crate) queue: &'a TransactionalTree,
    pub(crate) leases: &'a TransactionalTree,
    pub(crate) inbox: &'a TransactionalTree,
    pub(crate) deliveries: &'a TransactionalTree,
    pub(crate) journal: &'a TransactionalTree,
    pub(crate) journal_heads: &'a TransactionalTree,
    pub(crate) recipients: &'a TransactionalTree,
}

/// The same trees, outside transactions.
#[derive(Clone)]
pub(crate) struct PipelineTrees {
    pub(crate) messages: sled::Tree,
    pub(crate) idempotency: sled::Tree,
    pub(crate) queue: sled::Tree,
    pub(crate) leases: sled::Tree,
    pub(crate) inbox: sled::Tree,
    pub(crate) deliveries: sled::Tree,
    pub(crate) journal: sled::Tree,
    pub(crate) journal_heads: sled::Tree,
    pub(crate) recipients: sled::Tree,
}

/// What a job reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// An accept's outcome.
    Accept(AcceptOutcome),
    /// How many tasks the job added to (positive) or removed from (negative) the queue.
    QueueDelta(i64),
    /// What an erasure removed.
    Erased(ErasureReport),
}

/// A job's result inside the transaction.
pub(crate) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// A pipeline write. It may run more than once (sled retries conflicting transactions, and a
/// group that aborts is replayed job by job), so it must only read and write through `Tx`.
pub(crate) type Job = Box<dyn Fn(&Tx<'_>) -> TxResult<Output> + Send>;

/// Work that scans the trees and then writes in a transaction of its own. It runs on the
/// committer thread between two groups, alone, so no job lands between its scan and its
/// transaction. Only claims (`queue`, `leases`) and idempotency purges (`idempotency`) write
/// pipeline trees from other threads: what they change, it must read inside its transaction.
pub(crate) type Exclusive = Box<dyn FnOnce(&PipelineTrees) -> Result<Output, StoreError> + Send>;

/// What a writer asks of the committer.
enum Work {
    /// Jobs to combine with other writers' (none for a plain sync).
    Jobs(Vec<Job>),
    /// Work to run alone.
    Exclusive(Exclusive),
}

/// One writer's work, answered together.
struct Request {
    work: Work,
    durable: bool,
    reply: Reply,
}

/// Where a writer waits for its results: one per job, one for exclusive work.
type Reply = oneshot::Sender<Vec<Result<Output, StoreError>>>;

/// A writer's results, waiting to be sent (after the flush if it asked for durability).
struct Answer {
    reply: Reply,
    durable: bool,
    results: Vec<Result<Output, StoreError>>,
}

/// The handle writers use. Dropping it stops the thread after it has served every waiting
/// writer, and waits for that: the thread holds a handle on the database, and the directory's
/// lock must be free once the store is dropped (a reopen must not find it taken).
pub(crate) struct Committer {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Committer {
    /// Starts the committer thread. `linger` is how long it waits after the first job of a
    /// group for others to join; `flush` false skips flushing (buffered durability).
    pub(crate) fn start(
        db: sled::Db,
        trees: PipelineTrees,
        linger: Duration,
        flush: bool,
    ) -> std::io::Result<Self> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let thread = thread::Builder::new()
            .name("io-sled-committer".into())
            .spawn(move || committer(db, trees, incoming, linger, flush))?;
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
            .unwrap_or_else(|| {
                Err(StoreError::Backend(
                    "the committer returned no output".into(),
                ))
            })
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

    /// Runs exclusive work (see [`Exclusive`]) and, if `durable`, returns only once its writes
    /// are on disk.
    pub(crate) async fn apply_exclusive(
        &self,
        work: Exclusive,
        durable: bool,
    ) -> Result<Output, StoreError> {
        self.send(Work::Exclusive(work), durable)
            .await?
            .pop()
            .unwrap_or_else(|| {
                Err(StoreError::Backend(
                    "the committer returned no output".into(),
                ))
            })
    }

    /// Returns once every write made before this call, through any path, is on disk.
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

fn committer(
    db: sled::Db,
    trees: PipelineTrees,
    incoming: mpsc::Receiver<Request>,
    linger: Duration,
    flush: bool,
) {
    // Exclusive work that arrived while a group was being gathered: it runs next, alone.
    let mut next: Option<Request> = None;
    while let Some(first) = next.take().or_else(|| incoming.recv().ok()) {
        let answers = match first.work {
            Work::Exclusive(work) => vec![Answer {
                reply: first.reply,
                durable: first.durable,
                results: vec![work(&trees)],
            }],
            Work::Jobs(jobs) => {
                if !linger.is_zero() {
                    thread::sleep(linger);
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
                let jobs: Vec<&Job> = group.iter().flat_map(|(_, _, jobs)| jobs).collect();
                let mut results = apply_group(&trees, &jobs).into_iter();
                group
                    .into_iter()
                    .map(|(reply, durable, jobs)| Answer {
                        reply,
                        durable,
                        results: results.by_ref().take(jobs.len()).collect(),
                    })
                    .collect()
            }
        };
        answer(&db, flush, answers);
    }
}

/// Answers writers that need no durability at once, and the others after one flush.
fn answer(db: &sled::Db, flush: bool, answers: Vec<Answer>) {
    let mut waiting = Vec::new();
    for answer in answers {
        if answer.durable && flush {
            waiting.push(answer);
        } else {
            let _ = answer.reply.send(answer.results);
        }
    }
    if waiting.is_empty() {
        return;
    }
    let flushed = db
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

/// Applies every job of the group in one transaction, or each in its own if that aborts. One
/// result per job, in the group's order.
fn apply_group(trees: &PipelineTrees, jobs: &[&Job]) -> Vec<Result<Output, StoreError>> {
    if jobs.is_empty() {
        return Vec::new();
    }
    match transaction(trees, |tx| {
        jobs.iter().map(|job| job(tx)).collect::<TxResult<Vec<_>>>()
    }) {
        Ok(outputs) => outputs.into_iter().map(Ok).collect(),
        Err(TransactionError::Abort(_)) => jobs
            .iter()
            .map(|job| transaction(trees, |tx| job(tx)).map_err(from_tx))
            .collect(),
        Err(TransactionError::Storage(error)) => jobs
            .iter()
            .map(|_| Err(StoreError::Backend(error.to_string())))
            .collect(),
    }
}

fn transaction<T>(
    trees: &PipelineTrees,
    body: impl Fn(&Tx<'_>) -> TxResult<T>,
) -> Result<T, TransactionError<StoreError>> {
    (
        &trees.messages,
        &trees.idempotency,
        &trees.queue,
        &trees.leases,
        &trees.inbox,
        &trees.deliveries,
        &trees.journal,
        &trees.journal_heads,
        &trees.recipients,
    )
        .transaction(
            |(
                messages,
                idempotency,
                queue,
                leases,
                inbox,
                deliveries,
                journal,
                journal_heads,
                recipients,
            )| {
                body(&Tx {
                    messages,
                    idempotency,
                    queue,
                    leases,
                    inbox,
                    deliveries,
                    journal,
                    journal_heads,
                    recipients,
                })
            },
        )
}

/// The store error behind a failed transaction.
pub(crate) fn from_tx(error: TransactionError<StoreError>) -> StoreError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => StoreError::Backend(error.to_string()),
    }
}
