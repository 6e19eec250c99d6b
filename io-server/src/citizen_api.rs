//! The citizen API under `/app/v1` (io-reference §7): what the app calls, authenticated by a
//! bearer token through [`crate::citizen_token::CitizenVerifier`]. A citizen only ever sees
//! their own data: another citizen's message is "not found", never "forbidden".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use io_core::{
    BlockedChannel, EmailAddress, FiscalCode, Installation, InstallationId, MessageId,
    PreferredLanguage, Profile, PushNotificationsContentType, PushPlatform, ReminderStatus,
    ServiceId, ServicePreference, ServicePreferencesMode, Store, StoreError,
};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};
use crate::records::{FeedScope, MessageFlags, Subscription};
use crate::views::ContentView;

/// The authenticated citizen.
#[derive(Debug, Clone)]
pub struct Citizen(pub FiscalCode);

/// The `/app/v1` routes.
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/profile", get(get_profile).post(post_profile))
        .route(
            "/services/{service_id}/preferences",
            get(get_preference).post(post_preference),
        )
        .route("/messages", get(list_messages))
        .route("/messages/{id}", get(get_message))
        .route("/messages/{id}/message-status", put(put_message_status))
        .route("/installations/{installation_id}", put(put_installation))
        .route_layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            crate::app::measure,
        ))
        .merge(crate::openapi::route(
            app,
            crate::openapi::citizen_api_document(),
        ))
}

async fn authenticate(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some(token) = token else {
        return Problem::unauthorized("missing Authorization: Bearer <token>").into_response();
    };
    match app.citizen_verifier.verify(&token, app.clock.now()) {
        Ok(fiscal_code) => {
            request.extensions_mut().insert(Citizen(fiscal_code));
            next.run(request).await
        }
        Err(error) => Problem::unauthorized(error.to_string()).into_response(),
    }
}

/// `POST /profile` body: IO's profile fields; absent fields keep their value (or the default,
/// on creation). `version` must be the current one on update.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePayload {
    is_inbox_enabled: Option<bool>,
    email: Option<String>,
    is_email_enabled: Option<bool>,
    is_webhook_enabled: Option<bool>,
    preferred_languages: Option<Vec<PreferredLanguage>>,
    service_preferences_settings: Option<ModePayload>,
    blocked_inbox_or_channels: Option<BTreeMap<String, BTreeSet<BlockedChannel>>>,
    push_notifications_content_type: Option<PushNotificationsContentType>,
    reminder_status: Option<ReminderStatus>,
    accepted_tos_version: Option<u32>,
    version: Option<u64>,
    // Read-only fields a client may echo back; ignored.
    #[serde(default)]
    fiscal_code: Option<String>,
    #[serde(default)]
    is_email_validated: Option<bool>,
    #[serde(default)]
    is_test_profile: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModePayload {
    mode: ServicePreferencesMode,
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<u64>,
}

async fn get_profile(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
) -> ApiResult<Json<Profile>> {
    app.store
        .profile(&fiscal_code)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found("no profile yet: create it with POST /profile"))
}

