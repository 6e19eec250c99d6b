//! Permission groups of a service's API keys, with IO's names (io-reference §5): what a key may
//! do, kept with the key's generations in [`ServiceAccess`](crate::ServiceAccess).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// One permission group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Group {
    /// Send messages to anyone.
    ApiMessageWrite,
    /// Send messages only to the service's `authorized_recipients` (sandbox).
    ApiLimitedMessageWrite,
    /// Read the service's own messages.
    ApiMessageRead,
    /// Read profiles (of `authorized_recipients` only, when the key is limited).
    ApiLimitedProfileRead,
    /// Name a payee other than the service's organization.
    ApiMessageWriteWithPayee,
    /// Send ADVANCED messages.
    ApiMessageWriteAdvanced,
    /// Read the read and payment status of ADVANCED messages.
    ApiMessageReadAdvanced,
    /// Read the subscriptions feed.
    ApiSubscriptionsFeedRead,
    /// Manage the service itself: with it a service's key may also set its institution's logo
    /// (`PUT /organizations/{organization_fiscal_code}/logo`).
    ApiServiceWrite,
}

impl Group {
    /// IO's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiMessageWrite => "ApiMessageWrite",
            Self::ApiLimitedMessageWrite => "ApiLimitedMessageWrite",
            Self::ApiMessageRead => "ApiMessageRead",
            Self::ApiLimitedProfileRead => "ApiLimitedProfileRead",
            Self::ApiMessageWriteWithPayee => "ApiMessageWriteWithPayee",
            Self::ApiMessageWriteAdvanced => "ApiMessageWriteAdvanced",
            Self::ApiMessageReadAdvanced => "ApiMessageReadAdvanced",
            Self::ApiSubscriptionsFeedRead => "ApiSubscriptionsFeedRead",
            Self::ApiServiceWrite => "ApiServiceWrite",
        }
    }

    /// What a new service gets unless told otherwise: IO's sandbox groups.
    pub fn sandbox() -> BTreeSet<Group> {
        BTreeSet::from([
            Self::ApiLimitedMessageWrite,
            Self::ApiMessageRead,
            Self::ApiLimitedProfileRead,
        ])
    }
}

/// The groups of a key, with the questions the routes ask.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Groups(pub BTreeSet<Group>);

impl Groups {
    /// Whether the key has `group`.
    pub fn has(&self, group: Group) -> bool {
        self.0.contains(&group)
    }

    /// A *limited* key writes to and reads profiles of `authorized_recipients` only: it may
    /// write in a limited way and may not write in full.
    pub fn is_limited(&self) -> bool {
        !self.has(Group::ApiMessageWrite)
    }

    /// Whether the key may submit messages at all.
    pub fn may_write_messages(&self) -> bool {
        self.has(Group::ApiMessageWrite) || self.has(Group::ApiLimitedMessageWrite)
    }
}
