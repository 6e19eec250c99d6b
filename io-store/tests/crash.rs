//! Crash test: a child process submits messages to a sled store in a loop, printing each id
//! once `submit` has returned, while its engine worker delivers them (email to a sink file) and
//! posts every journal entry to the service's callback (another sink file); the parent kills
//! it with SIGKILL at random moments, again and again on the same data, mid-accept and
//! mid-dispatch. Then it reopens the store, runs the engine to completion at once, and checks:
//! every acknowledged message exists, is final and its journal verifies; every email was sent,
//! and every provider contact (each sink line names its attempt) is counted in `attempts` and
//! has its own journal entry (`Attempted`, or `OutcomeUnknown` for one cut short by a kill);
//! every journal entry reached the callback sink (none lost); and recovery did not wait for
//! any lease to run out (the in-memory leases die with the process).
//!
//! The child is this same test binary, re-run with `IO_CRASH_CHILD_DIR` set, executing the
//! ignored test `crash_child`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use io_core::{
    CallbackEvent, CallbackSender, CallbackTarget, Channel, ChannelKind, DeliveryJob,
    DeliveryState, Engine, EngineConfig, JournalEvent, MessageId, MessageStatus, Outcome, Report,
    Store, StoreError, SystemClock, Timestamp,
};
use io_store::SledStore;
use rand::{Rng, SeedableRng};
use support::{citizen, profile_with_email, service, submission};
use tokio::io::{AsyncBufReadExt, BufReader};

const CHILD_DIR: &str = "IO_CRASH_CHILD_DIR";
const KILLS: usize = 24;
const CITIZENS: u32 = 20;

/// Appends one line to a sink file: what a provider (or a callback receiver) received. A
/// single `write` on an append-only file: a kill never leaves half a line.
fn append(path: &Path, line: String) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open sink");
    file.write_all(line.as_bytes()).expect("write sink");
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// An email provider that writes `<delivery id> <attempt>` per contact to a file.
struct EmailSink(PathBuf);

#[async_trait::async_trait]
impl Channel for EmailSink {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }
    async fn send(&self, job: DeliveryJob<'_>) -> Report {
        append(
            &self.0,
            format!("{} {}\n", job.delivery.id, job.delivery.attempts),
        );
        Outcome::Delivered { provider_ref: None }.into()
    }
}

/// A callback receiver that writes each event id to a file.
struct CallbackSink(PathBuf);

#[async_trait::async_trait]
impl CallbackSender for CallbackSink {
    async fn post(&self, _: &CallbackTarget, event: &CallbackEvent, _: Timestamp) -> Outcome {
        append(&self.0, format!("{}\n", event.id));
        Outcome::Delivered { provider_ref: None }
    }
}

fn sinks(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("email-sink"), dir.join("callback-sink"))
}

fn engine(store: Arc<SledStore>, dir: &Path) -> Engine<SledStore> {
    let (emails, callbacks) = sinks(dir);
    Engine::new(
        store,
        vec![Arc::new(EmailSink(emails)) as Arc<dyn Channel>],
        Arc::new(SystemClock),
        EngineConfig::default(),
    )
    .expect("engine")
    .with_callbacks(Arc::new(CallbackSink(callbacks)))
}

