//! Fuzzes io-server's whole HTTP surface in-process: every input becomes one request sent
//! through `io_server::router` (Services, citizen, admin and operations routes, their
//! middleware and extractors) with `tower::ServiceExt::oneshot`, no socket. The answer must
//! not be a panic, must not be a 5xx (an internal error on client input is a bug; nothing here
//! should trigger backpressure or shutdown, so not even 503), and its body must stay under
//! [`MAX_RESPONSE_BYTES`].
//!
//! An input reads like an HTTP/1 request, so seeds are written by hand:
//!
//! ```text
//! METHOD SP TARGET [SP ignored]      method and path+query: any bytes http accepts
//! Name: value                        zero or more headers, any bytes http accepts
//!                                    an empty line, then the body (all remaining bytes)
//! ```
//!
//! Lines end in `\n` (a trailing `\r` is dropped). A method, target, header name or value that
//! `http` refuses is skipped (the header alone; the whole input for the method or target).
//! Placeholders are replaced in the target, the header values and the body, so inputs can
//! reach past authentication: `$ADMIN_TOKEN`, `$API_KEY` (a key with every permission group),
//! `$SERVICE_ID`, `$CITIZEN_TOKEN` and `$CITIZEN` (a citizen with a profile), `$MESSAGE_ID`
//! (a message sent to that citizen). Two pseudo-headers are read, not sent: `X-Fuzz-Peer: <ip>`
//! sets the TCP peer (`ConnectInfo`, default 127.0.0.1; loopback is a trusted proxy), and
//! `X-Fuzz-Proxy-Header: forwarded` sends the request to a second app over the same store whose
//! proxies write RFC 7239 `Forwarded` instead of `X-Forwarded-For`.
//!
//! State persists across inputs (one app, one store per process), so a crash found after a
//! long run may need the inputs before it; the store lives in a per-process directory under
//! the temp dir, removed by the next run once the process is gone.
//!
//! Run: `FUZZ_TARGETS=http_router .ci/fuzz.sh`, or `RUSTC_BOOTSTRAP=1 cargo fuzz run http_router
//! fuzz/corpus/http_router fuzz/seeds/http_router` (new inputs go to the first directory).
//! `HTTP_ROUTER_LOG=1` prints each request line and its status to stderr.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use io_server::secrets::Secrets;
use io_server::{App, ServerConfig};
use io_store::{Durability, SledStore};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The largest answer accepted: every list the server answers is meant to be bounded.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Headers taken from one input; more are ignored.
const MAX_HEADERS: usize = 16;
/// sled's page cache for the fuzzing store (the server's default is 64 MiB).
const STORE_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Prefix of the per-process store directories under the temp dir.
const STORE_DIR_PREFIX: &str = "io-fuzz-http-router-";
/// The admin token of the app under test.
const ADMIN_TOKEN: &str = "fuzz-admin-token";
/// The citizen with a profile and a message.
const CITIZEN: &str = "RSSMRA85T10A562S";
/// The peer when the input names none.
const DEFAULT_PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000);
/// The pseudo-header that sets the peer; not sent.
const PEER_HEADER: &[u8] = b"x-fuzz-peer";
/// The pseudo-header that, with the value `forwarded`, sends the request to the app whose
/// proxies write `Forwarded`; not sent.
const PROXY_HEADER: &[u8] = b"x-fuzz-proxy-header";

/// The app, built once per process, and what inputs may refer to.
struct Harness {
    runtime: tokio::runtime::Runtime,
    /// The app whose trusted proxies write `X-Forwarded-For`.
    router: Router,
    /// The same over the same store, whose trusted proxies write RFC 7239 `Forwarded`.
    forwarded_router: Router,
    /// `(placeholder, value)`; a placeholder comes before any that is a prefix of it.
    placeholders: Vec<(&'static [u8], Vec<u8>)>,
    log: bool,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(Harness::new);
    let Some(Decoded {
        request,
        line,
        forwarded,
    }) = harness.decode(data)
    else {
        return;
    };
    let router = if forwarded {
        &harness.forwarded_router
    } else {
        &harness.router
    };
    harness.runtime.block_on(async {
        let response = router
            .clone()
            .oneshot(request)
            .await
            .expect("axum routers are infallible");
        let status = response.status();
        if harness.log {
            eprintln!("http_router: {line} -> {status}");
        }
        let body = match axum::body::to_bytes(response.into_body(), MAX_RESPONSE_BYTES).await {
            Ok(body) => body,
            Err(error) => panic!(
                "{line} answered {status} with a body not read within {MAX_RESPONSE_BYTES} bytes: {error}"
            ),
        };
        assert!(
            !status.is_server_error(),
            "{line} answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(4096)])
        );
    });
});

