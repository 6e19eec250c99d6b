//! The admin API under `/adm`, shaped like IO's: services with their keys and permission
//! groups, activations, citizen tokens for development, the validation of a citizen's email
//! (until io has its own confirmation flow), a message lookup for support, and the services'
//! callback registrations (`admin_api/callback.rs`). Guarded by the admin bearer token
//! (compared by hash, in constant time).

mod callback;
mod manage;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use io_core::{
    Activation, EmailAddress, FiscalCode, Group, Groups, KeySlot, OrganizationFiscalCode, Profile,
    SANDBOX_FISCAL_CODE, Service, ServiceAccess, ServiceId, ServiceMetadata, Store, StoreError,
};
use serde::{Deserialize, Serialize};

use crate::api_keys::{constant_time_eq, key_hash};
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};
use crate::services_api::activations::{ActivationPayload, ActivationView, activation_view};
use crate::services_api::parse_fiscal_code;
use crate::views::MessageResponse;

/// The `/adm` routes.
pub fn router<S: Store>(app: Arc<App<S>>) -> Router<Arc<App<S>>> {
    Router::new()
        .route(
            "/services",
            post(create_service::<S>).get(list_services::<S>),
        )
        .route(
            "/services/{service_id}",
            get(get_service::<S>).put(update_service::<S>),
        )
        .route(
            "/services/{service_id}/keys",
            get(get_keys::<S>).put(regenerate_key::<S>),
        )
        .route(
            "/services/{service_id}/activations/{fiscal_code}",
            get(get_activation::<S>),
        )
        .route(
            "/services/{service_id}/callback",
            get(callback::get_callback::<S>)
                .put(callback::put_callback::<S>)
                .delete(callback::delete_callback::<S>),
        )
        .route("/reviews", get(manage::list_reviews::<S>))
        .route(
            "/services/{service_id}/review",
            get(manage::get_review::<S>).put(manage::decide_review::<S>),
        )
        .route(
            "/organizations/{organization_fiscal_code}/manage-keys",
            post(manage::create_manage_keys::<S>)
                .get(manage::get_manage_keys::<S>)
                .put(manage::regenerate_manage_key::<S>),
        )
        .route("/activations", put(put_activation::<S>))
        .route("/citizen-tokens", post(mint_citizen_token::<S>))
        .route(
            "/profiles/{fiscal_code}/email-validation",
            put(validate_email::<S>),
        )
        .route(
            "/profiles/{fiscal_code}/digital-domicile",
            put(put_digital_domicile::<S>),
        )
        .route("/messages/{id}", get(lookup_message::<S>))
        .route("/messages/{id}/evidence", get(message_evidence::<S>))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            require_admin::<S>,
        ))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            crate::app::measure::<S>,
        ))
        .merge(crate::openapi::route(
            app,
            crate::openapi::admin_api_document(),
        ))
}

async fn require_admin<S: Store>(
    State(app): State<Arc<App<S>>>,
    request: Request,
    next: Next,
) -> Response {
    match crate::request_headers::bearer_token(request.headers()) {
        Err(problem) => problem.into_response(),
        Ok(Some(token)) if constant_time_eq(&key_hash(token), &app.admin_token_hash) => {
            next.run(request).await
        }
        Ok(Some(_)) => Problem::unauthorized("the admin token is not valid").into_response(),
        Ok(None) => {
            Problem::unauthorized("missing Authorization: Bearer <admin token>").into_response()
        }
    }
}

/// A service as the admin API receives it: IO's service fields plus `groups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePayload {
    /// Optional on creation (a ULID is generated); must match the path on update.
    #[serde(default)]
    pub service_id: Option<String>,
    /// Name shown to citizens.
    pub service_name: String,
    /// Office.
    pub department_name: String,
    /// Institution.
    pub organization_name: String,
    /// Institution's fiscal code (11 digits).
    pub organization_fiscal_code: String,
    /// IPv4 CIDRs allowed to call; empty means any.
    #[serde(default)]
    pub authorized_cidrs: Vec<String>,
    /// Recipients a limited key may write to (the sandbox fiscal code is always added).
    #[serde(default)]
    pub authorized_recipients: Vec<String>,
    /// Listed to citizens.
    #[serde(default)]
    pub is_visible: bool,
    /// Largest payment in cents; 0 forbids payments.
    #[serde(default)]
    pub max_allowed_payment_amount: u64,
    /// No email and anonymous push unless a message says otherwise.
    #[serde(default)]
    pub require_secure_channels: bool,
    /// Scope, category, contacts.
    #[serde(default)]
    pub service_metadata: Option<ServiceMetadata>,
    /// Where sandbox messages are emailed.
    #[serde(default)]
    pub owner_email: Option<String>,
    /// Permission groups of the keys; default: the sandbox groups.
    #[serde(default)]
    pub groups: Option<BTreeSet<Group>>,
    /// Ignored: the server keeps the version.
    #[serde(default)]
    pub version: Option<u64>,
    /// Ignored: a service is sandboxed by its institution's lifecycle, never by the admin.
    #[serde(default, rename = "sandboxed")]
    pub _sandboxed: Option<bool>,
}

