//! `POST /messages`, `POST /messages/{fiscal_code}`, `GET /messages/{fiscal_code}/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use io_core::{
    ConfigurationId, Group, IdempotencyKey, NewMessage, SenderCapabilities, Store, Submission,
    SubmitError, ValidationError,
};
use serde::Serialize;

use super::{ServiceCaller, parse_fiscal_code, parse_message_id};
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};
use crate::views::MessageResponse;

/// The header that makes a submit safe to retry.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// `201` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = MessageCreated)]
pub struct Created {
    /// The message's id (the first message's, for a replayed Idempotency-Key).
    #[schema(value_type = io_core::MessageId)]
    id: String,
}

/// What a submit answers besides the handler's own checks.
const SUBMIT_DESCRIPTION: &str = "Validates the message (io-reference §6), stores it durably and answers 201. By default its channels are decided in the same write, so the message is already PROCESSED (and in the inbox) or REJECTED when the 201 arrives; email and push follow asynchronously (poll the message for their status). With an Idempotency-Key, a retry with the same message answers the first message's id.";
const SUBMIT_400: &str =
    "The message breaks a rule (the detail names the field), or the Idempotency-Key is malformed.";
const SUBMIT_403: &str = "The key lacks ApiMessageWrite (or ApiLimitedMessageWrite), a limited key names a recipient outside authorized_recipients, a payee needs ApiMessageWriteWithPayee, ADVANCED needs ApiMessageWriteAdvanced.";
const SUBMIT_409: &str = "The Idempotency-Key was used with a different message (type /problems/idempotency-key-reused).";
const SUBMIT_429: &str = "The delivery queue is full (type /problems/backlog-full).";

/// `POST /messages`: the recipient is the body's `fiscal_code`.
#[utoipa::path(
    post,
    path = "/messages",
    operation_id = "submitMessageforUserWithFiscalCodeInBody",
    tag = "messages",
    summary = "Send a message to the citizen named in the body",
    description = SUBMIT_DESCRIPTION,
    params(("Idempotency-Key" = inline(Option<io_core::IdempotencyKey>), Header, nullable = false)),
    request_body(content = NewMessage, description = "The message; `fiscal_code` is required here."),
    responses(
        (status = 201, description = "Accepted: stored durably, decided, notifications queued.", body = Created,
            headers(("Location" = String, description = "/api/v1/messages/{fiscal_code}/{id}"), ("Idempotent-Replayed" = String, description = "`true` when the Idempotency-Key was already used with the same message: the id is the first message's.")),
            links(("GetMessage" = (operation_id = "getMessage", parameters(("fiscal_code" = "$request.body#/fiscal_code"), ("id" = "$response.body#/id")))))),
        (status = 400, description = SUBMIT_400),
        (status = 403, description = SUBMIT_403),
        (status = 409, description = SUBMIT_409),
        (status = 429, description = SUBMIT_429),
    )
)]
pub async fn submit_with_body_recipient<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: ServiceCaller,
    headers: HeaderMap,
    JsonBody(message): JsonBody<NewMessage>,
) -> ApiResult<Response> {
    submit(&app, &caller, &headers, message).await
}

/// `POST /messages/{fiscal_code}`: the recipient is in the path and must not be in the body.
#[utoipa::path(
    post,
    path = "/messages/{fiscal_code}",
    operation_id = "submitMessageforUser",
    tag = "messages",
    summary = "Send a message to the citizen named in the path",
    description = SUBMIT_DESCRIPTION,
    params(
        ("fiscal_code" = inline(io_core::FiscalCode), Path),
        ("Idempotency-Key" = inline(Option<io_core::IdempotencyKey>), Header, nullable = false),
    ),
    request_body(content = NewMessage, description = "The message; a `fiscal_code` in the body is refused (400)."),
    responses(
        (status = 201, description = "Accepted: stored durably, decided, notifications queued.", body = Created,
            headers(("Location" = String, description = "/api/v1/messages/{fiscal_code}/{id}"), ("Idempotent-Replayed" = String, description = "`true` when the Idempotency-Key was already used with the same message: the id is the first message's.")),
            links(("GetMessage" = (operation_id = "getMessage", parameters(("fiscal_code" = "$request.path.fiscal_code"), ("id" = "$response.body#/id")))))),
        (status = 400, description = SUBMIT_400),
        (status = 403, description = SUBMIT_403),
        (status = 409, description = SUBMIT_409),
        (status = 429, description = SUBMIT_429),
    )
)]
pub async fn submit_to<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: ServiceCaller,
    Path(fiscal_code): Path<String>,
    headers: HeaderMap,
    JsonBody(mut message): JsonBody<NewMessage>,
) -> ApiResult<Response> {
    if message.fiscal_code.is_some() {
        return Err(Problem::bad_request(
            "fiscal_code: give the recipient either in the path or in the body, not both",
        ));
    }
    let fiscal_code = parse_fiscal_code(&fiscal_code, "fiscal_code (path)")?;
    message.fiscal_code = Some(fiscal_code.as_str().to_string());
    submit(&app, &caller, &headers, message).await
}

/// A message whose details are on the sender's server names a remote-content configuration of
/// the sender's institution (400 otherwise, before anything is accepted). A configuration id
/// that is not a ULID is left to the message's validation, which names it.
async fn check_configuration<S: Store>(
    app: &App<S>,
    caller: &ServiceCaller,
    message: &NewMessage,
) -> ApiResult<()> {
    let Some(raw) = message
        .content
        .third_party_data
        .as_ref()
        .and_then(|data| data.configuration_id.as_deref())
    else {
        return Ok(());
    };
    let Ok(id) = ConfigurationId::parse(raw) else {
        return Ok(());
    };
    let owned = app
        .store
        .remote_content_configuration(&id)
        .await?
        .is_some_and(|c| c.organization == caller.service.organization_fiscal_code);
    if owned {
        Ok(())
    } else {
        Err(Problem::bad_request(format!(
            "content.third_party_data.configuration_id: the institution {} has no remote-content configuration {id}",
            caller.service.organization_fiscal_code
        )))
    }
}