impl Harness {
    /// The app over a fresh store, with a service, a citizen profile and one message, made
    /// through the HTTP API itself so the harness depends on nothing but the public surface.
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds");
        let store = open_store();
        let secrets = Secrets {
            key_derivation: "fuzz-key-secret".into(),
            token_signing: "fuzz-token-secret".into(),
        };
        // One app per proxy header, over the same store and secrets: keys, tokens and records
        // made through one are valid in the other.
        let [router, forwarded_router] = ["x-forwarded-for", "forwarded"].map(|proxy_header| {
            let _entered = runtime.enter();
            let app = App::with_store(
                config(proxy_header),
                store.clone(),
                &secrets,
                ADMIN_TOKEN,
                Arc::new(io_core::SystemClock),
            )
            .expect("the fuzzing configuration builds an app");
            io_server::router(app)
        });
        let setup = runtime.block_on(Setup::run(&router));
        let placeholders = vec![
            (&b"$CITIZEN_TOKEN"[..], setup.citizen_token.into_bytes()),
            (&b"$ADMIN_TOKEN"[..], ADMIN_TOKEN.as_bytes().to_vec()),
            (&b"$MESSAGE_ID"[..], setup.message_id.into_bytes()),
            (&b"$SERVICE_ID"[..], setup.service_id.into_bytes()),
            (&b"$API_KEY"[..], setup.api_key.into_bytes()),
            (&b"$CITIZEN"[..], CITIZEN.as_bytes().to_vec()),
        ];
        Self {
            runtime,
            router,
            forwarded_router,
            placeholders,
            log: std::env::var_os("HTTP_ROUTER_LOG").is_some(),
        }
    }

    /// The request an input describes; `None` when the method or the target is not one
    /// `http` accepts.
    fn decode(&self, data: &[u8]) -> Option<Decoded> {
        let (head, body) = match find(data, b"\n\n").or_else(|| find(data, b"\r\n\r\n")) {
            Some(at) => {
                let blank = if data[at] == b'\r' { 4 } else { 2 };
                (&data[..at], &data[at + blank..])
            }
            None => (data, &[][..]),
        };
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.splitn(3, |&b| b == b' ');
        let method = Method::from_bytes(parts.next().unwrap_or_default()).ok()?;
        let target = self.substitute(parts.next().unwrap_or(b"/"));
        let uri = Uri::try_from(target).ok()?;
        let line = format!("{method} {uri}");

        let mut request = Request::new(Body::from(self.substitute(body)));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let mut peer = DEFAULT_PEER;
        let mut forwarded = false;
        for header in lines.take(MAX_HEADERS) {
            let Some(colon) = header.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&header[..colon], header[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(PEER_HEADER) {
                if let Some(ip) = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<IpAddr>().ok())
                {
                    peer = SocketAddr::new(ip, DEFAULT_PEER.port());
                }
                continue;
            }
            if name.eq_ignore_ascii_case(PROXY_HEADER) {
                forwarded = value.eq_ignore_ascii_case(b"forwarded");
                continue;
            }
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name),
                HeaderValue::from_bytes(&self.substitute(value)),
            ) else {
                continue;
            };
            request.headers_mut().append(name, value);
        }
        // What `into_make_service_with_connect_info` adds in `serve`; handlers extract it.
        request.extensions_mut().insert(ConnectInfo(peer));
        Some(Decoded {
            request,
            line,
            forwarded,
        })
    }

    /// `bytes` with every placeholder replaced by its value.
    fn substitute(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = bytes;
        'scan: while let Some((&first, tail)) = rest.split_first() {
            if first == b'$' {
                for (placeholder, value) in &self.placeholders {
                    if let Some(after) = rest.strip_prefix(*placeholder) {
                        out.extend_from_slice(value);
                        rest = after;
                        continue 'scan;
                    }
                }
            }
            out.push(first);
            rest = tail;
        }
        out
    }
}

/// One input, decoded.
struct Decoded {
    request: Request<Body>,
    /// `METHOD target`, for messages.
    line: String,
    /// Whether the request goes to the app whose proxies write `Forwarded`.
    forwarded: bool,
}

