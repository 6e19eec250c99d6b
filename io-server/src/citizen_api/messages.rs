//! The inbox (io-reference §7): `GET /messages` pages of the citizen's PROCESSED messages,
//! newest first, with ULID cursors; `GET /messages/{id}`; `PUT /messages/{id}/message-status`
//! for the read (one-way) and archived flags. Another citizen's message is 404.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use io_channels::RemoteContentFailure;
use io_core::{FiscalCode, FlagsChange, MessageFlags, MessageId, Store};
use serde::{Deserialize, Serialize};

use super::Citizen;
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};
use crate::views::ContentView;

/// `GET /messages` page size bounds and default.
pub const PAGE_SIZE: (usize, usize, usize) = (1, 100, 25);

/// `GET /messages` query. Values are read by hand, so that a bad one is a 400 naming it; the
/// types here are what the document says.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 25)]
    page_size: Option<String>,
    /// Only messages older than this id.
    #[param(value_type = Option<MessageId>)]
    maximum_id: Option<String>,
    /// Only messages newer than this id.
    #[param(value_type = Option<MessageId>)]
    minimum_id: Option<String>,
    /// The archived messages instead of the others.
    #[param(value_type = Option<bool>, default = false)]
    archived: Option<String>,
}

/// One inbox item.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboxItem {
    #[schema(value_type = MessageId)]
    id: String,
    #[schema(value_type = FiscalCode)]
    fiscal_code: String,
    #[schema(schema_with = io_core::openapi::timestamp)]
    created_at: String,
    #[schema(value_type = io_core::ServiceId)]
    sender_service_id: String,
    /// Seconds.
    time_to_live: u64,
    /// The sending service's name, when it still exists.
    service_name: Option<String>,
    /// Its institution's name, when the service still exists.
    organization_name: Option<String>,
    message_title: String,
    is_read: bool,
    is_archived: bool,
}

/// IO's paginated answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = InboxPage)]
pub struct Page {
    items: Vec<InboxItem>,
    /// Present when older messages exist: pass it as maximum_id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<MessageId>)]
    next: Option<String>,
    /// The newest item's id: pass it as minimum_id for newer messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<MessageId>)]
    prev: Option<String>,
}

/// `GET /messages`.
#[utoipa::path(
    get, path = "/messages", operation_id = "listMessages", tag = "messages",
    summary = "The inbox, newest first, one page at a time",
    description = "Only PROCESSED messages are in the inbox. Cursors are message ids (exclusive).",
    params(ListQuery),
    responses(
        (status = 200, description = "One page.", body = Page, links(
            ("GetNewestMessage" = (operation_id = "getMessage", parameters(("id" = "$response.body#/items/0/id")))),
            ("ReadNewestMessage" = (operation_id = "putMessageStatus", parameters(("id" = "$response.body#/items/0/id")))),
        )),
        (status = 400, description = "A query parameter is not valid."),
    )
)]
pub async fn list_messages<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Page>> {
    // axum's own rejection is text/plain; every error of the API is problem+json.
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let page_size = crate::query_number::number(
        query.page_size.as_deref(),
        "page_size",
        (PAGE_SIZE.0, PAGE_SIZE.1),
        PAGE_SIZE.2,
    )?;
    let archived = match query.archived.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(Problem::bad_request("archived: expected true or false")),
    };
    let maximum = query
        .maximum_id
        .as_deref()
        .map(|raw| crate::services_api::parse_message_id(raw, "maximum_id"))
        .transpose()?;
    let minimum = query
        .minimum_id
        .as_deref()
        .map(|raw| crate::services_api::parse_message_id(raw, "minimum_id"))
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
            let flags = app.store.message_flags(&fiscal_code, id).await?;
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

