//! Sender callbacks end to end, through the real server and its engine: a service registers a
//! URL, a loopback receiver checks every `IO-Signature` with the documented algorithm, and
//! sees each status change of each message exactly once, in journal order, even when it
//! refuses an answer and the engine retries. The engine is driven by `drain()` and the retry
//! is reached by moving the server's clock, never by sleeping.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use io_channels::webhook::{SignatureError, verify_signature};
use io_core::{Clock, MessageId, RetryPolicy, Store, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};
use support::{FetchJson, TestClock, TestServer, expect_problem, message_body, test_config};

/// 2026-03-15T10:00:00Z: the server's clock, and the receiver's.
const START: Timestamp = Timestamp::from_millis(1_773_568_800_000);

/// How far a signature's time may be from the receiver's clock.
const TOLERANCE_SECS: u64 = 300;

struct Receiver {
    clock: Arc<TestClock>,
    secret: Mutex<String>,
    /// Every POST: (event id, accepted with 2xx).
    attempts: Mutex<Vec<(String, bool)>>,
    /// Accepted events per message, in arrival order.
    accepted: Mutex<BTreeMap<String, Vec<Value>>>,
    /// Signatures that failed verification.
    bad_signatures: Mutex<usize>,
}

impl Receiver {
    fn new(clock: Arc<TestClock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            secret: Mutex::default(),
            attempts: Mutex::default(),
            accepted: Mutex::default(),
            bad_signatures: Mutex::default(),
        })
    }

    fn unix_now(&self) -> u64 {
        u64::try_from(self.clock.now().as_millis() / 1000).unwrap()
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let secret = receiver.secret.lock().unwrap().clone();
    let signature = headers
        .get("io-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now = receiver.unix_now();
    if verify_signature(secret.as_bytes(), signature, &body, now, TOLERANCE_SECS).is_err() {
        *receiver.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    let id = headers["io-event-id"].to_str().unwrap().to_owned();
    assert_eq!(event["id"], id.as_str());
    let mut attempts = receiver.attempts.lock().unwrap();
    // The first delivery.sent event is refused once with a 503: the engine must retry it.
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

#[tokio::test]
async fn a_receiver_sees_every_status_change_once_in_order_and_signed() {
    let clock = TestClock::at(START);
    let receiver = Receiver::new(clock.clone());
    let url = start_receiver(receiver.clone()).await;
    let mut config = test_config();
    config.callbacks.webhook.allow_private_addresses = true; // the receiver is on loopback
    let retry_cap = Duration::from_secs(2);
    config.callbacks.retry = RetryPolicy {
        base: retry_cap,
        cap: retry_cap,
    };
    let server = TestServer::start_with_clock(config, clock.clone()).await;
    let (service_id, key) = server
        .create_service(&["ApiMessageWrite", "ApiMessageRead"])
        .await;

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
    let unknown_citizen = "VRDLGU80A41F205X";
    server.put_profile(registered_citizen).await;
    let mut ids = Vec::new();
    for fiscal_code in [registered_citizen, unknown_citizen] {
        let mut body = message_body();
        body["fiscal_code"] = json!(fiscal_code);
        let created: Value = server
            .api(Method::POST, "/messages", &key)
            .json(&body)
            .fetch_json()
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        // Decided at accept: the 201 comes after the decision and the inbox delivery.
        let status: Value = server
            .api(Method::GET, &format!("/messages/{fiscal_code}/{id}"), &key)
            .fetch_json()
            .await;
        let expected = if fiscal_code == registered_citizen {
            "PROCESSED"
        } else {
            "REJECTED"
        };
        assert_eq!(status["status"], expected, "{status}");
        ids.push(id);
    }

    // One drain posts everything but the refused event; its retry waits on the clock.
    server.drain().await;
    let attempts_of = |event_id: &str| -> Vec<bool> {
        receiver
            .attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| id == event_id)
            .map(|(_, ok)| *ok)
            .collect()
    };
    let sent_id = format!("{}-2", ids[0]);
    let retried_at_once = attempts_of(&sent_id).len() == 2; // a jitter of exactly zero
    if !retried_at_once {
        assert_eq!(attempts_of(&sent_id), [false]);
        let accepted = receiver.accepted.lock().unwrap().clone();
        assert_eq!(
            types(&accepted[&ids[0]]),
            ["message.accepted", "message.processed"],
            "nothing passes the refused event"
        );
        clock.advance(retry_cap);
        server.drain().await;
    }

    let accepted = receiver.accepted.lock().unwrap().clone();
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
    assert_eq!(
        attempts_of(&sent_id),
        [false, true],
        "the refused event was retried, and accepted once"
    );
    assert_eq!(
        receiver.attempts.lock().unwrap().len(),
        6,
        "five events, one of them twice"
    );

    // The outboxes close once the messages are final and reported; nothing is left queued.
    let store = &server.app.store;
    for id in &ids {
        let id: MessageId = id.parse().unwrap();
        assert_eq!(store.callback_cursor(&id).await.unwrap(), None, "{id}");
    }
    assert_eq!(store.backlog().await.unwrap(), 0);
    server.drain().await;
    assert_eq!(
        receiver.attempts.lock().unwrap().len(),
        6,
        "nothing sent twice"
    );

    // A forged signature is detectable with the documented algorithm.
    let body = serde_json::to_vec(&delivered[0]).unwrap();
    let now = receiver.unix_now();
    let genuine = io_channels::webhook::sign(secret.as_bytes(), now, &body);
    assert_eq!(
        verify_signature(secret.as_bytes(), &genuine, &body, now, TOLERANCE_SECS),
        Ok(())
    );
    let forged = io_channels::webhook::sign(b"not the secret", now, &body);
    assert_eq!(
        verify_signature(secret.as_bytes(), &forged, &body, now, TOLERANCE_SECS),
        Err(SignatureError::Mismatch)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_registration_keeps_its_secret_unless_rotated_and_can_be_removed() {
    let mut config = test_config();
    config.callbacks.webhook.allow_private_addresses = true;
    let server = TestServer::start_with(config).await;
    let (service_id, _) = server.create_service(&["ApiMessageWrite"]).await;
    let path = format!("/adm/services/{service_id}/callback");
    let put = |body: Value| server.admin(Method::PUT, &path).json(&body).fetch_json();
    let first = put(json!({ "url": "http://127.0.0.1:9/a" })).await;
    let moved = put(json!({ "url": "http://127.0.0.1:9/b" })).await;
    assert_eq!(moved["url"], "http://127.0.0.1:9/b");
    assert_eq!(
        moved["secret"], first["secret"],
        "a new URL keeps the secret"
    );
    let rotated = put(json!({ "url": "http://127.0.0.1:9/b", "rotate_secret": true })).await;
    assert_ne!(rotated["secret"], first["secret"]);
    let removed: Value = server.admin(Method::DELETE, &path).fetch_json().await;
    assert_eq!(removed, json!({ "url": "http://127.0.0.1:9/b" }));
    let gone = server.admin(Method::GET, &path).send().await.unwrap();
    expect_problem(gone, StatusCode::NOT_FOUND).await;
    let again = server.admin(Method::DELETE, &path).send().await.unwrap();
    expect_problem(again, StatusCode::NOT_FOUND).await;
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
