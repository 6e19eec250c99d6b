//! The push channel against loopback HTTP/2 peers that speak APNs' provider API (TLS with a
//! test certificate authority, ES256 provider tokens checked) and FCM HTTP v1 (OAuth2 token
//! endpoint checking the RS256 assertion, plus the send endpoint), through the engine and a real
//! sled store: what each documented answer does to the delivery and, through the effects the
//! engine commits, to the device installation and the delivery's notified devices.

#[path = "support/push_sample.rs"]
mod push_sample;
mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use io_channels::apns::ApnsConfig;
use io_channels::fcm::{FCM_SCOPE, FcmConfig};
use io_channels::{ApnsClient, FcmClient, PushChannel, TrustedRoots};
use io_core::{
    Channel, ChannelKind, DeliveryId, DeliveryState, FailureReason, FiscalCode, Installation,
    InstallationId, OutcomeRecord, PushNotificationsContentType, PushPlatform, Store, Timestamp,
    TransientCause,
};
use io_store::SledStore;
use ring::signature::{self, KeyPair};
use serde_json::{Value, json};
use support::{
    Harness, HttpPeer, PeerRequest, PeerResponse, TestCa, citizen, handler, markdown, profile,
};
use tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

const TOPIC: &str = "it.pagopa.io.app";
const TEAM: &str = "TEAM123456";
const KEY_ID: &str = "KEY1234567";

/// When the test devices were registered (2026-01-01).
const REGISTERED: Timestamp = Timestamp::from_millis(1_767_225_600_000);

/// What a peer saw, for assertions.
#[derive(Default)]
struct Seen {
    /// Requests per device token.
    per_device: Mutex<BTreeMap<String, usize>>,
    /// Distinct bearer credentials (APNs JWTs, FCM access tokens) used to send.
    credentials: Mutex<HashSet<String>>,
    /// Credentials the peer now refuses as expired.
    expired: Mutex<HashSet<String>>,
    /// Request bodies per device token.
    bodies: Mutex<BTreeMap<String, Value>>,
    /// Token exchanges (FCM).
    exchanges: AtomicUsize,
}

impl Seen {
    fn count(&self, device: &str) -> usize {
        self.per_device
            .lock()
            .unwrap()
            .get(device)
            .copied()
            .unwrap_or(0)
    }

    fn record(&self, device: &str, credential: &str, body: Value) {
        *self
            .per_device
            .lock()
            .unwrap()
            .entry(device.to_owned())
            .or_insert(0) += 1;
        self.credentials
            .lock()
            .unwrap()
            .insert(credential.to_owned());
        self.bodies.lock().unwrap().insert(device.to_owned(), body);
    }
}

fn jwt_parts(jwt: &str) -> (Value, Value, Vec<u8>, String) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS");
    let decode = |p: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    (
        decode(parts[0]),
        decode(parts[1]),
        URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        format!("{}.{}", parts[0], parts[1]),
    )
}

// ---------------------------------------------------------------------------------------------
// APNs

/// An APNs signing key: the `.p8` PEM the client gets and the public key the peer checks with.
fn apns_key() -> (String, Vec<u8>) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
    let pair = signature::EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(pkcs8.as_ref())
    );
    (pem, pair.public_key().as_ref().to_vec())
}

/// A loopback APNs: checks the provider token and the headers Apple requires, then answers by
/// device token:
/// a0 200 · a1 503 ServiceUnavailable · a2 429 TooManyRequests + Retry-After 120 ·
/// a3 400 BadTopic · a4 400 BadDeviceToken · a5 410 Unregistered (far-future timestamp) ·
/// a6 410 Unregistered (a day before [`REGISTERED`]) · a7 no answer · b1 503 once, then 200.
async fn apns_peer(ca: &TestCa, public_key: Vec<u8>, seen: Arc<Seen>) -> HttpPeer {
    HttpPeer::tls(
        ca,
        handler(move |request: PeerRequest| {
            let seen = seen.clone();
            let public_key = public_key.clone();
            async move { apns_answer(request, &public_key, &seen).await }
        }),
    )
    .await
}

