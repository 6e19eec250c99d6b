//! PEC end to end: a message with legal value submitted over HTTP reaches the provider
//! simulator over SMTP, its receipts arrive in the sender's mailbox on a real IMAP server
//! (pymap on loopback) and are read by the server's mailbox reader; the delivery ends SENT at
//! the legal time its delivery receipt certifies (or FAILED, as the receipts say); the
//! exported evidence bundle verifies offline, and one byte changed in a receipt makes it fail.

mod support;

use std::process::Stdio;
use std::time::Duration;

use io_channels::email::{EmailConfig, SmtpSecurity};
use io_channels::pec::mailbox::ImapSecurity;
use io_channels::{MailboxConfig, PecConfig, TrustedRoots};
use io_core::Store;
use io_server::config::PecSection;
use pec_simulator::{Config as SimulatorConfig, Simulator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

const MAILBOX: &str = "protocollo@pec.comune.example.it";
const PASSWORD: &str = "imap-e-smtp";

/// pymap on loopback holding the sender's mailbox; stops when dropped.
struct Pymap {
    port: u16,
    _child: tokio::process::Child,
}

async fn pymap() -> Pymap {
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let child = tokio::process::Command::new("pymap")
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--no-tls",
        ])
        .args(["dict", "--demo-user", MAILBOX, "--demo-password", PASSWORD])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("pymap must be installed: `pip install pymap==0.36.7` (.ci/run installs it)");
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Pymap {
                port,
                _child: child,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("pymap did not listen within 15 s");
}

/// The number of messages in `folder` of the sender's mailbox.
async fn count(imap: &Pymap, folder: &str) -> u32 {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", imap.port))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap();
    let mut session = client
        .login(MAILBOX, PASSWORD)
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let exists = match session.select(folder).await {
        Ok(mailbox) => mailbox.exists,
        Err(_) => 0,
    };
    session.logout().await.unwrap();
    exists
}

/// A simulator appending receipts to `imap`.
async fn simulator(imap: &Pymap) -> Simulator {
    Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        SimulatorConfig {
            imap: format!("127.0.0.1:{}", imap.port).parse().unwrap(),
            user: MAILBOX.into(),
            password: PASSWORD.into(),
            provider_domain: "pec.gestore.example".into(),
        },
    )
    .await
    .unwrap()
}

/// A server with one worker and PEC through `simulator` and `imap`.
async fn server(simulator: &Simulator, imap: &Pymap) -> TestServer {
    TestServer::start_with(pec_config(simulator, imap, "INBOX", "io-receipts")).await
}

/// The configuration of [`server`], its receipt reader reading `inbox` and moving what it
/// recorded to `processed`.
fn pec_config(
    simulator: &Simulator,
    imap: &Pymap,
    inbox: &str,
    processed: &str,
) -> io_server::ServerConfig {
    let mut config = test_config();
    config.workers = 1;
    config.engine.idle_poll = Duration::from_millis(50);
    config.channels.pec = Some(PecSection {
        submission: PecConfig {
            smtp: EmailConfig {
                host: "127.0.0.1".into(),
                port: Some(simulator.smtp.port()),
                security: SmtpSecurity::Plain,
                username: Some(MAILBOX.into()),
                password: Some(PASSWORD.into()),
                from: format!("Comune di Esempio <{MAILBOX}>"),
                hello_name: Some("io.test".into()),
                roots: TrustedRoots::default(),
                timeout: Duration::from_secs(5),
                pool_size: 1,
                limit: None,
            },
            message_id_domain: None,
        },
        mailbox: MailboxConfig {
            host: "127.0.0.1".into(),
            port: Some(imap.port),
            security: ImapSecurity::Plain,
            username: MAILBOX.into(),
            password: PASSWORD.into(),
            inbox: inbox.into(),
            processed: processed.into(),
            other: "io-other".into(),
            roots: TrustedRoots::default(),
            provider_certificates: vec![simulator.certificate_pem().to_owned()],
            poll: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
        },
    });
    config
}

