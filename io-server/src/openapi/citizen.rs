//! The citizen API's document (`/app/v1`, `crate::citizen_api`).

use io_core::{
    BlockedChannel, Choice, PushNotificationsContentType, PushPlatform, ReminderStatus,
    RequestStatus, ServiceCategory, ServicePreferencesMode, ServiceScope,
};

use crate::citizen_api::catalogue;
use serde_json::{Value, json};

use super::schemas::{
    boolean, closed_object, described, email_input, fiscal_code, message_id, nullable, object,
    organization_fiscal_code, preferred_language, schema_ref, service_id, timestamp, unsigned,
    variants,
};
use super::{Api, Operation, Paths, document};

const TAG_PROFILE: &str = "profile";
const TAG_MESSAGES: &str = "messages";
const TAG_DEVICES: &str = "devices";
const TAG_PRIVACY: &str = "privacy";
const TAG_CATALOGUE: &str = "catalogue";

/// `GET /messages`'s `page_size` bounds and default (`citizen_api::list_messages`).
const PAGE_SIZE: (u64, u64, u64) = (1, 100, 25);
/// The longest device token (`citizen_api::put_installation`, in bytes).
const PUSH_CHANNEL_MAX: usize = 4096;
/// The longest installation id (`io_core::InstallationId::parse`).
const INSTALLATION_ID_MAX: usize = 128;

fn citizen(operation: Operation) -> Operation {
    operation
        .problem(
            401,
            "No Authorization: Bearer <token>, or a token that is malformed, forged, expired or not issued for this API.",
        )
        .store()
}

fn blocked_channels() -> Value {
    described(
        json!({
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": variants!(BlockedChannel: Inbox, Email, Webhook),
            },
        }),
        "LEGACY mode only: service id → the channels the citizen blocked for it.",
    )
}

fn mode() -> Value {
    variants!(ServicePreferencesMode: Legacy, Auto, Manual)
}

fn push_content() -> Value {
    variants!(PushNotificationsContentType: Full, Anonymous, Unset)
}

fn reminder() -> Value {
    variants!(ReminderStatus: Enabled, Disabled, Unset)
}

fn tos_version() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX })
}

/// `io_core::Profile` as stored and returned.
fn profile() -> Value {
    object(
        &[
            "fiscal_code",
            "is_inbox_enabled",
            "email",
            "is_email_validated",
            "is_email_enabled",
            "is_email_bounced",
            "is_webhook_enabled",
            "preferred_languages",
            "service_preferences_settings",
            "blocked_inbox_or_channels",
            "push_notifications_content_type",
            "reminder_status",
            "accepted_tos_version",
            "is_test_profile",
            "version",
        ],
        json!({
            "fiscal_code": fiscal_code(),
            "is_inbox_enabled": described(boolean(), "Master switch: false rejects every message."),
            "email": nullable(json!({ "type": "string" })),
            "is_email_validated": described(boolean(), "Reset whenever the email changes."),
            "is_email_enabled": boolean(),
            "is_email_bounced": described(boolean(), "The mail relay said the address does not exist: no email goes to it until it changes."),
            "is_webhook_enabled": described(boolean(), "Push notifications (IO's name)."),
            "preferred_languages": { "type": "array", "items": preferred_language() },
            "service_preferences_settings": object(
                &["mode", "version"],
                json!({
                    "mode": mode(),
                    "version": described(unsigned(), "Bumped by every mode change; preferences are valid for the current one only."),
                }),
            ),
            "blocked_inbox_or_channels": blocked_channels(),
            "push_notifications_content_type": push_content(),
            "reminder_status": reminder(),
            "accepted_tos_version": nullable(tos_version()),
            "is_test_profile": boolean(),
            "digital_domicile": described(json!({ "type": "string" }), "The citizen's digital domicile (a PEC address): messages with legal value go there by PEC. Absent when none."),
            "version": described(unsigned(), "0 on creation, +1 on each accepted update."),
        }),
    )
}