async fn post_profile(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    JsonBody(payload): JsonBody<ProfilePayload>,
) -> ApiResult<Json<Profile>> {
    let _ = (
        &payload.fiscal_code,
        &payload.is_email_validated,
        &payload.is_test_profile,
    );
    let current = app.store.profile(&fiscal_code).await?;
    let base = current
        .clone()
        .unwrap_or_else(|| Profile::new(fiscal_code.clone()));
    if let Some(current) = &current {
        match payload.version {
            Some(v) if v == current.version => {}
            Some(v) => {
                return Err(Problem::conflict(format!(
                    "version: the profile is at version {}, the update is based on {v}",
                    current.version
                )));
            }
            None => {
                return Err(Problem::bad_request(
                    "version: required to update an existing profile",
                ));
            }
        }
    }
    let mut next = base.clone();
    if let Some(v) = payload.is_inbox_enabled {
        next.is_inbox_enabled = v;
    }
    if let Some(raw) = &payload.email {
        let email =
            EmailAddress::parse(raw).map_err(|e| Problem::bad_request(format!("email: {e}")))?;
        if let Some(owner) = app.records.email_owner(email.as_str()).await?
            && owner != fiscal_code
        {
            return Err(Problem::new(
                axum::http::StatusCode::PRECONDITION_FAILED,
                "email: the address is already validated by another citizen",
            ));
        }
        next.email = Some(email);
    }
    if let Some(v) = payload.is_email_enabled {
        next.is_email_enabled = v;
    }
    if let Some(v) = payload.is_webhook_enabled {
        next.is_webhook_enabled = v;
    }
    if let Some(v) = payload.preferred_languages {
        next.preferred_languages = v;
    }
    if let Some(mode) = payload.service_preferences_settings {
        next.service_preferences_settings.mode = mode.mode;
    }
    if let Some(map) = payload.blocked_inbox_or_channels {
        let mut blocked = BTreeMap::new();
        for (service, channels) in map {
            let id = ServiceId::parse(&service).map_err(|e| {
                Problem::bad_request(format!("blocked_inbox_or_channels.{service}: {e}"))
            })?;
            blocked.insert(id, channels);
        }
        next.blocked_inbox_or_channels = blocked;
    }
    if let Some(v) = payload.push_notifications_content_type {
        next.push_notifications_content_type = v;
    }
    if let Some(v) = payload.reminder_status {
        next.reminder_status = v;
    }
    if let Some(v) = payload.accepted_tos_version {
        next.accepted_tos_version = Some(v);
    }
    let now = app.clock.now();
    let stored = match &current {
        None => {
            app.store.put_profile(&next).await.map_err(conflict)?;
            if next.is_inbox_enabled {
                record_feed(
                    &app,
                    &fiscal_code,
                    FeedScope::AllServices,
                    Subscription::Subscribed,
                )
                .await?;
            }
            next
        }
        Some(current) => {
            let updated = current
                .updated_with(&next)
                .map_err(|e| Problem::conflict(format!("version: {e}")))?;
            app.store.put_profile(&updated).await.map_err(conflict)?;
            if current.is_inbox_enabled != updated.is_inbox_enabled {
                let change = if updated.is_inbox_enabled {
                    Subscription::Subscribed
                } else {
                    Subscription::Unsubscribed
                };
                record_feed(&app, &fiscal_code, FeedScope::AllServices, change).await?;
            }
            updated
        }
    };
    let _ = now;
    Ok(Json(stored))
}

fn conflict(error: StoreError) -> Problem {
    match error {
        StoreError::Conflict { .. } => Problem::conflict(format!("version: {error}")),
        other => Problem::from(other),
    }
}

async fn record_feed(
    app: &App,
    fiscal_code: &FiscalCode,
    scope: FeedScope,
    change: Subscription,
) -> Result<(), Problem> {
    app.records
        .record_subscription(app.clock.now(), &scope, &fiscal_code.hash(), change)
        .await
        .map_err(Problem::from)
}

async fn profile_of(app: &App, fiscal_code: &FiscalCode) -> ApiResult<Profile> {
    app.store
        .profile(fiscal_code)
        .await?
        .ok_or_else(|| Problem::not_found("no profile yet: create it with POST /profile"))
}

async fn known_service(app: &App, raw: &str) -> ApiResult<ServiceId> {
    let id = ServiceId::parse(raw)
        .map_err(|e| Problem::bad_request(format!("service_id (path): {e}")))?;
    if app.store.service(&id).await?.is_none() {
        return Err(Problem::not_found(format!("no service {id}")));
    }
    Ok(id)
}

async fn get_preference(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    Path(service_id): Path<String>,
) -> ApiResult<Json<ServicePreference>> {
    let service_id = known_service(&app, &service_id).await?;
    let profile = profile_of(&app, &fiscal_code).await?;
    let version = profile.service_preferences_settings.version;
    let preference = app
        .store
        .preference(&fiscal_code, &service_id, version)
        .await?
        .unwrap_or(ServicePreference {
            service_id,
            settings_version: version,
            // The defaults the decision applies without a preference.
            is_inbox_enabled: profile.service_preferences_settings.mode
                != ServicePreferencesMode::Manual,
            is_email_enabled: true,
            is_webhook_enabled: true,
            can_access_message_read_status: true,
        });
    Ok(Json(preference))
}

