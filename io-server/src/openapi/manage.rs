//! Service management in the Services API's document (`/api/v1/manage/services`,
//! `crate::manage_api`): the operations, with IO's operation ids, and their schemas.

use serde_json::{Value, json};

use super::schemas::{
    self, closed_object, described, fiscal_code, object, organization_fiscal_code, schema_ref,
};
use super::{Operation, Paths};
use io_core::{ServiceScope, TOPICS};

const TAG: &str = "manage";

/// A managed service's id: the ULID io gives it.
fn managed_service_id() -> Value {
    json!({
        "type": "string",
        "description": "The service's id (a ULID io gives it at creation).",
        "example": "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    })
}

/// What the manage routes' authentication may answer before any handler runs.
fn authenticated(operation: Operation) -> Operation {
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

/// An operation on one of the caller's services.
fn on_service(operation: Operation) -> Operation {
    authenticated(operation.path("serviceId", managed_service_id())).problem(
        404,
        "The institution has no such service (or it was deleted).",
    )
}

/// Adds the `/manage/services` operations to the Services API's paths.
pub(super) fn add_paths(paths: &mut Paths) {
    let base = "/manage/services";
    let one = "/manage/services/{serviceId}";
    paths.add(
        "post",
        base,
        authenticated(
            Operation::new("cmsCreateService", "Create a service (a draft, sandboxed until published)", TAG)
                .json_body(schema_ref("CmsServicePayload"))
                .answers(201, "The new draft, with the id io gave it.", schema_ref("CmsServiceLifecycle"))
                .problem(400, "A field is not valid (the detail names it): a topic_id not listed, a fiscal code or a CIDR that does not parse, a text empty or over 1000 characters.")
                .problem(403, "organization.fiscal_code is not the key's institution."),
        ),
    );
    paths.add(
        "get",
        base,
        authenticated(
            Operation::new(
                "cmsGetServices",
                "The institution's services (deleted ones left out), by id",
                TAG,
            )
            .query(
                "limit",
                json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 20 }),
            )
            .query(
                "offset",
                json!({ "type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0 }),
            )
            .answers(
                200,
                "A page of services and the total count.",
                schema_ref("CmsServicePagination"),
            )
            .problem(400, "limit or offset out of range."),
        ),
    );
    paths.add(
        "get",
        "/manage/services/topics",
        authenticated(
            Operation::new(
                "getServiceTopics",
                "The topics a service can be listed under (any key of the institution)",
                TAG,
            )
            .answers(200, "Every topic.", schema_ref("CmsServiceTopicList")),
        ),
    );
    paths.add(
        "get",
        one,
        on_service(
            Operation::new(
                "cmsGetService",
                "A service's draft and its review status",
                TAG,
            )
            .answers(200, "The service.", schema_ref("CmsServiceLifecycle")),
        )
        .problem(400, "serviceId is not a service id."),
    );
    paths.add(
        "put",
        one,
        on_service(
            Operation::new("cmsUpdateService", "Replace a service's draft (it becomes a draft again; a published version stays in force)", TAG)
                .json_body(schema_ref("CmsServicePayload"))
                .answers(200, "The updated draft.", schema_ref("CmsServiceLifecycle"))
                .problem(400, "A field is not valid (the detail names it).")
                .problem(403, "organization.fiscal_code is not the key's institution.")
                .problem(409, "The service is under review, or another change got in first (read it again and retry)."),
        ),
    );
    paths.add(
        "delete",
        one,
        on_service(
            Operation::new(
                "cmsDeleteService",
                "Delete a service: unpublished, unlisted, it sends to nobody",
                TAG,
            )
            .answers_empty(204, "Deleted.")
            .problem(409, "Another change got in first."),
        )
        .problem(400, "serviceId is not a service id."),
    );
    paths.add(
        "put",
        "/manage/services/{serviceId}/review",
        on_service(
            Operation::new(
                "cmsReviewService",
                "Send the draft to the platform's review",
                TAG,
            )
            .describe("The body is optional; without one the service is not published on approval.")
            .optional_json_body(schema_ref("CmsReviewRequest"))
            .answers_empty(204, "Under review.")
            .problem(
                409,
                "Only a draft goes to review (a rejected one once edited).",
            ),
        ),
    );
    let release = "/manage/services/{serviceId}/release";
    paths.add(
        "post",
        release,
        on_service(
            Operation::new(
                "cmsReleaseService",
                "Publish the approved draft: listed to citizens, writing to any of them",
                TAG,
            )
            .answers_empty(204, "Published.")
            .problem(
                409,
                "The draft is not approved, or another change got in first.",
            ),
        )
        .problem(400, "serviceId is not a service id."),
    );
    paths.add(
        "get",
        release,
        on_service(
            Operation::new(
                "cmsGetPublishedService",
                "The last released version and whether it is published",
                TAG,
            )
            .answers(
                200,
                "The released version.",
                schema_ref("CmsServicePublication"),
            ),
        )
        .problem(400, "serviceId is not a service id.")
        .problem(404, "The service has never been released."),
    );
    paths.add(
        "delete",
        release,
        on_service(
            Operation::new(
                "cmsUnpublishService",
                "Take the published version down (sandboxed and unlisted again)",
                TAG,
            )
            .answers_empty(204, "Unpublished (also when it already was).")
            .problem(409, "Another change got in first."),
        )
        .problem(400, "serviceId is not a service id.")
        .problem(404, "The service has never been released."),
    );
    paths.add(
        "put",
        "/manage/services/{serviceId}/logo",
        on_service(
            Operation::new(
                "cmsUpdateServiceLogo",
                "Set the service's logo (a PNG, shown by the citizen's app)",
                TAG,
            )
            .json_body(schema_ref("Logo"))
            .answers_empty(204, "The logo is kept; it replaces the previous one.")
            .problem(400, &logo_refusal()),
        ),
    );
    paths.add(
        "put",
        "/organizations/{organization_fiscal_code}/logo",
        authenticated(
            Operation::new(
                "uploadOrganizationLogo",
                "Set the institution's logo (shown for its services that have none)",
                TAG,
            )
            .describe("With the institution's manage key, or one of its services' keys holding ApiServiceWrite.")
            .path("organization_fiscal_code", organization_fiscal_code())
            .json_body(schema_ref("Logo"))
            .answers_empty(202, "The logo is kept; it replaces the previous one.")
            .problem(400, &format!("organization_fiscal_code is not valid, or {}", logo_refusal()))
            .problem(403, "The key is another institution's, or a service's key without ApiServiceWrite."),
        ),
    );
    add_remote_content_paths(paths);
    paths.add(
        "get",
        "/manage/services/{serviceId}/history",
        on_service(
            Operation::new(
                "cmsGetServiceHistory",
                "Every change of the service, newest first unless order=ASC",
                TAG,
            )
            .query(
                "order",
                json!({ "type": "string", "enum": ["ASC", "DESC"], "default": "DESC" }),
            )
            .query(
                "limit",
                json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 10 }),
            )
            .query(
                "continuationToken",
                json!({ "type": "string", "description": "From the previous page." }),
            )
            .answers(
                200,
                "A page of the history.",
                schema_ref("CmsServiceHistory"),
            )
            .problem(400, "order, limit or continuationToken is not valid."),
        ),
    );
    paths.add(
        "get",
        "/manage/services/{serviceId}/keys",
        on_service(
            Operation::new("cmsGetServiceKeys", "The service's two keys", TAG).answers(
                200,
                "The keys.",
                schema_ref("CmsSubscriptionKeys"),
            ),
        )
        .problem(400, "serviceId is not a service id."),
    );
    paths.add(
        "put",
        "/manage/services/{serviceId}/keys/{keyType}",
        on_service(
            Operation::new(
                "cmsRegenerateServiceKey",
                "A new key in one slot; the other keeps working",
                TAG,
            )
            .path(
                "keyType",
                json!({ "type": "string", "enum": ["primary", "secondary"], "example": "primary" }),
            )
            .answers(200, "The keys in force.", schema_ref("CmsSubscriptionKeys"))
            .problem(400, "keyType is not primary or secondary.")
            .problem(409, "Too many concurrent regenerations."),
        ),
    );
}

/// The remote-content configuration operations (`manage_api::remote_contents`).
fn add_remote_content_paths(paths: &mut Paths) {
    const RC_TAG: &str = "remote contents";
    let base = "/messages-sending/remote-contents/configurations";
    let one = "/messages-sending/remote-contents/configurations/{configurationId}";
    let configuration_id = || {
        json!({
            "type": "string",
            "description": "The configuration's id (a ULID io gives it at creation).",
            "example": "01ARZ3NDEKTSV4RRFFQ69G5FAV"
        })
    };
    let refused = "A field is not valid (the detail names it): a text empty or over 1000 characters, a fiscal code, a header name io sets itself or that is not an HTTP token, a key that is not visible ASCII, a base URL that is not http(s) or that the SSRF guard refuses, is_lollipop_enabled true (io does not sign with Lollipop).";
    paths.add(
        "post",
        base,
        authenticated(
            Operation::new(
                "createRCConfiguration",
                "Register where the institution's messages' details live",
                RC_TAG,
            )
            .json_body(schema_ref("NewRCConfigurationPublic"))
            .answers(
                201,
                "The configuration, with the id io gave it.",
                schema_ref("RCConfigurationResponse"),
            )
            .problem(400, refused),
        ),
    );
    paths.add(
        "get",
        base,
        authenticated(
            Operation::new(
                "listRCConfiguration",
                "The institution's remote-content configurations, by id",
                RC_TAG,
            )
            .answers(
                200,
                "Every configuration of the institution.",
                schema_ref("RCConfigurationListResponse"),
            ),
        ),
    );
    paths.add(
        "get",
        one,
        authenticated(
            Operation::new(
                "getRCConfiguration",
                "One remote-content configuration",
                RC_TAG,
            )
            .path("configurationId", configuration_id())
            .answers(
                200,
                "The configuration.",
                schema_ref("RCConfigurationResponse"),
            )
            .problem(400, "configurationId is not a ULID.")
            .problem(404, "The institution has no such configuration."),
        ),
    );
    paths.add(
        "put",
        one,
        authenticated(
            Operation::new(
                "updateRCConfiguration",
                "Replace a remote-content configuration",
                RC_TAG,
            )
            .path("configurationId", configuration_id())
            .json_body(schema_ref("NewRCConfigurationPublic"))
            .answers_empty(204, "Replaced.")
            .problem(400, &format!("configurationId is not a ULID, or {refused}"))
            .problem(404, "The institution has no such configuration.")
            .problem(
                409,
                "Another change got in first (read it again and retry).",
            ),
        ),
    );
}

/// The remote-content schemas: the payload and the view share their environments.
fn remote_content_schemas() -> Vec<(&'static str, Value)> {
    let authentication = closed_object(
        &["header_key_name", "key", "type"],
        json!({
            "header_key_name": { "type": "string", "minLength": 1, "maxLength": 100, "example": "X-Api-Key" },
            "key": { "type": "string", "minLength": 1, "maxLength": 4096 },
            "type": text(),
        }),
    );
    let base_url = json!({ "type": "string", "minLength": 1, "maxLength": 2048, "example": "https://avvisi.example.it/api" });
    let fiscal_codes = json!({ "type": "array", "maxItems": 1000, "items": fiscal_code() });
    let prod = closed_object(
        &["base_url", "details_authentication"],
        json!({ "base_url": base_url, "details_authentication": authentication }),
    );
    let test = closed_object(
        &["base_url", "details_authentication", "test_users"],
        json!({ "base_url": base_url, "details_authentication": authentication, "test_users": fiscal_codes }),
    );
    let precondition = json!({ "type": "string", "enum": ["ALWAYS", "ONCE", "NEVER"] });
    let payload = closed_object(
        &[
            "name",
            "description",
            "has_precondition",
            "disable_lollipop_for",
            "is_lollipop_enabled",
        ],
        json!({
            "name": text(),
            "description": text(),
            "has_precondition": precondition,
            "disable_lollipop_for": fiscal_codes,
            "is_lollipop_enabled": described(json!({ "type": "boolean" }), "Must be false: io does not sign with Lollipop."),
            "prod_environment": prod,
            "test_environment": test,
        }),
    );
    let response = object(
        &[
            "configuration_id",
            "user_id",
            "name",
            "description",
            "has_precondition",
            "disable_lollipop_for",
            "is_lollipop_enabled",
        ],
        json!({
            "configuration_id": { "type": "string", "example": "01ARZ3NDEKTSV4RRFFQ69G5FAV" },
            "user_id": described(organization_fiscal_code(), "The institution the configuration belongs to."),
            "name": { "type": "string" },
            "description": { "type": "string" },
            "has_precondition": precondition,
            "disable_lollipop_for": fiscal_codes,
            "is_lollipop_enabled": { "type": "boolean" },
            "prod_environment": prod,
            "test_environment": test,
        }),
    );
    vec![
        ("NewRCConfigurationPublic", payload),
        ("RCConfigurationResponse", response),
        (
            "RCConfigurationListResponse",
            object(
                &["rcConfigList"],
                json!({ "rcConfigList": { "type": "array", "items": schema_ref("RCConfigurationResponse") } }),
            ),
        ),
    ]
}

/// Why an uploaded logo is refused.
fn logo_refusal() -> String {
    format!(
        "The logo is not base64, not a well-formed PNG (the detail says what is wrong), over {} bytes, or a side of the image is over {} pixels.",
        io_core::MAX_LOGO_BYTES,
        io_core::MAX_LOGO_SIDE
    )
}

fn text() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 1000 })
}