async fn apns_answer(request: PeerRequest, public_key: &[u8], seen: &Seen) -> PeerResponse {
    assert_eq!(
        request.version,
        hyper::Version::HTTP_2,
        "APNs is HTTP/2 only"
    );
    assert_eq!(request.method, "POST");
    let Some(device) = request.path.strip_prefix("/3/device/") else {
        return PeerResponse::json(404, json!({ "reason": "BadPath" }));
    };
    let authorization = request.header("authorization").unwrap_or_default();
    let Some(jwt) = authorization
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
        .map(|_| &authorization[7..])
    else {
        return PeerResponse::json(403, json!({ "reason": "MissingProviderToken" }));
    };
    let (header, claims, sig, signed) = jwt_parts(jwt);
    let verified =
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public_key)
            .verify(signed.as_bytes(), &sig)
            .is_ok();
    if !verified || header["alg"] != "ES256" || header["kid"] != KEY_ID || claims["iss"] != TEAM {
        return PeerResponse::json(403, json!({ "reason": "InvalidProviderToken" }));
    }
    if seen.expired.lock().unwrap().contains(jwt) {
        return PeerResponse::json(403, json!({ "reason": "ExpiredProviderToken" }));
    }
    assert_eq!(request.header("apns-topic"), Some(TOPIC));
    assert_eq!(request.header("apns-push-type"), Some("alert"));
    assert_eq!(request.header("apns-priority"), Some("10"));
    let apns_id = request.header("apns-id").expect("apns-id").to_owned();
    assert_eq!(apns_id.len(), 36, "a UUID: {apns_id}");
    let expiration: u64 = request.header("apns-expiration").unwrap().parse().unwrap();
    assert!(expiration > 1_700_000_000);
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    seen.record(device, jwt, body);
    let day_before = REGISTERED.as_millis() - 86_400_000;
    match device {
        "a1" => PeerResponse::json(503, json!({ "reason": "ServiceUnavailable" })),
        "a2" => PeerResponse::json(429, json!({ "reason": "TooManyRequests" }))
            .with_header("retry-after", "120"),
        "a3" => PeerResponse::json(400, json!({ "reason": "BadTopic" })),
        "a4" => PeerResponse::json(400, json!({ "reason": "BadDeviceToken" })),
        "a5" => PeerResponse::json(
            410,
            json!({ "reason": "Unregistered", "timestamp": 4_102_444_800_000u64 }),
        ),
        "a6" => PeerResponse::json(
            410,
            json!({ "reason": "Unregistered", "timestamp": day_before }),
        ),
        "a7" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            PeerResponse::empty(200)
        }
        "b1" if seen.count("b1") == 1 => {
            PeerResponse::json(503, json!({ "reason": "ServiceUnavailable" }))
        }
        _ => PeerResponse::empty(200).with_header("apns-id", &apns_id),
    }
}

fn apns_config(base_url: String, key_pem: &str, ca: &TestCa) -> ApnsConfig {
    ApnsConfig {
        base_url,
        team_id: TEAM.into(),
        key_id: KEY_ID.into(),
        signing_key_pem: key_pem.into(),
        topic: TOPIC.into(),
        roots: TrustedRoots::only(ca.ca_pem.clone()),
        request_timeout: Duration::from_secs(1),
        token_refresh: Duration::from_secs(50 * 60),
        limit: None,
    }
}

async fn add_device(
    store: &SledStore,
    fiscal_code: &FiscalCode,
    id: &str,
    platform: PushPlatform,
    token: &str,
) -> Installation {
    let installation = Installation {
        installation_id: InstallationId::parse(id).unwrap(),
        platform,
        push_channel: token.into(),
        updated_at: REGISTERED,
    };
    store
        .put_installation(fiscal_code, &installation)
        .await
        .unwrap();
    installation
}

