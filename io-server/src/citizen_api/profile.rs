//! `GET /profile` and `POST /profile` (io-reference §3): the citizen creates their profile,
//! then updates it from its current version (409 otherwise); an address another citizen has
//! validated is 412. A change of the inbox switch is written with its subscriptions-feed event
//! in one store operation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use io_core::{
    BlockedChannel, EmailAddress, FeedScope, PreferredLanguage, Profile,
    PushNotificationsContentType, ReminderStatus, ServiceId, ServicePreferencesMode, Store,
    StoreError, Subscription,
};
use serde::Deserialize;

use super::{Citizen, feed_event, profile_of};
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};

/// `POST /profile` body: IO's profile fields; absent fields keep their value (or the default,
/// on creation). `version` must be the current one on update.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ProfileUpdate)]
#[serde(deny_unknown_fields)]
pub struct ProfilePayload {
    /// Master switch: false rejects every message.
    is_inbox_enabled: Option<bool>,
    /// A new address is unvalidated until confirmed; an address another citizen validated is
    /// refused (412).
    #[schema(value_type = Option<io_core::EmailAddress>)]
    email: Option<String>,
    is_email_enabled: Option<bool>,
    /// Push notifications (IO's name).
    is_webhook_enabled: Option<bool>,
    preferred_languages: Option<Vec<PreferredLanguage>>,
    service_preferences_settings: Option<ModePayload>,
    /// LEGACY mode only: service id → the channels the citizen blocks for it.
    blocked_inbox_or_channels: Option<BTreeMap<String, BTreeSet<BlockedChannel>>>,
    push_notifications_content_type: Option<PushNotificationsContentType>,
    reminder_status: Option<ReminderStatus>,
    accepted_tos_version: Option<u32>,
    /// The digital domicile (a PEC address): absent, unchanged; `null`, removed; an address,
    /// set.
    #[serde(default, deserialize_with = "crate::body::present")]
    #[schema(value_type = Option<io_core::EmailAddress>)]
    digital_domicile: Option<Option<String>>,
    /// Required to update an existing profile: the version the update is based on (409 if
    /// stale).
    version: Option<u64>,
    // Read-only fields a client may echo back from GET /profile; ignored.
    /// Read-only; ignored.
    #[serde(default, rename = "fiscal_code")]
    _fiscal_code: Option<String>,
    /// Read-only; ignored.
    #[serde(default, rename = "is_email_validated")]
    _is_email_validated: Option<bool>,
    /// Read-only; ignored.
    #[serde(default, rename = "is_email_bounced")]
    _is_email_bounced: Option<bool>,
    /// Read-only; ignored.
    #[serde(default, rename = "is_test_profile")]
    _is_test_profile: Option<bool>,
}

/// `service_preferences_settings` in a profile update: the mode; the version is the server's.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ServicePreferencesModeUpdate)]
#[serde(deny_unknown_fields)]
struct ModePayload {
    mode: ServicePreferencesMode,
    /// Read-only; ignored.
    #[serde(default, rename = "version")]
    _version: Option<u64>,
}

const NO_PROFILE: &str = "No profile yet: create it with POST /profile.";

/// `GET /profile`.
#[utoipa::path(
    get, path = "/profile", operation_id = "getProfile", tag = "profile",
    summary = "The citizen's profile",
    responses(
        (status = 200, description = "The profile.", body = Profile),
        (status = 404, description = NO_PROFILE),
    )
)]
pub async fn get_profile<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
) -> ApiResult<Json<Profile>> {
    profile_of(&app, &fiscal_code).await.map(Json)
}

