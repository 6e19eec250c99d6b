//! Signed callbacks against a loopback HTTP receiver that checks `IO-Signature` with the
//! documented algorithm: what each answer comes to, the SSRF guard at connection time, and the
//! client as the engine's `CallbackSender` (every journal entry posted in order, signed at the
//! engine's clock, a retry repeating the event id).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use io_channels::WebhookClient;
use io_channels::webhook::{EVENT_ID_HEADER, SIGNATURE_HEADER, WebhookConfig, verify_signature};
use io_core::{
    CallbackEvent, CallbackSender, CallbackTarget, Clock, Outcome, Store, Timestamp, TransientCause,
};
use io_store::SledStore;
use support::{Harness, HttpPeer, PeerRequest, PeerResponse, handler};

/// What an outcome must match.
type Expected = fn(&Outcome) -> bool;

/// The HMAC key: the bytes of the hex secret shown to the service.
const SECRET: &str = "4f1c2a9b8e7d6c5b4a39281716f5e4d3";

/// The instant the matrix's callbacks are signed at (2026-01-01), and the receiver's clock.
const NOW: Timestamp = Timestamp::from_millis(1_767_225_600_000);

fn seconds(at: Timestamp) -> u64 {
    u64::try_from(at.as_millis() / 1000).unwrap()
}

/// The receiver's clock, in unix seconds.
type ReceiverClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Answers by path; refuses (401) anything whose signature does not verify at `clock` with a
/// five-minute tolerance; records the event ids it accepted.
async fn receiver(seen: Arc<Mutex<Vec<String>>>, clock: ReceiverClock) -> HttpPeer {
    HttpPeer::plain(handler(move |request: PeerRequest| {
        let seen = seen.clone();
        let now = clock();
        async move {
            let signature = request
                .header(SIGNATURE_HEADER)
                .unwrap_or_default()
                .to_owned();
            if verify_signature(SECRET.as_bytes(), &signature, &request.body, now, 300).is_err() {
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

fn at_now() -> ReceiverClock {
    Arc::new(|| seconds(NOW))
}

fn client(allow_private: bool) -> WebhookClient {
    WebhookClient::new(&WebhookConfig {
        allow_private_addresses: allow_private,
        timeout: Duration::from_millis(800),
        ..WebhookConfig::default()
    })
    .unwrap()
}

fn target(url: String, secret: &str) -> CallbackTarget {
    CallbackTarget {
        url,
        secret: secret.to_owned(),
    }
}

fn event(id: &str, body: &[u8]) -> CallbackEvent {
    CallbackEvent {
        id: id.to_owned(),
        body: body.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_fault_matrix() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let peer = receiver(seen.clone(), at_now()).await;
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
            .post(
                &target(url.clone(), SECRET),
                &event(&format!("evt-{n}"), &body),
                NOW,
            )
            .await;
        assert!(expected(&outcome), "{label}: {outcome:?}");
    }
    let limited = client
        .post(
            &target(format!("{base}/slow-down"), SECRET),
            &event("evt-rl", b"{}"),
            NOW,
        )
        .await;
    assert_eq!(
        limited,
        Outcome::RateLimited {
            retry_after: retry_120
        }
    );
    // Every request that reached the receiver carried a valid signature and its event id.
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "evt-0", "evt-1", "evt-2", "evt-3", "evt-4", "evt-5", "evt-6", "evt-rl"
        ]
    );

    // A signature made with another secret, or at a time outside the receiver's tolerance, is
    // refused by the receiver.
    let forged = client
        .post(
            &target(format!("{base}/ok"), "guessed"),
            &event("evt-x", b"{}"),
            NOW,
        )
        .await;
    assert!(matches!(forged, Outcome::Permanent(r) if r.code == "callback_401"));
    let stale = client
        .post(
            &target(format!("{base}/ok"), SECRET),
            &event("evt-y", b"{}"),
            NOW.minus(Duration::from_secs(3600)),
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
    let peer = receiver(seen.clone(), at_now()).await;
    let guarded = client(false);
    // A literal address is refused before any connection...
    let literal = guarded
        .post(
            &target(format!("{}/ok", peer.base_url()), SECRET),
            &event("e1", b"{}"),
            NOW,
        )
        .await;
    assert!(
        matches!(&literal, Outcome::Permanent(r) if r.code == "callback_url_refused"),
        "{literal:?}"
    );
    // ...and a name resolving to loopback is refused when it is resolved.
    let named = guarded
        .post(
            &target(format!("http://localhost:{}/ok", peer.addr.port()), SECRET),
            &event("e2", b"{}"),
            NOW,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_posts_every_journal_entry_in_order_through_the_client() {
    let store = Arc::new(SledStore::temporary().unwrap());
    let h = Harness::new(store.clone(), vec![], false).await;
    let clock = h.clock.clone();
    let h = h.with_callbacks(Arc::new(client(true)));
    // The receiver checks signatures at the engine's clock, and refuses the first post once.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let refused_once = Arc::new(Mutex::new(false));
    let peer = {
        let seen = seen.clone();
        let clock = clock.clone();
        HttpPeer::plain(handler(move |request: PeerRequest| {
            let seen = seen.clone();
            let refused_once = refused_once.clone();
            let now = seconds(clock.now());
            async move {
                let signature = request.header(SIGNATURE_HEADER).unwrap_or_default();
                if verify_signature(SECRET.as_bytes(), signature, &request.body, now, 300).is_err()
                {
                    return PeerResponse::empty(401);
                }
                let id = request.header(EVENT_ID_HEADER).unwrap().to_owned();
                let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                seen.lock().unwrap().push((id, body));
                if !std::mem::replace(&mut *refused_once.lock().unwrap(), true) {
                    return PeerResponse::empty(503);
                }
                PeerResponse::empty(204)
            }
        }))
        .await
    };
    let service = io_core::ServiceId::parse(support::SERVICE).unwrap();
    store
        .put_callback(
            &service,
            Some(&target(format!("{}/io", peer.base_url()), SECRET)),
        )
        .await
        .unwrap();
    let citizen = support::citizen(1);
    store
        .put_profile(&support::profile(&citizen))
        .await
        .unwrap();
    let message = h
        .submit(
            &citizen,
            "Avviso di pagamento",
            &support::markdown("Testo."),
        )
        .await;
    h.engine.run_until_idle().await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1, "the first post was refused");
    // The retry comes due on the engine's clock (the first retry within a second).
    clock.advance(Duration::from_secs(2));
    h.engine.run_until_idle().await.unwrap();

    let journal = h.engine.verify_journal(&message).await.unwrap();
    assert!(journal.len() >= 2, "accepted, then more: {journal:?}");
    let seen = seen.lock().unwrap().clone();
    let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    let mut expected = vec![format!("{message}-0")];
    expected.extend((0..journal.len()).map(|seq| format!("{message}-{seq}")));
    assert_eq!(
        ids, expected,
        "in order, the refused event again with its id"
    );
    for ((_, body), entry) in seen[1..].iter().zip(&journal) {
        assert_eq!(body["sequence"], entry.seq);
        assert_eq!(body["message_id"], message.to_string());
        assert_eq!(body["service_id"], support::SERVICE);
    }
    assert_eq!(seen[0].1["type"], "message.accepted");
}
