//! io on PostgreSQL (`PostgresStore`), next to a raw PostgreSQL ceiling and to sled, all
//! measured in the same run.
//!
//! - `pg_ceiling`: a minimal sqlx loop on one connection, into a temporary schema of its own
//!   with io's tables and indexes: per message one `messages` row (the real `Message` JSON, ≈ 1
//!   KiB of `jsonb`), one `journal` row (the real encoded `Accepted` entry) and one `deliveries`
//!   row (the real `Delivery` JSON), one `INSERT` each, one commit per [`CEILING_GROUP`]
//!   messages. No engine, no reads, no locks, no task rows.
//! - `pg_ceiling_batched`: the same rows with the fewest round trips: per group of
//!   [`CEILING_GROUP`] messages one multi-row `INSERT` per table and one commit. The stronger
//!   of the two, and the reference of the ratios.
//! - `pg_submit_<n>p`: [`MESSAGES`] messages submitted by 64 concurrent tasks through
//!   `Engine::submit` (validation, decision at accept, one transaction per message: message,
//!   three deliveries with the inbox one SENT, two task rows, journal entries, inbox entry),
//!   spread over `n` engines, each on a `PostgresStore` of its own (its own pool of
//!   [`DEFAULT_MAX_CONNECTIONS`] connections and its own wake-up listener) joined to one
//!   schema: `n` engines stand for `n` io processes on one database.
//! - `pg_fan_out_<n>p`: the whole fan-out from an empty queue: the same submits while every
//!   engine runs its worker loop (`Engine::run`, default configuration) and sends the email
//!   and push notifications through no-op channels; timed until the shared queue is empty.
//! - `sled_submit`, `sled_fan_out`: the same two on `SledStore` (one process: sled is
//!   embedded), fresh store per iteration, as in `durable_accept.rs` and `dispatch.rs`.
//!
//! All PostgreSQL figures use one seeded schema (the service, 1,000 citizens each with a
//! validated email and a device); between iterations its message tables are emptied
//! (`TRUNCATE`, not timed). Ten iterations of each figure and one to warm up, of [`MESSAGES`]
//! messages each: the whole bench takes about three minutes on two cores. The database:
//! `IO_TEST_DATABASE_URL`, by default the loopback server of
//! `io_store::postgres_store::TEST_DATABASE_URL`. The figures that matter are the ratios
//! printed at the end of the run (BENCHMARKS.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use io_benches::{citizen, noop_channels, print_ratio, seed_concurrently, service, submission};
use io_core::{
    ChannelKind, Clock, Delivery, DeliveryId, DeliveryState, DeliveryTarget, Engine, EngineConfig,
    JournalEntry, JournalEvent, Message, MessageId, MessageStatus, SenderLimits, Store,
    SystemClock, Timestamp,
};
use io_store::postgres_store::TEST_DATABASE_URL;
use io_store::{DEFAULT_MAX_CONNECTIONS, PostgresOptions, PostgresStore, SledStore};

/// The allocator io-server ships with (ARCHITECTURE.md, "Memory"), for io and its ceiling alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Messages per measured batch, for every figure of this bench.
const MESSAGES: usize = 500;
/// Concurrent submitters (like concurrent HTTP requests), spread over the engines.
const SUBMITTERS: usize = 64;
/// Messages per commit of the raw ceiling.
const CEILING_GROUP: usize = 100;
/// The io processes measured on one database.
const PROCESSES: [usize; 3] = [1, 2, 3];
/// The group of this bench's figures (criterion's directory, the ratios' label).
const GROUP: &str = "postgres";

/// The tables an iteration fills; emptied before the next.
const MESSAGE_TABLES: &str = "messages, inbox, idempotency, deliveries, journal, tasks, \
                              message_flags, evidence, erased_heads";

fn database_url() -> String {
    std::env::var("IO_TEST_DATABASE_URL").unwrap_or_else(|_| TEST_DATABASE_URL.to_string())
}

fn engine<S: Store>(store: Arc<S>) -> Arc<Engine<S>> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Arc::new(Engine::new(store, noop_channels(), clock, EngineConfig::default()).expect("engine"))
}

