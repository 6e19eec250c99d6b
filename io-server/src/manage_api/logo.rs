//! Logo uploads as IO has them: `PUT /manage/services/{serviceId}/logo` (a managed service's,
//! with the institution's manage key; 204) and `PUT /organizations/{organization_fiscal_code}/logo`
//! (the institution's, with its manage key or one of its services' keys holding
//! `ApiServiceWrite`; 202). The body is IO's `Logo`: `{"logo": "<base64 of a PNG>"}`; the PNG
//! is checked by `io_core::Logo` before anything is kept. The citizen API serves the logos.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use io_core::{Group, Logo, LogoOwner, OrganizationFiscalCode, Store};
use serde::Deserialize;

use super::{InstitutionCaller, InstitutionKey, owned};
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};

/// IO's `Logo`: the PNG in base64 (RFC 4648, with padding).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = Logo)]
#[serde(deny_unknown_fields)]
pub struct LogoPayload {
    /// The PNG image in base64.
    #[schema(format = Byte, min_length = 1)]
    logo: String,
}

impl LogoPayload {
    /// The logo it carries, uploaded at `now`; a 400 naming `logo` and what is wrong.
    fn into_logo(self, now: io_core::Timestamp) -> ApiResult<Logo> {
        let png = base64::engine::general_purpose::STANDARD
            .decode(self.logo.trim())
            .map_err(|e| Problem::bad_request(format!("logo: not base64 ({e})")))?;
        Logo::from_png(png, now).map_err(|e| Problem::bad_request(format!("logo: {e}")))
    }
}

/// Why an uploaded logo is refused (the limits are `io_core::MAX_LOGO_BYTES` and
/// `MAX_LOGO_SIDE`; `logo_limits_are_the_documented_ones` checks the text).
const LOGO_REFUSED: &str = "The logo is not base64, not a well-formed PNG (the detail says what is wrong), over 131072 bytes, or a side of the image is over 1024 pixels.";
const ORGANIZATION_LOGO_REFUSED: &str = "organization_fiscal_code is not valid, or the logo is not base64, not a well-formed PNG (the detail says what is wrong), over 131072 bytes, or a side of the image is over 1024 pixels.";

/// `PUT /manage/services/{serviceId}/logo`: sets a managed service's logo (204).
#[utoipa::path(
    put, path = "/manage/services/{serviceId}/logo", operation_id = "cmsUpdateServiceLogo", tag = "manage",
    summary = "Set the service's logo (a PNG, shown by the citizen's app)",
    params(("serviceId" = String, Path, description = "The service's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    request_body(content = LogoPayload),
    responses(
        (status = 204, description = "The logo is kept; it replaces the previous one."),
        (status = 400, description = LOGO_REFUSED),
        (status = 404, description = "The institution has no such service (or it was deleted)."),
    )
)]
pub(super) async fn upload_service_logo<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(service_id): Path<String>,
    JsonBody(payload): JsonBody<LogoPayload>,
) -> ApiResult<StatusCode> {
    caller.require_manage()?;
    let (lifecycle, _) = owned(&app, &caller, &service_id).await?;
    let logo = payload.into_logo(app.clock.now())?;
    let owner = LogoOwner::Service(lifecycle.service.service_id);
    app.store.put_logo(&owner, Some(&logo)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /organizations/{organization_fiscal_code}/logo`: sets the caller's institution's logo
/// (202, as IO answers).
#[utoipa::path(
    put, path = "/organizations/{organization_fiscal_code}/logo", operation_id = "uploadOrganizationLogo", tag = "manage",
    summary = "Set the institution's logo (shown for its services that have none)",
    description = "With the institution's manage key, or one of its services' keys holding ApiServiceWrite.",
    params(("organization_fiscal_code" = inline(io_core::OrganizationFiscalCode), Path)),
    request_body(content = LogoPayload),
    responses(
        (status = 202, description = "The logo is kept; it replaces the previous one."),
        (status = 400, description = ORGANIZATION_LOGO_REFUSED),
        (status = 403, description = "The key is another institution's, or a service's key without ApiServiceWrite."),
    )
)]
pub(super) async fn upload_organization_logo<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(organization): Path<String>,
    JsonBody(payload): JsonBody<LogoPayload>,
) -> ApiResult<StatusCode> {
    let organization = OrganizationFiscalCode::parse(&organization)
        .map_err(|e| Problem::bad_request(format!("organization_fiscal_code: {e}")))?;
    if organization != caller.organization {
        return Err(Problem::forbidden(format!(
            "this key belongs to institution {}: it cannot set the logo of institution {organization}",
            caller.organization
        )));
    }
    if let InstitutionKey::Service(groups) = &caller.key
        && !groups.has(Group::ApiServiceWrite)
    {
        return Err(Problem::forbidden(
            "setting the institution's logo needs its manage key or a service key with ApiServiceWrite",
        ));
    }
    let logo = payload.into_logo(app.clock.now())?;
    app.store
        .put_logo(&LogoOwner::Organization(organization), Some(&logo))
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logo_limits_are_the_documented_ones() {
        for text in [LOGO_REFUSED, ORGANIZATION_LOGO_REFUSED] {
            assert!(text.contains(&format!("over {} bytes", io_core::MAX_LOGO_BYTES)));
            assert!(text.contains(&format!("over {} pixels", io_core::MAX_LOGO_SIDE)));
        }
    }
}
