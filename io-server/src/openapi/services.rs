//! The Services API's document (`/api/v1`, `crate::services_api`).

use serde_json::{Map, Value, json};

use super::schemas;
use super::{Api, Operation, Paths, document};
use crate::services_api::{KEY_HEADER, activations, messages, profiles};

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

/// The schemas of the Services API's own payloads, derived from their types (utoipa), with
/// the schemas they name.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    io_core::NewMessage,
    messages::Created,
    profiles::LimitedProfile,
    profiles::FiscalCodePayload,
    profiles::SubscriptionsFeed,
    activations::ActivationView,
    activations::ActivationPayload,
)))]
struct DerivedSchemas;

/// The OpenAPI document of the Services API (`/api/v1`): what institutions call, IO-compatible.
/// `routes` are the documented routes of `crate::services_api::routes` and `manage_routes`
/// those of `crate::manage_api::routes`, each completed with what its authentication layer
/// may answer.
pub fn services_api_document_of(
    routes: utoipa::openapi::path::Paths,
    manage_routes: utoipa::openapi::path::Paths,
) -> Value {
    let mut paths = Paths::default();
    paths.add_derived(routes, authenticated);
    paths.add_derived(manage_routes, super::manage::authenticated);
    paths.add_document_route("Services API");

    let mut schemas = super::derived_schemas::<DerivedSchemas>();
    schemas.extend(super::manage::schemas());
    schemas.extend(schemas::message_response_components());
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

/// [`services_api_document_of`] the routes of `crate::services_api::routes`. The store type
/// only names the handlers: no store is opened.
pub fn services_api_document() -> Value {
    let (_, routes) = crate::services_api::routes::<io_store::SledStore>().into_parts();
    let (_, manage_routes) = crate::manage_api::routes::<io_store::SledStore>().into_parts();
    services_api_document_of(routes, manage_routes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services_api::messages::IDEMPOTENCY_HEADER;

    #[test]
    fn header_names_are_written_as_io_documents_them() {
        assert_eq!(canonical(KEY_HEADER), "Ocp-Apim-Subscription-Key");
        assert_eq!(canonical(IDEMPOTENCY_HEADER), "Idempotency-Key");
    }
}