/// The server's defaults, as its configuration file would change them (so the harness follows
/// the file's keys, not the Rust types behind them): no workers, no rate limit (requests must
/// reach the handlers, not the limiter after 150 calls), loopback trusted as a proxy that
/// writes `proxy_header`.
fn config(proxy_header: &str) -> ServerConfig {
    serde_json::from_value(json!({
        "workers": 0,
        "rate_limit": { "default": "unlimited" },
        "trusted_proxies": ["127.0.0.0/8", "::1/128"],
        "proxy_header": proxy_header,
    }))
    .expect("the fuzzing configuration's keys and values are valid")
}

/// The position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A sled store in this process's directory, buffered (throwaway data: no fsync per write),
/// after removing the directories of earlier processes that are gone.
fn open_store() -> Arc<SledStore> {
    let base = std::env::temp_dir();
    remove_stale_stores(&base);
    let dir = base.join(format!("{STORE_DIR_PREFIX}{}", std::process::id()));
    // A directory with this pid is from a process that is gone: start afresh.
    let _ = std::fs::remove_dir_all(&dir);
    let config = sled::Config::new()
        .path(&dir)
        .cache_capacity(STORE_CACHE_BYTES);
    let store = SledStore::open_with(config, Durability::Buffered, Duration::ZERO)
        .unwrap_or_else(|e| panic!("cannot open a sled store in {}: {e}", dir.display()));
    Arc::new(store)
}

/// Removes `<base>/io-fuzz-http-router-<pid>` of processes that no longer run (libFuzzer
/// ends with `exit`, so no process removes its own).
fn remove_stale_stores(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(STORE_DIR_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The records the placeholders name, created through the API.
struct Setup {
    service_id: String,
    api_key: String,
    citizen_token: String,
    message_id: String,
}

impl Setup {
    async fn run(router: &Router) -> Self {
        let admin = format!("Bearer {ADMIN_TOKEN}");
        let service = call(
            router,
            Method::POST,
            "/adm/services",
            &[("authorization", &admin)],
            json!({
                "service_name": "Tassa rifiuti",
                "department_name": "Tributi",
                "organization_name": "Comune di Roma",
                "organization_fiscal_code": "02438750586",
                "max_allowed_payment_amount": 100000,
                "groups": [
                    "ApiMessageWrite", "ApiMessageRead", "ApiLimitedProfileRead",
                    "ApiMessageWriteWithPayee", "ApiMessageWriteAdvanced",
                    "ApiMessageReadAdvanced", "ApiSubscriptionsFeedRead",
                ],
            }),
            StatusCode::CREATED,
        )
        .await;
        let service_id = text(&service, "service_id");
        let keys = call(
            router,
            Method::GET,
            &format!("/adm/services/{service_id}/keys"),
            &[("authorization", &admin)],
            Value::Null,
            StatusCode::OK,
        )
        .await;
        let api_key = text(&keys, "primary_key");
        let token = call(
            router,
            Method::POST,
            "/adm/citizen-tokens",
            &[("authorization", &admin)],
            json!({ "fiscal_code": CITIZEN }),
            StatusCode::OK,
        )
        .await;
        let citizen_token = text(&token, "token");
        call(
            router,
            Method::POST,
            "/app/v1/profile",
            &[("authorization", &format!("Bearer {citizen_token}"))],
            json!({ "is_inbox_enabled": true, "preferred_languages": ["it_IT"] }),
            StatusCode::OK,
        )
        .await;
        let message = call(
            router,
            Method::POST,
            &format!("/api/v1/messages/{CITIZEN}"),
            &[("ocp-apim-subscription-key", &api_key)],
            json!({ "content": {
                "subject": "Avviso di pagamento TARI",
                "markdown": "Gentile contribuente, le comunichiamo che è disponibile l'avviso di pagamento della tassa sui rifiuti per l'anno in corso.",
            }}),
            StatusCode::CREATED,
        )
        .await;
        let message_id = text(&message, "id");
        Self {
            service_id,
            api_key,
            citizen_token,
            message_id,
        }
    }
}

/// One setup call that must answer `expected` with JSON.
async fn call(
    router: &Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
    expected: StatusCode,
) -> Value {
    let mut builder = Request::builder().method(method.clone()).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = if body.is_null() {
        Body::empty()
    } else {
        builder = builder.header("content-type", "application/json");
        Body::from(body.to_string())
    };
    let mut request = builder.body(body).expect("setup requests are valid");
    request.extensions_mut().insert(ConnectInfo(DEFAULT_PEER));
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("axum routers are infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    assert_eq!(
        status,
        expected,
        "setup: {method} {path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// The string field `name` of a setup answer.
fn text(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("setup: no string {name:?} in {value}"))
        .to_string()
}