/// `citizen_api::ProfilePayload`: every field optional; read-only fields are ignored.
fn profile_update() -> Value {
    let ignored = |schema: Value| described(schema, "Read-only; ignored.");
    closed_object(
        &[],
        json!({
            "is_inbox_enabled": boolean(),
            "email": described(email_input(), "A new address is unvalidated until confirmed; an address another citizen validated is refused (412)."),
            "is_email_enabled": boolean(),
            "is_webhook_enabled": boolean(),
            "preferred_languages": { "type": "array", "items": preferred_language() },
            "service_preferences_settings": closed_object(
                &["mode"],
                json!({ "mode": mode(), "version": ignored(unsigned()) }),
            ),
            "blocked_inbox_or_channels": blocked_channels(),
            "push_notifications_content_type": push_content(),
            "reminder_status": reminder(),
            "accepted_tos_version": tos_version(),
            "digital_domicile": described(nullable(email_input()), "The digital domicile (a PEC address); null removes it."),
            "version": described(unsigned(), "Required to update an existing profile: the version the update is based on (409 if stale)."),
            "fiscal_code": ignored(json!({ "type": "string" })),
            "is_email_validated": ignored(boolean()),
            "is_email_bounced": ignored(boolean()),
            "is_test_profile": ignored(boolean()),
        }),
    )
}

/// `io_core::ServicePreference`.
fn preference() -> Value {
    object(
        &[
            "service_id",
            "settings_version",
            "is_inbox_enabled",
            "is_email_enabled",
            "is_webhook_enabled",
            "can_access_message_read_status",
        ],
        json!({
            "service_id": service_id(),
            "settings_version": described(unsigned(), "Must be the profile's service_preferences_settings.version (409 otherwise)."),
            "is_inbox_enabled": boolean(),
            "is_email_enabled": boolean(),
            "is_webhook_enabled": boolean(),
            "can_access_message_read_status": boolean(),
        }),
    )
}

fn ttl() -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": 0 })
}

/// `citizen_api::Page` of `InboxItem`s.
fn inbox_page() -> Value {
    let item = object(
        &[
            "id",
            "fiscal_code",
            "created_at",
            "sender_service_id",
            "time_to_live",
            "service_name",
            "organization_name",
            "message_title",
            "is_read",
            "is_archived",
        ],
        json!({
            "id": message_id(),
            "fiscal_code": fiscal_code(),
            "created_at": timestamp(),
            "sender_service_id": service_id(),
            "time_to_live": ttl(),
            "service_name": nullable(json!({ "type": "string" })),
            "organization_name": nullable(json!({ "type": "string" })),
            "message_title": { "type": "string" },
            "is_read": boolean(),
            "is_archived": boolean(),
        }),
    );
    object(
        &["items"],
        json!({
            "items": { "type": "array", "items": item },
            "next": described(message_id(), "Present when older messages exist: pass it as maximum_id."),
            "prev": described(message_id(), "The newest item's id: pass it as minimum_id for newer messages."),
        }),
    )
}

/// `citizen_api::CitizenMessage`.
fn citizen_message() -> Value {
    object(
        &[
            "id",
            "fiscal_code",
            "created_at",
            "sender_service_id",
            "time_to_live",
            "content",
            "is_read",
            "is_archived",
        ],
        json!({
            "id": message_id(),
            "fiscal_code": fiscal_code(),
            "created_at": timestamp(),
            "sender_service_id": service_id(),
            "time_to_live": ttl(),
            "content": schema_ref("MessageContent"),
            "is_read": boolean(),
            "is_archived": boolean(),
        }),
    )
}

fn message_flags() -> Value {
    object(
        &["is_read", "is_archived"],
        json!({ "is_read": boolean(), "is_archived": boolean() }),
    )
}

fn status_change() -> Value {
    closed_object(
        &["change_type"],
        json!({
            "change_type": {
                "type": "string",
                "enum": ["reading", "archiving", "bulk"],
                "description": "reading needs is_read, archiving needs is_archived, bulk takes either."
            },
            "is_read": described(boolean(), "Reading is one-way: true → false is refused (400)."),
            "is_archived": boolean(),
        }),
    )
}

fn installation_id() -> Value {
    json!({
        "type": "string",
        "pattern": format!("^[A-Za-z0-9._-]{{1,{INSTALLATION_ID_MAX}}}$"),
        "example": "device-1"
    })
}

fn choice() -> Value {
    let mut schema = variants!(Choice: Download, Delete);
    schema["example"] = json!("DOWNLOAD");
    schema
}