async fn inbox_item<S: Store>(
    app: &App<S>,
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CitizenMessage {
    #[schema(value_type = MessageId)]
    id: String,
    #[schema(value_type = FiscalCode)]
    fiscal_code: String,
    #[schema(schema_with = io_core::openapi::timestamp)]
    created_at: String,
    #[schema(value_type = io_core::ServiceId)]
    sender_service_id: String,
    /// Seconds.
    time_to_live: u64,
    content: ContentView,
    is_read: bool,
    is_archived: bool,
}

/// The citizen's own message in the inbox, or 404.
async fn own_message<S: Store>(
    app: &App<S>,
    fiscal_code: &FiscalCode,
    raw: &str,
) -> ApiResult<MessageId> {
    let id = crate::services_api::parse_message_id(raw, "id (path)")?;
    if !app.store.inbox_contains(fiscal_code, &id).await? {
        return Err(Problem::not_found(format!("no message {id} in your inbox")));
    }
    Ok(id)
}

/// `GET /messages/{id}`.
#[utoipa::path(
    get, path = "/messages/{id}", operation_id = "getMessage", tag = "messages",
    summary = "One message of the citizen's inbox",
    params(("id" = inline(io_core::MessageId), Path)),
    responses(
        (status = 200, description = "The message.", body = CitizenMessage),
        (status = 400, description = "The id is not valid."),
        (status = 404, description = "No such message in the citizen's inbox."),
    )
)]
pub async fn get_message<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
    Path(id): Path<String>,
) -> ApiResult<Json<CitizenMessage>> {
    let id = own_message(&app, &fiscal_code, &id).await?;
    let stored = app
        .store
        .message(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no message {id} in your inbox")))?;
    let flags = app.store.message_flags(&fiscal_code, &id).await?;
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = MessageStatusChange)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    change_type: ChangeType,
    /// Reading is one-way: true → false is refused (400).
    is_read: Option<bool>,
    is_archived: Option<bool>,
}

/// reading needs is_read, archiving needs is_archived, bulk takes either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum ChangeType {
    Reading,
    Archiving,
    Bulk,
}

/// `PUT /messages/{id}/message-status`: applied atomically, so a concurrent change of the
/// other flag is kept and a message read meanwhile cannot be made unread.
#[utoipa::path(
    put, path = "/messages/{id}/message-status", operation_id = "putMessageStatus", tag = "messages",
    summary = "Mark a message read (one-way) or (un)archived",
    params(("id" = inline(io_core::MessageId), Path)),
    request_body = StatusChange,
    responses(
        (status = 200, description = "The message's flags.", body = MessageFlags),
        (status = 400, description = "The id is not valid, a flag the change_type needs is missing, or a read message would become unread."),
        (status = 404, description = "No such message in the citizen's inbox."),
    )
)]
pub async fn put_message_status<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
    Path(id): Path<String>,
    JsonBody(change): JsonBody<StatusChange>,
) -> ApiResult<Json<MessageFlags>> {
    let id = own_message(&app, &fiscal_code, &id).await?;
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
        ChangeType::Bulk if change.is_read.is_none() && change.is_archived.is_none() => {
            return Err(Problem::bad_request(
                "is_read, is_archived: change_type bulk needs at least one of them",
            ));
        }
        ChangeType::Bulk => (change.is_read, change.is_archived),
    };
    let change = FlagsChange {
        is_read: read,
        is_archived: archived,
    };
    let flags = app
        .store
        .change_message_flags(&fiscal_code, &id, change)
        .await?
        .map_err(|refused| Problem::bad_request(refused.to_string()))?;
    Ok(Json(flags))
}

/// `GET /third-party-messages/{id}` answer: the details the sender keeps on its server (IO's
/// `ThirdPartyMessage`, as the sender answered it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ThirdPartyMessage)]
pub struct ThirdPartyMessageView {
    #[schema(value_type = MessageId)]
    id: String,
    /// What the sender's server answered (IO's ThirdPartyMessage: details, attachments).
    #[schema(value_type = Object)]
    third_party_message: serde_json::Map<String, serde_json::Value>,
}

