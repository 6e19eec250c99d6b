//! The plug-in point for delivery channels. A channel makes one attempt and reports an
//! [`Outcome`](crate::Outcome) with its [`Effect`](crate::Effect)s; it never retries, sleeps or touches the
//! store: the engine reads what the attempt needs into the [`DeliveryJob`] and commits what it
//! reports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Delivery, Installation, Message, Profile, Report, Service, Timestamp};

/// The kinds of channel a message can go through.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// The in-app inbox. Built into the engine: the inbox delivery is SENT in the same write
    /// that lists the message in the citizen's inbox, so no channel implements it.
    Inbox,
    /// An email notification (a teaser, never the content).
    Email,
    /// A push notification to the citizen's devices (IO: "webhook").
    Push,
    /// Certified email (PEC) to the citizen's digital domicile, for messages with legal value:
    /// SENT only when the recipient's provider certifies delivery (`avvenuta-consegna`).
    Pec,
}

impl ChannelKind {
    /// Every kind, in decision order.
    pub const ALL: [ChannelKind; 4] = [Self::Inbox, Self::Email, Self::Push, Self::Pec];

    /// The lower-case name used in ids, keys and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Email => "email",
            Self::Push => "push",
            Self::Pec => "pec",
        }
    }

    /// A one-byte code for store keys.
    pub fn code(self) -> u8 {
        match self {
            Self::Inbox => 1,
            Self::Email => 2,
            Self::Push => 3,
            Self::Pec => 4,
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
#[error("unknown channel {0:?}, expected inbox, email, push or pec")]
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
    /// The recipient's device installations at send time, read for push deliveries only
    /// (empty for other channels). `delivery.devices_notified` lists those already reached.
    pub installations: &'a [Installation],
    /// The engine's clock at the attempt: channels take time from here, never from the wall
    /// clock, so tests under paused time see the instants the engine sees.
    pub now: Timestamp,
}

/// A delivery channel. Implementations classify every provider answer into an
/// [`Outcome`](crate::Outcome) and report the changes it implies as effects.
#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    /// Which kind of channel this is; the engine routes deliveries by it.
    fn kind(&self) -> ChannelKind;

    /// One attempt. `job.delivery.id` is stable across retries and crashes: pass it to the
    /// provider as the idempotency key wherever the provider has one.
    async fn send(&self, job: DeliveryJob<'_>) -> Report;
}
