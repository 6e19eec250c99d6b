//! End-to-end tests of the client commands: the real `io-server` binary against a real server
//! on loopback (`support::TestServer`), checked through its output, its exit status, the files
//! it writes and the server's store.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use io_core::{FiscalCode, MessageId, Store};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::*;

/// A bound on one run of the binary, so a hang fails the test instead of stalling it.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What a run of the binary did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The value of the first `name: value` line of stdout.
    fn line(&self, name: &str) -> &str {
        let prefix = format!("{name}: ");
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} line in {:?}", self.stdout))
    }
}

/// Runs `io-server args…` with a clean environment for its own variables.
async fn io_server(args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_io-server"));
    command
        .args(args)
        .env_remove("IO_URL")
        .env_remove("IO_ADMIN_TOKEN")
        .env_remove("IO_API_KEY")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .expect("the command finishes")
        .expect("the binary runs");
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs an admin command against `server`.
async fn admin(server: &TestServer, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["--url", &server.base, "--admin-token", ADMIN_TOKEN]);
    io_server(&all).await
}

#[tokio::test]
async fn service_create_then_keys_list_show_and_regenerate() {
    let server = TestServer::start().await;
    let created = admin(
        &server,
        &[
            "service",
            "create",
            "--name",
            "Tassa rifiuti",
            "--department",
            "Tributi",
            "--organization",
            "Comune di Roma",
            "--organization-fiscal-code",
            ORGANIZATION,
            "--group",
            "ApiMessageWrite",
            "--group",
            "ApiMessageRead",
        ],
    )
    .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let id = created.line("service_id").to_string();
    let primary = created.line("primary_key").to_string();
    let secondary = created.line("secondary_key").to_string();
    assert_ne!(primary, secondary);

    let keys = admin(&server, &["service", "keys", &id]).await;
    assert_eq!(keys.code, 0, "{}", keys.stderr);
    assert_eq!(keys.line("primary_key"), primary);
    assert_eq!(keys.line("secondary_key"), secondary);

    // The printed key is the service's: it sends a message.
    server.put_profile(CITIZEN).await;
    let response = server
        .api(Method::POST, &format!("/messages/{CITIZEN}"), &primary)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let regenerated = admin(
        &server,
        &["service", "keys", &id, "--regenerate", "secondary"],
    )
    .await;
    assert_eq!(regenerated.code, 0, "{}", regenerated.stderr);
    assert_eq!(regenerated.line("primary_key"), primary);
    assert_ne!(regenerated.line("secondary_key"), secondary);

    let list = admin(&server, &["service", "list"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    let line = list
        .stdout
        .lines()
        .find(|line| line.starts_with(&id))
        .unwrap();
    assert!(
        line.contains("Tassa rifiuti") && line.contains("ApiMessageWrite,ApiMessageRead"),
        "{line}"
    );

    let show = admin(&server, &["service", "show", &id]).await;
    assert_eq!(show.code, 0, "{}", show.stderr);
    let shown: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(shown["service_name"], "Tassa rifiuti");
    assert_eq!(shown["organization_fiscal_code"], ORGANIZATION);

    // A refusal of the server is a failure (1); refused credentials are a setup error (2).
    let unknown = admin(&server, &["service", "show", "no-such-service"]).await;
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("404"), "{}", unknown.stderr);
    let wrong_token = io_server(&[
        "service",
        "list",
        "--url",
        &server.base,
        "--admin-token",
        "wrong",
    ])
    .await;
    assert_eq!(wrong_token.code, 2);
    assert!(wrong_token.stderr.contains("401"), "{}", wrong_token.stderr);
    let incomplete = admin(&server, &["service", "create", "--name", "Tassa rifiuti"]).await;
    assert_eq!(incomplete.code, 2);
    assert!(incomplete.stderr.contains("--department is required"));
    server.stop().await;
}

#[tokio::test]
async fn token_citizen_prints_a_working_token() {
    let server = TestServer::start().await;
    server.put_profile(CITIZEN).await;
    let run = admin(&server, &["token", "citizen", "--fiscal-code", CITIZEN]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run.stdout.trim();
    assert_eq!(run.stdout.lines().count(), 1);
    let response = server
        .citizen(Method::GET, "/profile", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let invalid = admin(
        &server,
        &["token", "citizen", "--fiscal-code", "RSSMRA85T10A562X"],
    )
    .await;
    assert_eq!(invalid.code, 2, "a bad fiscal code is a usage error");
    server.stop().await;
}

/// The `i`-th of a family of valid fiscal codes.
fn fiscal_code(i: usize) -> String {
    let first15 = format!("RSSMRA85T10A{:03}", 100 + i);
    let check = io_core::fiscal_code::compute_check_character(&first15).unwrap();
    format!("{first15}{check}")
}

/// A markdown body long enough for the rules (80+ characters).
fn markdown(i: usize) -> String {
    format!(
        "Gentile contribuente, è disponibile l'avviso numero {i} della tassa sui rifiuti per \
         l'anno in corso."
    )
}

/// Writes the CSV of the bulk test: 20 rows, row 5 with a quoted markdown holding a comma, a
/// newline and quotes, row 7 with a bad fiscal code, row 12 with a too-short subject, some
/// rows with due date and payment. Returns the valid rows' fiscal codes by row.
fn write_csv(path: &Path) -> BTreeMap<u64, String> {
    let mut writer = csv::Writer::from_path(path).unwrap();
    writer
        .write_record([
            "fiscal_code",
            "subject",
            "markdown",
            "due_date",
            "amount",
            "notice_number",
        ])
        .unwrap();
    let mut valid = BTreeMap::new();
    for row in 1..=20usize {
        let code = match row {
            7 => "RSSMRA85T10A562X".to_string(),
            _ => fiscal_code(row),
        };
        let subject = match row {
            12 => "Breve".to_string(),
            _ => format!("Avviso di pagamento TARI n. {row}"),
        };
        let body = match row {
            5 => format!(
                "Prima riga, con una virgola\nseconda riga \"citata\"\n{}",
                markdown(row)
            ),
            _ => markdown(row),
        };
        let (due_date, amount, notice) = match row % 3 {
            0 => ("2030-01-31T00:00:00Z", "12050", format!("0{:017}", row)),
            _ => ("", "", String::new()),
        };
        writer
            .write_record([code.as_str(), &subject, &body, due_date, amount, &notice])
            .unwrap();
        if row != 7 && row != 12 {
            valid.insert(row as u64, code);
        }
    }
    writer.flush().unwrap();
    valid
}

/// The results file: row → (status, id, error).
fn read_results(path: &Path) -> BTreeMap<u64, (String, String, String)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec!["row", "fiscal_code", "status", "id", "error"]
    );
    let mut rows = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        let row = record[0].parse().unwrap();
        let previous = rows.insert(
            row,
            (
                record[2].to_string(),
                record[3].to_string(),
                record[4].to_string(),
            ),
        );
        assert!(previous.is_none(), "row {row} listed twice");
    }
    rows
}