/// A service as the admin API answers it.
#[derive(Debug, Serialize)]
pub struct ServiceView {
    /// IO's service fields.
    #[serde(flatten)]
    pub service: Service,
    /// The keys' permission groups.
    pub groups: BTreeSet<Group>,
}

/// `{primary_key, secondary_key}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsSubscriptionKeys)]
pub struct KeysView {
    /// Primary key.
    pub primary_key: String,
    /// Secondary key.
    pub secondary_key: String,
}

fn invalid(field: &str, error: impl std::fmt::Display) -> Problem {
    Problem::bad_request(format!("{field}: {error}"))
}

fn non_empty(field: &str, value: &str) -> Result<String, Problem> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 255 {
        return Err(invalid(field, "expected 1 to 255 characters"));
    }
    Ok(trimmed.to_string())
}

/// Validates a payload into a service with `id` and `version`.
fn build_service(payload: ServicePayload, id: ServiceId, version: u64) -> ApiResult<Service> {
    let mut authorized_cidrs = Vec::with_capacity(payload.authorized_cidrs.len());
    for (i, raw) in payload.authorized_cidrs.iter().enumerate() {
        authorized_cidrs.push(
            raw.parse::<io_core::IpNetwork>()
                .map_err(|e| invalid(&format!("authorized_cidrs[{i}]"), e))?,
        );
    }
    let mut recipients = BTreeSet::new();
    for (i, raw) in payload.authorized_recipients.iter().enumerate() {
        recipients.insert(parse_fiscal_code(
            raw,
            &format!("authorized_recipients[{i}]"),
        )?);
    }
    recipients.insert(FiscalCode::parse(SANDBOX_FISCAL_CODE).expect("the sandbox code parses"));
    let service_metadata = payload.service_metadata.unwrap_or_default();
    if let Some(topic) = service_metadata.topic_id
        && io_core::Topic::by_id(topic).is_none()
    {
        return Err(invalid(
            "service_metadata.topic_id",
            "not a topic id (GET /api/v1/manage/services/topics lists them)",
        ));
    }
    Ok(Service {
        service_id: id,
        service_name: non_empty("service_name", &payload.service_name)?,
        department_name: non_empty("department_name", &payload.department_name)?,
        organization_name: non_empty("organization_name", &payload.organization_name)?,
        organization_fiscal_code: OrganizationFiscalCode::parse(&payload.organization_fiscal_code)
            .map_err(|e| invalid("organization_fiscal_code", e))?,
        authorized_cidrs,
        authorized_recipients: recipients,
        is_visible: payload.is_visible,
        max_allowed_payment_amount: payload.max_allowed_payment_amount,
        require_secure_channels: payload.require_secure_channels,
        service_metadata,
        owner_email: payload
            .owner_email
            .as_deref()
            .map(EmailAddress::parse)
            .transpose()
            .map_err(|e| invalid("owner_email", e))?,
        version,
        sandboxed: false,
    })
}

async fn view<S: Store>(app: &App<S>, service: Service) -> ApiResult<ServiceView> {
    let groups = app
        .store
        .service_access(&service.service_id)
        .await?
        .map(|access| access.groups.0)
        .unwrap_or_default();
    Ok(ServiceView { service, groups })
}

fn parse_service_id(raw: &str) -> Result<ServiceId, Problem> {
    ServiceId::parse(raw).map_err(|e| invalid("service_id", e))
}

