//! Device installations: where push notifications go.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{IdError, Timestamp};

/// One app installation on one device, registered by the citizen's app.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    /// The app's id for the installation.
    pub installation_id: InstallationId,
    /// Which push service reaches it.
    pub platform: PushPlatform,
    /// The device token for that service.
    pub push_channel: String,
    /// When it was last registered: a provider's "unregistered" older than this does not prune.
    pub updated_at: Timestamp,
}

/// Debug hides the device token, which is a credential for reaching the device.
impl fmt::Debug for Installation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Installation")
            .field("installation_id", &self.installation_id)
            .field("platform", &self.platform)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// The push services io speaks.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushPlatform {
    /// Apple Push Notification service.
    Apns,
    /// Firebase Cloud Messaging, HTTP v1 API.
    Fcmv1,
}

/// The longest installation id, in bytes.
pub const INSTALLATION_ID_MAX_LEN: usize = 128;

/// The id of an installation, chosen by the app.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct InstallationId(String);

impl InstallationId {
    /// Validates an installation id: 1 to [`INSTALLATION_ID_MAX_LEN`] letters, digits, `-`, `_`
    /// or `.`.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = !raw.is_empty()
            && raw.len() <= INSTALLATION_ID_MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::InstallationId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for InstallationId {
    type Error = IdError;
    fn try_from(raw: String) -> Result<Self, IdError> {
        Self::parse(&raw)
    }
}

impl From<InstallationId> for String {
    fn from(id: InstallationId) -> String {
        id.0
    }
}