fn data_request() -> Value {
    object(
        &["choice", "status", "created_at", "updated_at"],
        json!({
            "choice": choice(),
            "status": variants!(RequestStatus: Pending, Wip, Closed, Failed, Aborted),
            "created_at": timestamp(),
            "updated_at": timestamp(),
        }),
    )
}

fn data_archive() -> Value {
    let list = || json!({ "type": "array", "items": { "type": "object" } });
    object(
        &[
            "fiscal_code",
            "generated_at",
            "profile",
            "service_preferences",
            "installations",
            "activations",
            "messages",
        ],
        json!({
            "fiscal_code": fiscal_code(),
            "generated_at": timestamp(),
            "profile": { "type": ["object", "null"] },
            "service_preferences": list(),
            "installations": list(),
            "activations": list(),
            "messages": list(),
        }),
    )
}

/// A page of `item` (`citizen_api::catalogue::Page`).
fn catalogue_page(item: Value) -> Value {
    object(
        &["items", "count", "offset", "limit"],
        json!({
            "items": { "type": "array", "items": item },
            "count": described(unsigned(), "Every item matching, over all pages."),
            "offset": unsigned(),
            "limit": unsigned(),
        }),
    )
}

fn scope() -> Value {
    variants!(ServiceScope: National, Local)
}

fn institutions_page() -> Value {
    catalogue_page(object(
        &["fiscal_code", "name", "services"],
        json!({
            "fiscal_code": organization_fiscal_code(),
            "name": { "type": "string" },
            "services": described(unsigned(), "How many of its services are visible."),
        }),
    ))
}

fn services_page() -> Value {
    catalogue_page(object(
        &["service_id", "service_name", "department_name", "scope"],
        json!({
            "service_id": service_id(),
            "service_name": { "type": "string" },
            "department_name": { "type": "string" },
            "scope": scope(),
            "topic": schema_ref("Topic"),
        }),
    ))
}

/// The `topic` query parameter.
fn topic_query() -> Value {
    described(
        json!({ "type": "integer", "minimum": 0, "maximum": io_core::TOPICS.len() - 1 }),
        "A topic id (listTopics): keeps the services of that topic.",
    )
}

fn topic() -> Value {
    object(
        &["id", "name"],
        json!({
            "id": { "type": "integer", "minimum": 0, "maximum": io_core::TOPICS.len() - 1 },
            "name": { "type": "string", "example": "Benessere sociale" },
        }),
    )
}

fn service_details() -> Value {
    let text = || json!({ "type": "string" });
    object(
        &[
            "service_id",
            "service_name",
            "department_name",
            "organization",
            "scope",
            "category",
            "contacts",
            "version",
        ],
        json!({
            "service_id": service_id(),
            "service_name": text(),
            "department_name": text(),
            "organization": object(&["name", "fiscal_code"], json!({
                "name": text(),
                "fiscal_code": organization_fiscal_code(),
            })),
            "scope": scope(),
            "category": variants!(ServiceCategory: Standard, Special),
            "topic": schema_ref("Topic"),
            "description": text(),
            "contacts": object(&[], json!({
                "web_url": text(),
                "support_url": text(),
                "email": text(),
                "pec": text(),
                "phone": text(),
                "address": text(),
            })),
            "privacy_url": text(),
            "tos_url": text(),
            "version": unsigned(),
        }),
    )
}

