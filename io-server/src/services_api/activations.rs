//! `POST /activations/` (read one, fiscal code in the body) and `PUT /activations/` (upsert:
//! `{fiscal_code, status}`, the service taken from the key), for SPECIAL services only
//! (io-reference §4–§6). IO's paths end with a slash; the slash-less form is served too. The
//! answer is IO's `Activation`, with its `version` (0 when first stored, +1 on each change).

use std::sync::Arc;

use axum::Extension;
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
#[derive(Debug, Serialize)]
pub struct ActivationView {
    /// The citizen.
    pub fiscal_code: String,
    /// The SPECIAL service.
    pub service_id: String,
    /// ACTIVE, PENDING or INACTIVE.
    pub status: ActivationStatus,
    /// 0 when first stored, +1 on each change.
    pub version: u64,
}

/// An activation as written: IO's `{fiscal_code, status}`; `service_id` may be given (the
/// caller's own, on the Services API; required on the admin API) and `version` is ignored
/// (the store numbers versions).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationPayload {
    /// The citizen.
    pub fiscal_code: String,
    /// The SPECIAL service.
    #[serde(default)]
    pub service_id: Option<String>,
    /// ACTIVE, PENDING or INACTIVE.
    pub status: ActivationStatus,
    /// Ignored.
    #[serde(default, rename = "version")]
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

/// `POST /activations`: the caller's activation for a citizen.
pub async fn get_activation<S: Store>(
    State(app): State<Arc<App<S>>>,
    Extension(caller): Extension<ServiceCaller>,
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
pub async fn put_activation<S: Store>(
    State(app): State<Arc<App<S>>>,
    Extension(caller): Extension<ServiceCaller>,
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
