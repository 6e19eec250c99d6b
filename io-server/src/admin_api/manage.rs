//! The platform's side of service management: an institution's manage key (issued, shown,
//! regenerated) and the review of the drafts institutions submit (`crate::manage_api`).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use io_core::{Group, Groups, LifecycleStatus, OrganizationFiscalCode, ServiceId, Store};
use serde::{Deserialize, Serialize};

use super::{KeysView, RegenerateKey, invalid, keys_of, keys_view, regenerate};
use crate::api_keys::manage_subscription;
use crate::app::App;
use crate::body::JsonBody;
use crate::manage_api::LifecycleView;
use crate::problem::{ApiResult, Problem};

fn parse_organization(raw: &str) -> Result<OrganizationFiscalCode, Problem> {
    OrganizationFiscalCode::parse(raw).map_err(|e| invalid("organization_fiscal_code", e))
}

/// What a manage key is issued with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ManageKeyRequest {
    /// The groups the keys of the institution's new services get; default:
    /// `crate::manage_api::default_service_groups`.
    #[serde(default)]
    groups: Option<BTreeSet<Group>>,
}

/// `POST /adm/organizations/{organization_fiscal_code}/manage-keys`: issues the institution's
/// manage keys (201; 409 if it has them).
pub(super) async fn create_manage_keys<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(organization): Path<String>,
    JsonBody(body): JsonBody<ManageKeyRequest>,
) -> ApiResult<Response> {
    let organization = parse_organization(&organization)?;
    let id = manage_subscription(&organization);
    if app.store.service_access(&id).await?.is_some() {
        return Err(Problem::conflict(format!(
            "institution {} already has manage keys (regenerate them with PUT)",
            organization.as_str()
        )));
    }
    let groups = body
        .groups
        .unwrap_or_else(crate::manage_api::default_service_groups);
    let access = app.keys.access(&id, Groups(groups), 1, 1);
    app.store.put_service_access(&id, &access).await?;
    Ok((StatusCode::CREATED, Json(keys_view(&app, &id, &access))).into_response())
}

/// `GET /adm/organizations/{organization_fiscal_code}/manage-keys`.
pub(super) async fn get_manage_keys<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(organization): Path<String>,
) -> ApiResult<Json<KeysView>> {
    let organization = parse_organization(&organization)?;
    Ok(Json(
        keys_of(&app, &manage_subscription(&organization)).await?.1,
    ))
}

/// `PUT /adm/organizations/{organization_fiscal_code}/manage-keys`: a new key in one slot.
pub(super) async fn regenerate_manage_key<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(organization): Path<String>,
    JsonBody(body): JsonBody<RegenerateKey>,
) -> ApiResult<Json<KeysView>> {
    let organization = parse_organization(&organization)?;
    let id = manage_subscription(&organization);
    let access = regenerate(&app, &id, body.key_type).await?;
    Ok(Json(keys_view(&app, &id, &access)))
}

async fn lifecycle_of<S: Store>(app: &App<S>, raw: &str) -> ApiResult<io_core::ServiceLifecycle> {
    let id = ServiceId::parse(raw).map_err(|e| invalid("service_id", e))?;
    app.store
        .service_lifecycle(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("service {id} is not managed by an institution")))
}

/// One draft waiting for the platform's review.
#[derive(Debug, Serialize)]
pub(super) struct ReviewItem {
    service_id: String,
    service_name: String,
    organization_fiscal_code: String,
    organization_name: String,
    /// When it was sent to review (RFC 3339).
    submitted_at: String,
    /// Whether approval publishes it at once.
    auto_publish: bool,
}

/// `GET /adm/reviews` answer.
#[derive(Debug, Serialize)]
pub(super) struct ReviewQueue {
    items: Vec<ReviewItem>,
}

/// `GET /adm/reviews`: every institution's drafts under review, the longest waiting first.
pub(super) async fn list_reviews<S: Store>(
    State(app): State<Arc<App<S>>>,
) -> ApiResult<Json<ReviewQueue>> {
    let mut waiting = app
        .store
        .service_lifecycles_with_status(LifecycleStatus::Submitted)
        .await?;
    waiting.sort_by(|a, b| {
        a.last_update
            .cmp(&b.last_update)
            .then_with(|| a.service.service_id.cmp(&b.service.service_id))
    });
    let items = waiting
        .into_iter()
        .map(|l| ReviewItem {
            service_id: l.service.service_id.as_str().to_owned(),
            service_name: l.service.service_name,
            organization_fiscal_code: l.service.organization_fiscal_code.as_str().to_owned(),
            organization_name: l.service.organization_name,
            submitted_at: l.last_update.to_rfc3339(),
            auto_publish: l.auto_publish,
        })
        .collect();
    Ok(Json(ReviewQueue { items }))
}

/// `GET /adm/services/{service_id}/review`: a managed service's draft and status.
pub(super) async fn get_review<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(service_id): Path<String>,
) -> ApiResult<Json<LifecycleView>> {
    let lifecycle = lifecycle_of(&app, &service_id).await?;
    Ok(Json(crate::manage_api::views::lifecycle(&lifecycle)))
}

/// The platform's decision on a draft under review.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Decision {
    /// Approved: publishable (published at once if the institution asked).
    Approve,
    /// Rejected: back to the institution, with the reason.
    Reject,
}

/// `{decision, reason}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReviewDecision {
    decision: Decision,
    /// Required to reject: what the institution must change.
    #[serde(default)]
    reason: Option<String>,
}

/// `PUT /adm/services/{service_id}/review`: approves or rejects a submitted draft (409 unless
/// it is under review).
pub(super) async fn decide_review<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(service_id): Path<String>,
    JsonBody(body): JsonBody<ReviewDecision>,
) -> ApiResult<Json<LifecycleView>> {
    let lifecycle = lifecycle_of(&app, &service_id).await?;
    if lifecycle.status == LifecycleStatus::Deleted {
        return Err(Problem::not_found(format!(
            "service {} was deleted",
            lifecycle.service.service_id
        )));
    }
    let id = &lifecycle.service.service_id;
    let engine_version = app.store.service(id).await?.map_or(0, |s| s.version);
    let now = app.clock.now();
    let change = match body.decision {
        Decision::Approve => lifecycle.approve(engine_version, now),
        Decision::Reject => {
            let reason = body
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| invalid("reason", "required to reject: say what must change"))?;
            if reason.chars().count() > 1000 {
                return Err(invalid("reason", "at most 1000 characters"));
            }
            lifecycle.reject(reason.to_owned(), engine_version, now)
        }
    }
    .map_err(|e| Problem::conflict(e.to_string()))?;
    app.store.commit_service_change(&change).await?;
    Ok(Json(crate::manage_api::views::lifecycle(&change.lifecycle)))
}
