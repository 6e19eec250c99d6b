//! Message statuses and rejection reasons, with IO's names.

use serde::{Deserialize, Serialize};

/// Where a message is in its life (io-reference §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "status",
    content = "rejection_reason",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum MessageStatus {
    /// Stored and queued for processing.
    Accepted,
    /// In the citizen's inbox; notifications under way or done.
    Processed,
    /// Not delivered, asynchronously, for this reason.
    Rejected(RejectionReason),
    /// A permanent internal failure (e.g. the sending service no longer exists).
    Failed,
}

impl MessageStatus {
    /// IO's name for the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Accepted => "ACCEPTED",
            Self::Processed => "PROCESSED",
            Self::Rejected(_) => "REJECTED",
            Self::Failed => "FAILED",
        }
    }

    /// Whether processing is over.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Accepted)
    }
}

/// Why a message was rejected.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectionReason {
    /// The citizen does not accept messages from this service.
    ServiceNotAllowed,
    /// The citizen has no profile.
    UserNotFound,
}

impl RejectionReason {
    /// IO's name for the reason.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ServiceNotAllowed => "SERVICE_NOT_ALLOWED",
            Self::UserNotFound => "USER_NOT_FOUND",
        }
    }
}
