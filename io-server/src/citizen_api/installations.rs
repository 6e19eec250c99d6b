//! `PUT /installations/{installation_id}`: the app registers a device for push notifications.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use io_core::{Installation, InstallationId, PushPlatform, Store};
use serde::{Deserialize, Serialize};

use super::Citizen;
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};

/// The longest device token accepted, in characters (APNs tokens are 64 hex digits, FCM
/// registration tokens a few hundred characters).
pub const PUSH_CHANNEL_MAX: usize = 4096;

/// `PUT /installations/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = InstallationInput)]
#[serde(deny_unknown_fields)]
pub struct InstallationPayload {
    platform: PushPlatform,
    /// The device token, 1 to `PUSH_CHANNEL_MAX` characters after trimming.
    #[schema(min_length = 1, max_length = 4096)]
    push_channel: String,
}

/// `PUT /installations/{id}` answer: the device token is not echoed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Installation)]
pub struct InstallationView {
    installation_id: InstallationId,
    platform: PushPlatform,
}

/// `PUT /installations/{installation_id}`.
#[utoipa::path(
    put, path = "/installations/{installation_id}", operation_id = "putInstallation", tag = "devices",
    summary = "Register a device for push notifications",
    params(("installation_id" = inline(InstallationId), Path)),
    request_body = InstallationPayload,
    responses(
        (status = 200, description = "The installation.", body = InstallationView),
        (status = 400, description = "The installation id or the device token is not valid."),
    )
)]
pub async fn put_installation<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
    Path(installation_id): Path<String>,
    JsonBody(payload): JsonBody<InstallationPayload>,
) -> ApiResult<Json<InstallationView>> {
    let installation_id = InstallationId::parse(&installation_id)
        .map_err(|e| Problem::bad_request(format!("installation_id (path): {e}")))?;
    let token = payload.push_channel.trim();
    if token.is_empty() || token.chars().count() > PUSH_CHANNEL_MAX {
        return Err(Problem::bad_request(format!(
            "push_channel: expected a device token of 1 to {PUSH_CHANNEL_MAX} characters"
        )));
    }
    let installation = Installation {
        installation_id,
        platform: payload.platform,
        push_channel: token.to_string(),
        updated_at: app.clock.now(),
    };
    app.store
        .put_installation(&fiscal_code, &installation)
        .await?;
    Ok(Json(InstallationView {
        installation_id: installation.installation_id,
        platform: installation.platform,
    }))
}
