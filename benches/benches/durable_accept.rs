//! Durable accept on sled: submit (validated, one atomic durable write) plus process (decision,
//! PROCESSED and three deliveries, one atomic durable write) of a batch of messages submitted
//! concurrently, next to the raw group-commit ceiling of sled on the same disk measured in the
//! same run (`sled_ceiling`: a unit is one ~1 KiB message and three delivery records in one
//! transaction, one flush per 100 units). The figure that matters is the ratio of the two
//! throughputs (BENCHMARKS.md), not either absolute value.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use io_benches::{
    citizen, noop_channels, print_ratio, seed, sled_group_commit_ceiling, submission,
};
use io_core::{Clock, Engine, EngineConfig, Store, SystemClock};
use io_store::SledStore;

/// The allocator io-server ships with (ARCHITECTURE.md, "Memory"), for io and its ceiling alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Messages per measured batch.
const BATCH: usize = 2_000;
/// Concurrent submitters (like concurrent HTTP requests).
const SUBMITTERS: usize = 64;

async fn submit_and_process(store: Arc<SledStore>) -> Duration {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // The decision is taken at accept (the default): each submit is the whole of accept and
    // process, one durable write.
    let engine = Arc::new(
        Engine::new(
            store.clone(),
            noop_channels(),
            clock,
            EngineConfig::default(),
        )
        .expect("engine"),
    );
    let start = Instant::now();
    let mut submitters = tokio::task::JoinSet::new();
    for worker in 0..SUBMITTERS {
        let engine = engine.clone();
        submitters.spawn(async move {
            for n in (worker..BATCH).step_by(SUBMITTERS) {
                engine
                    .submit(submission(&citizen(n as u32)))
                    .await
                    .expect("submit");
            }
        });
    }
    submitters.join_all().await;
    let elapsed = start.elapsed();
    // Every message processed: its email and push deliveries wait for a worker.
    assert_eq!(store.backlog().await.expect("backlog"), 2 * BATCH as u64);
    elapsed
}

fn durable_accept(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("durable_accept");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(BATCH as u64));

    group.bench_function("sled_ceiling", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let dir = tempfile::tempdir().expect("tempdir");
                    sled_group_commit_ceiling(dir.path(), BATCH)
                })
                .sum()
        })
    });

    group.bench_function("engine_submit_and_process", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    runtime.block_on(async {
                        let dir = tempfile::tempdir().expect("tempdir");
                        let store = Arc::new(SledStore::open(dir.path()).expect("store"));
                        seed(&*store).await;
                        submit_and_process(store).await
                    })
                })
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, durable_accept);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratio(
        "durable_accept",
        ("engine_submit_and_process", BATCH as u64),
        ("sled_ceiling", BATCH as u64),
    );
}
