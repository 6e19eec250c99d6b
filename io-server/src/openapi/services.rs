//! The Services API's document (`/api/v1`, `crate::services_api`).

use serde_json::{Map, Value, json};

use super::schemas::{
    self, Recipient, closed_object, described, fiscal_code, fiscal_code_hash, fiscal_code_payload,
    message_id, object, preferred_language, schema_ref,
};
use super::{Api, Operation, Paths, document};
use crate::services_api::KEY_HEADER;
use crate::services_api::messages::IDEMPOTENCY_HEADER;

const TAG_MESSAGES: &str = "messages";
const TAG_PROFILES: &str = "profiles";
const TAG_ACTIVATIONS: &str = "activations";

/// The rate-limit hints of `services_api::authenticate`, as `components.headers`.
fn rate_limit_header_components() -> Vec<(&'static str, Value)> {
    let header = |description: &str| json!({ "description": description, "schema": { "type": "integer", "minimum": 0 } });
    vec![
        (
            "RateLimitLimit",
            header("Calls per period of the institution's tier (absent when unlimited)."),
        ),
        (
            "RateLimitRemaining",
            header("Calls left in the current burst (absent when unlimited)."),
        ),
        (
            "RateLimitReset",
            header("Seconds until a call can succeed again."),
        ),
    ]
}

fn header_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

/// `x-rate-limit-limit` and `x-rate-limit-remaining`: on every answer while the institution's
/// tier is limited.
fn rate_limit_headers() -> Map<String, Value> {
    let mut headers = Map::new();
    headers.insert("x-rate-limit-limit".into(), header_ref("RateLimitLimit"));
    headers.insert(
        "x-rate-limit-remaining".into(),
        header_ref("RateLimitRemaining"),
    );
    headers
}

/// What `services_api::authenticate` may answer before any handler runs.
fn authenticated(operation: Operation) -> Operation {
    operation
        .problem(
            401,
            "No Ocp-Apim-Subscription-Key header, or a key that is not valid.",
        )
        .problem(
            403,
            "The source address is outside the service's authorized_cidrs.",
        )
        .problem(
            429,
            "The institution exceeded its rate limit (150 calls per 5 s by default, shared by all its services' keys).",
        )
        .answer_header(429, "x-rate-limit-reset", header_ref("RateLimitReset"))
        .store()
        .every_answer_may_carry(rate_limit_headers())
}

/// A submit: `POST /messages` or `POST /messages/{fiscal_code}`.
fn submit(operation_id: &str, summary: &str, recipient: Recipient) -> Operation {
    let body = match recipient {
        Recipient::InBody => schema_ref("NewMessage"),
        Recipient::InPath => schema_ref("NewMessageWithoutRecipient"),
    };
    let mut created_headers = Map::new();
    created_headers.insert(
        "Location".into(),
        json!({
            "description": "/api/v1/messages/{fiscal_code}/{id}",
            "required": true,
            "schema": { "type": "string" }
        }),
    );
    created_headers.insert(
        "Idempotent-Replayed".into(),
        json!({
            "description": "`true` when the Idempotency-Key was already used with the same message: the id is the first message's.",
            "schema": { "type": "string", "enum": ["true"] }
        }),
    );
    let operation = Operation::new(operation_id, summary, TAG_MESSAGES)
        .describe(
            "Validates the message (io-reference §6), stores it durably and answers 201. By default its channels are decided in the same write, so the message is already PROCESSED (and in the inbox) or REJECTED when the 201 arrives; email and push follow asynchronously (poll the message for their status). With an Idempotency-Key, a retry with the same message answers the first message's id.",
        )
        .header(&canonical(IDEMPOTENCY_HEADER), schemas::idempotency_key())
        .json_body(body)
        .answers_with(
            201,
            "Accepted: stored durably, decided, notifications queued.",
            object(&["id"], json!({ "id": message_id() })),
            created_headers,
        )
        .problem(
            400,
            "The message breaks a rule (the detail names the field), or the Idempotency-Key is malformed.",
        )
        .problem(
            403,
            "The key lacks ApiMessageWrite (or ApiLimitedMessageWrite), a limited key names a recipient outside authorized_recipients, a payee needs ApiMessageWriteWithPayee, ADVANCED needs ApiMessageWriteAdvanced.",
        )
        .problem(
            409,
            "The Idempotency-Key was used with a different message (type /problems/idempotency-key-reused).",
        )
        .problem(
            429,
            "The delivery queue is full (type /problems/backlog-full).",
        );
    let recipient_expression = match recipient {
        Recipient::InBody => "$request.body#/fiscal_code",
        Recipient::InPath => "$request.path.fiscal_code",
    };
    authenticated(operation.link(
        201,
        "GetMessage",
        "getMessage",
        json!({ "fiscal_code": recipient_expression, "id": "$response.body#/id" }),
    ))
}

