//! GDPR requests (io-reference §7): `POST /user-data-processing {choice: DOWNLOAD|DELETE}`,
//! `GET /user-data-processing/{choice}`, `DELETE /user-data-processing/{choice}` (aborts a
//! PENDING DELETE) and `GET /user-data-processing/DOWNLOAD/archive`.
//!
//! A request is one record per citizen and choice (`io_core::DataRequest`): PENDING when
//! asked, WIP while carried out, then CLOSED (or FAILED; ABORTED when the citizen withdrew a
//! DELETE in time). The server carries requests out in the background ([`sweep`]): a DOWNLOAD
//! at once, a DELETE once its grace period (`gdpr.delete_grace_secs`, IO's 6 days) has passed,
//! so the citizen can still abort it. Every status change is one compare-and-swap of the
//! store (`Store::swap_data_request`), which keeps the index of open requests by due time in
//! step, so an abort and the worker, or two workers, never both win, and no request is left
//! out of the index or in it after it closed.

mod archive;
pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use io_core::{Choice, DataRequest, FiscalCode, RequestStatus, Store};
use serde::{Deserialize, Serialize};

pub use archive::Archive;
pub use sweep::{SWEEP_INTERVAL, process_due_requests, run};

use super::Citizen;
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};

/// How long the archive of a CLOSED DOWNLOAD request can be fetched: IO keeps its archives
/// 15 days. The citizen asks again afterwards.
pub const ARCHIVE_AVAILABLE_FOR: Duration = Duration::from_secs(15 * 24 * 3600);

/// A choice from a path segment (IO's names, upper case), or 400.
fn parse_choice(raw: &str) -> Result<Choice, Problem> {
    Choice::parse(raw).ok_or_else(|| {
        Problem::bad_request(format!(
            "choice (path): expected DOWNLOAD or DELETE, got {:?}",
            raw.chars().take(32).collect::<String>()
        ))
    })
}

/// A request as the API answers it: `{choice, status, created_at, updated_at}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DataRequest)]
pub struct DataRequestView {
    choice: Choice,
    status: RequestStatus,
    #[schema(schema_with = io_core::openapi::timestamp)]
    created_at: String,
    #[schema(schema_with = io_core::openapi::timestamp)]
    updated_at: String,
}

impl From<&DataRequest> for DataRequestView {
    fn from(request: &DataRequest) -> Self {
        Self {
            choice: request.choice,
            status: request.status,
            created_at: request.created_at.to_rfc3339(),
            updated_at: request.updated_at.to_rfc3339(),
        }
    }
}

/// `POST /user-data-processing` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = DataRequestInput)]
#[serde(deny_unknown_fields)]
pub struct NewDataRequest {
    choice: Choice,
}

fn grace<S: Store>(app: &App<S>) -> Duration {
    Duration::from_secs(app.config.gdpr.delete_grace_secs)
}

/// The citizen's request of `choice`, if any.
async fn stored<S: Store>(
    app: &App<S>,
    fiscal_code: &FiscalCode,
    choice: Choice,
) -> ApiResult<Option<DataRequest>> {
    Ok(app.store.data_request(fiscal_code, choice).await?)
}

/// The citizen's request of `choice`, or 404.
async fn existing<S: Store>(
    app: &App<S>,
    fiscal_code: &FiscalCode,
    choice: Choice,
) -> ApiResult<DataRequest> {
    stored(app, fiscal_code, choice).await?.ok_or_else(|| {
        Problem::not_found(format!(
            "no {} request: ask with POST /user-data-processing",
            choice.as_str()
        ))
    })
}

/// The answer when the record changed between this request's read and its write.
fn changed_meanwhile(choice: Choice) -> Problem {
    Problem::conflict(format!(
        "choice: the {} request changed meanwhile; read it again",
        choice.as_str()
    ))
}

