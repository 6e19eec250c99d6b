//! Activations: the citizen's consent to a SPECIAL service (io-reference §4).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{FiscalCode, ServiceId, Timestamp};

/// How long a PENDING activation lets messages through, by default (IO: 24 hours).
pub const DEFAULT_ACTIVATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The state of a citizen's consent to a SPECIAL service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// The SPECIAL service.
    pub service_id: ServiceId,
    /// The citizen.
    pub fiscal_code: FiscalCode,
    /// ACTIVE, PENDING or INACTIVE.
    pub status: ActivationStatus,
    /// When the status was last set: the start of a PENDING grace period.
    pub updated_at: Timestamp,
    /// IO's version: 0 when first stored, +1 on each change (set by the store).
    #[serde(default)]
    pub version: u64,
}

/// IO's activation states.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivationStatus {
    /// The citizen activated the service.
    Active,
    /// Requested and not yet confirmed: allowed during the grace period only.
    Pending,
    /// Deactivated.
    Inactive,
}

impl Activation {
    /// Whether this activation lets a message in at `now`.
    pub fn allows_inbox(&self, now: Timestamp, grace: Duration) -> bool {
        match self.status {
            ActivationStatus::Active => true,
            ActivationStatus::Pending => now < self.updated_at.plus(grace),
            ActivationStatus::Inactive => false,
        }
    }
}
