//! Service management in the Services API's document (`/api/v1/manage/services`,
//! `crate::manage_api`): the operations, with IO's operation ids, and their schemas.

use serde_json::Value;

use super::Operation;
use crate::manage_api::{self, views};

/// What the manage routes' authentication may answer before any handler runs.
pub(super) fn authenticated(operation: Operation) -> Operation {
    operation
        .problem(
            401,
            "No Ocp-Apim-Subscription-Key header, or a key that is not valid.",
        )
        .problem(
            403,
            "The key is a service's key (only the institution's manage key manages services), or a service's key from outside its authorized_cidrs.",
        )
        .problem(
            429,
            "The institution exceeded its rate limit (shared by its manage and service keys).",
        )
        .store()
}

/// The schemas of service management and remote-content configurations, derived from their
/// payload and view types (utoipa), with the schemas they name.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    manage_api::ReviewRequest,
    manage_api::CmsServicePayload,
    views::LifecycleView,
    views::ServicePage,
    views::TopicList,
    views::PublicationView,
    views::HistoryPage,
    crate::admin_api::KeysView,
    manage_api::LogoPayload,
    manage_api::ConfigurationPayload,
    manage_api::ConfigurationView,
    manage_api::ConfigurationList,
)))]
struct ManageSchemas;

/// [`ManageSchemas`] as `(name, schema)`.
pub(super) fn schemas() -> Vec<(String, Value)> {
    super::derived_schemas::<ManageSchemas>()
}
