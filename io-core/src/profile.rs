//! The citizen's profile (io-reference §3): the master switches and channel addresses, owned by
//! the citizen and versioned so that a stale update is refused.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{EmailAddress, FiscalCode, ServiceId};

/// A citizen's profile. Without one, a citizen receives nothing (`USER_NOT_FOUND`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Whose profile this is.
    pub fiscal_code: FiscalCode,
    /// Master switch: false rejects every message.
    pub is_inbox_enabled: bool,
    /// Notification address.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub email: Option<EmailAddress>,
    /// The citizen confirmed the address (reset whenever it changes).
    pub is_email_validated: bool,
    /// Email notifications switch.
    pub is_email_enabled: bool,
    /// The address bounced (the relay said the mailbox does not exist): no email goes to it
    /// until the citizen changes it. Set by the email channel, never by the citizen.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub is_email_bounced: bool,
    /// Push notifications switch (IO calls push "webhook").
    pub is_webhook_enabled: bool,
    /// Languages in order of preference; the first drives notification texts.
    pub preferred_languages: Vec<PreferredLanguage>,
    /// How per-service preferences are interpreted.
    pub service_preferences_settings: ServicePreferencesSettings,
    /// LEGACY mode only: channels the citizen blocked per service.
    pub blocked_inbox_or_channels: BTreeMap<ServiceId, BTreeSet<BlockedChannel>>,
    /// Whether push notifications may show sender and subject.
    pub push_notifications_content_type: PushNotificationsContentType,
    /// Whether reminders are wanted.
    pub reminder_status: ReminderStatus,
    /// The version of the terms of service the citizen accepted.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub accepted_tos_version: Option<u32>,
    /// A test profile (IO's internal testers).
    pub is_test_profile: bool,
    /// The citizen's digital domicile (domicilio digitale): a PEC mailbox, set by the citizen
    /// or imported from the national registry (INAD) through the admin API. Messages with
    /// legal value go there by PEC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub digital_domicile: Option<EmailAddress>,
    /// Optimistic-concurrency version: 0 on creation, +1 on each accepted update.
    pub version: u64,
}

/// The preference mode and its version; every mode change bumps the version, which voids all
/// per-service preferences written under the previous one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePreferencesSettings {
    /// LEGACY, AUTO or MANUAL.
    pub mode: ServicePreferencesMode,
    /// Starts at 0 in LEGACY mode; each change of mode adds one.
    pub version: u64,
}

/// How a citizen's per-service preferences are read.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServicePreferencesMode {
    /// The old model: `blocked_inbox_or_channels` lists what is blocked.
    Legacy,
    /// Opt-out: every service may write unless a preference says otherwise.
    Auto,
    /// Opt-in: only services with a preference that enables the inbox may write.
    Manual,
}

/// A channel the citizen can block for one service in LEGACY mode.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BlockedChannel {
    /// The inbox itself (and so everything).
    Inbox,
    /// Email notifications.
    Email,
    /// Push notifications.
    Webhook,
}

/// The languages IO supports for notification texts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PreferredLanguage {
    /// Italian.
    #[serde(rename = "it_IT")]
    ItIt,
    /// English.
    #[serde(rename = "en_GB")]
    EnGb,
    /// Spanish.
    #[serde(rename = "es_ES")]
    EsEs,
    /// German.
    #[serde(rename = "de_DE")]
    DeDe,
    /// French.
    #[serde(rename = "fr_FR")]
    FrFr,
}

/// Whether push notifications may show who wrote and about what.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PushNotificationsContentType {
    /// Title = organization, body = subject.
    Full,
    /// A generic text.
    Anonymous,
    /// Never chosen: treated as anonymous.
    #[default]
    Unset,
}

/// Whether the citizen wants reminders (e.g. of due dates).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReminderStatus {
    /// Reminders on.
    Enabled,
    /// Reminders off.
    Disabled,
    /// Never chosen.
    #[default]
    Unset,
}

/// An update that named a version other than the current one (HTTP 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profile version {given} is stale, the current version is {current}")]
pub struct StaleVersion {
    /// The version the update was based on.
    pub given: u64,
    /// The version stored.
    pub current: u64,
}

impl Profile {
    /// A fresh profile with IO's defaults: inbox on, no email, LEGACY mode, version 0.
    pub fn new(fiscal_code: FiscalCode) -> Self {
        Self {
            fiscal_code,
            is_inbox_enabled: true,
            email: None,
            is_email_validated: false,
            is_email_enabled: true,
            is_email_bounced: false,
            is_webhook_enabled: true,
            preferred_languages: vec![PreferredLanguage::ItIt],
            service_preferences_settings: ServicePreferencesSettings {
                mode: ServicePreferencesMode::Legacy,
                version: 0,
            },
            blocked_inbox_or_channels: BTreeMap::new(),
            push_notifications_content_type: PushNotificationsContentType::Unset,
            reminder_status: ReminderStatus::Unset,
            accepted_tos_version: None,
            is_test_profile: false,
            digital_domicile: None,
            version: 0,
        }
    }

