//! The Services API against IO's contract: every operation of IO's published Services API
//! (pagopa/io-functions-services, `openapi/index.yaml`, API version 4.0.0) must be in the
//! document io derives from its code (`/api/v1/openapi.json`), at IO's path and method, with
//! IO's operation id, IO's parameters, IO's status codes and IO's required body fields.
//!
//! The table below is written by us from the facts of IO's document (paths, methods, operation
//! ids, parameters, status codes, names of required fields); none of its text is copied.
//!
//! What is checked, for each IO operation:
//! - the path (with IO's template names: `{fiscal_code}`, `{serviceId}`, IO's trailing slash
//!   on `/activations/`) and the method are in io's document;
//! - the operation id is IO's;
//! - every parameter IO has is in io's document, in the same place; a required one is required
//!   in io too; an optional one is optional in io too (io requiring it would refuse calls IO
//!   accepts);
//! - IO's API key header (`Ocp-Apim-Subscription-Key`) is what io's security scheme asks for;
//! - IO's body: io takes one (IO's required ⇒ io's required), and the required fields at the
//!   top level of its schema are IO's, no fewer and no more;
//! - IO's success code is io's only 2xx code, with a JSON body where IO's has one;
//! - each 4xx and 5xx code IO documents is documented by io.
//!
//! Where io may be stricter than IO without it being a mismatch:
//! - extra operations, parameters, status codes (400, 409, 413, 415, 503…) and body fields
//!   are io's own and not checked;
//! - a body IO leaves optional (Swagger 2.0's default for `in: body`) may be required by io,
//!   which then answers 400 or 415 as problem+json for a call without one;
//! - io's error answers are `application/problem+json` (IO documents them as application/json
//!   or without a body): media types of errors are not compared.
//!
//! Anything else io does differently is a mismatch unless it is in [`DEVIATIONS`], each with its
//! reason; a deviation that no longer applies is reported too, so the list stays true.
//! Descriptions are never compared. The test reports every mismatch at once.

mod support;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::*;

/// Where a parameter is (IO's only header is its API key, checked through the security scheme).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    Path,
    Query,
}

impl In {
    fn name(self) -> &'static str {
        match self {
            In::Path => "path",
            In::Query => "query",
        }
    }
}

/// One parameter of an IO operation (not the body).
struct Param {
    name: &'static str,
    location: In,
    required: bool,
}

const fn path(name: &'static str) -> Param {
    Param {
        name,
        location: In::Path,
        required: true,
    }
}

const fn optional_query(name: &'static str) -> Param {
    Param {
        name,
        location: In::Query,
        required: false,
    }
}

/// IO's request body: whether IO requires one, and the required fields at the top level of its
/// schema (`$ref`s and `allOf`s resolved).
struct Body {
    required: bool,
    required_fields: &'static [&'static str],
}

/// IO's success answer: its code and whether it has a JSON body.
#[derive(Clone, Copy)]
enum Success {
    Json(u16),
    Empty(u16),
}

impl Success {
    fn code(self) -> u16 {
        match self {
            Success::Json(code) | Success::Empty(code) => code,
        }
    }
}

/// The header IO's API keys travel in (both of IO's security schemes, `SubscriptionKey` and
/// `ManageSubscriptionKey`, are an apiKey in this header).
const KEY: &str = "Ocp-Apim-Subscription-Key";

/// One operation of IO's Services API.
struct IoOperation {
    method: &'static str,
    path: &'static str,
    operation_id: &'static str,
    params: &'static [Param],
    body: Option<Body>,
    success: Success,
    /// The 4xx and 5xx codes IO documents.
    errors: &'static [u16],
    /// The API key header IO asks for (`None`: IO's operation declares no security).
    key: Option<&'static str>,
}

const NEW_MESSAGE: Body = Body {
    required: false,
    required_fields: &["content"],
};
const FISCAL_CODE_PAYLOAD: Body = Body {
    required: false,
    required_fields: &["fiscal_code"],
};
const CMS_SERVICE_PAYLOAD: Body = Body {
    required: true,
    required_fields: &["name", "description", "organization", "metadata"],
};
const LOGO: Body = Body {
    required: true,
    required_fields: &["logo"],
};
const NEW_RC_CONFIGURATION: Body = Body {
    required: true,
    required_fields: &[
        "name",
        "description",
        "has_precondition",
        "is_lollipop_enabled",
        "disable_lollipop_for",
    ],
};

