//! Three `io-server` processes on one PostgreSQL database, one of them killed with SIGKILL in
//! the middle of the load and started again: every acknowledged message ends with a final
//! status, and every delivery reaches its sink — a real SMTP server (aiosmtpd) for email, a
//! loopback FCM HTTP v1 peer for push, both counting by delivery id — with every repeated
//! provider contact accounted for by the journal (`OutcomeUnknown`) and by `attempts`.
//!
//! The processes share the database (a schema of this test's own, dropped at the end) and
//! one data directory (the secrets: API keys derived by one process authenticate at the
//! others). `IO_MULTI_NODE_MESSAGES` sets the load (default 20,000).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use io_core::{
    ChannelKind, DeliveryState, EmailAddress, FiscalCode, Installation, InstallationId,
    JournalEvent, MessageId, MessageStatus, Profile, PushPlatform, Store, Timestamp,
};
use io_store::PostgresStore;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const ADMIN_TOKEN: &str = "multi-node-admin-token";
const CITIZENS: u32 = 200;
const PROCESSES: usize = 3;

fn messages_to_send() -> usize {
    std::env::var("IO_MULTI_NODE_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// How long the test waits for every delivery (`IO_MULTI_NODE_DRAIN_SECS`, default 600).
fn drain_limit() -> Duration {
    Duration::from_secs(
        std::env::var("IO_MULTI_NODE_DRAIN_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(600),
    )
}

fn database_url() -> String {
    std::env::var("IO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| io_store::postgres_store::TEST_DATABASE_URL.to_string())
}

/// The `n`-th generated valid fiscal code.
fn citizen(n: u32) -> FiscalCode {
    let digits = format!("{:03}", n % 1000);
    let first15 = format!("RSSMRA{}A01H50{}", &digits[..2], &digits[2..]);
    let check = io_core::fiscal_code::compute_check_character(&first15).unwrap();
    FiscalCode::parse(&format!("{first15}{check}")).unwrap()
}

/// A profile with a validated email and the inbox on (LEGACY: every channel allowed).
fn profile(fiscal_code: &FiscalCode) -> Profile {
    let mut profile = support::profile(fiscal_code.as_str());
    let address = format!("{}@example.it", fiscal_code.as_str().to_ascii_lowercase());
    profile.email = Some(EmailAddress::parse(&address).unwrap());
    profile.is_email_validated = true;
    profile.is_email_enabled = true;
    // IO's name for "push notifications on".
    profile.is_webhook_enabled = true;
    profile
}

/// What the FCM peer received: sends per message id (one device per citizen, so one per
/// push delivery).
#[derive(Default)]
struct FcmSeen {
    sends: Mutex<BTreeMap<String, usize>>,
}

async fn fcm_token() -> Json<Value> {
    Json(json!({"access_token": "multi-node-token", "expires_in": 3600, "token_type": "Bearer"}))
}

async fn fcm_send(State(seen): State<Arc<FcmSeen>>, Json(body): Json<Value>) -> Json<Value> {
    let message_id = body["message"]["data"]["message_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    *seen
        .sends
        .lock()
        .unwrap()
        .entry(message_id.clone())
        .or_insert(0) += 1;
    Json(json!({ "name": format!("projects/io-test/messages/{message_id}") }))
}

/// A loopback FCM HTTP v1 peer (token endpoint and send endpoint); its base URL.
async fn start_fcm_peer(seen: Arc<FcmSeen>) -> String {
    let router = axum::Router::new()
        .route("/token", post(fcm_token))
        .route("/v1/projects/io-test/messages:send", post(fcm_send))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// aiosmtpd writing every message to `dir`; its port.
async fn start_smtp_sink(dir: &Path) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../io-channels/tests/support/smtp_peer.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(dir)
        // The peer runs until its stdin closes: kept open by the returned child.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with aiosmtpd (installed by .ci/run)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("aiosmtpd starts")
        .unwrap();
    assert_eq!(ready.as_deref(), Some("READY"));
    // Keep reading: a closed pipe would end the peer at its next line of output.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

/// Email Message-IDs are `<delivery uuid@domain>`: sends per delivery id.
fn emails_by_delivery(dir: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "eml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: <"))
                .and_then(|rest| rest.split('@').next())
                .unwrap_or_else(|| panic!("no Message-ID in {}", path.display()))
                .to_string();
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    counts
}

fn config_file(dir: &Path, schema: &str, smtp_port: u16, fcm_base: &str) -> PathBuf {
    let key = include_str!("../../io-channels/tests/fixtures/fcm-test-service-account-key.pem");
    let account = json!({
        "type": "service_account",
        "project_id": "io-test",
        "private_key_id": "0123",
        "private_key": key,
        "client_email": "io-sender@io-test.iam.gserviceaccount.com",
        "token_uri": format!("{fcm_base}/token"),
    });
    let text = format!(
        r#"listen = "127.0.0.1:0"
data = "{data}"
admin_token = "{ADMIN_TOKEN}"
workers = 1

[rate_limit]
default = "unlimited"

[engine]
lease = {{ secs = 30, nanos = 0 }}
send_timeout = {{ secs = 10, nanos = 0 }}
idle_poll = {{ secs = 1, nanos = 0 }}

[store]
kind = "postgres"
url = "{url}"
schema = "{schema}"
max_connections = 8
processes = {PROCESSES}

[channels.email]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
from = "IO <no-reply@io.example.it>"
hello_name = "io.test"

[channels.fcm]
base_url = "{fcm_base}"
service_account_json = '''{account}'''
"#,
        data = dir.join("data").display(),
        url = database_url(),
    );
    let path = dir.join("io.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `io-server serve` process and its base URL.
struct Node {
    child: Child,
    base: String,
}

async fn start_node(config: &Path, log: &Path) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_io-server"))
        .args(["serve", "--config"])
        .arg(config)
        .env("IO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the server prints its address");
            if let Some(base) = line.strip_prefix("io-server listening on ") {
                return base.trim().to_string();
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "io-server did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    // Keep reading stdout so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Node { child, base }
}

/// One message submitted until a node acknowledges it (the same idempotency key at every
/// try, so a retry after a lost answer is not a second message); its id.
async fn submit(
    client: &reqwest::Client,
    bases: &Mutex<Vec<String>>,
    key: &str,
    n: usize,
) -> MessageId {
    let fiscal_code = citizen(n as u32 % CITIZENS);
    let body = json!({
        "content": {
            "subject": format!("Avviso di pagamento numero {n}"),
            "markdown": "Gentile contribuente, le comunichiamo che è disponibile l'avviso di pagamento della tassa sui rifiuti per l'anno in corso.",
        }
    });
    for attempt in 0..200 {
        let base = {
            let bases = bases.lock().unwrap();
            bases[(n + attempt) % bases.len()].clone()
        };
        let answer = client
            .post(format!("{base}/api/v1/messages/{}", fiscal_code.as_str()))
            .header("Ocp-Apim-Subscription-Key", key)
            .header("Idempotency-Key", format!("multi-node-{n}"))
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => {
                let body: Value = response.json().await.unwrap();
                return body["id"].as_str().unwrap().parse::<MessageId>().unwrap();
            }
            Ok(response) if response.status().is_server_error() || response.status() == 429 => {}
            Ok(response) => panic!(
                "message {n}: {} {}",
                response.status(),
                response.text().await.unwrap()
            ),
            // The node was killed: another one takes the message.
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("message {n} was never acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_one_database_survive_a_sigkill_and_deliver_everything() {
    let started = Instant::now();
    let total = messages_to_send();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let store = PostgresStore::temporary(&database_url())
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (started by .ci/run)");
    let schema = store.temporary_schema().unwrap().to_string();

    let sink = dir.path().join("smtp");
    std::fs::create_dir(&sink).unwrap();
    let (_smtp, smtp_port) = start_smtp_sink(&sink).await;
    let fcm = Arc::new(FcmSeen::default());
    let fcm_base = start_fcm_peer(fcm.clone()).await;
    let config = config_file(dir.path(), &schema, smtp_port, &fcm_base);

    // The citizens: a validated email and one Android device each.
    for n in 0..CITIZENS {
        let fiscal_code = citizen(n);
        store.put_profile(&profile(&fiscal_code)).await.unwrap();
        let installation = Installation {
            installation_id: InstallationId::parse(&format!("device-{n}")).unwrap(),
            platform: PushPlatform::Fcmv1,
            push_channel: format!("fcm-token-{n}"),
            updated_at: Timestamp::from_millis(1_767_225_600_000),
        };
        store
            .put_installation(&fiscal_code, &installation)
            .await
            .unwrap();
    }

    let mut nodes = Vec::new();
    for i in 0..PROCESSES {
        nodes.push(start_node(&config, &dir.path().join(format!("node-{i}.log"))).await);
    }
    io_channels::install_default_crypto_provider();
    let client = reqwest::Client::new();
    let service: Value = client
        .post(format!("{}/adm/services", nodes[0].base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "service_name": "Tassa rifiuti", "department_name": "Tributi",
            "organization_name": "Comune di Roma", "organization_fiscal_code": support::ORGANIZATION,
            "max_allowed_payment_amount": 100000, "groups": ["ApiMessageWrite"],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let service_id = service["service_id"].as_str().unwrap().to_string();
    let keys: Value = client
        .get(format!("{}/adm/services/{service_id}/keys", nodes[1].base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = keys["primary_key"].as_str().unwrap().to_string();

    // The load: 32 submitters spread over the nodes; node 1 is killed at 40 % and started
    // again at 60 %.
    let bases = Arc::new(Mutex::new(
        nodes.iter().map(|n| n.base.clone()).collect::<Vec<_>>(),
    ));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let mut submitters = Vec::new();
    for _ in 0..32 {
        let (client, bases, next, acknowledged, key) = (
            client.clone(),
            bases.clone(),
            next.clone(),
            acknowledged.clone(),
            key.clone(),
        );
        submitters.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    return;
                }
                let id = submit(&client, &bases, &key, n).await;
                acknowledged.lock().unwrap().insert(id);
            }
        }));
    }
    let progress = |share: f64| {
        let next = next.clone();
        async move {
            while (next.load(std::sync::atomic::Ordering::Relaxed) as f64) < total as f64 * share {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    progress(0.4).await;
    nodes[1].child.start_kill().unwrap(); // SIGKILL
    nodes[1].child.wait().await.unwrap();
    let killed_at = next.load(std::sync::atomic::Ordering::Relaxed);
    progress(0.6).await;
    nodes[1] = start_node(&config, &dir.path().join("node-1-restarted.log")).await;
    bases.lock().unwrap()[1] = nodes[1].base.clone();
    for submitter in submitters {
        submitter.await.unwrap();
    }
    let submitted_in = started.elapsed();
    let acknowledged: Vec<MessageId> = acknowledged.lock().unwrap().iter().copied().collect();
    assert_eq!(acknowledged.len(), total, "every message acknowledged once");

    // Every delivery final: a dead node's leases run out (30 s) and the others take over.
    let deadline = Instant::now() + drain_limit();
    loop {
        let open = store.backlog().await.unwrap();
        if open == 0 {
            break;
        }
        if Instant::now() > deadline {
            let mut logs = String::new();
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(20).collect();
                    logs += &format!("\n--- {}\n{}", path.display(), tail.join("\n"));
                }
            }
            let sample = store.deliveries(&acknowledged[0]).await.unwrap();
            panic!(
                "{open} tasks still queued at the deadline; a message's deliveries: {sample:#?}\nthe nodes' logs:{logs}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drained_in = started.elapsed();

    let emails = emails_by_delivery(&sink);
    let pushes = fcm.sends.lock().unwrap().clone();
    let mut repeated = 0;
    let mut unknown_outcomes = 0;
    for id in &acknowledged {
        let stored = store
            .message(id)
            .await
            .unwrap()
            .expect("acknowledged message stored");
        assert_eq!(stored.status, MessageStatus::Processed, "{id}");
        let deliveries = store.deliveries(id).await.unwrap();
        let channels: Vec<ChannelKind> = deliveries.iter().map(|d| d.id.channel).collect();
        assert_eq!(
            channels,
            vec![ChannelKind::Inbox, ChannelKind::Email, ChannelKind::Push],
            "{id}"
        );
        let journal = store.journal(id).await.unwrap();
        let entries = io_core::journal::verify_stored(&journal.entries, journal.head.as_ref())
            .unwrap_or_else(|e| panic!("{id}: journal does not verify: {e}"));
        for delivery in &deliveries {
            assert_eq!(delivery.state, DeliveryState::Sent, "{}", delivery.id);
            let contacts = match delivery.id.channel {
                ChannelKind::Email => emails.get(&delivery.id.as_uuid().to_string()).copied(),
                ChannelKind::Push => pushes.get(&id.to_string()).copied(),
                _ => continue,
            }
            .unwrap_or(0);
            assert!(contacts >= 1, "{} never reached its sink", delivery.id);
            // Every provider contact is a counted attempt, and every attempt is journaled:
            // with its outcome, or as unknown when a kill (or a lease lost to a slow round)
            // cut it short. A repeat is one of those, never a silent second send.
            let journaled = |unknown: bool| {
                entries
                    .iter()
                    .filter(|e| match &e.event {
                        JournalEvent::Attempted { channel, .. } => {
                            !unknown && *channel == delivery.id.channel
                        }
                        JournalEvent::OutcomeUnknown { channel, .. } => {
                            *channel == delivery.id.channel
                        }
                        _ => false,
                    })
                    .count()
            };
            let (attempts, unknown) = (journaled(false), journaled(true));
            assert_eq!(
                delivery.attempts as usize, attempts,
                "{}: attempts counted vs journaled",
                delivery.id
            );
            assert!(
                contacts <= attempts,
                "{}: {contacts} contacts, {attempts} attempts journaled",
                delivery.id
            );
            repeated += contacts - 1;
            unknown_outcomes += unknown;
        }
    }
    assert_eq!(emails.len(), total, "distinct emails");
    assert_eq!(pushes.len(), total, "distinct pushes");
    eprintln!(
        "{total} messages over {PROCESSES} processes, node 1 killed after {killed_at} submissions: \
         acknowledged in {:.1} s, all delivered in {:.1} s; {repeated} repeated provider contacts, \
         {unknown_outcomes} outcomes journaled unknown",
        submitted_in.as_secs_f64(),
        drained_in.as_secs_f64()
    );
    for node in &mut nodes {
        node.child.start_kill().ok();
    }
}
