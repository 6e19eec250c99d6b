//! `GET|POST /services/{service_id}/preferences` (io-reference §4): the citizen's choice of
//! channels for one service, valid only under the profile's current settings version. In
//! LEGACY mode per-service preferences are not used (the profile's
//! `blocked_inbox_or_channels` is), and both calls answer 409, as IO does.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use io_core::{
    FeedScope, FiscalCode, Profile, ServiceId, ServicePreference, ServicePreferencesMode, Store,
    Subscription,
};

use super::{Citizen, feed_event, profile_of};
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};

/// A service id from the path, of a service that exists (404 otherwise).
async fn known_service<S: Store>(app: &App<S>, raw: &str) -> ApiResult<ServiceId> {
    let id = ServiceId::parse(raw)
        .map_err(|e| Problem::bad_request(format!("service_id (path): {e}")))?;
    if app.store.service(&id).await?.is_none() {
        return Err(Problem::not_found(format!("no service {id}")));
    }
    Ok(id)
}

/// The citizen's profile, unless it is in LEGACY mode (409).
async fn non_legacy_profile<S: Store>(
    app: &App<S>,
    fiscal_code: &FiscalCode,
) -> ApiResult<Profile> {
    let profile = profile_of(app, fiscal_code).await?;
    if profile.service_preferences_settings.mode == ServicePreferencesMode::Legacy {
        return Err(Problem::conflict(
            "service_preferences_settings.mode is LEGACY: per-service preferences are not used; switch the profile to AUTO or MANUAL",
        ));
    }
    Ok(profile)
}

/// The stored preference under the profile's current settings version, or what the decision
/// applies without one (IO's defaults): AUTO allows every channel (opt-out), MANUAL none
/// (opt-in).
async fn effective_preference<S: Store>(
    app: &App<S>,
    fiscal_code: &FiscalCode,
    profile: &Profile,
    service_id: &ServiceId,
) -> ApiResult<ServicePreference> {
    let settings = profile.service_preferences_settings;
    if let Some(stored) = app
        .store
        .preference(fiscal_code, service_id, settings.version)
        .await?
    {
        return Ok(stored);
    }
    let allowed = settings.mode != ServicePreferencesMode::Manual;
    Ok(ServicePreference {
        service_id: service_id.clone(),
        settings_version: settings.version,
        is_inbox_enabled: allowed,
        is_email_enabled: allowed,
        is_webhook_enabled: allowed,
        can_access_message_read_status: allowed,
    })
}

/// `GET /services/{service_id}/preferences`.
#[utoipa::path(
    get, path = "/services/{service_id}/preferences", operation_id = "getServicePreference", tag = "profile",
    summary = "The citizen's preference for one service (the defaults when none is stored)",
    params(("service_id" = inline(io_core::ServiceId), Path)),
    responses(
        (status = 200, description = "The preference.", body = ServicePreference),
        (status = 400, description = "The service id is not valid."),
        (status = 404, description = "No such service, or no profile."),
        (status = 409, description = "The profile is in LEGACY mode: per-service preferences are not used."),
    )
)]
pub async fn get_preference<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
    Path(service_id): Path<String>,
) -> ApiResult<Json<ServicePreference>> {
    let service_id = known_service(&app, &service_id).await?;
    let profile = non_legacy_profile(&app, &fiscal_code).await?;
    effective_preference(&app, &fiscal_code, &profile, &service_id)
        .await
        .map(Json)
}

/// `POST /services/{service_id}/preferences`: stores the preference and, when it changes
/// whether the service may write to the inbox, records the change in the service's feed in the
/// same store operation.
#[utoipa::path(
    post, path = "/services/{service_id}/preferences", operation_id = "upsertServicePreference", tag = "profile",
    summary = "Set the citizen's preference for one service",
    params(("service_id" = inline(io_core::ServiceId), Path)),
    request_body = ServicePreference,
    responses(
        (status = 200, description = "The preference as stored.", body = ServicePreference),
        (status = 400, description = "The service id is not valid or does not match the path."),
        (status = 404, description = "No such service, or no profile."),
        (status = 409, description = "The profile is in LEGACY mode, or settings_version is not the profile's current one."),
    )
)]
pub async fn post_preference<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
    Path(service_id): Path<String>,
    JsonBody(preference): JsonBody<ServicePreference>,
) -> ApiResult<Json<ServicePreference>> {
    let service_id = known_service(&app, &service_id).await?;
    if preference.service_id != service_id {
        return Err(Problem::bad_request(
            "service_id: does not match the service id of the path",
        ));
    }
    let profile = non_legacy_profile(&app, &fiscal_code).await?;
    preference
        .check_version(&profile)
        .map_err(|e| Problem::conflict(format!("settings_version: {e}")))?;
    let previous = effective_preference(&app, &fiscal_code, &profile, &service_id).await?;
    if previous.is_inbox_enabled == preference.is_inbox_enabled {
        app.store.put_preference(&fiscal_code, &preference).await?;
    } else {
        let change = if preference.is_inbox_enabled {
            Subscription::Subscribed
        } else {
            Subscription::Unsubscribed
        };
        let event = feed_event(&app, &fiscal_code, FeedScope::Service(service_id), change);
        app.store
            .put_preference_with_feed(&fiscal_code, &preference, &event)
            .await?;
    }
    Ok(Json(preference))
}
