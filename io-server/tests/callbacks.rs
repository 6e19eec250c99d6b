//! Sender callbacks end to end: a service registers a URL, a loopback receiver checks every
//! `IO-Signature` with the documented algorithm, and sees each status change of each message
//! exactly once, in journal order, even when it fails an answer and io retries.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use io_channels::webhook::{SignatureError, verify_signature};
use io_core::Store;
use reqwest::Method;
use serde_json::{Value, json};
use support::{FetchJson, TestServer, expect_problem, message_body, test_config};

#[derive(Default)]
struct Receiver {
    secret: Mutex<String>,
    /// Every POST: (event id, accepted with 2xx).
    attempts: Mutex<Vec<(String, bool)>>,
    /// Accepted events per message, in arrival order.
    accepted: Mutex<BTreeMap<String, Vec<Value>>>,
    /// Signatures that failed verification.
    bad_signatures: Mutex<usize>,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let secret = receiver.secret.lock().unwrap().clone();
    let signature = headers
        .get("io-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if verify_signature(secret.as_bytes(), signature, &body, now, 300).is_err() {
        *receiver.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    let id = headers["io-event-id"].to_str().unwrap().to_owned();
    assert_eq!(event["id"], id.as_str());
    let mut attempts = receiver.attempts.lock().unwrap();
    // The first delivery.sent event is refused once with a 503: io must retry it.
    let first_try = !attempts.iter().any(|(seen, _)| *seen == id);
    let fail = first_try && event["type"] == "delivery.sent";
    attempts.push((id, !fail));
    if fail {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let message = event["message_id"].as_str().unwrap().to_owned();
    receiver
        .accepted
        .lock()
        .unwrap()
        .entry(message)
        .or_default()
        .push(event);
    StatusCode::NO_CONTENT
}

async fn start_receiver(receiver: Arc<Receiver>) -> String {
    let app = axum::Router::new()
        .route("/callbacks", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/callbacks")
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_sees_every_status_change_once_in_order_and_signed() {
    let receiver = Arc::new(Receiver::default());
    let url = start_receiver(receiver.clone()).await;
    let mut config = test_config();
    config.workers = 1;
    config.callbacks.webhook.allow_private_addresses = true; // the receiver is on loopback
    config.callbacks.retry.base = Duration::from_millis(20);
    config.callbacks.retry.cap = Duration::from_millis(100);
    let server = TestServer::start_with(config).await;
    let (service_id, key) = server.create_service(&["ApiMessageWrite"]).await;

    let registered: Value = server
        .admin(Method::PUT, &format!("/adm/services/{service_id}/callback"))
        .json(&json!({ "url": url }))
        .fetch_json()
        .await;
    let secret = registered["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    *receiver.secret.lock().unwrap() = secret.clone();
    let shown: Value = server
        .admin(Method::GET, &format!("/adm/services/{service_id}/callback"))
        .fetch_json()
        .await;
    assert_eq!(
        shown,
        json!({ "url": url }),
        "the secret is shown only once"
    );

    let registered_citizen = "RSSMRA85T10A562S";
    server.put_profile(registered_citizen).await;
    let mut ids = Vec::new();
    for fiscal_code in [registered_citizen, "VRDLGU80A41F205X"] {
        let mut body = message_body();
        body["fiscal_code"] = json!(fiscal_code);
        let created: Value = server
            .api(Method::POST, "/messages", &key)
            .json(&body)
            .fetch_json()
            .await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }

    // Wait (bounded) for both messages to be fully reported.
    let complete = |accepted: &BTreeMap<String, Vec<Value>>| {
        accepted.get(&ids[0]).map_or(0, Vec::len) >= 3
            && accepted.get(&ids[1]).map_or(0, Vec::len) >= 2
    };
    for _ in 0..400 {
        if complete(&receiver.accepted.lock().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted = receiver.accepted.lock().unwrap().clone();
    assert!(
        complete(&accepted),
        "callbacks did not all arrive: {accepted:#?}"
    );

    let delivered = &accepted[&ids[0]];
    assert_eq!(
        types(delivered),
        ["message.accepted", "message.processed", "delivery.sent"]
    );
    assert_eq!(delivered[2]["event"]["channel"], "inbox");
    let rejected = &accepted[&ids[1]];
    assert_eq!(types(rejected), ["message.accepted", "message.rejected"]);
    assert_eq!(rejected[1]["event"]["reason"], "USER_NOT_FOUND");
    for events in accepted.values() {
        let sequences: Vec<u64> = events
            .iter()
            .map(|e| e["sequence"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (0..events.len() as u64).collect();
        assert_eq!(
            sequences, expected,
            "in journal order, none twice, none missing"
        );
        assert!(
            events
                .iter()
                .all(|e| e["service_id"] == service_id.as_str())
        );
    }
    assert_eq!(*receiver.bad_signatures.lock().unwrap(), 0);
    let attempts = receiver.attempts.lock().unwrap().clone();
    let sent_id = delivered[2]["id"].as_str().unwrap();
    assert_eq!(
        attempts
            .iter()
            .filter(|(id, _)| id == sent_id)
            .map(|(_, ok)| *ok)
            .collect::<Vec<_>>(),
        [false, true],
        "the refused event was retried, and accepted once"
    );

    // The outboxes close once the messages are final and reported.
    let open_outboxes = || async {
        let store = &server.app.store;
        let open = store.records(io_server::callbacks::CALLBACK_OUTBOX, b"", None, 10);
        open.await.unwrap().len()
    };
    for _ in 0..100 {
        if open_outboxes().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open_outboxes().await, 0, "outboxes left open");

    // A forged signature is detectable with the documented algorithm.
    let body = serde_json::to_vec(&delivered[0]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let genuine = io_channels::webhook::sign(secret.as_bytes(), now, &body);
    assert_eq!(
        verify_signature(secret.as_bytes(), &genuine, &body, now, 300),
        Ok(())
    );
    let forged = io_channels::webhook::sign(b"not the secret", now, &body);
    assert_eq!(
        verify_signature(secret.as_bytes(), &forged, &body, now, 300),
        Err(SignatureError::Mismatch)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_callback_to_an_internal_address_is_refused_by_default() {
    let server = TestServer::start().await;
    let (service_id, _) = server.create_service(&["ApiMessageWrite"]).await;
    for url in [
        "http://127.0.0.1:9000/cb",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/cb",
        "http://10.0.0.7/cb",
        "ftp://example.it/cb",
    ] {
        let response = server
            .admin(Method::PUT, &format!("/adm/services/{service_id}/callback"))
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"].as_str().unwrap().starts_with("url: "),
            "{url}: {problem}"
        );
    }
    let response = server
        .admin(Method::GET, &format!("/adm/services/{service_id}/callback"))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::NOT_FOUND).await;
    server.stop().await;
}
