//! End-to-end tests of the Services API (`/api/v1`) over real HTTP on loopback.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn submit_then_poll_until_processed_with_the_location_header() {
    let server = TestServer::start().await;
    let (_, key) = server
        .create_service(&["ApiMessageWrite", "ApiMessageRead", "ApiLimitedProfileRead"])
        .await;
    server.put_profile(CITIZEN).await;

    let profile: Value = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        profile,
        json!({"sender_allowed": true, "preferred_languages": ["it_IT"]})
    );

    let response = server
        .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(location, format!("/api/v1/messages/{CITIZEN}/{id}"));

    let before: Value = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["status"], "ACCEPTED");
    server.drain().await;
    let after: Value = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["status"], "PROCESSED");
    assert_eq!(after["message"]["fiscal_code"], CITIZEN);
    assert_eq!(
        after["message"]["content"]["subject"],
        "Avviso di pagamento TARI"
    );
    assert_eq!(after["deliveries"][0]["channel"], "inbox");
    assert_eq!(after["deliveries"][0]["status"], "SENT");
    server.stop().await;
}