/// A citizen with a profile and the digital domicile `domicile`.
async fn citizen_with_domicile(server: &TestServer, fiscal_code: &str, domicile: &str) {
    server.put_profile(fiscal_code).await;
    let response = server
        .admin(
            Method::PUT,
            &format!("/adm/profiles/{fiscal_code}/digital-domicile"),
        )
        .json(&json!({ "digital_domicile": domicile }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Sends a message with legal value; its id.
async fn send_legal(server: &TestServer, key: &str, fiscal_code: &str) -> String {
    let mut body = message_body();
    body["legal_value"] = json!(true);
    let response = server
        .api(Method::POST, &format!("/messages/{fiscal_code}"), key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Shows the server's and the simulator's logs with a failing test's output (the test
/// harness captures them), so a delivery that does not end says why.
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,io_channels=debug,pec_simulator=debug",
        ))
        .with_test_writer()
        .try_init();
}

/// The PEC delivery of a message once it is final. The bound only stops a hung test (a pass
/// takes well under a second); on time-out the delivery, its journal and the mailbox's folders
/// are printed.
async fn final_pec_delivery(server: &TestServer, key: &str, fiscal_code: &str, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..1200 {
        let shown: Value = server
            .api(Method::GET, &format!("/messages/{fiscal_code}/{id}"), key)
            .fetch_json()
            .await;
        let pec = shown["deliveries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["channel"] == "pec")
            .cloned();
        if let Some(pec) = &pec
            && matches!(pec["status"].as_str(), Some("SENT" | "FAILED"))
        {
            return pec.clone();
        }
        last = shown;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let journal = server
        .app
        .engine
        .verify_journal(&id.parse().unwrap())
        .await
        .map(|entries| {
            entries
                .iter()
                .map(|entry| format!("{:?}", entry.event))
                .collect::<Vec<_>>()
        });
    panic!(
        "the PEC delivery of {id} did not end within 60 s\nmessage: {last:#}\njournal: {journal:#?}"
    );
}

/// Runs `io-server args…`; exit code and stdout.
async fn io_server(args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_io-server"))
        .args(args)
        .env_remove("IO_URL")
        .env_remove("IO_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_message_is_delivered_by_pec_and_its_evidence_verifies_offline() {
    logs();
    let imap = pymap().await;
    let simulator = simulator(&imap).await;
    let server = server(&simulator, &imap).await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let citizen = "RSSMRA85T10A562S";
    citizen_with_domicile(&server, citizen, "mario.rossi@pec.example.it").await;
    let id = send_legal(&server, &key, citizen).await;

    let pec = final_pec_delivery(&server, &key, citizen, &id).await;
    assert_eq!(pec["status"], "SENT", "{pec}");
    let legal_time = pec["legal_delivery_at"]
        .as_str()
        .expect("a legal delivery time");
    io_core::Timestamp::parse_rfc3339(legal_time).unwrap();

    // The bundle, exported through the admin API and verified with nothing but its files.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let bundle_path = bundle.to_str().unwrap();
    let (code, out) = io_server(&[
        "evidence",
        "export",
        "--message",
        &id,
        "--out",
        bundle_path,
        "--url",
        &server.base,
        "--admin-token",
        ADMIN_TOKEN,
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("receipts: 2"), "{out}");
    let (code, out) = io_server(&["evidence", "verify", bundle_path]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("receipt: accettazione"), "{out}");
    assert!(out.contains("receipt: avvenuta-consegna"), "{out}");
    assert!(out.contains("evidence: verified"), "{out}");
    let head = out
        .lines()
        .find_map(|line| line.strip_prefix("head: "))
        .unwrap()
        .to_owned();
    let (code, _) = io_server(&["evidence", "verify", bundle_path, "--head", &head]).await;
    assert_eq!(code, 0);
    // The providers' signatures, checked offline too: with the simulator's certificate they
    // verify; with another provider's they do not.
    let certificate = dir.path().join("provider.pem");
    std::fs::write(&certificate, simulator.certificate_pem()).unwrap();
    let certificate = certificate.to_str().unwrap();
    let (code, out) = io_server(&[
        "evidence",
        "verify",
        bundle_path,
        "--provider-certificates",
        certificate,
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("signed by CN=Posta certificata"), "{out}");
    let stranger = dir.path().join("stranger.pem");
    let other = io_channels::pec::compose::Signer::generate("Altro").unwrap();
    std::fs::write(&stranger, other.certificate_pem()).unwrap();
    let (code, out) = io_server(&[
        "evidence",
        "verify",
        bundle_path,
        "--provider-certificates",
        stranger.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 1, "{out}");
    let (code, out) =
        io_server(&["evidence", "verify", bundle_path, "--head", &"0".repeat(64)]).await;
    assert_eq!(code, 1, "{out}");

    // One byte of one receipt changed: the bundle no longer verifies.
    let receipt = std::fs::read_dir(bundle.join("receipts"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&receipt).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    std::fs::write(&receipt, &bytes).unwrap();
    let (code, out) = io_server(&["evidence", "verify", bundle_path]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("NOT verified") && out.contains("altered"),
        "{out}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_error_receipt_fails_the_delivery_with_the_provider_s_reason() {
    logs();
    let imap = pymap().await;
    let simulator = simulator(&imap).await;
    let server = server(&simulator, &imap).await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let citizen = "RSSMRA85T10A562S";
    citizen_with_domicile(&server, citizen, "errore-consegna@pec.example.it").await;
    let id = send_legal(&server, &key, citizen).await;
    let pec = final_pec_delivery(&server, &key, citizen, &id).await;
    assert_eq!(pec["status"], "FAILED", "{pec}");
    let reason = pec["failure_reason"].as_str().unwrap();
    assert!(reason.starts_with("pec_delivery_error: 5.1.1"), "{reason}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_submission_and_receipts_loses_nothing_and_counts_nothing_twice() {
    logs();
    let imap = pymap().await;
    let simulator = simulator(&imap).await;
    // First run: the reader watches a folder the receipts never reach, so they wait in the
    // inbox while the server stops.
    let first =
        TestServer::start_with(pec_config(&simulator, &imap, "io-held", "io-receipts")).await;
    let (_, key) = first.create_service(ALL_GROUPS).await;
    let citizen = "RSSMRA85T10A562S";
    citizen_with_domicile(&first, citizen, "mario.rossi@pec.example.it").await;
    let id = send_legal(&first, &key, citizen).await;
    for _ in 0..300 {
        if count(&imap, "INBOX").await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&imap, "INBOX").await, 2, "both receipts arrived");
    let shown: Value = first
        .api(Method::GET, &format!("/messages/{citizen}/{id}"), &key)
        .fetch_json()
        .await;
    let pec = shown["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "pec")
        .unwrap()
        .clone();
    assert_eq!(pec["status"], "SUBMITTED", "{pec}");
    let dir = first.stop_keeping_data().await;

    // Second run on the same data: the receipts are read once, the delivery is SENT.
    let clock: std::sync::Arc<dyn io_core::Clock> = std::sync::Arc::new(io_core::SystemClock);
    let second = TestServer::start_in(
        pec_config(&simulator, &imap, "INBOX", "io-receipts"),
        clock.clone(),
        dir,
    )
    .await;
    let pec = final_pec_delivery(&second, &key, citizen, &id).await;
    assert_eq!(pec["status"], "SENT", "{pec}");
    assert_eq!(pec["attempts"], 1, "not submitted again");
    let dir = second.stop_keeping_data().await;

    // Third run: a reader that died before moving them finds the receipts again; nothing
    // changes and nothing is counted twice.
    let receipts = count(&imap, "io-receipts").await;
    assert_eq!(receipts, 2);
    let third = TestServer::start_in(
        pec_config(&simulator, &imap, "io-receipts", "io-done"),
        clock,
        dir,
    )
    .await;
    let journal = |server: &TestServer| {
        let id = id.parse().unwrap();
        let engine = server.app.engine.clone();
        async move { engine.verify_journal(&id).await.unwrap() }
    };
    for _ in 0..100 {
        if count(&imap, "io-receipts").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&imap, "io-done").await, 2, "read again and moved");
    let entries = journal(&third).await;
    let recorded = entries
        .iter()
        .filter(|entry| matches!(entry.event, io_core::JournalEvent::ReceiptRecorded { .. }))
        .count();
    assert_eq!(recorded, 2, "each receipt once");
    assert_eq!(
        third
            .app
            .store
            .evidence(&id.parse().unwrap())
            .await
            .unwrap()
            .len(),
        2
    );
    third.stop().await;
}
