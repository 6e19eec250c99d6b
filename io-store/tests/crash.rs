//! Crash test: a child process submits messages to a sled store in a loop and prints each id
//! once `submit` has returned; the parent kills it with SIGKILL at random moments, again and
//! again on the same data, then runs the engine to completion and checks that every
//! acknowledged message exists and reached a final status, that no delivery was sent twice,
//! and that every journal verifies.
//!
//! The child is this same test binary, re-run with `IO_CRASH_CHILD_DIR` set, executing the
//! ignored test `crash_child`.

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use io_core::{
    Channel, ChannelKind, Clock, DeliveryState, Engine, EngineConfig, MessageId, MessageStatus,
    Store, StoreError, SystemClock,
};
use io_store::SledStore;
use rand::{Rng, SeedableRng};
use support::{RecordingChannel, citizen, profile_with_email, service, submission};
use tokio::io::{AsyncBufReadExt, BufReader};

const CHILD_DIR: &str = "IO_CRASH_CHILD_DIR";
const KILLS: usize = 24;
const CITIZENS: u32 = 20;

/// Seeds the reference data if a previous (killed) child has not already.
async fn seed_once(store: &SledStore) {
    match store.put_service(&service("crash-svc")).await {
        Ok(()) | Err(StoreError::Conflict { .. }) => {}
        Err(error) => panic!("seeding the service: {error}"),
    }
    // Citizens 0..CITIZENS have profiles; the odd ones out are rejected (no profile).
    for n in 0..CITIZENS {
        match store.put_profile(&profile_with_email(&citizen(n))).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => {}
            Err(error) => panic!("seeding a profile: {error}"),
        }
    }
}

fn channels(clock: Arc<dyn Clock>) -> (Arc<RecordingChannel>, Arc<RecordingChannel>) {
    (
        RecordingChannel::new(ChannelKind::Inbox, clock.clone(), vec![]),
        RecordingChannel::new(ChannelKind::Email, clock, vec![]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by crash::acknowledged_messages_survive_repeated_sigkill as its child process"]
async fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let store = Arc::new(SledStore::open(&dir).expect("open store"));
    seed_once(&store).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (inbox, email) = channels(clock.clone());
    let engine = Arc::new(
        Engine::new(
            store,
            vec![inbox as Arc<dyn Channel>, email],
            clock,
            EngineConfig::default(),
        )
        .expect("engine"),
    );
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

    // Recovery: open the same data, run the engine to completion.
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (inbox, email) = channels(clock.clone());
    let engine = Engine::new(
        store.clone(),
        vec![inbox.clone() as Arc<dyn Channel>, email.clone()],
        clock,
        EngineConfig::default(),
    )
    .unwrap();
    engine.run_until_idle().await.unwrap();
    assert_eq!(
        store.backlog().await.unwrap(),
        0,
        "every task ran, acknowledged or not"
    );

    for id in &acknowledged {
        let stored = store
            .message(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {id} was lost"));
        assert!(stored.status.is_final(), "{id} is {:?}", stored.status);
        if stored.status == MessageStatus::Processed {
            for delivery in store.deliveries(id).await.unwrap() {
                assert_eq!(delivery.state, DeliveryState::Sent, "{id}");
                assert_eq!(delivery.attempts, 1, "{id}");
            }
        }
        engine
            .verify_journal(id)
            .await
            .unwrap_or_else(|e| panic!("journal of {id}: {e}"));
    }
    for (channel, recorder) in [("inbox", &inbox), ("email", &email)] {
        let counts = recorder.counts();
        assert!(!counts.is_empty(), "{channel} delivered nothing");
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{channel} deliveries sent twice: {twice:?}"
        );
    }
    println!(
        "{} acknowledged across {KILLS} kills ({kills_during_writes} mid-load); {} inbox and {} email deliveries",
        acknowledged.len(),
        inbox.calls().len(),
        email.calls().len()
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