/// IO's 27 operations, in the order of IO's document.
const IO_OPERATIONS: &[IoOperation] = &[
    IoOperation {
        method: "POST",
        path: "/messages",
        operation_id: "submitMessageforUserWithFiscalCodeInBody",
        params: &[],
        body: Some(NEW_MESSAGE),
        success: Success::Json(201),
        errors: &[400, 401, 403, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "POST",
        path: "/messages/{fiscal_code}",
        operation_id: "submitMessageforUser",
        params: &[path("fiscal_code")],
        body: Some(NEW_MESSAGE),
        success: Success::Json(201),
        errors: &[400, 401, 403, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "GET",
        path: "/messages/{fiscal_code}/{id}",
        operation_id: "getMessage",
        params: &[path("fiscal_code"), path("id")],
        body: None,
        success: Success::Json(200),
        errors: &[401, 403, 404, 429],
        key: Some(KEY),
    },
    IoOperation {
        method: "POST",
        path: "/profiles",
        operation_id: "getProfileByPOST",
        params: &[],
        body: Some(FISCAL_CODE_PAYLOAD),
        success: Success::Json(200),
        errors: &[401, 403, 404, 429],
        key: Some(KEY),
    },
    IoOperation {
        method: "GET",
        path: "/profiles/{fiscal_code}",
        operation_id: "getProfile",
        params: &[path("fiscal_code")],
        body: None,
        success: Success::Json(200),
        errors: &[401, 403, 404, 429],
        key: Some(KEY),
    },
    IoOperation {
        method: "GET",
        path: "/subscriptions-feed/{date}",
        operation_id: "getSubscriptionsFeedForDate",
        params: &[path("date")],
        body: None,
        success: Success::Json(200),
        errors: &[401, 403, 404, 429],
        key: Some(KEY),
    },
    IoOperation {
        method: "PUT",
        path: "/organizations/{organization_fiscal_code}/logo",
        operation_id: "uploadOrganizationLogo",
        params: &[path("organization_fiscal_code")],
        body: Some(LOGO),
        success: Success::Empty(202),
        errors: &[400, 401, 403, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "POST",
        path: "/activations/",
        operation_id: "getServiceActivationByPOST",
        params: &[],
        body: Some(FISCAL_CODE_PAYLOAD),
        success: Success::Json(200),
        errors: &[401, 403, 404, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "PUT",
        path: "/activations/",
        operation_id: "upsertServiceActivation",
        params: &[],
        body: Some(Body {
            required: false,
            required_fields: &["fiscal_code", "status"],
        }),
        success: Success::Json(200),
        errors: &[401, 403, 404, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "POST",
        path: "/manage/services",
        operation_id: "cmsCreateService",
        params: &[],
        body: Some(CMS_SERVICE_PAYLOAD),
        success: Success::Json(201),
        errors: &[400, 401, 403, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "GET",
        path: "/manage/services",
        operation_id: "cmsGetServices",
        params: &[optional_query("limit"), optional_query("offset")],
        body: None,
        success: Success::Json(200),
        errors: &[401, 403, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "GET",
        path: "/manage/services/topics",
        operation_id: "getServiceTopics",
        params: &[],
        body: None,
        success: Success::Json(200),
        errors: &[401, 403, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "GET",
        path: "/manage/services/{serviceId}",
        operation_id: "cmsGetService",
        params: &[path("serviceId")],
        body: None,
        success: Success::Json(200),
        errors: &[401, 403, 404, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "PUT",
        path: "/manage/services/{serviceId}",
        operation_id: "cmsUpdateService",
        params: &[path("serviceId")],
        body: Some(CMS_SERVICE_PAYLOAD),
        success: Success::Json(200),
        errors: &[400, 401, 403, 404, 409, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "DELETE",
        path: "/manage/services/{serviceId}",
        operation_id: "cmsDeleteService",
        params: &[path("serviceId")],
        body: None,
        success: Success::Empty(204),
        errors: &[401, 403, 404, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "PUT",
        path: "/manage/services/{serviceId}/logo",
        operation_id: "cmsUpdateServiceLogo",
        params: &[path("serviceId")],
        body: Some(LOGO),
        success: Success::Empty(204),
        errors: &[400, 401, 403, 404, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "GET",
        path: "/manage/services/{serviceId}/history",
        operation_id: "cmsGetServiceHistory",
        params: &[
            path("serviceId"),
            optional_query("order"),
            optional_query("limit"),
            optional_query("continuationToken"),
        ],
        body: None,
        success: Success::Json(200),
        errors: &[401, 403, 404, 429, 500],
        // IO's document gives this one operation no security requirement.
        key: None,
    },
    IoOperation {
        method: "GET",
        path: "/manage/services/{serviceId}/keys",
        operation_id: "cmsGetServiceKeys",
        params: &[path("serviceId")],
        body: None,
        success: Success::Json(200),
        errors: &[401, 403, 404, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "PUT",
        path: "/manage/services/{serviceId}/keys/{keyType}",
        operation_id: "cmsRegenerateServiceKey",
        params: &[path("serviceId"), path("keyType")],
        body: None,
        success: Success::Json(200),
        errors: &[400, 401, 403, 404, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "PUT",
        path: "/manage/services/{serviceId}/review",
        operation_id: "cmsReviewService",
        params: &[path("serviceId")],
        body: Some(Body {
            required: false,
            required_fields: &["auto_publish"],
        }),
        success: Success::Empty(204),
        errors: &[401, 403, 404, 409, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "POST",
        path: "/manage/services/{serviceId}/release",
        operation_id: "cmsReleaseService",
        params: &[path("serviceId")],
        body: None,
        success: Success::Empty(204),
        errors: &[401, 403, 404, 409, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "GET",
        path: "/manage/services/{serviceId}/release",
        operation_id: "cmsGetPublishedService",
        params: &[path("serviceId")],
        body: None,
        success: Success::Json(200),
        errors: &[401, 403, 404, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "DELETE",
        path: "/manage/services/{serviceId}/release",
        operation_id: "cmsUnpublishService",
        params: &[path("serviceId")],
        body: None,
        success: Success::Empty(204),
        errors: &[401, 403, 404, 429, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "POST",
        path: "/messages-sending/remote-contents/configurations",
        operation_id: "createRCConfiguration",
        params: &[],
        body: Some(NEW_RC_CONFIGURATION),
        success: Success::Json(201),
        errors: &[400, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "GET",
        path: "/messages-sending/remote-contents/configurations",
        operation_id: "listRCConfiguration",
        params: &[],
        body: None,
        success: Success::Json(200),
        errors: &[400, 403, 404, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "GET",
        path: "/messages-sending/remote-contents/configurations/{configurationId}",
        operation_id: "getRCConfiguration",
        params: &[path("configurationId")],
        body: None,
        success: Success::Json(200),
        errors: &[400, 403, 404, 500],
        key: Some(KEY),
    },
    IoOperation {
        method: "PUT",
        path: "/messages-sending/remote-contents/configurations/{configurationId}",
        operation_id: "updateRCConfiguration",
        params: &[path("configurationId")],
        body: Some(NEW_RC_CONFIGURATION),
        success: Success::Empty(204),
        errors: &[400, 403, 404, 500],
        key: Some(KEY),
    },
];

/// A way io's document may differ from IO's for one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowed {
    /// io does not document this code of IO's.
    Undocumented(u16),
}

/// A deliberate difference from IO, with its reason.
struct Deviation {
    operation_id: &'static str,
    allowed: Allowed,
    why: &'static str,
}

/// io's deliberate differences from IO's document (by IO's operation id). Keep it short: each
/// entry is a decision, not a way to silence the test.
const DEVIATIONS: &[Deviation] = &[
    Deviation {
        operation_id: "upsertServiceActivation",
        allowed: Allowed::Undocumented(404),
        why: "an upsert creates the activation it does not find: io has no not-found answer and documents only what it can answer",
    },
    Deviation {
        operation_id: "listRCConfiguration",
        allowed: Allowed::Undocumented(404),
        why: "an institution without configurations gets an empty list, not a 404",
    },
    Deviation {
        operation_id: "listRCConfiguration",
        allowed: Allowed::Undocumented(400),
        why: "the listing takes no parameter and no body: there is nothing io could refuse with a 400",
    },
];

/// A schema with its `$ref`s followed (`#/components/schemas/...` of `document`).
fn resolve<'a>(document: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        schema = target
            .strip_prefix('#')
            .and_then(|pointer| document.pointer(pointer))
            .unwrap_or(&Value::Null);
    }
    schema
}

/// The required fields at the top level of `schema` (`$ref`s and `allOf` resolved).
fn required_fields(document: &Value, schema: &Value) -> BTreeSet<String> {
    let schema = resolve(document, schema);
    let mut fields: BTreeSet<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        fields.extend(required_fields(document, part));
    }
    fields
}

/// The header names of the apiKey schemes io's `operation` accepts (its own `security`, or the
/// document's).
fn key_headers(document: &Value, operation: &Value) -> BTreeSet<String> {
    let requirements = operation
        .get("security")
        .or_else(|| document.get("security"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    requirements
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|requirement| requirement.keys())
        .filter_map(|scheme| document["components"]["securitySchemes"].get(scheme))
        .filter(|scheme| scheme["type"] == "apiKey" && scheme["in"] == "header")
        .filter_map(|scheme| scheme["name"].as_str().map(str::to_ascii_lowercase))
        .collect()
}

/// The mismatches of io's `document` against IO's table, and the deviations that were used.
struct Report {
    mismatches: Vec<String>,
    used: BTreeSet<usize>,
}

impl Report {
    /// Records `problem` for `io` unless a deviation of `io` satisfies `allows`.
    fn unless_allowed(
        &mut self,
        io: &IoOperation,
        allows: impl Fn(Allowed) -> bool,
        problem: String,
    ) {
        match DEVIATIONS
            .iter()
            .position(|d| d.operation_id == io.operation_id && allows(d.allowed))
        {
            Some(index) => {
                self.used.insert(index);
            }
            None => self.mismatch(io, problem),
        }
    }

    fn mismatch(&mut self, io: &IoOperation, problem: String) {
        self.mismatches.push(format!(
            "{} {} ({}): {problem}",
            io.method, io.path, io.operation_id
        ));
    }
}

/// Compares one IO operation with io's document.
fn compare(document: &Value, io: &IoOperation, report: &mut Report) {
    let Some(operation) = document["paths"]
        .get(io.path)
        .and_then(|item| item.get(io.method.to_ascii_lowercase()))
    else {
        report.mismatch(io, "missing from io's document".into());
        return;
    };

    let id = operation["operationId"].as_str().unwrap_or("(none)");
    if id != io.operation_id {
        report.mismatch(io, format!("io's operationId is {id:?}"));
    }

    let io_params: Vec<&Value> = operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| resolve(document, p))
        .collect();
    for param in io.params {
        let found = io_params
            .iter()
            .find(|p| p["name"] == param.name && p["in"] == param.location.name());
        let Some(found) = found else {
            let elsewhere = io_params.iter().find(|p| p["name"] == param.name);
            report.mismatch(
                io,
                match elsewhere {
                    Some(p) => format!(
                        "parameter {} is in {} in io, in {} in IO",
                        param.name,
                        p["in"].as_str().unwrap_or("?"),
                        param.location.name()
                    ),
                    None => format!(
                        "parameter {} ({}) is missing",
                        param.name,
                        param.location.name()
                    ),
                },
            );
            continue;
        };
        let required = found["required"].as_bool().unwrap_or(false);
        if required != param.required {
            report.mismatch(
                io,
                format!(
                    "parameter {} is {} in io, {} in IO",
                    param.name,
                    if required { "required" } else { "optional" },
                    if param.required {
                        "required"
                    } else {
                        "optional"
                    },
                ),
            );
        }
    }

    if let Some(key) = io.key {
        let headers = key_headers(document, operation);
        if !headers.contains(&key.to_ascii_lowercase()) {
            report.mismatch(
                io,
                format!("io does not take IO's API key in the {key} header (io: {headers:?})"),
            );
        }
    }

    if let Some(body) = &io.body {
        let request = &operation["requestBody"];
        if request.is_null() {
            report.mismatch(io, "io takes no request body".into());
        } else {
            if body.required && request["required"] != true {
                report.mismatch(io, "the body is required in IO, optional in io".into());
            }
            match request["content"].get("application/json") {
                None => report.mismatch(io, "io's body is not application/json".into()),
                Some(media) => {
                    let ours = required_fields(document, &media["schema"]);
                    let theirs: BTreeSet<String> =
                        body.required_fields.iter().map(|f| f.to_string()).collect();
                    for field in theirs.difference(&ours) {
                        report.mismatch(
                            io,
                            format!("body field {field} is required in IO, optional in io"),
                        );
                    }
                    for field in ours.difference(&theirs) {
                        report.mismatch(
                            io,
                            format!("body field {field} is required in io, optional in IO"),
                        );
                    }
                }
            }
        }
    } else if operation["requestBody"]["required"] == true {
        report.mismatch(io, "io requires a body, IO takes none".into());
    }

    let responses = operation["responses"].as_object();
    let documented: BTreeSet<u16> = responses
        .into_iter()
        .flat_map(|r| r.keys())
        .filter_map(|code| code.parse().ok())
        .collect();
    let successes: BTreeSet<u16> = documented
        .iter()
        .copied()
        .filter(|c| (200..300).contains(c))
        .collect();
    let success = io.success.code();
    if successes != BTreeSet::from([success]) {
        report.mismatch(
            io,
            format!("IO's success is {success}, io's is {successes:?}"),
        );
    } else if let Success::Json(code) = io.success
        && operation["responses"][code.to_string()]["content"]
            .get("application/json")
            .is_none()
    {
        report.mismatch(io, format!("io's {code} has no application/json body"));
    }
    for &code in io.errors.iter().filter(|c| !documented.contains(c)) {
        report.unless_allowed(
            io,
            |a| a == Allowed::Undocumented(code),
            format!("IO documents {code}, io does not"),
        );
    }
}

/// The mismatches of `document` against IO's table, stale deviations included.
fn mismatches(document: &Value) -> Vec<String> {
    let mut report = Report {
        mismatches: Vec::new(),
        used: BTreeSet::new(),
    };
    for io in IO_OPERATIONS {
        compare(document, io, &mut report);
    }
    for (index, deviation) in DEVIATIONS.iter().enumerate() {
        if !report.used.contains(&index) {
            report.mismatches.push(format!(
                "deviation {:?} of {} no longer applies: remove it from DEVIATIONS ({})",
                deviation.allowed, deviation.operation_id, deviation.why
            ));
        }
    }
    report.mismatches
}

#[test]
fn the_table_is_io_s_twenty_seven_operations() {
    assert_eq!(IO_OPERATIONS.len(), 27);
    let mut seen = BTreeSet::new();
    for io in IO_OPERATIONS {
        assert!(seen.insert(io.operation_id), "{} twice", io.operation_id);
        for param in io.params.iter().filter(|p| p.location == In::Path) {
            assert!(
                io.path.contains(&format!("{{{}}}", param.name)),
                "{}: {} is not in the path",
                io.operation_id,
                param.name
            );
        }
        let in_path = io.path.matches('{').count();
        let path_params = io.params.iter().filter(|p| p.location == In::Path).count();
        assert_eq!(in_path, path_params, "{}", io.operation_id);
        assert!((200..300).contains(&io.success.code()));
        assert!(io.errors.iter().all(|c| (400..600).contains(c)));
    }
    for deviation in DEVIATIONS {
        assert!(
            IO_OPERATIONS
                .iter()
                .any(|io| io.operation_id == deviation.operation_id),
            "{}: not an IO operation",
            deviation.operation_id
        );
    }
}

#[tokio::test]
async fn the_services_api_document_has_every_io_operation_as_io_documents_it() {
    let server = TestServer::start().await;
    let response = server
        .request(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    server.stop().await;

    let mismatches = mismatches(&document);
    let mut message = String::new();
    for mismatch in &mismatches {
        let _ = writeln!(message, "  - {mismatch}");
    }
    assert!(
        mismatches.is_empty(),
        "io's /api/v1 document differs from IO's Services API in {} ways:\n{message}",
        mismatches.len()
    );
}
