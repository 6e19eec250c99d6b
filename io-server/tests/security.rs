//! The security suite: each finding of the red-team pass (issue "Hardening") as a test that
//! failed before its fix, over a real server on loopback.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

// ---------------------------------------------------------------------------------------------
// 1. The forwarded client address
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_supplied_forwarded_for_line_is_not_believed_ahead_of_the_proxys() {
    let mut config = test_config();
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let server = TestServer::start_with(config).await;
    server.put_profile(CITIZEN).await;
    let (_, key) = server
        .create_service_with(json!({ "groups": ALL_GROUPS, "authorized_cidrs": ["10.9.9.0/24"] }))
        .await;
    let path = format!("/profiles/{CITIZEN}");
    // HAProxy appends its own line: the client's forged line comes first.
    let forged = server
        .api(Method::GET, &path, &key)
        .header("X-Forwarded-For", "10.9.9.5")
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .unwrap();
    let problem = expect_problem(forged, StatusCode::FORBIDDEN).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("203.0.113.9"),
        "{problem}"
    );
    let genuine = server
        .api(Method::GET, &path, &key)
        .header("X-Forwarded-For", "203.0.113.9")
        .header("X-Forwarded-For", "10.9.9.5")
        .send()
        .await
        .unwrap();
    assert_eq!(genuine.status(), StatusCode::OK);
    // An unreadable address where the client's should be: refused, not taken for the proxy.
    let unreadable = server
        .api(Method::GET, &path, &key)
        .header("X-Forwarded-For", "10.9.9.5, not-an-address")
        .send()
        .await
        .unwrap();
    expect_problem(unreadable, StatusCode::FORBIDDEN).await;
    // The RFC 7239 header is not read unless configured: a client could send either.
    let other_header = server
        .api(Method::GET, &path, &key)
        .header("Forwarded", "for=10.9.9.5")
        .send()
        .await
        .unwrap();
    expect_problem(other_header, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn the_forwarded_header_is_read_when_configured_and_ipv6_networks_work() {
    let mut config = test_config();
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    config.proxy_header = io_server::request_headers::ProxyHeader::Forwarded;
    let server = TestServer::start_with(config).await;
    server.put_profile(CITIZEN).await;
    let (_, key) = server
        .create_service_with(
            json!({ "groups": ALL_GROUPS, "authorized_cidrs": ["2001:db8:cafe::/48"] }),
        )
        .await;
    let path = format!("/profiles/{CITIZEN}");
    let inside = server
        .api(Method::GET, &path, &key)
        .header("Forwarded", r#"for="[2001:db8:cafe::17]:4711";proto=https"#)
        .send()
        .await
        .unwrap();
    assert_eq!(inside.status(), StatusCode::OK);
    let outside = server
        .api(Method::GET, &path, &key)
        .header("Forwarded", "for=\"[2001:db8:cafe::17]\"")
        .header("Forwarded", "for=198.51.100.7")
        .send()
        .await
        .unwrap();
    expect_problem(outside, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn credentials_given_twice_are_refused_not_picked() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    let twice = server
        .api(Method::GET, &format!("/profiles/{CITIZEN}"), &key)
        .header("Ocp-Apim-Subscription-Key", "another")
        .send()
        .await
        .unwrap();
    expect_problem(twice, StatusCode::BAD_REQUEST).await;
    let admin_twice = server
        .admin(Method::GET, "/adm/services")
        .header("Authorization", "Bearer another")
        .send()
        .await
        .unwrap();
    expect_problem(admin_twice, StatusCode::BAD_REQUEST).await;
}

// ---------------------------------------------------------------------------------------------
// 2. Metrics cardinality and 405
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn made_up_methods_get_a_405_problem_before_authentication_and_add_no_series() {
    let server = TestServer::start().await;
    let metrics = |server: &TestServer| {
        let request = server.request(Method::GET, "/metrics");
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let before = metrics(&server).await.len();
    for n in 0..100 {
        let method =
            Method::from_bytes(format!("INVENTED{n}{}", "X".repeat(2000)).as_bytes()).unwrap();
        // No key at all: the method is refused first, with a problem and the Allow header.
        let response = server
            .request(method, &format!("/api/v1/messages/{CITIZEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "POST");
        let problem = expect_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
        assert_eq!(problem["status"], 405);
    }
    let wrong_known = server
        .request(Method::DELETE, "/adm/services")
        .send()
        .await
        .unwrap();
    expect_problem(wrong_known, StatusCode::METHOD_NOT_ALLOWED).await;
    let after = metrics(&server).await;
    assert!(
        !after.contains("INVENTED"),
        "a made-up method became a label"
    );
    // The /metrics scrape itself adds at most a few series.
    assert!(
        after.len() < before + 4_000,
        "{} -> {}",
        before,
        after.len()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. The data directory is private
// ---------------------------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn the_data_directory_and_its_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("io-data");
    let config = io_server::ServerConfig {
        data: data.clone(),
        admin_token: Some("t".into()),
        ..io_server::ServerConfig::default()
    };
    let opened = io_server::App::open(config.clone()).unwrap();
    assert_eq!(mode(&data), 0o700);
    let mut seen = 0;
    let mut stack = vec![data.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 2,
        "the store and the secrets are files of the directory"
    );
    drop(opened);
    // Writable by others: refused with a clear error.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = io_server::App::open(config)
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("writable by other users"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// 4. No recipient oracle
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn another_services_message_answers_exactly_as_a_missing_one() {
    let server = TestServer::start().await;
    let (_, key_a) = server.create_service(ALL_GROUPS).await;
    let (_, key_b) = server.create_service(ALL_GROUPS).await;
    server.put_profile(CITIZEN).await;
    let id = server.submit(&key_a, CITIZEN).await;
    let read = |key: String, fiscal_code: &'static str, id: String| {
        let request = server.api(Method::GET, &format!("/messages/{fiscal_code}/{id}"), &key);
        async move {
            let problem =
                expect_problem(request.send().await.unwrap(), StatusCode::NOT_FOUND).await;
            problem.to_string().replace(&id, "ID")
        }
    };
    let unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV".to_string();
    let of_another_service = read(key_b.clone(), CITIZEN, id.clone()).await;
    assert_eq!(
        of_another_service,
        read(key_b.clone(), CITIZEN, unknown).await
    );
    assert_eq!(
        of_another_service,
        read(key_b, OTHER_CITIZEN, id.clone()).await
    );
    assert_eq!(
        of_another_service,
        read(key_a.clone(), OTHER_CITIZEN, id.clone()).await
    );
    let own = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key_a)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// 6. A damaged record is an error an operator sees, not "retry later"
// ---------------------------------------------------------------------------------------------

/// Runs `io-server store check --data <dir>`; its exit code and output.
fn store_check(dir: &std::path::Path) -> (i32, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_io-server"))
        .args(["store", "check", "--data"])
        .arg(dir)
        .env_remove("IO_DATA")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn a_damaged_record_is_a_500_readyz_and_store_check_say_so() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    server.put_profile(CITIZEN).await;
    let id = server.submit(&key, CITIZEN).await;
    let intact = server.submit(&key, CITIZEN).await;
    let dir = server.stop_keeping_data().await;
    let (code, text) = store_check(dir.path());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("the store is intact"), "{text}");

    // One byte of one message's body changes, as a disk fault would leave it.
    {
        let db = sled::open(dir.path().join("store")).unwrap();
        let tree = db.open_tree("io").unwrap();
        let raw = id.parse::<io_core::MessageId>().unwrap().to_bytes();
        let key = [&[b'm'][..], &raw[..]].concat();
        let mut value = tree.get(&key).unwrap().expect("the message body").to_vec();
        value[0] ^= 0x5a;
        tree.insert(&key, value).unwrap();
        db.flush().unwrap();
    }
    let (code, text) = store_check(dir.path());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("DAMAGED message"), "{text}");

    let server = TestServer::start_in(
        test_config(),
        std::sync::Arc::new(io_core::SystemClock),
        dir,
    )
    .await;
    let ready = server.request(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let damaged = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{id}"), &key)
        .send()
        .await
        .unwrap();
    assert!(damaged.headers().get("retry-after").is_none());
    let problem = expect_problem(damaged, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("damaged"),
        "{problem}"
    );
    // The other messages still read.
    let fine = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{intact}"), &key)
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), StatusCode::OK);
    let ready = server.request(Method::GET, "/readyz").send().await.unwrap();
    let problem = expect_problem(ready, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("store check"),
        "{problem}"
    );
    let metrics = server
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("io_store_corrupt_records_total{record=\"message\"} 1"),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Slow clients (paused time: the timeouts pass without waiting)
// ---------------------------------------------------------------------------------------------

mod slow_clients {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    fn address(server: &TestServer) -> String {
        server.base.trim_start_matches("http://").to_string()
    }

    /// Everything the server sends until it closes the connection (a failure, not a hang,
    /// when it never does: the time is paused, so the bound costs nothing).
    async fn read_all(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(600), stream.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection")
            .ok();
        String::from_utf8_lossy(&answer).to_string()
    }

    #[tokio::test(start_paused = true)]
    async fn headers_that_never_end_lose_their_connection() {
        let mut config = test_config();
        config.http.header_timeout_secs = 5;
        let server = TestServer::start_with(config).await;
        let mut stream = TcpStream::connect(address(&server)).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
            .await
            .unwrap();
        // The read ends (the server closed) rather than waiting forever; at most a 408.
        let answer = read_all(&mut stream).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_larger_than_the_limit_is_refused_before_it_is_sent() {
        let server = TestServer::start().await;
        let mut stream = TcpStream::connect(address(&server)).await.unwrap();
        stream
            .write_all(
                b"POST /adm/services HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n",
            )
            .await
            .unwrap();
        let answer = read_all(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_coming_gets_408() {
        let mut config = test_config();
        config.http.body_timeout_secs = 5;
        let server = TestServer::start_with(config).await;
        let mut stream = TcpStream::connect(address(&server)).await.unwrap();
        let request = format!(
            "POST /adm/services HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"service_"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_all(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("did not arrive within 5 s"), "{answer}");
    }

    #[tokio::test(start_paused = true)]
    async fn connections_beyond_the_limit_wait_for_a_free_one() {
        let mut config = test_config();
        config.http.max_connections = 1;
        config.http.header_timeout_secs = 3600;
        let server = TestServer::start_with(config).await;
        let healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        // The first client is served and keeps its connection open.
        let mut first = TcpStream::connect(address(&server)).await.unwrap();
        first.write_all(healthz).await.unwrap();
        let mut buffer = [0u8; 512];
        let n = first.read(&mut buffer).await.unwrap();
        assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
        // The second is not served while the first holds the only slot...
        let mut second = TcpStream::connect(address(&server)).await.unwrap();
        second.write_all(healthz).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_secs(60), second.read(&mut buffer)).await;
        assert!(waiting.is_err(), "served beyond the connection limit");
        // ...and is once the first goes.
        drop(first);
        let n = second.read(&mut buffer).await.unwrap();
        assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Input edges
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn axums_own_refusals_are_problems_too() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    // A path that is not UTF-8 once percent-decoded.
    let response = server
        .api(Method::GET, "/profiles/%FF%FE", &key)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(status.is_client_error(), "{status}");
    let problem = expect_problem(response, status).await;
    assert_eq!(problem["status"], status.as_u16());
}

#[tokio::test]
async fn control_characters_and_year_zero_are_refused_at_the_edge() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    server.put_profile(CITIZEN).await;
    let send = |body: Value| {
        server
            .api(Method::POST, &format!("/messages/{CITIZEN}"), &key)
            .json(&body)
            .send()
    };
    let mut nul_subject = message_body();
    nul_subject["content"]["subject"] = json!("A subject with a \u{0000} in it");
    let problem = expect_problem(send(nul_subject).await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("subject"),
        "{problem}"
    );
    let mut nul_markdown = message_body();
    let markdown = format!("{}\u{0007}", "a".repeat(100));
    nul_markdown["content"]["markdown"] = json!(markdown);
    let problem = expect_problem(send(nul_markdown).await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("markdown"),
        "{problem}"
    );
    let mut year_zero = message_body();
    year_zero["content"]["due_date"] = json!("0000-01-01T00:00:00Z");
    let problem = expect_problem(send(year_zero).await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("due_date"),
        "{problem}"
    );
    // Tabs and line breaks are text.
    let mut fine = message_body();
    fine["content"]["markdown"] = json!(format!("{}\n\tindented\r\n", "a".repeat(100)));
    assert_eq!(send(fine).await.unwrap().status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_message_id_beyond_128_bits_is_a_400_not_an_alias() {
    let server = TestServer::start().await;
    let (_, key) = server.create_service(ALL_GROUPS).await;
    server.put_profile(CITIZEN).await;
    let id = server.submit(&key, CITIZEN).await;
    assert!(id.starts_with('0'));
    let alias = format!("8{}", &id[1..]);
    let response = server
        .api(Method::GET, &format!("/messages/{CITIZEN}/{alias}"), &key)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("id"),
        "{problem}"
    );
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_tokens_cannot_outlive_the_granted_lifetime() {
    let server = TestServer::start().await;
    server.put_profile(CITIZEN).await;
    let token = server.citizen_token(CITIZEN).await;
    let lower = server
        .request(Method::GET, "/app/v1/profile")
        .header("Authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), StatusCode::OK);
    use io_core::Clock as _;
    // A token signed with the server's key but claiming to live until 2^62 seconds.
    let long_lived = io_server::citizen_token::Hs256Tokens::new(b"test-token-secret").mint(
        &io_core::FiscalCode::parse(CITIZEN).unwrap(),
        io_core::SystemClock.now(),
        1 << 62,
    );
    let response = server
        .citizen(Method::GET, "/profile", &long_lived)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

// ---------------------------------------------------------------------------------------------
// 9. SSRF: every special-purpose range is refused when a callback is registered
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn callback_urls_in_special_purpose_ranges_are_refused() {
    let server = TestServer::start().await;
    let (service_id, _) = server.create_service(ALL_GROUPS).await;
    let path = format!("/adm/services/{service_id}/callback");
    for host in [
        "[64:ff9b::a00:1]",
        "[::7f00:1]",
        "[2002:a9fe:a9fe::1]",
        "[fec0::1]",
        "198.18.0.1",
        "[::ffff:169.254.169.254]",
    ] {
        let response = server
            .admin(Method::PUT, &path)
            .json(&json!({ "url": format!("http://{host}/cb") }))
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"].as_str().unwrap().starts_with("url:"),
            "{host}: {problem}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 10. The request id: a client's header is echoed only when it is a plain token
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_clients_is_kept_only_when_plain() {
    let server = TestServer::start().await;
    let id_of = |response: &reqwest::Response| {
        response
            .headers()
            .get("x-request-id")
            .expect("an X-Request-Id on every answer")
            .to_str()
            .unwrap()
            .to_owned()
    };
    // Generated: a ULID, different per request, on successes and problems alike.
    let healthy = server
        .request(Method::GET, "/healthz")
        .send()
        .await
        .unwrap();
    let first = id_of(&healthy);
    assert_eq!(first.len(), 26, "{first}");
    let missing = server
        .request(Method::GET, "/nowhere")
        .send()
        .await
        .unwrap();
    let second = id_of(&missing);
    assert_ne!(first, second);
    expect_problem(missing, StatusCode::NOT_FOUND).await;
    // A proxy's plain id is kept, so one id follows the call through both logs.
    let kept = server
        .request(Method::GET, "/healthz")
        .header("X-Request-Id", "haproxy-7f3a.01_b")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&kept), "haproxy-7f3a.01_b");
    // Anything else is replaced, never echoed.
    for forged in ["<script>alert(1)</script>", "a b", &"x".repeat(65)] {
        let replaced = server
            .request(Method::GET, "/healthz")
            .header("X-Request-Id", forged)
            .send()
            .await
            .unwrap();
        let id = id_of(&replaced);
        assert_ne!(id, forged);
        assert_eq!(id.len(), 26, "{id}");
    }
    server.stop().await;
}
