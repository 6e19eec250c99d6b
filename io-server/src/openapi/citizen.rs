//! The citizen API's document (`/app/v1`, `crate::citizen_api`).

use serde_json::{Value, json};

use super::{Api, Operation, Paths, document};
use crate::citizen_api::{catalogue, data_processing, installations, messages};

/// What `citizen_api::authenticate` may answer before any handler runs.
fn citizen(operation: Operation) -> Operation {
    operation
        .problem(
            401,
            "No Authorization: Bearer <token>, or a token that is malformed, forged, expired or not issued for this API.",
        )
        .store()
}

/// The schemas of the citizen API's payloads and views, derived from their types (utoipa),
/// with the schemas they name.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    io_core::Profile,
    io_core::ServicePreference,
    io_core::MessageFlags,
    crate::citizen_api::profile::ProfilePayload,
    messages::Page,
    messages::CitizenMessage,
    messages::StatusChange,
    messages::ThirdPartyMessageView,
    installations::InstallationPayload,
    installations::InstallationView,
    data_processing::DataRequestView,
    data_processing::NewDataRequest,
    data_processing::Archive,
    catalogue::Page<catalogue::InstitutionItem>,
    catalogue::Page<catalogue::ServiceItem>,
    catalogue::ServiceDetails,
    catalogue::TopicList,
)))]
struct DerivedSchemas;

/// The OpenAPI document of the citizen API (`/app/v1`); `routes` are the documented routes of
/// `crate::citizen_api::routes`, each completed with what its authentication layer may answer.
pub fn citizen_api_document_of(routes: utoipa::openapi::path::Paths) -> Value {
    let mut paths = Paths::default();
    paths.add_derived(routes, citizen);
    paths.add_document_route("citizen API");

    let mut schemas = super::derived_schemas::<DerivedSchemas>();
    // The parts of a message (its content); the archive's messages are Services API responses.
    schemas.extend(super::schemas::message_response_components());
    document(Api {
        title: "io citizen API",
        description: "What the app calls on behalf of one citizen (io-reference §7): profile, per-service preferences, inbox, message status, devices. A citizen sees only their own data: another citizen's message is not found. Errors are application/problem+json.",
        base_path: "/app/v1",
        security_scheme: (
            "CitizenToken",
            json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A citizen token (minted by POST /adm/citizen-tokens in development)." }),
        ),
        paths,
        schemas,
        headers: Vec::new(),
    })
}

/// [`citizen_api_document_of`] the routes of `crate::citizen_api::routes`. The store type only
/// names the handlers: no store is opened.
pub fn citizen_api_document() -> Value {
    let (_, routes) = crate::citizen_api::routes::<io_store::SledStore>().into_parts();
    citizen_api_document_of(routes)
}
