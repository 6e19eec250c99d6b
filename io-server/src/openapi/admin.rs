//! The admin API's document (`/adm`, `crate::admin_api`).

use io_core::{Group, KeySlot, ServiceCategory, ServiceScope};
use serde_json::{Map, Value, json};

use super::schemas::{
    self, boolean, closed_object, described, email_input, fiscal_code, fiscal_code_payload,
    message_id, nullable, object, organization_fiscal_code, schema_ref, service_id, unsigned,
    variants,
};
use super::{Api, Operation, Paths, document};

const TAG_SERVICES: &str = "services";
const TAG_ACTIVATIONS: &str = "activations";
const TAG_SUPPORT: &str = "support";
const TAG_MANAGE: &str = "service management";

/// The longest service, department and organization name (`admin_api`'s `non_empty`).
const NAME_MAX_CHARS: usize = 255;

fn admin(operation: Operation) -> Operation {
    operation
        .problem(
            401,
            "No Authorization: Bearer <admin token>, or a token that is not the admin token.",
        )
        .store()
}

fn group() -> Value {
    variants!(Group:
        ApiMessageWrite,
        ApiLimitedMessageWrite,
        ApiMessageRead,
        ApiLimitedProfileRead,
        ApiMessageWriteWithPayee,
        ApiMessageWriteAdvanced,
        ApiMessageReadAdvanced,
        ApiSubscriptionsFeedRead,
        ApiServiceWrite,
    )
}

fn name() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": NAME_MAX_CHARS,
        "description": format!("1 to {NAME_MAX_CHARS} characters, not blank; trimmed.")
    })
}

fn cidr_input() -> Value {
    json!({
        "type": "string",
        "pattern": "^([0-9]{1,3}\\.){3}[0-9]{1,3}(/[0-9]{1,2})?$",
        "description": "An IPv4 network a.b.c.d/n (n in 0..=32; a bare address means /32).",
        "example": "192.0.2.0/24"
    })
}

/// `io_core::ServiceMetadata`: scope and category required, the rest optional contacts.
fn service_metadata() -> Value {
    let text = || nullable(json!({ "type": "string" }));
    object(
        &["scope", "category"],
        json!({
            "scope": variants!(ServiceScope: National, Local),
            "category": described(
                variants!(ServiceCategory: Standard, Special),
                "SPECIAL services reach only citizens with an activation.",
            ),
            "description": text(),
            "web_url": text(),
            "privacy_url": text(),
            "tos_url": text(),
            "support_url": text(),
            "email": text(),
            "pec": text(),
            "phone": text(),
            "address": text(),
            "cta": text(),
            "app_ios": text(),
            "app_android": text(),
            "topic_id": described(
                nullable(json!({ "type": "integer", "minimum": 0, "maximum": io_core::TOPICS.len() - 1 })),
                "The topic citizens find the service under (GET /api/v1/manage/services/topics lists them).",
            ),
        }),
    )
}

/// `admin_api::ServicePayload`.
fn service_payload() -> Value {
    closed_object(
        &[
            "service_name",
            "department_name",
            "organization_name",
            "organization_fiscal_code",
        ],
        json!({
            "service_id": described(service_id(), "Optional on creation (a ULID is generated); on update it must match the path."),
            "service_name": name(),
            "department_name": name(),
            "organization_name": name(),
            "organization_fiscal_code": organization_fiscal_code(),
            "authorized_cidrs": described(
                json!({ "type": "array", "items": cidr_input() }),
                "Networks allowed to call with the service's keys; empty: any.",
            ),
            "authorized_recipients": described(
                json!({ "type": "array", "items": fiscal_code() }),
                "The recipients a limited key may write to; the sandbox fiscal code is always added.",
            ),
            "is_visible": { "type": "boolean", "default": false },
            "max_allowed_payment_amount": described(unsigned(), "Largest payment in euro cents; 0 forbids payments."),
            "require_secure_channels": { "type": "boolean", "default": false },
            "service_metadata": schema_ref("ServiceMetadata"),
            "owner_email": described(email_input(), "Where messages to the sandbox fiscal code are emailed."),
            "groups": described(
                json!({ "type": "array", "items": group() }),
                "The keys' permission groups; default on creation: ApiLimitedMessageWrite, ApiMessageRead, ApiLimitedProfileRead. Omitted on update: unchanged.",
            ),
            "version": described(unsigned(), "Ignored: the server keeps the version."),
            "sandboxed": described(boolean(), "Ignored: set by a managed service's publication."),
        }),
    )
}