/// Submits [`MESSAGES`] messages from [`SUBMITTERS`] tasks, submitter `w` through engine
/// `w % engines.len()` (a load balancer in front of the processes).
async fn submit_all<S: Store>(engines: &[Arc<Engine<S>>]) {
    let mut submitters = tokio::task::JoinSet::new();
    for worker in 0..SUBMITTERS {
        let engine = engines[worker % engines.len()].clone();
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

/// Runs every engine's worker loop while `submitting` runs, until `queue` has no task left;
/// the elapsed time.
async fn fan_out<S: Store, Q: Store>(engines: &[Arc<Engine<S>>], queue: &Q) -> Duration {
    let start = Instant::now();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let workers: Vec<_> = engines
        .iter()
        .map(|engine| {
            let (engine, shutdown) = (engine.clone(), shutdown.clone());
            tokio::spawn(async move { engine.run(shutdown).await })
        })
        .collect();
    submit_all(engines).await;
    // Polled every 10 ms: a count over the queue is a query like any other on PostgreSQL.
    while queue.backlog().await.expect("backlog") > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = start.elapsed();
    stop.send(true).expect("workers alive");
    for worker in workers {
        worker.await.expect("worker");
    }
    elapsed
}

/// One seeded schema and the stores of the "processes" joined to it.
struct Database {
    /// Owns the temporary schema (dropped with it); seeds it, empties it, watches the queue.
    owner: PostgresStore,
    /// One store per process, each with its own pool, as io-server opens it.
    processes: Vec<Arc<PostgresStore>>,
}

impl Database {
    async fn new(url: &str) -> Self {
        let owner = PostgresStore::temporary(url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {url} (set IO_TEST_DATABASE_URL): {e}");
        });
        // A clone shares the pool.
        seed_concurrently(Arc::new(owner.clone())).await;
        let schema = owner.temporary_schema().expect("temporary").to_string();
        let mut processes = Vec::new();
        for _ in 0..PROCESSES[PROCESSES.len() - 1] {
            let store = PostgresStore::connect_with(PostgresOptions {
                url: url.to_string(),
                schema: Some(schema.clone()),
                max_connections: DEFAULT_MAX_CONNECTIONS,
            })
            .await
            .expect("join the schema");
            processes.push(Arc::new(store));
        }
        Self { owner, processes }
    }

    /// Empties the message tables (the service and citizens stay).
    async fn reset(&self) {
        let sql = format!("TRUNCATE {MESSAGE_TABLES}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(self.owner.pool())
            .await
            .expect("truncate");
    }

    fn engines(&self, processes: usize) -> Vec<Arc<Engine<PostgresStore>>> {
        self.processes[..processes]
            .iter()
            .map(|store| engine(store.clone()))
            .collect()
    }

    /// Messages stored and tasks left: a check that an iteration did what it claims.
    async fn counts(&self) -> (i64, i64, i64) {
        let count = |table: &'static str| async move {
            let sql = format!("SELECT count(*) FROM {table}");
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(self.owner.pool())
                .await
                .expect("count");
            count
        };
        (
            count("messages").await,
            count("deliveries").await,
            count("tasks").await,
        )
    }
}

/// The rows the raw ceiling writes per message: real io encodings, as io stores them.
struct CeilingRows {
    message: String,
    status: String,
    entry: Vec<u8>,
    delivery: String,
}

impl CeilingRows {
    fn new() -> Self {
        let service = service();
        let fiscal_code = citizen(7);
        let body = submission(&fiscal_code)
            .message
            .validate(SenderLimits {
                max_allowed_payment_amount: service.max_allowed_payment_amount,
                organization_fiscal_code: &service.organization_fiscal_code,
                capabilities: Default::default(),
            })
            .expect("valid message");
        let at = Timestamp::from_millis(1_700_000_000_000);
        let id = MessageId::from_parts(at.as_millis() as u64, 7);
        let event = JournalEvent::Accepted {
            service_id: service.service_id.clone(),
            recipient: fiscal_code.hash(),
            content_sha256: body.content_hash(),
            time_to_live_secs: body.time_to_live_secs,
        };
        let (entry, _) =
            JournalEntry::encode_after(None, at, &serde_json::to_vec(&event).expect("event"));
        let delivery = Delivery {
            id: DeliveryId::new(id, ChannelKind::Email),
            service_id: service.service_id.clone(),
            fiscal_code: fiscal_code.clone(),
            target: DeliveryTarget::Push,
            state: DeliveryState::Pending,
            attempts: 0,
            outcome_pending: false,
            devices_notified: vec![],
            next_attempt_at: at,
            expires_at: at.plus(Duration::from_secs(3600)),
            last_outcome: None,
            legal_delivery_at: None,
            updated_at: at,
        };
        let message = Message {
            id,
            sender_service_id: service.service_id,
            body,
            created_at: at,
        };
        Self {
            message: serde_json::to_string(&message).expect("message"),
            status: serde_json::to_string(&MessageStatus::Processed).expect("status"),
            entry,
            delivery: serde_json::to_string(&delivery).expect("delivery"),
        }
    }
}

/// The raw ceiling: [`MESSAGES`] messages, three rows each, one `INSERT` per row on one
/// connection, one commit per [`CEILING_GROUP`] messages. Returns the elapsed time.
async fn pg_ceiling(pool: &sqlx::PgPool, rows: &CeilingRows) -> Duration {
    let service = service();
    let fiscal_code = citizen(7);
    let start = Instant::now();
    let mut tx = pool.begin().await.expect("begin");
    for n in 0..MESSAGES {
        let id = MessageId::from_parts(1_700_000_000_000, n as u128).to_bytes();
        sqlx::query(
            "INSERT INTO messages (message_id, service_id, fiscal_code, body, status, created_at,
                 updated_at)
             VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $6)",
        )
        .bind(&id[..])
        .bind(service.service_id.as_str())
        .bind(fiscal_code.as_str())
        .bind(&rows.message)
        .bind(&rows.status)
        .bind(1_700_000_000_000_i64)
        .execute(&mut *tx)
        .await
        .expect("message row");
        sqlx::query("INSERT INTO journal (message_id, seq, entry) VALUES ($1, 0, $2)")
            .bind(&id[..])
            .bind(&rows.entry)
            .execute(&mut *tx)
            .await
            .expect("journal row");
        sqlx::query(
            "INSERT INTO deliveries (message_id, channel, body) VALUES ($1, $2, $3::jsonb)",
        )
        .bind(&id[..])
        .bind(i16::from(ChannelKind::Email.code()))
        .bind(&rows.delivery)
        .execute(&mut *tx)
        .await
        .expect("delivery row");
        if (n + 1) % CEILING_GROUP == 0 {
            tx.commit().await.expect("commit");
            tx = pool.begin().await.expect("begin");
        }
    }
    tx.commit().await.expect("commit");
    start.elapsed()
}

