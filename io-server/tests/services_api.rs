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
        .fetch_json()
        .await;
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

    // Decided at accept (`engine.decide_at_accept`), in the write the 201 waited for: already
    // PROCESSED, the inbox delivery SENT, and nothing left for a worker.
    let before: Value = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
        .fetch_json()
        .await;
    assert_eq!(before["status"], "PROCESSED");
    assert_eq!(server.drain_count().await, 0);
    let after: Value = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
        .fetch_json()
        .await;
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

// ---------------------------------------------------------------------------------------------
// Authentication, permissions, source addresses
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_key_or_a_wrong_key_is_401() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let response = server
        .request(Method::GET, &format!("/api/v1/profiles/{CITIZEN}"))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
    let last = if key.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &key[..key.len() - 1]);
    let response = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &wrong)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

/// The status of a profile read with `key`: whether the key authenticates.
async fn profile_read_status(server: &TestServer, key: &str) -> StatusCode {
    server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), key)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn both_keys_work_and_a_regenerated_key_stops_working_while_the_other_goes_on() {
    let server = TestServer::start().await;
    let (id, primary) = server.create_service(ALL_GROUPS).await;
    server.put_profile(CITIZEN).await;
    let keys: Value = server
        .admin(Method::GET, &format!("/adm/services/{id}/keys"))
        .fetch_json()
        .await;
    let secondary = keys["secondary_key"].as_str().unwrap().to_string();
    assert_ne!(primary, secondary);
    for key in [&primary, &secondary] {
        assert_eq!(profile_read_status(&server, key).await, StatusCode::OK);
    }
    let response = server
        .admin(Method::PUT, &format!("/adm/services/{id}/keys"))
        .json(&json!({"key_type": "PRIMARY_KEY"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let regenerated: Value = response.json().await.unwrap();
    assert_ne!(regenerated["primary_key"], primary.as_str());
    assert_eq!(regenerated["secondary_key"], secondary.as_str());
    let old = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &primary)
        .send()
        .await
        .unwrap();
    expect_problem(old, StatusCode::UNAUTHORIZED).await;
    for key in [regenerated["primary_key"].as_str().unwrap(), &secondary] {
        assert_eq!(profile_read_status(&server, key).await, StatusCode::OK);
    }
}

#[tokio::test]
async fn concurrent_key_regenerations_and_group_updates_all_take_effect() {
    let server = TestServer::start().await;
    let (id, first_primary) = server.create_service(ALL_GROUPS).await;
    server.put_profile(CITIZEN).await;
    let first: Value = server
        .admin(Method::GET, &format!("/adm/services/{id}/keys"))
        .fetch_json()
        .await;
    let service: Value = server
        .admin(Method::GET, &format!("/adm/services/{id}"))
        .fetch_json()
        .await;
    // Sixteen regenerations, alternating slots, and a group update, all at once: each
    // regeneration is computed from whatever access it read, so without a version check two
    // of them would hand out the same key, or one would bring back a key another replaced.
    let regenerations = (0..16).map(|n| {
        let slot = if n % 2 == 0 {
            "PRIMARY_KEY"
        } else {
            "SECONDARY_KEY"
        };
        let request = server
            .admin(Method::PUT, &format!("/adm/services/{id}/keys"))
            .json(&json!({ "key_type": slot }));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let keys: Value = response.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{keys}");
            let field = if slot == "PRIMARY_KEY" {
                "primary_key"
            } else {
                "secondary_key"
            };
            (field, keys[field].as_str().unwrap().to_string())
        }
    });
    let mut update = service.clone();
    update.as_object_mut().unwrap().remove("version");
    update["groups"] = json!(ALL_GROUPS);
    let updating = server
        .admin(Method::PUT, &format!("/adm/services/{id}"))
        .json(&update)
        .send();
    let (handed_out, updated) = tokio::join!(futures::future::join_all(regenerations), updating);
    assert_eq!(updated.unwrap().status(), StatusCode::OK);
    let mut distinct = std::collections::BTreeSet::new();
    for (_, key) in &handed_out {
        assert!(
            distinct.insert(key.clone()),
            "key {key} was handed out twice"
        );
    }
    // The keys in force are the last ones handed out in each slot; every earlier key, the
    // first two included, is refused.
    let last: Value = server
        .admin(Method::GET, &format!("/adm/services/{id}/keys"))
        .fetch_json()
        .await;
    for field in ["primary_key", "secondary_key"] {
        let key = last[field].as_str().unwrap();
        assert!(handed_out.iter().any(|(f, k)| *f == field && k == key));
        assert_eq!(profile_read_status(&server, key).await, StatusCode::OK);
    }
    let replaced = handed_out
        .iter()
        .map(|(_, key)| key.as_str())
        .chain([
            first_primary.as_str(),
            first["secondary_key"].as_str().unwrap(),
        ])
        .filter(|key| *key != last["primary_key"] && *key != last["secondary_key"]);
    for key in replaced {
        let old = server
            .api(Method::GET, &format!("/profiles/{CITIZEN}"), key)
            .send()
            .await
            .unwrap();
        expect_problem(old, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn a_limited_key_writes_and_reads_profiles_only_of_authorized_recipients() {
    let server = TestServer::start().await;
    // The default groups are IO's sandbox groups.
    let (_, key) = server
        .create_service_with(json!({ "authorized_recipients": [CITIZEN] }))
        .await;
    server.put_profile(CITIZEN).await;
    server.put_profile(OTHER_CITIZEN).await;
    let allowed = server
        .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::CREATED);
    // The sandbox fiscal code is always authorized.
    let sandbox = server
        .api(Method::POST, "/messages/AAAAAA00A00A000A", &key)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    assert_eq!(sandbox.status(), StatusCode::CREATED);
    let refused = server
        .api(Method::POST, &format!("/messages/{OTHER_CITIZEN}"), &key)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    expect_problem(refused, StatusCode::FORBIDDEN).await;
    // 403, not 404, for a profile outside the list, registered or not.
    let unregistered = format!(
        "BNCGVN80A01H501{}",
        io_core::fiscal_code::compute_check_character("BNCGVN80A01H501").unwrap()
    );
    for fiscal_code in [OTHER_CITIZEN, unregistered.as_str()] {
        let response = server
            .api(Method::GET, &format!("/profiles/{fiscal_code}"), &key)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::FORBIDDEN).await;
    }
}

#[tokio::test]
async fn routes_need_their_permission_group() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(&["ApiMessageRead"]).await;
    server.put_profile(CITIZEN).await;
    let cases = [
        (
            Method::POST,
            format!("/messages/{CITIZEN}"),
            Some(message_body()),
        ),
        (Method::GET, format!("/profiles/{CITIZEN}"), None),
        (
            Method::GET,
            "/subscriptions-feed/2026-11-23".to_string(),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let mut request = server.api(method, &path, &key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let problem = expect_problem(request.send().await.unwrap(), StatusCode::FORBIDDEN).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("permission"),
            "{problem}"
        );
    }
    let (_, writer) = server.create_service(&["ApiMessageWrite"]).await;
    let id = server.submit(&writer, CITIZEN).await;
    let response = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &writer)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn payee_and_advanced_need_their_groups() {
    let server = TestServer::start().await;
    let (_, plain) = server.create_service(&["ApiMessageWrite"]).await;
    let (_, rich) = server
        .create_service(&[
            "ApiMessageWrite",
            "ApiMessageWriteWithPayee",
            "ApiMessageWriteAdvanced",
        ])
        .await;
    let mut with_payee = message_body();
    with_payee["content"]["payment_data"] = json!({
        "amount": 100, "notice_number": "012345678901234567",
        "payee": {"fiscal_code": "00000000000"}
    });
    let mut advanced = message_body();
    advanced["feature_level_type"] = json!("ADVANCED");
    for body in [&with_payee, &advanced] {
        let response = server
            .api(Method::POST, &format!("/messages/{CITIZEN}"), &plain)
            .json(body)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::FORBIDDEN).await;
        let response = server
            .api(Method::POST, &format!("/messages/{CITIZEN}"), &rich)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

#[tokio::test]
async fn source_address_outside_authorized_cidrs_is_403_and_trusted_proxies_are_believed() {
    let mut config = test_config();
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let server = TestServer::start_with(config).await;
    server.put_profile(CITIZEN).await;
    let (_, key) = server
        .create_service_with(json!({ "groups": ALL_GROUPS, "authorized_cidrs": ["10.0.0.0/8"] }))
        .await;
    // Straight from 127.0.0.1: outside 10/8.
    let response = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, StatusCode::FORBIDDEN).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("authorized_cidrs")
    );
    // Through the trusted proxy on 127.0.0.1, for a client in 10/8.
    let response = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .header("X-Forwarded-For", "203.0.113.9, 10.1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A client outside 10/8 behind the proxy.
    let response = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .header("X-Forwarded-For", "10.1.2.3, 203.0.113.9")
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let server = TestServer::start().await;
    let (_, key) = server
        .create_service_with(json!({ "groups": ALL_GROUPS, "authorized_cidrs": ["10.0.0.0/8"] }))
        .await;
    let response = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .header("X-Forwarded-For", "10.1.2.3")
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::FORBIDDEN).await;
}

// ---------------------------------------------------------------------------------------------
// Bodies and validation limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_wrong_types_and_non_json_are_problems() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let path = format!("/messages/{CITIZEN}");
    let response = server
        .api(Method::POST, &path, &key)
        .header("content-type", "application/json")
        .body("{\"content\": {")
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::BAD_REQUEST).await;
    let response = server
        .api(Method::POST, &path, &key)
        .json(&json!({"content": {"subject": 5}}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("content.subject"),
        "{problem}"
    );
    let response = server
        .api(Method::POST, &path, &key)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let mut config = test_config();
    config.max_body_bytes = 64 * 1024;
    let server = TestServer::start_with(config).await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let mut body = message_body();
    body["content"]["markdown"] = json!("x".repeat(70 * 1024));
    let response = server
        .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn fiscal_code_in_path_and_body_is_400_and_in_neither_is_400() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let mut body = message_body();
    body["fiscal_code"] = json!(CITIZEN);
    let both = server
        .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(both, StatusCode::BAD_REQUEST).await;
    let neither = server
        .api(Method::POST, "/messages", &key)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    let problem = expect_problem(neither, StatusCode::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().unwrap().contains("fiscal_code"));
    // In the body only: accepted, with the Location naming it.
    let response = server
        .api(Method::POST, "/messages", &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains(CITIZEN)
    );
    let bad = server
        .api(Method::POST, "/messages/RSSMRA85T10A562X", &key)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    expect_problem(bad, StatusCode::BAD_REQUEST).await;
}