    /// Applies `update`, which the citizen based on version `update.version`, producing the next
    /// version. Refuses a stale base; a changed email becomes unvalidated and no longer bounced
    /// (an unchanged one keeps both flags, which the citizen cannot write); a changed preference
    /// mode bumps the settings version (voiding per-service preferences of the old mode).
    pub fn updated_with(&self, update: &Profile) -> Result<Profile, StaleVersion> {
        if update.version != self.version {
            return Err(StaleVersion {
                given: update.version,
                current: self.version,
            });
        }
        let mut next = update.clone();
        next.fiscal_code = self.fiscal_code.clone();
        next.version = self.version + 1;
        if next.email != self.email {
            next.is_email_validated = false;
            next.is_email_bounced = false;
        } else {
            next.is_email_validated = self.is_email_validated;
            next.is_email_bounced = self.is_email_bounced;
        }
        let (old, new) = (
            self.service_preferences_settings,
            update.service_preferences_settings,
        );
        next.service_preferences_settings = ServicePreferencesSettings {
            mode: new.mode,
            version: if new.mode == old.mode {
                old.version
            } else {
                old.version + 1
            },
        };
        Ok(next)
    }

    /// Marks `address` as bounced if it is still the profile's address, producing the next
    /// version; `None` when there is nothing to change (the citizen changed it meanwhile, or it
    /// is already marked).
    pub fn with_bounced_email(&self, address: &EmailAddress) -> Option<Profile> {
        if self.email.as_ref() != Some(address) || self.is_email_bounced {
            return None;
        }
        let mut next = self.clone();
        next.is_email_bounced = true;
        next.version = self.version + 1;
        Some(next)
    }

    /// The channels blocked for `service` in LEGACY mode (empty in other modes).
    pub fn legacy_blocked(&self, service: &ServiceId) -> BTreeSet<BlockedChannel> {
        match self.service_preferences_settings.mode {
            ServicePreferencesMode::Legacy => self
                .blocked_inbox_or_channels
                .get(service)
                .cloned()
                .unwrap_or_default(),
            ServicePreferencesMode::Auto | ServicePreferencesMode::Manual => BTreeSet::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn citizen() -> Profile {
        Profile::new(FiscalCode::parse("RSSMRA85T10A562S").unwrap())
    }

    #[test]
    fn stale_update_is_refused() {
        let stored = citizen().updated_with(&citizen()).unwrap();
        assert_eq!(stored.version, 1);
        let stale = citizen();
        assert_eq!(
            stored.updated_with(&stale),
            Err(StaleVersion {
                given: 0,
                current: 1
            })
        );
    }

    #[test]
    fn changing_the_email_unvalidates_it() {
        let mut stored = citizen();
        stored.email = Some(EmailAddress::parse("a@example.it").unwrap());
        stored.is_email_validated = true;
        let mut update = stored.clone();
        update.email = Some(EmailAddress::parse("b@example.it").unwrap());
        update.is_email_validated = true; // a citizen cannot validate by writing the flag
        let next = stored.updated_with(&update).unwrap();
        assert!(!next.is_email_validated);
        let same = next.updated_with(&next.clone()).unwrap();
        assert!(!same.is_email_validated);
    }

    #[test]
    fn a_bounced_address_stays_bounced_until_the_citizen_changes_it() {
        let mut stored = citizen();
        let address = EmailAddress::parse("a@example.it").unwrap();
        stored.email = Some(address.clone());
        stored.is_email_validated = true;
        let bounced = stored.with_bounced_email(&address).unwrap();
        assert!(bounced.is_email_bounced);
        assert_eq!(bounced.version, stored.version + 1);
        assert_eq!(bounced.with_bounced_email(&address), None, "already marked");
        let other = EmailAddress::parse("b@example.it").unwrap();
        assert_eq!(
            stored.with_bounced_email(&other),
            None,
            "not the current address"
        );

        let mut same = bounced.clone();
        same.is_email_bounced = false; // a citizen cannot clear the flag by writing it
        assert!(bounced.updated_with(&same).unwrap().is_email_bounced);
        let mut changed = bounced.clone();
        changed.email = Some(other);
        assert!(!bounced.updated_with(&changed).unwrap().is_email_bounced);
    }

    #[test]
    fn mode_change_bumps_the_settings_version() {
        let stored = citizen();
        let mut update = stored.clone();
        update.service_preferences_settings.mode = ServicePreferencesMode::Manual;
        update.service_preferences_settings.version = 77; // ignored: the engine owns it
        let next = stored.updated_with(&update).unwrap();
        assert_eq!(next.service_preferences_settings.version, 1);
        let again = next.updated_with(&next.clone()).unwrap();
        assert_eq!(again.service_preferences_settings.version, 1);
    }
}