/// How many messages the store holds for each of `codes` (every accepted message, processed
/// or not).
async fn messages_per_citizen(server: &TestServer, codes: &BTreeMap<u64, String>) -> Vec<usize> {
    let mut counts = Vec::new();
    for code in codes.values() {
        let code = FiscalCode::parse(code).unwrap();
        counts.push(
            server
                .app
                .store
                .messages_to(&code, None, 100)
                .await
                .unwrap()
                .len(),
        );
    }
    counts
}

#[tokio::test]
async fn send_is_resumable_and_never_duplicates_a_message() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(&["ApiMessageWrite"]).await;
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("tari.csv");
    let valid = write_csv(&csv_path);
    for code in valid.values() {
        server.put_profile(code).await;
    }
    let results_path = dir.path().join("tari.csv.results.csv");
    let csv_arg = csv_path.to_str().unwrap();
    let send = [
        "send",
        "--url",
        &server.base,
        "--key",
        &key,
        "--csv",
        csv_arg,
        "--concurrency",
        "4",
    ];

    // First run: 18 created, 2 failed with the reason, exit status 1.
    let first = io_server(&send).await;
    assert_eq!(first.code, 1, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first
            .stdout
            .contains("created: 18 (0 replayed), failed: 2, skipped: 0"),
        "{}",
        first.stdout
    );
    let results = read_results(&results_path);
    assert_eq!(results.len(), 20);
    let ids: BTreeMap<u64, String> = results
        .iter()
        .filter(|(_, (status, _, _))| status == "created")
        .map(|(row, (_, id, _))| (*row, id.clone()))
        .collect();
    assert_eq!(
        ids.keys().copied().collect::<Vec<_>>(),
        valid.keys().copied().collect::<Vec<_>>()
    );
    let (status, id, error) = &results[&7];
    assert_eq!((status.as_str(), id.as_str()), ("failed", ""));
    assert!(error.starts_with("fiscal_code: "), "{error}");
    let (status, _, error) = &results[&12];
    assert_eq!(status, "failed");
    assert!(error.contains("content.subject"), "{error}");

    // The quoted cell arrived whole; the payment and due date too.
    let quoted = server
        .app
        .store
        .message(&ids[&5].parse::<MessageId>().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        quoted
            .message
            .body
            .content
            .markdown
            .starts_with("Prima riga, con una virgola\nseconda riga \"citata\"\n")
    );
    let paid = server
        .app
        .store
        .message(&ids[&3].parse::<MessageId>().unwrap())
        .await
        .unwrap()
        .unwrap();
    let payment = paid.message.body.content.payment_data.as_ref().unwrap();
    assert_eq!(payment.amount, 12050);
    assert!(paid.message.body.content.due_date.is_some());

    server.drain().await;
    let mut in_inboxes = 0;
    for code in valid.values() {
        let code = FiscalCode::parse(code).unwrap();
        in_inboxes += server
            .app
            .store
            .inbox(&code, None, 100)
            .await
            .unwrap()
            .len();
    }
    assert_eq!(in_inboxes, 18);
    assert_eq!(messages_per_citizen(&server, &valid).await, vec![1; 18]);

    // The same command again: the 18 are skipped without a request, the 2 fail again.
    let second = io_server(&send).await;
    assert_eq!(second.code, 1, "{}\n{}", second.stdout, second.stderr);
    assert!(
        second
            .stdout
            .contains("created: 0 (0 replayed), failed: 2, skipped: 18"),
        "{}",
        second.stdout
    );
    let results = read_results(&results_path);
    assert_eq!(results.len(), 20);
    for (row, id) in &ids {
        assert_eq!(&results[row].1, id, "row {row}");
    }
    assert_eq!(messages_per_citizen(&server, &valid).await, vec![1; 18]);

    // Half of the results lost (as if the run had been killed): those rows are sent again,
    // with the same idempotency keys, and the server answers the same ids.
    let text = std::fs::read_to_string(&results_path).unwrap();
    let kept: Vec<&str> = text.lines().take(1 + 10).collect();
    let forgotten_created = text
        .lines()
        .skip(1 + 10)
        .filter(|line| line.contains(",created,"))
        .count();
    assert!(forgotten_created > 0);
    std::fs::write(&results_path, kept.join("\n") + "\n").unwrap();
    let resumed = io_server(&send).await;
    assert_eq!(resumed.code, 1, "{}\n{}", resumed.stdout, resumed.stderr);
    assert!(
        resumed.stdout.contains(&format!(
            "created: {forgotten_created} ({forgotten_created} replayed), failed: 2, skipped: {}",
            18 - forgotten_created
        )),
        "{}",
        resumed.stdout
    );
    let results = read_results(&results_path);
    assert_eq!(results.len(), 20);
    for (row, id) in &ids {
        assert_eq!(
            &results[row],
            &("created".into(), id.clone(), String::new()),
            "row {row}"
        );
    }
    server.drain().await;
    assert_eq!(messages_per_citizen(&server, &valid).await, vec![1; 18]);
    server.stop().await;
}

