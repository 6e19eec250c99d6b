//! What one delivery attempt came to. Channels classify their provider's answer into an
//! [`Outcome`]; the engine alone decides what happens next (retry, expire, fail).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The typed result of one `Channel::send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted the notification (or the inbox holds the message).
    Delivered {
        /// The provider's own id for it, kept as evidence (e.g. APNs `apns-id`, SMTP queue id).
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