/// `Idempotency-Key` for `idempotency-key`.
fn canonical(header: &str) -> String {
    header
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn limited_profile() -> Value {
    object(
        &["sender_allowed", "preferred_languages"],
        json!({
            "sender_allowed": described(
                schemas::boolean(),
                "Whether the calling service's messages reach this citizen's inbox now.",
            ),
            "preferred_languages": { "type": "array", "items": preferred_language() },
        }),
    )
}

fn profile_problems(operation: Operation) -> Operation {
    authenticated(
        operation
            .answers(
                200,
                "The citizen's profile as a sender may see it.",
                schema_ref("LimitedProfile"),
            )
            .problem(400, "The fiscal code is not valid.")
            .problem(
                403,
                "The key lacks ApiLimitedProfileRead, or a limited key asks for a recipient outside authorized_recipients (403, not 404: no probing of who is registered).",
            )
            .problem(
                404,
                "The citizen has no profile, or has disabled the inbox.",
            ),
    )
}

fn special_only(operation: Operation) -> Operation {
    operation.problem(
        403,
        "The service is not SPECIAL, the key lacks ApiMessageWrite or ApiLimitedMessageWrite, or a limited key names a recipient outside authorized_recipients.",
    )
}

/// The OpenAPI document of the Services API (`/api/v1`): what institutions call, IO-compatible.
pub fn services_api_document() -> Value {
    let mut paths = Paths::default();
    paths.add(
        "post",
        "/messages",
        submit(
            "submitMessageforUserWithFiscalCodeInBody",
            "Send a message to the citizen named in the body",
            Recipient::InBody,
        ),
    );
    paths.add(
        "post",
        "/messages/{fiscal_code}",
        submit(
            "submitMessageforUser",
            "Send a message to the citizen named in the path",
            Recipient::InPath,
        )
        .path("fiscal_code", fiscal_code()),
    );
    paths.add(
        "get",
        "/messages/{fiscal_code}/{id}",
        authenticated(
            Operation::new(
                "getMessage",
                "A message sent by the calling service, with its status",
                TAG_MESSAGES,
            )
            .path("fiscal_code", fiscal_code())
            .path("id", message_id())
            .answers(
                200,
                "The message, its status and its deliveries.",
                schema_ref("MessageResponse"),
            )
            .problem(400, "The fiscal code or the id is not valid.")
            .problem(403, "The key lacks ApiMessageRead.")
            .problem(
                404,
                "This service sent no such message to this fiscal code (also when another service sent it: IO answers 403 there, io does not reveal who received another service's message).",
            ),
        ),
    );
    paths.add(
        "post",
        "/profiles",
        profile_problems(
            Operation::new(
                "getProfileByPOST",
                "Whether a citizen can receive this service's messages (fiscal code in the body)",
                TAG_PROFILES,
            )
            .json_body(schema_ref("FiscalCodePayload")),
        ),
    );
    paths.add(
        "get",
        "/profiles/{fiscal_code}",
        profile_problems(
            Operation::new(
                "getProfile",
                "Whether a citizen can receive this service's messages",
                TAG_PROFILES,
            )
            .path("fiscal_code", fiscal_code()),
        ),
    );
    paths.add(
        "get",
        "/subscriptions-feed/{date}",
        authenticated(
            Operation::new(
                "getSubscriptionsFeedForDate",
                "Citizens who subscribed to or unsubscribed from the service on one UTC day",
                TAG_PROFILES,
            )
            .path(
                "date",
                json!({ "type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "example": "2026-01-31" }),
            )
            .answers(200, "The day's feed.", schema_ref("SubscriptionsFeed"))
            .problem(400, "The date is not YYYY-MM-DD.")
            .problem(403, "The key lacks ApiSubscriptionsFeedRead.")
            .problem(404, "The day is not over yet (UTC): its feed is served from the next day on."),
        ),
    );
    // IO's paths end with a slash; the slash-less form is served too.
    for (path, suffix) in [("/activations/", ""), ("/activations", "WithoutSlash")] {
        let (get_id, upsert_id) = ("getServiceActivationByPOST", "upsertServiceActivation");
        paths.add(
            "post",
            path,
            authenticated(special_only(
                Operation::new(
                    &format!("{get_id}{suffix}"),
                    "The calling SPECIAL service's activation for a citizen",
                    TAG_ACTIVATIONS,
                )
                .json_body(schema_ref("FiscalCodePayload"))
                .answers(200, "The activation.", schema_ref("Activation"))
                .problem(400, "The fiscal code is not valid.")
                .problem(404, "No activation for this citizen."),
            )),
        );
        paths.add(
            "put",
            path,
            authenticated(special_only(
                Operation::new(
                    &format!("{upsert_id}{suffix}"),
                    "Set the calling SPECIAL service's activation for a citizen (the service is the key's)",
                    TAG_ACTIVATIONS,
                )
                .json_body(schema_ref("ActivationInput"))
                .answers(200, "The activation as stored, with its new version.", schema_ref("Activation"))
                .problem(400, "The fiscal code is not valid.")
                .problem(403, "service_id is not the calling service."),
            )),
        );
    }
    super::manage::add_paths(&mut paths);
    paths.add_document_route("Services API");

    let mut schemas = vec![
        ("NewMessage", schemas::new_message(Recipient::InBody)),
        (
            "NewMessageWithoutRecipient",
            schemas::new_message(Recipient::InPath),
        ),
        ("NewMessageContent", schemas::new_message_content()),
        ("NewPaymentData", schemas::new_payment_data()),
        ("LimitedProfile", limited_profile()),
        ("FiscalCodePayload", fiscal_code_payload()),
        (
            "SubscriptionsFeed",
            closed_object(
                &["dateUTC", "subscriptions", "unsubscriptions"],
                json!({
                    "dateUTC": { "type": "string", "format": "date" },
                    "subscriptions": { "type": "array", "items": fiscal_code_hash() },
                    "unsubscriptions": { "type": "array", "items": fiscal_code_hash() },
                }),
            ),
        ),
        ("Activation", schemas::activation()),
        ("ActivationInput", schemas::activation_input(false)),
    ];
    schemas.extend(schemas::message_response_components());
    schemas.extend(super::manage::schemas());
    document(Api {
        title: "io Services API",
        description: "IO's Services API (io-reference §6): what institutions call to send messages to citizens. A client written for IO works by changing its base URL. Errors are application/problem+json.",
        base_path: "/api/v1",
        security_scheme: (
            "SubscriptionKey",
            json!({ "type": "apiKey", "in": "header", "name": canonical(KEY_HEADER) }),
        ),
        paths,
        schemas,
        headers: rate_limit_header_components(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_written_as_io_documents_them() {
        assert_eq!(canonical(KEY_HEADER), "Ocp-Apim-Subscription-Key");
        assert_eq!(canonical(IDEMPOTENCY_HEADER), "Idempotency-Key");
    }
}
