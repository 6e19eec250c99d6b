//! The channel decision of io-reference §4, as one pure function: given what the store knows
//! about the citizen and the sender, which channels a message goes to, or why it is rejected.
//!
//! **A deliberate deviation from IO:** IO ignores `is_email_enabled` in AUTO mode; io honours
//! it. IO never reads a per-service preference's email flag (it blocks email per service
//! only through the LEGACY `blocked_inbox_or_channels` map), so a citizen in AUTO or MANUAL
//! mode who turns email off for a service is still emailed by it. Here a preference with
//! `is_email_enabled: false` suppresses the email channel, as its inbox and push flags suppress
//! theirs: a citizen who turns email off for a service gets no email from it, in every mode.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::{
    Activation, BlockedChannel, ChannelKind, EmailAddress, Profile, RejectionReason, Service,
    ServiceCategory, ServicePreference, ServicePreferencesMode, Timestamp, ValidMessage,
};

/// Everything the decision reads. The caller fetches the preference for the profile's current
/// settings version; one written under another version is ignored here all the same.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    /// The recipient's profile, if any.
    pub profile: Option<&'a Profile>,
    /// The recipient's preference for the sender, if any.
    pub preference: Option<&'a ServicePreference>,
    /// The recipient's activation of the sender (SPECIAL services), if any.
    pub activation: Option<&'a Activation>,
    /// The sender.
    pub service: &'a Service,
    /// The message.
    pub message: &'a ValidMessage,
    /// Whether the recipient has at least one device installation.
    pub has_devices: bool,
    /// The time of the decision (for the PENDING activation grace period).
    pub now: Timestamp,
    /// How long a PENDING activation lets messages in.
    pub activation_grace: Duration,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Into the citizen's inbox.
    pub inbox: bool,
    /// An email notification to this address.
    pub email: Option<EmailAddress>,
    /// A push notification to the citizen's devices.
    pub push: bool,
    /// Certified email (PEC) to this digital domicile: a message with legal value.
    pub pec: Option<EmailAddress>,
}

impl Route {
    /// The chosen channels, in [`ChannelKind::ALL`] order.
    pub fn channels(&self) -> Vec<ChannelKind> {
        let mut channels = Vec::with_capacity(4);
        if self.inbox {
            channels.push(ChannelKind::Inbox);
        }
        if self.email.is_some() {
            channels.push(ChannelKind::Email);
        }
        if self.push {
            channels.push(ChannelKind::Push);
        }
        if self.pec.is_some() {
            channels.push(ChannelKind::Pec);
        }
        channels
    }
}

