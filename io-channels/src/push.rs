//! The push channel: one push delivery reaches every device the citizen registered, each through
//! its provider (APNs or FCM), and comes to one outcome.
//!
//! - **Devices**: the engine reads the citizen's installations into the job
//!   (`DeliveryJob::installations`); the channel never reads or writes the store.
//! - **Texts**: anonymous unless the citizen chose FULL previews and the message does not require
//!   secure channels (`io_core::notification_text::push_text`).
//! - **No device notified twice**: the devices that accepted in an attempt are reported as
//!   [`Effect::DevicesNotified`]; the engine records them on the delivery
//!   (`Delivery::devices_notified`) in the same write as the attempt's outcome, and a retry
//!   skips them. So a final `Delivered`'s `provider_ref` lists only the provider ids of the
//!   devices reached in that attempt (those of earlier attempts are not kept); which devices
//!   were reached across attempts is what `devices_notified` says.
//! - **Pruning**: a device the provider no longer knows is reported as [`Effect::PruneDevice`]
//!   with the registration the channel sent to, and the engine removes it unless the app
//!   registered again since. When the provider says when it stopped knowing the token (APNs
//!   410 timestamp) and the installation was registered after that, nothing is reported: the
//!   newer registration stays.
//! - **One outcome**: any retriable device → that retry (the longest `retry_after` wins); else
//!   any device notified now or before → `Delivered`; else every device gone → `InvalidRecipient`;
//!   else the first permanent reason.

use std::time::Duration;

use io_core::{
    Channel, ChannelKind, DeliveryJob, Effect, Installation, InstallationId, Outcome,
    PermanentReason, PushPlatform, Report, Timestamp, notification_text,
};

#[cfg(feature = "apns")]
use crate::ApnsClient;
#[cfg(feature = "fcm")]
use crate::FcmClient;

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
    /// How long the provider may keep trying from `now` (FCM `android.ttl`).
    pub time_to_live: Duration,
    /// The engine's clock at the attempt: a provider's `Retry-After` date is measured from it.
    pub now: Timestamp,
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

/// Push notifications through the providers that are configured.
pub struct PushChannel {
    #[cfg(feature = "apns")]
    apns: Option<ApnsClient>,
    #[cfg(feature = "fcm")]
    fcm: Option<FcmClient>,
}

impl Default for PushChannel {
    fn default() -> Self {
        Self::new()
    }
}

impl PushChannel {
    /// A push channel with no provider yet; add them with `with_apns` / `with_fcm`.
    pub fn new() -> Self {
        Self {
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
}

/// The prune a provider's answer asks for, as the effect to report: `None` to keep the device.
/// `registered_at` is the registration the channel sent to, so the engine keeps a device the
/// app registered again meanwhile.
fn prune_effect(installation: &Installation, prune: Prune) -> Option<Effect> {
    let remove = match prune {
        Prune::Keep => false,
        Prune::Remove => true,
        Prune::IfRegisteredBefore(gone_at) => installation.updated_at <= gone_at,
    };
    remove.then(|| Effect::PruneDevice {
        installation_id: installation.installation_id.clone(),
        registered_at: installation.updated_at,
    })
}

/// The notification for `job`: texts by the citizen's preview choice, ids and expiry, the
/// time to live counted from the engine's clock.
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
    PushNotification {
        id: job.delivery.id.as_uuid(),
        title: text.title,
        body: text.body,
        message_id: job.message.id.to_string(),
        expires_at: u64::try_from(expires_at.as_millis() / 1000).unwrap_or(0),
        time_to_live: expires_at.since(job.now),
        now: job.now,
    }
}

#[async_trait::async_trait]
impl Channel for PushChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Push
    }

    async fn send(&self, job: DeliveryJob<'_>) -> Report {
        let already = &job.delivery.devices_notified;
        let pending: Vec<&Installation> = job
            .installations
            .iter()
            .filter(|i| !already.contains(&i.installation_id))
            .collect();
        if pending.is_empty() {
            return Report::from(if already.is_empty() {
                // Every device was removed since the message was processed.
                Outcome::InvalidRecipient
            } else {
                // The devices an earlier attempt left to retry were removed since: every device
                // still registered has it (earlier provider ids are not kept).
                Outcome::Delivered { provider_ref: None }
            });
        }
        let notification = notification_for(&job);
        let results = futures::future::join_all(
            pending
                .iter()
                .map(|installation| self.send_to(installation, &notification)),
        )
        .await;
        let answers = pending
            .iter()
            .zip(results)
            .map(|(installation, result)| (*installation, result));
        combine(answers, !already.is_empty())
    }
}

