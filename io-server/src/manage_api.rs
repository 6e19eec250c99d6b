//! IO's service management under `/api/v1/manage/services`: an institution's *manage* key
//! (issued by the admin API) creates the institution's services, edits their drafts, sends
//! them to review, publishes and unpublishes them, reads their history and their keys. The
//! platform's operators approve or reject a draft under review through the admin API. The
//! rules of the lifecycle are `io_core::ServiceLifecycle`'s; this module maps IO's payloads and
//! views (`CmsServicePayload`, `CmsServiceLifecycle`, ...) onto it.
//!
//! Until it is published, a managed service is *sandboxed*: its keys write only to its
//! `authorized_recipients`. A change computed from a read another change got ahead of is
//! refused with 409, as is a change the service's status does not allow.

mod logo;
mod payload;
mod remote_contents;
pub mod views;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use io_core::{
    Group, Groups, KeySlot, LifecycleError, LifecycleStatus, OrganizationFiscalCode, ServiceChange,
    ServiceId, ServiceLifecycle, Store, StoreError, TOPICS,
};
use serde::Deserialize;

use crate::app::App;
use crate::body::JsonBody;
use crate::institution_limit::Verdict;
use crate::openapi::DocumentedRouter;
use crate::problem::{ApiResult, Problem};
use crate::query_number::number;

pub use logo::LogoPayload;
pub use payload::CmsServicePayload;
pub use remote_contents::{ConfigurationList, ConfigurationPayload, ConfigurationView};
pub use views::{HistoryPage, LifecycleView, PublicationView, ServicePage, TopicList};

/// The groups of a managed service's keys when the admin gave its institution's manage key
/// none: write to anyone (the sandbox holds until publication), read its messages, read the
/// profiles of its authorized recipients.
pub fn default_service_groups() -> BTreeSet<Group> {
    BTreeSet::from([
        Group::ApiMessageWrite,
        Group::ApiMessageRead,
        Group::ApiLimitedProfileRead,
    ])
}

/// Who calls: an institution, through its manage key or through one of its services' keys
/// (which may only read the topics and, with `ApiServiceWrite`, set the institution's logo).
#[derive(Debug, Clone)]
pub struct InstitutionCaller {
    /// The institution.
    pub organization: OrganizationFiscalCode,
    /// The key presented.
    pub key: InstitutionKey,
}

/// The kind of key an institution called with.
#[derive(Debug, Clone)]
pub enum InstitutionKey {
    /// Its manage key, with the groups its new services' keys get.
    Manage(Groups),
    /// One of its services' keys, with that key's groups.
    Service(Groups),
}

impl InstitutionCaller {
    /// 403 unless the caller presented its institution's manage key.
    fn require_manage(&self) -> Result<Groups, Problem> {
        match &self.key {
            InstitutionKey::Manage(groups) => Ok(groups.clone()),
            InstitutionKey::Service(_) => Err(Problem::forbidden(
                "this operation needs the institution's manage key (a service's key cannot manage services)",
            )),
        }
    }
}

/// The documented routes of service management and remote-content configurations, before
/// the authentication layers of [`router`].
pub fn routes<S: Store>() -> DocumentedRouter<Arc<App<S>>> {
    DocumentedRouter::default()
        .route::<__path_create, _, _>(create::<S>)
        .route::<__path_list, _, _>(list::<S>)
        .route::<__path_topics, _, _>(topics)
        .route::<__path_read, _, _>(read::<S>)
        .route::<__path_update, _, _>(update::<S>)
        .route::<__path_delete, _, _>(delete::<S>)
        .route::<__path_review, _, _>(review::<S>)
        .route::<__path_release, _, _>(release::<S>)
        .route::<__path_published, _, _>(published::<S>)
        .route::<__path_unpublish, _, _>(unpublish::<S>)
        .route::<logo::__path_upload_service_logo, _, _>(logo::upload_service_logo::<S>)
        .route::<logo::__path_upload_organization_logo, _, _>(logo::upload_organization_logo::<S>)
        .route::<remote_contents::__path_create, _, _>(remote_contents::create::<S>)
        .route::<remote_contents::__path_list, _, _>(remote_contents::list::<S>)
        .route::<remote_contents::__path_read, _, _>(remote_contents::read::<S>)
        .route::<remote_contents::__path_update, _, _>(remote_contents::update::<S>)
        .route::<__path_history, _, _>(history::<S>)
        .route::<__path_keys, _, _>(keys::<S>)
        .route::<__path_regenerate_key, _, _>(regenerate_key::<S>)
}