async fn post_preference(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    Path(service_id): Path<String>,
    JsonBody(preference): JsonBody<ServicePreference>,
) -> ApiResult<Json<ServicePreference>> {
    let service_id = known_service(&app, &service_id).await?;
    if preference.service_id != service_id {
        return Err(Problem::bad_request("service_id: does not match the path"));
    }
    let profile = profile_of(&app, &fiscal_code).await?;
    if profile.service_preferences_settings.mode == ServicePreferencesMode::Legacy {
        return Err(Problem::conflict(
            "service_preferences_settings.mode is LEGACY: per-service preferences apply in AUTO or MANUAL mode",
        ));
    }
    preference
        .check_version(&profile)
        .map_err(|e| Problem::conflict(format!("settings_version: {e}")))?;
    let previous = app
        .store
        .preference(&fiscal_code, &service_id, preference.settings_version)
        .await?;
    app.store.put_preference(&fiscal_code, &preference).await?;
    if previous.map(|p| p.is_inbox_enabled) != Some(preference.is_inbox_enabled) {
        let change = if preference.is_inbox_enabled {
            Subscription::Subscribed
        } else {
            Subscription::Unsubscribed
        };
        record_feed(&app, &fiscal_code, FeedScope::Service(service_id), change).await?;
    }
    Ok(Json(preference))
}

/// `GET /messages` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    page_size: Option<String>,
    maximum_id: Option<String>,
    minimum_id: Option<String>,
    archived: Option<String>,
}

/// One inbox item.
#[derive(Debug, Serialize)]
pub struct InboxItem {
    id: String,
    fiscal_code: String,
    created_at: String,
    sender_service_id: String,
    time_to_live: u64,
    service_name: Option<String>,
    organization_name: Option<String>,
    message_title: String,
    is_read: bool,
    is_archived: bool,
}

/// IO's paginated answer.
#[derive(Debug, Serialize)]
pub struct Page {
    items: Vec<InboxItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev: Option<String>,
}

fn parse_id(raw: &str, field: &str) -> Result<MessageId, Problem> {
    raw.parse::<MessageId>()
        .map_err(|e| Problem::bad_request(format!("{field}: {e}")))
}

async fn list_messages(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Page>> {
    // axum's own rejection is text/plain; every error of the API is problem+json.
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let page_size = match &query.page_size {
        None => 25,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n @ 1..=100) => n,
            _ => {
                return Err(Problem::bad_request(
                    "page_size: expected an integer in 1..=100",
                ));
            }
        },
    };
    let archived = match query.archived.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(Problem::bad_request("archived: expected true or false")),
    };
    let maximum = query
        .maximum_id
        .as_deref()
        .map(|raw| parse_id(raw, "maximum_id"))
        .transpose()?;
    let minimum = query
        .minimum_id
        .as_deref()
        .map(|raw| parse_id(raw, "minimum_id"))
        .transpose()?;
    // Newest first, strictly older than maximum_id, strictly newer than minimum_id, filtered
    // by the archived flag; reads one extra item to know whether a next page exists.
    let mut items = Vec::new();
    let mut before = maximum;
    let mut more = false;
    'scan: loop {
        let ids = app.store.inbox(&fiscal_code, before, 200).await?;
        if ids.is_empty() {
            break;
        }
        for id in &ids {
            if minimum.is_some_and(|min| *id <= min) {
                break 'scan;
            }
            let flags = app.records.message_flags(&fiscal_code, id).await?;
            if flags.is_archived != archived {
                continue;
            }
            if items.len() == page_size {
                more = true;
                break 'scan;
            }
            if let Some(item) = inbox_item(&app, id, flags).await? {
                items.push(item);
            }
        }
        before = ids.last().copied();
    }
    let next = more.then(|| items.last().map(|i| i.id.clone())).flatten();
    let prev = items.first().map(|i| i.id.clone());
    Ok(Json(Page { items, next, prev }))
}

