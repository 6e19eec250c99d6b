//! `GET|POST /services/{service_id}/preferences` (io-reference §4): the citizen's choice of
//! channels for one service, valid only under the profile's current settings version.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use io_core::{ServiceId, ServicePreference, ServicePreferencesMode, Store};

use super::{Citizen, profile_of, record_feed};
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};
use crate::records::{FeedScope, Subscription};

/// A service id from the path, of a service that exists (404 otherwise).
async fn known_service(app: &App, raw: &str) -> ApiResult<ServiceId> {
    let id = ServiceId::parse(raw)
        .map_err(|e| Problem::bad_request(format!("service_id (path): {e}")))?;
    if app.store.service(&id).await?.is_none() {
        return Err(Problem::not_found(format!("no service {id}")));
    }
    Ok(id)
}

/// `GET /services/{service_id}/preferences`.
pub(super) async fn get_preference(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    Path(service_id): Path<String>,
) -> ApiResult<Json<ServicePreference>> {
    let service_id = known_service(&app, &service_id).await?;
    let profile = profile_of(&app, &fiscal_code).await?;
    let version = profile.service_preferences_settings.version;
    let preference = app
        .store
        .preference(&fiscal_code, &service_id, version)
        .await?
        .unwrap_or(ServicePreference {
            service_id,
            settings_version: version,
            // The defaults the decision applies without a preference.
            is_inbox_enabled: profile.service_preferences_settings.mode
                != ServicePreferencesMode::Manual,
            is_email_enabled: true,
            is_webhook_enabled: true,
            can_access_message_read_status: true,
        });
    Ok(Json(preference))
}

/// `POST /services/{service_id}/preferences`.
pub(super) async fn post_preference(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    Path(service_id): Path<String>,
    JsonBody(preference): JsonBody<ServicePreference>,
) -> ApiResult<Json<ServicePreference>> {
    let service_id = known_service(&app, &service_id).await?;
    if preference.service_id != service_id {
        return Err(Problem::bad_request("service_id: does not match the path"));
    }
    let profile = profile_of(&app, &fiscal_code).await?;
    if profile.service_preferences_settings.mode == ServicePreferencesMode::Legacy {
        return Err(Problem::conflict(
            "service_preferences_settings.mode is LEGACY: per-service preferences apply in AUTO or MANUAL mode",
        ));
    }
    preference
        .check_version(&profile)
        .map_err(|e| Problem::conflict(format!("settings_version: {e}")))?;
    let previous = app
        .store
        .preference(&fiscal_code, &service_id, preference.settings_version)
        .await?;
    app.store.put_preference(&fiscal_code, &preference).await?;
    if previous.map(|p| p.is_inbox_enabled) != Some(preference.is_inbox_enabled) {
        let change = if preference.is_inbox_enabled {
            Subscription::Subscribed
        } else {
            Subscription::Unsubscribed
        };
        record_feed(&app, &fiscal_code, FeedScope::Service(service_id), change).await?;
    }
    Ok(Json(preference))
}
