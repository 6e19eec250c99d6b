//! The reader of the sender's PEC mailbox: every receipt found there is handed to the engine
//! ([`Engine::record_receipt`]) and, once the engine has durably recorded it, moved out of the
//! inbox to a folder of processed receipts. Other messages (replies, envelopes, anything not a
//! receipt of an io delivery) are moved to a folder of their own for people to read, never
//! deleted.
//!
//! **Nothing lost, nothing counted twice.** A receipt is moved only after the engine's write is
//! durable; a crash in between leaves it in the inbox, the next pass reads it again and the
//! engine, which keys receipts by the SHA-256 of their bytes, answers `Duplicate` before it is
//! moved. The reader keeps no state of its own.
//!
//! **Waiting.** After a pass the reader waits in IMAP IDLE when the server offers it (woken as
//! soon as a message arrives, and at most every `poll`), and sleeps `poll` otherwise.
//!
//! **Transport.** Implicit TLS (port 993) with the configured roots, or plain IMAP toward a
//! loopback server only (tests, a local relay).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use futures::TryStreamExt;
use io_core::{Engine, ReceiptOutcome, Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::email::is_loopback;
use crate::pec::receipt::Receipt;
use crate::pec::signature::ProviderCertificates;
use crate::{ConfigError, TrustedRoots};

/// How the connection to the IMAP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImapSecurity {
    /// TLS from the first byte (port 993).
    Tls,
    /// No TLS: allowed only toward a loopback server.
    Plain,
}

/// The sender's PEC mailbox, where the providers' receipts arrive.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// The IMAP server's host name (checked against its certificate) or address.
    pub host: String,
    /// Its port; 993 or 143 by `security` when absent.
    #[serde(default)]
    pub port: Option<u16>,
    /// TLS or plain.
    pub security: ImapSecurity,
    /// The mailbox's user.
    pub username: String,
    /// The mailbox's password.
    pub password: String,
    /// Where receipts arrive.
    #[serde(default = "default_inbox")]
    pub inbox: String,
    /// Where processed receipts go (created if missing).
    #[serde(default = "default_processed")]
    pub processed: String,
    /// Where messages that are not receipts of io deliveries go (created if missing).
    #[serde(default = "default_other")]
    pub other: String,
    /// Whose certificates are trusted for the IMAP server's TLS.
    #[serde(default)]
    pub roots: TrustedRoots,
    /// The certificates (PEM) the providers sign receipts with, or the authorities that issue
    /// them: a receipt is trusted only if its S/MIME signature verifies against one.
    pub provider_certificates: Vec<String>,
    /// The longest wait between passes.
    #[serde(default = "default_poll")]
    pub poll: Duration,
    /// The longest one IMAP exchange may take.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
}

impl fmt::Debug for MailboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &"***")
            .field("inbox", &self.inbox)
            .field("processed", &self.processed)
            .field("other", &self.other)
            .field("provider_certificates", &self.provider_certificates.len())
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

fn default_inbox() -> String {
    "INBOX".into()
}

fn default_processed() -> String {
    "io-receipts".into()
}

fn default_other() -> String {
    "io-other".into()
}

fn default_poll() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Why a pass over the mailbox stopped. The messages not yet handled stay in the inbox for the
/// next pass.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// The server could not be reached, or the connection broke or timed out.
    #[error("the IMAP server could not be reached: {0}")]
    Connection(String),
    /// The server refused the credentials.
    #[error("the IMAP server refused the mailbox's credentials: {0}")]
    Login(String),
    /// The server answered a command with an error.
    #[error("the IMAP server refused a command: {0}")]
    Protocol(String),
    /// The store could not record a receipt.
    #[error("a receipt could not be recorded: {0}")]
    Store(#[from] StoreError),
}

impl MailboxError {
    /// Whether the next pass may succeed without a change of configuration.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Connection(_) | Self::Protocol(_) => true,
            Self::Login(_) => false,
            Self::Store(error) => error.is_retriable(),
        }
    }
}

