//! The citizen's records as committer jobs: profiles (versioned, with the index that keeps a
//! validated email unique), preferences, activations, installations, message flags, and the
//! subscriptions feed.

use io_core::{
    Activation, EmailAddress, FeedDay, FeedEvent, FiscalCode, FlagsChange, Installation,
    InstallationId, MessageFlags, MessageId, Profile, ServicePreference, StoreError, Subscription,
};

use super::committer::{Job, Output, Tx};
use super::keys::{self, kind};
use super::{decode, encode};

/// The key of a validated email's owner: addresses compare without regard to case.
pub(crate) fn email_key(email: &EmailAddress) -> Vec<u8> {
    keys::text(kind::EMAIL, &email.as_str().to_ascii_lowercase())
}

/// The address a profile holds validated, if any.
fn claimed(profile: &Profile) -> Option<&EmailAddress> {
    profile
        .email
        .as_ref()
        .filter(|_| profile.is_email_validated)
}

/// Writes `profile` if its version follows the stored one (0 for a new profile), keeping the
/// index of validated emails in step.
pub(crate) fn put_profile_in(tx: &mut Tx<'_>, profile: &Profile) -> Result<(), StoreError> {
    let key = keys::citizen(kind::PROFILE, &profile.fiscal_code);
    let previous: Option<Profile> = match tx.get(&key)? {
        Some(bytes) => Some(decode("profile", &bytes)?),
        None => None,
    };
    let expected = previous.as_ref().map_or(0, |p| p.version + 1);
    if profile.version != expected {
        return Err(StoreError::Conflict {
            what: "profile",
            stored: expected.saturating_sub(1),
            given: profile.version.saturating_sub(1),
        });
    }
    let before = previous.as_ref().and_then(claimed);
    let after = claimed(profile);
    if let Some(email) = after {
        let owner_key = email_key(email);
        if let Some(owner) = tx.get(&owner_key)?
            && owner.as_ref() != profile.fiscal_code.as_str().as_bytes()
        {
            return Err(StoreError::Taken {
                what: "validated email address",
            });
        }
        tx.insert(owner_key, profile.fiscal_code.as_str().as_bytes());
    }
    if let Some(email) = before
        && after.map(email_key) != Some(email_key(email))
    {
        tx.remove(email_key(email));
    }
    tx.insert(key, encode(profile));
    Ok(())
}

/// Records a feed event (the last of a day per scope and citizen wins).
pub(crate) fn feed_in(tx: &mut Tx<'_>, event: &FeedEvent) {
    let key = keys::feed(FeedDay::of(event.at), &event.scope, &event.citizen);
    let value: &[u8] = match event.change {
        Subscription::Subscribed => b"S",
        Subscription::Unsubscribed => b"U",
    };
    tx.insert(key, value);
}

/// The job of `put_profile` (and `put_profile_with_feed`).
pub(crate) fn put_profile(profile: Profile, event: Option<FeedEvent>) -> Job {
    Box::new(move |tx| {
        put_profile_in(tx, &profile)?;
        if let Some(event) = &event {
            feed_in(tx, event);
        }
        Ok(Output::Done)
    })
}

/// The job of `put_preference` (and `put_preference_with_feed`).
pub(crate) fn put_preference(
    fiscal_code: FiscalCode,
    preference: ServicePreference,
    event: Option<FeedEvent>,
) -> Job {
    Box::new(move |tx| {
        let key = keys::preference(
            &fiscal_code,
            &preference.service_id,
            preference.settings_version,
        );
        tx.insert(key, encode(&preference));
        if let Some(event) = &event {
            feed_in(tx, event);
        }
        Ok(Output::Done)
    })
}

/// The job of `put_activation`: the next version of the activation, returned as stored.
pub(crate) fn put_activation(mut activation: Activation) -> Job {
    Box::new(move |tx| {
        let key = keys::pair(
            kind::ACTIVATION,
            activation.service_id.as_str(),
            activation.fiscal_code.as_str(),
        );
        activation.version = match tx.get(&key)? {
            Some(bytes) => decode::<Activation>("activation", &bytes)?.version + 1,
            None => 0,
        };
        tx.insert(key, encode(&activation));
        Ok(Output::Activation(activation))
    })
}

/// The job of `put_installation`.
pub(crate) fn put_installation(fiscal_code: FiscalCode, installation: Installation) -> Job {
    Box::new(move |tx| {
        let key = keys::pair(
            kind::INSTALLATION,
            fiscal_code.as_str(),
            installation.installation_id.as_str(),
        );
        tx.insert(key, encode(&installation));
        Ok(Output::Done)
    })
}

/// The job of `remove_installation`.
pub(crate) fn remove_installation(fiscal_code: FiscalCode, installation: InstallationId) -> Job {
    Box::new(move |tx| {
        tx.remove(keys::pair(
            kind::INSTALLATION,
            fiscal_code.as_str(),
            installation.as_str(),
        ));
        Ok(Output::Done)
    })
}

/// The job of `change_message_flags`.
pub(crate) fn change_flags(
    fiscal_code: FiscalCode,
    message: MessageId,
    change: FlagsChange,
) -> Job {
    Box::new(move |tx| {
        let key = keys::citizen_message(kind::FLAGS, &fiscal_code, &message);
        let current: MessageFlags = match tx.get(&key)? {
            Some(bytes) => decode("message flags", &bytes)?,
            None => MessageFlags::default(),
        };
        let changed = current.changed(change);
        if let Ok(next) = &changed
            && *next != current
        {
            tx.insert(key, encode(next));
        }
        Ok(Output::Flags(changed))
    })
}

/// The job of `record_feed_event`.
pub(crate) fn record_feed(event: FeedEvent) -> Job {
    Box::new(move |tx| {
        feed_in(tx, &event);
        Ok(Output::Done)
    })
}
