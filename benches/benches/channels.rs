//! Channel throughput against the same loopback peers the channel tests use, each next to its
//! ceiling measured in the same run: the same requests sent by a bare client (no provider token,
//! no payload building, no classification) over the same kind of connection.
//!
//! - APNs: 200 concurrent sends through `ApnsClient` (HTTP/2 over TLS, one connection) vs 200
//!   bare reqwest HTTP/2 POSTs of the same payload to the same peer.
//! - FCM: 200 concurrent sends through `FcmClient` (cached OAuth token) vs 200 bare POSTs.
//! - Webhook: 200 concurrent signed callbacks through `WebhookClient` (the engine's
//!   `CallbackSender`) vs 200 bare POSTs.
//! - Email: 50 concurrent sends through `EmailChannel` (teaser, MIME, pooled SMTP) to aiosmtpd
//!   vs 50 concurrent sends of one prebuilt email through a bare lettre transport.

#[path = "../../io-channels/tests/support/push_sample.rs"]
mod push_sample;
#[path = "../../io-channels/tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use io_channels::apns::ApnsConfig;
use io_channels::email::{EmailConfig, SmtpSecurity};
use io_channels::fcm::FcmConfig;
use io_channels::webhook::WebhookConfig;
use io_channels::{ApnsClient, EmailChannel, FcmClient, TrustedRoots, WebhookClient};
use io_core::{
    CallbackEvent, CallbackSender, CallbackTarget, Channel, ChannelKind, Clock, DeliveryId,
    DeliveryJob, EmailAddress, Store, Timestamp,
};
use io_store::SledStore;
use lettre::AsyncTransport;
use serde_json::json;
use support::{HttpPeer, PeerRequest, PeerResponse, handler};

/// The allocator io-server ships with (ARCHITECTURE.md, "Memory"), for io and its ceiling alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 200;
const EMAILS: usize = 50;

fn bare_client(ca_pem: &str, http2_only: bool) -> reqwest::Client {
    io_channels::install_default_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap());
    if http2_only {
        builder = builder.http2_prior_knowledge();
    }
    builder.build().unwrap()
}

async fn bare_posts(client: &reqwest::Client, url: &str, body: &serde_json::Value) {
    let posts = (0..BATCH).map(|_| async {
        let response = client
            .post(url)
            .bearer_auth("token")
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    });
    futures::future::join_all(posts).await;
}

fn ok_peer_handler() -> support::Handler {
    handler(|request: PeerRequest| async move {
        if request.path == "/token" {
            return PeerResponse::json(
                200,
                json!({ "access_token": "ya29.bench", "expires_in": 3599, "token_type": "Bearer" }),
            );
        }
        PeerResponse::json(200, json!({ "name": "projects/bench/messages/1" }))
    })
}

fn push(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ca = support::test_ca();
    let peer = runtime.block_on(HttpPeer::tls(&ca, ok_peer_handler()));
    let rng = ring::rand::SystemRandom::new();
    let p8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, p8.as_ref())
    );
    let apns = Arc::new(
        ApnsClient::new(ApnsConfig {
            base_url: peer.base_url(),
            team_id: "TEAM".into(),
            key_id: "KEY".into(),
            signing_key_pem: pem,
            topic: "it.pagopa.io.app".into(),
            roots: TrustedRoots::only(ca.ca_pem.clone()),
            request_timeout: Duration::from_secs(10),
            token_refresh: Duration::from_secs(50 * 60),
            limit: None,
        })
        .unwrap(),
    );
    let account = json!({
        "project_id": "bench",
        "private_key": include_str!("../../io-channels/tests/fixtures/fcm-test-service-account-key.pem"),
        "client_email": "bench@bench.iam.gserviceaccount.com",
        "token_uri": format!("{}/token", peer.base_url()),
    });
    let fcm = Arc::new(
        FcmClient::new(FcmConfig {
            service_account_json: account.to_string(),
            base_url: peer.base_url(),
            roots: TrustedRoots::only(ca.ca_pem.clone()),
            request_timeout: Duration::from_secs(10),
            limit: None,
        })
        .unwrap(),
    );
    let bare = bare_client(&ca.ca_pem, true);
    let payload = json!({ "aps": { "alert": { "title": "t", "body": "b" } }, "message_id": "m" });
    let url = format!("{}/3/device/abcdef", peer.base_url());

    let mut group = c.benchmark_group("channels_push");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("apns_client_200_sends", |b| {
        b.to_async(&runtime).iter(|| async {
            let notification = push_sample::sample_notification();
            let sends = (0..BATCH).map(|_| apns.send("abcdef", &notification));
            for result in futures::future::join_all(sends).await {
                assert!(matches!(result.outcome, io_core::Outcome::Delivered { .. }));
            }
        });
    });
    group.bench_function("fcm_client_200_sends", |b| {
        b.to_async(&runtime).iter(|| async {
            let notification = push_sample::sample_notification();
            let sends = (0..BATCH).map(|_| fcm.send("device", &notification));
            for result in futures::future::join_all(sends).await {
                assert!(matches!(result.outcome, io_core::Outcome::Delivered { .. }));
            }
        });
    });
    group.bench_function("ceiling_bare_h2_200_posts", |b| {
        b.to_async(&runtime)
            .iter(|| async { bare_posts(&bare, &url, &payload).await });
    });
    group.finish();
}

