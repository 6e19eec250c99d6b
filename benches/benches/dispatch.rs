//! Store-backed dispatch on sled, next to sled's raw dispatch ceiling measured in the same run.
//!
//! - `sled_ceiling`: a plain sled loop over 40,000 delivery records (the real `Delivery`
//!   JSON): scan 1,000, decode each, set it SENT, encode, write back, flush once per batch
//!   (`io_benches::sled_dispatch_ceiling`).
//! - `engine_dispatch`: 20,000 messages already accepted (each decided at accept: inbox SENT,
//!   an email and a push delivery pending, 40,000 deliveries in all, to 1,000 citizens with a
//!   device each), then one engine worker loop (`Engine::run`, default configuration) sends
//!   them all through no-op email and push channels: claim, attempt start (durable), read of
//!   message, sender, profile and devices, send, outcome with its journal entry (durable).
//!   Timed from the worker's start until the backlog is empty.
//! - `end_to_end`: the whole fan-out from an empty queue: 64 concurrent submitters accept
//!   20,000 messages (validation, decision at accept, the inbox SENT in the accept's write)
//!   while the worker sends their 40,000 notifications; 60,000 deliveries counted.
//!
//! The figures that matter are the ratios to the ceiling, printed at the end of the run
//! (BENCHMARKS.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use io_benches::{
    citizen, noop_channels, print_ratio, seed, sled_dispatch_ceiling, sled_dispatch_fixture,
    submission,
};
use io_core::{Clock, Engine, EngineConfig, Store, SystemClock};
use io_store::SledStore;

/// The allocator io-server ships with (ARCHITECTURE.md, "Memory"), for io and its ceiling alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Messages per measured batch.
const MESSAGES: usize = 20_000;
/// Deliveries the worker sends per batch (email and push; the inbox is done at accept).
const DISPATCHED: usize = 2 * MESSAGES;
/// Concurrent submitters (like concurrent HTTP requests).
const SUBMITTERS: usize = 64;

fn engine(store: Arc<SledStore>) -> Arc<Engine<SledStore>> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Arc::new(Engine::new(store, noop_channels(), clock, EngineConfig::default()).expect("engine"))
}

async fn submit_all(engine: &Arc<Engine<SledStore>>) {
    let mut submitters = tokio::task::JoinSet::new();
    for worker in 0..SUBMITTERS {
        let engine = engine.clone();
        submitters.spawn(async move {
            for n in (worker..MESSAGES).step_by(SUBMITTERS) {
                engine
                    .submit(submission(&citizen(n as u32)))
                    .await
                    .expect("submit");
            }
        });
    }
    submitters.join_all().await;
}

/// Runs one worker loop until the backlog is empty (and `submitting` is done); the elapsed time.
async fn work_until_empty(
    engine: Arc<Engine<SledStore>>,
    submitting: impl std::future::Future<Output = ()>,
) -> Duration {
    let start = Instant::now();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run(shutdown).await })
    };
    submitting.await;
    while engine.store().backlog().await.expect("backlog") > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    stop.send(true).expect("worker alive");
    worker.await.expect("worker");
    elapsed
}

fn dispatch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("dispatch");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(DISPATCHED as u64));

    group.bench_function("sled_ceiling", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let (db, tree) = sled_dispatch_fixture(dir.path(), DISPATCHED);
                    sled_dispatch_ceiling(&db, &tree)
                })
                .sum()
        })
    });

    group.bench_function("engine_dispatch", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    runtime.block_on(async {
                        let dir = tempfile::tempdir().expect("tempdir");
                        let store = Arc::new(SledStore::open(dir.path()).expect("store"));
                        seed(&*store).await;
                        let engine = engine(store);
                        submit_all(&engine).await;
                        assert_eq!(
                            engine.store().backlog().await.expect("backlog"),
                            DISPATCHED as u64
                        );
                        work_until_empty(engine, async {}).await
                    })
                })
                .sum()
        })
    });

    group.throughput(Throughput::Elements(3 * MESSAGES as u64));
    group.bench_function("end_to_end", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    runtime.block_on(async {
                        let dir = tempfile::tempdir().expect("tempdir");
                        let store = Arc::new(SledStore::open(dir.path()).expect("store"));
                        seed(&*store).await;
                        let engine = engine(store);
                        let submitting = {
                            let engine = engine.clone();
                            async move { submit_all(&engine).await }
                        };
                        work_until_empty(engine, submitting).await
                    })
                })
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, dispatch);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratio(
        "dispatch",
        ("engine_dispatch", DISPATCHED as u64),
        ("sled_ceiling", DISPATCHED as u64),
    );
    print_ratio(
        "dispatch",
        ("end_to_end", 3 * MESSAGES as u64),
        ("sled_ceiling", DISPATCHED as u64),
    );
}