#[tokio::test]
async fn send_stops_with_status_2_on_setup_errors() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("one.csv");
    std::fs::write(
        &csv_path,
        format!(
            "fiscal_code,subject,markdown\n{CITIZEN},Avviso di pagamento TARI,\"{}\"\n",
            markdown(1)
        ),
    )
    .unwrap();
    let csv_arg = csv_path.to_str().unwrap();

    let refused = io_server(&[
        "send",
        "--url",
        &server.base,
        "--key",
        "wrong",
        "--csv",
        csv_arg,
    ])
    .await;
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("refused the key"),
        "{}",
        refused.stderr
    );

    let bad_header = dir.path().join("bad.csv");
    std::fs::write(&bad_header, "fiscal_code,subjet,markdown\n").unwrap();
    let run = io_server(&[
        "send",
        "--url",
        &server.base,
        "--key",
        "k",
        "--csv",
        bad_header.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unknown column \"subjet\""),
        "{}",
        run.stderr
    );

    let missing = dir.path().join("missing.csv");
    let run = io_server(&[
        "send",
        "--url",
        &server.base,
        "--key",
        "k",
        "--csv",
        missing.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, 2);

    let base = server.base.clone();
    server.stop().await;
    let down = io_server(&["send", "--url", &base, "--key", "k", "--csv", csv_arg]).await;
    assert_eq!(down.code, 2, "{}", down.stderr);
    assert!(
        down.stderr.contains("cannot reach the server"),
        "{}",
        down.stderr
    );
}

