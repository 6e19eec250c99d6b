//! Shared fixtures of io's benchmarks: a service, citizens reachable on every channel, no-op
//! channels, the raw sled ceilings the engine is compared with, and the ratio of two figures
//! of the same criterion run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use io_core::{
    Channel, ChannelKind, DeliveryJob, EmailAddress, FiscalCode, Installation, InstallationId,
    NewMessage, NewMessageContent, OrganizationFiscalCode, Outcome, Profile, PushPlatform, Report,
    SenderCapabilities, Service, ServiceId, ServiceMetadata, Store, Submission, Timestamp,
};

/// The benchmark's sending service.
pub fn service() -> Service {
    Service {
        service_id: ServiceId::parse("bench-svc").expect("valid id"),
        service_name: "Tassa rifiuti".into(),
        department_name: "Tributi".into(),
        organization_name: "Comune di Esempio".into(),
        organization_fiscal_code: OrganizationFiscalCode::parse("15376371009").expect("valid"),
        authorized_cidrs: vec![],
        authorized_recipients: Default::default(),
        is_visible: true,
        max_allowed_payment_amount: 1_000_000,
        require_secure_channels: false,
        service_metadata: ServiceMetadata::default(),
        owner_email: None,
        sandboxed: false,
        version: 1,
    }
}

/// The `n`-th of 1000 generated valid fiscal codes.
pub fn citizen(n: u32) -> FiscalCode {
    let digits = format!("{:03}", n % 1000);
    let first15 = format!("VRDLGU{}M12H50{}", &digits[..2], &digits[2..]);
    let check = io_core::fiscal_code::compute_check_character(&first15).expect("15 valid chars");
    FiscalCode::parse(&format!("{first15}{check}")).expect("valid by construction")
}

/// A message of about 1 KiB of JSON, like IO's typical notice.
pub fn new_message(fiscal_code: &FiscalCode) -> NewMessage {
    NewMessage {
        fiscal_code: Some(fiscal_code.to_string()),
        time_to_live: Some(3600),
        content: NewMessageContent {
            subject: Some("Avviso di pagamento TARI 2026".into()),
            markdown: Some(
                "Gentile contribuente, le comunichiamo che è disponibile l'avviso di pagamento \
                 della tassa sui rifiuti per l'anno 2026. "
                    .repeat(7),
            ),
            due_date: Some("2026-06-30T23:59:59Z".into()),
            ..Default::default()
        },
        feature_level_type: None,
        legal_value: None,
    }
}

/// IO-shaped JSON of [`new_message`].
pub fn new_message_json(fiscal_code: &FiscalCode) -> Vec<u8> {
    format!(
        r#"{{"fiscal_code":"{fiscal_code}","time_to_live":3600,"content":{{"subject":"Avviso di pagamento TARI 2026","markdown":"{}","due_date":"2026-06-30T23:59:59Z","payment_data":{{"amount":12345,"notice_number":"012345678901234567"}}}}}}"#,
        "Gentile contribuente, le comunichiamo che è disponibile l'avviso di pagamento. ".repeat(11)
    )
    .into_bytes()
}

/// A submission of [`new_message`] by [`service`].
pub fn submission(fiscal_code: &FiscalCode) -> Submission {
    Submission {
        service_id: service().service_id,
        message: new_message(fiscal_code),
        capabilities: SenderCapabilities::default(),
        idempotency_key: None,
    }
}

/// Seeds the service and 1000 citizens with a validated email (each their own: validated
/// addresses are unique) and one device, so that every message fans out to inbox, email and
/// push.
pub async fn seed(store: &impl Store) {
    store.put_service(&service()).await.expect("seed service");
    for n in 0..1000 {
        seed_citizen(store, n).await;
    }
}

/// [`seed`] with 64 citizens written at a time, so that a store with group commit (sled) or a
/// pool of connections (PostgreSQL) seeds in a fraction of the time. The same records.
pub async fn seed_concurrently<S: Store>(store: Arc<S>) {
    store.put_service(&service()).await.expect("seed service");
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..64 {
        let store = store.clone();
        writers.spawn(async move {
            for n in (writer..1000).step_by(64) {
                seed_citizen(&*store, n).await;
            }
        });
    }
    writers.join_all().await;
}

/// The `n`-th citizen of [`seed`]: a profile with a validated email, and a device.
async fn seed_citizen(store: &impl Store, n: u32) {
    let fiscal_code = citizen(n);
    let mut profile = Profile::new(fiscal_code.clone());
    let address = format!("cittadino{n}@example.it");
    profile.email = Some(EmailAddress::parse(&address).expect("valid"));
    profile.is_email_validated = true;
    store.put_profile(&profile).await.expect("seed profile");
    let device = Installation {
        installation_id: InstallationId::parse(&format!("device-{n}")).expect("valid"),
        platform: PushPlatform::Fcmv1,
        push_channel: "token".into(),
        updated_at: Timestamp::EPOCH,
    };
    store
        .put_installation(&fiscal_code, &device)
        .await
        .expect("seed device");
}

/// A channel that accepts everything at once: the benchmarks measure the engine and the store.
pub struct NoopChannel(pub ChannelKind);

#[async_trait::async_trait]
impl Channel for NoopChannel {
    fn kind(&self) -> ChannelKind {
        self.0
    }
    async fn send(&self, _job: DeliveryJob<'_>) -> Report {
        Outcome::Delivered { provider_ref: None }.into()
    }
}

/// No-op email and push channels (the inbox is built into the engine).
pub fn noop_channels() -> Vec<Arc<dyn Channel>> {
    [ChannelKind::Email, ChannelKind::Push]
        .into_iter()
        .map(|kind| Arc::new(NoopChannel(kind)) as Arc<dyn Channel>)
        .collect()
}