/// The OpenAPI document of the citizen API (`/app/v1`).
pub fn citizen_api_document() -> Value {
    let mut paths = Paths::default();
    paths.add(
        "get",
        "/profile",
        citizen(
            Operation::new("getProfile", "The citizen's profile", TAG_PROFILE)
                .answers(200, "The profile.", schema_ref("Profile"))
                .problem(404, "No profile yet: create it with POST /profile."),
        ),
    );
    paths.add(
        "post",
        "/profile",
        citizen(
            Operation::new(
                "upsertProfile",
                "Create the profile, or update it from its current version",
                TAG_PROFILE,
            )
            .json_body(schema_ref("ProfileUpdate"))
            .answers(200, "The profile as stored.", schema_ref("Profile"))
            .problem(
                400,
                "A field is not valid, or version is missing on an update.",
            )
            .problem(409, "version is not the current one.")
            .problem(412, "The email is already validated by another citizen."),
        ),
    );
    let paging = |operation: Operation| {
        operation
            .query(
                "offset",
                json!({ "type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0 }),
            )
            .query(
                "limit",
                json!({ "type": "integer", "minimum": catalogue::LIMIT.0, "maximum": catalogue::LIMIT.1, "default": catalogue::LIMIT.2 }),
            )
    };
    paths.add(
        "get",
        "/institutions",
        citizen(
            paging(
                Operation::new(
                    "listInstitutions",
                    "The institutions with services citizens can see, by name",
                    TAG_CATALOGUE,
                )
                .query(
                    "search",
                    described(
                        json!({ "type": "string", "maxLength": catalogue::SEARCH_MAX }),
                        "Part of the institution's name or of one of its services' names or descriptions (case ignored).",
                    ),
                )
                .query("scope", variants!(ServiceScope: National, Local))
                .query("topic", topic_query()),
            )
            .answers(200, "One page.", schema_ref("InstitutionsPage"))
            .problem(400, "A query parameter is not valid."),
        ),
    );
    paths.add(
        "get",
        "/institutions/{fiscal_code}/services",
        citizen(
            paging(Operation::new(
                "listInstitutionServices",
                "An institution's services citizens can see, by name",
                TAG_CATALOGUE,
            ))
            .path("fiscal_code", organization_fiscal_code())
            .query("topic", topic_query())
            .answers(200, "One page.", schema_ref("ServicesPage"))
            .problem(400, "The fiscal code or a query parameter is not valid.")
            .problem(
                404,
                "No institution with visible services has this fiscal code.",
            ),
        ),
    );
    paths.add(
        "get",
        "/institutions/{fiscal_code}/logo",
        citizen(
            Operation::new(
                "getInstitutionLogo",
                "The logo an institution with visible services uploaded",
                TAG_CATALOGUE,
            )
            .path("fiscal_code", organization_fiscal_code())
            .answers_file(200, "The PNG image.", "image/png")
            .problem(400, "The fiscal code is not valid.")
            .problem(
                404,
                "No institution with visible services has this fiscal code, or it has no logo.",
            ),
        ),
    );
    paths.add(
        "get",
        "/topics",
        citizen(
            Operation::new(
                "listTopics",
                "The topics services are filed under (the catalogue's topic filter)",
                TAG_CATALOGUE,
            )
            .answers(200, "Every topic, by id.", schema_ref("TopicList")),
        ),
    );
    paths.add(
        "get",
        "/services/{service_id}/logo",
        citizen(
            Operation::new(
                "getServiceLogo",
                "A visible service's logo, or its institution's when it has none",
                TAG_CATALOGUE,
            )
            .path("service_id", service_id())
            .answers_file(200, "The PNG image.", "image/png")
            .problem(400, "The service id is not valid.")
            .problem(
                404,
                "No visible service has this id, or neither it nor its institution has a logo.",
            ),
        ),
    );
    paths.add(
        "get",
        "/services/{service_id}",
        citizen(
            Operation::new(
                "getService",
                "A service's details: scope, contacts, privacy and terms",
                TAG_CATALOGUE,
            )
            .path("service_id", service_id())
            .answers(200, "The service.", schema_ref("ServiceDetails"))
            .problem(400, "The service id is not valid.")
            .problem(404, "No visible service has this id."),
        ),
    );
    let preference_path = "/services/{service_id}/preferences";
    paths.add(
        "get",
        preference_path,
        citizen(
            Operation::new(
                "getServicePreference",
                "The citizen's preference for one service (the defaults when none is stored)",
                TAG_PROFILE,
            )
            .path("service_id", service_id())
            .answers(200, "The preference.", schema_ref("ServicePreference"))
            .problem(400, "The service id is not valid.")
            .problem(404, "No such service, or no profile.")
            .problem(
                409,
                "The profile is in LEGACY mode: per-service preferences are not used.",
            ),
        ),
    );
    paths.add(
        "post",
        preference_path,
        citizen(
            Operation::new(
                "upsertServicePreference",
                "Set the citizen's preference for one service",
                TAG_PROFILE,
            )
            .path("service_id", service_id())
            .json_body(schema_ref("ServicePreference"))
            .answers(200, "The preference as stored.", schema_ref("ServicePreference"))
            .problem(400, "The service id is not valid or does not match the path.")
            .problem(404, "No such service, or no profile.")
            .problem(
                409,
                "The profile is in LEGACY mode, or settings_version is not the profile's current one.",
            ),
        ),
    );
    paths.add(
        "get",
        "/messages",
        citizen(
            Operation::new(
                "listMessages",
                "The inbox, newest first, one page at a time",
                TAG_MESSAGES,
            )
            .describe("Only PROCESSED messages are in the inbox. Cursors are message ids (exclusive).")
            .query(
                "page_size",
                json!({ "type": "integer", "minimum": PAGE_SIZE.0, "maximum": PAGE_SIZE.1, "default": PAGE_SIZE.2 }),
            )
            .query("maximum_id", described(message_id(), "Only messages older than this id."))
            .query("minimum_id", described(message_id(), "Only messages newer than this id."))
            .query("archived", json!({ "type": "boolean", "default": false }))
            .answers(200, "One page.", schema_ref("InboxPage"))
            .link(200, "GetNewestMessage", "getMessage", json!({ "id": "$response.body#/items/0/id" }))
            .link(200, "ReadNewestMessage", "putMessageStatus", json!({ "id": "$response.body#/items/0/id" }))
            .problem(400, "A query parameter is not valid."),
        ),
    );
    paths.add(
        "get",
        "/messages/{id}",
        citizen(
            Operation::new(
                "getMessage",
                "One message of the citizen's inbox",
                TAG_MESSAGES,
            )
            .path("id", message_id())
            .answers(200, "The message.", schema_ref("CitizenMessage"))
            .problem(400, "The id is not valid.")
            .problem(404, "No such message in the citizen's inbox."),
        ),
    );
    paths.add(
        "get",
        "/third-party-messages/{id}",
        citizen(
            Operation::new(
                "getThirdPartyMessage",
                "A message's details, read now from its sender's server (remote contents)",
                TAG_MESSAGES,
            )
            .path("id", message_id())
            .answers(200, "The sender's answer.", schema_ref("ThirdPartyMessage"))
            .problem(400, "The id is not valid.")
            .problem(404, "No such message in the citizen's inbox, or it has no details on its sender's server, or its configuration has no environment for this citizen.")
            .problem(502, "The sender's server could not be reached, answered other than 200, or answered what is not a JSON object of at most 1 MiB (the detail says which; Retry-After when retrying may help).")
            .problem(503, "As many reads of this sender's server are in flight as io allows ([remote_contents] max_concurrent_reads): retry after Retry-After.")
            .problem(504, "The sender's server did not answer in time (Retry-After)."),
        ),
    );
    paths.add(
        "put",
        "/messages/{id}/message-status",
        citizen(
            Operation::new(
                "putMessageStatus",
                "Mark a message read (one-way) or (un)archived",
                TAG_MESSAGES,
            )
            .path("id", message_id())
            .json_body(schema_ref("MessageStatusChange"))
            .answers(200, "The message's flags.", schema_ref("MessageFlags"))
            .problem(
                400,
                "The id is not valid, a flag the change_type needs is missing, or a read message would become unread.",
            )
            .problem(404, "No such message in the citizen's inbox."),
        ),
    );
    paths.add(
        "put",
        "/installations/{installation_id}",
        citizen(
            Operation::new(
                "putInstallation",
                "Register a device for push notifications",
                TAG_DEVICES,
            )
            .path("installation_id", installation_id())
            .json_body(closed_object(
                &["platform", "push_channel"],
                json!({
                    "platform": variants!(PushPlatform: Apns, Fcmv1),
                    "push_channel": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": PUSH_CHANNEL_MAX,
                        "description": format!("The device token, 1 to {PUSH_CHANNEL_MAX} bytes after trimming.")
                    },
                }),
            ))
            .answers(
                200,
                "The installation.",
                object(
                    &["installation_id", "platform"],
                    json!({
                        "installation_id": installation_id(),
                        "platform": variants!(PushPlatform: Apns, Fcmv1),
                    }),
                ),
            )
            .problem(400, "The installation id or the device token is not valid."),
        ),
    );
    let choice_path = "/user-data-processing/{choice}";
    paths.add(
        "post",
        "/user-data-processing",
        citizen(
            Operation::new(
                "requestDataProcessing",
                "Ask for a copy of all your data (DOWNLOAD) or its erasure (DELETE)",
                TAG_PRIVACY,
            )
            .describe("A DELETE waits the configured grace period (IO: 6 days) and can be aborted meanwhile; then content and personal data are erased, the evidence journals keep only the hashed fiscal code.")
            .json_body(closed_object(&["choice"], json!({ "choice": choice() })))
            .answers(201, "The request.", schema_ref("DataRequest"))
            .problem(409, "A request of this choice is already PENDING or WIP."),
        ),
    );
    paths.add(
        "get",
        choice_path,
        citizen(
            Operation::new(
                "getDataProcessing",
                "Where a GDPR request stands",
                TAG_PRIVACY,
            )
            .path("choice", choice())
            .answers(200, "The request.", schema_ref("DataRequest"))
            .problem(400, "The choice is not DOWNLOAD or DELETE.")
            .problem(404, "No request of this choice."),
        ),
    );
    paths.add(
        "delete",
        choice_path,
        citizen(
            Operation::new(
                "abortDataProcessing",
                "Abort a PENDING DELETE request",
                TAG_PRIVACY,
            )
            .path("choice", choice())
            .answers(200, "The request, ABORTED.", schema_ref("DataRequest"))
            .problem(400, "The choice is not DOWNLOAD or DELETE.")
            .problem(404, "No request of this choice.")
            .problem(409, "Only a PENDING DELETE request can be aborted."),
        ),
    );
    paths.add(
        "get",
        "/user-data-processing/DOWNLOAD/archive",
        citizen(
            Operation::new(
                "getDataArchive",
                "The archive of all your data, once the DOWNLOAD request is CLOSED (kept 15 days)",
                TAG_PRIVACY,
            )
            .answers(200, "The archive.", schema_ref("DataArchive"))
            .problem(
                404,
                "No DOWNLOAD request, or its archive is older than 15 days.",
            )
            .problem(409, "The DOWNLOAD request is not CLOSED yet."),
        ),
    );
    paths.add_document_route("citizen API");

    let schemas = vec![
        ("Profile", profile()),
        ("ProfileUpdate", profile_update()),
        ("ServicePreference", preference()),
        ("InboxPage", inbox_page()),
        ("CitizenMessage", citizen_message()),
        ("MessageStatusChange", status_change()),
        ("MessageFlags", message_flags()),
        ("DataRequest", data_request()),
        ("DataArchive", data_archive()),
        ("InstitutionsPage", institutions_page()),
        ("ServicesPage", services_page()),
        ("ServiceDetails", service_details()),
        ("Topic", topic()),
        (
            "TopicList",
            object(
                &["topics"],
                json!({ "topics": { "type": "array", "items": schema_ref("Topic") } }),
            ),
        ),
        (
            "ThirdPartyMessage",
            object(
                &["id", "third_party_message"],
                json!({
                    "id": message_id(),
                    "third_party_message": described(
                        json!({ "type": "object" }),
                        "What the sender's server answered (IO's ThirdPartyMessage: details, attachments).",
                    ),
                }),
            ),
        ),
    ];
    let mut schemas: Vec<(String, Value)> = schemas
        .into_iter()
        .map(|(name, schema)| (name.to_string(), schema))
        .collect();
    // The parts of a message (its content); the Services API's MessageResponse is not answered here.
    schemas.extend(
        super::schemas::message_response_components()
            .into_iter()
            .filter(|(name, _)| name != "MessageResponse"),
    );
    document(Api {
        title: "io citizen API",
        description: "What the app calls on behalf of one citizen (io-reference §7): profile, per-service preferences, inbox, message status, devices. A citizen sees only their own data: another citizen's message is not found. Errors are application/problem+json.",
        base_path: "/app/v1",
        security_scheme: (
            "CitizenToken",
            json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A citizen token (minted by POST /adm/citizen-tokens in development)." }),
        ),
        paths,
        schemas: schemas
            .into_iter()
            .map(|(name, schema)| (name.to_string(), schema))
            .collect(),
        headers: Vec::new(),
    })
}
