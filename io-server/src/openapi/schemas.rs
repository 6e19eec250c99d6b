//! Schemas shared by the three documents. Every limit is read from the constant the validation
//! enforces (io-core's `message`, `ids`, `fiscal_code`, … constants) and every enum's values are
//! what the type's serde writes, so a document cannot drift from the code silently: a new
//! variant is a compile error in [`variants!`], a changed limit changes the schema.

use io_core::message::{IUP_LEN, MARKDOWN_CHARS, NRE_LEN, SUBJECT_CHARS, TIME_TO_LIVE_SECS};
use io_core::{
    ActivationStatus, ChannelKind, DeliveryState, FailureReason, FeatureLevel, MessageStatus,
    PreferredLanguage, RejectionReason,
};
use serde::Serialize;
use serde_json::{Value, json};

/// A schema of `io_core::openapi` as JSON.
fn json_of(schema: utoipa::openapi::schema::Object) -> Value {
    serde_json::to_value(schema).expect("a schema serializes")
}

/// The `$ref` to a schema of the document's components.
pub(crate) fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `schema` that also admits `null`: OpenAPI 3.1 (JSON Schema 2020-12) adds `"null"` to the
/// schema's `type`, as utoipa writes an `Option`.
pub(crate) fn nullable(mut schema: Value) -> Value {
    match schema.get("type").cloned() {
        Some(Value::String(kind)) => schema["type"] = json!([kind, "null"]),
        _ => schema = json!({ "oneOf": [schema, { "type": "null" }] }),
    }
    schema
}

/// `schema` with a description.
pub(crate) fn described(mut schema: Value, description: &str) -> Value {
    schema["description"] = Value::String(description.into());
    schema
}

/// A string enum of the values serde writes for `values`.
pub(crate) fn enum_of<T: Serialize>(values: &[T]) -> Value {
    let names: Vec<Value> = values
        .iter()
        .map(|v| serde_json::to_value(v).expect("a fieldless enum serializes to a string"))
        .collect();
    json!({ "type": "string", "enum": names })
}

/// The string enum of every variant of a fieldless enum; the `match` makes a variant added to
/// the type a compile error here until the documents list it.
macro_rules! variants {
    ($ty:ident: $($variant:ident),+ $(,)?) => {{
        let _every_variant_listed = |value: $ty| match value {
            $($ty::$variant)|+ => (),
        };
        $crate::openapi::schemas::enum_of(&[$($ty::$variant),+])
    }};
}
pub(crate) use variants;

/// An object with `properties`, of which `required` must be present.
pub(crate) fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

/// [`object`] that refuses properties it does not list (`deny_unknown_fields` payloads).
pub(crate) fn closed_object(required: &[&str], properties: Value) -> Value {
    let mut schema = object(required, properties);
    schema["additionalProperties"] = Value::Bool(false);
    schema
}

/// RFC 9457 problem details: every error of the three APIs (`crate::problem::Problem`).
pub(crate) fn problem() -> Value {
    object(
        &["type", "title", "status", "detail"],
        json!({
            "type": {
                "type": "string",
                "description": "`about:blank`, or `/problems/<name>` for a problem a client handles programmatically (`/problems/backlog-full`, `/problems/idempotency-key-reused`).",
                "example": "about:blank"
            },
            "title": { "type": "string", "description": "The status's reason phrase." },
            "status": { "type": "integer", "minimum": 400, "maximum": 599, "description": "The HTTP status, repeated." },
            "detail": { "type": "string", "description": "What exactly is wrong: the field (JSON path) and the rule." }
        }),
    )
}

/// A citizen's fiscal code.
pub(crate) fn fiscal_code() -> Value {
    json_of(io_core::openapi::fiscal_code())
}

/// An organization fiscal code (partita IVA).
pub(crate) fn organization_fiscal_code() -> Value {
    json_of(io_core::openapi::organization_fiscal_code())
}

/// A message id (ULID).
pub(crate) fn message_id() -> Value {
    json_of(io_core::openapi::message_id())
}

/// A service id.
pub(crate) fn service_id() -> Value {
    json_of(io_core::openapi::service_id())
}

/// An RFC 3339 date-time as the APIs write it (UTC, milliseconds).
pub(crate) fn timestamp() -> Value {
    json_of(io_core::openapi::timestamp())
}

