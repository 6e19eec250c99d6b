//! The plug-in point for delivery channels. A channel makes one attempt and reports an
//! [`Outcome`]; it never retries, sleeps or touches the store on the engine's behalf.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Delivery, Message, Outcome, Profile, Service};

/// The kinds of channel a message can go through.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// The in-app inbox.
    Inbox,
    /// An email notification (a teaser, never the content).
    Email,
    /// A push notification to the citizen's devices (IO: "webhook").
    Push,
}

impl ChannelKind {
    /// Every kind, in decision order.
    pub const ALL: [ChannelKind; 3] = [Self::Inbox, Self::Email, Self::Push];

    /// The lower-case name used in ids, keys and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Email => "email",
            Self::Push => "push",
        }
    }

    /// A one-byte code for store keys.
    pub fn code(self) -> u8 {
        match self {
            Self::Inbox => 1,
            Self::Email => 2,
            Self::Push => 3,
        }
    }

    /// The inverse of [`ChannelKind::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelKind {
    type Err = UnknownChannel;
    fn from_str(raw: &str) -> Result<Self, UnknownChannel> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
            .ok_or_else(|| UnknownChannel(raw.chars().take(32).collect()))
    }
}

/// A channel name that is not one of [`ChannelKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?}, expected inbox, email or push")]
pub struct UnknownChannel(pub String);

/// Everything a channel needs for one attempt.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryJob<'a> {
    /// The delivery: its id doubles as the provider's idempotency key.
    pub delivery: &'a Delivery,
    /// The message (content for texts; the channel must not leak it where only a teaser goes).
    pub message: &'a Message,
    /// The sender (organization name for texts).
    pub service: &'a Service,
    /// The recipient's profile at send time (languages, push preview), if it still exists.
    pub profile: Option<&'a Profile>,
}

/// A delivery channel. Implementations classify every provider answer into an [`Outcome`].
#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    /// Which kind of channel this is; the engine routes deliveries by it.
    fn kind(&self) -> ChannelKind;

    /// One attempt. `job.delivery.id` is stable across retries and crashes: pass it to the
    /// provider as the idempotency key wherever the provider has one.
    async fn send(&self, job: DeliveryJob<'_>) -> Outcome;
}
