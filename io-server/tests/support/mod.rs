//! The end-to-end harness: a real server on a loopback port over a temporary store, and a
//! reqwest client with helpers for the admin steps most tests start with.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use io_core::{Clock, SystemClock, Timestamp};
use io_server::config::ServerConfig;
use io_server::secrets::Secrets;
use io_server::serve::Running;
use io_server::{App, serve};
use io_store::SledStore;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

/// The admin token every test server uses.
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// A valid fiscal code with a profile in most tests.
pub const CITIZEN: &str = "RSSMRA85T10A562S";
/// Another valid fiscal code.
pub const OTHER_CITIZEN: &str = "MRTMTT25D09F205Z";
/// A valid organization fiscal code.
pub const ORGANIZATION: &str = "02438750586";
/// Every permission group.
pub const ALL_GROUPS: &[&str] = &[
    "ApiMessageWrite",
    "ApiMessageRead",
    "ApiLimitedProfileRead",
    "ApiMessageWriteWithPayee",
    "ApiMessageWriteAdvanced",
    "ApiMessageReadAdvanced",
    "ApiSubscriptionsFeedRead",
];

/// A clock that moves only when the test sets it: tests that read the subscriptions feed of
/// "today" need a day that cannot change under them, and GDPR deadlines and retries are
/// reached by setting the time, not by waiting.
pub struct TestClock(AtomicI64);

impl TestClock {
    /// A clock reading `start` until moved.
    pub fn at(start: Timestamp) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(start.as_millis())))
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: Timestamp) {
        self.0.store(now.as_millis(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.set(self.now().plus(by));
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// A server under test.
pub struct TestServer {
    pub base: String,
    pub app: Arc<App<SledStore>>,
    pub client: reqwest::Client,
    running: Option<Running>,
    _store_dir: tempfile::TempDir,
}

/// A configuration for tests: no worker unless asked (tests drive the engine with
/// `run_until_idle`, so nothing races them), a generous rate limit.
pub fn test_config() -> ServerConfig {
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 0,
        ..ServerConfig::default()
    };
    config.rate_limit.default = io_server::config::Tier::Unlimited;
    config
}

impl TestServer {
    /// A server with `test_config()`.
    pub async fn start() -> Self {
        Self::start_with(test_config()).await
    }

    /// A server with `config` (its `listen` and `data` are replaced).
    pub async fn start_with(config: ServerConfig) -> Self {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// A server with `config` and a clock.
    pub async fn start_with_clock(config: ServerConfig, clock: Arc<dyn Clock>) -> Self {
        Self::start_in(config, clock, tempfile::tempdir().unwrap()).await
    }

    /// A server with `config` and a clock over the data directory `dir` (a restart).
    pub async fn start_in(
        mut config: ServerConfig,
        clock: Arc<dyn Clock>,
        dir: tempfile::TempDir,
    ) -> Self {
        config.data = dir.path().to_path_buf();
        let store = Arc::new(SledStore::open(dir.path().join("store")).unwrap());
        let secrets = Secrets {
            key_derivation: "test-key-secret".into(),
            token_signing: "test-token-secret".into(),
        };
        let app = App::with_store(config, store, &secrets, ADMIN_TOKEN, clock).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = serve::start(app.clone(), listener).unwrap();
        Self {
            base: format!("http://{}", running.local_addr),
            app,
            client: {
                io_channels::install_default_crypto_provider();
                reqwest::Client::new()
            },
            running: Some(running),
            _store_dir: dir,
        }
    }

    /// Sends the standard message body to `fiscal_code` with `key`; its id (201 expected).
    pub async fn submit(&self, key: &str, fiscal_code: &str) -> String {
        let response = self
            .api(Method::POST, &format!("/messages/{fiscal_code}"), key)
            .json(&message_body())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Stops the server and closes its store; the data directory is kept for a restart.
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running.shutdown().await.unwrap();
        }
        let dir = std::mem::replace(&mut self._store_dir, tempfile::tempdir().unwrap());
        drop(self);
        dir
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.unwrap();
        }
    }

    /// A request to `path` (relative to the base URL).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// An admin request.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(ADMIN_TOKEN)
    }

    /// A Services API request with `key`.
    pub fn api(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.request(method, &format!("/api/v1{path}"))
            .header("Ocp-Apim-Subscription-Key", key)
    }

    /// A citizen API request with `token`.
    pub fn citizen(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.request(method, &format!("/app/v1{path}"))
            .bearer_auth(token)
    }

    /// Creates a service with `groups` through the admin API; returns (service_id, primary key).
    pub async fn create_service(&self, groups: &[&str]) -> (String, String) {
        self.create_service_with(json!({ "groups": groups })).await
    }

    /// Creates a service from default fields overridden by `overrides`.
    pub async fn create_service_with(&self, overrides: Value) -> (String, String) {
        let mut body = json!({
            "service_name": "Tassa rifiuti",
            "department_name": "Tributi",
            "organization_name": "Comune di Roma",
            "organization_fiscal_code": ORGANIZATION,
            "max_allowed_payment_amount": 100000,
        });
        for (k, v) in overrides.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = self
            .admin(Method::POST, "/adm/services")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let service: Value = serde_json::from_str(&text).unwrap();
        let id = service["service_id"].as_str().unwrap().to_string();
        let keys: Value = self
            .admin(Method::GET, &format!("/adm/services/{id}/keys"))
            .fetch_json()
            .await;
        (id, keys["primary_key"].as_str().unwrap().to_string())
    }

    /// A citizen token minted by the admin API.
    pub async fn citizen_token(&self, fiscal_code: &str) -> String {
        let body: Value = self
            .admin(Method::POST, "/adm/citizen-tokens")
            .json(&json!({ "fiscal_code": fiscal_code }))
            .fetch_json()
            .await;
        body["token"].as_str().unwrap().to_string()
    }

    /// Stores a profile directly (LEGACY, inbox enabled), for tests that do not exercise the
    /// citizen API.
    pub async fn put_profile(&self, fiscal_code: &str) {
        use io_core::Store;
        let profile = profile(fiscal_code);
        self.app.store.put_profile(&profile).await.unwrap();
    }

    /// Runs the engine until nothing is due.
    pub async fn drain(&self) {
        self.drain_count().await;
    }

    /// Runs the engine until nothing is due; returns how many tasks ran.
    pub async fn drain_count(&self) -> u64 {
        self.app.engine.run_until_idle().await.unwrap()
    }
}