fn webhook(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let peer = runtime.block_on(HttpPeer::plain(handler(|_request: PeerRequest| async {
        PeerResponse::empty(204)
    })));
    let client = WebhookClient::new(&WebhookConfig {
        allow_private_addresses: true,
        ..WebhookConfig::default()
    })
    .unwrap();
    io_channels::install_default_crypto_provider();
    let bare = reqwest::Client::new();
    let url = format!("{}/callbacks", peer.base_url());
    let event = json!({ "type": "delivery.sent", "message_id": "01JBQ1N9ZK3Q8R0M5W6X7Y8Z9A", "sequence": 2 });
    let body = serde_json::to_vec(&event).unwrap();
    let target = CallbackTarget {
        url: url.clone(),
        secret: "secret".into(),
    };
    let now = Timestamp::from_millis(1_700_000_000_000);

    let mut group = c.benchmark_group("channels_webhook");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("webhook_client_200_signed_posts", |b| {
        b.to_async(&runtime).iter(|| async {
            let events: Vec<CallbackEvent> = (0..BATCH)
                .map(|n| CallbackEvent {
                    id: format!("e{n}"),
                    body: body.clone(),
                })
                .collect();
            let posts = events.iter().map(|event| client.post(&target, event, now));
            for outcome in futures::future::join_all(posts).await {
                assert!(matches!(outcome, io_core::Outcome::Delivered { .. }));
            }
        });
    });
    group.bench_function("ceiling_bare_http1_200_posts", |b| {
        b.to_async(&runtime)
            .iter(|| async { bare_posts(&bare, &url, &event).await });
    });
    group.finish();
}

fn email(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let peer = runtime.block_on(support::SmtpPeer::start(support::SmtpPeerMode::Plain));
    let store = Arc::new(SledStore::temporary().unwrap());
    let config = EmailConfig {
        host: "127.0.0.1".into(),
        port: Some(peer.port),
        security: SmtpSecurity::Plain,
        username: None,
        password: None,
        from: "IO <no-reply@io.example.it>".into(),
        hello_name: Some("io.bench".into()),
        roots: TrustedRoots::default(),
        timeout: Duration::from_secs(10),
        pool_size: 8,
        limit: None,
    };
    let _inside = runtime.enter(); // lettre's pool spawns a task when it is built
    let channel = Arc::new(EmailChannel::new(config).unwrap());
    // One processed message gives the job that every measured send repeats.
    let (delivery, stored, service, profile, now) = runtime.block_on(async {
        let harness = support::Harness::new(
            store.clone(),
            vec![channel.clone() as Arc<dyn Channel>],
            false,
        )
        .await;
        let citizen = support::citizen(1);
        let mut profile = support::profile(&citizen);
        profile.email = Some(EmailAddress::parse("citizen@example.it").unwrap());
        profile.is_email_validated = true;
        profile.is_email_enabled = true;
        store.put_profile(&profile).await.unwrap();
        let id = harness
            .submit(
                &citizen,
                "Avviso di pagamento TARI",
                &support::markdown("Gentile contribuente, l'avviso è disponibile."),
            )
            .await;
        // Decided at accept: the email delivery exists when `submit` returns.
        let delivery = store
            .delivery(&DeliveryId::new(id, ChannelKind::Email))
            .await
            .unwrap()
            .unwrap();
        let stored = store.message(&id).await.unwrap().unwrap();
        let service = store.service(&delivery.service_id).await.unwrap().unwrap();
        (delivery, stored, service, profile, harness.clock.now())
    });
    let transport =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(peer.port)
            .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(8))
            .build();
    let prebuilt = lettre::Message::builder()
        .from("IO <no-reply@io.example.it>".parse().unwrap())
        .to("citizen@example.it".parse().unwrap())
        .subject("Hai un nuovo messaggio")
        .body("Entra nell'app IO per leggerlo.".to_owned())
        .unwrap();

    let mut group = c.benchmark_group("channels_email");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(EMAILS as u64));
    group.bench_function("email_channel_50_sends", |b| {
        b.to_async(&runtime).iter(|| async {
            let sends = (0..EMAILS).map(|_| {
                channel.send(DeliveryJob {
                    delivery: &delivery,
                    message: &stored.message,
                    service: &service,
                    profile: Some(&profile),
                    installations: &[],
                    now,
                })
            });
            for report in futures::future::join_all(sends).await {
                assert!(
                    matches!(report.outcome, io_core::Outcome::Delivered { .. }),
                    "{report:?}"
                );
            }
        });
    });
    group.bench_function("ceiling_bare_lettre_50_sends", |b| {
        b.to_async(&runtime).iter(|| async {
            let sends = (0..EMAILS).map(|_| transport.send(prebuilt.clone()));
            for sent in futures::future::join_all(sends).await {
                sent.unwrap();
            }
        });
    });
    group.finish();
    drop(peer);
}

criterion_group!(benches, push, webhook, email);
criterion_main!(benches);
