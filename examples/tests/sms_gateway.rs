//! The simulated SMS gateway behind the `custom_channel` example answers as its documentation
//! says: 202 once per idempotency key, 404 for unknown recipients, its quirks on the first
//! request only, 400 for malformed requests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use io_examples::sms_gateway::{Quirk, SmsGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KNOWN: &str = "aaaa";
const BUSY: &str = "bbbb";
const FLAKY: &str = "cccc";
const UNKNOWN: &str = "dddd";

/// Sends raw bytes on a fresh connection and returns the whole answer as text.
async fn exchange(endpoint: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(endpoint).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

async fn post(endpoint: SocketAddr, key: &str, to: &str) -> String {
    let body = format!("to={to}&text=Hai+un+nuovo+messaggio");
    let request = format!(
        "POST /sms HTTP/1.1\r\nHost: {endpoint}\r\n\
         Content-Length: {}\r\nIdempotency-Key: {key}\r\n\r\n{body}",
        body.len()
    );
    exchange(endpoint, &request).await
}

#[tokio::test]
async fn gateway_answers_as_documented() {
    let directory = [KNOWN, BUSY, FLAKY]
        .into_iter()
        .map(|hash| (hash.to_owned(), format!("+39 333 {hash}")))
        .collect();
    let quirks = HashMap::from([
        (BUSY.to_owned(), Quirk::Busy),
        (FLAKY.to_owned(), Quirk::Flaky),
    ]);
    let gateway = SmsGateway::start(directory, quirks, Duration::ZERO)
        .await
        .unwrap();
    let at = gateway.endpoint();

    let first = post(at, "k1", KNOWN).await;
    assert!(first.starts_with("HTTP/1.1 202 "), "{first}");
    assert!(first.contains("X-Message-Id: sms-0001\r\n"), "{first}");
    let replay = post(at, "k1", KNOWN).await;
    assert!(replay.starts_with("HTTP/1.1 202 "), "{replay}");
    assert!(replay.contains("X-Message-Id: sms-0001\r\n"), "{replay}");
    assert!(replay.contains("Idempotent-Replayed: true\r\n"), "{replay}");
    assert_eq!(gateway.sms_sent(), 1, "a replayed key sends nothing");

    let busy = post(at, "k2", BUSY).await;
    assert!(busy.starts_with("HTTP/1.1 429 "), "{busy}");
    assert!(busy.contains("Retry-After: 2\r\n"), "{busy}");
    assert!(post(at, "k2", BUSY).await.starts_with("HTTP/1.1 202 "));
    assert!(post(at, "k3", FLAKY).await.starts_with("HTTP/1.1 503 "));
    assert!(post(at, "k3", FLAKY).await.starts_with("HTTP/1.1 202 "));
    assert!(post(at, "k4", UNKNOWN).await.starts_with("HTTP/1.1 404 "));

    let no_key = format!("POST /sms HTTP/1.1\r\nHost: {at}\r\nContent-Length: 7\r\n\r\nto=aaaa");
    assert!(exchange(at, &no_key).await.starts_with("HTTP/1.1 400 "));
    let bad_escape =
        "POST /sms HTTP/1.1\r\nIdempotency-Key: k5\r\nContent-Length: 9\r\n\r\nto=%ZZ&x=";
    assert!(exchange(at, bad_escape).await.starts_with("HTTP/1.1 400 "));
    let wrong_path = "GET /status HTTP/1.1\r\n\r\n";
    assert!(exchange(at, wrong_path).await.starts_with("HTTP/1.1 405 "));

    assert_eq!(gateway.sms_sent(), 3);
    let statuses: Vec<u16> = gateway.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [202, 202, 429, 202, 503, 202, 404]);
}