/// Units per flush of the raw ceiling (performance.md: groups larger than ~100 buy nothing).
pub const CEILING_GROUP: usize = 100;

/// The raw group-commit ceiling of sled on this disk: `units` units, each one ~1 KiB message
/// and 3 delivery records written by one transaction over two trees, one `flush()` per
/// [`CEILING_GROUP`] units. No engine, no encoding beyond copying bytes: what sled itself can
/// make durable. Returns the elapsed time.
pub fn sled_group_commit_ceiling(dir: &std::path::Path, units: usize) -> Duration {
    use sled::Transactional;
    let db = sled::Config::new().path(dir).open().expect("open sled");
    let messages = db.open_tree("messages").expect("tree");
    let deliveries = db.open_tree("deliveries").expect("tree");
    let body = vec![b'x'; 1024];
    let delivery = vec![b'd'; 200];
    let start = Instant::now();
    for unit in 0..units {
        let key = (unit as u64).to_be_bytes();
        (&messages, &deliveries)
            .transaction(|(m, d)| {
                m.insert(&key, body.as_slice())?;
                for channel in 0u8..3 {
                    let mut delivery_key = key.to_vec();
                    delivery_key.push(channel);
                    d.insert(delivery_key, delivery.as_slice())?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .expect("transaction");
        if (unit + 1) % CEILING_GROUP == 0 {
            db.flush().expect("flush");
        }
    }
    db.flush().expect("flush");
    start.elapsed()
}

/// Delivery records per flush of the raw dispatch ceiling.
pub const DISPATCH_BATCH: usize = 1_000;

/// Writes `count` pending delivery records (the real `Delivery` JSON, like io's) into a fresh
/// sled tree in `dir`, flushed; returns the database and the tree, ready for
/// [`sled_dispatch_ceiling`].
pub fn sled_dispatch_fixture(dir: &std::path::Path, count: usize) -> (sled::Db, sled::Tree) {
    use io_core::{Delivery, DeliveryId, DeliveryState, DeliveryTarget, MessageId};
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(io_store::DEFAULT_CACHE_BYTES)
        .open()
        .expect("open sled");
    let tree = db.open_tree("deliveries").expect("tree");
    let service = service();
    for n in 0..count {
        let message = MessageId::from_parts(1_700_000_000_000 + n as u64 / 2, n as u128);
        let channel = if n % 2 == 0 {
            ChannelKind::Email
        } else {
            ChannelKind::Push
        };
        let delivery = Delivery {
            id: DeliveryId::new(message, channel),
            service_id: service.service_id.clone(),
            fiscal_code: citizen(n as u32),
            target: DeliveryTarget::Push,
            state: DeliveryState::Pending,
            attempts: 0,
            outcome_pending: false,
            devices_notified: vec![],
            next_attempt_at: Timestamp::from_millis(1_700_000_000_000),
            expires_at: Timestamp::from_millis(1_700_003_600_000),
            last_outcome: None,
            legal_delivery_at: None,
            updated_at: Timestamp::from_millis(1_700_000_000_000),
        };
        let mut key = message.to_bytes().to_vec();
        key.push(channel.code());
        tree.insert(key, serde_json::to_vec(&delivery).expect("encode"))
            .expect("insert");
    }
    db.flush().expect("flush");
    (db, tree)
}

/// The raw ceiling of store-backed dispatch on sled: a plain loop that scans
/// [`DISPATCH_BATCH`] delivery records at a time, decodes each, sets it SENT, encodes it, writes
/// it back, and flushes once per batch. No engine, no claim, no journal: the least a dispatcher
/// that keeps its deliveries in sled must do. Returns the elapsed time.
pub fn sled_dispatch_ceiling(db: &sled::Db, tree: &sled::Tree) -> Duration {
    use io_core::{Delivery, DeliveryState};
    let start = Instant::now();
    let mut from: Vec<u8> = Vec::new();
    loop {
        let batch: Vec<(sled::IVec, sled::IVec)> = tree
            .range(from.as_slice()..)
            .take(DISPATCH_BATCH)
            .collect::<Result<_, _>>()
            .expect("scan");
        let Some((last, _)) = batch.last() else {
            break;
        };
        from = last.to_vec();
        from.push(0);
        for (key, value) in &batch {
            let mut delivery: Delivery = serde_json::from_slice(value).expect("decode");
            delivery.state = DeliveryState::Sent;
            delivery.attempts += 1;
            tree.insert(key, serde_json::to_vec(&delivery).expect("encode"))
                .expect("insert");
        }
        db.flush().expect("flush");
    }
    start.elapsed()
}

/// The median time per element of a criterion bench of this run, in nanoseconds, read from
/// criterion's estimates (`target/criterion/<group>/<function>/new/estimates.json`).
pub fn criterion_median_ns(group: &str, function: &str) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<bench> -> target/criterion
    let target = exe.parent()?.parent()?.parent()?;
    let path = target
        .join("criterion")
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

/// Prints throughputs of two functions of a group measured in this run and their ratio; each
/// iteration handled `elements` and `ceiling_elements` elements.
pub fn print_ratio(group: &str, engine: (&str, u64), ceiling: (&str, u64)) {
    let rate = |(function, elements): (&str, u64)| {
        criterion_median_ns(group, function).map(|ns| elements as f64 / (ns / 1e9))
    };
    match (rate(engine), rate(ceiling)) {
        (Some(engine_rate), Some(ceiling_rate)) => println!(
            "{group}: {} {:.0}/s, {} {:.0}/s, ratio {:.2}",
            engine.0,
            engine_rate,
            ceiling.0,
            ceiling_rate,
            engine_rate / ceiling_rate
        ),
        _ => println!("{group}: estimates not found (run without a filter to get the ratio)"),
    }
}