/// `POST /user-data-processing`: 201 with the PENDING request; 409 while one of that choice
/// is PENDING or WIP. A finished one (CLOSED, FAILED, ABORTED) is replaced.
#[utoipa::path(
    post, path = "/user-data-processing", operation_id = "requestDataProcessing", tag = "privacy",
    summary = "Ask for a copy of all your data (DOWNLOAD) or its erasure (DELETE)",
    description = "A DELETE waits the configured grace period (IO: 6 days) and can be aborted meanwhile; then content and personal data are erased, the evidence journals keep only the hashed fiscal code.",
    request_body = NewDataRequest,
    responses(
        (status = 201, description = "The request.", body = DataRequestView, headers(
            ("Location" = String, description = "The request's URL (GET it to follow the request)."),
        )),
        (status = 409, description = "A request of this choice is already PENDING or WIP."),
    )
)]
pub async fn post_request<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
    JsonBody(body): JsonBody<NewDataRequest>,
) -> ApiResult<Response> {
    let choice = body.choice;
    let current = stored(&app, &fiscal_code, choice).await?;
    if let Some(open) = current.as_ref().filter(|r| r.is_open()) {
        return Err(Problem::conflict(format!(
            "choice: a {} request is already {}",
            choice.as_str(),
            open.status.as_str()
        )));
    }
    let request = DataRequest::asked(choice, app.clock.now(), grace(&app));
    if !app
        .store
        .swap_data_request(&fiscal_code, choice, current.as_ref(), Some(&request))
        .await?
    {
        return Err(changed_meanwhile(choice));
    }
    let mut response = (StatusCode::CREATED, Json(DataRequestView::from(&request))).into_response();
    let location = format!("/app/v1/user-data-processing/{}", choice.as_str());
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `GET /user-data-processing/{choice}`.
#[utoipa::path(
    get, path = "/user-data-processing/{choice}", operation_id = "getDataProcessing", tag = "privacy",
    summary = "Where a GDPR request stands",
    params(("choice" = inline(Choice), Path, example = "DOWNLOAD")),
    responses(
        (status = 200, description = "The request.", body = DataRequestView),
        (status = 400, description = "The choice is not DOWNLOAD or DELETE."),
        (status = 404, description = "No request of this choice."),
    )
)]
pub async fn get_request<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
    Path(choice): Path<String>,
) -> ApiResult<Json<DataRequestView>> {
    let choice = parse_choice(&choice)?;
    let request = existing(&app, &fiscal_code, choice).await?;
    Ok(Json(DataRequestView::from(&request)))
}

/// `DELETE /user-data-processing/{choice}`: aborts a PENDING DELETE request (ABORTED); 409
/// for a DOWNLOAD or a request no longer PENDING.
#[utoipa::path(
    delete, path = "/user-data-processing/{choice}", operation_id = "abortDataProcessing", tag = "privacy",
    summary = "Abort a PENDING DELETE request",
    params(("choice" = inline(Choice), Path, example = "DOWNLOAD")),
    responses(
        (status = 200, description = "The request, ABORTED.", body = DataRequestView),
        (status = 400, description = "The choice is not DOWNLOAD or DELETE."),
        (status = 404, description = "No request of this choice."),
        (status = 409, description = "Only a PENDING DELETE request can be aborted."),
    )
)]
pub async fn abort_request<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
    Path(choice): Path<String>,
) -> ApiResult<Json<DataRequestView>> {
    let choice = parse_choice(&choice)?;
    let request = existing(&app, &fiscal_code, choice).await?;
    if choice != Choice::Delete {
        return Err(Problem::conflict(
            "choice: only a DELETE request can be aborted",
        ));
    }
    if request.status != RequestStatus::Pending {
        return Err(Problem::conflict(format!(
            "status: the DELETE request is {}; only a PENDING one can be aborted",
            request.status.as_str()
        )));
    }
    let aborted = request.moved_to(RequestStatus::Aborted, app.clock.now());
    if !app
        .store
        .swap_data_request(&fiscal_code, choice, Some(&request), Some(&aborted))
        .await?
    {
        return Err(changed_meanwhile(choice));
    }
    Ok(Json(DataRequestView::from(&aborted)))
}

/// `GET /user-data-processing/DOWNLOAD/archive`: everything io holds about the citizen, once
/// their DOWNLOAD request is CLOSED and for [`ARCHIVE_AVAILABLE_FOR`] after.
#[utoipa::path(
    get, path = "/user-data-processing/DOWNLOAD/archive", operation_id = "getDataArchive", tag = "privacy",
    summary = "The archive of all your data, once the DOWNLOAD request is CLOSED (kept 15 days)",
    responses(
        (status = 200, description = "The archive.", body = Archive),
        (status = 404, description = "No DOWNLOAD request, or its archive is older than 15 days."),
        (status = 409, description = "The DOWNLOAD request is not CLOSED yet."),
    )
)]
pub async fn get_archive<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
) -> ApiResult<Json<Archive>> {
    let request = existing(&app, &fiscal_code, Choice::Download).await?;
    if request.status != RequestStatus::Closed {
        return Err(Problem::conflict(format!(
            "status: the DOWNLOAD request is {}; the archive is ready once it is CLOSED",
            request.status.as_str()
        )));
    }
    let now = app.clock.now();
    if now >= request.updated_at.plus(ARCHIVE_AVAILABLE_FOR) {
        return Err(Problem::not_found(format!(
            "the archive of the DOWNLOAD request closed at {} was kept {} days; ask again with POST /user-data-processing",
            request.updated_at.to_rfc3339(),
            ARCHIVE_AVAILABLE_FOR.as_secs() / 86_400
        )));
    }
    Ok(Json(Archive::of(&app, &fiscal_code, now).await?))
}
