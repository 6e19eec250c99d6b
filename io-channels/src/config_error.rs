//! The one error every channel constructor returns: a configuration that cannot work is refused
//! when the channel is built, with the setting named, never discovered on the first send.

use crate::tls::TlsError;

/// A channel setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The trusted roots are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A setting is out of range or malformed.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The setting, as named in the configuration.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// A setting that is out of range or malformed.
    pub(crate) fn invalid(setting: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            setting,
            reason: reason.into(),
        }
    }
}