/// `POST /profile`.
#[utoipa::path(
    post, path = "/profile", operation_id = "upsertProfile", tag = "profile",
    summary = "Create the profile, or update it from its current version",
    request_body = ProfilePayload,
    responses(
        (status = 200, description = "The profile as stored.", body = Profile),
        (status = 400, description = "A field is not valid, or version is missing on an update."),
        (status = 409, description = "version is not the current one."),
        (status = 412, description = "The email is already validated by another citizen."),
    )
)]
pub async fn post_profile<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
    JsonBody(payload): JsonBody<ProfilePayload>,
) -> ApiResult<Json<Profile>> {
    let current = app.store.profile(&fiscal_code).await?;
    if let Some(current) = &current {
        match payload.version {
            Some(v) if v == current.version => {}
            Some(v) => {
                return Err(Problem::conflict(format!(
                    "version: the profile is at version {}, the update is based on {v}",
                    current.version
                )));
            }
            None => {
                return Err(Problem::bad_request(
                    "version: required to update an existing profile",
                ));
            }
        }
    }
    let mut next = current
        .clone()
        .unwrap_or_else(|| Profile::new(fiscal_code.clone()));
    if let Some(v) = payload.is_inbox_enabled {
        next.is_inbox_enabled = v;
    }
    if let Some(raw) = &payload.email {
        let email =
            EmailAddress::parse(raw).map_err(|e| Problem::bad_request(format!("email: {e}")))?;
        if let Some(owner) = app.store.email_owner(&email).await?
            && owner != fiscal_code
        {
            return Err(email_taken());
        }
        next.email = Some(email);
    }
    if let Some(v) = payload.is_email_enabled {
        next.is_email_enabled = v;
    }
    if let Some(v) = payload.is_webhook_enabled {
        next.is_webhook_enabled = v;
    }
    if let Some(v) = payload.preferred_languages {
        next.preferred_languages = v;
    }
    if let Some(mode) = payload.service_preferences_settings {
        next.service_preferences_settings.mode = mode.mode;
    }
    if let Some(map) = payload.blocked_inbox_or_channels {
        let mut blocked = BTreeMap::new();
        for (service, channels) in map {
            let id = ServiceId::parse(&service).map_err(|e| {
                Problem::bad_request(format!("blocked_inbox_or_channels.{service}: {e}"))
            })?;
            blocked.insert(id, channels);
        }
        next.blocked_inbox_or_channels = blocked;
    }
    if let Some(v) = payload.push_notifications_content_type {
        next.push_notifications_content_type = v;
    }
    if let Some(v) = payload.reminder_status {
        next.reminder_status = v;
    }
    if let Some(v) = payload.accepted_tos_version {
        next.accepted_tos_version = Some(v);
    }
    if let Some(domicile) = &payload.digital_domicile {
        next.digital_domicile = domicile
            .as_deref()
            .map(EmailAddress::parse)
            .transpose()
            .map_err(|e| Problem::bad_request(format!("digital_domicile: {e}")))?;
    }
    let (stored, inbox_before) = match &current {
        None => (next, false),
        Some(current) => {
            let updated = current
                .updated_with(&next)
                .map_err(|e| Problem::conflict(format!("version: {e}")))?;
            (updated, current.is_inbox_enabled)
        }
    };
    // A new profile with its inbox on, or a switch of the inbox, is a feed event.
    let event = (stored.is_inbox_enabled != inbox_before).then(|| {
        let change = if stored.is_inbox_enabled {
            Subscription::Subscribed
        } else {
            Subscription::Unsubscribed
        };
        feed_event(&app, &fiscal_code, FeedScope::AllServices, change)
    });
    let written = match &event {
        Some(event) => app.store.put_profile_with_feed(&stored, event).await,
        None => app.store.put_profile(&stored).await,
    };
    written.map_err(refused)?;
    Ok(Json(stored))
}

/// A concurrent write won (the update was based on a version that is no longer current: 409),
/// or another citizen validated the address meanwhile (412).
fn refused(error: StoreError) -> Problem {
    match error {
        StoreError::Conflict { .. } => Problem::conflict(format!("version: {error}")),
        StoreError::Taken { .. } => email_taken(),
        other => Problem::from(other),
    }
}

/// 412: the address is validated by another citizen (io-reference §3). The admin API's email
/// validation answers the same.
pub(crate) fn email_taken() -> Problem {
    Problem::new(
        StatusCode::PRECONDITION_FAILED,
        "email: the address is already validated by another citizen",
    )
}