/// One validation limit: a body just inside and one just outside.
struct Limit {
    field: &'static str,
    inside: Value,
    outside: Value,
}

fn with(pointer: &str, value: Value) -> Value {
    let mut body = message_body();
    body["content"]["payment_data"] = json!({"amount": 100, "notice_number": "012345678901234567"});
    body["content"]["prescription_data"] = json!({"nre": "123456789012345"});
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    body.pointer_mut(parent)
        .unwrap_or_else(|| panic!("{pointer}"))[last] = value;
    body
}

#[tokio::test]
async fn every_validation_limit_just_inside_passes_and_just_outside_is_400_naming_the_field() {
    let server = TestServer::start().await;
    // max_allowed_payment_amount is 100,000 cents in the harness.
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let limits = [
        Limit {
            field: "content.subject",
            inside: with("/content/subject", json!("s".repeat(10))),
            outside: with("/content/subject", json!("s".repeat(9))),
        },
        Limit {
            field: "content.subject",
            inside: with("/content/subject", json!("s".repeat(120))),
            outside: with("/content/subject", json!("s".repeat(121))),
        },
        Limit {
            field: "content.markdown",
            inside: with("/content/markdown", json!("m".repeat(80))),
            outside: with("/content/markdown", json!("m".repeat(79))),
        },
        Limit {
            field: "content.markdown",
            inside: with("/content/markdown", json!("m".repeat(10_000))),
            outside: with("/content/markdown", json!("m".repeat(10_001))),
        },
        Limit {
            field: "time_to_live",
            inside: with("/time_to_live", json!(3600)),
            outside: with("/time_to_live", json!(3599)),
        },
        Limit {
            field: "time_to_live",
            inside: with("/time_to_live", json!(604_800)),
            outside: with("/time_to_live", json!(604_801)),
        },
        Limit {
            field: "content.payment_data.amount",
            inside: with("/content/payment_data/amount", json!(1)),
            outside: with("/content/payment_data/amount", json!(0)),
        },
        Limit {
            field: "content.payment_data.amount",
            inside: with("/content/payment_data/amount", json!(100_000)),
            outside: with("/content/payment_data/amount", json!(100_001)),
        },
        Limit {
            field: "content.payment_data.notice_number",
            inside: with(
                "/content/payment_data/notice_number",
                json!("312345678901234567"),
            ),
            outside: with(
                "/content/payment_data/notice_number",
                json!("412345678901234567"),
            ),
        },
        Limit {
            field: "content.payment_data.notice_number",
            inside: with(
                "/content/payment_data/notice_number",
                json!("012345678901234567"),
            ),
            outside: with(
                "/content/payment_data/notice_number",
                json!("01234567890123456"),
            ),
        },
        Limit {
            field: "content.due_date",
            inside: with("/content/due_date", json!("2026-12-31T23:59:59Z")),
            outside: with("/content/due_date", json!("2026-12-31 23:59")),
        },
        Limit {
            field: "content.prescription_data.nre",
            inside: with("/content/prescription_data/nre", json!("n".repeat(15))),
            outside: with("/content/prescription_data/nre", json!("n".repeat(14))),
        },
        Limit {
            field: "feature_level_type",
            inside: with("/feature_level_type", json!("STANDARD")),
            outside: with("/feature_level_type", json!("PREMIUM")),
        },
    ];
    for limit in limits {
        let inside = server
            .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
            .json(&limit.inside)
            .send()
            .await
            .unwrap();
        assert_eq!(
            inside.status(),
            StatusCode::CREATED,
            "{} inside: {}",
            limit.field,
            inside.text().await.unwrap()
        );
        let outside = server
            .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
            .json(&limit.outside)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(outside, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(limit.field),
            "{}: {problem}",
            limit.field
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Idempotency, rate limit, back-pressure
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_same_idempotency_key_returns_the_first_message_and_another_body_is_409() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let send = |body: Value| {
        server
            .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
            .header("Idempotency-Key", "row-42")
            .json(&body)
            .send()
    };
    let first = send(message_body()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_id = first.json::<Value>().await.unwrap()["id"].clone();
    let again = send(message_body()).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first_id);
    let mut other = message_body();
    other["content"]["subject"] = json!("Un altro oggetto del messaggio");
    let conflict = send(other).await.unwrap();
    expect_problem(conflict, StatusCode::CONFLICT).await;
    let bad_key = server
        .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
        .header("Idempotency-Key", "")
        .json(&message_body())
        .send()
        .await
        .unwrap();
    expect_problem(bad_key, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn an_institution_over_its_rate_limit_gets_429_with_retry_after_across_its_services() {
    let mut config = test_config();
    // An hour-long period: the bucket cannot refill during the test, so no timing matters.
    config.rate_limit.default = io_server::config::Tier::Limited {
        calls: 3.try_into().unwrap(),
        per_secs: 3600.try_into().unwrap(),
    };
    let server = TestServer::start_with(config).await;
    server.put_profile(CITIZEN).await;
    let (_, key_a) = server.create_service(ALL_GROUPS).await;
    let (_, key_b) = server.create_service(ALL_GROUPS).await;
    let (_, key_other_org) = server
        .create_service_with(
            json!({"groups": ALL_GROUPS, "organization_fiscal_code": "00000000000"}),
        )
        .await;
    let path = format!("/profiles/{CITIZEN}");
    for (key, remaining) in [(&key_a, "2"), (&key_b, "1"), (&key_a, "0")] {
        let response = server.api(Method::GET, &path, key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-rate-limit-limit"], "3");
        assert_eq!(response.headers()["x-rate-limit-remaining"], remaining);
    }
    let response = server.api(Method::GET, &path, &key_b).send().await.unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1100..=1200).contains(&retry_after), "{retry_after}");
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    // Another institution is not affected.
    let response = server
        .api(Method::GET, &path, &key_other_org)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn submits_beyond_the_backlog_bound_get_429_and_nothing_acknowledged_is_lost() {
    let mut config = test_config();
    config.max_backlog = 3;
    // Decisions in process tasks, so that each accepted message is one queued task.
    config.engine.decide_at_accept = false;
    let server = TestServer::start_with(config).await;
    server.put_profile(CITIZEN).await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let mut accepted = Vec::new();
    // No worker runs: the backlog only grows.
    let refused = loop {
        let response = server
            .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
            .json(&message_body())
            .send()
            .await
            .unwrap();
        if response.status() != StatusCode::CREATED {
            break response;
        }
        accepted.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        assert!(accepted.len() <= 4, "the bound was not enforced");
    };
    assert_eq!(
        accepted.len(),
        4,
        "backlog 0..=3 accepts, then 4 > 3 refuses"
    );
    assert_eq!(refused.headers()["retry-after"], "5");
    let problem = expect_problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(problem["type"].as_str().unwrap().contains("backlog-full"));
    server.drain().await;
    for id in &accepted {
        let message: Value = server
            .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
            .fetch_json()
            .await;
        assert_eq!(message["status"], "PROCESSED");
    }
    // The queue drained: submits are accepted again.
    let response = server
        .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

// ---------------------------------------------------------------------------------------------
// Profiles, rejections, feed, activations
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn profile_check_is_404_without_a_profile_or_with_the_inbox_disabled() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let missing = server
        .api(Method::POST, "/profiles", &key)
        .json(&json!({"fiscal_code": CITIZEN}))
        .send()
        .await
        .unwrap();
    expect_problem(missing, StatusCode::NOT_FOUND).await;
    let mut disabled = profile(CITIZEN);
    disabled.is_inbox_enabled = false;
    io_core::Store::put_profile(&*server.app.store, &disabled)
        .await
        .unwrap();
    let response = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_message_to_a_citizen_without_profile_ends_rejected_with_its_reason() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let id = server.submit(&key, OTHER_CITIZEN).await;
    server.drain().await;
    let message: Value = server
        .api(
            Method::GET,
            &format!("/messages/{OTHER_CITIZEN}/{id}"),
            &key,
        )
        .fetch_json()
        .await;
    assert_eq!(message["status"], "REJECTED");
    assert_eq!(message["rejection_reason"], "USER_NOT_FOUND");
    assert_eq!(message["deliveries"], json!([]));
}

#[tokio::test]
async fn the_subscriptions_feed_validates_its_date() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let ok: Value = server
        .api(Method::GET, "/subscriptions-feed/2026-11-23", &key)
        .fetch_json()
        .await;
    assert_eq!(
        ok,
        json!({"dateUTC": "2026-11-23", "subscriptions": [], "unsubscriptions": []})
    );
    for bad in ["2026-13-01", "23-11-2026", "yesterday"] {
        let response = server
            .api(Method::GET, &format!("/subscriptions-feed/{bad}"), &key)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn activations_are_for_special_services_and_open_their_inbox() {
    let server = TestServer::start().await;
    server.put_profile(CITIZEN).await;
    let (standard_id, standard) = server.create_service(ALL_GROUPS).await;
    let response = server
        .api(Method::PUT, "/activations", &standard)
        .json(&json!({"fiscal_code": CITIZEN, "service_id": standard_id, "status": "ACTIVE"}))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::FORBIDDEN).await;

    let (id, key) = server
        .create_service_with(json!({
            "groups": ALL_GROUPS,
            "service_metadata": {"scope": "NATIONAL", "category": "SPECIAL"}
        }))
        .await;
    let missing = server
        .api(Method::POST, "/activations", &key)
        .json(&json!({"fiscal_code": CITIZEN}))
        .send()
        .await
        .unwrap();
    expect_problem(missing, StatusCode::NOT_FOUND).await;
    // Without an activation a SPECIAL service's message is rejected.
    let before = server.submit(&key, CITIZEN).await;
    server.drain().await;
    let response = server
        .api(Method::PUT, "/activations", &key)
        .json(&json!({"fiscal_code": CITIZEN, "service_id": id, "status": "ACTIVE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let read: Value = server
        .api(Method::POST, "/activations", &key)
        .json(&json!({"fiscal_code": CITIZEN}))
        .fetch_json()
        .await;
    assert_eq!(read["status"], "ACTIVE");
    let after = server.submit(&key, CITIZEN).await;
    server.drain().await;
    for (id, status) in [(before, "REJECTED"), (after, "PROCESSED")] {
        let message: Value = server
            .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
            .fetch_json()
            .await;
        assert_eq!(message["status"], status);
    }
    let other = server
        .api(Method::PUT, "/activations", &key)
        .json(&json!({"fiscal_code": CITIZEN, "service_id": standard_id, "status": "ACTIVE"}))
        .send()
        .await
        .unwrap();
    expect_problem(other, StatusCode::FORBIDDEN).await;
}

/// IO's contract (io-functions-services): `POST /activations/` and `PUT /activations/`, the body
/// `{fiscal_code, status}` with the service taken from the key, the answer with `version`.
#[tokio::test]
async fn activations_follow_io_s_contract_with_versions() {
    let server = TestServer::start().await;
    server.put_profile(CITIZEN).await;
    let (id, key) = server
        .create_service_with(json!({
            "groups": ALL_GROUPS,
            "service_metadata": {"scope": "NATIONAL", "category": "SPECIAL"}
        }))
        .await;
    let put =
        |path: &'static str, body: Value| server.api(Method::PUT, path, &key).json(&body).send();
    let first: Value = put(
        "/activations/",
        json!({"fiscal_code": CITIZEN, "status": "PENDING"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        first,
        json!({"fiscal_code": CITIZEN, "service_id": id, "status": "PENDING", "version": 0})
    );
    // The slash-less path, a service_id that is the caller's, a stale version (ignored).
    let second: Value = put(
        "/activations",
        json!({"fiscal_code": CITIZEN, "service_id": id, "status": "ACTIVE", "version": 0}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(second["version"], 1);
    assert_eq!(second["status"], "ACTIVE");
    let read: Value = server
        .api(Method::POST, "/activations/", &key)
        .json(&json!({"fiscal_code": CITIZEN}))
        .fetch_json()
        .await;
    assert_eq!(read, second);
    // Refusals: another service, no status, an unknown field, a malformed code.
    for (body, status) in [
        (
            json!({"fiscal_code": CITIZEN, "service_id": "another", "status": "ACTIVE"}),
            StatusCode::FORBIDDEN,
        ),
        (json!({"fiscal_code": CITIZEN}), StatusCode::BAD_REQUEST),
        (
            json!({"fiscal_code": CITIZEN, "status": "ACTIVE", "extra": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"fiscal_code": "NOTACODE", "status": "ACTIVE"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let response = put("/activations/", body.clone()).await.unwrap();
        expect_problem(response, status).await;
    }
    let unchanged: Value = server
        .api(Method::POST, "/activations/", &key)
        .json(&json!({"fiscal_code": CITIZEN}))
        .fetch_json()
        .await;
    assert_eq!(unchanged["version"], 1);
}

#[tokio::test]
async fn metrics_count_what_the_engine_committed() {
    let server = TestServer::start().await;
    server.put_profile(CITIZEN).await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    server.submit(&key, CITIZEN).await;
    server.submit(&key, OTHER_CITIZEN).await;
    server.drain().await;
    let text = server
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "io_messages_accepted_total 2",
        "io_messages_processed_total 1",
        "io_messages_rejected_total{reason=\"USER_NOT_FOUND\"} 1",
        "io_deliveries_total{channel=\"inbox\",state=\"SENT\"} 1",
        "io_backlog_tasks 0",
        "io_accept_to_sent_seconds_count{channel=\"inbox\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        text.contains("route=\"/api/v1/messages/{fiscal_code}\",method=\"POST\",status=\"201\"")
    );
    assert!(
        !text.contains(CITIZEN),
        "metrics must not carry fiscal codes"
    );
    assert_eq!(
        server
            .request(Method::GET, "/healthz")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        server
            .request(Method::GET, "/readyz")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// Service management (`/manage/services`)
// ---------------------------------------------------------------------------------------------

/// An institution other than [`ORGANIZATION`].
const OTHER_ORGANIZATION: &str = "15376371009";

/// Issues `organization`'s manage keys through the admin API; the primary one.
async fn manage_key(server: &TestServer, organization: &str) -> String {
    let response = server
        .admin(
            Method::POST,
            &format!("/adm/organizations/{organization}/manage-keys"),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let keys: Value = response.json().await.unwrap();
    keys["primary_key"].as_str().unwrap().to_owned()
}

/// IO's `CmsServicePayload` for [`ORGANIZATION`], named `name`.
fn cms_payload(name: &str) -> Value {
    json!({
        "name": name,
        "description": "Avvisi e scadenze della tassa sui rifiuti.",
        "organization": { "name": "Comune di Roma", "fiscal_code": ORGANIZATION, "department_name": "Tributi" },
        "authorized_recipients": [OTHER_CITIZEN],
        "max_allowed_payment_amount": 100000,
        "metadata": { "scope": "LOCAL", "topic_id": 10, "privacy_url": "https://comune.example.it/privacy" }
    })
}

async fn status_of(server: &TestServer, key: &str, id: &str) -> Value {
    server
        .api(Method::GET, &format!("/manage/services/{id}"), key)
        .fetch_json()
        .await["status"]
        .clone()
}

async fn send_status(server: &TestServer, key: &str, fiscal_code: &str) -> StatusCode {
    server
        .api(Method::POST, &format!("/messages/{fiscal_code}"), key)
        .json(&message_body())
        .send()
        .await
        .unwrap()
        .status()
}

async fn call(server: &TestServer, method: Method, path: &str, key: &str) -> StatusCode {
    server.api(method, path, key).send().await.unwrap().status()
}

async fn review_decision(server: &TestServer, id: &str, body: Value) -> reqwest::Response {
    server
        .admin(Method::PUT, &format!("/adm/services/{id}/review"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_managed_service_goes_from_draft_to_published_to_unpublished() {
    let server = TestServer::start().await;
    server.put_profile(CITIZEN).await;
    server.put_profile(OTHER_CITIZEN).await;
    let manage = manage_key(&server, ORGANIZATION).await;
    // Issued once; a manage key manages, it does not send.
    let again = server
        .admin(
            Method::POST,
            &format!("/adm/organizations/{ORGANIZATION}/manage-keys"),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(again, StatusCode::CONFLICT).await;
    assert_eq!(
        send_status(&server, &manage, CITIZEN).await,
        StatusCode::FORBIDDEN
    );

    // A draft, with its keys, sandboxed: it reaches its authorized recipients only.
    let response = server
        .api(Method::POST, "/manage/services", &manage)
        .json(&cms_payload("Tassa rifiuti"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], json!({ "value": "draft" }));
    assert_eq!(created["metadata"]["topic"]["id"], 10);
    assert_eq!(created["organization"]["fiscal_code"], ORGANIZATION);
    let keys: Value = server
        .api(Method::GET, &format!("/manage/services/{id}/keys"), &manage)
        .fetch_json()
        .await;
    let key = keys["primary_key"].as_str().unwrap().to_owned();
    let refused = server
        .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
        .json(&message_body())
        .send()
        .await
        .unwrap();
    let problem = expect_problem(refused, StatusCode::FORBIDDEN).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not published")
    );
    assert_eq!(
        send_status(&server, &key, OTHER_CITIZEN).await,
        StatusCode::CREATED
    );
    let citizen = server.citizen_token(CITIZEN).await;
    let details = server
        .citizen(Method::GET, &format!("/services/{id}"), &citizen)
        .send()
        .await
        .unwrap();
    assert_eq!(details.status(), StatusCode::NOT_FOUND, "not listed yet");

    // Only an approved draft is released; a draft under review is frozen.
    let path = format!("/manage/services/{id}");
    let release = format!("{path}/release");
    assert_eq!(
        call(&server, Method::POST, &release, &manage).await,
        StatusCode::CONFLICT
    );
    let reviewed = server
        .api(Method::PUT, &format!("{path}/review"), &manage)
        .json(&json!({ "auto_publish": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(reviewed.status(), StatusCode::NO_CONTENT);
    let frozen = server
        .api(Method::PUT, &path, &manage)
        .json(&cms_payload("Altro nome"))
        .send()
        .await
        .unwrap();
    expect_problem(frozen, StatusCode::CONFLICT).await;

    // The platform rejects it (a reason is required); edited, it goes to review again.
    let no_reason = review_decision(&server, &id, json!({ "decision": "reject" })).await;
    expect_problem(no_reason, StatusCode::BAD_REQUEST).await;
    let rejected = review_decision(
        &server,
        &id,
        json!({ "decision": "reject", "reason": "manca il sito" }),
    )
    .await;
    assert_eq!(rejected.status(), StatusCode::OK);
    assert_eq!(
        status_of(&server, &manage, &id).await,
        json!({ "value": "rejected", "reason": "manca il sito" })
    );
    assert_eq!(
        call(&server, Method::PUT, &format!("{path}/review"), &manage).await,
        StatusCode::CONFLICT,
        "a rejected draft goes to review again only once edited"
    );
    let edited = server
        .api(Method::PUT, &path, &manage)
        .json(&cms_payload("Tassa sui rifiuti"))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), StatusCode::OK);
    assert_eq!(
        call(&server, Method::PUT, &format!("{path}/review"), &manage).await,
        StatusCode::NO_CONTENT,
        "no body: no automatic publication"
    );
    let approved = review_decision(&server, &id, json!({ "decision": "approve" })).await;
    assert_eq!(approved.status(), StatusCode::OK);
    assert_eq!(
        status_of(&server, &manage, &id).await,
        json!({ "value": "approved" })
    );

    // Released: listed to citizens and sending to anyone.
    assert_eq!(
        call(&server, Method::POST, &release, &manage).await,
        StatusCode::NO_CONTENT
    );
    let published: Value = server
        .api(Method::GET, &release, &manage)
        .fetch_json()
        .await;
    assert_eq!(published["status"], "published");
    assert_eq!(published["name"], "Tassa sui rifiuti");
    assert_eq!(
        send_status(&server, &key, CITIZEN).await,
        StatusCode::CREATED
    );
    let details: Value = server
        .citizen(Method::GET, &format!("/services/{id}"), &citizen)
        .fetch_json()
        .await;
    assert_eq!(details["service_name"], "Tassa sui rifiuti");

    // A new draft leaves the published version in force.
    let redraft = server
        .api(Method::PUT, &path, &manage)
        .json(&cms_payload("Nome in bozza"))
        .send()
        .await
        .unwrap();
    assert_eq!(redraft.status(), StatusCode::OK);
    let published: Value = server
        .api(Method::GET, &release, &manage)
        .fetch_json()
        .await;
    assert_eq!(published["name"], "Tassa sui rifiuti");
    assert_eq!(
        send_status(&server, &key, CITIZEN).await,
        StatusCode::CREATED
    );

    // Unpublished: unlisted and sandboxed again; unpublishing twice changes nothing.
    for _ in 0..2 {
        assert_eq!(
            call(&server, Method::DELETE, &release, &manage).await,
            StatusCode::NO_CONTENT
        );
    }
    let unpublished: Value = server
        .api(Method::GET, &release, &manage)
        .fetch_json()
        .await;
    assert_eq!(unpublished["status"], "unpublished");
    assert_eq!(
        send_status(&server, &key, CITIZEN).await,
        StatusCode::FORBIDDEN
    );
    let details = server
        .citizen(Method::GET, &format!("/services/{id}"), &citizen)
        .send()
        .await
        .unwrap();
    assert_eq!(details.status(), StatusCode::NOT_FOUND);

    // The history, newest first by default, in pages.
    let expected = [
        "draft",
        "submitted",
        "rejected",
        "draft",
        "submitted",
        "approved",
        "published",
        "draft",
        "unpublished",
    ];
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("{path}/history?order=ASC&limit=4");
        if let Some(token) = &token {
            url.push_str(&format!("&continuationToken={token}"));
        }
        let page: Value = server.api(Method::GET, &url, &manage).fetch_json().await;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["status"]["value"].as_str().unwrap().to_owned());
        }
        match page["continuationToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    let newest: Value = server
        .api(Method::GET, &format!("{path}/history?limit=1"), &manage)
        .fetch_json()
        .await;
    assert_eq!(
        newest["items"][0]["status"],
        json!({ "kind": "publication", "value": "unpublished" })
    );

    // Deleted: gone from the institution's list, and it sends to nobody.
    assert_eq!(
        call(&server, Method::DELETE, &path, &manage).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&server, Method::GET, &path, &manage).await,
        StatusCode::NOT_FOUND
    );
    let list: Value = server
        .api(Method::GET, "/manage/services", &manage)
        .fetch_json()
        .await;
    assert_eq!(list["pagination"]["count"], 0);
    assert_eq!(
        send_status(&server, &key, OTHER_CITIZEN).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn service_management_checks_the_institution_the_payload_and_the_key() {
    let server = TestServer::start().await;
    let manage = manage_key(&server, ORGANIZATION).await;
    let other = manage_key(&server, OTHER_ORGANIZATION).await;
    let created: Value = server
        .api(Method::POST, "/manage/services", &manage)
        .json(&cms_payload("Tassa rifiuti"))
        .fetch_json()
        .await;
    let id = created["id"].as_str().unwrap().to_owned();

    // Another institution neither sees nor changes it, nor creates services for it.
    let path = format!("/manage/services/{id}");
    assert_eq!(
        call(&server, Method::GET, &path, &other).await,
        StatusCode::NOT_FOUND
    );
    let foreign = server
        .api(Method::POST, "/manage/services", &other)
        .json(&cms_payload("Servizio altrui"))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(foreign, StatusCode::FORBIDDEN).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("organization.fiscal_code")
    );

    // Payload errors name the field.
    let mut bad_topic = cms_payload("Tassa rifiuti");
    bad_topic["metadata"]["topic_id"] = json!(999);
    let mut bad_recipient = cms_payload("Tassa rifiuti");
    bad_recipient["authorized_recipients"] = json!(["NOTAFISCALCODE"]);
    let mut no_name = cms_payload("Tassa rifiuti");
    no_name["name"] = json!("  ");
    let mut bad_cidr = cms_payload("Tassa rifiuti");
    bad_cidr["authorized_cidrs"] = json!(["10.0.0.0/99"]);
    for (body, field) in [
        (bad_topic, "metadata.topic_id"),
        (bad_recipient, "authorized_recipients[0]"),
        (no_name, "name"),
        (bad_cidr, "authorized_cidrs[0]"),
    ] {
        let response = server
            .api(Method::PUT, &path, &manage)
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"].as_str().unwrap().starts_with(field),
            "{problem}"
        );
    }

    // Paging of the institution's services.
    for n in 0..3 {
        let response = server
            .api(Method::POST, "/manage/services", &manage)
            .json(&cms_payload(&format!("Servizio {n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let page: Value = server
        .api(Method::GET, "/manage/services?limit=3&offset=2", &manage)
        .fetch_json()
        .await;
    assert_eq!(
        page["pagination"],
        json!({ "offset": 2, "limit": 3, "count": 4 })
    );
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    let bad_limit = server
        .api(Method::GET, "/manage/services?limit=101", &manage)
        .send()
        .await
        .unwrap();
    expect_problem(bad_limit, StatusCode::BAD_REQUEST).await;

    // A service's key reads the topics and nothing else here.
    let keys: Value = server
        .api(Method::GET, &format!("{path}/keys"), &manage)
        .fetch_json()
        .await;
    let key = keys["primary_key"].as_str().unwrap().to_owned();
    let topics: Value = server
        .api(Method::GET, "/manage/services/topics", &key)
        .fetch_json()
        .await;
    assert_eq!(topics["topics"][10]["name"], "Redditi, patrimoni e fisco");
    assert_eq!(
        call(&server, Method::GET, &path, &key).await,
        StatusCode::FORBIDDEN
    );

    // A regenerated key replaces the old one at once; the other slot keeps working.
    let regenerated: Value = server
        .api(Method::PUT, &format!("{path}/keys/primary"), &manage)
        .fetch_json()
        .await;
    assert_ne!(regenerated["primary_key"], keys["primary_key"]);
    assert_eq!(regenerated["secondary_key"], keys["secondary_key"]);
    assert_eq!(
        call(&server, Method::GET, "/manage/services/topics", &key).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &server,
            Method::PUT,
            &format!("{path}/keys/tertiary"),
            &manage
        )
        .await,
        StatusCode::BAD_REQUEST
    );

    // The admin API will not create a service whose id names a manage subscription.
    let response = server
        .admin(Method::POST, "/adm/services")
        .json(&json!({
            "service_id": format!("MANAGE-{ORGANIZATION}"),
            "service_name": "x", "department_name": "x", "organization_name": "x",
            "organization_fiscal_code": ORGANIZATION,
        }))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::BAD_REQUEST).await;
}

/// `{"logo": base64(png)}`.
fn logo_body(png: &[u8]) -> Value {
    use base64::Engine as _;
    json!({ "logo": base64::engine::general_purpose::STANDARD.encode(png) })
}

async fn upload(server: &TestServer, path: &str, key: &str, body: &Value) -> reqwest::Response {
    server
        .api(Method::PUT, path, key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The PNG a citizen's app gets for `path`, or the status when it gets none.
async fn image(server: &TestServer, token: &str, path: &str) -> Result<Vec<u8>, StatusCode> {
    let response = server
        .citizen(Method::GET, path, token)
        .send()
        .await
        .unwrap();
    if response.status() != StatusCode::OK {
        return Err(response.status());
    }
    assert_eq!(response.headers()["content-type"], "image/png");
    Ok(response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn logos_are_validated_kept_per_owner_and_served_to_citizens() {
    let server = TestServer::start().await;
    let manage = manage_key(&server, ORGANIZATION).await;
    let other = manage_key(&server, OTHER_ORGANIZATION).await;
    let created: Value = server
        .api(Method::POST, "/manage/services", &manage)
        .json(&cms_payload("Tassa rifiuti"))
        .fetch_json()
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let service_logo = format!("/manage/services/{id}/logo");
    let institution_logo = format!("/organizations/{ORGANIZATION}/logo");
    let service_png = io_core::sample_png(32, 32);
    let institution_png = io_core::sample_png(64, 16);

    // What is not a well-formed PNG is refused, naming the field and the fault.
    let mut cut = service_png.clone();
    cut.truncate(cut.len() - 4);
    let too_wide = io_core::sample_png(io_core::MAX_LOGO_SIDE + 1, 1);
    for (body, says) in [
        (json!({ "logo": "not base64!" }), "not base64"),
        (logo_body(b"GIF89a, not a PNG"), "not a PNG"),
        (logo_body(&cut), "cut short"),
        (logo_body(&too_wide), "pixels"),
        (json!({ "logo": "" }), "empty"),
        (json!({ "image": "" }), "image"),
    ] {
        let problem = expect_problem(
            upload(&server, &service_logo, &manage, &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("logo") || detail.contains("image"),
            "{detail}"
        );
        assert!(detail.contains(says), "{detail} should say {says}");
    }
    // Over the size limit: the body limit or the logo limit refuses it, nothing is kept.
    let oversized = vec![0u8; io_core::MAX_LOGO_BYTES + 1];
    let refused = upload(&server, &service_logo, &manage, &logo_body(&oversized)).await;
    assert!(
        [StatusCode::BAD_REQUEST, StatusCode::PAYLOAD_TOO_LARGE].contains(&refused.status()),
        "{}",
        refused.status()
    );

    // Another institution can set neither this service's logo nor this institution's.
    assert_eq!(
        upload(&server, &service_logo, &other, &logo_body(&service_png))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    expect_problem(
        upload(
            &server,
            &institution_logo,
            &other,
            &logo_body(&institution_png),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // A service's key needs ApiServiceWrite for its institution's logo, and cannot set a
    // managed service's logo at all.
    let (_, plain_key) = server.create_service(&["ApiMessageWrite"]).await;
    expect_problem(
        upload(
            &server,
            &institution_logo,
            &plain_key,
            &logo_body(&institution_png),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect_problem(
        upload(&server, &service_logo, &plain_key, &logo_body(&service_png)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let (admin_made, writer_key) = server
        .create_service_with(json!({
            "groups": ["ApiMessageWrite", "ApiServiceWrite"],
            "is_visible": true
        }))
        .await;
    assert_eq!(
        upload(
            &server,
            &institution_logo,
            &writer_key,
            &logo_body(&institution_png)
        )
        .await
        .status(),
        StatusCode::ACCEPTED
    );

    // The manage key sets the service's own logo.
    assert_eq!(
        upload(&server, &service_logo, &manage, &logo_body(&service_png))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    // Citizens see the logos of visible services only: the draft's is not served yet, the
    // admin-made service (visible) shows its institution's.
    let citizen = server.citizen_token(CITIZEN).await;
    assert_eq!(
        image(&server, &citizen, &format!("/services/{id}/logo")).await,
        Err(StatusCode::NOT_FOUND)
    );
    assert_eq!(
        image(&server, &citizen, &format!("/services/{admin_made}/logo")).await,
        Ok(institution_png.clone())
    );
    assert_eq!(
        image(
            &server,
            &citizen,
            &format!("/institutions/{ORGANIZATION}/logo")
        )
        .await,
        Ok(institution_png.clone())
    );
    assert_eq!(
        image(
            &server,
            &citizen,
            &format!("/institutions/{OTHER_ORGANIZATION}/logo")
        )
        .await,
        Err(StatusCode::NOT_FOUND)
    );

    // Published, the service shows its own logo; a new upload replaces it.
    server
        .api(
            Method::PUT,
            &format!("/manage/services/{id}/review"),
            &manage,
        )
        .json(&json!({ "auto_publish": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        review_decision(&server, &id, json!({ "decision": "approve" }))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        image(&server, &citizen, &format!("/services/{id}/logo")).await,
        Ok(service_png)
    );
    let replacement = io_core::sample_png(48, 48);
    assert_eq!(
        upload(&server, &service_logo, &manage, &logo_body(&replacement))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        image(&server, &citizen, &format!("/services/{id}/logo")).await,
        Ok(replacement)
    );
}

#[tokio::test]
async fn the_catalogue_filters_by_topic_and_shows_it() {
    let server = TestServer::start().await;
    let (welfare, _) = server
        .create_service_with(json!({
            "service_name": "Assegno sociale",
            "is_visible": true,
            "service_metadata": { "scope": "LOCAL", "category": "STANDARD", "topic_id": 3 }
        }))
        .await;
    let (_, _) = server
        .create_service_with(json!({
            "service_name": "Tassa rifiuti",
            "organization_fiscal_code": OTHER_ORGANIZATION,
            "organization_name": "Comune di Milano",
            "is_visible": true,
            "service_metadata": { "scope": "LOCAL", "category": "STANDARD", "topic_id": 4 }
        }))
        .await;
    let citizen = server.citizen_token(CITIZEN).await;
    let get = |path: String| {
        let request = server.citizen(Method::GET, &path, &citizen);
        async move { request.send().await.unwrap() }
    };

    let page: Value = get("/institutions?topic=3".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["count"], 1);
    assert_eq!(page["items"][0]["fiscal_code"], ORGANIZATION);
    let page: Value = get("/institutions?topic=4&scope=NATIONAL".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["count"], 0,
        "no service is both of topic 4 and national"
    );
    let page: Value = get("/institutions".into()).await.json().await.unwrap();
    assert_eq!(page["count"], 2);
    for bad in ["/institutions?topic=99", "/institutions?topic=x"] {
        let problem = expect_problem(get(bad.into()).await, StatusCode::BAD_REQUEST).await;
        assert!(problem["detail"].as_str().unwrap().starts_with("topic:"));
    }

    let services: Value = get(format!("/institutions/{ORGANIZATION}/services?topic=3"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(services["count"], 1);
    assert_eq!(
        services["items"][0]["topic"],
        json!({ "id": 3, "name": "Benessere sociale" })
    );
    let none: Value = get(format!("/institutions/{ORGANIZATION}/services?topic=4"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["count"], 0);
    let details: Value = get(format!("/services/{welfare}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(details["topic"]["id"], 3);
    let topics: Value = get("/topics".into()).await.json().await.unwrap();
    assert_eq!(
        topics["topics"].as_array().unwrap().len(),
        io_core::TOPICS.len()
    );
    assert_eq!(topics["topics"][3]["name"], "Benessere sociale");
}

// ---------------------------------------------------------------------------------------------
// Remote contents (`/messages-sending/remote-contents/configurations`)
// ---------------------------------------------------------------------------------------------

const RC_PATH: &str = "/messages-sending/remote-contents/configurations";

/// IO's `NewRCConfigurationPublic` for a sender at `base_url`.
fn rc_payload(base_url: &str) -> Value {
    json!({
        "name": "Avvisi TARI",
        "description": "Dettagli degli avvisi di pagamento",
        "has_precondition": "NEVER",
        "disable_lollipop_for": [],
        "is_lollipop_enabled": false,
        "prod_environment": {
            "base_url": base_url,
            "details_authentication": { "header_key_name": "X-Api-Key", "key": "prod-key", "type": "API_KEY" }
        },
        "test_environment": {
            "base_url": base_url,
            "details_authentication": { "header_key_name": "X-Api-Key", "key": "test-key", "type": "API_KEY" },
            "test_users": [OTHER_CITIZEN]
        }
    })
}

#[tokio::test]
async fn remote_content_configurations_belong_to_their_institution_and_are_checked() {
    let server = TestServer::start().await;
    let manage = manage_key(&server, ORGANIZATION).await;
    let other = manage_key(&server, OTHER_ORGANIZATION).await;
    let response = server
        .api(Method::POST, RC_PATH, &manage)
        .json(&rc_payload("https://avvisi.example.it/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let id = created["configuration_id"].as_str().unwrap().to_owned();
    assert_eq!(created["user_id"], ORGANIZATION);
    assert_eq!(
        created["test_environment"]["test_users"],
        json!([OTHER_CITIZEN])
    );
    assert_eq!(
        created["prod_environment"]["details_authentication"]["type"],
        "API_KEY"
    );
    let one = format!("{RC_PATH}/{id}");
    assert_eq!(
        server.api(Method::GET, &one, &manage).fetch_json().await,
        created
    );

    // Replaced whole.
    let mut changed = rc_payload("https://nuovo.example.it");
    changed["has_precondition"] = json!("ONCE");
    changed.as_object_mut().unwrap().remove("test_environment");
    let replaced = server
        .api(Method::PUT, &one, &manage)
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::NO_CONTENT);
    let read: Value = server.api(Method::GET, &one, &manage).fetch_json().await;
    assert_eq!(read["has_precondition"], "ONCE");
    assert_eq!(
        read["prod_environment"]["base_url"],
        "https://nuovo.example.it"
    );
    assert!(read.get("test_environment").is_none());
    let list: Value = server.api(Method::GET, RC_PATH, &manage).fetch_json().await;
    assert_eq!(list["rcConfigList"], json!([read]));

    // Another institution neither sees nor changes it; a service's key manages nothing.
    assert_eq!(
        call(&server, Method::GET, &one, &other).await,
        StatusCode::NOT_FOUND
    );
    let theirs: Value = server.api(Method::GET, RC_PATH, &other).fetch_json().await;
    assert_eq!(theirs["rcConfigList"], json!([]));
    let foreign = server
        .api(Method::PUT, &one, &other)
        .json(&rc_payload("https://altro.example.it"))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let (_, service_key) = server.create_service(&["ApiMessageWrite"]).await;
    assert_eq!(
        call(&server, Method::GET, RC_PATH, &service_key).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &server,
            Method::GET,
            &format!("{RC_PATH}/not-a-ulid"),
            &manage
        )
        .await,
        StatusCode::BAD_REQUEST
    );

    // Each refusal names its field; the SSRF guard refuses internal addresses.
    let refusals = [
        ("/is_lollipop_enabled", json!(true), "is_lollipop_enabled"),
        ("/name", json!(""), "name"),
        (
            "/prod_environment/base_url",
            json!("http://127.0.0.1:8080"),
            "prod_environment.base_url",
        ),
        (
            "/prod_environment/base_url",
            json!("ftp://avvisi.example.it"),
            "prod_environment.base_url",
        ),
        (
            "/test_environment/base_url",
            json!("http://avvisi.example.it/api"),
            "only https",
        ),
        (
            "/prod_environment/details_authentication/header_key_name",
            json!("Host"),
            "prod_environment.details_authentication.header_key_name",
        ),
        (
            "/test_environment/test_users",
            json!(["NOTAFISCALCODE"]),
            "test_environment.test_users[0]",
        ),
        ("/has_precondition", json!("SOMETIMES"), "has_precondition"),
    ];
    for (pointer, value, field) in refusals {
        let mut body = rc_payload("https://avvisi.example.it/api");
        *body.pointer_mut(pointer).unwrap() = value;
        let response = server
            .api(Method::POST, RC_PATH, &manage)
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{pointer}: {problem}"
        );
    }
    let list: Value = server.api(Method::GET, RC_PATH, &manage).fetch_json().await;
    assert_eq!(
        list["rcConfigList"].as_array().unwrap().len(),
        1,
        "nothing refused was kept"
    );
}

/// What the loopback sender's server saw of one request: its path and the headers io sends.
#[derive(Debug, Clone, PartialEq)]
struct SenderRequest {
    path: String,
    fiscal_code: Option<String>,
    api_key: Option<String>,
}

/// A sender's server on loopback answering `GET /api/messages/{id}` as IO's third-party
/// message API does; `broken` answers 500. Returns its base URL, what it saw, and the handle
/// that stops it.
async fn sender_server() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<SenderRequest>>>,
    tokio::task::JoinHandle<()>,
) {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, Uri};
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<SenderRequest>>> = Arc::default();
    async fn details(
        State(seen): State<Arc<Mutex<Vec<SenderRequest>>>>,
        uri: Uri,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        seen.lock().unwrap().push(SenderRequest {
            path: uri.path().to_owned(),
            fiscal_code: header("fiscal_code"),
            api_key: header("x-api-key"),
        });
        if id == "broken" {
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
        }
        axum::Json(json!({
            "details": { "importo": "120,00 EUR", "riferimento": id },
            "attachments": []
        }))
        .into_response()
    }
    let router = axum::Router::new()
        .route("/api/messages/{id}", axum::routing::get(details))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (base, seen, handle)
}

/// A message of `key`'s service to `citizen` whose details are the sender's `id`.
async fn submit_remote(
    server: &TestServer,
    key: &str,
    citizen: &str,
    id: &str,
    configuration: &str,
) -> reqwest::Response {
    let mut body = message_body();
    body["content"]["third_party_data"] = json!({
        "id": id,
        "has_remote_content": true,
        "summary": "Avviso di pagamento TARI",
        "configuration_id": configuration
    });
    server
        .api(Method::POST, &format!("/messages/{citizen}"), key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// [`submit_remote`] accepted (201) and delivered to the inbox: the message's id.
async fn sent_remote(
    server: &TestServer,
    key: &str,
    citizen: &str,
    id: &str,
    configuration: &str,
) -> String {
    let response = submit_remote(server, key, citizen, id, configuration).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let message = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.drain().await;
    message
}

#[tokio::test]
async fn a_citizen_reads_a_message_s_details_from_its_sender_and_a_sender_down_loses_nothing() {
    let (base_url, seen, _sender) = sender_server().await;
    let mut config = test_config();
    // The sender's server is on loopback, which the SSRF guard refuses unless allowed (and
    // the callbacks' switch does not open it).
    config.remote_contents.allow_private_addresses = true;
    let server = TestServer::start_with(config).await;
    server.put_profile(CITIZEN).await;
    server.put_profile(OTHER_CITIZEN).await;
    let manage = manage_key(&server, ORGANIZATION).await;
    let configuration: Value = server
        .api(Method::POST, RC_PATH, &manage)
        .json(&rc_payload(&base_url))
        .fetch_json()
        .await;
    let configuration = configuration["configuration_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, key) = server.create_service(&["ApiMessageWrite"]).await;

    // Only a configuration of the sender's own institution may be named.
    let other = manage_key(&server, OTHER_ORGANIZATION).await;
    let foreign: Value = server
        .api(Method::POST, RC_PATH, &other)
        .json(&rc_payload(&base_url))
        .fetch_json()
        .await;
    for named in [
        foreign["configuration_id"].as_str().unwrap().to_owned(),
        ulid::Ulid::new().to_string(),
    ] {
        let refused = submit_remote(&server, &key, CITIZEN, "AVV-1", &named).await;
        let problem = expect_problem(refused, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("content.third_party_data.configuration_id")
        );
    }

    // The citizen reads the details; io asked the production environment with its key, the
    // citizen's fiscal code, and the sender's id as one path segment.
    // An id that is not one path segment is refused: the read would go elsewhere.
    for not_a_segment in ["..", "AVV/1"] {
        let refused = submit_remote(&server, &key, CITIZEN, not_a_segment, &configuration).await;
        expect_problem(refused, StatusCode::BAD_REQUEST).await;
    }
    let message_id = sent_remote(&server, &key, CITIZEN, "AVV 1?2026", &configuration).await;
    let token = server.citizen_token(CITIZEN).await;
    let message: Value = server
        .citizen(Method::GET, &format!("/messages/{message_id}"), &token)
        .fetch_json()
        .await;
    assert_eq!(message["content"]["third_party_data"]["id"], "AVV 1?2026");
    let details: Value = server
        .citizen(
            Method::GET,
            &format!("/third-party-messages/{message_id}"),
            &token,
        )
        .fetch_json()
        .await;
    assert_eq!(details["id"], message_id.as_str());
    assert_eq!(
        details["third_party_message"]["details"]["riferimento"],
        "AVV 1?2026"
    );
    assert_eq!(
        seen.lock().unwrap().last().cloned().unwrap(),
        SenderRequest {
            path: "/api/messages/AVV%201%3F2026".to_owned(),
            fiscal_code: Some(CITIZEN.to_owned()),
            api_key: Some("prod-key".to_owned()),
        }
    );

    // A test user is served by the test environment, with its key.
    let tester_message = sent_remote(&server, &key, OTHER_CITIZEN, "AVV-2", &configuration).await;
    let tester = server.citizen_token(OTHER_CITIZEN).await;
    let answer = server
        .citizen(
            Method::GET,
            &format!("/third-party-messages/{tester_message}"),
            &tester,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        seen.lock().unwrap().last().unwrap().api_key.as_deref(),
        Some("test-key")
    );
    // Another citizen's message is not found.
    let foreign_read = server
        .citizen(
            Method::GET,
            &format!("/third-party-messages/{tester_message}"),
            &token,
        )
        .send()
        .await
        .unwrap();
    expect_problem(foreign_read, StatusCode::NOT_FOUND).await;

    // A sender that fails answers 502 with Retry-After; one that is down, 502 too; the message
    // itself stays readable.
    let broken = sent_remote(&server, &key, CITIZEN, "broken", &configuration).await;
    let failed = server
        .citizen(
            Method::GET,
            &format!("/third-party-messages/{broken}"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert!(failed.headers().contains_key("retry-after"));
    let problem = expect_problem(failed, StatusCode::BAD_GATEWAY).await;
    assert!(problem["detail"].as_str().unwrap().contains("answered 500"));
    // The citizen's error never shows the sender's address.
    assert!(!problem["detail"].as_str().unwrap().contains("127.0.0.1"));
    // A sender whose server is down: nothing listens at its address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("http://{}/api", closed.local_addr().unwrap());
    drop(closed);
    let down_configuration: Value = server
        .api(Method::POST, RC_PATH, &manage)
        .json(&rc_payload(&down_url))
        .fetch_json()
        .await;
    let message_id = sent_remote(
        &server,
        &key,
        CITIZEN,
        "AVV-3",
        down_configuration["configuration_id"].as_str().unwrap(),
    )
    .await;
    let down = server
        .citizen(
            Method::GET,
            &format!("/third-party-messages/{message_id}"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert!(down.headers().contains_key("retry-after"));
    let problem = expect_problem(down, StatusCode::BAD_GATEWAY).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("could not be reached"), "{problem}");
    assert!(!detail.contains("127.0.0.1"), "{problem}");
    let still: Value = server
        .citizen(Method::GET, &format!("/messages/{message_id}"), &token)
        .fetch_json()
        .await;
    assert_eq!(
        still["content"]["third_party_data"]["summary"],
        "Avviso di pagamento TARI"
    );
}

#[tokio::test]
async fn service_management_ignores_query_parameters_it_does_not_know_as_io_does() {
    let server = TestServer::start().await;
    let manage = manage_key(&server, ORGANIZATION).await;
    let created: Value = server
        .api(Method::POST, "/manage/services", &manage)
        .json(&cms_payload("Tassa rifiuti"))
        .fetch_json()
        .await;
    let id = created["id"].as_str().unwrap();
    for path in [
        "/manage/services?offset=0&client=portal".to_owned(),
        format!("/manage/services/{id}/history?order=ASC&trace=1"),
    ] {
        assert_eq!(
            call(&server, Method::GET, &path, &manage).await,
            StatusCode::OK,
            "{path}"
        );
    }
    // A known parameter out of range is still refused.
    assert_eq!(
        call(&server, Method::GET, "/manage/services?limit=0", &manage).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_admin_api_lists_the_drafts_waiting_for_review() {
    let server = TestServer::start().await;
    let manage = manage_key(&server, ORGANIZATION).await;
    let queue = || async {
        let queue: Value = server.admin(Method::GET, "/adm/reviews").fetch_json().await;
        queue["items"].clone()
    };
    assert_eq!(queue().await, json!([]));
    let mut ids = Vec::new();
    for name in ["Tassa rifiuti", "Mensa scolastica", "Bozza"] {
        let created: Value = server
            .api(Method::POST, "/manage/services", &manage)
            .json(&cms_payload(name))
            .fetch_json()
            .await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    for (id, auto_publish) in [(&ids[0], true), (&ids[1], false)] {
        let reviewed = server
            .api(
                Method::PUT,
                &format!("/manage/services/{id}/review"),
                &manage,
            )
            .json(&json!({ "auto_publish": auto_publish }))
            .send()
            .await
            .unwrap();
        assert_eq!(reviewed.status(), StatusCode::NO_CONTENT);
    }
    let waiting = queue().await;
    let listed: Vec<&str> = waiting
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["service_id"].as_str().unwrap())
        .collect();
    let mut expected = vec![ids[0].as_str(), ids[1].as_str()];
    expected.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "the two under review, not the draft");
    let first = waiting
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["service_id"] == ids[0].as_str())
        .unwrap();
    assert_eq!(first["auto_publish"], true);
    assert_eq!(first["organization_fiscal_code"], ORGANIZATION);
    assert_eq!(first["service_name"], "Tassa rifiuti");
    // Decided, it leaves the queue.
    assert_eq!(
        review_decision(&server, &ids[0], json!({ "decision": "approve" }))
            .await
            .status(),
        StatusCode::OK
    );
    let left = queue().await;
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["service_id"], ids[1].as_str());
}

#[tokio::test]
async fn reads_of_one_sender_beyond_the_concurrency_bound_are_refused_at_once() {
    use std::sync::Arc;
    // A sender's server that says when a read arrives and holds it until told to answer.
    let gate = Arc::new(tokio::sync::Notify::new());
    let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<()>();
    let held = gate.clone();
    let router = axum::Router::new().route(
        "/api/messages/{id}",
        axum::routing::get(move || {
            let held = held.clone();
            let arrived = arrived.clone();
            async move {
                arrived.send(()).unwrap();
                held.notified().await;
                axum::Json(json!({ "details": {} }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let mut config = test_config();
    config.remote_contents.allow_private_addresses = true;
    config.remote_contents.max_concurrent_reads = 1;
    let server = TestServer::start_with(config).await;
    server.put_profile(CITIZEN).await;
    let manage = manage_key(&server, ORGANIZATION).await;
    let configuration: Value = server
        .api(Method::POST, RC_PATH, &manage)
        .json(&rc_payload(&base_url))
        .fetch_json()
        .await;
    let configuration = configuration["configuration_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, key) = server.create_service(&["ApiMessageWrite"]).await;
    let id = sent_remote(&server, &key, CITIZEN, "AVV-1", &configuration).await;
    let token = server.citizen_token(CITIZEN).await;
    let path = format!("/third-party-messages/{id}");

    // The first read holds the configuration's one permit while the sender holds it.
    let first = tokio::spawn(server.citizen(Method::GET, &path, &token).send());
    arrivals.recv().await.unwrap();
    // A second one is refused at once, 503 with Retry-After, instead of piling up.
    let refused = server
        .citizen(Method::GET, &path, &token)
        .send()
        .await
        .unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    expect_problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    gate.notify_one();
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    // The permit is back: the next read goes through.
    let next = tokio::spawn(server.citizen(Method::GET, &path, &token).send());
    arrivals.recv().await.unwrap();
    gate.notify_one();
    assert_eq!(next.await.unwrap().unwrap().status(), StatusCode::OK);
}
