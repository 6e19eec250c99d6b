//! Group commit: one flusher thread makes sled durable for every writer waiting at the time,
//! so a hundred concurrent submits cost one `flush()`, not a hundred.
//!
//! sled 0.34's `flush_async` deadlocks under concurrent callers (spacejam/sled#1308), and a
//! blocking `flush()` must not run on a runtime worker thread: hence a dedicated thread.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), String>>;

/// The handle writers use to wait for durability. Dropping it stops the thread after it has
/// served every waiter, and waits for that: the thread holds a handle on the database, and the
/// directory's lock must be free once the store is dropped (a reopen must not find it taken).
#[derive(Debug)]
pub(crate) struct GroupCommit {
    requests: Option<mpsc::Sender<Waiter>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`. `linger` is how long it waits after the first waiter
    /// of a group for others to join (zero: flush at once, groups form while flushing).
    pub(crate) fn start(db: sled::Db, linger: Duration) -> std::io::Result<Self> {
        let (requests, incoming) = mpsc::channel::<Waiter>();
        let thread = thread::Builder::new()
            .name("io-sled-flusher".into())
            .spawn(move || flusher(db, incoming, linger))?;
        Ok(Self {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Returns once everything written before this call is on disk.
    pub(crate) async fn durable(&self) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.requests
            .as_ref()
            .ok_or_else(|| "the flusher thread has stopped".to_owned())?
            .send(done)
            .map_err(|_| "the flusher thread has stopped".to_owned())?;
        wait.await
            .map_err(|_| "the flusher thread stopped before flushing".to_owned())?
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        drop(self.requests.take()); // the thread's `recv` now fails once the queue is empty
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn flusher(db: sled::Db, incoming: mpsc::Receiver<Waiter>, linger: Duration) {
    while let Ok(first) = incoming.recv() {
        if !linger.is_zero() {
            thread::sleep(linger);
        }
        let mut group = vec![first];
        group.extend(incoming.try_iter());
        let result = db.flush().map(drop).map_err(|e| e.to_string());
        if let Err(error) = &result {
            tracing::error!(%error, "sled flush failed; writers are told their write is not durable");
        }
        for waiter in group {
            // A writer that gave up waiting is not an error.
            let _ = waiter.send(result.clone());
        }
    }
}