/// The metadata texts a payload may carry and a view shows.
fn metadata_texts() -> serde_json::Map<String, Value> {
    [
        "web_url",
        "app_ios",
        "app_android",
        "tos_url",
        "privacy_url",
        "address",
        "phone",
        "email",
        "pec",
        "cta",
        "support_url",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), text()))
    .collect()
}

fn scope() -> Value {
    schemas::variants!(ServiceScope: National, Local)
}

/// IO's `CmsServiceData` properties with the metadata schema given.
fn service_data(metadata: Value) -> serde_json::Map<String, Value> {
    let mut properties = serde_json::Map::new();
    properties.insert("name".into(), text());
    properties.insert("description".into(), text());
    properties.insert("organization".into(), schema_ref("CmsOrganization"));
    properties.insert(
        "require_secure_channel".into(),
        json!({ "type": "boolean", "default": false }),
    );
    properties.insert(
        "authorized_recipients".into(),
        json!({ "type": "array", "maxItems": 1000, "items": fiscal_code() }),
    );
    properties.insert(
        "authorized_cidrs".into(),
        json!({ "type": "array", "maxItems": 1000, "items": { "type": "string", "example": "192.168.0.0/24" } }),
    );
    properties.insert(
        "max_allowed_payment_amount".into(),
        json!({ "type": "integer", "minimum": 0, "maximum": 9_999_999_999_u64, "default": 0 }),
    );
    properties.insert("metadata".into(), metadata);
    properties
}