/// A non-negative integer that fits `u64`.
pub(crate) fn unsigned() -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": 0 })
}

/// A boolean.
pub(crate) fn boolean() -> Value {
    json!({ "type": "boolean" })
}

/// An email address as an input (`EmailAddress::parse`).
pub(crate) fn email_input() -> Value {
    json_of(io_core::openapi::email_input())
}

/// IO's preferred languages.
pub(crate) fn preferred_language() -> Value {
    variants!(PreferredLanguage: ItIt, EnGb, EsEs, DeDe, FrFr)
}

fn payment_amount() -> Value {
    json_of(io_core::openapi::payment_amount())
}

fn notice_number() -> Value {
    json_of(io_core::openapi::notice_number())
}

/// `content.prescription_data`, in and out.
pub(crate) fn prescription_data() -> Value {
    object(
        &["nre"],
        json!({
            "nre": { "type": "string", "minLength": NRE_LEN, "maxLength": NRE_LEN, "description": "Numero di ricetta elettronica." },
            "iup": { "type": "string", "minLength": IUP_LEN.0, "maxLength": IUP_LEN.1, "description": "Identificativo unico di prescrizione." },
            "prescriber_fiscal_code": fiscal_code(),
        }),
    )
}

/// `content.third_party_data`, in and out (IO's `ThirdPartyData`).
pub(crate) fn third_party_data() -> Value {
    let text =
        || json!({ "type": "string", "minLength": 1, "maxLength": io_core::THIRD_PARTY_TEXT_MAX });
    object(
        &["id"],
        json!({
            "id": described(text(), "The sender's id of the message: io reads {base_url}/messages/{id} from the sender's server."),
            "original_sender": text(),
            "original_receipt_date": timestamp(),
            "has_attachments": { "type": "boolean", "default": false },
            "has_remote_content": { "type": "boolean", "default": false },
            "has_precondition": { "type": "string", "enum": ["ALWAYS", "ONCE", "NEVER"] },
            "summary": text(),
            "configuration_id": described(
                json!({ "type": "string", "example": "01ARZ3NDEKTSV4RRFFQ69G5FAV" }),
                "A remote-content configuration of the sender's institution; required when has_remote_content or has_attachments is true.",
            ),
        }),
    )
}

/// A stored message's content as the APIs return it (`views::ContentView`).
pub(crate) fn message_content() -> Value {
    object(
        &["subject", "markdown"],
        json!({
            "subject": { "type": "string", "minLength": SUBJECT_CHARS.0, "maxLength": SUBJECT_CHARS.1 },
            "markdown": { "type": "string", "minLength": MARKDOWN_CHARS.0, "maxLength": MARKDOWN_CHARS.1 },
            "due_date": timestamp(),
            "payment_data": object(
                &["amount", "notice_number", "invalid_after_due_date", "payee"],
                json!({
                    "amount": payment_amount(),
                    "notice_number": notice_number(),
                    "invalid_after_due_date": boolean(),
                    "payee": object(&["fiscal_code"], json!({ "fiscal_code": organization_fiscal_code() })),
                }),
            ),
            "prescription_data": schema_ref("PrescriptionData"),
            "third_party_data": schema_ref("ThirdPartyData"),
            "require_secure_channels": boolean(),
        }),
    )
}

/// A delivery's status, IO's names (`DeliveryState::as_str`).
fn delivery_status() -> Value {
    let failed = DeliveryState::Failed {
        reason: FailureReason::InvalidRecipient,
    };
    let states = [
        DeliveryState::Pending,
        DeliveryState::Retrying,
        DeliveryState::Submitted {
            submitted_at: io_core::Timestamp::EPOCH,
            accepted_at: None,
        },
        DeliveryState::Sent,
        DeliveryState::Expired,
        failed,
    ];
    json!({
        "type": "string",
        "enum": states.iter().map(DeliveryState::as_str).collect::<Vec<_>>(),
        "description": "THROTTLED: retrying until the time-to-live; EXPIRED: nothing sent within it; SUBMITTED (PEC): handed to the PEC provider, waiting for its receipts (SENT on the delivery receipt)."
    })
}