/// A LEGACY profile with the inbox enabled.
pub fn profile(fiscal_code: &str) -> io_core::Profile {
    io_core::Profile {
        fiscal_code: io_core::FiscalCode::parse(fiscal_code).unwrap(),
        is_inbox_enabled: true,
        email: None,
        is_email_validated: false,
        is_email_enabled: false,
        is_email_bounced: false,
        is_webhook_enabled: false,
        preferred_languages: vec![io_core::PreferredLanguage::ItIt],
        service_preferences_settings: io_core::ServicePreferencesSettings {
            mode: io_core::ServicePreferencesMode::Legacy,
            version: 0,
        },
        blocked_inbox_or_channels: Default::default(),
        push_notifications_content_type: Default::default(),
        reminder_status: Default::default(),
        accepted_tos_version: None,
        is_test_profile: false,
        digital_domicile: None,
        version: 0,
    }
}

/// A valid message body (subject 10–120, markdown 80–10,000 characters).
pub fn message_body() -> Value {
    json!({
        "content": {
            "subject": "Avviso di pagamento TARI",
            "markdown": "Gentile contribuente, le comunichiamo che è disponibile l'avviso di pagamento della tassa sui rifiuti per l'anno in corso.",
        }
    })
}

/// Sends a request that must succeed at the HTTP level and decodes its JSON body.
pub trait FetchJson {
    /// The answer's body as JSON.
    fn fetch_json(self) -> impl std::future::Future<Output = Value> + Send;
}

impl FetchJson for RequestBuilder {
    async fn fetch_json(self) -> Value {
        let response = self.send().await.unwrap();
        response.json().await.unwrap()
    }
}

/// Asserts a problem+json answer with `status`, returning its body.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}