/// `routes` (the router of [`routes`]) behind the institution's authentication.
pub fn router<S: Store>(app: Arc<App<S>>, routes: Router<Arc<App<S>>>) -> Router<Arc<App<S>>> {
    routes
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            authenticate::<S>,
        ))
        .route_layer(middleware::from_fn_with_state(
            app,
            crate::app::measure::<S>,
        ))
}

/// Authenticates the key (a manage key, or a service's key whose institution is the caller)
/// and counts the call against the institution's rate limit.
async fn authenticate<S: Store>(
    State(app): State<Arc<App<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match identify(&app, peer, request.headers()).await {
        Ok(caller) => caller,
        Err(problem) => return problem.into_response(),
    };
    if let Verdict::Refused { limit, retry_after } = app.limiter.check(caller.organization.as_str())
    {
        return crate::institution_limit::refusal(caller.organization.as_str(), limit, retry_after)
            .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

async fn identify<S: Store>(
    app: &App<S>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<InstitutionCaller, Problem> {
    let (subscription, groups) = crate::services_api::key_owner(app, headers).await?;
    if let Some(organization) = crate::api_keys::managing_institution(&subscription) {
        return Ok(InstitutionCaller {
            organization,
            key: InstitutionKey::Manage(groups),
        });
    }
    // A service's key: the checks of the Services API (its service exists, the source
    // address is authorized) apply.
    let caller = crate::services_api::identify(app, peer, headers).await?;
    Ok(InstitutionCaller {
        organization: caller.service.organization_fiscal_code,
        key: InstitutionKey::Service(caller.groups),
    })
}

/// A lifecycle error as IO answers it: 409, the detail saying what the status allows.
fn refused(error: LifecycleError) -> Problem {
    match error {
        LifecycleError::NeverPublished => Problem::not_found(error.to_string()),
        other => Problem::conflict(other.to_string()),
    }
}

fn parse_service_id(raw: &str) -> Result<ServiceId, Problem> {
    ServiceId::parse(raw).map_err(|e| Problem::bad_request(format!("serviceId: {e}")))
}

/// The caller's service `raw` with the version of the service the engine sends with; 404 for
/// another institution's service, a deleted one or one that is not managed.
async fn owned<S: Store>(
    app: &App<S>,
    caller: &InstitutionCaller,
    raw: &str,
) -> ApiResult<(ServiceLifecycle, u64)> {
    let id = parse_service_id(raw)?;
    let not_found = || Problem::not_found(format!("the institution has no service {id}"));
    let lifecycle = app
        .store
        .service_lifecycle(&id)
        .await?
        .filter(|l| l.service.organization_fiscal_code == caller.organization)
        .filter(|l| l.status != LifecycleStatus::Deleted)
        .ok_or_else(not_found)?;
    let engine_version = app.store.service(&id).await?.map_or(0, |s| s.version);
    Ok((lifecycle, engine_version))
}

/// Writes `change`; a concurrent change that got in first (the stored version moved) is a 409
/// that says so.
async fn commit<S: Store>(app: &App<S>, change: &ServiceChange) -> ApiResult<()> {
    match app.store.commit_service_change(change).await {
        Err(StoreError::Conflict { what, .. }) => Err(Problem::conflict(format!(
            "the service was changed concurrently ({what}); read it again and retry"
        ))),
        result => Ok(result?),
    }
}

/// Reads the caller's service, computes `change` from it and writes it.
async fn change<S: Store, F>(
    app: &App<S>,
    caller: &InstitutionCaller,
    raw: &str,
    change: F,
) -> ApiResult<ServiceLifecycle>
where
    F: FnOnce(&ServiceLifecycle, u64) -> ApiResult<ServiceChange>,
{
    caller.require_manage()?;
    let (lifecycle, engine_version) = owned(app, caller, raw).await?;
    let change = change(&lifecycle, engine_version)?;
    commit(app, &change).await?;
    Ok(change.lifecycle)
}

/// `POST /manage/services`: a new draft with its keys (201).
#[utoipa::path(
    post, path = "/manage/services", operation_id = "cmsCreateService", tag = "manage",
    summary = "Create a service (a draft, sandboxed until published)",
    request_body(content = CmsServicePayload),
    responses(
        (status = 201, description = "The new draft, with the id io gave it.", body = LifecycleView),
        (status = 400, description = "A field is not valid (the detail names it): a topic_id not listed, a fiscal code or a CIDR that does not parse, a text empty or over 1000 characters."),
        (status = 403, description = "organization.fiscal_code is not the key's institution."),
    )
)]
async fn create<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    JsonBody(payload): JsonBody<CmsServicePayload>,
) -> ApiResult<Response> {
    let groups = caller.require_manage()?;
    let groups = if groups.0.is_empty() {
        Groups(default_service_groups())
    } else {
        groups
    };
    let id = ServiceId::parse(&ulid::Ulid::new().to_string()).map_err(Problem::internal)?;
    let service = payload.into_service(id.clone(), &caller.organization, None)?;
    let access = app.keys.access(&id, groups, 1, 1);
    let change = ServiceLifecycle::create(service, access, app.clock.now());
    commit(&app, &change).await?;
    let mut response = (
        StatusCode::CREATED,
        Json(views::lifecycle(&change.lifecycle)),
    )
        .into_response();
    if let Ok(location) = format!("/api/v1/manage/services/{id}").parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /manage/services` query. Unknown parameters are ignored, as IO ignores them.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    offset: Option<String>,
}

/// `GET /manage/services`: the institution's services (deleted ones left out), by id.
#[utoipa::path(
    get, path = "/manage/services", operation_id = "cmsGetServices", tag = "manage",
    summary = "The institution's services (deleted ones left out), by id",
    params(
        ("limit" = Option<u32>, Query, nullable = false, minimum = 1, maximum = 100, description = "Default 20."),
        ("offset" = Option<u32>, Query, nullable = false, minimum = 0, maximum = 1000000, description = "Default 0."),
    ),
    responses(
        (status = 200, description = "A page of services and the total count.", body = ServicePage),
        (status = 400, description = "limit or offset out of range."),
    )
)]
async fn list<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<ServicePage>> {
    caller.require_manage()?;
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let limit = number(query.limit.as_deref(), "limit", (1, 100), 20)?;
    let offset = number(query.offset.as_deref(), "offset", (0, 1_000_000), 0)?;
    let mut all = app.store.service_lifecycles(&caller.organization).await?;
    all.retain(|l| l.status != LifecycleStatus::Deleted);
    Ok(Json(views::page(&all, offset, limit)))
}

/// `GET /manage/services/topics`.
#[utoipa::path(
    get, path = "/manage/services/topics", operation_id = "getServiceTopics", tag = "manage",
    summary = "The topics a service can be listed under (any key of the institution)",
    responses((status = 200, description = "Every topic.", body = TopicList))
)]
async fn topics(_caller: InstitutionCaller) -> Json<TopicList> {
    Json(views::topics(TOPICS))
}

/// `GET /manage/services/{serviceId}`.
#[utoipa::path(
    get, path = "/manage/services/{serviceId}", operation_id = "cmsGetService", tag = "manage",
    summary = "A service's draft and its review status",
    params(("serviceId" = String, Path, description = "The service's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    responses(
        (status = 200, description = "The service.", body = LifecycleView),
        (status = 400, description = "serviceId is not a service id."),
        (status = 404, description = "The institution has no such service (or it was deleted)."),
    )
)]
async fn read<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(service_id): Path<String>,
) -> ApiResult<Json<LifecycleView>> {
    caller.require_manage()?;
    let (lifecycle, _) = owned(&app, &caller, &service_id).await?;
    Ok(Json(views::lifecycle(&lifecycle)))
}

/// `PUT /manage/services/{serviceId}`: replaces the draft (409 while under review).
#[utoipa::path(
    put, path = "/manage/services/{serviceId}", operation_id = "cmsUpdateService", tag = "manage",
    summary = "Replace a service's draft (it becomes a draft again; a published version stays in force)",
    params(("serviceId" = String, Path, description = "The service's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    request_body(content = CmsServicePayload),
    responses(
        (status = 200, description = "The updated draft.", body = LifecycleView),
        (status = 400, description = "A field is not valid (the detail names it)."),
        (status = 403, description = "organization.fiscal_code is not the key's institution."),
        (status = 404, description = "The institution has no such service (or it was deleted)."),
        (status = 409, description = "The service is under review, or another change got in first (read it again and retry)."),
    )
)]
async fn update<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(service_id): Path<String>,
    JsonBody(payload): JsonBody<CmsServicePayload>,
) -> ApiResult<Json<LifecycleView>> {
    let now = app.clock.now();
    let organization = caller.organization.clone();
    let lifecycle = change(&app, &caller, &service_id, |stored, engine_version| {
        let service = payload.into_service(
            stored.service.service_id.clone(),
            &organization,
            Some(&stored.service),
        )?;
        stored.update(service, engine_version, now).map_err(refused)
    })
    .await?;
    Ok(Json(views::lifecycle(&lifecycle)))
}

/// `DELETE /manage/services/{serviceId}`: 204; the service is unpublished and sends to
/// nobody.
#[utoipa::path(
    delete, path = "/manage/services/{serviceId}", operation_id = "cmsDeleteService", tag = "manage",
    summary = "Delete a service: unpublished, unlisted, it sends to nobody",
    params(("serviceId" = String, Path, description = "The service's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "serviceId is not a service id."),
        (status = 404, description = "The institution has no such service (or it was deleted)."),
        (status = 409, description = "Another change got in first."),
    )
)]
async fn delete<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(service_id): Path<String>,
) -> ApiResult<StatusCode> {
    let now = app.clock.now();
    change(&app, &caller, &service_id, |stored, version| {
        Ok(stored.delete(version, now))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// IO's `CmsReviewRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = CmsReviewRequest)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// Publish as soon as the platform approves.
    auto_publish: bool,
}

