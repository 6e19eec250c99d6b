//! Sender callbacks, the server's part: the `[callbacks]` configuration and the registrations.
//!
//! The engine sends callbacks (`io_core::callback`): a service that registered a
//! [`CallbackTarget`] gets every journal entry of its messages as a signed POST
//! (`IO-Signature`, see `io_channels::webhook`), in order, once. The outbox is opened in the
//! same atomic write as the message's accept, drained by callback tasks with leases and retried
//! with backoff on the engine's clock, so nothing here runs in the background. What stays here
//! is what the server decides: how the webhook client is built and how often an event is
//! retried (from `[callbacks]`), and the registration that the admin API manages — the URL
//! checked by the SSRF guard, the signing secret generated once and kept across URL changes.

use io_channels::webhook::{UrlRefused, WebhookClient, WebhookConfig};
use io_core::{CallbackPolicy, CallbackTarget, RetryPolicy, ServiceId, Store, StoreError};
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

/// How callbacks are sent: `[callbacks]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbacksConfig {
    /// The HTTP client: timeout, trusted roots, and whether private addresses are allowed.
    pub webhook: WebhookConfig,
    /// The backoff between attempts at one event (the engine's `callbacks.retry`).
    pub retry: RetryPolicy,
    /// Attempts at one event before it is abandoned (the engine's `callbacks.max_attempts`).
    pub max_attempts: u32,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        let policy = CallbackPolicy::default();
        Self {
            webhook: WebhookConfig::default(),
            retry: policy.retry,
            max_attempts: policy.max_attempts,
        }
    }
}

impl CallbacksConfig {
    /// The engine's retry policy for callbacks.
    pub fn policy(&self) -> CallbackPolicy {
        CallbackPolicy {
            retry: self.retry,
            max_attempts: self.max_attempts,
        }
    }
}

/// Why a callback registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The URL is malformed or refused by the SSRF guard.
    #[error("url: {0}")]
    Url(#[from] UrlRefused),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Registers (or moves) `service`'s callbacks to `url`. The secret is kept when the service
/// already has one, unless `rotate_secret`; a new one is generated otherwise. Returns the
/// registration, secret included: the only time it is shown.
pub async fn register<S: Store>(
    store: &S,
    client: &WebhookClient,
    service: &ServiceId,
    url: &str,
    rotate_secret: bool,
) -> Result<CallbackTarget, RegisterError> {
    client.check_url(url)?;
    let secret = match store.callback(service).await? {
        Some(current) if !rotate_secret => current.secret,
        _ => new_secret(),
    };
    let target = CallbackTarget {
        url: url.to_owned(),
        secret,
    };
    store.put_callback(service, Some(&target)).await?;
    Ok(target)
}

/// 32 random bytes from the operating system, hex.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::StdRng::from_os_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_engines() {
        assert_eq!(
            CallbacksConfig::default().policy(),
            CallbackPolicy::default()
        );
    }

    #[test]
    fn secrets_are_64_hex_digits_and_differ() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
