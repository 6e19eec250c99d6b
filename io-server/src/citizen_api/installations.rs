//! `PUT /installations/{installation_id}`: the app registers a device for push notifications.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use io_core::{Installation, InstallationId, PushPlatform, Store};
use serde::Deserialize;

use super::Citizen;
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};

/// The longest device token accepted, in characters (APNs tokens are 64 hex digits, FCM
/// registration tokens a few hundred characters).
pub const PUSH_CHANNEL_MAX: usize = 4096;

/// `PUT /installations/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationPayload {
    platform: PushPlatform,
    push_channel: String,
}

/// `PUT /installations/{installation_id}`.
pub(super) async fn put_installation<S: Store>(
    State(app): State<Arc<App<S>>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    Path(installation_id): Path<String>,
    JsonBody(payload): JsonBody<InstallationPayload>,
) -> ApiResult<Json<serde_json::Value>> {
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
    Ok(Json(serde_json::json!({
        "installation_id": installation.installation_id.as_str(),
        "platform": installation.platform,
    })))
}
