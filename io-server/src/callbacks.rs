//! Sender callbacks: a service that registered a callback URL receives a signed POST
//! (`IO-Signature`, see `io_channels::webhook`) for every status change of its messages —
//! accepted, processed, rejected, failed, and each delivery's sent / retrying / failed / expired.
//!
//! **Source of truth: the journal.** Every status change is already a journal entry, durable
//! and ordered. A callback is the journal entry at position `n` of the message, sent after
//! entries `0..n` were acknowledged with a 2xx. Per message, an *outbox* record (space
//! [`CALLBACK_OUTBOX`]) holds how many entries the receiver has acknowledged; it is written when
//! the message is accepted and removed once the message is final and fully reported.
//!
//! **Exactly once, in order.** One task at a time drains a message, entry by entry, advancing
//! the cursor after each 2xx. A crash between a 2xx and the cursor write repeats that one event
//! with the same `IO-Event-Id`, which receivers use to drop it. After a restart the outbox is
//! scanned and every unfinished message is drained again.
//!
//! **Retries.** Timeouts, connection errors, 408, 429 and 5xx retry the same event with the
//! jittered backoff (honouring `Retry-After`) up to `max_attempts`; then, or on any other
//! answer, the event is recorded as abandoned in the log and the next one follows.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use io_channels::webhook::{UrlRefused, WebhookClient, WebhookConfig};
use io_core::journal::JournalEntry;
use io_core::{
    Committed, JournalEvent, MessageId, MessageStatus, Observer, Outcome, RetryPolicy, ServiceId,
    Store, StoreError,
};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::records::AppStore;

/// Callback settings per service: `{url, secret}`.
pub const CALLBACK_SETTINGS: &str = "callback_settings";
/// Per message: how many journal entries the receiver acknowledged.
pub const CALLBACK_OUTBOX: &str = "callback_outbox";

/// How callbacks are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbacksConfig {
    /// The HTTP client: timeout, trusted roots, and whether private addresses are allowed.
    pub webhook: WebhookConfig,
    /// The backoff between attempts at one event.
    pub retry: RetryPolicy,
    /// Attempts at one event before it is abandoned.
    pub max_attempts: u32,
    /// Callbacks in flight at once, across messages.
    pub concurrency: usize,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        Self {
            webhook: WebhookConfig::default(),
            retry: RetryPolicy::default(),
            max_attempts: 12,
            concurrency: 64,
        }
    }
}

/// A service's callback registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackSettings {
    /// Where events go.
    pub url: String,
    /// The HMAC key, hex; shown to the service once, when generated.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutboxEntry {
    service_id: ServiceId,
    /// Journal entries acknowledged (or abandoned) so far.
    sent: u64,
    /// Failed attempts at entry `sent`.
    attempts: u32,
}

/// Per message being drained: whether new events arrived meanwhile.
type InFlight = Mutex<HashMap<MessageId, bool>>;

/// The callback dispatcher.
pub struct Callbacks {
    store: Arc<AppStore>,
    client: WebhookClient,
    config: CallbacksConfig,
    enabled: RwLock<HashSet<ServiceId>>,
    wake: mpsc::UnboundedSender<MessageId>,
    woken: Mutex<Option<mpsc::UnboundedReceiver<MessageId>>>,
    in_flight: InFlight,
    permits: Semaphore,
}

/// Why a callback registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The URL is malformed or refused by the SSRF guard.
    #[error("callback url: {0}")]
    Url(#[from] UrlRefused),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: "callback record",
        detail: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("callback records serialize")
}

impl Callbacks {
    /// A dispatcher over `store`; call [`Callbacks::load`] then spawn [`Callbacks::run`].
    pub fn new(
        store: Arc<AppStore>,
        config: CallbacksConfig,
    ) -> Result<Arc<Self>, io_channels::ConfigError> {
        let client = WebhookClient::new(&config.webhook)?;
        let (wake, woken) = mpsc::unbounded_channel();
        Ok(Arc::new(Self {
            store,
            client,
            permits: Semaphore::new(config.concurrency.max(1)),
            config,
            enabled: RwLock::new(HashSet::new()),
            wake,
            woken: Mutex::new(Some(woken)),
            in_flight: Mutex::new(HashMap::new()),
        }))
    }

