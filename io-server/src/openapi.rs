//! OpenAPI 3.1 documents of the three HTTP APIs, built from the code: the limits a schema
//! states are the constants the validation enforces, the enums' values are what the types'
//! serde writes, and each operation lists every status its handler and its API's middleware can
//! answer (errors are always `application/problem+json`). Each API serves its own document
//! without authentication at `<base>/openapi.json` (`/api/v1`, `/app/v1`, `/adm`), and
//! `.ci/schemathesis.sh` checks the running server against them.
//!
//! The Services API's document is derived: each handler carries its operation
//! (`#[utoipa::path]`), each payload and view type its schema (`utoipa::ToSchema`; io-core's
//! wire types behind its `openapi` feature), and [`DocumentedRouter`] routes a handler only at
//! the path and methods its operation gives. What the authentication layers answer around
//! every handler (401, 403, 429, the store's 500 and 503, the rate-limit headers) and what any
//! JSON body may get (400, 413, 415) is added per API by `Operation::derived`. The citizen API's
//! document is derived the same way. The admin document is still assembled with the operation
//! builder of `operation` (next to derive); it shares the derived message schemas.

mod admin;
mod citizen;
mod documented;
mod manage;
mod operation;
mod schemas;
mod services;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::middleware;
use axum::routing::get;
use io_core::Store;
use serde_json::{Map, Value, json};

pub use admin::admin_api_document;
pub use citizen::{citizen_api_document, citizen_api_document_of};
pub use documented::DocumentedRouter;
pub(crate) use schemas::{delivery_status, message_status, read_status};
pub use services::{services_api_document, services_api_document_of};

use operation::Operation;

use crate::app::App;