async fn push_citizen(store: &SledStore, n: u32, full_preview: bool) -> FiscalCode {
    let fiscal_code = citizen(n);
    let mut p = profile(&fiscal_code);
    p.is_webhook_enabled = true;
    if full_preview {
        p.push_notifications_content_type = PushNotificationsContentType::Full;
    }
    store.put_profile(&p).await.unwrap();
    fiscal_code
}

fn wait(delivery: &io_core::Delivery) -> Duration {
    delivery.next_attempt_at.since(delivery.updated_at)
}

/// What one scenario must come to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Sent,
    /// Retrying with a transient cause, the wait within the first retry's jitter ceiling.
    Retry(&'static str),
    /// Retrying after exactly the provider's Retry-After.
    RateLimited(u64),
    Permanent(&'static str),
    Invalid,
}

fn check(label: &str, delivery: &io_core::Delivery, expect: Expect) {
    assert_eq!(delivery.attempts, 1, "{label}");
    match expect {
        Expect::Sent => assert_eq!(delivery.state, DeliveryState::Sent, "{label}"),
        Expect::Retry(cause) => {
            assert_eq!(delivery.state, DeliveryState::Retrying, "{label}");
            let Some(OutcomeRecord::Transient { cause: seen, .. }) = &delivery.last_outcome else {
                panic!("{label}: {:?}", delivery.last_outcome);
            };
            let seen = match seen {
                TransientCause::Timeout => "timeout",
                TransientCause::Connection => "connection",
                TransientCause::ServerError(_) => "server",
                TransientCause::Other(_) => "other",
            };
            assert_eq!(seen, cause, "{label}");
            assert!(
                wait(delivery) <= Duration::from_secs(1),
                "{label}: {:?}",
                wait(delivery)
            );
        }
        Expect::RateLimited(seconds) => {
            assert_eq!(delivery.state, DeliveryState::Retrying, "{label}");
            assert!(
                matches!(delivery.last_outcome, Some(OutcomeRecord::RateLimited { retry_after_ms: Some(ms) }) if ms == seconds * 1000),
                "{label}: {:?}",
                delivery.last_outcome
            );
            assert_eq!(wait(delivery), Duration::from_secs(seconds), "{label}");
        }
        Expect::Permanent(code) => assert!(
            matches!(&delivery.state, DeliveryState::Failed { reason: FailureReason::Permanent { reason } } if reason.code == code),
            "{label}: {:?}",
            delivery.state
        ),
        Expect::Invalid => assert_eq!(
            delivery.state,
            DeliveryState::Failed {
                reason: FailureReason::InvalidRecipient
            },
            "{label}"
        ),
    }
}

/// One row of a fault matrix: device token, label, expected outcome, whether it is pruned.
type Row = (&'static str, &'static str, Expect, bool);

/// Runs a fault matrix through `channel`: one citizen per row (the first with full previews),
/// each with one `platform` device holding the row's token and one message, attempted once;
/// checks state, attempts, wait, pruning, and one request per device at the peer.
async fn run_matrix(
    store: Arc<SledStore>,
    channel: PushChannel,
    platform: PushPlatform,
    seen: &Seen,
    matrix: &[Row],
) -> Vec<io_core::Delivery> {
    let h = Harness::new(
        store.clone(),
        vec![Arc::new(channel) as Arc<dyn Channel>],
        false,
    )
    .await;
    let mut runs = Vec::new();
    for (n, (token, ..)) in matrix.iter().enumerate() {
        let fiscal_code = push_citizen(&store, n as u32, n == 0).await;
        add_device(&store, &fiscal_code, "phone", platform, token).await;
        let id = h
            .submit(
                &fiscal_code,
                "Rinnovo carta d'identità",
                &markdown("La sua carta è pronta."),
            )
            .await;
        runs.push((fiscal_code, DeliveryId::new(id, ChannelKind::Push)));
    }
    let ids: Vec<DeliveryId> = runs.iter().map(|r| r.1).collect();
    let deliveries = h.attempt_once(&ids).await;
    for ((token, label, expect, pruned), ((fiscal_code, _), delivery)) in
        matrix.iter().zip(runs.iter().zip(&deliveries))
    {
        check(label, delivery, *expect);
        let remaining = store.installations(fiscal_code).await.unwrap();
        assert_eq!(remaining.is_empty(), *pruned, "{label}: pruning");
        let notified = delivery.devices_notified.len();
        assert_eq!(notified, usize::from(*expect == Expect::Sent), "{label}");
        assert_eq!(seen.count(token), 1, "{label}: one request");
    }
    deliveries
}

/// A send through a channel whose provider port has nothing listening: retried, device kept.
async fn connection_refused(channel: PushChannel, platform: PushPlatform, token: &str) {
    let store = Arc::new(SledStore::temporary().unwrap());
    let channel: Arc<dyn Channel> = Arc::new(channel);
    let h = Harness::new(store.clone(), vec![channel], false).await;
    let fiscal_code = push_citizen(&store, 1, false).await;
    add_device(&store, &fiscal_code, "phone", platform, token).await;
    let id = h
        .submit(&fiscal_code, "Avviso di pagamento", &markdown("Testo."))
        .await;
    let delivery = &h
        .attempt_once(&[DeliveryId::new(id, ChannelKind::Push)])
        .await[0];
    check("connection refused", delivery, Expect::Retry("connection"));
    assert_eq!(store.installations(&fiscal_code).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_fault_matrix() {
    let ca = support::test_ca();
    let (key_pem, public_key) = apns_key();
    let seen = Arc::new(Seen::default());
    let peer = apns_peer(&ca, public_key, seen.clone()).await;
    let store = Arc::new(SledStore::temporary().unwrap());
    let client = ApnsClient::new(apns_config(peer.base_url(), &key_pem, &ca)).unwrap();
    let channel = PushChannel::new().with_apns(client);

    let matrix: [Row; 8] = [
        ("a0", "success", Expect::Sent, false),
        ("a1", "transient (503)", Expect::Retry("server"), false),
        (
            "a2",
            "rate limited (429, Retry-After 120)",
            Expect::RateLimited(120),
            false,
        ),
        (
            "a3",
            "permanent (BadTopic)",
            Expect::Permanent("apns_BadTopic"),
            false,
        ),
        (
            "a4",
            "invalid recipient (BadDeviceToken)",
            Expect::Invalid,
            true,
        ),
        (
            "a5",
            "invalid recipient (410 after registration)",
            Expect::Invalid,
            true,
        ),
        (
            "a6",
            "invalid recipient (410 before re-registration)",
            Expect::Invalid,
            false,
        ),
        ("a7", "timeout", Expect::Retry("timeout"), false),
    ];
    let deliveries = run_matrix(store, channel, PushPlatform::Apns, &seen, &matrix).await;
    // The citizen who chose full previews sees sender and subject; the others do not.
    let bodies = seen.bodies.lock().unwrap().clone();
    assert_eq!(bodies["a0"]["aps"]["alert"]["title"], "Comune di Esempio");
    assert_eq!(
        bodies["a0"]["aps"]["alert"]["body"],
        "Rinnovo carta d'identità"
    );
    assert_eq!(
        bodies["a1"]["aps"]["alert"]["title"],
        "Hai un nuovo messaggio"
    );
    assert_eq!(
        bodies["a1"]["aps"]["alert"]["body"],
        "Entra nell'app per leggerlo"
    );
    assert_eq!(
        bodies["a1"]["message_id"],
        deliveries[1].id.message.to_string()
    );
    assert_eq!(peer.connections(), 1, "one connection for every send");

    // Connection refused.
    let base = format!("https://localhost:{}", support::closed_port().await);
    let client = ApnsClient::new(apns_config(base, &key_pem, &ca)).unwrap();
    connection_refused(
        PushChannel::new().with_apns(client),
        PushPlatform::Apns,
        "a0",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_multiplexes_one_connection_and_reuses_its_provider_token() {
    let ca = support::test_ca();
    let (key_pem, public_key) = apns_key();
    let seen = Arc::new(Seen::default());
    let peer = apns_peer(&ca, public_key, seen.clone()).await;
    let client = Arc::new(ApnsClient::new(apns_config(peer.base_url(), &key_pem, &ca)).unwrap());
    let notification = push_sample::sample_notification();
    let sends = (0..200).map(|i| {
        let client = client.clone();
        let notification = notification.clone();
        async move { client.send(&format!("c{i:03x}"), &notification).await }
    });
    for result in futures::future::join_all(sends).await {
        assert!(
            matches!(result.outcome, io_core::Outcome::Delivered { .. }),
            "{result:?}"
        );
    }
    assert_eq!(peer.connections(), 1, "200 sends, one TCP connection");
    assert_eq!(
        seen.credentials.lock().unwrap().len(),
        1,
        "one provider token"
    );
    assert_eq!(client.provider_tokens_signed(), 1);

    // Apple says the token expired: the client signs a new one and retries once.
    let first = seen
        .credentials
        .lock()
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .clone();
    seen.expired.lock().unwrap().insert(first);
    let result = client.send("d001", &notification).await;
    assert!(
        matches!(result.outcome, io_core::Outcome::Delivered { .. }),
        "{result:?}"
    );
    assert_eq!(client.provider_tokens_signed(), 2);
    assert_eq!(seen.credentials.lock().unwrap().len(), 2);
    assert_eq!(peer.connections(), 1);
}

// ---------------------------------------------------------------------------------------------
// FCM

const PROJECT: &str = "io-test";

fn fcm_key() -> (String, Vec<u8>) {
    let pem = include_str!("fixtures/fcm-test-service-account-key.pem");
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).unwrap();
    let pair = signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    (pem.to_owned(), pair.public().as_ref().to_vec())
}

fn fcm_error(
    status: u16,
    code: &str,
    fcm_code: Option<&str>,
    token_violation: bool,
) -> PeerResponse {
    let mut details = Vec::new();
    if let Some(fcm_code) = fcm_code {
        details.push(json!({ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code }));
    }
    if token_violation {
        details.push(json!({ "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{ "field": "message.token", "description": "Invalid registration token" }] }));
    }
    PeerResponse::json(
        status,
        json!({ "error": { "code": status, "message": format!("{code} (test peer)"), "status": code, "details": details } }),
    )
}

/// A loopback FCM: `/token` checks the RS256 assertion and issues access tokens; the send
/// endpoint checks the bearer token, then answers by device token:
/// ok 200 · unavailable 503 · quota 429 QUOTA_EXCEEDED + Retry-After 120 ·
/// mismatch 403 SENDER_ID_MISMATCH · unregistered 404 UNREGISTERED ·
/// badtoken 400 INVALID_ARGUMENT on message.token · hang: no answer.
async fn fcm_peer(ca: &TestCa, public_key: Vec<u8>, seen: Arc<Seen>) -> HttpPeer {
    HttpPeer::tls(
        ca,
        handler(move |request: PeerRequest| {
            let seen = seen.clone();
            let public_key = public_key.clone();
            async move { fcm_answer(request, &public_key, &seen).await }
        }),
    )
    .await
}

async fn fcm_answer(request: PeerRequest, public_key: &[u8], seen: &Seen) -> PeerResponse {
    assert_eq!(request.method, "POST");
    if request.path == "/token" {
        let form = String::from_utf8(request.body.to_vec()).unwrap();
        let fields: BTreeMap<&str, &str> = form
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        assert_eq!(
            fields["grant_type"],
            "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        );
        let (header, claims, sig, signed) = jwt_parts(fields["assertion"]);
        let verified =
            signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_key)
                .verify(signed.as_bytes(), &sig)
                .is_ok();
        if !verified || header["alg"] != "RS256" || claims["scope"] != FCM_SCOPE {
            return PeerResponse::json(400, json!({ "error": "invalid_grant" }));
        }
        assert!(claims["aud"].as_str().unwrap().ends_with("/token"));
        assert_eq!(claims["iss"], "io-sender@io-test.iam.gserviceaccount.com");
        let n = seen.exchanges.fetch_add(1, Ordering::SeqCst) + 1;
        return PeerResponse::json(
            200,
            json!({ "access_token": format!("ya29.test-{n}"), "expires_in": 3599, "token_type": "Bearer" }),
        );
    }
    assert_eq!(
        request.path,
        format!("/v1/projects/{PROJECT}/messages:send")
    );
    let Some(token) = request
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    else {
        return fcm_error(401, "UNAUTHENTICATED", None, false);
    };
    let issued = seen.exchanges.load(Ordering::SeqCst);
    let known = (1..=issued).any(|n| token == format!("ya29.test-{n}"));
    if !known || seen.expired.lock().unwrap().contains(token) {
        return fcm_error(401, "UNAUTHENTICATED", None, false);
    }
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let device = body["message"]["token"].as_str().unwrap().to_owned();
    let ttl = body["message"]["android"]["ttl"].as_str().unwrap();
    let seconds: u64 = ttl.strip_suffix('s').unwrap().parse().unwrap();
    assert!(
        seconds > 0 && seconds <= 7 * 24 * 3600,
        "Android TTL from the message: {ttl}"
    );
    seen.record(&device, token, body);
    match device.as_str() {
        "unavailable" => fcm_error(503, "UNAVAILABLE", Some("UNAVAILABLE"), false),
        "quota" => fcm_error(429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"), false)
            .with_header("retry-after", "120"),
        "mismatch" => fcm_error(403, "PERMISSION_DENIED", Some("SENDER_ID_MISMATCH"), false),
        "unregistered" => fcm_error(404, "NOT_FOUND", Some("UNREGISTERED"), false),
        "badtoken" => fcm_error(400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"), true),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            PeerResponse::empty(200)
        }
        _ => PeerResponse::json(
            200,
            json!({ "name": format!("projects/{PROJECT}/messages/{device}") }),
        ),
    }
}

fn fcm_config(base_url: &str, token_base: &str, key_pem: &str, ca: &TestCa) -> FcmConfig {
    let account = json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123",
        "private_key": key_pem,
        "client_email": "io-sender@io-test.iam.gserviceaccount.com",
        "token_uri": format!("{token_base}/token"),
    });
    FcmConfig {
        service_account_json: account.to_string(),
        base_url: base_url.into(),
        roots: TrustedRoots::only(ca.ca_pem.clone()),
        request_timeout: Duration::from_secs(1),
        limit: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_fault_matrix() {
    let ca = support::test_ca();
    let (key_pem, public_key) = fcm_key();
    let seen = Arc::new(Seen::default());
    let peer = fcm_peer(&ca, public_key, seen.clone()).await;
    let store = Arc::new(SledStore::temporary().unwrap());
    let base = peer.base_url();
    let client = FcmClient::new(fcm_config(&base, &base, &key_pem, &ca)).unwrap();
    let channel = PushChannel::new().with_fcm(client);

    let matrix: [Row; 7] = [
        ("ok", "success", Expect::Sent, false),
        (
            "unavailable",
            "transient (503 UNAVAILABLE)",
            Expect::Retry("server"),
            false,
        ),
        (
            "quota",
            "rate limited (429 QUOTA_EXCEEDED, Retry-After 120)",
            Expect::RateLimited(120),
            false,
        ),
        (
            "mismatch",
            "permanent (SENDER_ID_MISMATCH)",
            Expect::Permanent("fcm_SENDER_ID_MISMATCH"),
            false,
        ),
        (
            "unregistered",
            "invalid recipient (UNREGISTERED)",
            Expect::Invalid,
            true,
        ),
        (
            "badtoken",
            "invalid recipient (INVALID_ARGUMENT on the token)",
            Expect::Invalid,
            true,
        ),
        ("hang", "timeout", Expect::Retry("timeout"), false),
    ];
    run_matrix(store, channel, PushPlatform::Fcmv1, &seen, &matrix).await;
    assert_eq!(
        seen.exchanges.load(Ordering::SeqCst),
        1,
        "one token exchange"
    );

    // Connection refused (the token endpoint is up, the send endpoint is not).
    let dead = format!("https://localhost:{}", support::closed_port().await);
    let client = FcmClient::new(fcm_config(&dead, &base, &key_pem, &ca)).unwrap();
    connection_refused(
        PushChannel::new().with_fcm(client),
        PushPlatform::Fcmv1,
        "ok",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_one_token_exchange_serves_many_sends_and_a_refused_token_is_renewed() {
    let ca = support::test_ca();
    let (key_pem, public_key) = fcm_key();
    let seen = Arc::new(Seen::default());
    let peer = fcm_peer(&ca, public_key, seen.clone()).await;
    let base = peer.base_url();
    let client = Arc::new(FcmClient::new(fcm_config(&base, &base, &key_pem, &ca)).unwrap());
    let notification = push_sample::sample_notification();
    let sends = (0..200).map(|i| {
        let client = client.clone();
        let notification = notification.clone();
        async move { client.send(&format!("device-{i}"), &notification).await }
    });
    for result in futures::future::join_all(sends).await {
        assert!(
            matches!(result.outcome, io_core::Outcome::Delivered { .. }),
            "{result:?}"
        );
    }
    assert_eq!(
        seen.exchanges.load(Ordering::SeqCst),
        1,
        "200 sends, one exchange"
    );
    assert_eq!(client.token_exchanges(), 1);
    assert_eq!(
        peer.connections(),
        1,
        "one connection for the exchange and the sends"
    );

    // Google stops accepting the token: a plain 401 renews it once and the send goes through.
    seen.expired.lock().unwrap().insert("ya29.test-1".into());
    let result = client.send("device-x", &notification).await;
    assert!(
        matches!(result.outcome, io_core::Outcome::Delivered { .. }),
        "{result:?}"
    );
    assert_eq!(client.token_exchanges(), 2);
}

// ---------------------------------------------------------------------------------------------
// Both providers, several devices

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_is_notified_once_even_when_one_of_them_needs_a_retry() {
    let ca = support::test_ca();
    let (apns_pem, apns_public) = apns_key();
    let (fcm_pem, fcm_public) = fcm_key();
    let apns_seen = Arc::new(Seen::default());
    let fcm_seen = Arc::new(Seen::default());
    let apns = apns_peer(&ca, apns_public, apns_seen.clone()).await;
    let fcm = fcm_peer(&ca, fcm_public, fcm_seen.clone()).await;
    let store = Arc::new(SledStore::temporary().unwrap());
    let fcm_base = fcm.base_url();
    let channel = PushChannel::new()
        .with_apns(ApnsClient::new(apns_config(apns.base_url(), &apns_pem, &ca)).unwrap())
        .with_fcm(FcmClient::new(fcm_config(&fcm_base, &fcm_base, &fcm_pem, &ca)).unwrap());
    let h = Harness::new(store.clone(), vec![Arc::new(channel)], false).await;
    let fiscal_code = push_citizen(&store, 1, false).await;
    add_device(&store, &fiscal_code, "iphone", PushPlatform::Apns, "a0").await;
    add_device(&store, &fiscal_code, "ipad", PushPlatform::Apns, "b1").await; // 503 once
    add_device(&store, &fiscal_code, "android", PushPlatform::Fcmv1, "ok").await;
    let message = h
        .submit(&fiscal_code, "Avviso di pagamento", &markdown("Testo."))
        .await;
    let id = DeliveryId::new(message, ChannelKind::Push);
    let first = &h.attempt_once(&[id]).await[0];
    assert_eq!(
        first.state,
        DeliveryState::Retrying,
        "the iPad must be retried"
    );
    let ids = |devices: &[&str]| -> Vec<InstallationId> {
        devices
            .iter()
            .map(|d| InstallationId::parse(d).unwrap())
            .collect()
    };
    let mut notified = first.devices_notified.clone();
    notified.sort();
    assert_eq!(
        notified,
        ids(&["android", "iphone"]),
        "recorded with the retry"
    );

    // The retry, through the engine once it is due: only the iPad is tried again.
    let second = &h.attempt_again(&[id]).await[0];
    assert_eq!(second.state, DeliveryState::Sent);
    assert_eq!(second.attempts, 2);
    assert_eq!(
        apns_seen.count("a0"),
        1,
        "the iPhone was not notified twice"
    );
    assert_eq!(
        fcm_seen.count("ok"),
        1,
        "the Android phone was not notified twice"
    );
    assert_eq!(apns_seen.count("b1"), 2, "the iPad was tried again");
    let mut notified = second.devices_notified.clone();
    notified.sort();
    assert_eq!(notified, ids(&["android", "ipad", "iphone"]));
    // The final outcome names only the provider ids of its own attempt: the iPad's apns-id.
    let Some(OutcomeRecord::Delivered {
        provider_ref: Some(provider_ref),
    }) = &second.last_outcome
    else {
        panic!("{:?}", second.last_outcome);
    };
    assert_eq!(*provider_ref, id.as_uuid());
    assert_eq!(store.installations(&fiscal_code).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_registered_again_during_the_attempt_is_not_pruned() {
    // The peer answers 410 Unregistered without a timestamp (prune) for both devices, but
    // before answering for "renewed" the app registers that installation again: the engine's
    // commit of the prune sees a newer registration than the one sent to, and keeps it.
    let ca = support::test_ca();
    let (key_pem, _) = apns_key();
    let store = Arc::new(SledStore::temporary().unwrap());
    let fiscal_code = push_citizen(&store, 1, false).await;
    let peer = {
        let store = store.clone();
        let fiscal_code = fiscal_code.clone();
        HttpPeer::tls(
            &ca,
            handler(move |request: PeerRequest| {
                let store = store.clone();
                let fiscal_code = fiscal_code.clone();
                async move {
                    if request.path.ends_with("/cafe02") {
                        let again = Installation {
                            installation_id: InstallationId::parse("renewed").unwrap(),
                            platform: PushPlatform::Apns,
                            push_channel: "cafe02".into(),
                            updated_at: REGISTERED.plus(Duration::from_secs(60)),
                        };
                        store.put_installation(&fiscal_code, &again).await.unwrap();
                    }
                    PeerResponse::json(410, json!({ "reason": "Unregistered" }))
                }
            }),
        )
        .await
    };
    let client = ApnsClient::new(apns_config(peer.base_url(), &key_pem, &ca)).unwrap();
    let h = Harness::new(
        store.clone(),
        vec![Arc::new(PushChannel::new().with_apns(client))],
        false,
    )
    .await;
    add_device(&store, &fiscal_code, "stale", PushPlatform::Apns, "cafe01").await;
    add_device(
        &store,
        &fiscal_code,
        "renewed",
        PushPlatform::Apns,
        "cafe02",
    )
    .await;
    let message = h
        .submit(&fiscal_code, "Avviso di pagamento", &markdown("Testo."))
        .await;
    let delivery = &h
        .attempt_once(&[DeliveryId::new(message, ChannelKind::Push)])
        .await[0];
    check("every device gone", delivery, Expect::Invalid);
    let remaining = store.installations(&fiscal_code).await.unwrap();
    assert_eq!(remaining.len(), 1, "{remaining:?}");
    assert_eq!(remaining[0].installation_id.as_str(), "renewed");
    assert_eq!(
        remaining[0].updated_at,
        REGISTERED.plus(Duration::from_secs(60))
    );
}