/// Decides the route of a message as IO does (io-reference §4), but for the per-service email
/// switch (see the module doc):
/// - sandbox recipient (`AAAAAA00A00A000A`): an email to the service owner, nothing else;
/// - no profile: `USER_NOT_FOUND`; inbox not allowed: `SERVICE_NOT_ALLOWED`;
/// - inbox allowed iff `is_inbox_enabled` and, for SPECIAL services, the activation allows it,
///   otherwise INBOX is not blocked for the service (LEGACY map; AUTO: a preference's false flags,
///   none without one; MANUAL: the same, but INBOX blocked without one);
/// - email iff inbox ∧ email enabled ∧ validated ∧ not bounced ∧ an address ∧ EMAIL not blocked
///   (LEGACY map; AUTO and MANUAL: a preference's false email flag — IO blocks it in LEGACY
///   only) ∧ no secure channels required (the message's flag, else the service's);
/// - push iff inbox ∧ push enabled ∧ WEBHOOK not blocked ∧ at least one device;
/// - PEC iff the message has legal value ∧ the profile has a digital domicile, whatever the
///   preferences and activations (io-reference §8: legal delivery cannot be opted out of, only
///   made to the domicile). A legal message whose inbox is not allowed goes by PEC alone
///   (PROCESSED, not REJECTED); without a domicile it follows the ordinary rules.
pub fn decide(input: DecisionInput<'_>) -> Result<Route, RejectionReason> {
    if input.message.fiscal_code.is_sandbox() {
        return Ok(Route {
            inbox: false,
            email: input.service.owner_email.clone(),
            push: false,
            pec: None,
        });
    }
    let profile = input.profile.ok_or(RejectionReason::UserNotFound)?;
    let pec = profile
        .digital_domicile
        .clone()
        .filter(|_| input.message.legal_value);
    let blocked = blocked_channels(profile, input.preference, input.service);
    if !inbox_allowed(SenderAllowedInput {
        profile,
        preference: input.preference,
        activation: input.activation,
        service: input.service,
        now: input.now,
        activation_grace: input.activation_grace,
    }) {
        return match pec {
            Some(pec) => Ok(Route {
                inbox: false,
                email: None,
                push: false,
                pec: Some(pec),
            }),
            None => Err(RejectionReason::ServiceNotAllowed),
        };
    }

    let secure = input
        .message
        .content
        .require_secure_channels
        .unwrap_or(input.service.require_secure_channels);
    // Every mode, unlike IO (module doc).
    let email_blocked = blocked.contains(&BlockedChannel::Email);
    let email = match &profile.email {
        Some(address)
            if profile.is_email_enabled
                && profile.is_email_validated
                && !profile.is_email_bounced
                && !email_blocked
                && !secure =>
        {
            Some(address.clone())
        }
        _ => None,
    };
    let push = profile.is_webhook_enabled
        && !blocked.contains(&BlockedChannel::Webhook)
        && input.has_devices;
    Ok(Route {
        inbox: true,
        email,
        push,
        pec,
    })
}

/// What [`inbox_allowed`] reads: the decision's input without a message.
#[derive(Debug, Clone, Copy)]
pub struct SenderAllowedInput<'a> {
    /// The recipient's profile.
    pub profile: &'a Profile,
    /// The recipient's preference for the sender, if any.
    pub preference: Option<&'a ServicePreference>,
    /// The recipient's activation of the sender, if any.
    pub activation: Option<&'a Activation>,
    /// The sender.
    pub service: &'a Service,
    /// Now.
    pub now: Timestamp,
    /// How long a PENDING activation lets messages in.
    pub activation_grace: Duration,
}

/// Whether a message from the service would reach the citizen's inbox: the rule of
/// [`decide`], and the `sender_allowed` of the Services API's profile check.
pub fn inbox_allowed(input: SenderAllowedInput<'_>) -> bool {
    let blocked = blocked_channels(input.profile, input.preference, input.service);
    input.profile.is_inbox_enabled
        && match input.service.service_metadata.category {
            ServiceCategory::Special => input
                .activation
                .is_some_and(|a| a.allows_inbox(input.now, input.activation_grace)),
            ServiceCategory::Standard => !blocked.contains(&BlockedChannel::Inbox),
        }
}

/// blocked(S) of io-reference §4: the LEGACY map, or the false flags of the preference written
/// under the current settings version (AUTO: none without one; MANUAL: INBOX without one).
fn blocked_channels(
    profile: &Profile,
    preference: Option<&ServicePreference>,
    service: &Service,
) -> BTreeSet<BlockedChannel> {
    let settings = profile.service_preferences_settings;
    let current = preference
        .filter(|p| p.settings_version == settings.version && p.service_id == service.service_id);
    match (settings.mode, current) {
        (ServicePreferencesMode::Legacy, _) => profile.legacy_blocked(&service.service_id),
        (ServicePreferencesMode::Auto | ServicePreferencesMode::Manual, Some(pref)) => {
            let mut blocked = BTreeSet::new();
            if !pref.is_inbox_enabled {
                blocked.insert(BlockedChannel::Inbox);
            }
            if !pref.is_email_enabled {
                blocked.insert(BlockedChannel::Email);
            }
            if !pref.is_webhook_enabled {
                blocked.insert(BlockedChannel::Webhook);
            }
            blocked
        }
        (ServicePreferencesMode::Auto, None) => BTreeSet::new(),
        (ServicePreferencesMode::Manual, None) => BTreeSet::from([BlockedChannel::Inbox]),
    }
}

#[cfg(test)]
mod tests;
