//! What the channel tests share: a test certificate authority, a loopback HTTP server (TLS with
//! ALPN h2 and http/1.1, or plain) that counts its TCP connections, the SMTP peer (aiosmtpd), and
//! an engine over a real sled store that drives deliveries attempt by attempt on a clock the
//! test moves forward.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use io_core::{
    CallbackSender, Channel, ChannelKind, Clock, Delivery, DeliveryId, Engine, EngineConfig,
    FiscalCode, MessageId, NewMessage, NewMessageContent, OrganizationFiscalCode, Profile,
    RetryPolicy, SenderCapabilities, Service, ServiceId, ServiceMetadata, Store, Submission,
    SystemClock, Timestamp,
};
use io_store::SledStore;
use tokio::io::AsyncBufReadExt;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

// ---------------------------------------------------------------------------------------------
// Certificates

/// A certificate authority and a leaf for `localhost` and 127.0.0.1 that it signed.
pub struct TestCa {
    /// The authority, PEM: what clients are told to trust.
    pub ca_pem: String,
    /// The leaf, PEM and DER, and its key.
    pub leaf_pem: String,
    pub leaf_key_pem: String,
    pub leaf_der: CertificateDer<'static>,
    pub leaf_key_der: PrivatePkcs8KeyDer<'static>,
}

impl TestCa {
    /// A rustls server configuration presenting the leaf.
    pub fn server_config(&self) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.leaf_der.clone()],
                PrivateKeyDer::Pkcs8(self.leaf_key_der.clone_key()),
            )
            .unwrap()
    }
}

pub fn test_ca() -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "io test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    TestCa {
        ca_pem: ca_cert.pem(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
        leaf_der: leaf.der().clone(),
        leaf_key_der: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP peer

/// A request as the peer saw it.
#[derive(Debug, Clone)]
pub struct PeerRequest {
    pub method: String,
    pub path: String,
    pub version: hyper::Version,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl PeerRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The peer's answer.
#[derive(Debug, Clone)]
pub struct PeerResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl PeerResponse {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub type Handler = Arc<dyn Fn(PeerRequest) -> BoxFuture<PeerResponse> + Send + Sync>;

/// Wraps an async closure as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(PeerRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = PeerResponse> + Send + 'static,
{
    Arc::new(move |request| Box::pin(f(request)))
}

/// A loopback HTTP server; stops when dropped.
pub struct HttpPeer {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    tls: bool,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpPeer {
    /// HTTPS with the leaf of `ca`, offering h2 and http/1.1.
    pub async fn tls(ca: &TestCa, handler: Handler) -> Self {
        let mut config = ca.server_config();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self::start(
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
            handler,
        )
        .await
    }

    /// Plain HTTP/1.1 or h2c.
    pub async fn plain(handler: Handler) -> Self {
        Self::start(None, handler).await
    }

    async fn start(tls: Option<tokio_rustls::TlsAcceptor>, handler: Handler) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let is_tls = tls.is_some();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(TokioIo::new(stream), handler).await;
                            }
                        }
                        None => serve(TokioIo::new(stream), handler).await,
                    }
                });
            }
        });
        Self {
            addr,
            connections,
            tls: is_tls,
            task,
        }
    }

    /// `https://localhost:PORT` or `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://127.0.0.1:{}", self.addr.port())
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve<I>(io: I, handler: Handler)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let handler = handler.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let seen = PeerRequest {
                method: parts.method.to_string(),
                path: parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| parts.uri.path().to_owned(), |p| p.to_string()),
                version: parts.version,
                headers: parts.headers,
                body,
            };
            let answer = handler(seen).await;
            let mut response = hyper::Response::builder().status(answer.status);
            for (name, value) in &answer.headers {
                response = response.header(name, value);
            }
            Ok::<_, std::convert::Infallible>(
                response.body(Full::new(Bytes::from(answer.body))).unwrap(),
            )
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
        .await;
}

/// A port on which nothing listens (bound, then released).
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// SMTP peer

/// aiosmtpd on loopback, writing what it receives to a directory; stops when dropped.
pub struct SmtpPeer {
    pub port: u16,
    pub outdir: tempfile::TempDir,
    child: tokio::process::Child,
}

