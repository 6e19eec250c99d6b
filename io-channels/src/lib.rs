//! # io-channels
//!
//! Delivery channels for the io engine: each implements [`io_core::Channel`], lives in its own
//! module behind its own cargo feature, and classifies every answer of its provider into an
//! [`io_core::Outcome`]. Channels never retry, sleep, schedule or touch the store: the engine
//! does, and commits the [`io_core::Effect`]s a channel reports (a bounced address, a device to
//! prune, the devices notified) atomically with the delivery's new state. A provider limiter may
//! hold a send for a short, bounded wait. The inbox is not a channel: it is built into the
//! engine.
//!
//! | channel | feature | protocol | idempotency key | effect of `InvalidRecipient` |
//! |---|---|---|---|---|
//! | [`email`] | `email` | SMTP (lettre), STARTTLS / TLS / plain on loopback | `Message-ID` from the delivery id | `EmailBounced`: the profile's address is marked bounced |
//! | [`push`] via [`apns`] | `apns` | APNs HTTP/2 provider API, ES256 token | `apns-id` = delivery id | `PruneDevice`: the device is pruned unless registered again since |
//! | [`push`] via [`fcm`] | `fcm` | FCM HTTP v1, OAuth2 JWT bearer | `analytics_label` = delivery id | `PruneDevice`: the device is pruned unless registered again since |
//! | [`webhook`] | `webhook` | signed HTTPS POST (`IO-Signature`), the engine's [`io_core::CallbackSender`] | `IO-Event-Id` | — (sender callbacks: the event is abandoned) |
//!
//! Beside the channels, the `webhook` feature also holds the two clients that call addresses
//! senders choose, both behind [`outbound`]'s SSRF guard: [`webhook`]'s callbacks and
//! [`remote_content`], which reads a message's details from its sender's server for the
//! citizen API (not a channel: nothing is delivered, the engine never calls it).
//!
//! Every outbound connection uses rustls on the ring provider with roots from [`TrustedRoots`],
//! so tests and private deployments trust their own authority instead of disabling checks.

#[cfg(feature = "tls")]
mod config_error;
#[cfg(feature = "tls")]
mod error_text;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "push")]
mod jwt;
#[cfg(any(feature = "push", feature = "email"))]
pub mod provider_limit;
#[cfg(feature = "tls")]
mod tls;

#[cfg(feature = "apns")]
pub mod apns;
#[cfg(feature = "email")]
pub mod email;
#[cfg(feature = "fcm")]
pub mod fcm;
#[cfg(feature = "webhook")]
pub mod outbound;
#[cfg(feature = "pec")]
pub mod pec;
#[cfg(feature = "push")]
pub mod push;
#[cfg(feature = "webhook")]
pub mod remote_content;
#[cfg(feature = "webhook")]
pub mod webhook;

#[cfg(feature = "apns")]
pub use apns::{ApnsClient, ApnsConfig};
#[cfg(feature = "tls")]
pub use config_error::ConfigError;
#[cfg(feature = "email")]
pub use email::{EmailChannel, EmailConfig};
#[cfg(feature = "fcm")]
pub use fcm::{FcmClient, FcmConfig};
#[cfg(feature = "pec")]
pub use pec::{MailboxConfig, PecChannel, PecConfig, ReceiptReader};
#[cfg(any(feature = "push", feature = "email"))]
pub use provider_limit::ProviderLimit;
#[cfg(feature = "push")]
pub use push::PushChannel;
#[cfg(feature = "webhook")]
pub use remote_content::{RemoteContentClient, RemoteContentConfig, RemoteContentFailure};
#[cfg(feature = "tls")]
pub use tls::{TlsError, TrustedRoots, install_default_crypto_provider};
#[cfg(feature = "webhook")]
pub use webhook::{WebhookClient, WebhookConfig};