async fn submit<S: Store>(
    app: &App<S>,
    caller: &ServiceCaller,
    headers: &HeaderMap,
    message: NewMessage,
) -> ApiResult<Response> {
    if !caller.groups.may_write_messages() {
        return Err(Problem::forbidden(
            "sending messages requires the ApiMessageWrite or ApiLimitedMessageWrite permission",
        ));
    }
    let recipient = match &message.fiscal_code {
        Some(raw) => parse_fiscal_code(raw, "fiscal_code")?,
        None => {
            return Err(Problem::bad_request(
                ValidationError::Missing {
                    field: "fiscal_code",
                }
                .to_string(),
            ));
        }
    };
    caller.require_recipient(&recipient)?;
    check_configuration(app, caller, &message).await?;
    let idempotency_key = match crate::request_headers::single(headers, IDEMPOTENCY_HEADER)? {
        None => None,
        Some(raw) => Some(IdempotencyKey::parse(raw).map_err(|_| {
            Problem::bad_request("Idempotency-Key: expected 1 to 255 visible ASCII characters")
        })?),
    };
    // Back-pressure: a bounded queue answers 429 rather than growing without limit.
    let backlog = app.backlog_for_admission().await?;
    if backlog > app.config.max_backlog {
        return Err(Problem::typed(
            StatusCode::TOO_MANY_REQUESTS,
            "backlog-full",
            format!(
                "the delivery queue is full ({backlog} tasks, limit {}); retry later",
                app.config.max_backlog
            ),
        )
        .with_header(
            "retry-after",
            app.config.backpressure_retry_after_secs.max(1).to_string(),
        ));
    }
    let submission = Submission {
        service_id: caller.service_id().clone(),
        message,
        capabilities: SenderCapabilities {
            may_set_payee: caller.groups.has(Group::ApiMessageWriteWithPayee),
            may_send_advanced: caller.groups.has(Group::ApiMessageWriteAdvanced),
        },
        idempotency_key,
    };
    let accepted = app.engine.submit(submission).await.map_err(|error| match error {
        SubmitError::Invalid(
            e @ (ValidationError::PayeeNotAllowed | ValidationError::AdvancedNotAllowed),
        ) => Problem::forbidden(e.to_string()),
        SubmitError::Invalid(e) => Problem::bad_request(e.to_string()),
        SubmitError::IdempotencyConflict { message_id } => Problem::typed(
            StatusCode::CONFLICT,
            "idempotency-key-reused",
            format!(
                "Idempotency-Key was already used for message {message_id} with a different body"
            ),
        ),
        SubmitError::UnknownService(id) => {
            Problem::unauthorized(format!("service {id} no longer exists"))
        }
        SubmitError::Store(e) => Problem::from(e),
    })?;
    let location = format!(
        "/api/v1/messages/{}/{}",
        accepted.fiscal_code.as_str(),
        accepted.id
    );
    let mut response = (
        StatusCode::CREATED,
        Json(Created {
            id: accepted.id.to_string(),
        }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if accepted.duplicate {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `GET /messages/{fiscal_code}/{id}`: the sending service only. A message of another service
/// answers the same 404 as a message that does not exist or a wrong fiscal code (IO answers
/// 403): a distinct answer would tell a service who received another service's message.
#[utoipa::path(
    get,
    path = "/messages/{fiscal_code}/{id}",
    operation_id = "getMessage",
    tag = "messages",
    summary = "A message sent by the calling service, with its status",
    params(
        ("fiscal_code" = inline(io_core::FiscalCode), Path),
        ("id" = inline(io_core::MessageId), Path),
    ),
    responses(
        (status = 200, description = "The message, its status and its deliveries.", body = ref("#/components/schemas/MessageResponse")),
        (status = 400, description = "The fiscal code or the id is not valid."),
        (status = 403, description = "The key lacks ApiMessageRead."),
        (status = 404, description = "This service sent no such message to this fiscal code (also when another service sent it: IO answers 403 there, io does not reveal who received another service's message)."),
    )
)]
pub async fn get_message<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: ServiceCaller,
    Path((fiscal_code, id)): Path<(String, String)>,
) -> ApiResult<Json<MessageResponse>> {
    caller.require(Group::ApiMessageRead)?;
    let fiscal_code = parse_fiscal_code(&fiscal_code, "fiscal_code (path)")?;
    let id = parse_message_id(&id, "id (path)")?;
    let stored = app
        .store
        .message(&id)
        .await?
        .filter(|m| {
            m.message.body.fiscal_code == fiscal_code
                && &m.message.sender_service_id == caller.service_id()
        })
        .ok_or_else(|| {
            Problem::not_found(format!(
                "this service sent no message {id} to this fiscal code"
            ))
        })?;
    let deliveries = app.store.deliveries(&id).await?;
    let mut response = MessageResponse::new(&stored.message, stored.status, &deliveries);
    if stored.message.body.feature_level == io_core::FeatureLevel::Advanced
        && caller.groups.has(Group::ApiMessageReadAdvanced)
    {
        let flags = app.store.message_flags(&fiscal_code, &id).await?;
        response.read_status = Some(if flags.is_read { "READ" } else { "UNREAD" });
    }
    Ok(Json(response))
}