fn protocol(error: async_imap::error::Error) -> MailboxError {
    match error {
        async_imap::error::Error::Io(io) => MailboxError::Connection(io.to_string()),
        other => MailboxError::Protocol(other.to_string()),
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Receipts recorded.
    pub recorded: usize,
    /// Receipts the engine held already (read again after a crash).
    pub duplicates: usize,
    /// Receipts of no PEC delivery io knows (kept with the others).
    pub unknown: usize,
    /// Messages that are not receipts.
    pub other: usize,
}

/// A connection to the IMAP server, plain or TLS.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Connection for T {}

type ImapSession = Session<Box<dyn Connection>>;

/// A logged-in session and what the server offers. The session is lent out while idling.
struct Connected {
    session: Option<ImapSession>,
    can_move: bool,
    can_idle: bool,
}

impl Connected {
    fn session(&mut self) -> Result<&mut ImapSession, MailboxError> {
        self.session
            .as_mut()
            .ok_or_else(|| MailboxError::Connection("the session was lost while idling".into()))
    }
}

/// Reads the sender's PEC mailbox for receipts.
pub struct ReceiptReader {
    config: MailboxConfig,
    trusted: ProviderCertificates,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
}

impl ReceiptReader {
    /// Checks the configuration.
    pub fn new(config: MailboxConfig) -> Result<Self, ConfigError> {
        let tls = match config.security {
            ImapSecurity::Plain => {
                if !is_loopback(&config.host) {
                    return Err(ConfigError::invalid(
                        "pec.mailbox.security",
                        "plain IMAP is allowed only toward a loopback server; use tls",
                    ));
                }
                None
            }
            ImapSecurity::Tls => {
                let client = config.roots.client_config(&[])?;
                let name = rustls::pki_types::ServerName::try_from(config.host.clone())
                    .map_err(|e| ConfigError::invalid("pec.mailbox.host", e.to_string()))?;
                Some((tokio_rustls::TlsConnector::from(Arc::new(client)), name))
            }
        };
        for (setting, folder) in [
            ("pec.mailbox.inbox", &config.inbox),
            ("pec.mailbox.processed", &config.processed),
            ("pec.mailbox.other", &config.other),
        ] {
            if folder.is_empty() || folder.chars().any(|c| c.is_control() || c == '"') {
                return Err(ConfigError::invalid(
                    setting,
                    "a folder name, without quotes or control characters",
                ));
            }
        }
        if config.processed == config.inbox || config.other == config.inbox {
            return Err(ConfigError::invalid(
                "pec.mailbox.processed",
                "the folders for processed and other messages must differ from the inbox",
            ));
        }
        let trusted = ProviderCertificates::from_pem(&config.provider_certificates)?;
        Ok(Self {
            config,
            trusted,
            tls,
        })
    }

    /// One pass: connects, handles every message of the inbox, logs out.
    pub async fn read_once<S: Store>(&self, engine: &Engine<S>) -> Result<Pass, MailboxError> {
        let mut connected = self.connect().await?;
        let pass = self.pass(&mut connected, engine).await;
        if let Some(mut session) = connected.session.take() {
            let _ = tokio::time::timeout(self.config.timeout, session.logout()).await;
        }
        pass
    }

    /// Passes until `shutdown` turns true, waiting in IDLE (or sleeping) in between; failures
    /// are logged and retried after `poll`.
    pub async fn run<S: Store>(
        &self,
        engine: Arc<Engine<S>>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        while !*shutdown.borrow() {
            match self.connect().await {
                Ok(mut session) => loop {
                    match self.pass(&mut session, &engine).await {
                        Ok(pass) if pass != Pass::default() => {
                            tracing::info!(?pass, "PEC mailbox read");
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(%error, "PEC mailbox pass failed; retrying later");
                            break;
                        }
                    }
                    let waited = tokio::select! {
                        waited = self.wait(&mut session) => waited,
                        _ = shutdown.changed() => return,
                    };
                    if let Err(error) = waited {
                        tracing::debug!(%error, "PEC mailbox connection ended; reconnecting");
                        break;
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "PEC mailbox unreachable; retrying later");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn connect(&self) -> Result<Connected, MailboxError> {
        let port = self.config.port.unwrap_or(match self.config.security {
            ImapSecurity::Tls => 993,
            ImapSecurity::Plain => 143,
        });
        let address = (self.config.host.as_str(), port);
        let tcp = self
            .timed(async {
                TcpStream::connect(address)
                    .await
                    .map_err(|e| MailboxError::Connection(e.to_string()))
            })
            .await?;
        let stream: Box<dyn Connection> = match &self.tls {
            None => Box::new(tcp),
            Some((connector, name)) => {
                let tls = self
                    .timed(async {
                        connector
                            .connect(name.clone(), tcp)
                            .await
                            .map_err(|e| MailboxError::Connection(format!("TLS: {e}")))
                    })
                    .await?;
                Box::new(tls)
            }
        };
        let mut client = async_imap::Client::new(stream);
        self.timed(async {
            match client.read_response().await {
                Ok(Some(_greeting)) => Ok(()),
                Ok(None) => Err(MailboxError::Connection(
                    "the server closed the connection before its greeting".into(),
                )),
                Err(e) => Err(MailboxError::Connection(e.to_string())),
            }
        })
        .await?;
        let mut session: ImapSession = self
            .timed(async {
                client
                    .login(&self.config.username, &self.config.password)
                    .await
                    .map_err(|(error, _)| match error {
                        async_imap::error::Error::Io(io) => {
                            MailboxError::Connection(io.to_string())
                        }
                        other => MailboxError::Login(other.to_string()),
                    })
            })
            .await?;
        let capabilities = self
            .timed(async { session.capabilities().await.map_err(protocol) })
            .await?;
        let can_move = capabilities.has_str("MOVE");
        let can_idle = capabilities.has_str("IDLE");
        for folder in [&self.config.processed, &self.config.other] {
            // Already there is the usual answer: only the moves below tell a real failure.
            let _ = self
                .timed(async { session.create(folder).await.map_err(protocol) })
                .await;
        }
        Ok(Connected {
            session: Some(session),
            can_move,
            can_idle,
        })
    }

    async fn pass<S: Store>(
        &self,
        connected: &mut Connected,
        engine: &Engine<S>,
    ) -> Result<Pass, MailboxError> {
        let can_move = connected.can_move;
        let session = connected.session()?;
        self.timed(async { session.select(&self.config.inbox).await.map_err(protocol) })
            .await?;
        let mut uids: Vec<u32> = self
            .timed(async { session.uid_search("ALL").await.map_err(protocol) })
            .await?
            .into_iter()
            .collect();
        uids.sort_unstable();
        let mut pass = Pass::default();
        for uid in uids {
            let raw = self.fetch(session, uid).await?;
            let Some(raw) = raw else { continue };
            let folder = match Receipt::parse(&raw) {
                Ok(receipt) => match receipt.for_engine(raw, &self.trusted) {
                    Some(receipt) => match engine.record_receipt(receipt).await? {
                        ReceiptOutcome::Recorded { .. } => {
                            pass.recorded += 1;
                            &self.config.processed
                        }
                        ReceiptOutcome::Duplicate => {
                            pass.duplicates += 1;
                            &self.config.processed
                        }
                        ReceiptOutcome::UnknownDelivery => {
                            pass.unknown += 1;
                            &self.config.other
                        }
                    },
                    None => {
                        tracing::info!(
                            uid,
                            "a PEC receipt of a message io did not send; moved aside"
                        );
                        pass.unknown += 1;
                        &self.config.other
                    }
                },
                Err(error) => {
                    tracing::info!(uid, %error, "not a PEC receipt; moved aside");
                    pass.other += 1;
                    &self.config.other
                }
            };
            self.move_to(session, can_move, uid, folder).await?;
        }
        Ok(pass)
    }

    async fn fetch(
        &self,
        session: &mut ImapSession,
        uid: u32,
    ) -> Result<Option<Vec<u8>>, MailboxError> {
        self.timed(async {
            let mut fetches = session
                .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                .await
                .map_err(protocol)?;
            let mut body = None;
            while let Some(fetch) = fetches.try_next().await.map_err(protocol)? {
                if fetch.uid == Some(uid)
                    && let Some(bytes) = fetch.body()
                {
                    body = Some(bytes.to_vec());
                }
            }
            Ok(body)
        })
        .await
    }

    async fn move_to(
        &self,
        session: &mut ImapSession,
        can_move: bool,
        uid: u32,
        folder: &str,
    ) -> Result<(), MailboxError> {
        let set = uid.to_string();
        self.timed(async {
            if can_move {
                return session.uid_mv(&set, folder).await.map_err(protocol);
            }
            session.uid_copy(&set, folder).await.map_err(protocol)?;
            session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await
                .map_err(protocol)?
                .try_collect::<Vec<_>>()
                .await
                .map_err(protocol)?;
            session
                .uid_expunge(&set)
                .await
                .map_err(protocol)?
                .try_collect::<Vec<_>>()
                .await
                .map_err(protocol)?;
            Ok(())
        })
        .await
    }

    /// Waits for news: IDLE up to `poll` where offered, a sleep of `poll` otherwise.
    async fn wait(&self, connected: &mut Connected) -> Result<(), MailboxError> {
        if !connected.can_idle {
            tokio::time::sleep(self.config.poll).await;
            let session = connected.session()?;
            return self
                .timed(async { session.noop().await.map_err(protocol) })
                .await;
        }
        // IDLE takes the session by value and gives it back at DONE; if anything fails in
        // between, the session is gone and the caller reconnects.
        let session = connected
            .session
            .take()
            .ok_or_else(|| MailboxError::Connection("no session to idle on".into()))?;
        let mut idle = session.idle();
        self.timed(async { idle.init().await.map_err(protocol) })
            .await?;
        let (waiting, _interrupt) = idle.wait_with_timeout(self.config.poll);
        waiting.await.map_err(protocol)?;
        let session = self
            .timed(async { idle.done().await.map_err(protocol) })
            .await?;
        connected.session = Some(session);
        Ok(())
    }

    async fn timed<T>(
        &self,
        work: impl Future<Output = Result<T, MailboxError>>,
    ) -> Result<T, MailboxError> {
        tokio::time::timeout(self.config.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(MailboxError::Connection(format!(
                    "no answer within {:?}",
                    self.config.timeout
                )))
            })
    }
}
