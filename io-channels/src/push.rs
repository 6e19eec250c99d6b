//! The push channel: one push delivery reaches every device the citizen registered, each through
//! its provider (APNs or FCM), and comes to one outcome.
//!
//! - **Texts**: anonymous unless the citizen chose FULL previews and the message does not require
//!   secure channels (`io_core::notification_text::push_text`).
//! - **No device notified twice**: when some devices accepted and another must be retried, the
//!   devices done are kept in the store (record space [`PUSH_PROGRESS`], keyed by delivery id)
//!   before the retry is reported, and skipped on the next attempt.
//! - **Pruning**: a device the provider no longer knows is removed from the citizen's
//!   installations, except when the provider says it stopped knowing it before the installation
//!   was last registered (APNs 410 timestamp): then the app registered again since, and the
//!   newer registration stays.
//! - **One outcome**: any retriable device → that retry (the longest `retry_after` wins); else
//!   any device notified now or before → `Delivered`; else every device gone → `InvalidRecipient`;
//!   else the first permanent reason.

use std::sync::Arc;
use std::time::Duration;

use io_core::{
    Channel, ChannelKind, DeliveryJob, Installation, InstallationId, Outcome, PermanentReason,
    PushPlatform, Store, Timestamp, TransientCause, notification_text,
};
use serde::{Deserialize, Serialize};

#[cfg(feature = "apns")]
use crate::ApnsClient;
#[cfg(feature = "fcm")]
use crate::FcmClient;

/// The record space holding which devices a push delivery already reached.
pub const PUSH_PROGRESS: &str = "push_progress";

/// What a push says and how the provider should treat it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushNotification {
    /// The delivery id as a UUID: APNs `apns-id`, FCM message label.
    pub id: String,
    /// The bold first line.
    pub title: String,
    /// The line below.
    pub body: String,
    /// The message to open when the citizen taps.
    pub message_id: String,
    /// When the provider should stop trying (seconds since the epoch): the message's TTL end.
    pub expires_at: u64,
    /// How long the provider may keep trying from now (FCM `android.ttl`).
    pub time_to_live: Duration,
}

/// Whether a device token should be removed from the citizen's installations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prune {
    /// Keep it.
    Keep,
    /// The provider says it does not exist: remove it.
    Remove,
    /// The provider stopped knowing it at this instant: remove it unless the app registered it
    /// again later.
    IfRegisteredBefore(Timestamp),
}

/// A provider's answer for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceResult {
    /// What it means for the delivery.
    pub outcome: Outcome,
    /// What to do with the device token.
    pub prune: Prune,
}

impl DeviceResult {
    /// An outcome that does not touch the installation.
    pub fn keep(outcome: Outcome) -> Self {
        Self {
            outcome,
            prune: Prune::Keep,
        }
    }
}

/// Which devices of a delivery were notified already.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    notified: Vec<InstallationId>,
    provider_refs: Vec<String>,
}

/// Push notifications through the providers that are configured.
pub struct PushChannel<S: Store> {
    store: Arc<S>,
    #[cfg(feature = "apns")]
    apns: Option<ApnsClient>,
    #[cfg(feature = "fcm")]
    fcm: Option<FcmClient>,
}

impl<S: Store> PushChannel<S> {
    /// A push channel with no provider yet; add them with `with_apns` / `with_fcm`.
    pub fn new(store: Arc<S>) -> Self {
        Self {
            store,
            #[cfg(feature = "apns")]
            apns: None,
            #[cfg(feature = "fcm")]
            fcm: None,
        }
    }

    /// Sends to Apple devices through `client`.
    #[cfg(feature = "apns")]
    pub fn with_apns(mut self, client: ApnsClient) -> Self {
        self.apns = Some(client);
        self
    }

    /// Sends to Android devices through `client`.
    #[cfg(feature = "fcm")]
    pub fn with_fcm(mut self, client: FcmClient) -> Self {
        self.fcm = Some(client);
        self
    }

    /// The APNs client, if configured (for its counters).
    #[cfg(feature = "apns")]
    pub fn apns(&self) -> Option<&ApnsClient> {
        self.apns.as_ref()
    }

    /// The FCM client, if configured (for its counters).
    #[cfg(feature = "fcm")]
    pub fn fcm(&self) -> Option<&FcmClient> {
        self.fcm.as_ref()
    }

    async fn send_to(
        &self,
        installation: &Installation,
        notification: &PushNotification,
    ) -> DeviceResult {
        let token = installation.push_channel.as_str();
        match installation.platform {
            #[cfg(feature = "apns")]
            PushPlatform::Apns => {
                if let Some(client) = &self.apns {
                    return client.send(token, notification).await;
                }
            }
            #[cfg(feature = "fcm")]
            PushPlatform::Fcmv1 => {
                if let Some(client) = &self.fcm {
                    return client.send(token, notification).await;
                }
            }
            #[allow(unreachable_patterns)] // reachable when a provider feature is off
            _ => {}
        }
        DeviceResult::keep(Outcome::Permanent(PermanentReason::new(
            "channel_not_configured",
            format!(
                "no push provider is configured for {:?} devices",
                installation.platform
            ),
        )))
    }

    async fn progress(&self, key: &str) -> Result<Progress, Outcome> {
        match self.store.record(PUSH_PROGRESS, key.as_bytes()).await {
            Ok(Some(bytes)) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
            Ok(None) => Ok(Progress::default()),
            Err(error) => Err(store_outcome(&error)),
        }
    }

