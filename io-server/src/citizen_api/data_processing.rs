//! GDPR requests (io-reference §7): `POST /user-data-processing {choice: DOWNLOAD|DELETE}`,
//! `GET /user-data-processing/{choice}`, `DELETE /user-data-processing/{choice}` (aborts a
//! PENDING DELETE) and `GET /user-data-processing/DOWNLOAD/archive`.
//!
//! A request is one record per citizen and choice: PENDING when asked, WIP while carried out,
//! then CLOSED (or FAILED; ABORTED when the citizen withdrew a DELETE in time). The server
//! carries requests out in the background ([`sweep`]): a DOWNLOAD at once, a DELETE once its
//! grace period (`gdpr.delete_grace_secs`, IO's 6 days) has passed, so the citizen can still
//! abort it. Every status change is a compare-and-swap on the record, so an abort and the
//! worker, or two workers, never both win.

mod archive;
pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use io_core::{FiscalCode, Timestamp};
use serde::{Deserialize, Serialize};

pub use archive::Archive;
pub use sweep::{SWEEP_INTERVAL, process_due_requests, run};

use super::Citizen;
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};
use crate::records::ScheduledRequest;

/// How long the archive of a CLOSED DOWNLOAD request can be fetched: IO keeps its archives
/// 15 days. The citizen asks again afterwards.
pub const ARCHIVE_AVAILABLE_FOR: Duration = Duration::from_secs(15 * 24 * 3600);

/// What the citizen asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Choice {
    /// A copy of every piece of data about the citizen.
    Download,
    /// The erasure of every piece of data about the citizen.
    Delete,
}

impl Choice {
    /// IO's name, also the record's key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Download => "DOWNLOAD",
            Self::Delete => "DELETE",
        }
    }

    /// A choice from a path segment (IO's names, upper case).
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        match raw {
            "DOWNLOAD" => Ok(Self::Download),
            "DELETE" => Ok(Self::Delete),
            _ => Err(Problem::bad_request(format!(
                "choice (path): expected DOWNLOAD or DELETE, got {:?}",
                raw.chars().take(32).collect::<String>()
            ))),
        }
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestStatus {
    /// Asked, not yet carried out (a DELETE can still be aborted).
    Pending,
    /// Being carried out.
    Wip,
    /// Carried out.
    Closed,
    /// Could not be carried out; the citizen may ask again.
    Failed,
    /// Withdrawn by the citizen before it was carried out.
    Aborted,
}

impl RequestStatus {
    /// IO's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Wip => "WIP",
            Self::Closed => "CLOSED",
            Self::Failed => "FAILED",
            Self::Aborted => "ABORTED",
        }
    }
}

/// A GDPR request, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRequest {
    /// What was asked.
    pub choice: Choice,
    /// Where it stands.
    pub status: RequestStatus,
    /// When it was asked.
    pub created_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
    /// From when it may be carried out: at once for a DOWNLOAD, after the grace period in
    /// force when it was asked for a DELETE.
    pub due_at: Timestamp,
}

impl DataRequest {
    /// Not finished: another request of the same choice is refused meanwhile.
    pub fn is_open(&self) -> bool {
        matches!(self.status, RequestStatus::Pending | RequestStatus::Wip)
    }

    /// A PENDING request of `choice` asked at `now`; a DELETE waits `grace`.
    pub fn asked(choice: Choice, now: Timestamp, grace: Duration) -> Self {
        Self {
            choice,
            status: RequestStatus::Pending,
            created_at: now,
            updated_at: now,
            due_at: match choice {
                Choice::Download => now,
                Choice::Delete => now.plus(grace),
            },
        }
    }

    /// Its entry in the schedule of due requests.
    fn scheduled(&self, fiscal_code: &FiscalCode) -> ScheduledRequest {
        ScheduledRequest {
            due: self.due_at,
            fiscal_code: fiscal_code.clone(),
            choice: self.choice.as_str().to_string(),
        }
    }

    /// The same request with `status` from `now` on.
    fn moved_to(self, status: RequestStatus, now: Timestamp) -> Self {
        Self {
            status,
            updated_at: now,
            ..self
        }
    }
}

/// A request as the API answers it: `{choice, status, created_at, updated_at}`.
#[derive(Debug, Serialize)]
pub struct DataRequestView {
    choice: Choice,
    status: RequestStatus,
    created_at: String,
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDataRequest {
    choice: Choice,
}

fn grace(app: &App) -> Duration {
    Duration::from_secs(app.config.gdpr.delete_grace_secs)
}

/// The citizen's request of `choice`, if any.
async fn stored(
    app: &App,
    fiscal_code: &FiscalCode,
    choice: Choice,
) -> ApiResult<Option<DataRequest>> {
    Ok(app
        .records
        .data_request(fiscal_code, choice.as_str())
        .await?)
}

/// The citizen's request of `choice`, or 404.
async fn existing(app: &App, fiscal_code: &FiscalCode, choice: Choice) -> ApiResult<DataRequest> {
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
pub(super) async fn post_request(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
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
    // The schedule first: a request without its entry would never be carried out, an entry
    // without its request is dropped by the worker (not before an hour, so that it does not
    // drop the entry of a request being written right now).
    app.records
        .schedule_data_request(&request.scheduled(&fiscal_code))
        .await?;
    if !app
        .records
        .swap_data_request(
            &fiscal_code,
            choice.as_str(),
            current.as_ref(),
            Some(&request),
        )
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
pub(super) async fn get_request(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    Path(choice): Path<String>,
) -> ApiResult<Json<DataRequestView>> {
    let choice = Choice::parse(&choice)?;
    let request = existing(&app, &fiscal_code, choice).await?;
    Ok(Json(DataRequestView::from(&request)))
}

/// `DELETE /user-data-processing/{choice}`: aborts a PENDING DELETE request (ABORTED); 409
/// for a DOWNLOAD or a request no longer PENDING.
pub(super) async fn abort_request(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    Path(choice): Path<String>,
) -> ApiResult<Json<DataRequestView>> {
    let choice = Choice::parse(&choice)?;
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
        .records
        .swap_data_request(
            &fiscal_code,
            choice.as_str(),
            Some(&request),
            Some(&aborted),
        )
        .await?
    {
        return Err(changed_meanwhile(choice));
    }
    app.records
        .unschedule_data_request(&request.scheduled(&fiscal_code))
        .await?;
    Ok(Json(DataRequestView::from(&aborted)))
}

/// `GET /user-data-processing/DOWNLOAD/archive`: everything io holds about the citizen, once
/// their DOWNLOAD request is CLOSED and for [`ARCHIVE_AVAILABLE_FOR`] after.
pub(super) async fn get_archive(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
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
