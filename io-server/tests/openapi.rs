//! The OpenAPI documents over real HTTP: each API serves its own without authentication, it is
//! OpenAPI 3, and it lists exactly the routes the API's router answers — every documented
//! operation is routed (an unauthenticated call gets the documented 401, not 404 or 405) and
//! every route this file knows is documented.

mod support;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::*;

/// The routes of `services_api::router`.
const SERVICES_ROUTES: &[(&str, &str)] = &[
    ("POST", "/messages"),
    ("POST", "/messages/{fiscal_code}"),
    ("GET", "/messages/{fiscal_code}/{id}"),
    ("POST", "/profiles"),
    ("GET", "/profiles/{fiscal_code}"),
    ("GET", "/subscriptions-feed/{date}"),
    ("POST", "/activations"),
    ("PUT", "/activations"),
    ("POST", "/activations/"),
    ("PUT", "/activations/"),
    ("POST", "/manage/services"),
    ("GET", "/manage/services"),
    ("GET", "/manage/services/topics"),
    ("GET", "/manage/services/{serviceId}"),
    ("PUT", "/manage/services/{serviceId}"),
    ("DELETE", "/manage/services/{serviceId}"),
    ("PUT", "/manage/services/{serviceId}/review"),
    ("POST", "/manage/services/{serviceId}/release"),
    ("GET", "/manage/services/{serviceId}/release"),
    ("DELETE", "/manage/services/{serviceId}/release"),
    ("GET", "/manage/services/{serviceId}/history"),
    ("GET", "/manage/services/{serviceId}/keys"),
    ("PUT", "/manage/services/{serviceId}/logo"),
    ("PUT", "/organizations/{organization_fiscal_code}/logo"),
    ("POST", "/messages-sending/remote-contents/configurations"),
    ("GET", "/messages-sending/remote-contents/configurations"),
    (
        "GET",
        "/messages-sending/remote-contents/configurations/{configurationId}",
    ),
    (
        "PUT",
        "/messages-sending/remote-contents/configurations/{configurationId}",
    ),
    ("PUT", "/manage/services/{serviceId}/keys/{keyType}"),
];

/// The routes of `citizen_api::router`.
const CITIZEN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/profile"),
    ("POST", "/profile"),
    ("GET", "/services/{service_id}/preferences"),
    ("POST", "/services/{service_id}/preferences"),
    ("GET", "/institutions"),
    ("GET", "/institutions/{fiscal_code}/services"),
    ("GET", "/services/{service_id}"),
    ("GET", "/services/{service_id}/logo"),
    ("GET", "/institutions/{fiscal_code}/logo"),
    ("GET", "/topics"),
    ("GET", "/messages"),
    ("GET", "/messages/{id}"),
    ("GET", "/third-party-messages/{id}"),
    ("PUT", "/messages/{id}/message-status"),
    ("PUT", "/installations/{installation_id}"),
    ("POST", "/user-data-processing"),
    ("GET", "/user-data-processing/{choice}"),
    ("DELETE", "/user-data-processing/{choice}"),
    ("GET", "/user-data-processing/DOWNLOAD/archive"),
];

/// The routes of `admin_api::router`.
const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("POST", "/services"),
    ("GET", "/services"),
    ("GET", "/services/{service_id}"),
    ("PUT", "/services/{service_id}"),
    ("GET", "/services/{service_id}/keys"),
    ("PUT", "/services/{service_id}/keys"),
    ("GET", "/services/{service_id}/callback"),
    ("PUT", "/services/{service_id}/callback"),
    ("DELETE", "/services/{service_id}/callback"),
    ("GET", "/services/{service_id}/activations/{fiscal_code}"),
    ("PUT", "/activations"),
    ("GET", "/reviews"),
    ("GET", "/services/{service_id}/review"),
    ("PUT", "/services/{service_id}/review"),
    (
        "POST",
        "/organizations/{organization_fiscal_code}/manage-keys",
    ),
    (
        "GET",
        "/organizations/{organization_fiscal_code}/manage-keys",
    ),
    (
        "PUT",
        "/organizations/{organization_fiscal_code}/manage-keys",
    ),
    ("POST", "/citizen-tokens"),
    ("PUT", "/profiles/{fiscal_code}/email-validation"),
    ("PUT", "/profiles/{fiscal_code}/digital-domicile"),
    ("GET", "/messages/{id}/evidence"),
    ("GET", "/messages/{id}"),
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];