    /// Removes a device the provider no longer knows, per `prune`.
    async fn prune(&self, job: &DeliveryJob<'_>, installation: &Installation, prune: Prune) {
        let remove = match prune {
            Prune::Keep => false,
            Prune::Remove => true,
            Prune::IfRegisteredBefore(gone_at) => installation.updated_at <= gone_at,
        };
        if !remove {
            return;
        }
        let fiscal_code = &job.delivery.fiscal_code;
        match self
            .store
            .remove_installation(fiscal_code, &installation.installation_id)
            .await
        {
            Ok(()) => tracing::info!(
                installation = installation.installation_id.as_str(),
                platform = ?installation.platform,
                "device token pruned: the provider no longer knows it"
            ),
            Err(error) => {
                tracing::warn!(%error, "could not prune a device token; it will be tried again")
            }
        }
    }
}

/// The notification for `job`: texts by the citizen's preview choice, ids and expiry.
pub fn notification_for(job: &DeliveryJob<'_>) -> PushNotification {
    let preview = match job.profile.map(|p| p.push_notifications_content_type) {
        Some(io_core::PushNotificationsContentType::Full) => notification_text::PushPreview::Full,
        _ => notification_text::PushPreview::Anonymous,
    };
    let text = notification_text::push_text(
        preview,
        job.message
            .requires_secure_channels(job.service.require_secure_channels),
        &job.service.organization_name,
        &job.message.body.content.subject,
    );
    let expires_at = job.message.expires_at();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    PushNotification {
        id: job.delivery.id.as_uuid(),
        title: text.title,
        body: text.body,
        message_id: job.message.id.to_string(),
        expires_at: u64::try_from(expires_at.as_millis() / 1000).unwrap_or(0),
        time_to_live: Duration::from_millis(
            u64::try_from(expires_at.as_millis().saturating_sub(now_ms)).unwrap_or(0),
        ),
    }
}

fn store_outcome(error: &io_core::StoreError) -> Outcome {
    if error.is_retriable() {
        Outcome::Transient {
            retry_after: None,
            cause: TransientCause::Other(error.to_string()),
        }
    } else {
        Outcome::Permanent(PermanentReason::new("store_error", error.to_string()))
    }
}

#[async_trait::async_trait]
impl<S: Store> Channel for PushChannel<S> {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Push
    }

    async fn send(&self, job: DeliveryJob<'_>) -> Outcome {
        let installations = match self.store.installations(&job.delivery.fiscal_code).await {
            Ok(installations) => installations,
            Err(error) => return store_outcome(&error),
        };
        let key = job.delivery.id.to_string();
        let mut progress = match self.progress(&key).await {
            Ok(progress) => progress,
            Err(outcome) => return outcome,
        };
        let pending: Vec<&Installation> = installations
            .iter()
            .filter(|i| !progress.notified.contains(&i.installation_id))
            .collect();
        if pending.is_empty() {
            return if progress.notified.is_empty() {
                // Every device was removed since the message was processed.
                Outcome::InvalidRecipient
            } else {
                delivered(&progress)
            };
        }
        let notification = notification_for(&job);
        let results = futures::future::join_all(
            pending
                .iter()
                .map(|installation| self.send_to(installation, &notification)),
        )
        .await;

        let mut retry: Option<Outcome> = None;
        let mut permanent: Option<Outcome> = None;
        let mut notified_now = false;
        for (installation, result) in pending.iter().zip(results) {
            self.prune(&job, installation, result.prune).await;
            match result.outcome {
                Outcome::Delivered { provider_ref } => {
                    notified_now = true;
                    progress.notified.push(installation.installation_id.clone());
                    progress.provider_refs.extend(provider_ref);
                }
                outcome @ (Outcome::Transient { .. } | Outcome::RateLimited { .. }) => {
                    retry = Some(match retry {
                        Some(previous) if retry_after(&previous) >= retry_after(&outcome) => {
                            previous
                        }
                        _ => outcome,
                    });
                }
                Outcome::InvalidRecipient => {}
                outcome @ Outcome::Permanent(_) => {
                    permanent.get_or_insert(outcome);
                }
            }
        }
        if let Some(retry) = retry {
            if notified_now {
                // Remember who has it before reporting the retry, or they would get it twice.
                let bytes = serde_json::to_vec(&progress).expect("progress serializes");
                if let Err(error) = self
                    .store
                    .put_record(PUSH_PROGRESS, key.as_bytes(), Some(&bytes))
                    .await
                {
                    tracing::warn!(%error, "could not record push progress; devices already notified may be notified again");
                }
            }
            return retry;
        }
        if !progress.notified.is_empty() {
            return delivered(&progress);
        }
        permanent.unwrap_or(Outcome::InvalidRecipient)
    }
}

fn delivered(progress: &Progress) -> Outcome {
    Outcome::Delivered {
        provider_ref: Some(progress.provider_refs.join(",")).filter(|r| !r.is_empty()),
    }
}

fn retry_after(outcome: &Outcome) -> Option<Duration> {
    match outcome {
        Outcome::Transient { retry_after, .. } | Outcome::RateLimited { retry_after } => {
            *retry_after
        }
        _ => None,
    }
}