/// A view: an id, a status, the last update and the service's data.
fn view(status: Value) -> Value {
    let mut properties = service_data(schema_ref("CmsServiceMetadata"));
    properties.insert("id".into(), managed_service_id());
    properties.insert("status".into(), status);
    properties.insert("last_update".into(), schemas::timestamp());
    object(
        &[
            "id",
            "status",
            "last_update",
            "name",
            "description",
            "organization",
            "metadata",
        ],
        Value::Object(properties),
    )
}

/// The schemas of the operations above.
pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    let mut payload_metadata = metadata_texts();
    payload_metadata.insert("scope".into(), scope());
    payload_metadata.insert(
        "topic_id".into(),
        json!({ "type": "integer", "minimum": 0, "maximum": TOPICS.len() - 1, "example": 3 }),
    );
    payload_metadata.insert(
        "token_name".into(),
        described(text(), "Accepted and not kept (IO deprecated it)."),
    );
    let mut view_metadata = metadata_texts();
    view_metadata.insert("scope".into(), scope());
    view_metadata.insert("topic".into(), schema_ref("CmsServiceTopic"));
    let lifecycle_status = object(
        &["value"],
        json!({
            "value": { "type": "string", "enum": ["draft", "submitted", "approved", "rejected", "deleted"] },
            "reason": { "type": "string", "description": "Why the platform rejected it." }
        }),
    );
    let mut all = vec![
        (
            "CmsServicePayload",
            closed_object(
                &["name", "description", "organization", "metadata"],
                Value::Object(service_data(schema_ref("CmsServicePayloadMetadata"))),
            ),
        ),
        (
            "CmsServicePayloadMetadata",
            closed_object(&["scope", "topic_id"], Value::Object(payload_metadata)),
        ),
        (
            "CmsServiceMetadata",
            object(&["scope"], Value::Object(view_metadata)),
        ),
        (
            "CmsOrganization",
            closed_object(
                &["name", "fiscal_code"],
                json!({
                    "name": text(),
                    "fiscal_code": organization_fiscal_code(),
                    "department_name": text(),
                }),
            ),
        ),
        ("CmsServiceLifecycle", view(lifecycle_status)),
        (
            "CmsServicePublication",
            view(json!({ "type": "string", "enum": ["published", "unpublished"] })),
        ),
        (
            "CmsServiceHistoryItem",
            view(object(
                &["kind", "value"],
                json!({
                    "kind": { "type": "string", "enum": ["lifecycle", "publication"] },
                    "value": { "type": "string", "enum": ["draft", "submitted", "approved", "rejected", "deleted", "published", "unpublished"] },
                    "reason": { "type": "string" }
                }),
            )),
        ),
        (
            "CmsServiceHistory",
            object(
                &["items"],
                json!({
                    "items": { "type": "array", "items": schema_ref("CmsServiceHistoryItem") },
                    "continuationToken": { "type": "string", "description": "Absent on the last page." }
                }),
            ),
        ),
        (
            "CmsServicePagination",
            object(
                &["value", "pagination"],
                json!({
                    "value": { "type": "array", "items": schema_ref("CmsServiceLifecycle") },
                    "pagination": object(&["offset", "limit", "count"], json!({
                        "offset": { "type": "integer", "minimum": 0 },
                        "limit": { "type": "integer", "minimum": 1 },
                        "count": { "type": "integer", "minimum": 0 }
                    }))
                }),
            ),
        ),
        (
            "CmsServiceTopic",
            object(
                &["id", "name"],
                json!({ "id": { "type": "integer", "minimum": 0 }, "name": { "type": "string" } }),
            ),
        ),
        (
            "CmsServiceTopicList",
            object(
                &["topics"],
                json!({ "topics": { "type": "array", "items": schema_ref("CmsServiceTopic") } }),
            ),
        ),
        (
            "CmsReviewRequest",
            closed_object(
                &["auto_publish"],
                json!({ "auto_publish": { "type": "boolean" } }),
            ),
        ),
        (
            "Logo",
            closed_object(
                &["logo"],
                json!({ "logo": {
                    "type": "string",
                    "format": "byte",
                    "minLength": 1,
                    "description": "The PNG image in base64."
                } }),
            ),
        ),
        (
            "CmsSubscriptionKeys",
            object(
                &["primary_key", "secondary_key"],
                json!({ "primary_key": { "type": "string" }, "secondary_key": { "type": "string" } }),
            ),
        ),
    ];
    all.extend(remote_content_schemas());
    all
}