    /// Reads which services have callbacks.
    pub async fn load(&self) -> Result<(), StoreError> {
        for key in self.keys(CALLBACK_SETTINGS).await? {
            if let Ok(id) = ServiceId::parse(&String::from_utf8_lossy(&key)) {
                self.enabled
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id);
            }
        }
        Ok(())
    }

    /// Every key of a record space, page by page.
    async fn keys(&self, space: io_core::RecordSpace) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        loop {
            let page = self
                .store
                .records(space, b"", keys.last().map(Vec::as_slice), 500)
                .await?;
            if page.is_empty() {
                return Ok(keys);
            }
            keys.extend(page.into_iter().map(|(key, _)| key));
        }
    }

    fn is_enabled(&self, service: &ServiceId) -> bool {
        self.enabled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(service)
    }

    /// A service's registration.
    pub async fn settings(
        &self,
        service: &ServiceId,
    ) -> Result<Option<CallbackSettings>, StoreError> {
        self.store
            .record(CALLBACK_SETTINGS, service.as_str().as_bytes())
            .await?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Registers (or moves) a service's callback URL. The secret is kept when one exists,
    /// unless `rotate_secret`; a new one is generated otherwise.
    pub async fn register(
        &self,
        service: &ServiceId,
        url: &str,
        rotate_secret: bool,
    ) -> Result<CallbackSettings, RegisterError> {
        self.client.check_url(url)?;
        let secret = match self.settings(service).await? {
            Some(current) if !rotate_secret => current.secret,
            _ => {
                let mut bytes = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::StdRng::from_os_rng(), &mut bytes);
                hex::encode(bytes)
            }
        };
        let settings = CallbackSettings {
            url: url.to_owned(),
            secret,
        };
        self.store
            .put_record(
                CALLBACK_SETTINGS,
                service.as_str().as_bytes(),
                Some(&encode(&settings)),
            )
            .await?;
        self.enabled
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(service.clone());
        Ok(settings)
    }

    /// Stops callbacks for a service; events not yet sent are dropped.
    pub async fn unregister(&self, service: &ServiceId) -> Result<bool, StoreError> {
        let existed = self.settings(service).await?.is_some();
        self.store
            .put_record(CALLBACK_SETTINGS, service.as_str().as_bytes(), None)
            .await?;
        self.enabled
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(service);
        Ok(existed)
    }

    /// Called once a message is accepted (and again on an idempotent replay): opens its
    /// outbox if the service has callbacks.
    pub async fn watch(&self, message: MessageId, service: &ServiceId) -> Result<(), StoreError> {
        if !self.is_enabled(service) {
            return Ok(());
        }
        let entry = OutboxEntry {
            service_id: service.clone(),
            sent: 0,
            attempts: 0,
        };
        // Only if absent: a replay must not rewind a cursor.
        let _ = self
            .store
            .swap_record(
                CALLBACK_OUTBOX,
                &message.to_bytes(),
                None,
                Some(&encode(&entry)),
            )
            .await?;
        let _ = self.wake.send(message);
        Ok(())
    }

    /// The dispatcher loop: drains every message with pending events, until `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(mut woken) = self
            .woken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        if let Err(error) = self.recover().await {
            tracing::error!(%error, "callbacks: could not scan the outbox");
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                message = woken.recv() => {
                    let Some(message) = message else { return };
                    self.clone().start(message);
                }
            }
        }
    }

    /// Wakes every message whose outbox is still open (after a restart).
    async fn recover(&self) -> Result<(), StoreError> {
        for key in self.keys(CALLBACK_OUTBOX).await? {
            if let Ok(bytes) = <[u8; 16]>::try_from(key.as_slice()) {
                let _ = self.wake.send(MessageId::from_bytes(bytes));
            }
        }
        Ok(())
    }

    /// Drains `message` unless a task already does (then that task goes round once more).
    fn start(self: Arc<Self>, message: MessageId) {
        {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(dirty) = in_flight.get_mut(&message) {
                *dirty = true;
                return;
            }
            in_flight.insert(message, false);
        }
        tokio::spawn(async move {
            loop {
                if let Err(error) = self.drain(message).await {
                    tracing::warn!(%error, %message, "callbacks: draining failed; retried on the next event or restart");
                }
                let mut in_flight = self
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                match in_flight.get_mut(&message) {
                    Some(dirty) if *dirty => *dirty = false,
                    _ => {
                        in_flight.remove(&message);
                        return;
                    }
                }
            }
        });
    }

    /// Sends every unacknowledged journal entry of `message`, in order.
    async fn drain(&self, message: MessageId) -> Result<(), StoreError> {
        let key = message.to_bytes();
        let mut rng = rand::rngs::StdRng::from_os_rng();
        loop {
            let Some(bytes) = self.store.record(CALLBACK_OUTBOX, &key).await? else {
                return Ok(());
            };
            let mut state: OutboxEntry = decode(&bytes)?;
            let Some(settings) = self.settings(&state.service_id).await? else {
                return self.close(&key).await;
            };
            let journal = self.store.journal(&message).await?;
            let Some(raw) = journal.entries.get(state.sent as usize) else {
                if self.is_final(message).await? {
                    return self.close(&key).await;
                }
                return Ok(());
            };
            let entry = JournalEntry::from_bytes(state.sent as usize, raw).map_err(|e| {
                StoreError::Corrupt {
                    what: "journal entry",
                    detail: e.to_string(),
                }
            })?;
            let event_id = format!("{message}-{}", entry.seq);
            let body = serde_json::to_vec(&event_body(message, &state.service_id, &entry))
                .expect("events serialize");
            let unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let outcome = {
                let _permit = self.permits.acquire().await.expect("never closed");
                self.client
                    .post(
                        &settings.url,
                        settings.secret.as_bytes(),
                        &event_id,
                        body,
                        unix,
                    )
                    .await
            };
            let retry_after = match &outcome {
                Outcome::Delivered { .. } => {
                    state.sent += 1;
                    state.attempts = 0;
                    None
                }
                Outcome::Transient { retry_after, .. } | Outcome::RateLimited { retry_after } => {
                    state.attempts += 1;
                    if state.attempts >= self.config.max_attempts {
                        tracing::warn!(%event_id, attempts = state.attempts, ?outcome, "callback abandoned after its last attempt");
                        state.sent += 1;
                        state.attempts = 0;
                        None
                    } else {
                        let delay = self
                            .config
                            .retry
                            .delay(state.attempts, *retry_after, &mut rng);
                        Some(delay.min(MAX_CALLBACK_WAIT))
                    }
                }
                Outcome::Permanent(_) | Outcome::InvalidRecipient => {
                    tracing::warn!(%event_id, ?outcome, "callback refused by the receiver; abandoned");
                    state.sent += 1;
                    state.attempts = 0;
                    None
                }
            };
            // Compare-and-swap: an unregistration meanwhile (record gone) is not undone.
            let swapped = self
                .store
                .swap_record(CALLBACK_OUTBOX, &key, Some(&bytes), Some(&encode(&state)))
                .await?;
            if swapped.is_err() {
                return Ok(());
            }
            if let Some(wait) = retry_after {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Whether nothing more will be journaled for the message.
    async fn is_final(&self, message: MessageId) -> Result<bool, StoreError> {
        let Some(stored) = self.store.message(&message).await? else {
            return Ok(true); // erased
        };
        Ok(match stored.status {
            MessageStatus::Accepted => false,
            MessageStatus::Rejected(_) | MessageStatus::Failed => true,
            MessageStatus::Processed => self
                .store
                .deliveries(&message)
                .await?
                .iter()
                .all(|d| d.state.is_final()),
        })
    }

    async fn close(&self, key: &[u8]) -> Result<(), StoreError> {
        self.store.put_record(CALLBACK_OUTBOX, key, None).await
    }
}

impl Observer for Callbacks {
    fn committed(&self, change: Committed<'_>) {
        if self.is_enabled(change.service_id) {
            let _ = self.wake.send(change.message);
        }
    }
}

/// The JSON a receiver gets for one journal entry.
fn event_body(message: MessageId, service: &ServiceId, entry: &JournalEntry) -> serde_json::Value {
    let kind = match &entry.event {
        JournalEvent::Accepted { .. } => "message.accepted".to_owned(),
        JournalEvent::Processed { .. } => "message.processed".to_owned(),
        JournalEvent::Rejected { .. } => "message.rejected".to_owned(),
        JournalEvent::Failed { .. } => "message.failed".to_owned(),
        JournalEvent::Attempted { state, .. } => {
            format!("delivery.{}", state_name(state))
        }
        JournalEvent::Expired { .. } => "delivery.expired".to_owned(),
    };
    serde_json::json!({
        "id": format!("{message}-{}", entry.seq),
        "type": kind,
        "message_id": message.to_string(),
        "service_id": service.as_str(),
        "sequence": entry.seq,
        "at": entry.at.to_rfc3339(),
        "event": entry.event,
        "journal_hash": entry.hash,
    })
}

fn state_name(state: &io_core::DeliveryState) -> &'static str {
    match state {
        io_core::DeliveryState::Pending => "pending",
        io_core::DeliveryState::Retrying => "retrying",
        io_core::DeliveryState::Sent => "sent",
        io_core::DeliveryState::Expired => "expired",
        io_core::DeliveryState::Failed { .. } => "failed",
    }
}

/// The longest a drain may wait before its next attempt; a guard against a hostile
/// `Retry-After`.
pub const MAX_CALLBACK_WAIT: Duration = Duration::from_secs(3600);