/// The set-based ceiling: the same rows as [`pg_ceiling`], but each group of
/// [`CEILING_GROUP`] messages written with one multi-row `INSERT` per table (`unnest` of
/// arrays) and one commit: PostgreSQL's work for the rows with the fewest round trips.
async fn pg_ceiling_batched(pool: &sqlx::PgPool, rows: &CeilingRows) -> Duration {
    let service = service();
    let fiscal_code = citizen(7);
    let start = Instant::now();
    let mut n = 0;
    while n < MESSAGES {
        let group = CEILING_GROUP.min(MESSAGES - n);
        let ids: Vec<Vec<u8>> = (n..n + group)
            .map(|n| {
                MessageId::from_parts(1_700_000_000_000, n as u128)
                    .to_bytes()
                    .to_vec()
            })
            .collect();
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query(
            "INSERT INTO messages (message_id, service_id, fiscal_code, body, status, created_at,
                 updated_at)
             SELECT id, $2, $3, $4::jsonb, $5::jsonb, $6, $6 FROM unnest($1::bytea[]) AS m(id)",
        )
        .bind(&ids)
        .bind(service.service_id.as_str())
        .bind(fiscal_code.as_str())
        .bind(&rows.message)
        .bind(&rows.status)
        .bind(1_700_000_000_000_i64)
        .execute(&mut *tx)
        .await
        .expect("message rows");
        sqlx::query(
            "INSERT INTO journal (message_id, seq, entry)
             SELECT id, 0, $2 FROM unnest($1::bytea[]) AS m(id)",
        )
        .bind(&ids)
        .bind(&rows.entry)
        .execute(&mut *tx)
        .await
        .expect("journal rows");
        sqlx::query(
            "INSERT INTO deliveries (message_id, channel, body)
             SELECT id, $2, $3::jsonb FROM unnest($1::bytea[]) AS m(id)",
        )
        .bind(&ids)
        .bind(i16::from(ChannelKind::Email.code()))
        .bind(&rows.delivery)
        .execute(&mut *tx)
        .await
        .expect("delivery rows");
        tx.commit().await.expect("commit");
        n += group;
    }
    start.elapsed()
}