/// `PUT /manage/services/{serviceId}/review`: sends the draft to review (204; 409 unless it
/// is a draft). IO's body is optional: no body means no automatic publication.
#[utoipa::path(
    put, path = "/manage/services/{serviceId}/review", operation_id = "cmsReviewService", tag = "manage",
    summary = "Send the draft to the platform's review",
    description = "The body is optional; without one the service is not published on approval.",
    params(("serviceId" = String, Path, description = "The service's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    request_body(content = Option<ReviewRequest>),
    responses(
        (status = 204, description = "Under review."),
        (status = 404, description = "The institution has no such service (or it was deleted)."),
        (status = 409, description = "Only a draft goes to review (a rejected one once edited)."),
    )
)]
async fn review<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(service_id): Path<String>,
    request: Request,
) -> ApiResult<StatusCode> {
    let auto_publish = if request_has_body(request.headers()) {
        let JsonBody(body) =
            <JsonBody<ReviewRequest> as axum::extract::FromRequest<_>>::from_request(request, &())
                .await?;
        body.auto_publish
    } else {
        false
    };
    let now = app.clock.now();
    change(&app, &caller, &service_id, |stored, version| {
        stored.review(auto_publish, version, now).map_err(refused)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether a request announces a body (a length above zero, or chunks).
fn request_has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// `POST /manage/services/{serviceId}/release`: publishes the approved draft (204; 409
/// unless approved).
#[utoipa::path(
    post, path = "/manage/services/{serviceId}/release", operation_id = "cmsReleaseService", tag = "manage",
    summary = "Publish the approved draft: listed to citizens, writing to any of them",
    params(("serviceId" = String, Path, description = "The service's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    responses(
        (status = 204, description = "Published."),
        (status = 400, description = "serviceId is not a service id."),
        (status = 404, description = "The institution has no such service (or it was deleted)."),
        (status = 409, description = "The draft is not approved, or another change got in first."),
    )
)]
async fn release<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(service_id): Path<String>,
) -> ApiResult<StatusCode> {
    let now = app.clock.now();
    change(&app, &caller, &service_id, |stored, version| {
        stored.release(version, now).map_err(refused)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /manage/services/{serviceId}/release`: the last released version (404 if none).
#[utoipa::path(
    get, path = "/manage/services/{serviceId}/release", operation_id = "cmsGetPublishedService", tag = "manage",
    summary = "The last released version and whether it is published",
    params(("serviceId" = String, Path, description = "The service's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    responses(
        (status = 200, description = "The released version.", body = PublicationView),
        (status = 400, description = "serviceId is not a service id."),
        (status = 404, description = "The institution has no such service (or it was deleted). The service has never been released."),
    )
)]
async fn published<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(service_id): Path<String>,
) -> ApiResult<Json<views::PublicationView>> {
    caller.require_manage()?;
    let (lifecycle, _) = owned(&app, &caller, &service_id).await?;
    let publication = lifecycle.publication.as_ref().ok_or_else(|| {
        Problem::not_found(format!(
            "service {} has never been published",
            lifecycle.service.service_id
        ))
    })?;
    Ok(Json(views::publication(publication)))
}

/// `DELETE /manage/services/{serviceId}/release`: takes the published version down (204;
/// 404 if it was never published; again on an unpublished one: nothing changes).
#[utoipa::path(
    delete, path = "/manage/services/{serviceId}/release", operation_id = "cmsUnpublishService", tag = "manage",
    summary = "Take the published version down (sandboxed and unlisted again)",
    params(("serviceId" = String, Path, description = "The service's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    responses(
        (status = 204, description = "Unpublished (also when it already was)."),
        (status = 400, description = "serviceId is not a service id."),
        (status = 404, description = "The institution has no such service (or it was deleted). The service has never been released."),
        (status = 409, description = "Another change got in first."),
    )
)]
async fn unpublish<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(service_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_manage()?;
    let (lifecycle, engine_version) = owned(&app, &caller, &service_id).await?;
    if let Some(change) = lifecycle
        .unpublish(engine_version, app.clock.now())
        .map_err(refused)?
    {
        commit(&app, &change).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The order of a service's history: ASC (oldest first) or DESC (newest first, the default).
// Read with serde, so the document's values are the ones accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub enum HistoryOrder {
    /// Oldest first.
    #[serde(rename = "ASC")]
    Ascending,
    /// Newest first (the default).
    #[serde(rename = "DESC")]
    Descending,
}

/// Which of the service's two keys to regenerate.
// Read with serde, as `HistoryOrder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// The primary key.
    Primary,
    /// The secondary key.
    Secondary,
}

/// `raw` as the string enum `T`, or `None`.
fn string_enum<T: serde::de::DeserializeOwned>(raw: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned())).ok()
}

/// `GET /manage/services/{serviceId}/history` query. Unknown parameters are ignored, as IO
/// ignores them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryQuery {
    order: Option<String>,
    limit: Option<String>,
    continuation_token: Option<String>,
}