/// Fetches `<base>/openapi.json` without credentials and checks its envelope.
async fn fetch_document(server: &TestServer, base: &str) -> Value {
    let response = server
        .request(Method::GET, &format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{base}");
    assert_eq!(response.headers()["content-type"], "application/json");
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0", "{base}");
    assert!(document["info"]["title"].as_str().is_some(), "{base}");
    assert_eq!(document["servers"][0]["url"], base);
    document
}

/// `path` with each `{parameter}` replaced by the example its schema gives.
fn concrete(path: &str, operation: &Value) -> String {
    let mut concrete = path.to_string();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] == "path" {
            let name = parameter["name"].as_str().unwrap();
            let schema = &parameter["schema"];
            let example = (schema["examples"][0].as_str())
                .or(schema["example"].as_str())
                .or(parameter["example"].as_str())
                .unwrap_or_else(|| panic!("{path}: {name} has no example"));
            concrete = concrete.replace(&format!("{{{name}}}"), example);
        }
    }
    assert!(
        !concrete.contains('{'),
        "{path}: a parameter is undocumented"
    );
    concrete
}

/// Valid credentials for `base`: (header, value).
async fn credentials(server: &TestServer, base: &str) -> (&'static str, String) {
    match base {
        "/api/v1" => (
            "Ocp-Apim-Subscription-Key",
            server.create_service(ALL_GROUPS).await.1,
        ),
        "/app/v1" => (
            "Authorization",
            format!("Bearer {}", server.citizen_token(CITIZEN).await),
        ),
        _ => ("Authorization", format!("Bearer {ADMIN_TOKEN}")),
    }
}

/// The document of `base` lists exactly `routes` and its own route, each documented operation
/// is routed behind authentication, and no undocumented method is routed on a documented path
/// (405 with valid credentials; without them, authentication answers first).
async fn check_api(base: &str, routes: &[(&str, &str)]) {
    let server = TestServer::start().await;
    let (header, credential) = credentials(&server, base).await;
    let document = fetch_document(&server, base).await;
    let paths = document["paths"].as_object().unwrap();

    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let mut expected: BTreeSet<(String, String)> = routes
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    expected.insert(("GET".into(), "/openapi.json".into()));
    assert_eq!(documented, expected, "{base}: document and router differ");

    for (path, item) in paths {
        let item = item.as_object().unwrap();
        let (_, any_operation) = item.iter().next().unwrap();
        let url = format!("{base}{}", concrete(path, any_operation));
        for method in METHODS {
            let verb = Method::from_bytes(method.as_bytes()).unwrap();
            let anonymous = server.request(verb.clone(), &url);
            match item.get(&method.to_lowercase()) {
                Some(_) if path == "/openapi.json" => {
                    let response = anonymous.send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::OK, "{method} {url}")
                }
                Some(operation) => {
                    assert!(
                        operation["responses"].get("401").is_some(),
                        "{method} {base}{path}: 401 undocumented"
                    );
                    let response = anonymous.send().await.unwrap();
                    expect_problem(response, StatusCode::UNAUTHORIZED).await;
                }
                None => {
                    let response = server
                        .request(verb, &url)
                        .header(header, &credential)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(
                        response.status(),
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {url} is routed but not documented"
                    );
                }
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_services_api_document_lists_every_route() {
    check_api("/api/v1", SERVICES_ROUTES).await;
}

#[tokio::test]
async fn the_citizen_api_document_lists_every_route() {
    check_api("/app/v1", CITIZEN_ROUTES).await;
}

#[tokio::test]
async fn the_admin_api_document_lists_every_route() {
    check_api("/adm", ADMIN_ROUTES).await;
}

#[tokio::test]
async fn documents_are_served_whatever_the_credentials_and_match_the_code() {
    let server = TestServer::start().await;
    for (base, built) in [
        ("/api/v1", io_server::openapi::services_api_document()),
        ("/app/v1", io_server::openapi::citizen_api_document()),
        ("/adm", io_server::openapi::admin_api_document()),
    ] {
        assert_eq!(fetch_document(&server, base).await, built, "{base}");
        let response = server
            .request(Method::GET, &format!("{base}/openapi.json"))
            .header("Ocp-Apim-Subscription-Key", "not-a-key")
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{base}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_problem_answer_matches_the_documented_problem_schema() {
    let server = TestServer::start().await;
    let document = fetch_document(&server, "/api/v1").await;
    let schema = &document["components"]["schemas"]["Problem"];
    let response = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), "not-a-key")
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, StatusCode::UNAUTHORIZED).await;
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let present: BTreeSet<&str> = problem
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(required.is_subset(&present), "{problem}");
    server.stop().await;
}

#[tokio::test]
async fn a_query_string_axum_cannot_decode_is_a_problem_too() {
    // Found by schemathesis: axum's own rejection was a text/plain 400.
    let server = TestServer::start().await;
    let token = server.citizen_token(CITIZEN).await;
    for query in ["page_size=25&unknown=42", "page_size=1&page_size=2"] {
        let response = server
            .citizen(Method::GET, &format!("/messages?{query}"), &token)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::BAD_REQUEST).await;
    }
    server.stop().await;
}