/// `views::MessageResponse`: IO's `MessageResponseWithContent` plus `rejection_reason` and the
/// per-channel `deliveries`.
pub(crate) fn message_response() -> Value {
    let statuses = [
        MessageStatus::Accepted,
        MessageStatus::Processed,
        MessageStatus::Rejected(RejectionReason::UserNotFound),
        MessageStatus::Failed,
    ];
    object(
        &["message", "status", "deliveries"],
        json!({
            "message": object(
                &["id", "fiscal_code", "time_to_live", "created_at", "content", "sender_service_id", "feature_level_type"],
                json!({
                    "id": message_id(),
                    "fiscal_code": fiscal_code(),
                    "time_to_live": {
                        "type": "integer",
                        "format": "int64",
                        "minimum": TIME_TO_LIVE_SECS.0,
                        "maximum": TIME_TO_LIVE_SECS.1
                    },
                    "created_at": timestamp(),
                    "content": schema_ref("MessageContent"),
                    "sender_service_id": service_id(),
                    "feature_level_type": variants!(FeatureLevel: Standard, Advanced),
                    "legal_value": described(boolean(), "io's extension: the message has legal value and goes by PEC to the digital domicile too."),
                }),
            ),
            "status": {
                "type": "string",
                "enum": statuses.iter().map(MessageStatus::as_str).collect::<Vec<_>>(),
                "description": "ACCEPTED: queued; PROCESSED: in the inbox; REJECTED: see rejection_reason; FAILED: permanent internal failure."
            },
            "rejection_reason": variants!(RejectionReason: ServiceNotAllowed, UserNotFound),
            "notification": object(&[], json!({
                "email": delivery_status(),
                "webhook": described(delivery_status(), "Push notifications (IO's name)."),
            })),
            "deliveries": {
                "type": "array",
                "items": object(
                    &["channel", "status", "attempts", "updated_at"],
                    json!({
                        "channel": variants!(ChannelKind: Inbox, Email, Push, Pec),
                        "status": delivery_status(),
                        "attempts": { "type": "integer", "minimum": 0 },
                        "updated_at": timestamp(),
                        "next_attempt_at": timestamp(),
                        "failure_reason": { "type": "string" },
                        "legal_delivery_at": described(timestamp(), "PEC: the delivery time certified by the delivery receipt (avvenuta-consegna)."),
                    }),
                ),
            },
            "read_status": {
                "type": "string",
                "enum": ["UNREAD", "READ"],
                "description": "ADVANCED messages, to a key with ApiMessageReadAdvanced."
            },
        }),
    )
}

/// IO's `Activation` (`services_api::activations::ActivationPayload`).
pub(crate) fn activation() -> Value {
    object(
        &["fiscal_code", "service_id", "status", "version"],
        json!({
            "fiscal_code": fiscal_code(),
            "service_id": service_id(),
            "status": activation_status(),
            "version": described(unsigned(), "0 when first stored, +1 on each change."),
        }),
    )
}

fn activation_status() -> Value {
    described(
        variants!(ActivationStatus: Active, Pending, Inactive),
        "PENDING lets messages in during a grace period (24 h by default).",
    )
}

/// An activation as written (`services_api::activations::ActivationPayload`): IO's
/// `{fiscal_code, status}`; `service_id` required where the caller may name any service.
pub(crate) fn activation_input(service_required: bool) -> Value {
    let required: &[&str] = if service_required {
        &["fiscal_code", "service_id", "status"]
    } else {
        &["fiscal_code", "status"]
    };
    closed_object(
        required,
        json!({
            "fiscal_code": fiscal_code(),
            "service_id": described(service_id(), if service_required {
                "The SPECIAL service."
            } else {
                "Optional: the calling service (403 for another)."
            }),
            "status": activation_status(),
            "version": described(unsigned(), "Ignored: the store numbers versions."),
        }),
    )
}

/// `{fiscal_code}`: a citizen named in a body rather than in a URL (kept out of access logs).
pub(crate) fn fiscal_code_payload() -> Value {
    closed_object(&["fiscal_code"], json!({ "fiscal_code": fiscal_code() }))
}

/// The schemas of a `MessageResponse` and its parts, as `(name, schema)` components.
pub(crate) fn message_response_components() -> Vec<(&'static str, Value)> {
    vec![
        ("MessageResponse", message_response()),
        ("MessageContent", message_content()),
        ("PrescriptionData", prescription_data()),
        ("ThirdPartyData", third_party_data()),
    ]
}