/// `GET /manage/services/{serviceId}/history`: newest first unless `order=ASC`, `limit`
/// items a page (10 by default), `continuationToken` from the previous page.
#[utoipa::path(
    get, path = "/manage/services/{serviceId}/history", operation_id = "cmsGetServiceHistory", tag = "manage",
    summary = "Every change of the service, newest first unless order=ASC",
    params(
        ("serviceId" = String, Path, description = "The service's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        ("order" = inline(Option<HistoryOrder>), Query, nullable = false, description = "Default DESC."),
        ("limit" = Option<u32>, Query, nullable = false, minimum = 1, maximum = 100, description = "Default 10."),
        ("continuationToken" = Option<String>, Query, nullable = false, description = "From the previous page."),
    ),
    responses(
        (status = 200, description = "A page of the history.", body = HistoryPage),
        (status = 400, description = "order, limit or continuationToken is not valid."),
        (status = 404, description = "The institution has no such service (or it was deleted)."),
    )
)]
async fn history<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(service_id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<Json<HistoryPage>> {
    caller.require_manage()?;
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let ascending = match query.order.as_deref().map(string_enum::<HistoryOrder>) {
        None | Some(Some(HistoryOrder::Descending)) => false,
        Some(Some(HistoryOrder::Ascending)) => true,
        Some(None) => return Err(Problem::bad_request("order: expected ASC or DESC")),
    };
    let limit = number(query.limit.as_deref(), "limit", (1, 100), 10)?;
    let from =
        match query.continuation_token.as_deref() {
            None => None,
            Some(token) => Some(token.parse::<u64>().map_err(|_| {
                Problem::bad_request("continuationToken: not a token this API gave")
            })?),
        };
    let (lifecycle, _) = owned(&app, &caller, &service_id).await?;
    let mut items = app
        .store
        .service_history(&lifecycle.service.service_id)
        .await?;
    if !ascending {
        items.reverse();
    }
    let start = from.map_or(0, |seq| {
        items
            .iter()
            .position(|item| item.seq == seq)
            .unwrap_or(items.len())
    });
    let page: Vec<_> = items.iter().skip(start).take(limit + 1).collect();
    let next = page.get(limit).map(|item| item.seq.to_string());
    Ok(Json(views::history(
        &lifecycle.service.service_id,
        page.into_iter().take(limit),
        next,
    )))
}

/// `GET /manage/services/{serviceId}/keys`: the service's two keys.
#[utoipa::path(
    get, path = "/manage/services/{serviceId}/keys", operation_id = "cmsGetServiceKeys", tag = "manage",
    summary = "The service's two keys",
    params(("serviceId" = String, Path, description = "The service's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    responses(
        (status = 200, description = "The keys.", body = crate::admin_api::KeysView),
        (status = 400, description = "serviceId is not a service id."),
        (status = 404, description = "The institution has no such service (or it was deleted)."),
    )
)]
async fn keys<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(service_id): Path<String>,
) -> ApiResult<Json<crate::admin_api::KeysView>> {
    caller.require_manage()?;
    let (lifecycle, _) = owned(&app, &caller, &service_id).await?;
    let id = &lifecycle.service.service_id;
    let access = app
        .store
        .service_access(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no keys for service {id}")))?;
    Ok(Json(crate::admin_api::keys_view(&app, id, &access)))
}

/// `PUT /manage/services/{serviceId}/keys/{keyType}`: a new key in the slot (`primary` or
/// `secondary`); the other keeps working.
#[utoipa::path(
    put, path = "/manage/services/{serviceId}/keys/{keyType}", operation_id = "cmsRegenerateServiceKey", tag = "manage",
    summary = "A new key in one slot; the other keeps working",
    params(("serviceId" = String, Path, description = "The service's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV"), ("keyType" = inline(KeyType), Path, example = "primary")),
    responses(
        (status = 200, description = "The keys in force.", body = crate::admin_api::KeysView),
        (status = 400, description = "keyType is not primary or secondary."),
        (status = 404, description = "The institution has no such service (or it was deleted)."),
        (status = 409, description = "Too many concurrent regenerations."),
    )
)]
async fn regenerate_key<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path((service_id, key_type)): Path<(String, String)>,
) -> ApiResult<Json<crate::admin_api::KeysView>> {
    caller.require_manage()?;
    let slot = match string_enum::<KeyType>(&key_type) {
        Some(KeyType::Primary) => KeySlot::Primary,
        Some(KeyType::Secondary) => KeySlot::Secondary,
        None => {
            return Err(Problem::bad_request(
                "keyType: expected primary or secondary",
            ));
        }
    };
    let (lifecycle, _) = owned(&app, &caller, &service_id).await?;
    let id = &lifecycle.service.service_id;
    let access = crate::admin_api::regenerate(&app, id, slot).await?;
    Ok(Json(crate::admin_api::keys_view(&app, id, &access)))
}