/// `POST /adm/services`.
async fn create_service<S: Store>(
    State(app): State<Arc<App<S>>>,
    JsonBody(payload): JsonBody<ServicePayload>,
) -> ApiResult<Response> {
    let id = match &payload.service_id {
        Some(raw) => parse_service_id(raw)?,
        None => parse_service_id(&ulid::Ulid::new().to_string())?,
    };
    if id.as_str().starts_with(crate::api_keys::MANAGE_PREFIX) {
        return Err(invalid(
            "service_id",
            "ids starting with MANAGE- name institutions' manage subscriptions",
        ));
    }
    if app.store.service(&id).await?.is_some() {
        return Err(Problem::conflict(format!("service {id} already exists")));
    }
    let groups = payload.groups.clone().unwrap_or_else(Group::sandbox);
    let service = build_service(payload, id.clone(), 1)?;
    // One write: a service is never visible without its keys.
    let access = app.keys.access(&id, Groups(groups), 1, 1);
    app.store.put_service_with_access(&service, &access).await?;
    let location = format!("/adm/services/{id}");
    let mut response = (StatusCode::CREATED, Json(view(&app, service).await?)).into_response();
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `GET /adm/services`.
async fn list_services<S: Store>(
    State(app): State<Arc<App<S>>>,
) -> ApiResult<Json<serde_json::Value>> {
    let mut items = Vec::new();
    for service in app.store.services().await? {
        items.push(view(&app, service).await?);
    }
    Ok(Json(serde_json::json!({ "items": items })))
}

async fn stored_service<S: Store>(app: &App<S>, raw: &str) -> ApiResult<Service> {
    let id = parse_service_id(raw)?;
    app.store
        .service(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no service {id}")))
}

/// `GET /adm/services/{service_id}`.
async fn get_service<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(service_id): Path<String>,
) -> ApiResult<Json<ServiceView>> {
    let service = stored_service(&app, &service_id).await?;
    Ok(Json(view(&app, service).await?))
}

/// `PUT /adm/services/{service_id}`: replaces the service's fields (and groups, if given).
async fn update_service<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(service_id): Path<String>,
    JsonBody(payload): JsonBody<ServicePayload>,
) -> ApiResult<Json<ServiceView>> {
    let stored = stored_service(&app, &service_id).await?;
    if let Some(body_id) = &payload.service_id
        && body_id != stored.service_id.as_str()
    {
        return Err(invalid("service_id", "does not match the path"));
    }
    let groups = payload.groups.clone();
    let service = build_service(payload, stored.service_id.clone(), stored.version + 1)?;
    match groups {
        // The service and its new groups in one write: keys never act on stale groups.
        Some(groups) => {
            let groups = Groups(groups);
            change_access(&app, &service.service_id, |access| {
                let mut access = access.clone();
                access.groups = groups.clone();
                access.version += 1;
                let (app, service) = (&app, &service);
                async move { app.store.put_service_with_access(service, &access).await }
            })
            .await?;
        }
        None => app.store.put_service(&service).await?,
    }
    Ok(Json(view(&app, service).await?))
}

async fn keys_of<S: Store>(app: &App<S>, id: &ServiceId) -> ApiResult<(ServiceAccess, KeysView)> {
    let access = app
        .store
        .service_access(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no keys for service {id}")))?;
    let keys = keys_view(app, id, &access);
    Ok((access, keys))
}

/// The two keys in force under `access`.
pub(crate) fn keys_view<S: Store>(
    app: &App<S>,
    id: &ServiceId,
    access: &ServiceAccess,
) -> KeysView {
    KeysView {
        primary_key: app.keys.key(id, KeySlot::Primary, access.primary),
        secondary_key: app.keys.key(id, KeySlot::Secondary, access.secondary),
    }
}

/// `GET /adm/services/{service_id}/keys`.
async fn get_keys<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(service_id): Path<String>,
) -> ApiResult<Json<KeysView>> {
    let service = stored_service(&app, &service_id).await?;
    Ok(Json(keys_of(&app, &service.service_id).await?.1))
}

/// `{key_type}` of a key regeneration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegenerateKey {
    key_type: KeySlot,
}

/// `PUT /adm/services/{service_id}/keys`: a new key in one slot; the other keeps working.
async fn regenerate_key<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(service_id): Path<String>,
    JsonBody(body): JsonBody<RegenerateKey>,
) -> ApiResult<Json<KeysView>> {
    let service = stored_service(&app, &service_id).await?;
    let id = &service.service_id;
    let access = regenerate(&app, id, body.key_type).await?;
    // The keys of the access written (a later regeneration may already have replaced them).
    Ok(Json(keys_view(&app, id, &access)))
}

