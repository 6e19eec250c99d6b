//! End-to-end tests of the admin API (`/adm`) over real HTTP on loopback.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn no_token_or_a_wrong_token_is_401() {
    let server = TestServer::start().await;
    let response = server
        .request(Method::GET, "/adm/services")
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
    let response = server
        .request(Method::GET, "/adm/services")
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_new_service_gets_the_sandbox_groups_and_the_sandbox_recipient() {
    let server = TestServer::start().await;
    let response = server
        .admin(Method::POST, "/adm/services")
        .json(&json!({
            "service_id": "tari-roma",
            "service_name": "TARI",
            "department_name": "Tributi",
            "organization_name": "Comune di Roma",
            "organization_fiscal_code": ORGANIZATION,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["location"], "/adm/services/tari-roma");
    let service: Value = response.json().await.unwrap();
    assert_eq!(service["service_id"], "tari-roma");
    assert_eq!(service["version"], 1);
    assert_eq!(
        service["groups"],
        json!([
            "ApiLimitedMessageWrite",
            "ApiMessageRead",
            "ApiLimitedProfileRead"
        ])
    );
    assert_eq!(
        service["authorized_recipients"],
        json!(["AAAAAA00A00A000A"])
    );
    let again = server
        .admin(Method::POST, "/adm/services")
        .json(&json!({
            "service_id": "tari-roma", "service_name": "TARI", "department_name": "Tributi",
            "organization_name": "Comune di Roma", "organization_fiscal_code": ORGANIZATION,
        }))
        .send()
        .await
        .unwrap();
    expect_problem(again, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn invalid_service_fields_are_400_naming_the_field() {
    let server = TestServer::start().await;
    let base = json!({
        "service_name": "TARI", "department_name": "Tributi",
        "organization_name": "Comune di Roma", "organization_fiscal_code": ORGANIZATION,
    });
    let cases = [
        ("organization_fiscal_code", json!("12345678901")),
        ("authorized_cidrs", json!(["10.0.0.0/33"])),
        ("authorized_recipients", json!(["NOTAFISCALCODE"])),
        ("service_name", json!("  ")),
        ("service_id", json!("has spaces")),
        ("owner_email", json!("not-an-email")),
        ("groups", json!(["ApiEverything"])),
    ];
    for (field, value) in cases {
        let mut body = base.clone();
        body[field] = value;
        let response = server
            .admin(Method::POST, "/adm/services")
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{field}: {problem}"
        );
    }
    let mut unknown = base.clone();
    unknown["colour"] = json!("blue");
    let response = server
        .admin(Method::POST, "/adm/services")
        .json(&unknown)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn services_are_read_listed_and_updated_with_a_new_version() {
    let server = TestServer::start().await;
    let (id, _) = server.create_service(ALL_GROUPS).await;
    let service: Value = server
        .admin(Method::GET, &format!("/adm/services/{id}"))
        .fetch_json()
        .await;
    assert_eq!(service["service_name"], "Tassa rifiuti");
    let mut update = service.clone();
    update
        .as_object_mut()
        .unwrap()
        .retain(|k, _| !matches!(k.as_str(), "version"));
    update["service_name"] = json!("TARI 2026");
    update["groups"] = json!(["ApiMessageWrite"]);
    let updated: Value = server
        .admin(Method::PUT, &format!("/adm/services/{id}"))
        .json(&update)
        .fetch_json()
        .await;
    assert_eq!(updated["service_name"], "TARI 2026");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["groups"], json!(["ApiMessageWrite"]));
    let list: Value = server
        .admin(Method::GET, "/adm/services")
        .fetch_json()
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let missing = server
        .admin(Method::GET, "/adm/services/nope")
        .send()
        .await
        .unwrap();
    expect_problem(missing, StatusCode::NOT_FOUND).await;
    let missing = server
        .admin(Method::GET, "/adm/services/nope/keys")
        .send()
        .await
        .unwrap();
    expect_problem(missing, StatusCode::NOT_FOUND).await;
    let bad = server
        .admin(Method::PUT, &format!("/adm/services/{id}/keys"))
        .json(&json!({"key_type": "TERTIARY_KEY"}))
        .send()
        .await
        .unwrap();
    expect_problem(bad, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn support_looks_up_a_message_with_its_verified_journal() {
    let server = TestServer::start().await;
    server.put_profile(CITIZEN).await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let response = server
        .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.drain().await;
    let lookup: Value = server
        .admin(Method::GET, &format!("/adm/messages/{id}"))
        .fetch_json()
        .await;
    assert_eq!(lookup["status"], "PROCESSED");
    assert_eq!(lookup["journal"]["verified"], true);
    // accepted, processed, inbox attempt.
    assert_eq!(lookup["journal"]["entries"], 3);
    let missing = server
        .admin(Method::GET, "/adm/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV")
        .send()
        .await
        .unwrap();
    expect_problem(missing, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn citizen_tokens_are_minted_for_valid_fiscal_codes_only() {
    let server = TestServer::start().await;
    let token = server.citizen_token(CITIZEN).await;
    assert_eq!(token.split('.').count(), 3);
    let response = server
        .admin(Method::POST, "/adm/citizen-tokens")
        .json(&json!({"fiscal_code": "RSSMRA85T10A562X"}))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn admin_activations_are_set_and_read_for_any_service() {
    let server = TestServer::start().await;
    let (id, _) = server.create_service(ALL_GROUPS).await;
    let response = server
        .admin(Method::PUT, "/adm/activations")
        .json(&json!({"fiscal_code": CITIZEN, "service_id": id, "status": "PENDING"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let read: Value = server
        .admin(
            Method::GET,
            &format!("/adm/services/{id}/activations/{CITIZEN}"),
        )
        .fetch_json()
        .await;
    assert_eq!(read["status"], "PENDING");
    assert_eq!(read["version"], 0);
    // The admin names the service: without it, 400.
    let anonymous = server
        .admin(Method::PUT, "/adm/activations")
        .json(&json!({"fiscal_code": CITIZEN, "status": "ACTIVE"}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(anonymous, StatusCode::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().unwrap().contains("service_id"));
    let bad = server
        .admin(Method::PUT, "/adm/activations")
        .json(&json!({"fiscal_code": CITIZEN, "service_id": id, "status": "MAYBE"}))
        .send()
        .await
        .unwrap();
    expect_problem(bad, StatusCode::BAD_REQUEST).await;
}