/// `GET /third-party-messages/{id}`: the message's details read now from its sender's server,
/// through the environment that serves this citizen. The message itself stays readable
/// whatever the sender does: a sender that is down or slow is a 502 or 504 the app may retry,
/// a sender's refusal a 502 that says what it answered.
#[utoipa::path(
    get, path = "/third-party-messages/{id}", operation_id = "getThirdPartyMessage", tag = "messages",
    summary = "A message's details, read now from its sender's server (remote contents)",
    params(("id" = inline(io_core::MessageId), Path)),
    responses(
        (status = 200, description = "The sender's answer.", body = ThirdPartyMessageView),
        (status = 400, description = "The id is not valid."),
        (status = 404, description = "No such message in the citizen's inbox, or it has no details on its sender's server, or its configuration has no environment for this citizen."),
        (status = 502, description = "The sender's server could not be reached, answered other than 200, or answered what is not a JSON object of at most 1 MiB (the detail says which; Retry-After when retrying may help)."),
        (status = 503, description = "As many reads of this sender's server are in flight as io allows ([remote_contents] max_concurrent_reads): retry after Retry-After."),
        (status = 504, description = "The sender's server did not answer in time (Retry-After)."),
    )
)]
pub async fn get_third_party_message<S: Store>(
    State(app): State<Arc<App<S>>>,
    Citizen(fiscal_code): Citizen,
    Path(id): Path<String>,
) -> ApiResult<Json<ThirdPartyMessageView>> {
    let id = own_message(&app, &fiscal_code, &id).await?;
    let stored = app
        .store
        .message(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no message {id} in your inbox")))?;
    let data = stored
        .message
        .body
        .content
        .third_party_data
        .ok_or_else(|| {
            Problem::not_found(format!(
                "message {id} has no details on its sender's server"
            ))
        })?;
    let configuration_id = data.configuration_id.ok_or_else(|| {
        Problem::not_found(format!(
            "message {id} names no remote-content configuration"
        ))
    })?;
    // Read again whose configuration it is: only one of the sending service's institution
    // may be used (checked at submit; a message the engine accepted directly was not).
    let sender = app.store.service(&stored.message.sender_service_id).await?;
    let not_found = || {
        Problem::not_found(format!(
            "the remote-content configuration {configuration_id} of message {id} is not available"
        ))
    };
    let configuration = app
        .store
        .remote_content_configuration(&configuration_id)
        .await?
        .filter(|c| sender.is_some_and(|s| s.organization_fiscal_code == c.organization))
        .ok_or_else(not_found)?;
    let environment = configuration.environment_for(&fiscal_code).ok_or_else(|| {
        Problem::not_found(format!(
            "the remote-content configuration {configuration_id} has no environment for you"
        ))
    })?;
    let details = app
        .remote_contents
        .fetch(&configuration_id, environment, &data.id, &fiscal_code)
        .await
        .map_err(|failure| {
            // The whole failure for the operator; for the citizen, what it means, without the
            // sender's addresses.
            tracing::warn!(message = %id, configuration = %configuration_id, %failure, "remote content not read");
            let (status, meaning) = match &failure {
                RemoteContentFailure::Timeout => (
                    StatusCode::GATEWAY_TIMEOUT,
                    "the sender's server did not answer in time".to_owned(),
                ),
                RemoteContentFailure::Unreachable(_) => (
                    StatusCode::BAD_GATEWAY,
                    "the sender's server could not be reached".to_owned(),
                ),
                RemoteContentFailure::Refused(_) => (
                    StatusCode::BAD_GATEWAY,
                    "the sender's server is not one io may call".to_owned(),
                ),
                RemoteContentFailure::Busy => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    failure.to_string(),
                ),
                other => (StatusCode::BAD_GATEWAY, other.to_string()),
            };
            let problem = Problem::new(
                status,
                format!("the message's details could not be read: {meaning}"),
            );
            if failure.is_retriable() {
                problem.with_header("retry-after", "30".into())
            } else {
                problem
            }
        })?;
    Ok(Json(ThirdPartyMessageView {
        id: id.to_string(),
        third_party_message: details,
    }))
}
