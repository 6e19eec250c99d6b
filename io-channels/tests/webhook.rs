//! Signed callbacks against a loopback HTTP receiver that checks `IO-Signature` with the
//! documented algorithm: what each answer comes to, and the SSRF guard at connection time.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use io_channels::WebhookClient;
use io_channels::webhook::{EVENT_ID_HEADER, SIGNATURE_HEADER, WebhookConfig, verify_signature};
use io_core::{Outcome, TransientCause};
use support::{HttpPeer, PeerRequest, PeerResponse, handler};

/// What an outcome must match.
type Expected = fn(&Outcome) -> bool;

const SECRET: &[u8] = b"4f1c2a9b8e7d6c5b4a39281716f5e4d3";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Answers by path; refuses (401) anything whose signature does not verify.
async fn receiver(seen: Arc<Mutex<Vec<String>>>) -> HttpPeer {
    HttpPeer::plain(handler(move |request: PeerRequest| {
        let seen = seen.clone();
        async move {
            let signature = request
                .header(SIGNATURE_HEADER)
                .unwrap_or_default()
                .to_owned();
            if verify_signature(SECRET, &signature, &request.body, unix_now(), 300).is_err() {
                return PeerResponse::empty(401);
            }
            assert_eq!(request.header("content-type"), Some("application/json"));
            seen.lock()
                .unwrap()
                .push(request.header(EVENT_ID_HEADER).unwrap().to_owned());
            match request.path.as_str() {
                "/busy" => PeerResponse::empty(503),
                "/slow-down" => PeerResponse::empty(429).with_header("retry-after", "120"),
                "/request-timeout" => PeerResponse::empty(408),
                "/bad" => PeerResponse::empty(400),
                "/gone" => PeerResponse::empty(410),
                "/moved" => {
                    PeerResponse::empty(302).with_header("location", "http://169.254.169.254/")
                }
                "/hang" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    PeerResponse::empty(204)
                }
                _ => PeerResponse::empty(204),
            }
        }
    }))
    .await
}

fn client(allow_private: bool) -> WebhookClient {
    WebhookClient::new(&WebhookConfig {
        allow_private_addresses: allow_private,
        timeout: Duration::from_millis(800),
        ..WebhookConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_fault_matrix() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let peer = receiver(seen.clone()).await;
    let client = client(true);
    let refused = format!("http://127.0.0.1:{}", support::closed_port().await);
    let base = peer.base_url();
    let retry_120 = Some(Duration::from_secs(120));
    let matrix: Vec<(&str, String, Expected)> = vec![
        ("success", format!("{base}/ok"), |o| {
            matches!(o, Outcome::Delivered { .. })
        }),
        ("transient (503)", format!("{base}/busy"), |o| {
            matches!(
                o,
                Outcome::Transient {
                    cause: TransientCause::ServerError(503),
                    ..
                }
            )
        }),
        ("transient (408)", format!("{base}/request-timeout"), |o| {
            matches!(
                o,
                Outcome::Transient {
                    cause: TransientCause::Timeout,
                    ..
                }
            )
        }),
        (
            "permanent (400)",
            format!("{base}/bad"),
            |o| matches!(o, Outcome::Permanent(r) if r.code == "callback_400"),
        ),
        (
            "permanent (redirect not followed)",
            format!("{base}/moved"),
            |o| matches!(o, Outcome::Permanent(r) if r.code == "callback_302"),
        ),
        ("invalid recipient (410)", format!("{base}/gone"), |o| {
            *o == Outcome::InvalidRecipient
        }),
        ("timeout", format!("{base}/hang"), |o| {
            matches!(
                o,
                Outcome::Transient {
                    cause: TransientCause::Timeout,
                    ..
                }
            )
        }),
        ("connection refused", format!("{refused}/cb"), |o| {
            matches!(
                o,
                Outcome::Transient {
                    cause: TransientCause::Connection,
                    ..
                }
            )
        }),
    ];
    for (n, (label, url, expected)) in matrix.iter().enumerate() {
        let body = format!(r#"{{"type":"message.accepted","n":{n}}}"#).into_bytes();
        let outcome = client
            .post(url, SECRET, &format!("evt-{n}"), body, unix_now())
            .await;
        assert!(expected(&outcome), "{label}: {outcome:?}");
    }
    let limited = client
        .post(
            &format!("{base}/slow-down"),
            SECRET,
            "evt-rl",
            b"{}".to_vec(),
            unix_now(),
        )
        .await;
    assert_eq!(
        limited,
        Outcome::RateLimited {
            retry_after: retry_120
        }
    );
    // Every request that reached the receiver carried a valid signature and its event id.
    assert_eq!(seen.lock().unwrap().len(), 8, "{:?}", seen.lock().unwrap());

    // A signature made with another secret, or over another body, is refused by the receiver.
    let forged = client
        .post(
            &format!("{base}/ok"),
            b"guessed",
            "evt-x",
            b"{}".to_vec(),
            unix_now(),
        )
        .await;
    assert!(matches!(forged, Outcome::Permanent(r) if r.code == "callback_401"));
    let stale = client
        .post(
            &format!("{base}/ok"),
            SECRET,
            "evt-y",
            b"{}".to_vec(),
            unix_now() - 3600,
        )
        .await;
    assert!(
        matches!(stale, Outcome::Permanent(r) if r.code == "callback_401"),
        "old timestamps are refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_refuses_loopback_names_at_connection_time() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let peer = receiver(seen.clone()).await;
    let guarded = client(false);
    // A literal address is refused before any connection...
    let literal = guarded
        .post(
            &format!("{}/ok", peer.base_url()),
            SECRET,
            "e1",
            b"{}".to_vec(),
            unix_now(),
        )
        .await;
    assert!(
        matches!(&literal, Outcome::Permanent(r) if r.code == "callback_url_refused"),
        "{literal:?}"
    );
    // ...and a name resolving to loopback is refused when it is resolved.
    let named = guarded
        .post(
            &format!("http://localhost:{}/ok", peer.addr.port()),
            SECRET,
            "e2",
            b"{}".to_vec(),
            unix_now(),
        )
        .await;
    assert!(
        matches!(&named, Outcome::Permanent(r) if r.code == "callback_url_refused" && r.detail.contains("SSRF guard")),
        "{named:?}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the receiver"
    );
}