/// `admin_api::ServiceView`: the stored `io_core::Service` plus its keys' groups.
fn service_view() -> Value {
    object(
        &[
            "service_id",
            "service_name",
            "department_name",
            "organization_name",
            "organization_fiscal_code",
            "authorized_cidrs",
            "authorized_recipients",
            "is_visible",
            "max_allowed_payment_amount",
            "require_secure_channels",
            "service_metadata",
            "owner_email",
            "version",
            "groups",
        ],
        json!({
            "service_id": service_id(),
            "service_name": name(),
            "department_name": described(json!({ "type": "string" }), "Empty for a managed service that named none."),
            "organization_name": name(),
            "organization_fiscal_code": organization_fiscal_code(),
            "authorized_cidrs": { "type": "array", "items": { "type": "string" } },
            "authorized_recipients": { "type": "array", "items": fiscal_code(), "uniqueItems": true },
            "is_visible": boolean(),
            "max_allowed_payment_amount": unsigned(),
            "require_secure_channels": boolean(),
            "service_metadata": schema_ref("ServiceMetadata"),
            "owner_email": nullable(json!({ "type": "string" })),
            "version": described(json!({ "type": "integer", "format": "int64", "minimum": 1 }), "1 on creation, +1 on each update."),
            "sandboxed": described(boolean(), "True while a service its institution manages is not published: its keys reach only authorized_recipients."),
            "groups": { "type": "array", "items": group(), "uniqueItems": true },
        }),
    )
}

fn keys() -> Value {
    let key = || json!({ "type": "string", "pattern": "^[0-9a-f]{32}$" });
    object(
        &["primary_key", "secondary_key"],
        json!({ "primary_key": key(), "secondary_key": key() }),
    )
}

fn journal_check() -> Value {
    object(
        &["entries", "verified"],
        json!({
            "entries": { "type": "integer", "minimum": 0 },
            "verified": described(boolean(), "Sequence, hash chain and head of the message's journal check out."),
            "error": { "type": "string" },
            "head": described(json!({ "type": "string" }), "The hash of the last entry."),
        }),
    )
}