/// A new key in `slot` of the subscription `id`; the access and the key index change in one
/// write, so the old key stops as the new one starts.
pub(crate) async fn regenerate<S: Store>(
    app: &App<S>,
    id: &ServiceId,
    slot: KeySlot,
) -> ApiResult<ServiceAccess> {
    change_access(app, id, |access| {
        let access = app.keys.regenerated(id, access, slot);
        async move {
            app.store.put_service_access(id, &access).await?;
            Ok(access)
        }
    })
    .await
}

/// How often a change of a service's access is recomputed from a fresh read when a concurrent
/// change of the same access got in first. Each lost attempt means another change went
/// through, so this many changes of one service at once all succeed; beyond, 409.
const ACCESS_ATTEMPTS: usize = 64;

/// Reads the service's access and writes `write(&access)`'s change; the store refuses a
/// change based on a stale version (`Conflict` on "service access"), and then the change is
/// computed again from a fresh read, so concurrent regenerations and group updates all take
/// effect and none brings back a replaced key. Other errors, a conflict on the service itself
/// included, are the answer.
async fn change_access<S: Store, T, F, Fut>(app: &App<S>, id: &ServiceId, write: F) -> ApiResult<T>
where
    F: Fn(&ServiceAccess) -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        let access = app
            .store
            .service_access(id)
            .await?
            .ok_or_else(|| Problem::not_found(format!("no keys for service {id}")))?;
        match write(&access).await {
            Err(StoreError::Conflict {
                what: "service access",
                ..
            }) if attempt < ACCESS_ATTEMPTS => attempt += 1,
            result => return Ok(result?),
        }
    }
}

/// `GET /adm/services/{service_id}/activations/{fiscal_code}`.
async fn get_activation<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path((service_id, fiscal_code)): Path<(String, String)>,
) -> ApiResult<Json<ActivationView>> {
    let service = stored_service(&app, &service_id).await?;
    let fiscal_code = parse_fiscal_code(&fiscal_code, "fiscal_code (path)")?;
    let activation = app
        .store
        .activation(&service.service_id, &fiscal_code)
        .await?
        .ok_or_else(|| Problem::not_found("no activation for this service and fiscal code"))?;
    Ok(Json(activation_view(&activation)))
}

