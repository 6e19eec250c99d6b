//! End-to-end tests of the client commands: the real `io-server` binary against a real server
//! on loopback (`support::TestServer`), checked through its output, its exit status, the files
//! it writes and the server's store.

mod support;

use std::process::Stdio;
use std::time::Duration;

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