/// Seeds the reference data if a previous (killed) child has not already.
async fn seed_once(store: &SledStore) {
    match store.put_service(&service("crash-svc")).await {
        Ok(()) | Err(StoreError::Conflict { .. }) => {}
        Err(error) => panic!("seeding the service: {error}"),
    }
    let target = CallbackTarget {
        url: "https://sender.example/callback".into(),
        secret: "00".repeat(32),
    };
    store
        .put_callback(&service("crash-svc").service_id, Some(&target))
        .await
        .expect("seeding the callback");
    // Citizens 0..CITIZENS have profiles; the odd ones out are rejected (no profile).
    for n in 0..CITIZENS {
        match store.put_profile(&profile_with_email(&citizen(n))).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => {}
            Err(error) => panic!("seeding a profile: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by crash::acknowledged_messages_survive_repeated_sigkill as its child process"]
async fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let store = Arc::new(SledStore::open(dir.join("store")).expect("open store"));
    seed_once(&store).await;
    let engine = Arc::new(engine(store, &dir));
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run(shutdown).await })
    };
    println!("READY");
    // Bounded even if the parent dies without killing us.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..16u32 {
        let engine = engine.clone();
        writers.spawn(async move {
            for n in 0u32.. {
                if std::time::Instant::now() > deadline {
                    break;
                }
                // Every 7th message goes to a citizen without a profile: it must end REJECTED.
                let who = if n % 7 == 3 {
                    citizen(900 + writer)
                } else {
                    citizen((n + writer) % CITIZENS)
                };
                let accepted = engine
                    .submit(submission("crash-svc", &who, "Avviso di prova per crash"))
                    .await
                    .expect("submit");
                // One line per acknowledged id; the parent only trusts complete lines.
                println!("ACK {}", accepted.id);
            }
        });
    }
    writers.join_all().await;
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_repeated_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let seed: u64 = rand::rng().random();
    println!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged: BTreeSet<MessageId> = BTreeSet::new();
    let mut kills_during_writes = 0;

    for round in 0..KILLS {
        let mut child = tokio::process::Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait until the child has opened the store, then let it write for a random while.
        loop {
            match tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await {
                // libtest prints "test crash_child ... " without a newline before our output.
                Ok(Ok(Some(line))) if line.ends_with("READY") => break,
                Ok(Ok(Some(line))) => record(&mut acknowledged, &line),
                other => panic!("round {round}: child did not start: {other:?}"),
            }
        }
        let before = acknowledged.len();
        let delay = Duration::from_millis(rng.random_range(50..400));
        let deadline = tokio::time::Instant::now() + delay;
        // A child that prints faster than we read never lets `timeout_at` fire: check the
        // deadline on every line.
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, lines.next_line()).await {
                Ok(Ok(Some(line))) => record(&mut acknowledged, &line),
                _ => break,
            }
        }
        child.start_kill().unwrap(); // SIGKILL
        // Drain what the child printed before it died: complete lines only.
        while let Ok(Some(line)) = lines.next_line().await {
            record(&mut acknowledged, &line);
        }
        let status = child.wait().await.unwrap();
        assert!(
            !status.success(),
            "round {round}: the child must die by the signal"
        );
        if acknowledged.len() > before {
            kills_during_writes += 1;
        }
    }
    assert!(
        kills_during_writes >= KILLS / 2,
        "most kills must land mid-load: {kills_during_writes}"
    );
    assert!(
        acknowledged.len() > 100,
        "too few acknowledged messages: {}",
        acknowledged.len()
    );

    // Recovery: open the same data and run the engine to completion at once. Every lease of
    // the dead child died with it, so nothing waits for a lease to run out (120 s by default):
    // one pass leaves no task behind.
    let store = Arc::new(SledStore::open(dir.path().join("store")).unwrap());
    let engine = engine(store.clone(), dir.path());
    let recovering = store.backlog().await.unwrap();
    engine.run_until_idle().await.unwrap();
    assert_eq!(
        store.backlog().await.unwrap(),
        0,
        "every task ran at once, acknowledged or not ({recovering} waited at reopening)"
    );
    let (email_sink, callback_sink) = sinks(dir.path());
    let mut contacts: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for line in lines(&email_sink) {
        let (delivery, attempt) = line.split_once(' ').expect("sink line");
        contacts
            .entry(delivery.to_owned())
            .or_default()
            .push(attempt.parse().expect("attempt number"));
    }
    let posted: BTreeSet<String> = lines(&callback_sink).into_iter().collect();
    let mut repeated = 0;
    let mut unknown = 0;

    for id in &acknowledged {
        let stored = store
            .message(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {id} was lost"));
        assert!(stored.status.is_final(), "{id} is {:?}", stored.status);
        let journal = engine
            .verify_journal(id)
            .await
            .unwrap_or_else(|e| panic!("journal of {id}: {e}"));
        // No callback event lost: every journal entry reached the receiver (perhaps twice, with
        // the same id, when a kill fell between its 2xx and the cursor's commit).
        for entry in &journal {
            let event = format!("{id}-{}", entry.seq);
            assert!(posted.contains(&event), "callback {event} was never posted");
        }
        assert_eq!(
            store.callback_cursor(id).await.unwrap(),
            None,
            "{id}: outbox closed"
        );
        if stored.status != MessageStatus::Processed {
            continue;
        }
        for delivery in store.deliveries(id).await.unwrap() {
            assert_eq!(delivery.state, DeliveryState::Sent, "{}", delivery.id);
            assert!(!delivery.outcome_pending, "{}", delivery.id);
            if delivery.channel() != ChannelKind::Email {
                continue;
            }
            // Every provider contact has its own attempt number, counted and journaled.
            let made = contacts
                .get(&delivery.id.to_string())
                .cloned()
                .unwrap_or_default();
            assert!(
                !made.is_empty(),
                "{} never reached the provider",
                delivery.id
            );
            let distinct: BTreeSet<u32> = made.iter().copied().collect();
            assert_eq!(
                distinct.len(),
                made.len(),
                "{}: an attempt number twice: {made:?}",
                delivery.id
            );
            assert!(
                made.iter().all(|n| *n >= 1 && *n <= delivery.attempts),
                "{}: {made:?} beyond attempts {}",
                delivery.id,
                delivery.attempts
            );
            let journaled: BTreeSet<u32> = journal
                .iter()
                .filter_map(|entry| match &entry.event {
                    JournalEvent::Attempted {
                        channel: ChannelKind::Email,
                        attempt,
                        ..
                    }
                    | JournalEvent::OutcomeUnknown {
                        channel: ChannelKind::Email,
                        attempt,
                    } => Some(*attempt),
                    _ => None,
                })
                .collect();
            assert_eq!(
                journaled,
                (1..=delivery.attempts).collect::<BTreeSet<u32>>(),
                "{}: every attempt is in the journal",
                delivery.id
            );
            if made.len() > 1 {
                repeated += 1;
            }
            unknown += journal
                .iter()
                .filter(|e| {
                    matches!(
                        e.event,
                        JournalEvent::OutcomeUnknown {
                            channel: ChannelKind::Email,
                            ..
                        }
                    )
                })
                .count();
        }
    }
    assert!(!contacts.is_empty(), "no email reached the provider");
    println!(
        "{} acknowledged across {KILLS} kills ({kills_during_writes} mid-load); {} email contacts, {repeated} deliveries contacted more than once, {unknown} outcomes recorded unknown; {} callback posts",
        acknowledged.len(),
        contacts.values().map(Vec::len).sum::<usize>(),
        lines(&callback_sink).len()
    );
}

fn record(acknowledged: &mut BTreeSet<MessageId>, line: &str) {
    if let Some(id) = line.strip_prefix("ACK ") {
        let id: MessageId = id
            .parse()
            .unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
        assert!(acknowledged.insert(id), "id {id} acknowledged twice");
    }
}
