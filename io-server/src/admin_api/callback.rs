//! `PUT|GET|DELETE /adm/services/{service_id}/callback`: where a service's sender callbacks go.
//! The engine sends them (see [`crate::callbacks`]); these routes only manage the
//! registration: the URL passes the SSRF guard, the secret is shown once, by `PUT`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use io_core::{CallbackTarget, Service, Store};
use serde::{Deserialize, Serialize};

use super::stored_service;
use crate::app::App;
use crate::body::JsonBody;
use crate::callbacks::RegisterError;
use crate::problem::{ApiResult, Problem};

/// `{url, rotate_secret}` of a callback registration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CallbackPayload {
    url: String,
    #[serde(default)]
    rotate_secret: bool,
}

/// A registration as `PUT` answers it: the only answer that shows the secret.
#[derive(Debug, Serialize)]
pub(super) struct RegisteredView {
    url: String,
    secret: String,
}

/// A registration as shown after `GET` and `DELETE`.
#[derive(Debug, Serialize)]
pub(super) struct CallbackView {
    url: String,
}

/// `PUT /adm/services/{service_id}/callback`: where the service's status changes go; answers
/// the signing secret (kept across URL changes unless `rotate_secret`). Messages accepted from
/// now on get an outbox; those already accepted keep theirs, if any, and post to the
/// registration in force when each event is sent.
pub(super) async fn put_callback<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(service_id): Path<String>,
    JsonBody(body): JsonBody<CallbackPayload>,
) -> ApiResult<Json<RegisteredView>> {
    let service = stored_service(&app, &service_id).await?;
    let target = crate::callbacks::register(
        &*app.store,
        &app.webhook,
        &service.service_id,
        &body.url,
        body.rotate_secret,
    )
    .await
    .map_err(|error| match error {
        RegisterError::Url(refused) => Problem::bad_request(format!("url: {refused}")),
        RegisterError::Store(e) => Problem::from(e),
    })?;
    Ok(Json(RegisteredView {
        url: target.url,
        secret: target.secret,
    }))
}

/// A stored service and its callback registration (404 when either is missing).
async fn registered<S: Store>(
    app: &App<S>,
    service_id: &str,
) -> ApiResult<(Service, CallbackTarget)> {
    let service = stored_service(app, service_id).await?;
    let target = app
        .store
        .callback(&service.service_id)
        .await?
        .ok_or_else(|| Problem::not_found("the service has no callback"))?;
    Ok((service, target))
}

/// `GET /adm/services/{service_id}/callback`.
pub(super) async fn get_callback<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(service_id): Path<String>,
) -> ApiResult<Json<CallbackView>> {
    let (_, target) = registered(&app, &service_id).await?;
    Ok(Json(CallbackView { url: target.url }))
}

/// `DELETE /adm/services/{service_id}/callback`: no more callbacks; events not yet sent are
/// dropped by the engine's callback tasks.
pub(super) async fn delete_callback<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(service_id): Path<String>,
) -> ApiResult<Json<CallbackView>> {
    let (service, target) = registered(&app, &service_id).await?;
    app.store.put_callback(&service.service_id, None).await?;
    Ok(Json(CallbackView { url: target.url }))
}
