//! Shared fixtures of io's benchmarks: a service, citizens reachable on every channel, no-op
//! channels, and the raw sled ceiling the engine is compared with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use io_core::{
    Channel, ChannelKind, DeliveryJob, EmailAddress, FiscalCode, Installation, InstallationId,
    NewMessage, NewMessageContent, OrganizationFiscalCode, Outcome, Profile, PushPlatform,
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

/// Seeds the service and 1000 citizens with a validated email and one device, so that every
/// message fans out to inbox, email and push.
pub async fn seed(store: &impl Store) {
    store.put_service(&service()).await.expect("seed service");
    for n in 0..1000 {
        let fiscal_code = citizen(n);
        let mut profile = Profile::new(fiscal_code.clone());
        profile.email = Some(EmailAddress::parse("cittadino@example.it").expect("valid"));
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
}

/// A channel that accepts everything at once: the benchmarks measure the engine and the store.
pub struct NoopChannel(pub ChannelKind);

#[async_trait::async_trait]
impl Channel for NoopChannel {
    fn kind(&self) -> ChannelKind {
        self.0
    }
    async fn send(&self, _job: DeliveryJob<'_>) -> Outcome {
        Outcome::Delivered { provider_ref: None }
    }
}

/// No-op channels for every kind.
pub fn noop_channels() -> Vec<Arc<dyn Channel>> {
    ChannelKind::ALL
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
