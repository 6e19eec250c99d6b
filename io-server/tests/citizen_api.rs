//! End-to-end tests of the citizen API (`/app/v1`) over real HTTP on loopback, and the sender
//! protocol IO recommends followed from both sides.

mod support;

use io_core::{FiscalCode, Timestamp};
use io_server::citizen_token::Hs256Tokens;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

async fn create_profile(server: &TestServer, token: &str) -> Value {
    let response = server
        .citizen(Method::POST, "/profile", token)
        .json(&json!({"is_inbox_enabled": true, "preferred_languages": ["it_IT"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn send(server: &TestServer, key: &str, fiscal_code: &str) -> String {
    let response = server
        .api(Method::POST, &format!("/messages/{fiscal_code}"), key)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_recommended_sender_protocol_end_to_end() {
    let server = TestServer::start_with(ServerConfigWithWorker::one()).await;
    let (_, key) = server
        .create_service(&["ApiMessageWrite", "ApiMessageRead", "ApiLimitedProfileRead"])
        .await;
    let token = server.citizen_token(CITIZEN).await;
    // Before the profile exists the sender must stop.
    let response = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::NOT_FOUND).await;
    create_profile(&server, &token).await;
    let profile: Value = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["sender_allowed"], true);
    let id = send(&server, &key, CITIZEN).await;
    // Invisible to the citizen until PROCESSED; poll (the server's own worker processes it).
    let mut status = String::new();
    for _ in 0..200 {
        let message: Value = server
            .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status = message["status"].as_str().unwrap().to_string();
        if status == "PROCESSED" {
            break;
        }
        tokio::task::yield_now().await;
        server.app.engine.run_until_idle().await.unwrap();
    }
    assert_eq!(status, "PROCESSED");
    let page: Value = server
        .citizen(Method::GET, "/messages", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert_eq!(
        page["items"][0]["message_title"],
        "Avviso di pagamento TARI"
    );
    let message: Value = server
        .citizen(Method::GET, &format!("/messages/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(message["content"]["subject"], "Avviso di pagamento TARI");
    assert_eq!(message["is_read"], false);
    server.stop().await;
}

/// A config with one engine worker, as `serve` runs by default.
struct ServerConfigWithWorker;
impl ServerConfigWithWorker {
    fn one() -> io_server::ServerConfig {
        let mut config = test_config();
        config.workers = 1;
        config
    }
}

#[tokio::test]
async fn a_citizen_cannot_read_another_citizens_message() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let mine = server.citizen_token(CITIZEN).await;
    let theirs = server.citizen_token(OTHER_CITIZEN).await;
    create_profile(&server, &mine).await;
    create_profile(&server, &theirs).await;
    let id = send(&server, &key, CITIZEN).await;
    server.drain().await;
    let response = server
        .citizen(Method::GET, &format!("/messages/{id}"), &theirs)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::NOT_FOUND).await;
    let response = server
        .citizen(
            Method::PUT,
            &format!("/messages/{id}/message-status"),
            &theirs,
        )
        .json(&json!({"change_type": "reading", "is_read": true}))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::NOT_FOUND).await;
    let page: Value = server
        .citizen(Method::GET, "/messages", &theirs)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn missing_expired_and_forged_tokens_are_401() {
    let server = TestServer::start().await;
    let response = server
        .request(Method::GET, "/app/v1/profile")
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
    let citizen = FiscalCode::parse(CITIZEN).unwrap();
    let expired = Hs256Tokens::new(b"test-token-secret").mint(
        &citizen,
        Timestamp::from_millis(1_600_000_000_000),
        60,
    );
    let forged = Hs256Tokens::new(b"someone-else").mint(
        &citizen,
        Timestamp::from_millis(
            i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
            )
            .unwrap(),
        ),
        3600,
    );
    for token in [expired, forged, "garbage".to_string()] {
        let response = server
            .citizen(Method::GET, "/profile", &token)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn profile_is_created_then_updated_only_from_the_current_version() {
    let server = TestServer::start().await;
    let token = server.citizen_token(CITIZEN).await;
    let missing = server
        .citizen(Method::GET, "/profile", &token)
        .send()
        .await
        .unwrap();
    expect_problem(missing, StatusCode::NOT_FOUND).await;
    let created = create_profile(&server, &token).await;
    assert_eq!(created["version"], 0);
    let updated: Value = server
        .citizen(Method::POST, "/profile", &token)
        .json(
            &json!({"version": 0, "email": "mario.rossi@example.org", "is_webhook_enabled": false}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["version"], 1);
    assert_eq!(updated["email"], "mario.rossi@example.org");
    assert_eq!(updated["is_email_validated"], false);
    let stale = server
        .citizen(Method::POST, "/profile", &token)
        .json(&json!({"version": 0, "is_inbox_enabled": false}))
        .send()
        .await
        .unwrap();
    expect_problem(stale, StatusCode::CONFLICT).await;
    let bad = server
        .citizen(Method::POST, "/profile", &token)
        .json(&json!({"version": 1, "email": "not an email"}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(bad, StatusCode::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().unwrap().contains("email"));
    // An address another citizen validated is 412.
    let other = FiscalCode::parse(OTHER_CITIZEN).unwrap();
    server
        .app
        .records
        .claim_email("taken@example.org", &other)
        .await
        .unwrap()
        .unwrap();
    let taken = server
        .citizen(Method::POST, "/profile", &token)
        .json(&json!({"version": 1, "email": "Taken@example.org"}))
        .send()
        .await
        .unwrap();
    expect_problem(taken, StatusCode::PRECONDITION_FAILED).await;
}

#[tokio::test]
async fn preferences_follow_the_settings_version_and_block_the_inbox() {
    let server = TestServer::start().await;
    let (service_id, key) = server.create_service(ALL_GROUPS).await;
    let token = server.citizen_token(CITIZEN).await;
    create_profile(&server, &token).await;
    let path = format!("/services/{service_id}/preferences");
    let preference = json!({
        "service_id": service_id, "settings_version": 0, "is_inbox_enabled": false,
        "is_email_enabled": true, "is_webhook_enabled": true, "can_access_message_read_status": true,
    });
    // LEGACY mode: per-service preferences do not apply.
    let legacy = server
        .citizen(Method::POST, &path, &token)
        .json(&preference)
        .send()
        .await
        .unwrap();
    expect_problem(legacy, StatusCode::CONFLICT).await;
    // Switch to AUTO: the settings version becomes 1.
    let auto: Value = server
        .citizen(Method::POST, "/profile", &token)
        .json(&json!({"version": 0, "service_preferences_settings": {"mode": "AUTO"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        auto["service_preferences_settings"],
        json!({"mode": "AUTO", "version": 1})
    );
    let stale = server
        .citizen(Method::POST, &path, &token)
        .json(&preference)
        .send()
        .await
        .unwrap();
    expect_problem(stale, StatusCode::CONFLICT).await;
    let mut current = preference.clone();
    current["settings_version"] = json!(1);
    let stored = server
        .citizen(Method::POST, &path, &token)
        .json(&current)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), StatusCode::OK);
    let read: Value = server
        .citizen(Method::GET, &path, &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["is_inbox_enabled"], false);
    let unknown = server
        .citizen(Method::GET, "/services/nope/preferences", &token)
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::NOT_FOUND).await;
    // The service now sees the citizen as not allowed, and a message is rejected.
    let profile: Value = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["sender_allowed"], false);
    // The feed shows the unsubscription (hashed) for today.
    let today = &io_core::SystemClock.now_rfc3339()[..10];
    let feed: Value = server
        .api(Method::GET, &format!("/subscriptions-feed/{today}"), &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hash = FiscalCode::parse(CITIZEN)
        .unwrap()
        .hash()
        .as_str()
        .to_string();
    assert_eq!(feed["unsubscriptions"], json!([hash]));
}

trait NowRfc3339 {
    fn now_rfc3339(&self) -> String;
}
impl NowRfc3339 for io_core::SystemClock {
    fn now_rfc3339(&self) -> String {
        io_core::Clock::now(self).to_rfc3339()
    }
}

#[tokio::test]
async fn inbox_pages_newest_first_with_cursors_read_is_one_way_and_archived_is_filtered() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let token = server.citizen_token(CITIZEN).await;
    create_profile(&server, &token).await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(send(&server, &key, CITIZEN).await);
    }
    server.drain().await;
    ids.reverse(); // newest first
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = server
            .citizen(Method::GET, "/messages", &token)
            .query(&[("page_size", "3")]);
        if let Some(cursor) = &cursor {
            request = request.query(&[("maximum_id", cursor.as_str())]);
        }
        let page: Value = request.send().await.unwrap().json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let newer: Value = server
        .citizen(Method::GET, "/messages", &token)
        .query(&[("minimum_id", ids[2].as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let newer: Vec<&str> = newer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(newer, [ids[0].as_str(), ids[1].as_str()]);
    for bad in [
        ("page_size", "0"),
        ("page_size", "101"),
        ("maximum_id", "x"),
        ("archived", "maybe"),
    ] {
        let response = server
            .citizen(Method::GET, "/messages", &token)
            .query(&[bad])
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(problem["detail"].as_str().unwrap().contains(bad.0));
    }
    let status = |body: Value| {
        server
            .citizen(
                Method::PUT,
                &format!("/messages/{}/message-status", ids[0]),
                &token,
            )
            .json(&body)
            .send()
    };
    let read: Value = status(json!({"change_type": "reading", "is_read": true}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["is_read"], true);
    let unread = status(json!({"change_type": "reading", "is_read": false}))
        .await
        .unwrap();
    expect_problem(unread, StatusCode::BAD_REQUEST).await;
    let archived: Value = status(json!({"change_type": "archiving", "is_archived": true}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(archived, json!({"is_read": true, "is_archived": true}));
    let inbox: Value = server
        .citizen(Method::GET, "/messages", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbox["items"].as_array().unwrap().len(), 6);
    let archive: Value = server
        .citizen(Method::GET, "/messages", &token)
        .query(&[("archived", "true")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(archive["items"][0]["id"], ids[0].as_str());
    assert_eq!(archive["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn installations_are_registered_and_validated() {
    let server = TestServer::start().await;
    let token = server.citizen_token(CITIZEN).await;
    let ok = server
        .citizen(Method::PUT, "/installations/device-1", &token)
        .json(&json!({"platform": "fcmv1", "push_channel": "token-abc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let installations =
        io_core::Store::installations(&*server.app.store, &FiscalCode::parse(CITIZEN).unwrap())
            .await
            .unwrap();
    assert_eq!(installations.len(), 1);
    for body in [
        json!({"platform": "blackberry", "push_channel": "t"}),
        json!({"platform": "apns", "push_channel": ""}),
    ] {
        let response = server
            .citizen(Method::PUT, "/installations/device-1", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::BAD_REQUEST).await;
    }
}