fn postgres(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = database_url();
    let database = runtime.block_on(Database::new(&url));
    let ceiling = runtime.block_on(async {
        PostgresStore::temporary(&url)
            .await
            .expect("the ceiling's schema")
    });
    let rows = CeilingRows::new();

    let mut group = c.benchmark_group(GROUP);
    // Every iteration is a whole batch of a second or more: ten of them, one warm-up.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(MESSAGES as u64));

    group.bench_function("pg_ceiling", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    runtime.block_on(async {
                        sqlx::raw_sql("TRUNCATE messages, journal, deliveries")
                            .execute(ceiling.pool())
                            .await
                            .expect("truncate");
                        pg_ceiling(ceiling.pool(), &rows).await
                    })
                })
                .sum()
        })
    });

    group.bench_function("pg_ceiling_batched", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    runtime.block_on(async {
                        sqlx::raw_sql("TRUNCATE messages, journal, deliveries")
                            .execute(ceiling.pool())
                            .await
                            .expect("truncate");
                        pg_ceiling_batched(ceiling.pool(), &rows).await
                    })
                })
                .sum()
        })
    });

    for processes in PROCESSES {
        group.bench_function(format!("pg_submit_{processes}p"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        runtime.block_on(async {
                            database.reset().await;
                            let engines = database.engines(processes);
                            let start = Instant::now();
                            submit_all(&engines).await;
                            let elapsed = start.elapsed();
                            // Every message decided: its email and push deliveries queued.
                            let (messages, deliveries, tasks) = database.counts().await;
                            assert_eq!(
                                (messages, deliveries, tasks),
                                (MESSAGES as i64, 3 * MESSAGES as i64, 2 * MESSAGES as i64)
                            );
                            elapsed
                        })
                    })
                    .sum()
            })
        });
    }

    for processes in PROCESSES {
        group.bench_function(format!("pg_fan_out_{processes}p"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        runtime.block_on(async {
                            database.reset().await;
                            let engines = database.engines(processes);
                            let elapsed = fan_out(&engines, &database.owner).await;
                            let (messages, deliveries, tasks) = database.counts().await;
                            assert_eq!(
                                (messages, deliveries, tasks),
                                (MESSAGES as i64, 3 * MESSAGES as i64, 0)
                            );
                            elapsed
                        })
                    })
                    .sum()
            })
        });
    }

    group.bench_function("sled_submit", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    runtime.block_on(async {
                        let dir = tempfile::tempdir().expect("tempdir");
                        let store = Arc::new(SledStore::open(dir.path()).expect("store"));
                        seed_concurrently(store.clone()).await;
                        let engines = [engine(store.clone())];
                        let start = Instant::now();
                        submit_all(&engines).await;
                        let elapsed = start.elapsed();
                        assert_eq!(store.backlog().await.expect("backlog"), 2 * MESSAGES as u64);
                        elapsed
                    })
                })
                .sum()
        })
    });

    group.bench_function("sled_fan_out", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    runtime.block_on(async {
                        let dir = tempfile::tempdir().expect("tempdir");
                        let store = Arc::new(SledStore::open(dir.path()).expect("store"));
                        seed_concurrently(store.clone()).await;
                        let engines = [engine(store.clone())];
                        fan_out(&engines, &*store).await
                    })
                })
                .sum()
        })
    });
    group.finish();

    // The stores hold connections and listeners of this runtime: drop them in it (the owner,
    // dropping its schema, last).
    runtime.block_on(async move {
        let Database { owner, processes } = database;
        drop(processes);
        drop(owner);
        drop(ceiling);
    });
}

criterion_group!(benches, postgres);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let messages = MESSAGES as u64;
    // The set-based ceiling is the reference (the stronger of the two); the row-at-a-time
    // one is printed beside it.
    print_ratio(
        GROUP,
        ("pg_ceiling", messages),
        ("pg_ceiling_batched", messages),
    );
    let ceiling = ("pg_ceiling_batched", messages);
    for processes in PROCESSES {
        print_ratio(
            GROUP,
            (&format!("pg_submit_{processes}p"), messages),
            ceiling,
        );
    }
    for processes in PROCESSES {
        print_ratio(
            GROUP,
            (&format!("pg_fan_out_{processes}p"), messages),
            ceiling,
        );
    }
    print_ratio(GROUP, ("sled_submit", messages), ceiling);
    print_ratio(GROUP, ("sled_fan_out", messages), ceiling);
    // PostgreSQL next to sled, same run.
    print_ratio(GROUP, ("pg_submit_1p", messages), ("sled_submit", messages));
    print_ratio(
        GROUP,
        ("pg_fan_out_1p", messages),
        ("sled_fan_out", messages),
    );
    println!(
        "{GROUP}: figures in messages/s; a fan-out message is 3 deliveries (inbox, email, push)"
    );
}
