//! The quickstart, as a function over any [`Store`]: store the demo's service and citizens,
//! build an [`Engine`] with the inbox and the email stand-in, submit a load of messages
//! concurrently, run the engine until nothing is due, and summarise. The example runs it on a
//! sled directory, the integration test on a temporary store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use io_core::{
    Accepted, Engine, EngineConfig, EngineConfigError, MessageId, Store, StoreError, SubmitError,
    SystemClock,
};
use tokio::task::{JoinError, JoinSet};

use crate::{Category, CountingEmailChannel, Demo, Summary};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickstartOptions {
    /// Messages to submit, spread round-robin over the demo's citizens.
    pub messages: usize,
    /// Submits in flight at once (a service's client with a connection pool).
    pub concurrency: usize,
    /// About how many journals to verify (the first message of each citizen is always one).
    pub journal_sample: usize,
}

impl Default for QuickstartOptions {
    fn default() -> Self {
        Self {
            messages: 10_000,
            concurrency: 64,
            journal_sample: 200,
        }
    }
}

/// One accepted message of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Its position in the load.
    pub n: usize,
    /// Its id.
    pub id: MessageId,
    /// What kind of recipient it went to.
    pub category: Category,
}

/// What a quickstart run did and how long it took.
#[derive(Debug, Clone)]
pub struct QuickstartRun {
    /// The demo data it used.
    pub demo: Demo,
    /// What became of every message.
    pub summary: Summary,
    /// Time to submit the whole load (every submit durable before it returned).
    pub submit_elapsed: Duration,
    /// Time for the engine to process every message and attempt every delivery.
    pub engine_elapsed: Duration,
    /// Tasks the engine ran (one process per message, one per delivery attempt).
    pub tasks_run: u64,
}

impl QuickstartRun {
    /// Submit plus engine time.
    pub fn elapsed(&self) -> Duration {
        self.submit_elapsed + self.engine_elapsed
    }

    /// Messages accepted, processed and delivered per second of [`QuickstartRun::elapsed`].
    pub fn messages_per_second(&self) -> f64 {
        per_second(self.summary.messages, self.elapsed())
    }

    /// Durable submits per second.
    pub fn submits_per_second(&self) -> f64 {
        per_second(self.summary.messages, self.submit_elapsed)
    }
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// Why the quickstart stopped.
#[derive(Debug, thiserror::Error)]
pub enum QuickstartError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine refused its configuration.
    #[error(transparent)]
    Config(#[from] EngineConfigError),
    /// A submit was refused.
    #[error("message {n} was refused: {error}")]
    Submit {
        /// Its position in the load.
        n: usize,
        /// Why.
        error: SubmitError,
    },
    /// A submitting task panicked or was cancelled.
    #[error("a submitting task ended abnormally: {0}")]
    Task(#[from] JoinError),
}

/// Runs the quickstart on `store`, which should be empty.
pub async fn run_quickstart<S: Store>(
    store: Arc<S>,
    options: &QuickstartOptions,
) -> Result<QuickstartRun, QuickstartError> {
    let demo = Demo::new();
    demo.store_into(&*store).await?;

    let email = Arc::new(CountingEmailChannel::new());
    let engine = Arc::new(Engine::new(
        store.clone(),
        vec![email.clone() as Arc<dyn io_core::Channel>],
        Arc::new(SystemClock),
        EngineConfig::default(),
    )?);

    let started = Instant::now();
    let sent = submit_load(&engine, &demo, options.messages, options.concurrency).await?;
    let submit_elapsed = started.elapsed();

    let started = Instant::now();
    let tasks_run = engine.run_until_idle().await?;
    let engine_elapsed = started.elapsed();

    let summary = Summary::collect(&engine, &sent, email.counts(), options.journal_sample).await?;
    Ok(QuickstartRun {
        demo,
        summary,
        submit_elapsed,
        engine_elapsed,
        tasks_run,
    })
}

/// Submits messages `0..count` with at most `concurrency` in flight; returns them in order.
pub async fn submit_load<S: Store>(
    engine: &Arc<Engine<S>>,
    demo: &Demo,
    count: usize,
    concurrency: usize,
) -> Result<Vec<Sent>, QuickstartError> {
    let mut in_flight = JoinSet::new();
    let mut sent = Vec::with_capacity(count);
    for n in 0..count {
        if in_flight.len() >= concurrency.max(1)
            && let Some(done) = in_flight.join_next().await
        {
            sent.push(done??);
        }
        let engine = engine.clone();
        let submission = demo.submission(n);
        let category = demo.recipient(n).category;
        in_flight.spawn(async move {
            let accepted: Accepted = engine
                .submit(submission)
                .await
                .map_err(|error| QuickstartError::Submit { n, error })?;
            Ok::<_, QuickstartError>(Sent {
                n,
                id: accepted.id,
                category,
            })
        });
    }
    while let Some(done) = in_flight.join_next().await {
        sent.push(done??);
    }
    sent.sort_by_key(|s| s.n);
    Ok(sent)
}
