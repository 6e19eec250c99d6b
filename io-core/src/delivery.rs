//! Deliveries: one message on one channel, with its retry state. A delivery is created when a
//! message is processed and ends SENT, EXPIRED or FAILED.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    ChannelKind, DeliveryId, EmailAddress, FiscalCode, InstallationId, OutcomeRecord,
    PermanentReason, ServiceId, Timestamp,
};

/// One message on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The message and the channel.
    pub id: DeliveryId,
    /// The sending service: the fairness key of the scheduler.
    pub service_id: ServiceId,
    /// The recipient.
    pub fiscal_code: FiscalCode,
    /// Where exactly it goes, fixed when the message was processed.
    pub target: DeliveryTarget,
    /// Its state.
    pub state: DeliveryState,
    /// Provider contacts started so far (not local rate-limit deferrals): counted when an
    /// attempt starts, before the provider is called, so an attempt cut short by a crash is
    /// counted too.
    pub attempts: u32,
    /// An attempt was started and its outcome is not recorded yet. Found true when the delivery
    /// is claimed again, it means the process died during that attempt: the provider may or may
    /// not have been contacted, and the journal says so before the next attempt.
    #[serde(default)]
    pub outcome_pending: bool,
    /// Push only: the devices that already received this notification, skipped by a retry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices_notified: Vec<InstallationId>,
    /// When the next attempt is due (meaningful while pending or retrying).
    pub next_attempt_at: Timestamp,
    /// The message's time-to-live end: after it, the delivery expires unsent.
    pub expires_at: Timestamp,
    /// The last attempt's outcome.
    pub last_outcome: Option<OutcomeRecord>,
    /// PEC only: the legal delivery time, as the delivery receipt (`avvenuta-consegna`)
    /// certifies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_delivery_at: Option<Timestamp>,
    /// When the state last changed.
    pub updated_at: Timestamp,
}

/// The address a delivery goes to, decided at processing time and kept as evidence.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeliveryTarget {
    /// The citizen's inbox.
    Inbox,
    /// An email address: the citizen's, or the service owner's for sandbox messages.
    Email {
        /// The address.
        address: EmailAddress,
    },
    /// The citizen's registered devices, read at send time.
    Push,
    /// The citizen's digital domicile (a PEC mailbox).
    Pec {
        /// The address.
        address: EmailAddress,
    },
}

impl fmt::Debug for DeliveryTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inbox => f.write_str("Inbox"),
            Self::Email { address } => write!(f, "Email({address:?})"),
            Self::Push => f.write_str("Push"),
            Self::Pec { address } => write!(f, "Pec({address:?})"),
        }
    }
}

/// The state of a delivery, with IO's per-channel names available through
/// [`DeliveryState::as_str`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryState {
    /// Waiting for its first attempt.
    Pending,
    /// A previous attempt failed temporarily; retrying (IO: THROTTLED).
    Retrying,
    /// PEC only: handed to the sender's PEC provider, waiting for its receipts. Due again when
    /// the acceptance receipt is overdue (another attempt, the same `Message-ID`) or, once
    /// accepted, when the delivery receipt is (FAILED).
    Submitted {
        /// When the provider took the submission over SMTP.
        submitted_at: Timestamp,
        /// The legal time of the acceptance receipt (`accettazione`), once it arrived.
        accepted_at: Option<Timestamp>,
    },
    /// Handed to the provider (PEC: delivered, as the recipient's provider certifies).
    Sent,
    /// The time-to-live passed before it could be sent.
    Expired,
    /// Will not be sent.
    Failed {
        /// Why.
        reason: FailureReason,
    },
}

/// Why a delivery failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureReason {
    /// The provider refused it for good.
    Permanent {
        /// The provider's reason.
        reason: PermanentReason,
    },
    /// The recipient no longer exists at the provider.
    InvalidRecipient,
}

impl DeliveryState {
    /// IO's per-channel status: SENT, THROTTLED, EXPIRED, FAILED; PENDING before any attempt.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Retrying => "THROTTLED",
            Self::Submitted { .. } => "SUBMITTED",
            Self::Sent => "SENT",
            Self::Expired => "EXPIRED",
            Self::Failed { .. } => "FAILED",
        }
    }

    /// Whether nothing more will happen to the delivery.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Sent | Self::Expired | Self::Failed { .. })
    }
}

impl Delivery {
    /// The channel it goes through.
    pub fn channel(&self) -> ChannelKind {
        self.id.channel
    }
}