/// The OpenAPI document of the admin API (`/adm`).
pub fn admin_api_document() -> Value {
    let mut paths = Paths::default();
    let service_path = || service_id();
    let mut created = Map::new();
    created.insert(
        "Location".into(),
        json!({ "description": "/adm/services/{service_id}", "required": true, "schema": { "type": "string" } }),
    );
    paths.add(
        "post",
        "/services",
        admin(
            Operation::new(
                "createService",
                "Create a service with its keys",
                TAG_SERVICES,
            )
            .json_body(schema_ref("ServicePayload"))
            .answers_with(201, "Created.", schema_ref("Service"), created)
            .link(
                201,
                "GetService",
                "getService",
                json!({ "service_id": "$response.body#/service_id" }),
            )
            .link(
                201,
                "UpdateService",
                "updateService",
                json!({ "service_id": "$response.body#/service_id" }),
            )
            .link(
                201,
                "GetServiceKeys",
                "getServiceKeys",
                json!({ "service_id": "$response.body#/service_id" }),
            )
            .link(
                201,
                "RegenerateServiceKey",
                "regenerateServiceKey",
                json!({ "service_id": "$response.body#/service_id" }),
            )
            .problem(400, "A field breaks a rule (the detail names it).")
            .problem(409, "A service with this service_id exists."),
        ),
    );
    paths.add(
        "get",
        "/services",
        admin(
            Operation::new("listServices", "Every service", TAG_SERVICES).answers(
                200,
                "The services.",
                object(
                    &["items"],
                    json!({ "items": { "type": "array", "items": schema_ref("Service") } }),
                ),
            ),
        ),
    );
    paths.add(
        "get",
        "/services/{service_id}",
        admin(
            Operation::new("getService", "One service", TAG_SERVICES)
                .path("service_id", service_path())
                .answers(200, "The service.", schema_ref("Service"))
                .problem(400, "The service id is not valid.")
                .problem(404, "No such service."),
        ),
    );
    paths.add(
        "put",
        "/services/{service_id}",
        admin(
            Operation::new(
                "updateService",
                "Replace a service's fields (and groups, if given)",
                TAG_SERVICES,
            )
            .path("service_id", service_path())
            .json_body(schema_ref("ServicePayload"))
            .answers(200, "The service as stored.", schema_ref("Service"))
            .problem(
                400,
                "A field breaks a rule, or service_id does not match the path.",
            )
            .problem(404, "No such service.")
            .problem(409, "The service changed concurrently."),
        ),
    );
    paths.add(
        "get",
        "/services/{service_id}/keys",
        admin(
            Operation::new(
                "getServiceKeys",
                "A service's primary and secondary keys",
                TAG_SERVICES,
            )
            .path("service_id", service_path())
            .answers(200, "The keys.", schema_ref("Keys"))
            .problem(400, "The service id is not valid.")
            .problem(404, "No such service."),
        ),
    );
    paths.add(
        "put",
        "/services/{service_id}/keys",
        admin(
            Operation::new(
                "regenerateServiceKey",
                "Replace one key; the other keeps working",
                TAG_SERVICES,
            )
            .path("service_id", service_path())
            .json_body(closed_object(
                &["key_type"],
                json!({ "key_type": schemas::enum_of(&[KeySlot::Primary, KeySlot::Secondary]) }),
            ))
            .answers(200, "The keys, one of them new.", schema_ref("Keys"))
            .problem(400, "The service id is not valid.")
            .problem(404, "No such service."),
        ),
    );
    let callback_view = || {
        object(
            &["url"],
            json!({ "url": described(json!({ "type": "string" }), "Where signed status changes are POSTed.") }),
        )
    };
    paths.add(
        "put",
        "/services/{service_id}/callback",
        admin(
            Operation::new(
                "putServiceCallback",
                "Register where the service's status changes are POSTed",
                TAG_SERVICES,
            )
            .path("service_id", service_path())
            .json_body(closed_object(
                &["url"],
                json!({
                    "url": described(json!({ "type": "string", "maxLength": io_channels::webhook::MAX_URL_LEN }), "An absolute http(s) URL; private, loopback and link-local addresses are refused unless the configuration allows them."),
                    "rotate_secret": described(boolean(), "Generate a new signing secret (default: keep the current one)."),
                }),
            ))
            .answers(
                200,
                "The registration with its signing secret: IO-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>.",
                object(
                    &["url", "secret"],
                    json!({ "url": { "type": "string" }, "secret": { "type": "string", "pattern": "^[0-9a-f]{64}$" } }),
                ),
            )
            .problem(400, "The service id or the URL is not valid, or the URL is refused by the SSRF guard.")
            .problem(404, "No such service."),
        ),
    );
    paths.add(
        "get",
        "/services/{service_id}/callback",
        admin(
            Operation::new(
                "getServiceCallback",
                "A service's callback URL",
                TAG_SERVICES,
            )
            .path("service_id", service_path())
            .answers(
                200,
                "The registration (the secret is shown only when set).",
                callback_view(),
            )
            .problem(400, "The service id is not valid.")
            .problem(404, "No such service, or no callback."),
        ),
    );
    paths.add(
        "delete",
        "/services/{service_id}/callback",
        admin(
            Operation::new(
                "deleteServiceCallback",
                "Stop a service's callbacks",
                TAG_SERVICES,
            )
            .path("service_id", service_path())
            .answers(
                200,
                "The registration that was removed; unsent events are dropped.",
                callback_view(),
            )
            .problem(400, "The service id is not valid.")
            .problem(404, "No such service, or no callback."),
        ),
    );
    paths.add(
        "get",
        "/services/{service_id}/activations/{fiscal_code}",
        admin(
            Operation::new(
                "getServiceActivation",
                "A service's activation for a citizen",
                TAG_ACTIVATIONS,
            )
            .path("service_id", service_path())
            .path("fiscal_code", fiscal_code())
            .answers(200, "The activation.", schema_ref("Activation"))
            .problem(400, "The service id or the fiscal code is not valid.")
            .problem(404, "No such service, or no activation."),
        ),
    );
    paths.add(
        "put",
        "/activations",
        admin(
            Operation::new(
                "putActivation",
                "Set any service's activation for a citizen",
                TAG_ACTIVATIONS,
            )
            .json_body(schema_ref("AdminActivationInput"))
            .answers(
                200,
                "The activation as stored, with its new version.",
                schema_ref("Activation"),
            )
            .problem(400, "The service id or the fiscal code is not valid.")
            .problem(404, "No such service."),
        ),
    );
    paths.add(
        "put",
        "/profiles/{fiscal_code}/email-validation",
        admin(
            Operation::new(
                "validateEmail",
                "Mark a citizen's current email validated (stands in for the confirmation link)",
                TAG_SUPPORT,
            )
            .path("fiscal_code", fiscal_code())
            .answers(200, "The profile as stored.", json!({ "type": "object" }))
            .problem(400, "The fiscal code is not valid.")
            .problem(404, "No profile for this fiscal code.")
            .problem(409, "The profile has no email, or changed meanwhile.")
            .problem(412, "The address is already validated by another citizen."),
        ),
    );
    paths.add(
        "put",
        "/profiles/{fiscal_code}/digital-domicile",
        admin(
            Operation::new(
                "putDigitalDomicile",
                "Set or remove a citizen's digital domicile, as imported from the national registry (INAD)",
                TAG_SUPPORT,
            )
            .path("fiscal_code", fiscal_code())
            .json_body(closed_object(
                &["digital_domicile"],
                json!({
                    "digital_domicile": described(nullable(email_input()), "The PEC address; null removes it."),
                }),
            ))
            .answers(200, "The profile as stored.", json!({ "type": "object" }))
            .problem(400, "The fiscal code or the address is not valid.")
            .problem(404, "No profile for this fiscal code (a citizen without an IO profile receives nothing)."),
        ),
    );
    paths.add(
        "post",
        "/citizen-tokens",
        admin(
            Operation::new(
                "mintCitizenToken",
                "A citizen API bearer token, for development and tests",
                "citizens",
            )
            .json_body(fiscal_code_payload())
            .answers(
                200,
                "The token.",
                object(
                    &["token", "expires_in"],
                    json!({
                        "token": described(json!({ "type": "string" }), "HS256 JWT: Authorization: Bearer <token> on /app/v1."),
                        "expires_in": described(unsigned(), "Seconds."),
                    }),
                ),
            )
            .problem(400, "The fiscal code is not valid."),
        ),
    );
    let mut lookup = schemas::message_response_components()
        .into_iter()
        .find_map(|(name, schema)| (name == "MessageResponse").then_some(schema))
        .expect("MessageResponse is derived");
    lookup["properties"]["journal"] = journal_check();
    lookup["required"]
        .as_array_mut()
        .expect("an object schema lists its required properties")
        .push("journal".into());
    paths.add(
        "get",
        "/messages/{id}",
        admin(
            Operation::new(
                "lookupMessage",
                "Any message, its deliveries and the verification of its journal",
                TAG_SUPPORT,
            )
            .path("id", message_id())
            .answers(
                200,
                "The message with its journal check.",
                schema_ref("MessageLookup"),
            )
            .problem(400, "The id is not valid.")
            .problem(404, "No such message."),
        ),
    );
    paths.add(
        "get",
        "/messages/{id}/evidence",
        admin(
            Operation::new(
                "messageEvidence",
                "A message's evidence bundle: journal, head and PEC receipts, verifiable offline",
                TAG_SUPPORT,
            )
            .path("id", message_id())
            .answers(
                200,
                "The bundle (`io-server evidence export` writes it out, `io-server evidence verify` checks it).",
                object(
                    &["format", "message_id", "entries", "head", "receipts"],
                    json!({
                        "format": { "type": "string", "enum": [crate::evidence::FORMAT] },
                        "message_id": message_id(),
                        "entries": described(
                            json!({ "type": "array", "items": { "type": "string" } }),
                            "The journal's entries in their canonical JSON form, the bytes their hashes cover.",
                        ),
                        "head": object(&["seq", "hash"], json!({
                            "seq": unsigned(),
                            "hash": { "type": "string" },
                        })),
                        "receipts": {
                            "type": "array",
                            "items": object(&["sha256", "content_base64"], json!({
                                "sha256": { "type": "string" },
                                "content_base64": described(json!({ "type": "string" }), "The receipt exactly as the provider sent it."),
                            })),
                        },
                    }),
                ),
            )
            .problem(400, "The id is not valid.")
            .problem(404, "No such message."),
        ),
    );
    paths.add(
        "post",
        "/organizations/{organization_fiscal_code}/manage-keys",
        admin(
            Operation::new(
                "createManageKeys",
                "Issue an institution's manage keys (for /api/v1/manage/services)",
                TAG_MANAGE,
            )
            .path("organization_fiscal_code", organization_fiscal_code())
            .json_body(closed_object(
                &[],
                json!({ "groups": described(
                    json!({ "type": "array", "items": group() }),
                    "The groups the keys of the institution's new services get; default: ApiMessageWrite, ApiMessageRead, ApiLimitedProfileRead.",
                ) }),
            ))
            .answers(201, "The keys.", schema_ref("Keys"))
            .problem(400, "The organization fiscal code is not valid.")
            .problem(409, "The institution already has manage keys."),
        ),
    );
    paths.add(
        "get",
        "/organizations/{organization_fiscal_code}/manage-keys",
        admin(
            Operation::new("getManageKeys", "An institution's manage keys", TAG_MANAGE)
                .path("organization_fiscal_code", organization_fiscal_code())
                .answers(200, "The keys.", schema_ref("Keys"))
                .problem(400, "The organization fiscal code is not valid.")
                .problem(404, "The institution has no manage keys."),
        ),
    );
    paths.add(
        "put",
        "/organizations/{organization_fiscal_code}/manage-keys",
        admin(
            Operation::new(
                "regenerateManageKey",
                "Replace one of an institution's manage keys; the other keeps working",
                TAG_MANAGE,
            )
            .path("organization_fiscal_code", organization_fiscal_code())
            .json_body(closed_object(
                &["key_type"],
                json!({ "key_type": schemas::enum_of(&[KeySlot::Primary, KeySlot::Secondary]) }),
            ))
            .answers(200, "The keys, one of them new.", schema_ref("Keys"))
            .problem(400, "The organization fiscal code is not valid.")
            .problem(404, "The institution has no manage keys.")
            .problem(409, "Too many concurrent regenerations."),
        ),
    );
    paths.add(
        "get",
        "/reviews",
        admin(
            Operation::new(
                "listServiceReviews",
                "Every institution's drafts waiting for review, the longest waiting first",
                TAG_MANAGE,
            )
            .answers(
                200,
                "The queue (all of it: drafts under review are few).",
                schema_ref("ReviewQueue"),
            ),
        ),
    );
    paths.add(
        "get",
        "/services/{service_id}/review",
        admin(
            Operation::new(
                "getServiceReview",
                "A managed service's draft and review status",
                TAG_MANAGE,
            )
            .path("service_id", service_path())
            .answers(200, "The draft.", schema_ref("CmsServiceLifecycle"))
            .problem(400, "The service id is not valid.")
            .problem(404, "No such service managed by an institution."),
        ),
    );
    paths.add(
        "put",
        "/services/{service_id}/review",
        admin(
            Operation::new(
                "decideServiceReview",
                "Approve or reject a managed service's draft under review",
                TAG_MANAGE,
            )
            .describe("Approval publishes the service at once when its institution asked so (auto_publish); a rejection needs a reason, shown to the institution.")
            .path("service_id", service_path())
            .json_body(closed_object(
                &["decision"],
                json!({
                    "decision": { "type": "string", "enum": ["approve", "reject"] },
                    "reason": { "type": "string", "minLength": 1, "maxLength": 1000, "description": "Required to reject." }
                }),
            ))
            .answers(200, "The draft after the decision.", schema_ref("CmsServiceLifecycle"))
            .problem(400, "The service id is not valid, or a rejection without a reason.")
            .problem(404, "No such service managed by an institution (or it was deleted).")
            .problem(409, "The draft is not under review, or another change got in first."),
        ),
    );
    paths.add_document_route("admin API");

    let schemas = vec![
        ("ServicePayload", service_payload()),
        ("Service", service_view()),
        ("ServiceMetadata", service_metadata()),
        ("Keys", keys()),
        ("Activation", schemas::activation()),
        ("AdminActivationInput", schemas::activation_input(true)),
        ("MessageLookup", lookup),
        (
            "ReviewQueue",
            object(
                &["items"],
                json!({ "items": { "type": "array", "items": object(
                    &["service_id", "service_name", "organization_fiscal_code", "organization_name", "submitted_at", "auto_publish"],
                    json!({
                        "service_id": { "type": "string" },
                        "service_name": { "type": "string" },
                        "organization_fiscal_code": schemas::organization_fiscal_code(),
                        "organization_name": { "type": "string" },
                        "submitted_at": schemas::timestamp(),
                        "auto_publish": { "type": "boolean" }
                    }),
                ) } }),
            ),
        ),
    ];
    let mut schemas: Vec<(String, Value)> = schemas
        .into_iter()
        .map(|(name, schema)| (name.to_string(), schema))
        .collect();
    schemas.extend(super::manage::schemas());
    schemas.extend(schemas::message_response_components());
    document(Api {
        title: "io admin API",
        description: "Administration of io: services with their keys and permission groups, activations, citizen tokens for development, and a message lookup with journal verification. Errors are application/problem+json.",
        base_path: "/adm",
        security_scheme: (
            "AdminToken",
            json!({ "type": "http", "scheme": "bearer", "description": "The admin token (IO_ADMIN_TOKEN, or generated into the data directory on first start)." }),
        ),
        paths,
        schemas: schemas
            .into_iter()
            .map(|(name, schema)| (name.to_string(), schema))
            .collect(),
        headers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slots_and_groups_are_serde_names() {
        let document = admin_api_document();
        let body = &document["paths"]["/services/{service_id}/keys"]["put"]["requestBody"]["content"]
            ["application/json"]["schema"];
        assert_eq!(
            body["properties"]["key_type"]["enum"],
            json!(["PRIMARY_KEY", "SECONDARY_KEY"])
        );
        let groups = &document["components"]["schemas"]["Service"]["properties"]["groups"];
        assert_eq!(groups["items"]["enum"][0], "ApiMessageWrite");
    }
}