#[tokio::test]
async fn journal_verify_reports_a_verified_journal_and_an_unknown_message() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(&["ApiMessageWrite"]).await;
    server.put_profile(CITIZEN).await;
    let response = server
        .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.drain().await;

    let run = admin(&server, &["journal", "verify", "--message", &id]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.line("message"), id);
    assert_eq!(run.line("status"), "PROCESSED");
    assert!(
        run.line("journal").starts_with("verified, "),
        "{}",
        run.stdout
    );
    assert!(!run.line("head").is_empty());

    let unknown = ulid::Ulid::from_parts(1, 1).to_string();
    let run = admin(&server, &["journal", "verify", "--message", &unknown]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!("no message {unknown}")),
        "{}",
        run.stderr
    );
    server.stop().await;
}

/// A TLS-terminating proxy on loopback in front of `server`, presenting a certificate for
/// `localhost` that a test authority signed (an institution's private CA); the authority's
/// PEM and the proxy's port.
async fn tls_proxy(server: &TestServer) -> (String, u16) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Comune di Esempio, CA interna");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (ca.pem(), port)
}

/// The client commands reach a server over https: trusted through `--ca-cert` when a private
/// authority signed its certificate; without it the system's authorities do not know that
/// one, and the command stops with exit status 2 saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_reach_a_server_over_https_trusting_the_given_authority() {
    let server = TestServer::start().await;
    let (ca_pem, port) = tls_proxy(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let ca = ca.to_str().unwrap();
    let url = format!("https://localhost:{port}");
    let (_, _) = server.create_service(ALL_GROUPS).await;

    let list = |extra: &[&str]| {
        let mut args = vec![
            "service",
            "list",
            "--url",
            &url,
            "--admin-token",
            ADMIN_TOKEN,
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run_list = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        io_server(&args).await
    };
    let untrusted = run_list(list(&[])).await;
    assert_eq!(untrusted.code, 2, "{}", untrusted.stdout);
    assert!(
        untrusted.stderr.contains("no answer from") && untrusted.stderr.contains("certificate"),
        "{}",
        untrusted.stderr
    );
    let run = run_list(list(&["--ca-cert", ca])).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.trim().is_empty(), "{}", run.stdout);

    // The authority's file must hold one: a clear setup error otherwise.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let run = run_list(list(&["--ca-cert", empty.to_str().unwrap()])).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("--ca-cert"), "{}", run.stderr);
    server.stop().await;
}
