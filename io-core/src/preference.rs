//! Per-service preferences (io-reference §4): which channels a citizen allows one service, valid
//! only under the settings version they were written for.

use serde::{Deserialize, Serialize};

use crate::{Profile, ServiceId};

/// A citizen's choice for one service.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePreference {
    /// The service it is about.
    pub service_id: ServiceId,
    /// The profile's `service_preferences_settings.version` it was written under.
    pub settings_version: u64,
    /// The service may write to the inbox.
    pub is_inbox_enabled: bool,
    /// The service may notify by email: honoured in AUTO and MANUAL mode too, unlike IO (see
    /// [`crate::decision`]).
    pub is_email_enabled: bool,
    /// The service may notify by push.
    pub is_webhook_enabled: bool,
    /// The service may learn whether a message was read (ADVANCED messages).
    pub can_access_message_read_status: bool,
}

/// A preference written under a settings version that is not the profile's current one (409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("preference settings_version {given} does not match the profile's current {current}")]
pub struct PreferenceVersionMismatch {
    /// The version the preference names.
    pub given: u64,
    /// The profile's current settings version.
    pub current: u64,
}

impl ServicePreference {
    /// Checks that this preference may be stored for `profile`.
    pub fn check_version(&self, profile: &Profile) -> Result<(), PreferenceVersionMismatch> {
        let current = profile.service_preferences_settings.version;
        if self.settings_version == current {
            Ok(())
        } else {
            Err(PreferenceVersionMismatch {
                given: self.settings_version,
                current,
            })
        }
    }
}
