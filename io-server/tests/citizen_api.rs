//! End-to-end tests of the citizen API (`/app/v1`) over real HTTP on loopback, and the sender
//! protocol IO recommends followed from both sides. The engine is driven by `drain()`, never by
//! a worker racing the test, and time comes from the server's clock (a fixed one where a test
//! depends on the day).

mod support;

use io_core::{Choice, DataRequest, EmailAddress, FiscalCode, RequestStatus, Store, Timestamp};
use io_server::citizen_api::data_processing::SWEEP_INTERVAL;
use io_server::citizen_api::process_due_requests;
use io_server::citizen_token::Hs256Tokens;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use support::*;

const DAY_MILLIS: i64 = 24 * 3600 * 1000;

/// 2026-03-15T10:00:00Z.
const FIXED_NOW: Timestamp = Timestamp::from_millis(1_773_568_800_000);

async fn post_profile(server: &TestServer, token: &str, body: Value) -> Response {
    server
        .citizen(Method::POST, "/profile", token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `POST /profile` that must answer 200; the stored profile.
async fn update_profile(server: &TestServer, token: &str, body: Value) -> Value {
    let response = post_profile(server, token, body.clone()).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    response.json().await.unwrap()
}

async fn create_profile(server: &TestServer, token: &str) -> Value {
    let response = post_profile(
        server,
        token,
        json!({"is_inbox_enabled": true, "preferred_languages": ["it_IT"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `GET` of a citizen path that must answer 200.
async fn citizen_get(server: &TestServer, path: &str, token: &str) -> Value {
    let response = server
        .citizen(Method::GET, path, token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

/// The ids of a page's items, in order.
fn ids_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

async fn set_status(server: &TestServer, token: &str, id: &str, body: Value) -> Response {
    server
        .citizen(
            Method::PUT,
            &format!("/messages/{id}/message-status"),
            token,
        )
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The feed of the clock's day so far: a day's feed is served once the day is over (IO's rule:
/// 404 before), so the clock is moved to the next day for the read and back after it.
async fn feed(server: &TestServer, clock: &TestClock, key: &str) -> Value {
    let now = io_core::Clock::now(clock);
    let day = now.to_rfc3339()[..10].to_owned();
    let path = format!("/subscriptions-feed/{day}");
    let early = server.api(Method::GET, &path, key).send().await.unwrap();
    expect_problem(early, StatusCode::NOT_FOUND).await;
    clock.set(Timestamp::from_millis(now.as_millis() + DAY_MILLIS));
    let response = server.api(Method::GET, &path, key).send().await.unwrap();
    clock.set(now);
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn hash(fiscal_code: &str) -> String {
    FiscalCode::parse(fiscal_code)
        .unwrap()
        .hash()
        .as_str()
        .to_string()
}

#[tokio::test]
async fn the_recommended_sender_protocol_end_to_end() {
    let server = TestServer::start().await;
    let (service_id, key) = server
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
        .fetch_json()
        .await;
    assert_eq!(profile["sender_allowed"], true);
    let id = server.submit(&key, CITIZEN).await;
    // Decided at accept, in the same write: PROCESSED and in the inbox once the 201 is sent,
    // with no worker involved.
    let status: Value = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
        .fetch_json()
        .await;
    assert_eq!(status["status"], "PROCESSED");
    let deliveries = server
        .app
        .store
        .deliveries(&id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].state, io_core::DeliveryState::Sent);
    assert_eq!(
        ids_of(&citizen_get(&server, "/messages", &token).await),
        [id.as_str()]
    );
    server.drain().await;
    let status: Value = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
        .fetch_json()
        .await;
    assert_eq!(status["status"], "PROCESSED");
    let page = citizen_get(&server, "/messages", &token).await;
    assert_eq!(ids_of(&page), [id.as_str()]);
    let item = &page["items"][0];
    assert_eq!(item["fiscal_code"], CITIZEN);
    assert_eq!(item["sender_service_id"], service_id.as_str());
    assert_eq!(item["service_name"], "Tassa rifiuti");
    assert_eq!(item["organization_name"], "Comune di Roma");
    assert_eq!(item["message_title"], "Avviso di pagamento TARI");
    assert_eq!(item["time_to_live"], 3600);
    assert_eq!(
        (item["is_read"].clone(), item["is_archived"].clone()),
        (json!(false), json!(false))
    );
    assert!(Timestamp::parse_rfc3339(item["created_at"].as_str().unwrap()).is_ok());
    let message = citizen_get(&server, &format!("/messages/{id}"), &token).await;
    assert_eq!(message["id"], id.as_str());
    assert_eq!(message["content"], message_body()["content"]);
    assert_eq!(message["is_read"], false);
    let read = set_status(
        &server,
        &token,
        &id,
        json!({"change_type": "reading", "is_read": true}),
    )
    .await;
    assert_eq!(read.status(), StatusCode::OK);
    let message = citizen_get(&server, &format!("/messages/{id}"), &token).await;
    assert_eq!(message["is_read"], true);
}

#[tokio::test]
async fn every_route_needs_a_valid_unexpired_token() {
    let server = TestServer::start().await;
    let citizen = FiscalCode::parse(CITIZEN).unwrap();
    let now = server.app.clock.now();
    // The harness' signing secret, an instant a minute ago and a one-second lifetime.
    let expired = Hs256Tokens::new(b"test-token-secret").mint(
        &citizen,
        Timestamp::from_millis(now.as_millis() - 60_000),
        1,
    );
    let forged = Hs256Tokens::new(b"someone-else").mint(&citizen, now, 3600);
    let valid = server.citizen_token(CITIZEN).await;
    // The same claims with another citizen's signature: swapping the payload breaks it.
    let other = server.citizen_token(OTHER_CITIZEN).await;
    let spliced = {
        let mine: Vec<&str> = valid.split('.').collect();
        let theirs: Vec<&str> = other.split('.').collect();
        format!("{}.{}.{}", mine[0], theirs[1], mine[2])
    };
    let routes = [
        (Method::GET, "/profile"),
        (Method::POST, "/profile"),
        (Method::GET, "/services/s1/preferences"),
        (Method::POST, "/services/s1/preferences"),
        (Method::GET, "/messages"),
        (Method::GET, "/messages/01J0000000000000000000000A"),
        (
            Method::PUT,
            "/messages/01J0000000000000000000000A/message-status",
        ),
        (Method::PUT, "/installations/device-1"),
        (Method::POST, "/user-data-processing"),
        (Method::GET, "/user-data-processing/DELETE"),
        (Method::DELETE, "/user-data-processing/DELETE"),
        (Method::GET, "/user-data-processing/DOWNLOAD/archive"),
    ];
    for (method, path) in routes {
        let url = format!("/app/v1{path}");
        let missing = server.request(method.clone(), &url).send().await.unwrap();
        expect_problem(missing, StatusCode::UNAUTHORIZED).await;
        let basic = server
            .request(method.clone(), &url)
            .header("authorization", "Basic dXNlcjpwYXNz")
            .send()
            .await
            .unwrap();
        expect_problem(basic, StatusCode::UNAUTHORIZED).await;
        for token in [&expired, &forged, &spliced, &"garbage".to_string()] {
            let response = server
                .citizen(method.clone(), path, token)
                .send()
                .await
                .unwrap();
            let problem = expect_problem(response, StatusCode::UNAUTHORIZED).await;
            assert!(problem["detail"].as_str().unwrap().contains("token"));
        }
    }
    let expired_detail = expect_problem(
        server
            .citizen(Method::GET, "/profile", &expired)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(
        expired_detail["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // The valid token gets through (404: no profile yet).
    let response = server
        .citizen(Method::GET, "/profile", &valid)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn profile_is_created_then_updated_only_from_the_current_version() {
    let mut config = test_config();
    config.max_body_bytes = 16 * 1024;
    let server = TestServer::start_with(config).await;
    let token = server.citizen_token(CITIZEN).await;
    let missing = server
        .citizen(Method::GET, "/profile", &token)
        .send()
        .await
        .unwrap();
    expect_problem(missing, StatusCode::NOT_FOUND).await;
    let created = create_profile(&server, &token).await;
    assert_eq!(created["version"], 0);
    assert_eq!(created["fiscal_code"], CITIZEN);
    assert_eq!(created["is_inbox_enabled"], true);
    assert_eq!(
        created["service_preferences_settings"],
        json!({"mode": "LEGACY", "version": 0})
    );
    assert_eq!(citizen_get(&server, "/profile", &token).await, created);
    let updated: Value = update_profile(
        &server,
        &token,
        json!({"version": 0, "email": "mario.rossi@example.org", "is_webhook_enabled": false}),
    )
    .await;
    assert_eq!(updated["version"], 1);
    assert_eq!(updated["email"], "mario.rossi@example.org");
    assert_eq!(updated["is_email_validated"], false);
    assert_eq!(updated["is_webhook_enabled"], false);
    // Fields not sent keep their value.
    assert_eq!(updated["preferred_languages"], json!(["it_IT"]));
    // What GET answers can be sent back as an update: read-only fields are ignored.
    let mut echoed = citizen_get(&server, "/profile", &token).await;
    echoed["is_email_validated"] = json!(true);
    echoed["reminder_status"] = json!("ENABLED");
    let round_trip = post_profile(&server, &token, echoed).await;
    assert_eq!(round_trip.status(), StatusCode::OK);
    let round_trip: Value = round_trip.json().await.unwrap();
    assert_eq!(round_trip["version"], 2);
    assert_eq!(round_trip["reminder_status"], "ENABLED");
    assert_eq!(round_trip["is_email_validated"], false);
    let stale = post_profile(
        &server,
        &token,
        json!({"version": 1, "is_inbox_enabled": false}),
    )
    .await;
    let problem = expect_problem(stale, StatusCode::CONFLICT).await;
    assert!(problem["detail"].as_str().unwrap().contains("version"));
    let unversioned = post_profile(&server, &token, json!({"is_inbox_enabled": false})).await;
    let problem = expect_problem(unversioned, StatusCode::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().unwrap().contains("version"));
    for (body, field) in [
        (json!({"version": 2, "email": "not an email"}), "email"),
        (
            json!({"version": 2, "preferred_languages": ["xx_XX"]}),
            "preferred_languages",
        ),
        (json!({"version": 2, "nickname": "Mario"}), "nickname"),
        (
            json!({"version": 2, "blocked_inbox_or_channels": {"bad id!": ["INBOX"]}}),
            "blocked_inbox_or_channels",
        ),
        (json!({"version": "2"}), "version"),
    ] {
        let response = post_profile(&server, &token, body.clone()).await;
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{body}: {problem}"
        );
    }
    let not_json = server
        .citizen(Method::POST, "/profile", &token)
        .header("content-type", "text/plain")
        .body("version=2")
        .send()
        .await
        .unwrap();
    expect_problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let huge = post_profile(
        &server,
        &token,
        json!({"version": 2, "email": format!("{}@example.org", "a".repeat(20 * 1024))}),
    )
    .await;
    expect_problem(huge, StatusCode::PAYLOAD_TOO_LARGE).await;
    // None of the refused updates changed anything.
    assert_eq!(citizen_get(&server, "/profile", &token).await["version"], 2);
}

#[tokio::test]
async fn an_email_validated_by_another_citizen_is_412_until_they_give_it_up() {
    let server = TestServer::start().await;
    let mine = server.citizen_token(CITIZEN).await;
    let theirs = server.citizen_token(OTHER_CITIZEN).await;
    create_profile(&server, &mine).await;
    create_profile(&server, &theirs).await;
    let validate = |fiscal_code: &str| {
        server
            .admin(
                Method::PUT,
                &format!("/adm/profiles/{fiscal_code}/email-validation"),
            )
            .send()
    };
    // Nothing to validate yet.
    expect_problem(validate(CITIZEN).await.unwrap(), StatusCode::CONFLICT).await;
    // Both may name the same address while neither has validated it.
    for token in [&mine, &theirs] {
        let response = post_profile(
            &server,
            token,
            json!({"version": 0, "email": "famiglia@example.org"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let validated = validate(CITIZEN).await.unwrap();
    assert_eq!(validated.status(), StatusCode::OK);
    let validated: Value = validated.json().await.unwrap();
    assert_eq!(validated["is_email_validated"], true);
    assert_eq!(validated["version"], 2);
    assert_eq!(citizen_get(&server, "/profile", &mine).await, validated);
    // Validating again changes nothing.
    let again: Value = validate(CITIZEN).await.unwrap().json().await.unwrap();
    assert_eq!(again, validated);
    // The other citizen can neither validate it nor name it again (case does not matter).
    expect_problem(
        validate(OTHER_CITIZEN).await.unwrap(),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    let taken = post_profile(
        &server,
        &theirs,
        json!({"version": 1, "email": "Famiglia@Example.org"}),
    )
    .await;
    let problem = expect_problem(taken, StatusCode::PRECONDITION_FAILED).await;
    assert!(problem["detail"].as_str().unwrap().contains("email"));
    // The owner may keep sending it.
    let kept = post_profile(
        &server,
        &mine,
        json!({"version": 2, "email": "famiglia@example.org"}),
    )
    .await;
    assert_eq!(kept.status(), StatusCode::OK);
    assert_eq!(
        kept.json::<Value>().await.unwrap()["is_email_validated"],
        true
    );
    // Once the owner moves to another address, the first is free.
    let moved: Value = update_profile(
        &server,
        &mine,
        json!({"version": 3, "email": "mario@example.org"}),
    )
    .await;
    assert_eq!(moved["is_email_validated"], false);
    let response = validate(OTHER_CITIZEN).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Unknown citizen, malformed fiscal code, no admin token.
    expect_problem(
        validate("VRDGPP80A01H501U").await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    let problem =
        expect_problem(validate("NOTACODE").await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().unwrap().contains("fiscal_code"));
    let anonymous = server
        .request(
            Method::PUT,
            &format!("/adm/profiles/{CITIZEN}/email-validation"),
        )
        .send()
        .await
        .unwrap();
    expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn inbox_switches_and_preferences_are_recorded_in_the_subscriptions_feed() {
    let clock = TestClock::at(FIXED_NOW);
    let server = TestServer::start_with_clock(test_config(), clock.clone()).await;
    let (service_id, key) = server.create_service(ALL_GROUPS).await;
    let (_, other_key) = server.create_service(ALL_GROUPS).await;
    let mut token = server.citizen_token(CITIZEN).await;
    let me = hash(CITIZEN);
    let lists = |feed: Value| {
        (
            feed["subscriptions"].clone(),
            feed["unsubscriptions"].clone(),
        )
    };
    create_profile(&server, &token).await;
    let today = feed(&server, &clock, &key).await;
    assert_eq!(today["dateUTC"], "2026-03-15");
    assert_eq!(lists(today), (json!([me]), json!([])));
    // A profile created with the inbox off was never subscribed.
    let theirs = server.citizen_token(OTHER_CITIZEN).await;
    update_profile(&server, &theirs, json!({"is_inbox_enabled": false})).await;
    assert_eq!(
        lists(feed(&server, &clock, &key).await),
        (json!([me]), json!([]))
    );
    // Switching the inbox off and on again; the last change of the day counts.
    update_profile(
        &server,
        &token,
        json!({"version": 0, "is_inbox_enabled": false}),
    )
    .await;
    assert_eq!(
        lists(feed(&server, &clock, &key).await),
        (json!([]), json!([me]))
    );
    update_profile(
        &server,
        &token,
        json!({"version": 1, "is_inbox_enabled": true}),
    )
    .await;
    assert_eq!(
        lists(feed(&server, &clock, &key).await),
        (json!([me]), json!([]))
    );
    // The next day, an update that does not touch the inbox records nothing.
    clock.set(Timestamp::from_millis(FIXED_NOW.as_millis() + DAY_MILLIS));
    token = server.citizen_token(CITIZEN).await;
    update_profile(
        &server,
        &token,
        json!({"version": 2, "is_email_enabled": false}),
    )
    .await;
    let next_day = feed(&server, &clock, &key).await;
    assert_eq!(next_day["dateUTC"], "2026-03-16");
    assert_eq!(lists(next_day), (json!([]), json!([])));
    // AUTO mode: the service may write by default, so enabling it is no change...
    update_profile(
        &server,
        &token,
        json!({"version": 3, "service_preferences_settings": {"mode": "AUTO"}}),
    )
    .await;
    let path = format!("/services/{service_id}/preferences");
    let preference = |inbox: bool| {
        json!({
            "service_id": service_id, "settings_version": 1, "is_inbox_enabled": inbox,
            "is_email_enabled": true, "is_webhook_enabled": true,
            "can_access_message_read_status": true,
        })
    };
    let post = |body: Value| {
        server
            .citizen(Method::POST, &path, &token)
            .json(&body)
            .send()
    };
    assert_eq!(
        post(preference(true)).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        lists(feed(&server, &clock, &key).await),
        (json!([]), json!([]))
    );
    // ...disabling it unsubscribes the citizen from this service only...
    assert_eq!(
        post(preference(false)).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        lists(feed(&server, &clock, &key).await),
        (json!([]), json!([me]))
    );
    assert_eq!(
        lists(feed(&server, &clock, &other_key).await),
        (json!([]), json!([]))
    );
    // ...and enabling it again subscribes them back.
    assert_eq!(
        post(preference(true)).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        lists(feed(&server, &clock, &key).await),
        (json!([me]), json!([]))
    );
}

#[tokio::test]
async fn preferences_follow_the_mode_and_settings_version_and_block_the_inbox() {
    let server = TestServer::start().await;
    let (service_id, key) = server.create_service(ALL_GROUPS).await;
    let token = server.citizen_token(CITIZEN).await;
    let path = format!("/services/{service_id}/preferences");
    let preference = |version: u64, inbox: bool| {
        json!({
            "service_id": service_id, "settings_version": version, "is_inbox_enabled": inbox,
            "is_email_enabled": true, "is_webhook_enabled": false,
            "can_access_message_read_status": true,
        })
    };
    let post = |body: Value| {
        server
            .citizen(Method::POST, &path, &token)
            .json(&body)
            .send()
    };
    // No profile yet.
    expect_problem(
        server
            .citizen(Method::GET, &path, &token)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(
        post(preference(0, false)).await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    create_profile(&server, &token).await;
    // LEGACY mode: per-service preferences are not used, for reading or writing.
    for response in [
        server
            .citizen(Method::GET, &path, &token)
            .send()
            .await
            .unwrap(),
        post(preference(0, false)).await.unwrap(),
    ] {
        let problem = expect_problem(response, StatusCode::CONFLICT).await;
        assert!(problem["detail"].as_str().unwrap().contains("LEGACY"));
    }
    // AUTO: the settings version becomes 1 and every channel is allowed by default.
    let auto: Value = update_profile(
        &server,
        &token,
        json!({"version": 0, "service_preferences_settings": {"mode": "AUTO"}}),
    )
    .await;
    assert_eq!(
        auto["service_preferences_settings"],
        json!({"mode": "AUTO", "version": 1})
    );
    let default = citizen_get(&server, &path, &token).await;
    assert_eq!(
        default,
        json!({
            "service_id": service_id, "settings_version": 1, "is_inbox_enabled": true,
            "is_email_enabled": true, "is_webhook_enabled": true,
            "can_access_message_read_status": true,
        })
    );
    let stale = expect_problem(
        post(preference(0, false)).await.unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        stale["detail"]
            .as_str()
            .unwrap()
            .contains("settings_version")
    );
    let stored = post(preference(1, false)).await.unwrap();
    assert_eq!(stored.status(), StatusCode::OK);
    assert_eq!(stored.json::<Value>().await.unwrap(), preference(1, false));
    assert_eq!(
        citizen_get(&server, &path, &token).await,
        preference(1, false)
    );
    // The service now sees the citizen as not allowed, and its message is rejected.
    let profile: Value = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .fetch_json()
        .await;
    assert_eq!(profile["sender_allowed"], false);
    let rejected = server.submit(&key, CITIZEN).await;
    server.drain().await;
    let status: Value = server
        .api(
            Method::GET,
            &format!("/messages/{CITIZEN}/{rejected}"),
            &key,
        )
        .fetch_json()
        .await;
    assert_eq!(status["status"], "REJECTED");
    assert_eq!(
        citizen_get(&server, "/messages", &token).await["items"],
        json!([])
    );
    // MANUAL: a new settings version; the AUTO preference no longer applies and nothing is
    // allowed by default.
    update_profile(
        &server,
        &token,
        json!({"version": 1, "service_preferences_settings": {"mode": "MANUAL"}}),
    )
    .await;
    let manual = citizen_get(&server, &path, &token).await;
    assert_eq!(manual["settings_version"], 2);
    for flag in [
        "is_inbox_enabled",
        "is_email_enabled",
        "is_webhook_enabled",
        "can_access_message_read_status",
    ] {
        assert_eq!(manual[flag], false, "{flag}");
    }
    // The body names another service, an unknown service, a malformed id.
    let mut elsewhere = preference(2, true);
    elsewhere["service_id"] = json!("another-service");
    let problem = expect_problem(post(elsewhere).await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().unwrap().contains("service_id"));
    expect_problem(
        server
            .citizen(Method::GET, "/services/nope/preferences", &token)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    let problem = expect_problem(
        server
            .citizen(Method::GET, "/services/bad.id/preferences", &token)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("service_id"));
    let mut incomplete = preference(2, true);
    incomplete
        .as_object_mut()
        .unwrap()
        .remove("is_email_enabled");
    let problem = expect_problem(post(incomplete).await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("is_email_enabled")
    );
}

#[tokio::test]
async fn inbox_pages_newest_first_with_cursors_and_the_archived_filter() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let token = server.citizen_token(CITIZEN).await;
    create_profile(&server, &token).await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(server.submit(&key, CITIZEN).await);
    }
    server.drain().await;
    // A message to someone else is not in this inbox.
    let theirs = server.submit(&key, OTHER_CITIZEN).await;
    ids.reverse(); // newest first
    let page = |query: Vec<(&'static str, String)>| {
        let server = &server;
        let token = &token;
        async move {
            let response = server
                .citizen(Method::GET, "/messages", token)
                .query(&query)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{query:?}");
            response.json::<Value>().await.unwrap()
        }
    };
    let size = || ("page_size", "3".to_string());
    let first = page(vec![size()]).await;
    assert_eq!(ids_of(&first), ids[0..3]);
    assert_eq!(first["prev"], ids[0].as_str());
    assert_eq!(first["next"], ids[2].as_str());
    let second = page(vec![size(), ("maximum_id", ids[2].clone())]).await;
    assert_eq!(ids_of(&second), ids[3..6]);
    assert_eq!(second["prev"], ids[3].as_str());
    assert_eq!(second["next"], ids[5].as_str());
    let third = page(vec![size(), ("maximum_id", ids[5].clone())]).await;
    assert_eq!(ids_of(&third), ids[6..7]);
    assert!(third.get("next").is_none(), "the last page has no next");
    // Back from the second page to the first through its prev cursor.
    let back = page(vec![size(), ("minimum_id", ids[3].clone())]).await;
    assert_eq!(ids_of(&back), ids_of(&first));
    // Both bounds at once; the default page holds everything; no id twice, none missing.
    let between = page(vec![
        ("maximum_id", ids[1].clone()),
        ("minimum_id", ids[5].clone()),
    ])
    .await;
    assert_eq!(ids_of(&between), ids[2..5]);
    let all = page(vec![]).await;
    assert_eq!(ids_of(&all), ids);
    assert!(!ids.contains(&theirs));
    // Archive one message of the first page and one of the second.
    for id in [&ids[1], &ids[4]] {
        let response = set_status(
            &server,
            &token,
            id,
            json!({"change_type": "archiving", "is_archived": true}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let inbox = page(vec![size()]).await;
    assert_eq!(
        ids_of(&inbox),
        [ids[0].clone(), ids[2].clone(), ids[3].clone()]
    );
    let rest = page(vec![size(), ("maximum_id", ids[3].clone())]).await;
    assert_eq!(ids_of(&rest), [ids[5].clone(), ids[6].clone()]);
    assert!(rest.get("next").is_none());
    let archive = page(vec![("archived", "true".into())]).await;
    assert_eq!(ids_of(&archive), [ids[1].clone(), ids[4].clone()]);
    assert!(
        archive["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["is_archived"] == true)
    );
    let one = page(vec![("archived", "true".into()), ("page_size", "1".into())]).await;
    assert_eq!(ids_of(&one), [ids[1].clone()]);
    assert_eq!(one["next"], ids[1].as_str());
    // Unarchived, it is back in the inbox at its place.
    let unarchived = set_status(
        &server,
        &token,
        &ids[4],
        json!({"change_type": "archiving", "is_archived": false}),
    )
    .await;
    assert_eq!(unarchived.status(), StatusCode::OK);
    assert_eq!(
        ids_of(&page(vec![("archived", "false".into())]).await),
        [&ids[0], &ids[2], &ids[3], &ids[4], &ids[5], &ids[6]].map(String::clone)
    );
    for (name, value) in [
        ("page_size", "0"),
        ("page_size", "101"),
        ("page_size", "three"),
        ("maximum_id", "x"),
        ("minimum_id", "01J-not-a-ulid"),
        ("archived", "maybe"),
    ] {
        let response = server
            .citizen(Method::GET, "/messages", &token)
            .query(&[(name, value)])
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(name),
            "{name}={value}: {problem}"
        );
    }
    let both_ends = page(vec![("page_size", "1".into())]).await;
    assert_eq!(ids_of(&both_ends).len(), 1);
    let hundred = page(vec![("page_size", "100".into())]).await;
    assert_eq!(ids_of(&hundred).len(), 6);
}

#[tokio::test]
async fn read_is_one_way_and_status_changes_name_what_they_need() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let token = server.citizen_token(CITIZEN).await;
    create_profile(&server, &token).await;
    let id = server.submit(&key, CITIZEN).await;
    server.drain().await;
    // Unread stays unread, then read.
    let unread = set_status(
        &server,
        &token,
        &id,
        json!({"change_type": "reading", "is_read": false}),
    )
    .await;
    assert_eq!(
        unread.json::<Value>().await.unwrap(),
        json!({"is_read": false, "is_archived": false})
    );
    let read = set_status(
        &server,
        &token,
        &id,
        json!({"change_type": "reading", "is_read": true}),
    )
    .await;
    assert_eq!(
        read.json::<Value>().await.unwrap(),
        json!({"is_read": true, "is_archived": false})
    );
    let problem = expect_problem(
        set_status(
            &server,
            &token,
            &id,
            json!({"change_type": "reading", "is_read": false}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("one-way"));
    // Bulk: both at once; unread is refused there too, and nothing is written.
    let problem = expect_problem(
        set_status(
            &server,
            &token,
            &id,
            json!({"change_type": "bulk", "is_read": false, "is_archived": true}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("is_read"));
    assert_eq!(
        citizen_get(&server, &format!("/messages/{id}"), &token).await["is_archived"],
        false
    );
    let bulk = set_status(
        &server,
        &token,
        &id,
        json!({"change_type": "bulk", "is_read": true, "is_archived": true}),
    )
    .await;
    assert_eq!(
        bulk.json::<Value>().await.unwrap(),
        json!({"is_read": true, "is_archived": true})
    );
    let message = citizen_get(&server, &format!("/messages/{id}"), &token).await;
    assert_eq!(
        (message["is_read"].clone(), message["is_archived"].clone()),
        (json!(true), json!(true))
    );
    // Archiving back keeps the message read.
    let unarchived = set_status(
        &server,
        &token,
        &id,
        json!({"change_type": "archiving", "is_archived": false}),
    )
    .await;
    assert_eq!(
        unarchived.json::<Value>().await.unwrap(),
        json!({"is_read": true, "is_archived": false})
    );
    for (body, field) in [
        (json!({"change_type": "reading"}), "is_read"),
        (
            json!({"change_type": "archiving", "is_read": true}),
            "is_archived",
        ),
        (json!({"change_type": "bulk"}), "is_read"),
        (
            json!({"change_type": "deleting", "is_archived": true}),
            "change_type",
        ),
        (json!({"is_read": true}), "change_type"),
        (
            json!({"change_type": "reading", "is_read": "yes"}),
            "is_read",
        ),
    ] {
        let problem = expect_problem(
            set_status(&server, &token, &id, body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{body}: {problem}"
        );
    }
    let problem = expect_problem(
        set_status(
            &server,
            &token,
            "not-an-id",
            json!({"change_type": "reading", "is_read": true}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("id"));
    expect_problem(
        set_status(
            &server,
            &token,
            "01J0000000000000000000000A",
            json!({"change_type": "reading", "is_read": true}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_citizen_cannot_read_another_citizens_message() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let mine = server.citizen_token(CITIZEN).await;
    let theirs = server.citizen_token(OTHER_CITIZEN).await;
    create_profile(&server, &mine).await;
    create_profile(&server, &theirs).await;
    let id = server.submit(&key, CITIZEN).await;
    server.drain().await;
    let hidden = server
        .citizen(Method::GET, &format!("/messages/{id}"), &theirs)
        .send()
        .await
        .unwrap();
    let hidden = expect_problem(hidden, StatusCode::NOT_FOUND).await;
    // Exactly what an id that exists nowhere gets: nothing tells them apart.
    let unknown = server
        .citizen(Method::GET, "/messages/01J0000000000000000000000A", &theirs)
        .send()
        .await
        .unwrap();
    let unknown = expect_problem(unknown, StatusCode::NOT_FOUND).await;
    assert_eq!(
        hidden["detail"].as_str().unwrap().replace(&id, "<id>"),
        unknown["detail"]
            .as_str()
            .unwrap()
            .replace("01J0000000000000000000000A", "<id>")
    );
    let response = set_status(
        &server,
        &theirs,
        &id,
        json!({"change_type": "reading", "is_read": true}),
    )
    .await;
    expect_problem(response, StatusCode::NOT_FOUND).await;
    assert_eq!(
        citizen_get(&server, "/messages", &theirs).await["items"],
        json!([])
    );
    // The owner's flags were not touched.
    assert_eq!(
        citizen_get(&server, &format!("/messages/{id}"), &mine).await["is_read"],
        false
    );
    let problem = expect_problem(
        server
            .citizen(Method::GET, "/messages/not-a-ulid", &mine)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("id"));
}

#[tokio::test]
async fn installations_are_registered_replaced_and_validated() {
    let server = TestServer::start().await;
    let token = server.citizen_token(CITIZEN).await;
    let citizen = FiscalCode::parse(CITIZEN).unwrap();
    let put = |id: &str, body: Value| {
        server
            .citizen(Method::PUT, &format!("/installations/{id}"), &token)
            .json(&body)
            .send()
    };
    let ok = put(
        "device-1",
        json!({"platform": "fcmv1", "push_channel": "token-abc"}),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        ok.json::<Value>().await.unwrap(),
        json!({"installation_id": "device-1", "platform": "fcmv1"})
    );
    // The same installation again replaces it.
    let replaced = put(
        "device-1",
        json!({"platform": "apns", "push_channel": " token-def "}),
    )
    .await
    .unwrap();
    assert_eq!(replaced.status(), StatusCode::OK);
    let stored = server.app.store.installations(&citizen).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].platform, io_core::PushPlatform::Apns);
    assert_eq!(stored[0].push_channel, "token-def");
    // The limit counts characters, not bytes.
    let longest = put(
        "device-2",
        json!({"platform": "apns", "push_channel": "é".repeat(4096)}),
    )
    .await
    .unwrap();
    assert_eq!(longest.status(), StatusCode::OK);
    assert_eq!(
        server
            .app
            .store
            .installations(&citizen)
            .await
            .unwrap()
            .len(),
        2
    );
    for (id, body, field) in [
        (
            "device-1",
            json!({"platform": "blackberry", "push_channel": "t"}),
            "platform",
        ),
        (
            "device-1",
            json!({"platform": "apns", "push_channel": ""}),
            "push_channel",
        ),
        (
            "device-1",
            json!({"platform": "apns", "push_channel": "   "}),
            "push_channel",
        ),
        (
            "device-1",
            json!({"platform": "apns", "push_channel": "x".repeat(4097)}),
            "push_channel",
        ),
        ("device-1", json!({"platform": "apns"}), "push_channel"),
        (
            "dev!ce",
            json!({"platform": "apns", "push_channel": "t"}),
            "installation_id",
        ),
    ] {
        let problem = expect_problem(
            put(id, body.clone()).await.unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{body}: {problem}"
        );
    }
    assert_eq!(
        server
            .app
            .store
            .installations(&citizen)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn ask(server: &TestServer, token: &str, choice: &str) -> Response {
    server
        .citizen(Method::POST, "/user-data-processing", token)
        .json(&json!({ "choice": choice }))
        .send()
        .await
        .unwrap()
}

async fn abort(server: &TestServer, token: &str, choice: &str) -> Response {
    server
        .citizen(
            Method::DELETE,
            &format!("/user-data-processing/{choice}"),
            token,
        )
        .send()
        .await
        .unwrap()
}

fn at(millis: i64) -> Timestamp {
    Timestamp::from_millis(millis)
}

#[tokio::test]
async fn a_download_request_is_carried_out_and_its_archive_holds_everything() {
    let clock = TestClock::at(FIXED_NOW);
    let server = TestServer::start_with_clock(test_config(), clock.clone()).await;
    let (service_id, key) = server.create_service(ALL_GROUPS).await;
    let (special_id, _) = server
        .create_service_with(json!({
            "groups": ALL_GROUPS,
            "service_metadata": {"scope": "NATIONAL", "category": "SPECIAL"}
        }))
        .await;
    let token = server.citizen_token(CITIZEN).await;
    // A message before the profile exists: REJECTED, never in the inbox, still the
    // citizen's data.
    let rejected = server.submit(&key, CITIZEN).await;
    server.drain().await;
    create_profile(&server, &token).await;
    update_profile(
        &server,
        &token,
        json!({"version": 0, "service_preferences_settings": {"mode": "AUTO"}}),
    )
    .await;
    let preference = json!({
        "service_id": service_id, "settings_version": 1, "is_inbox_enabled": true,
        "is_email_enabled": false, "is_webhook_enabled": true,
        "can_access_message_read_status": false,
    });
    let response = server
        .citizen(
            Method::POST,
            &format!("/services/{service_id}/preferences"),
            &token,
        )
        .json(&preference)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = server
        .citizen(Method::PUT, "/installations/device-1", &token)
        .json(&json!({"platform": "apns", "push_channel": "apns-token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = server
        .admin(Method::PUT, "/adm/activations")
        .json(&json!({"service_id": special_id, "fiscal_code": CITIZEN, "status": "ACTIVE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let first = server.submit(&key, CITIZEN).await;
    let second = server.submit(&key, CITIZEN).await;
    server.drain().await;
    let read = set_status(
        &server,
        &token,
        &first,
        json!({"change_type": "reading", "is_read": true}),
    )
    .await;
    assert_eq!(read.status(), StatusCode::OK);
    // Another citizen's data stays out of the archive.
    create_profile(&server, &server.citizen_token(OTHER_CITIZEN).await).await;
    server.submit(&key, OTHER_CITIZEN).await;
    server.drain().await;

    let none = server
        .citizen(Method::GET, "/user-data-processing/DOWNLOAD", &token)
        .send()
        .await
        .unwrap();
    expect_problem(none, StatusCode::NOT_FOUND).await;
    let created = ask(&server, &token, "DOWNLOAD").await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        created.headers()["location"],
        "/app/v1/user-data-processing/DOWNLOAD"
    );
    let pending = json!({
        "choice": "DOWNLOAD", "status": "PENDING",
        "created_at": FIXED_NOW.to_rfc3339(), "updated_at": FIXED_NOW.to_rfc3339(),
    });
    assert_eq!(created.json::<Value>().await.unwrap(), pending);
    let problem =
        expect_problem(ask(&server, &token, "DOWNLOAD").await, StatusCode::CONFLICT).await;
    assert!(problem["detail"].as_str().unwrap().contains("PENDING"));
    assert_eq!(
        citizen_get(&server, "/user-data-processing/DOWNLOAD", &token).await,
        pending
    );
    let early = server
        .citizen(
            Method::GET,
            "/user-data-processing/DOWNLOAD/archive",
            &token,
        )
        .send()
        .await
        .unwrap();
    expect_problem(early, StatusCode::CONFLICT).await;

    let later = at(FIXED_NOW.as_millis() + 60_000);
    clock.set(later);
    assert_eq!(process_due_requests(&server.app, later).await.unwrap(), 1);
    assert_eq!(process_due_requests(&server.app, later).await.unwrap(), 0);
    let closed = citizen_get(&server, "/user-data-processing/DOWNLOAD", &token).await;
    assert_eq!(closed["status"], "CLOSED");
    assert_eq!(closed["updated_at"], later.to_rfc3339());
    let archive = citizen_get(&server, "/user-data-processing/DOWNLOAD/archive", &token).await;
    assert_eq!(archive["fiscal_code"], CITIZEN);
    assert_eq!(
        archive["profile"],
        citizen_get(&server, "/profile", &token).await
    );
    assert_eq!(archive["service_preferences"], json!([preference]));
    assert_eq!(archive["installations"][0]["installation_id"], "device-1");
    assert_eq!(archive["installations"][0]["push_channel"], "apns-token");
    assert_eq!(archive["installations"].as_array().unwrap().len(), 1);
    assert_eq!(
        archive["activations"],
        json!([{"service_id": special_id, "status": "ACTIVE", "updated_at": FIXED_NOW.to_rfc3339()}])
    );
    let messages = archive["messages"].as_array().unwrap();
    let summary: Vec<(String, String, bool)> = messages
        .iter()
        .map(|m| {
            (
                m["message"]["id"].as_str().unwrap().to_string(),
                m["status"].as_str().unwrap().to_string(),
                m["is_read"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (rejected, "REJECTED".to_string(), false),
            (first, "PROCESSED".to_string(), true),
            (second, "PROCESSED".to_string(), false),
        ]
    );
    assert_eq!(messages[0]["rejection_reason"], "USER_NOT_FOUND");
    assert_eq!(messages[1]["message"]["content"], message_body()["content"]);
    assert!(
        messages
            .iter()
            .all(|m| m["message"]["fiscal_code"] == CITIZEN)
    );

    // Finished, so another may be asked; the archive is kept 15 days.
    clock.set(at(later.as_millis() + 15 * DAY_MILLIS - 1));
    let token = server.citizen_token(CITIZEN).await;
    let kept = server
        .citizen(
            Method::GET,
            "/user-data-processing/DOWNLOAD/archive",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), StatusCode::OK);
    clock.set(at(later.as_millis() + 15 * DAY_MILLIS));
    let expired = server
        .citizen(
            Method::GET,
            "/user-data-processing/DOWNLOAD/archive",
            &token,
        )
        .send()
        .await
        .unwrap();
    let problem = expect_problem(expired, StatusCode::NOT_FOUND).await;
    assert!(problem["detail"].as_str().unwrap().contains("15 days"));
    assert_eq!(
        ask(&server, &token, "DOWNLOAD").await.status(),
        StatusCode::CREATED
    );

    for body in [
        json!({"choice": "download"}),
        json!({}),
        json!({"choice": "DELETE", "why": "x"}),
    ] {
        let response = server
            .citizen(Method::POST, "/user-data-processing", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains(if body.get("why").is_some() {
                    "why"
                } else {
                    "choice"
                }),
            "{body}: {problem}"
        );
    }
    let bad = server
        .citizen(Method::GET, "/user-data-processing/EVERYTHING", &token)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(bad, StatusCode::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().unwrap().contains("choice"));
    let not_json = server
        .citizen(Method::POST, "/user-data-processing", &token)
        .body("choice=DELETE")
        .send()
        .await
        .unwrap();
    expect_problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn a_delete_request_waits_its_grace_period_can_be_aborted_and_then_erases_the_citizen() {
    let clock = TestClock::at(FIXED_NOW);
    let server = TestServer::start_with_clock(test_config(), clock.clone()).await;
    let grace = i64::try_from(server.app.config.gdpr.delete_grace_secs * 1000).unwrap();
    let (service_id, key) = server.create_service(ALL_GROUPS).await;
    let (special_id, _) = server
        .create_service_with(json!({
            "groups": ALL_GROUPS,
            "service_metadata": {"scope": "NATIONAL", "category": "SPECIAL"}
        }))
        .await;
    let citizen = FiscalCode::parse(CITIZEN).unwrap();
    let other = FiscalCode::parse(OTHER_CITIZEN).unwrap();
    let mut token = server.citizen_token(CITIZEN).await;
    let theirs = server.citizen_token(OTHER_CITIZEN).await;
    create_profile(&server, &token).await;
    create_profile(&server, &theirs).await;
    update_profile(&server, &token, json!({"version": 0, "email": "mario@example.org", "service_preferences_settings": {"mode": "MANUAL"}})).await;
    let validated = server
        .admin(
            Method::PUT,
            &format!("/adm/profiles/{CITIZEN}/email-validation"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(validated.status(), StatusCode::OK);
    let response = server
        .citizen(
            Method::POST,
            &format!("/services/{service_id}/preferences"),
            &token,
        )
        .json(&json!({
            "service_id": service_id, "settings_version": 1, "is_inbox_enabled": true,
            "is_email_enabled": true, "is_webhook_enabled": true,
            "can_access_message_read_status": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server
        .citizen(Method::PUT, "/installations/device-1", &token)
        .json(&json!({"platform": "fcmv1", "push_channel": "fcm-token"}))
        .send()
        .await
        .unwrap();
    server
        .admin(Method::PUT, "/adm/activations")
        .json(&json!({"service_id": special_id, "fiscal_code": CITIZEN, "status": "ACTIVE"}))
        .send()
        .await
        .unwrap();
    let mine = server.submit(&key, CITIZEN).await;
    let kept = server.submit(&key, OTHER_CITIZEN).await;
    server.drain().await;
    let read = set_status(
        &server,
        &token,
        &mine,
        json!({"change_type": "bulk", "is_read": true, "is_archived": true}),
    )
    .await;
    assert_eq!(read.status(), StatusCode::OK);
    let mine_id = mine.parse().unwrap();

    // Asked, then withdrawn in time: nothing happens at the deadline.
    let created: Value = ask(&server, &token, "DELETE").await.json().await.unwrap();
    assert_eq!(created["status"], "PENDING");
    expect_problem(ask(&server, &token, "DELETE").await, StatusCode::CONFLICT).await;
    let aborted = abort(&server, &token, "DELETE").await;
    assert_eq!(aborted.status(), StatusCode::OK);
    assert_eq!(aborted.json::<Value>().await.unwrap()["status"], "ABORTED");
    let problem =
        expect_problem(abort(&server, &token, "DELETE").await, StatusCode::CONFLICT).await;
    assert!(problem["detail"].as_str().unwrap().contains("ABORTED"));
    assert_eq!(
        process_due_requests(&server.app, at(FIXED_NOW.as_millis() + grace))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        citizen_get(&server, "/user-data-processing/DELETE", &token).await["status"],
        "ABORTED"
    );
    assert!(server.app.store.profile(&citizen).await.unwrap().is_some());
    // A DOWNLOAD cannot be aborted; one that does not exist is not found.
    expect_problem(
        abort(&server, &token, "DOWNLOAD").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        ask(&server, &token, "DOWNLOAD").await.status(),
        StatusCode::CREATED
    );
    let problem = expect_problem(
        abort(&server, &token, "DOWNLOAD").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("DELETE"));

    // Asked again an hour later: not a millisecond before its grace period ends...
    let asked = at(FIXED_NOW.as_millis() + 3_600_000);
    clock.set(asked);
    token = server.citizen_token(CITIZEN).await;
    assert_eq!(
        ask(&server, &token, "DELETE").await.status(),
        StatusCode::CREATED
    );
    // The aborted request's deadline does not carry the new request out early.
    assert_eq!(
        process_due_requests(&server.app, at(FIXED_NOW.as_millis() + grace))
            .await
            .unwrap(),
        1,
        "only the DOWNLOAD"
    );
    let before = at(asked.as_millis() + grace - 1);
    assert_eq!(
        process_due_requests(&server.app, before).await.unwrap(),
        0,
        "not a millisecond early"
    );
    assert_eq!(
        citizen_get(&server, "/user-data-processing/DELETE", &token).await["status"],
        "PENDING"
    );
    assert!(server.app.store.profile(&citizen).await.unwrap().is_some());
    // ...and then everything goes.
    let deadline = at(asked.as_millis() + grace);
    clock.set(deadline);
    token = server.citizen_token(CITIZEN).await;
    assert_eq!(
        process_due_requests(&server.app, deadline).await.unwrap(),
        1
    );
    let closed = citizen_get(&server, "/user-data-processing/DELETE", &token).await;
    assert_eq!(
        closed,
        json!({
            "choice": "DELETE", "status": "CLOSED",
            "created_at": asked.to_rfc3339(), "updated_at": deadline.to_rfc3339(),
        })
    );
    expect_problem(abort(&server, &token, "DELETE").await, StatusCode::CONFLICT).await;
    let profile = server
        .citizen(Method::GET, "/profile", &token)
        .send()
        .await
        .unwrap();
    expect_problem(profile, StatusCode::NOT_FOUND).await;
    assert_eq!(
        citizen_get(&server, "/messages", &token).await["items"],
        json!([])
    );
    assert_eq!(
        citizen_get(&server, "/messages?archived=true", &token).await["items"],
        json!([])
    );
    let store = &server.app.store;
    assert!(store.message(&mine_id).await.unwrap().is_none());
    assert!(
        store
            .messages_to(&citizen, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.installations(&citizen).await.unwrap().is_empty());
    assert!(store.preferences_of(&citizen).await.unwrap().is_empty());
    assert!(store.activations_of(&citizen).await.unwrap().is_empty());
    assert_eq!(
        store.message_flags(&citizen, &mine_id).await.unwrap(),
        Default::default()
    );
    // The DOWNLOAD request went with the rest; the journal stays, naming no one.
    let download = server
        .citizen(Method::GET, "/user-data-processing/DOWNLOAD", &token)
        .send()
        .await
        .unwrap();
    expect_problem(download, StatusCode::NOT_FOUND).await;
    assert!(
        !server
            .app
            .engine
            .verify_journal(&mine_id)
            .await
            .unwrap()
            .is_empty()
    );
    // The services see the citizen unsubscribed and unknown; the address is free.
    let today = feed(&server, &clock, &key).await;
    assert_eq!(today["unsubscriptions"], json!([hash(CITIZEN)]));
    let unknown = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::NOT_FOUND).await;
    assert_eq!(
        store
            .email_owner(&EmailAddress::parse("mario@example.org").unwrap())
            .await
            .unwrap(),
        None
    );
    // The other citizen kept everything.
    assert!(store.profile(&other).await.unwrap().is_some());
    assert_eq!(
        ids_of(
            &citizen_get(
                &server,
                "/messages",
                &server.citizen_token(OTHER_CITIZEN).await
            )
            .await
        ),
        [kept]
    );
    // The citizen may come back: a new profile starts from scratch.
    let again = create_profile(&server, &token).await;
    assert_eq!(
        (again["version"].clone(), again["email"].clone()),
        (json!(0), Value::Null)
    );
}

#[tokio::test]
async fn a_request_is_due_from_its_due_time_until_it_is_carried_out() {
    let clock = TestClock::at(FIXED_NOW);
    let server = TestServer::start_with_clock(test_config(), clock.clone()).await;
    let store = &server.app.store;
    let citizen = FiscalCode::parse(CITIZEN).unwrap();
    let token = server.citizen_token(CITIZEN).await;
    assert_eq!(
        ask(&server, &token, "DOWNLOAD").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        ask(&server, &token, "DELETE").await.status(),
        StatusCode::CREATED
    );
    // Both are open, only the DOWNLOAD is due: the DELETE waits its grace period.
    let due = store.due_data_requests(FIXED_NOW, None, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].fiscal_code.clone(), due[0].request.choice),
        (citizen.clone(), Choice::Download)
    );
    assert_eq!(due[0].request.status, RequestStatus::Pending);
    let later = at(FIXED_NOW.as_millis() + 60_000);
    assert_eq!(process_due_requests(&server.app, later).await.unwrap(), 1);
    let done: DataRequest = store
        .data_request(&citizen, Choice::Download)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (done.status, done.updated_at),
        (RequestStatus::Closed, later)
    );
    // Carried out, it leaves the index in the same write: nothing more is due.
    assert!(
        store
            .due_data_requests(later, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(process_due_requests(&server.app, later).await.unwrap(), 0);
    // An aborted DELETE leaves it too: its deadline passes without effect.
    assert_eq!(
        abort(&server, &token, "DELETE").await.status(),
        StatusCode::OK
    );
    let grace = i64::try_from(server.app.config.gdpr.delete_grace_secs * 1000).unwrap();
    let deadline = at(FIXED_NOW.as_millis() + grace);
    assert!(
        store
            .due_data_requests(deadline, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        process_due_requests(&server.app, deadline).await.unwrap(),
        0
    );
    assert!(store.profile(&citizen).await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_server_with_workers_sweeps_due_requests_in_the_background_and_finishes_before_stopping()
{
    let mut config = test_config();
    config.workers = 1;
    let server = TestServer::start_with(config).await;
    let app = server.app.clone();
    let token = server.citizen_token(CITIZEN).await;
    assert_eq!(
        ask(&server, &token, "DOWNLOAD").await.status(),
        StatusCode::CREATED
    );
    // The next sweep is due; stopping the server lets it run first.
    tokio::time::advance(SWEEP_INTERVAL).await;
    server.stop().await;
    let request: DataRequest = app
        .store
        .data_request(&FiscalCode::parse(CITIZEN).unwrap(), Choice::Download)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.status, RequestStatus::Closed);
}

#[tokio::test]
async fn the_digital_domicile_is_set_by_the_citizen_or_the_admin_and_checked() {
    let server = TestServer::start().await;
    let token = server.citizen_token(CITIZEN).await;
    let domicile = |fiscal_code: &str, body: Value| {
        server
            .admin(
                Method::PUT,
                &format!("/adm/profiles/{fiscal_code}/digital-domicile"),
            )
            .json(&body)
            .send()
    };
    // No profile: the admin cannot attach a domicile to nobody.
    let none = domicile(
        CITIZEN,
        json!({"digital_domicile": "mario.rossi@pec.example.it"}),
    );
    expect_problem(none.await.unwrap(), StatusCode::NOT_FOUND).await;
    let created = create_profile(&server, &token).await;
    assert!(created.get("digital_domicile").is_none(), "{created}");
    // Set as imported from the registry: the domain lower-cased, a new version.
    let set: Value = domicile(
        CITIZEN,
        json!({"digital_domicile": "Mario.Rossi@PEC.example.it"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(set["digital_domicile"], "Mario.Rossi@pec.example.it");
    assert_eq!(set["version"], 1);
    assert_eq!(citizen_get(&server, "/profile", &token).await, set);
    // The same again changes nothing.
    let again: Value = domicile(
        CITIZEN,
        json!({"digital_domicile": "Mario.Rossi@pec.example.it"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(again["version"], 1);
    // The citizen changes it; an update without the field keeps it; null removes it.
    let changed = update_profile(
        &server,
        &token,
        json!({"version": 1, "digital_domicile": "mario@pec.altro.example.it"}),
    )
    .await;
    assert_eq!(changed["digital_domicile"], "mario@pec.altro.example.it");
    let kept = update_profile(
        &server,
        &token,
        json!({"version": 2, "is_inbox_enabled": true}),
    )
    .await;
    assert_eq!(kept["digital_domicile"], "mario@pec.altro.example.it");
    let removed = update_profile(
        &server,
        &token,
        json!({"version": 3, "digital_domicile": null}),
    )
    .await;
    assert!(removed.get("digital_domicile").is_none(), "{removed}");
    // Malformed addresses and bodies are refused, naming the field, and change nothing.
    let bad = post_profile(
        &server,
        &token,
        json!({"version": 4, "digital_domicile": "no-at-sign"}),
    )
    .await;
    let problem = expect_problem(bad, StatusCode::BAD_REQUEST).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("digital_domicile"),
        "{problem}"
    );
    for body in [
        json!({"digital_domicile": "not an address"}),
        json!({"digital_domicile": 42}),
        json!({"domicile": "mario@pec.example.it"}),
        json!({}),
    ] {
        let refused = domicile(CITIZEN, body.clone()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let bad_code = domicile("NOTACODE", json!({"digital_domicile": null}));
    expect_problem(bad_code.await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert_eq!(citizen_get(&server, "/profile", &token).await, removed);
}

#[tokio::test]
async fn a_legal_message_without_a_pec_channel_follows_the_ordinary_rules() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let token = server.citizen_token(CITIZEN).await;
    create_profile(&server, &token).await;
    server
        .admin(
            Method::PUT,
            &format!("/adm/profiles/{CITIZEN}/digital-domicile"),
        )
        .json(&json!({"digital_domicile": "mario.rossi@pec.example.it"}))
        .send()
        .await
        .unwrap();
    let mut body = message_body();
    body["legal_value"] = json!(true);
    let send = |body: Value| {
        server
            .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
            .json(&body)
            .send()
    };
    let response = send(body.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.drain().await;
    let shown: Value = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
        .fetch_json()
        .await;
    assert_eq!(shown["status"], "PROCESSED");
    assert_eq!(shown["message"]["legal_value"], true);
    let channels: Vec<&str> = shown["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["inbox"], "no PEC channel is configured");
    // With the inbox off, there is no way to reach the citizen: rejected, as any message.
    update_profile(
        &server,
        &token,
        json!({"version": 1, "is_inbox_enabled": false}),
    )
    .await;
    let response = send(body).await.unwrap();
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.drain().await;
    let shown: Value = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
        .fetch_json()
        .await;
    assert_eq!(shown["status"], "REJECTED");
    assert_eq!(shown["rejection_reason"], "SERVICE_NOT_ALLOWED");
    // A non-boolean flag is refused.
    let mut bad = message_body();
    bad["legal_value"] = json!("yes");
    let refused = send(bad).await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_catalogue_lists_visible_services_by_institution_searchable_and_paged() {
    let server = TestServer::start().await;
    let token = server.citizen_token(CITIZEN).await;
    let service =
        |name: &str, organization: &str, fiscal_code: &str, visible: bool, scope: &str| {
            json!({
                "groups": ALL_GROUPS,
                "service_name": name,
                "organization_name": organization,
                "organization_fiscal_code": fiscal_code,
                "is_visible": visible,
                "service_metadata": {
                    "scope": scope,
                    "category": "STANDARD",
                    "description": format!("Il servizio {name}"),
                    "privacy_url": "https://comune.example.it/privacy",
                    "email": "urp@comune.example.it",
                    "phone": "+39 06 0606"
                }
            })
        };
    let (tari, _) = server
        .create_service_with(service(
            "Tassa rifiuti",
            "Comune di Roma",
            "01000000008",
            true,
            "LOCAL",
        ))
        .await;
    server
        .create_service_with(service(
            "Anagrafe",
            "Comune di Roma",
            "01000000008",
            true,
            "LOCAL",
        ))
        .await;
    let (hidden, _) = server
        .create_service_with(service(
            "Servizio nascosto",
            "Comune di Roma",
            "01000000008",
            false,
            "LOCAL",
        ))
        .await;
    server
        .create_service_with(service(
            "Bollo auto",
            "Agenzia delle Entrate",
            "02000000006",
            true,
            "NATIONAL",
        ))
        .await;
    server
        .create_service_with(service(
            "Solo bozza",
            "Ente invisibile",
            "03000000004",
            false,
            "NATIONAL",
        ))
        .await;

    let all = citizen_get(&server, "/institutions", &token).await;
    assert_eq!(all["count"], 2, "{all}");
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Agenzia delle Entrate", "Comune di Roma"]);
    assert_eq!(
        all["items"][1]["services"], 2,
        "the invisible service is not counted"
    );

    // Search by a service's name, case ignored; by scope; paged.
    let found = citizen_get(&server, "/institutions?search=RIFIUTI", &token).await;
    assert_eq!(found["count"], 1);
    assert_eq!(found["items"][0]["fiscal_code"], "01000000008");
    let hidden_search = citizen_get(&server, "/institutions?search=nascosto", &token).await;
    assert_eq!(
        hidden_search["count"], 0,
        "invisible services are not searched"
    );
    let national = citizen_get(&server, "/institutions?scope=NATIONAL", &token).await;
    assert_eq!(national["items"][0]["name"], "Agenzia delle Entrate");
    assert_eq!(national["count"], 1);
    let second = citizen_get(&server, "/institutions?limit=1&offset=1", &token).await;
    assert_eq!(
        (
            second["count"].as_u64(),
            second["items"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    assert_eq!(second["items"][0]["name"], "Comune di Roma");

    let services = citizen_get(&server, "/institutions/01000000008/services", &token).await;
    let listed: Vec<&str> = services["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service_name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["Anagrafe", "Tassa rifiuti"]);

    let details = citizen_get(&server, &format!("/services/{tari}"), &token).await;
    assert_eq!(details["organization"]["name"], "Comune di Roma");
    assert_eq!(details["scope"], "LOCAL");
    assert_eq!(details["privacy_url"], "https://comune.example.it/privacy");
    assert_eq!(details["contacts"]["email"], "urp@comune.example.it");
    assert_eq!(details["contacts"]["phone"], "+39 06 0606");

    // Not found, malformed, out of range, unknown parameters, no token.
    for (path, status) in [
        (format!("/services/{hidden}"), StatusCode::NOT_FOUND),
        ("/services/no%20such".to_owned(), StatusCode::BAD_REQUEST),
        (
            "/institutions/03000000004/services".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/institutions/12345/services".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        ("/institutions?limit=0".to_owned(), StatusCode::BAD_REQUEST),
        (
            "/institutions?limit=101".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/institutions?offset=-1".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/institutions?scope=REGIONAL".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/institutions?search={}", "x".repeat(101)),
            StatusCode::BAD_REQUEST,
        ),
        ("/institutions?page=2".to_owned(), StatusCode::BAD_REQUEST),
    ] {
        let response = server
            .citizen(Method::GET, &path, &token)
            .send()
            .await
            .unwrap();
        expect_problem(response, status).await;
    }
    let anonymous = server
        .request(Method::GET, "/app/v1/institutions")
        .send()
        .await
        .unwrap();
    expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
}