/// How the SMTP peer protects its port.
pub enum SmtpPeerMode<'a> {
    Plain,
    StartTls(&'a TestCa),
    Tls(&'a TestCa),
}

impl SmtpPeer {
    pub async fn start(mode: SmtpPeerMode<'_>) -> Self {
        Self::start_with_auth(mode, None).await
    }

    /// A peer that requires every session to authenticate as `(user, password)`.
    pub async fn start_with_auth(mode: SmtpPeerMode<'_>, auth: Option<(&str, &str)>) -> Self {
        // Beside this file, wherever it is compiled from (the channel bench includes it too):
        // `file!()` is relative to the workspace root, one level above any package.
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(file!())
            .with_file_name("smtp_peer.py");
        let outdir = tempfile::tempdir().unwrap();
        let port = closed_port().await;
        let mut command = tokio::process::Command::new("python3");
        command
            .arg(&script)
            .arg(port.to_string())
            .arg(outdir.path());
        let write_pem = |name: &str, pem: &str| {
            let path = outdir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        if let Some((user, password)) = auth {
            command.arg("--auth").arg(format!("{user}:{password}"));
        }
        match mode {
            SmtpPeerMode::Plain => {}
            SmtpPeerMode::StartTls(ca) | SmtpPeerMode::Tls(ca) => {
                let flag = if matches!(mode, SmtpPeerMode::Tls(_)) {
                    "--tls"
                } else {
                    "--starttls"
                };
                let cert = write_pem("cert.pem", &ca.leaf_pem);
                let key = write_pem("key.pem", &ca.leaf_key_pem);
                command.arg(flag).arg(cert).arg(key);
            }
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 must be installed to run the SMTP peer");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        match ready {
            Ok(Ok(Some(line))) if line == "READY" => {}
            other => panic!(
                "the SMTP peer did not start ({other:?}); it needs aiosmtpd: \
                 `pip install aiosmtpd==1.4.6` (.ci/run installs it)"
            ),
        }
        Self {
            port,
            outdir,
            child,
        }
    }

    /// The messages received so far, as raw bytes, in arrival order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.outdir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        paths.sort();
        paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Engine

pub const SERVICE: &str = "tributi";

pub fn service(require_secure_channels: bool) -> Service {
    Service {
        service_id: ServiceId::parse(SERVICE).unwrap(),
        service_name: "Ufficio Tributi".into(),
        department_name: "Tributi".into(),
        organization_name: "Comune di Esempio".into(),
        organization_fiscal_code: OrganizationFiscalCode::parse("15376371009").unwrap(),
        authorized_cidrs: vec![],
        authorized_recipients: Default::default(),
        is_visible: true,
        max_allowed_payment_amount: 0,
        require_secure_channels,
        service_metadata: ServiceMetadata::default(),
        owner_email: None,
        sandboxed: false,
        version: 1,
    }
}

/// The `n`-th generated valid fiscal code (distinct for distinct `n` < 1000).
pub fn citizen(n: u32) -> FiscalCode {
    let digits = format!("{:03}", n % 1000);
    let first15 = format!("VRDLGU{}A41F20{}", &digits[..2], &digits[2..]);
    let check = io_core::fiscal_code::compute_check_character(&first15).unwrap();
    FiscalCode::parse(&format!("{first15}{check}")).unwrap()
}

/// A LEGACY profile with the inbox on and every notification off (tests turn on what they use).
pub fn profile(fiscal_code: &FiscalCode) -> Profile {
    let mut profile = Profile::new(fiscal_code.clone());
    profile.is_email_enabled = false;
    profile.is_webhook_enabled = false;
    profile
}

/// The retry policy of these tests: the first retry within 1 s, so a `Retry-After` of 120 s is
/// visible as exactly that.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(900),
    }
}

/// The engine's clock in these tests: the system clock plus an offset the test moves forward,
/// so a retry comes due without sleeping. Not tokio's paused time: the peers are real sockets,
/// and paused time would fire every timeout while a socket waits.
#[derive(Debug, Default)]
pub struct TestClock {
    ahead_ms: AtomicU64,
}

impl TestClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap();
        self.ahead_ms.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        SystemClock
            .now()
            .plus(Duration::from_millis(self.ahead_ms.load(Ordering::SeqCst)))
    }
}

/// An engine over a sled store (the inbox is built in), on a [`TestClock`].
pub struct Harness {
    pub store: Arc<SledStore>,
    pub clock: Arc<TestClock>,
    pub engine: Engine<SledStore>,
}