/// `PUT /adm/activations`: sets any service's activation for a citizen.
async fn put_activation<S: Store>(
    State(app): State<Arc<App<S>>>,
    JsonBody(payload): JsonBody<ActivationPayload>,
) -> ApiResult<Json<ActivationView>> {
    let service_id = payload
        .service_id
        .as_deref()
        .ok_or_else(|| Problem::bad_request("service_id: required on the admin API"))?;
    let service = stored_service(&app, service_id).await?;
    let fiscal_code = parse_fiscal_code(&payload.fiscal_code, "fiscal_code")?;
    let activation = Activation {
        service_id: service.service_id,
        fiscal_code,
        status: payload.status,
        updated_at: app.clock.now(),
        version: 0,
    };
    let stored = app.store.put_activation(&activation).await?;
    Ok(Json(activation_view(&stored)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    fiscal_code: String,
}

/// `POST /adm/citizen-tokens`: a citizen token, for development and tests (login is out of
/// scope).
async fn mint_citizen_token<S: Store>(
    State(app): State<Arc<App<S>>>,
    JsonBody(body): JsonBody<TokenRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let fiscal_code = parse_fiscal_code(&body.fiscal_code, "fiscal_code")?;
    let token = app.citizen_tokens.mint(
        &fiscal_code,
        app.clock.now(),
        app.config.citizen_tokens.ttl_secs,
    );
    Ok(Json(serde_json::json!({
        "token": token,
        "expires_in": app.config.citizen_tokens.ttl_secs,
    })))
}

/// How many times [`change_profile`] starts over when the citizen updates the profile meanwhile.
const VALIDATION_ATTEMPTS: usize = 3;

/// `PUT /adm/profiles/{fiscal_code}/email-validation`: marks the profile's current email
/// validated (io-reference §3: an address validated by another citizen is 412; the store keeps
/// validated addresses unique in the profile's own write). Stands in for the confirmation link
/// IO mails; the email channel notifies validated addresses only. 404 without a profile, 409
/// without an email.
async fn validate_email<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(fiscal_code): Path<String>,
) -> ApiResult<Json<Profile>> {
    let fiscal_code = parse_fiscal_code(&fiscal_code, "fiscal_code (path)")?;
    change_profile(
        &app,
        &fiscal_code,
        "its email was being validated",
        |profile| {
            if profile.email.is_none() {
                return Err(Problem::conflict(
                    "email: the profile has no email address to validate",
                ));
            }
            Ok((!profile.is_email_validated).then(|| {
                let mut validated = profile.clone();
                validated.is_email_validated = true;
                validated
            }))
        },
    )
    .await
    .map(Json)
}

/// Applies `change` to the citizen's current profile and stores the result as the next
/// version, starting over from a fresh read when the citizen changed the profile meanwhile (up
/// to `VALIDATION_ATTEMPTS` times; `what` names the change in the final 409). `change` answers
/// `None` when there is nothing to write. 404 without a profile; 412 when the store refuses a
/// validated email another citizen holds.
async fn change_profile<S: Store>(
    app: &App<S>,
    fiscal_code: &io_core::FiscalCode,
    what: &str,
    change: impl Fn(&Profile) -> Result<Option<Profile>, Problem>,
) -> ApiResult<Profile> {
    for _ in 0..VALIDATION_ATTEMPTS {
        let profile = app
            .store
            .profile(fiscal_code)
            .await?
            .ok_or_else(|| Problem::not_found("no profile for this fiscal code"))?;
        let Some(mut next) = change(&profile)? else {
            return Ok(profile);
        };
        next.version = profile.version + 1;
        match app.store.put_profile(&next).await {
            Ok(()) => return Ok(next),
            Err(StoreError::Taken { .. }) => return Err(crate::citizen_api::profile::email_taken()),
            // The citizen changed the profile meanwhile: start over from the new version.
            Err(StoreError::Conflict { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Err(Problem::conflict(format!(
        "version: the profile kept changing while {what}; retry"
    )))
}

/// `PUT /adm/profiles/{fiscal_code}/digital-domicile` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DomicilePayload {
    /// The PEC address, or `null` to remove it; required.
    #[serde(deserialize_with = "crate::body::present")]
    digital_domicile: Option<Option<String>>,
}

/// `PUT /adm/profiles/{fiscal_code}/digital-domicile`: sets (or removes) the citizen's digital
/// domicile as the national registry (INAD) has it; messages with legal value go there by PEC.
/// 404 without a profile: io reaches only citizens with a profile.
async fn put_digital_domicile<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(fiscal_code): Path<String>,
    JsonBody(payload): JsonBody<DomicilePayload>,
) -> ApiResult<Json<Profile>> {
    let fiscal_code = parse_fiscal_code(&fiscal_code, "fiscal_code (path)")?;
    let domicile = payload
        .digital_domicile
        .flatten()
        .as_deref()
        .map(EmailAddress::parse)
        .transpose()
        .map_err(|e| Problem::bad_request(format!("digital_domicile: {e}")))?;
    change_profile(
        &app,
        &fiscal_code,
        "its domicile was being set",
        |profile| {
            Ok((profile.digital_domicile != domicile).then(|| {
                let mut next = profile.clone();
                next.digital_domicile = domicile.clone();
                next
            }))
        },
    )
    .await
    .map(Json)
}

/// `GET /adm/messages/{id}/evidence`: the message's evidence bundle (journal entries in their
/// canonical form, head, PEC receipts byte for byte), which `io-server evidence export` writes
/// out and anyone can verify offline (`crate::evidence`).
async fn message_evidence<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = crate::services_api::parse_message_id(&id, "id (path)")?;
    let bundle = crate::evidence::Bundle::of(&*app.store, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no message {id}")))?;
    Ok(Json(bundle.to_json()))
}

/// Support's view of a message: the Services API's answer plus the journal check.
#[derive(Debug, Serialize)]
struct MessageLookup {
    #[serde(flatten)]
    response: MessageResponse,
    journal: JournalCheck,
}

#[derive(Debug, Serialize)]
struct JournalCheck {
    entries: usize,
    verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<String>,
}

/// `GET /adm/messages/{id}`.
async fn lookup_message<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = crate::services_api::parse_message_id(&id, "id (path)")?;
    let stored = app
        .store
        .message(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no message {id}")))?;
    let deliveries = app.store.deliveries(&id).await?;
    let journal = match app.engine.verify_journal(&id).await {
        Ok(entries) => JournalCheck {
            entries: entries.len(),
            verified: true,
            error: None,
            head: entries.last().map(|e| e.hash.clone()),
        },
        Err(error) => JournalCheck {
            entries: 0,
            verified: false,
            error: Some(error.to_string()),
            head: None,
        },
    };
    let lookup = MessageLookup {
        response: MessageResponse::new(&stored.message, stored.status, &deliveries),
        journal,
    };
    serde_json::to_value(lookup)
        .map(Json)
        .map_err(Problem::internal)
}