async fn inbox_item(
    app: &App,
    id: &MessageId,
    flags: MessageFlags,
) -> ApiResult<Option<InboxItem>> {
    let Some(stored) = app.store.message(id).await? else {
        return Ok(None);
    };
    let message = stored.message;
    let service = app.store.service(&message.sender_service_id).await?;
    Ok(Some(InboxItem {
        id: message.id.to_string(),
        fiscal_code: message.body.fiscal_code.as_str().to_string(),
        created_at: message.created_at.to_rfc3339(),
        sender_service_id: message.sender_service_id.as_str().to_string(),
        time_to_live: message.body.time_to_live_secs,
        service_name: service.as_ref().map(|s| s.service_name.clone()),
        organization_name: service.as_ref().map(|s| s.organization_name.clone()),
        message_title: message.body.content.subject.clone(),
        is_read: flags.is_read,
        is_archived: flags.is_archived,
    }))
}

/// One message as the citizen reads it.
#[derive(Debug, Serialize)]
pub struct CitizenMessage {
    id: String,
    fiscal_code: String,
    created_at: String,
    sender_service_id: String,
    time_to_live: u64,
    content: ContentView,
    is_read: bool,
    is_archived: bool,
}

/// The citizen's own message in the inbox, or 404.
async fn own_message(app: &App, fiscal_code: &FiscalCode, raw: &str) -> ApiResult<MessageId> {
    let id = parse_id(raw, "id (path)")?;
    if !app.store.inbox_contains(fiscal_code, &id).await? {
        return Err(Problem::not_found(format!("no message {id} in your inbox")));
    }
    Ok(id)
}

async fn get_message(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    Path(id): Path<String>,
) -> ApiResult<Json<CitizenMessage>> {
    let id = own_message(&app, &fiscal_code, &id).await?;
    let stored = app
        .store
        .message(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no message {id} in your inbox")))?;
    let flags = app.records.message_flags(&fiscal_code, &id).await?;
    let m = stored.message;
    Ok(Json(CitizenMessage {
        id: m.id.to_string(),
        fiscal_code: m.body.fiscal_code.as_str().to_string(),
        created_at: m.created_at.to_rfc3339(),
        sender_service_id: m.sender_service_id.as_str().to_string(),
        time_to_live: m.body.time_to_live_secs,
        content: ContentView::from(&m.body.content),
        is_read: flags.is_read,
        is_archived: flags.is_archived,
    }))
}

/// `PUT /messages/{id}/message-status` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    change_type: ChangeType,
    is_read: Option<bool>,
    is_archived: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChangeType {
    Reading,
    Archiving,
    Bulk,
}

async fn put_message_status(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    Path(id): Path<String>,
    JsonBody(change): JsonBody<StatusChange>,
) -> ApiResult<Json<MessageFlags>> {
    let id = own_message(&app, &fiscal_code, &id).await?;
    let mut flags = app.records.message_flags(&fiscal_code, &id).await?;
    let (read, archived) = match change.change_type {
        ChangeType::Reading => (
            Some(change.is_read.ok_or_else(|| {
                Problem::bad_request("is_read: required for change_type reading")
            })?),
            None,
        ),
        ChangeType::Archiving => (
            None,
            Some(change.is_archived.ok_or_else(|| {
                Problem::bad_request("is_archived: required for change_type archiving")
            })?),
        ),
        ChangeType::Bulk => (change.is_read, change.is_archived),
    };
    if let Some(read) = read {
        if flags.is_read && !read {
            return Err(Problem::bad_request(
                "is_read: a read message cannot become unread (reading is one-way)",
            ));
        }
        flags.is_read = read;
    }
    if let Some(archived) = archived {
        flags.is_archived = archived;
    }
    app.records
        .put_message_flags(&fiscal_code, &id, flags)
        .await?;
    Ok(Json(flags))
}

/// `PUT /installations/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationPayload {
    platform: PushPlatform,
    push_channel: String,
}

async fn put_installation(
    State(app): State<Arc<App>>,
    Extension(Citizen(fiscal_code)): Extension<Citizen>,
    Path(installation_id): Path<String>,
    JsonBody(payload): JsonBody<InstallationPayload>,
) -> ApiResult<Json<serde_json::Value>> {
    let installation_id = InstallationId::parse(&installation_id)
        .map_err(|e| Problem::bad_request(format!("installation_id (path): {e}")))?;
    let token = payload.push_channel.trim();
    if token.is_empty() || token.len() > 4096 {
        return Err(Problem::bad_request(
            "push_channel: expected a device token of 1 to 4096 characters",
        ));
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
