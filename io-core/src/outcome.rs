//! What one delivery attempt came to. Channels classify their provider's answer into an
//! [`Outcome`]; the engine alone decides what happens next (retry, expire, fail).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{EmailAddress, InstallationId, Timestamp};

/// The typed result of one `Channel::send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted the notification (or the inbox holds the message).
    Delivered {
        /// The provider's own id for it, kept as evidence (e.g. APNs `apns-id`, SMTP queue id).
        provider_ref: Option<String>,
    },
    /// PEC: the sender's provider took the message; whether it is delivered, its receipts will
    /// say (`Engine::record_receipt`).
    Submitted {
        /// The SMTP server's answer (queue id), kept as evidence.
        provider_ref: Option<String>,
    },
    /// A failure that may succeed later: timeout, connection error, 5xx.
    Transient {
        /// The provider's hint (`Retry-After`), honoured as a lower bound.
        retry_after: Option<Duration>,
        /// What failed, for the journal and the metrics.
        cause: TransientCause,
    },
    /// The provider said "too many": 429 or its quota answer.
    RateLimited {
        /// The provider's hint (`Retry-After`), honoured as a lower bound.
        retry_after: Option<Duration>,
    },
    /// A failure that will not go away by retrying: bad payload, auth, misconfiguration.
    Permanent(PermanentReason),
    /// The recipient does not exist any more at the provider: APNs 410, FCM UNREGISTERED,
    /// SMTP 550. Not retried.
    InvalidRecipient,
}

/// Why a transient failure happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransientCause {
    /// No answer within the channel's timeout (also used by the engine's own send timeout).
    Timeout,
    /// The connection could not be opened or broke.
    Connection,
    /// The provider answered with this server-error status.
    ServerError(u16),
    /// Anything else the channel knows to be temporary, described.
    Other(String),
}

/// Why a permanent failure happened: a short stable code plus a human description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermanentReason {
    /// A short, stable, machine-readable code (e.g. `bad_payload`, `channel_not_configured`).
    pub code: String,
    /// What the provider or the channel said, for people.
    pub detail: String,
}

impl PermanentReason {
    /// A reason with a code and a detail.
    pub fn new(code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for PermanentReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

/// The outcome as recorded in the journal and on the delivery: serializable, without durations
/// that only matter for scheduling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutcomeRecord {
    /// See [`Outcome::Delivered`].
    Delivered {
        /// The provider's reference.
        provider_ref: Option<String>,
    },
    /// See [`Outcome::Submitted`].
    Submitted {
        /// The provider's reference.
        provider_ref: Option<String>,
    },
    /// See [`Outcome::Transient`].
    Transient {
        /// The provider's hint in milliseconds.
        retry_after_ms: Option<u64>,
        /// What failed.
        cause: TransientCause,
    },
    /// See [`Outcome::RateLimited`].
    RateLimited {
        /// The provider's hint in milliseconds.
        retry_after_ms: Option<u64>,
    },
    /// See [`Outcome::Permanent`].
    Permanent {
        /// Why.
        reason: PermanentReason,
    },
    /// See [`Outcome::InvalidRecipient`].
    InvalidRecipient,
}

fn millis(duration: Option<Duration>) -> Option<u64> {
    duration.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl From<&Outcome> for OutcomeRecord {
    fn from(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Delivered { provider_ref } => Self::Delivered {
                provider_ref: provider_ref.clone(),
            },
            Outcome::Submitted { provider_ref } => Self::Submitted {
                provider_ref: provider_ref.clone(),
            },
            Outcome::Transient { retry_after, cause } => Self::Transient {
                retry_after_ms: millis(*retry_after),
                cause: cause.clone(),
            },
            Outcome::RateLimited { retry_after } => Self::RateLimited {
                retry_after_ms: millis(*retry_after),
            },
            Outcome::Permanent(reason) => Self::Permanent {
                reason: reason.clone(),
            },
            Outcome::InvalidRecipient => Self::InvalidRecipient,
        }
    }
}

/// What a channel reports for one attempt: the [`Outcome`], and the changes the engine must
/// record with it. A channel never writes to the store itself: the engine commits the effects
/// in the same atomic write as the delivery's new state, so a crash can never keep one without
/// the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// What the attempt came to.
    pub outcome: Outcome,
    /// What to change beside the delivery's state.
    pub effects: Vec<Effect>,
}

impl From<Outcome> for Report {
    fn from(outcome: Outcome) -> Self {
        Self {
            outcome,
            effects: Vec::new(),
        }
    }
}

impl Report {
    /// An outcome with effects.
    pub fn with_effects(outcome: Outcome, effects: Vec<Effect>) -> Self {
        Self { outcome, effects }
    }
}

/// A change a channel asks for, recorded by the engine with the delivery's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The relay said the mailbox does not exist (SMTP 550/551/553): the citizen's profile marks
    /// this address bounced, if it is still the profile's address, so no further email goes to
    /// it until the citizen changes it.
    EmailBounced(EmailAddress),
    /// The provider no longer knows this device (APNs 410, FCM UNREGISTERED): the installation
    /// is removed, unless the app registered it again after the registration the channel sent
    /// to (its `updated_at` is then newer than `registered_at`).
    PruneDevice {
        /// The installation.
        installation_id: InstallationId,
        /// The `updated_at` of the registration the channel sent to.
        registered_at: Timestamp,
    },
    /// These devices received the notification in this attempt: a retry of the same delivery
    /// skips them, so no device is notified twice.
    DevicesNotified(Vec<InstallationId>),
}
