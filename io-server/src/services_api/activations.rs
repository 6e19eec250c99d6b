//! `POST /activations/` (read one, fiscal code in the body) and `PUT /activations/` (upsert:
//! `{fiscal_code, status}`, the service taken from the key), for SPECIAL services only
//! (io-reference §4–§6). IO's paths end with a slash; the slash-less form is served too. The
//! answer is IO's `Activation`, with its `version` (0 when first stored, +1 on each change).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use io_core::{Activation, ActivationStatus, ServiceCategory, Store};
use serde::{Deserialize, Serialize};

use super::profiles::FiscalCodePayload;
use super::{ServiceCaller, parse_fiscal_code};
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};

/// IO's `Activation`, as answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Activation)]
pub struct ActivationView {
    /// The citizen.
    #[schema(value_type = io_core::FiscalCode)]
    pub fiscal_code: String,
    /// The SPECIAL service.
    #[schema(value_type = io_core::ServiceId)]
    pub service_id: String,
    /// PENDING lets messages in during a grace period (24 h by default).
    pub status: ActivationStatus,
    /// 0 when first stored, +1 on each change.
    pub version: u64,
}

/// An activation as written: IO's `{fiscal_code, status}`; `service_id` may be given (the
/// caller's own, on the Services API; required on the admin API) and `version` is ignored
/// (the store numbers versions).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ActivationInput)]
#[serde(deny_unknown_fields)]
pub struct ActivationPayload {
    /// The citizen.
    #[schema(value_type = io_core::FiscalCode)]
    pub fiscal_code: String,
    /// Optional: the calling service (403 for another).
    #[serde(default)]
    #[schema(value_type = Option<io_core::ServiceId>)]
    pub service_id: Option<String>,
    /// PENDING lets messages in during a grace period (24 h by default).
    pub status: ActivationStatus,
    /// Ignored: the store numbers versions.
    #[serde(default, rename = "version")]
    #[schema(minimum = 0)]
    pub _version: Option<u64>,
}

fn require_special(caller: &ServiceCaller) -> Result<(), Problem> {
    if caller.service.service_metadata.category != ServiceCategory::Special {
        return Err(Problem::forbidden(
            "activations exist only for SPECIAL services (service_metadata.category)",
        ));
    }
    if !caller.groups.may_write_messages() {
        return Err(Problem::forbidden(
            "activations require the ApiMessageWrite or ApiLimitedMessageWrite permission",
        ));
    }
    Ok(())
}

/// The IO shape of an activation.
pub fn activation_view(activation: &Activation) -> ActivationView {
    ActivationView {
        fiscal_code: activation.fiscal_code.as_str().to_string(),
        service_id: activation.service_id.as_str().to_string(),
        status: activation.status,
        version: activation.version,
    }
}

const SPECIAL_ONLY: &str = "The service is not SPECIAL, the key lacks ApiMessageWrite or ApiLimitedMessageWrite, or a limited key names a recipient outside authorized_recipients.";
const UPSERT_403: &str = "The service is not SPECIAL, the key lacks ApiMessageWrite or ApiLimitedMessageWrite, or a limited key names a recipient outside authorized_recipients. service_id is not the calling service.";

/// `POST /activations`: the caller's activation for a citizen.
#[utoipa::path(
    post,
    path = "/activations/",
    operation_id = "getServiceActivationByPOST",
    tag = "activations",
    summary = "The calling SPECIAL service's activation for a citizen",
    request_body = FiscalCodePayload,
    responses(
        (status = 200, description = "The activation.", body = ActivationView),
        (status = 400, description = "The fiscal code is not valid."),
        (status = 403, description = SPECIAL_ONLY),
        (status = 404, description = "No activation for this citizen."),
    )
)]
pub async fn get_activation<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: ServiceCaller,
    JsonBody(payload): JsonBody<FiscalCodePayload>,
) -> ApiResult<Json<ActivationView>> {
    require_special(&caller)?;
    let fiscal_code = parse_fiscal_code(&payload.fiscal_code, "fiscal_code")?;
    caller.require_recipient(&fiscal_code)?;
    let activation = app
        .store
        .activation(caller.service_id(), &fiscal_code)
        .await?
        .ok_or_else(|| Problem::not_found("no activation for this fiscal code"))?;
    Ok(Json(activation_view(&activation)))
}

/// `PUT /activations`: sets the status of the caller's activation for a citizen.
#[utoipa::path(
    put,
    path = "/activations/",
    operation_id = "upsertServiceActivation",
    tag = "activations",
    summary = "Set the calling SPECIAL service's activation for a citizen (the service is the key's)",
    request_body = ActivationPayload,
    responses(
        (status = 200, description = "The activation as stored, with its new version.", body = ActivationView),
        (status = 400, description = "The fiscal code is not valid."),
        (status = 403, description = UPSERT_403),
    )
)]
pub async fn put_activation<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: ServiceCaller,
    JsonBody(payload): JsonBody<ActivationPayload>,
) -> ApiResult<Json<ActivationView>> {
    require_special(&caller)?;
    let fiscal_code = parse_fiscal_code(&payload.fiscal_code, "fiscal_code")?;
    if let Some(service_id) = &payload.service_id
        && service_id != caller.service_id().as_str()
    {
        return Err(Problem::forbidden(
            "service_id: a service may only set its own activations",
        ));
    }
    caller.require_recipient(&fiscal_code)?;
    let activation = Activation {
        service_id: caller.service_id().clone(),
        fiscal_code,
        status: payload.status,
        updated_at: app.clock.now(),
        version: 0,
    };
    let stored = app.store.put_activation(&activation).await?;
    Ok(Json(activation_view(&stored)))
}
