//! Schemas shared by the three documents. Every limit is read from the constant the validation
//! enforces (io-core's `message`, `ids`, `fiscal_code`, … constants) and every enum's values are
//! what the type's serde writes, so a document cannot drift from the code silently: a new
//! variant is a compile error in [`variants!`], a changed limit changes the schema.

use io_core::{ActivationStatus, DeliveryState, FailureReason, MessageStatus, RejectionReason};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

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

/// A delivery's status, IO's names (`DeliveryState::as_str` of every state).
pub(crate) fn delivery_status() -> Object {
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
    string_enum(
        states.iter().map(DeliveryState::as_str),
        "THROTTLED: retrying until the time-to-live; EXPIRED: nothing sent within it; SUBMITTED (PEC): handed to the PEC provider, waiting for its receipts (SENT on the delivery receipt).",
    )
}

/// A message's status, IO's names (`MessageStatus::as_str` of every status).
pub(crate) fn message_status() -> Object {
    let statuses = [
        MessageStatus::Accepted,
        MessageStatus::Processed,
        MessageStatus::Rejected(RejectionReason::UserNotFound),
        MessageStatus::Failed,
    ];
    string_enum(
        statuses.iter().map(|s| s.as_str()),
        "ACCEPTED: queued; PROCESSED: in the inbox; REJECTED: see rejection_reason; FAILED: permanent internal failure.",
    )
}

/// An ADVANCED message's read status, for a key with `ApiMessageReadAdvanced`.
pub(crate) fn read_status() -> Object {
    string_enum(
        ["UNREAD", "READ"],
        "ADVANCED messages, to a key with ApiMessageReadAdvanced.",
    )
}

fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}

/// The schemas of `views::MessageResponse` and its parts, derived from the view types.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(crate::views::MessageResponse)))]
struct MessageSchemas;

/// [`MessageSchemas`] as `(name, schema)` components.
pub(crate) fn message_response_components() -> Vec<(String, Value)> {
    super::derived_schemas::<MessageSchemas>()
}