/// One outcome and its effects from every device's answer of an attempt; `notified_before`
/// when an earlier attempt of the delivery reached a device already.
fn combine<'a>(
    answers: impl IntoIterator<Item = (&'a Installation, DeviceResult)>,
    notified_before: bool,
) -> Report {
    let mut retry: Option<Outcome> = None;
    let mut permanent: Option<Outcome> = None;
    let mut notified: Vec<InstallationId> = Vec::new();
    let mut provider_refs: Vec<String> = Vec::new();
    let mut effects = Vec::new();
    for (installation, result) in answers {
        if let Some(prune) = prune_effect(installation, result.prune) {
            tracing::debug!(
                installation = installation.installation_id.as_str(),
                platform = ?installation.platform,
                "the provider no longer knows the device; reporting it for pruning"
            );
            effects.push(prune);
        }
        match result.outcome {
            // A push provider's answer is never "submitted" (only PEC's is).
            Outcome::Delivered { provider_ref } | Outcome::Submitted { provider_ref } => {
                notified.push(installation.installation_id.clone());
                provider_refs.extend(provider_ref);
            }
            outcome @ (Outcome::Transient { .. } | Outcome::RateLimited { .. }) => {
                retry = Some(match retry {
                    Some(previous) if retry_after(&previous) >= retry_after(&outcome) => previous,
                    _ => outcome,
                });
            }
            Outcome::InvalidRecipient => {}
            outcome @ Outcome::Permanent(_) => {
                permanent.get_or_insert(outcome);
            }
        }
    }
    let notified_now = !notified.is_empty();
    if notified_now {
        // Recorded with the outcome, so a retry does not notify these devices again.
        effects.push(Effect::DevicesNotified(notified));
    }
    let outcome = if let Some(retry) = retry {
        retry
    } else if notified_now || notified_before {
        Outcome::Delivered {
            provider_ref: Some(provider_refs.join(",")).filter(|r| !r.is_empty()),
        }
    } else {
        permanent.unwrap_or(Outcome::InvalidRecipient)
    };
    Report::with_effects(outcome, effects)
}

fn retry_after(outcome: &Outcome) -> Option<Duration> {
    match outcome {
        Outcome::Transient { retry_after, .. } | Outcome::RateLimited { retry_after } => {
            *retry_after
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use io_core::TransientCause;

    const REGISTERED: Timestamp = Timestamp::from_millis(1_767_225_600_000);

    fn device(id: &str) -> Installation {
        Installation {
            installation_id: InstallationId::parse(id).unwrap(),
            platform: PushPlatform::Apns,
            push_channel: "abcdef".into(),
            updated_at: REGISTERED,
        }
    }

    fn delivered(r: &str) -> DeviceResult {
        DeviceResult::keep(Outcome::Delivered {
            provider_ref: Some(r.into()),
        })
    }

    fn gone(prune: Prune) -> DeviceResult {
        DeviceResult {
            outcome: Outcome::InvalidRecipient,
            prune,
        }
    }

    fn prune_of(id: &str) -> Effect {
        Effect::PruneDevice {
            installation_id: InstallationId::parse(id).unwrap(),
            registered_at: REGISTERED,
        }
    }

    #[test]
    fn a_prune_names_the_registration_sent_to_unless_it_is_newer_than_the_gone_instant() {
        let phone = device("phone");
        assert_eq!(prune_effect(&phone, Prune::Keep), None);
        assert_eq!(prune_effect(&phone, Prune::Remove), Some(prune_of("phone")));
        let before = Timestamp::from_millis(REGISTERED.as_millis() - 1);
        let after = Timestamp::from_millis(REGISTERED.as_millis() + 1);
        assert_eq!(
            prune_effect(&phone, Prune::IfRegisteredBefore(after)),
            Some(prune_of("phone"))
        );
        assert_eq!(
            prune_effect(&phone, Prune::IfRegisteredBefore(REGISTERED)),
            Some(prune_of("phone")),
            "gone at the very instant of the registration: pruned"
        );
        assert_eq!(
            prune_effect(&phone, Prune::IfRegisteredBefore(before)),
            None,
            "registered again after the provider forgot the token: kept"
        );
    }

    #[test]
    fn a_retry_reports_the_devices_that_already_have_the_notification() {
        let (phone, tablet, old) = (device("phone"), device("tablet"), device("old"));
        let busy = DeviceResult::keep(Outcome::Transient {
            retry_after: Some(Duration::from_secs(5)),
            cause: TransientCause::ServerError(503),
        });
        let report = combine(
            [
                (&phone, delivered("p1")),
                (&tablet, busy.clone()),
                (&old, gone(Prune::Remove)),
            ],
            false,
        );
        assert_eq!(report.outcome, busy.outcome);
        assert_eq!(
            report.effects,
            vec![
                prune_of("old"),
                Effect::DevicesNotified(vec![phone.installation_id.clone()]),
            ]
        );
    }

    #[test]
    fn the_outcome_is_delivered_if_any_device_has_it_now_or_before() {
        let (phone, tablet) = (device("phone"), device("tablet"));
        let report = combine(
            [(&phone, delivered("p1")), (&tablet, delivered("t1"))],
            false,
        );
        assert_eq!(
            report.outcome,
            Outcome::Delivered {
                provider_ref: Some("p1,t1".into())
            },
            "only this attempt's provider ids"
        );
        let report = combine([(&tablet, gone(Prune::Remove))], true);
        assert_eq!(report.outcome, Outcome::Delivered { provider_ref: None });
        assert_eq!(report.effects, vec![prune_of("tablet")]);
        let report = combine([(&tablet, gone(Prune::Remove))], false);
        assert_eq!(report.outcome, Outcome::InvalidRecipient);
        let refused = Outcome::Permanent(PermanentReason::new("apns_BadTopic", "x"));
        let report = combine(
            [
                (&phone, DeviceResult::keep(refused.clone())),
                (&tablet, gone(Prune::Remove)),
            ],
            false,
        );
        assert_eq!(report.outcome, refused);
    }
}