/// The OpenAPI version the documents are written in.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// Where each API serves its document, relative to the API's base path.
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// The route serving `document` at [`DOCUMENT_PATH`], without authentication: merge it into an
/// API's router after the authentication layer.
pub fn route<S: Store>(app: Arc<App<S>>, document: Value) -> Router<Arc<App<S>>> {
    let body = Bytes::from(serde_json::to_vec(&document).expect("a JSON value serializes"));
    Router::new()
        .route(
            DOCUMENT_PATH,
            get(move || {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
        )
        .route_layer(middleware::from_fn_with_state(
            app,
            crate::app::measure::<S>,
        ))
}

/// The `paths` object of a document, filled one operation at a time.
#[derive(Debug, Default)]
struct Paths(Map<String, Value>);

impl Paths {
    /// Adds `operation` as `method` of `path` (relative to the API's base path).
    fn add(&mut self, method: &str, path: &str, operation: Operation) {
        let item = self.0.entry(path).or_insert_with(|| json!({}));
        item[method] = operation.build();
    }

    /// Adds the operations derived from a router's handlers (`DocumentedRouter`), each
    /// completed by `Operation::derived` and then by `layers`: what the API's authentication
    /// may answer around every handler.
    fn add_derived(
        &mut self,
        routes: utoipa::openapi::path::Paths,
        layers: impl Fn(Operation) -> Operation,
    ) {
        let routes = serde_json::to_value(routes).expect("paths serialize");
        for (path, item) in routes.as_object().expect("paths are an object") {
            for (method, operation) in item.as_object().expect("a path item is an object") {
                self.add(method, path, layers(Operation::derived(operation.clone())));
            }
        }
    }

    /// The operation that serves the document itself.
    fn add_document_route(&mut self, api: &str) {
        self.add(
            "get",
            DOCUMENT_PATH,
            Operation::new(
                "getOpenApiDocument",
                &format!("This document: the OpenAPI description of the {api}"),
                "documentation",
            )
            .public()
            .answers(
                200,
                "The OpenAPI 3 document.",
                json!({ "type": "object", "required": ["openapi", "info", "paths"] }),
            ),
        );
    }
}

/// The schemas (`components.schemas`) a `#[derive(utoipa::OpenApi)]` lists, with the schemas
/// they name, as `(name, schema)`.
fn derived_schemas<D: utoipa::OpenApi>() -> Vec<(String, Value)> {
    let schemas = D::openapi()
        .components
        .map(|c| c.schemas)
        .unwrap_or_default();
    schemas
        .into_iter()
        .map(|(name, schema)| {
            let schema = serde_json::to_value(schema).expect("a schema serializes");
            (name, schema)
        })
        .collect()
}

/// What distinguishes one API's document from another's.
struct Api<'a> {
    title: &'a str,
    description: &'a str,
    base_path: &'a str,
    security_scheme: (&'a str, Value),
    paths: Paths,
    schemas: Vec<(String, Value)>,
    /// Response headers shared by many answers, referred to as `#/components/headers/<name>`.
    headers: Vec<(&'a str, Value)>,
}

/// Assembles a document: info, server, security, paths, and the components (the `Problem`
/// schema always among them).
fn document(api: Api<'_>) -> Value {
    let (scheme_name, scheme) = api.security_scheme;
    let mut schemas = Map::new();
    schemas.insert("Problem".into(), schemas::problem());
    for (name, schema) in api.schemas {
        schemas.insert(name, schema);
    }
    let mut components = json!({
        "securitySchemes": { scheme_name: scheme },
        "schemas": Value::Object(schemas),
    });
    if !api.headers.is_empty() {
        let headers = api.headers.into_iter().map(|(n, h)| (n.to_string(), h));
        components["headers"] = Value::Object(headers.collect());
    }
    json!({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": api.title,
            "description": api.description,
            "version": env!("CARGO_PKG_VERSION"),
        },
        "servers": [{ "url": api.base_path }],
        "security": [{ scheme_name: [] }],
        "paths": Value::Object(api.paths.0),
        "components": components,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::PROBLEM_JSON;

    fn documents() -> Vec<(&'static str, Value)> {
        vec![
            ("services", services_api_document()),
            ("citizen", citizen_api_document()),
            ("admin", admin_api_document()),
        ]
    }

    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(target)) => found.push(target),
                        _ => refs(value, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_inside_its_document() {
        for (name, document) in documents() {
            let mut found = Vec::new();
            refs(&document, &mut found);
            assert!(!found.is_empty(), "{name}");
            for target in found {
                let pointer = target.strip_prefix('#').expect("local references only");
                assert!(
                    document.pointer(pointer).is_some(),
                    "{name}: {target} does not resolve"
                );
            }
        }
    }

    #[test]
    fn operation_ids_are_unique_and_every_operation_answers_problems_as_problem_json() {
        for (name, document) in documents() {
            let mut ids = std::collections::BTreeSet::new();
            for (path, item) in document["paths"].as_object().unwrap() {
                for (method, operation) in item.as_object().unwrap() {
                    let id = operation["operationId"].as_str().unwrap();
                    assert!(ids.insert(id.to_string()), "{name}: {id} twice");
                    for (status, response) in operation["responses"].as_object().unwrap() {
                        if status == "204" {
                            assert!(response.get("content").is_none(), "{name}: {path} 204");
                            continue;
                        }
                        let Some(media) = response.get("content").and_then(Value::as_object) else {
                            // Only an accepted upload (202) answers without a body.
                            assert_eq!(status, "202", "{name}: {method} {path} {status}");
                            continue;
                        };
                        let wanted: &[&str] = if status.starts_with('2') {
                            &["application/json", "image/png"]
                        } else {
                            &[PROBLEM_JSON]
                        };
                        assert!(
                            wanted.iter().any(|want| media.contains_key(*want)),
                            "{name}: {method} {path} {status} is not {wanted:?}"
                        );
                    }
                }
            }
        }
    }

    /// OpenAPI 3.1 has no `nullable`: a schema that kept it would admit no `null`.
    #[test]
    fn no_schema_uses_openapi_3_0_nullable() {
        fn walk(value: &Value, name: &str) {
            match value {
                Value::Object(map) => {
                    assert!(!map.contains_key("nullable"), "{name}: {value}");
                    map.values().for_each(|v| walk(v, name));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, name)),
                _ => {}
            }
        }
        for (name, document) in documents() {
            walk(&document, name);
        }
    }

    #[test]
    fn links_name_operations_of_their_own_document() {
        for (name, document) in documents() {
            let mut ids = std::collections::BTreeSet::new();
            let mut targets = Vec::new();
            for item in document["paths"].as_object().unwrap().values() {
                for operation in item.as_object().unwrap().values() {
                    ids.insert(operation["operationId"].as_str().unwrap().to_string());
                    for response in operation["responses"].as_object().unwrap().values() {
                        for link in response["links"].as_object().into_iter().flatten() {
                            targets.push(link.1["operationId"].as_str().unwrap().to_string());
                        }
                    }
                }
            }
            assert!(!targets.is_empty(), "{name}");
            for target in targets {
                assert!(ids.contains(&target), "{name}: link to unknown {target}");
            }
        }
    }

    #[test]
    fn only_the_document_itself_is_public() {
        for (name, document) in documents() {
            for (path, item) in document["paths"].as_object().unwrap() {
                for (method, operation) in item.as_object().unwrap() {
                    let public = operation.get("security") == Some(&json!([]));
                    assert_eq!(public, path == DOCUMENT_PATH, "{name}: {method} {path}");
                    if !public {
                        assert!(
                            operation["responses"].get("401").is_some(),
                            "{name}: {method} {path} has no 401"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn limits_come_from_the_validation_constants() {
        let document = services_api_document();
        let content = &document["components"]["schemas"]["NewMessageContent"]["properties"];
        assert_eq!(
            content["subject"]["minLength"],
            io_core::message::SUBJECT_CHARS.0
        );
        assert_eq!(
            content["markdown"]["maxLength"],
            io_core::message::MARKDOWN_CHARS.1
        );
        let message = &document["components"]["schemas"]["NewMessage"]["properties"];
        assert_eq!(
            message["time_to_live"]["maximum"],
            io_core::message::TIME_TO_LIVE_SECS.1
        );
    }

    /// The citizen API's literal limits (attributes take literals) are the constants its
    /// handlers check.
    #[test]
    fn citizen_limits_are_the_constants() {
        use crate::citizen_api::{catalogue, installations, messages};
        let document = citizen_api_document();
        let query = |path: &str, name: &str| {
            document["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{path} has no {name}"))["schema"]
                .clone()
        };
        for path in ["/institutions", "/institutions/{fiscal_code}/services"] {
            let limit = query(path, "limit");
            assert_eq!(limit["minimum"], catalogue::LIMIT.0);
            assert_eq!(limit["maximum"], catalogue::LIMIT.1);
            assert_eq!(limit["default"], catalogue::LIMIT.2);
            assert_eq!(query(path, "offset")["maximum"], catalogue::OFFSET_MAX);
            assert_eq!(query(path, "topic")["maximum"], io_core::TOPICS.len() - 1);
        }
        assert_eq!(
            query("/institutions", "search")["maxLength"],
            catalogue::SEARCH_MAX
        );
        let page_size = query("/messages", "page_size");
        assert_eq!(page_size["minimum"], messages::PAGE_SIZE.0);
        assert_eq!(page_size["maximum"], messages::PAGE_SIZE.1);
        assert_eq!(page_size["default"], messages::PAGE_SIZE.2);
        let schemas = &document["components"]["schemas"];
        assert_eq!(
            schemas["InstallationInput"]["properties"]["push_channel"]["maxLength"],
            installations::PUSH_CHANNEL_MAX
        );
        assert_eq!(
            schemas["Topic"]["properties"]["id"]["maximum"],
            io_core::TOPICS.len() - 1
        );
    }

    #[test]
    fn enum_values_are_what_serde_writes() {
        let document = citizen_api_document();
        let languages = &document["components"]["schemas"]["PreferredLanguage"];
        for value in languages["enum"].as_array().unwrap() {
            serde_json::from_value::<io_core::PreferredLanguage>(value.clone()).unwrap();
        }
        assert_eq!(languages["enum"][0], "it_IT");
    }
}