impl Harness {
    pub async fn new(
        store: Arc<SledStore>,
        channels: Vec<Arc<dyn Channel>>,
        require_secure_channels: bool,
    ) -> Self {
        store
            .put_service(&service(require_secure_channels))
            .await
            .unwrap();
        let config = EngineConfig {
            retry: retry_policy(),
            send_timeout: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            rng_seed: Some(5),
            ..EngineConfig::default()
        };
        let clock = Arc::new(TestClock::default());
        let engine = Engine::new(store.clone(), channels, clock.clone(), config).unwrap();
        Self {
            store,
            clock,
            engine,
        }
    }

    /// The same engine, posting sender callbacks through `sender`.
    pub fn with_callbacks(self, sender: Arc<dyn CallbackSender>) -> Self {
        Self {
            engine: self.engine.with_callbacks(sender),
            ..self
        }
    }

    pub async fn submit(&self, to: &FiscalCode, subject: &str, markdown: &str) -> MessageId {
        self.submit_with(to, subject, markdown, None).await
    }

    /// A message with legal value (also delivered by PEC to the citizen's digital domicile).
    pub async fn submit_legal(&self, to: &FiscalCode, subject: &str, markdown: &str) -> MessageId {
        self.submit_full(to, subject, markdown, None, true).await
    }

    pub async fn submit_with(
        &self,
        to: &FiscalCode,
        subject: &str,
        markdown: &str,
        require_secure_channels: Option<bool>,
    ) -> MessageId {
        self.submit_full(to, subject, markdown, require_secure_channels, false)
            .await
    }

    async fn submit_full(
        &self,
        to: &FiscalCode,
        subject: &str,
        markdown: &str,
        require_secure_channels: Option<bool>,
        legal: bool,
    ) -> MessageId {
        let submission = Submission {
            service_id: ServiceId::parse(SERVICE).unwrap(),
            message: NewMessage {
                fiscal_code: Some(to.to_string()),
                time_to_live: Some(7 * 24 * 3600),
                content: NewMessageContent {
                    subject: Some(subject.into()),
                    markdown: Some(markdown.into()),
                    require_secure_channels,
                    ..Default::default()
                },
                feature_level_type: None,
                legal_value: Some(legal),
            },
            capabilities: SenderCapabilities::default(),
            idempotency_key: None,
        };
        self.engine.submit(submission).await.unwrap().id
    }

    /// Runs rounds until every given delivery has had one attempt (or ended), at most 6 rounds.
    pub async fn attempt_once(&self, deliveries: &[DeliveryId]) -> Vec<Delivery> {
        self.attempt_until(deliveries, |d| d.attempts > 0).await
    }

    /// Moves the clock to the latest due time of the given (retrying) deliveries, then runs
    /// rounds until each has had one more attempt (or ended), at most 6 rounds.
    pub async fn attempt_again(&self, deliveries: &[DeliveryId]) -> Vec<Delivery> {
        let mut before = Vec::new();
        for id in deliveries {
            before.push(self.store.delivery(id).await.unwrap().unwrap());
        }
        if let Some(due) = before.iter().map(|d| d.next_attempt_at).max() {
            self.clock.advance(due.since(self.clock.now()));
        }
        self.attempt_until(deliveries, |d| {
            let earlier = before.iter().find(|b| b.id == d.id).unwrap();
            d.attempts > earlier.attempts
        })
        .await
    }

    async fn attempt_until(
        &self,
        deliveries: &[DeliveryId],
        attempted: impl Fn(&Delivery) -> bool,
    ) -> Vec<Delivery> {
        for _ in 0..6 {
            self.engine.run_round().await.unwrap();
            let mut all = Vec::new();
            for id in deliveries {
                match self.store.delivery(id).await.unwrap() {
                    Some(d) if attempted(&d) || d.state.is_final() => all.push(d),
                    _ => break,
                }
            }
            if all.len() == deliveries.len() {
                return all;
            }
        }
        panic!("deliveries did not get an attempt within 6 rounds");
    }

    /// Whether a delivery exists on `kind` for `message`.
    pub async fn delivery(&self, message: MessageId, kind: ChannelKind) -> Option<Delivery> {
        self.store
            .delivery(&DeliveryId::new(message, kind))
            .await
            .unwrap()
    }
}

/// A message body of the valid length (80 characters at least).
pub fn markdown(text: &str) -> String {
    let mut body = text.to_owned();
    while body.chars().count() < 80 {
        body.push_str(" Cordiali saluti.");
    }
    body
}
