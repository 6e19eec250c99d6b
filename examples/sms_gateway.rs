//! A simulated third-party SMS gateway, the peer of the `custom_channel` example: an HTTP/1.1
//! server on loopback (raw [`tokio::net::TcpListener`], one request per connection) that takes
//! `POST /sms` with a form body `to=<fiscal-code hash>&text=<text>` and an `Idempotency-Key`
//! header. It is *not* part of the plugin: it stands for the provider, whose code a plugin
//! author never sees, and it shares no code with the example's client.
//!
//! It keeps its own directory of phone numbers keyed by fiscal-code hash, and answers:
//! - 202 with `X-Message-Id` for a known recipient, sending one SMS per idempotency key (a
//!   repeated key gets the first answer again, `Idempotent-Replayed: true`, and no second SMS);
//! - 404 for a recipient not in its directory;
//! - per recipient [`Quirk`], on the first request only: 429 with `Retry-After: 2`, 503, or the
//!   SMS sent but the answer held back for a while (so that the client times out);
//! - 400 for a malformed request, 405 for anything but `POST /sms`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::http1::{Head, head_end, split_head};

const MAX_REQUEST_HEAD: usize = 16 * 1024;
const MAX_REQUEST_BODY: usize = 16 * 1024;
/// How long the gateway waits for a request before hanging up.
const GATEWAY_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One request the gateway received and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The `Idempotency-Key` header.
    pub idempotency_key: String,
    /// The recipient's fiscal-code hash.
    pub to: String,
    /// The SMS text.
    pub text: String,
    /// The status answered.
    pub status: u16,
    /// What the gateway did, for people.
    pub what: String,
}

#[derive(Default)]
struct GatewayState {
    requests_per_recipient: HashMap<String, u32>,
    /// Idempotency key → the id of the SMS it sent.
    accepted: HashMap<String, String>,
    sms_sent: u32,
    log: Vec<Received>,
}

/// How the gateway treats a recipient's first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// Like every other.
    None,
    /// 429 with `Retry-After: 2`.
    Busy,
    /// 503.
    Flaky,
    /// Sends the SMS but answers only after `slow_answer_after`.
    Slow,
}

/// The gateway: its phone directory and the recipients it misbehaves for, both keyed by
/// fiscal-code hash, and what it has received.
pub struct SmsGateway {
    directory: HashMap<String, String>,
    quirks: HashMap<String, Quirk>,
    slow_answer_after: Duration,
    endpoint: SocketAddr,
    state: Mutex<GatewayState>,
}

/// What the gateway answers: status, extra headers, body, and a delay before answering.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn new(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }
}

impl SmsGateway {
    /// Starts a gateway on `127.0.0.1:0` with `directory` (hash → phone number) and `quirks`
    /// (hash → behaviour on the first request); [`Quirk::Slow`] answers after
    /// `slow_answer_after`. It serves until the runtime shuts down.
    pub async fn start(
        directory: HashMap<String, String>,
        quirks: HashMap<String, Quirk>,
        slow_answer_after: Duration,
    ) -> std::io::Result<Arc<Self>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let gateway = Arc::new(Self {
            directory,
            quirks,
            slow_answer_after,
            endpoint: listener.local_addr()?,
            state: Mutex::default(),
        });
        tokio::spawn(serve(listener, gateway.clone()));
        Ok(gateway)
    }

    /// Where it listens.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().log.clone()
    }

    /// SMS actually sent so far (replays of an idempotency key are not sent again).
    pub fn sms_sent(&self) -> u32 {
        self.lock().sms_sent
    }

    fn lock(&self) -> MutexGuard<'_, GatewayState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides the answer to one request and records it.
    fn answer(&self, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> Reply {
        if (method, path) != ("POST", "/sms") {
            return Reply::new(405, r#"{"error":"only POST /sms"}"#);
        }
        let form = std::str::from_utf8(body).ok().and_then(form_decode);
        let (Some(key), Some(form)) = (key, form) else {
            return Reply::new(
                400,
                r#"{"error":"Idempotency-Key and a form body are required"}"#,
            );
        };
        let (Some(to), Some(text)) = (form.get("to"), form.get("text")) else {
            return Reply::new(400, r#"{"error":"to and text are required"}"#);
        };
        let mut state = self.lock();
        let record = |state: &mut GatewayState, status, what: String| {
            state.log.push(Received {
                idempotency_key: key.to_owned(),
                to: to.clone(),
                text: text.clone(),
                status,
                what,
            });
        };
        if let Some(id) = state.accepted.get(key).cloned() {
            record(&mut state, 202, format!("replay of {id}: not sent again"));
            let mut reply = Reply::new(202, &format!(r#"{{"message_id":"{id}"}}"#));
            reply.headers = vec![("X-Message-Id", id), ("Idempotent-Replayed", "true".into())];
            return reply;
        }
        let count = {
            let count = state.requests_per_recipient.entry(to.clone()).or_default();
            *count += 1;
            *count
        };
        let Some(phone) = self.directory.get(to) else {
            record(&mut state, 404, "no phone number for this recipient".into());
            return Reply::new(404, r#"{"error":"unknown recipient"}"#);
        };
        let quirk = match count {
            1 => self.quirks.get(to).copied().unwrap_or(Quirk::None),
            _ => Quirk::None,
        };
        if quirk == Quirk::Busy {
            record(&mut state, 429, "busy: try again in 2 s".into());
            let mut reply = Reply::new(429, r#"{"error":"too many requests"}"#);
            reply.headers = vec![("Retry-After", "2".into())];
            return reply;
        }
        if quirk == Quirk::Flaky {
            record(&mut state, 503, "hiccup".into());
            return Reply::new(503, r#"{"error":"temporarily unavailable"}"#);
        }
        state.sms_sent += 1;
        let id = format!("sms-{:04}", state.sms_sent);
        state.accepted.insert(key.to_owned(), id.clone());
        let slow = quirk == Quirk::Slow;
        let what = if slow {
            format!("{id} sent to {phone}, answering late")
        } else {
            format!("{id} sent to {phone}")
        };
        record(&mut state, 202, what);
        let mut reply = Reply::new(202, &format!(r#"{{"message_id":"{id}"}}"#));
        reply.headers = vec![("X-Message-Id", id)];
        if slow {
            reply.delay = self.slow_answer_after;
        }
        reply
    }
}

/// Serves the gateway on `listener`, one task per connection, one request per connection.
async fn serve(listener: TcpListener, gateway: Arc<SmsGateway>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(handle(stream, gateway.clone()));
    }
}

async fn handle(mut stream: TcpStream, gateway: Arc<SmsGateway>) {
    let request = tokio::time::timeout(GATEWAY_READ_TIMEOUT, read_request(&mut stream)).await;
    let reply = match request {
        Ok(Some((head, body))) => {
            let mut start = head.start.split(' ');
            let (method, path) = (start.next().unwrap_or(""), start.next().unwrap_or(""));
            gateway.answer(method, path, head.header("idempotency-key"), &body)
        }
        Ok(None) => Reply::new(400, r#"{"error":"malformed request"}"#),
        Err(_) => return, // the client went quiet: hang up
    };
    tokio::time::sleep(reply.delay).await;
    let reason = match reply.status {
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Unknown",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", reply.status);
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        reply.body.len(),
        reply.body
    ));
    // A client that timed out has gone: nothing to do about a failed write.
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads one request: head, then a `Content-Length` body. `None` if malformed or too large.
async fn read_request(stream: &mut TcpStream) -> Option<(Head, Vec<u8>)> {
    let mut raw = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while head_end(&raw).is_none() {
        if raw.len() > MAX_REQUEST_HEAD {
            return None;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        raw.extend_from_slice(&chunk[..read]);
    }
    let (head, rest) = split_head(&raw)?;
    let length: usize = match head.header("content-length") {
        Some(value) => value.parse().ok()?,
        None => 0,
    };
    if length > MAX_REQUEST_BODY {
        return None;
    }
    let mut body = rest.to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(length);
    Some((head, body))
}

/// Decodes an `application/x-www-form-urlencoded` body (`+` is a space, `%XX` a byte, the
/// result UTF-8); `None` on a malformed pair or escape, or invalid UTF-8.
pub fn form_decode(body: &str) -> Option<HashMap<String, String>> {
    let decode = |text: &str| {
        let mut bytes = Vec::with_capacity(text.len());
        let mut input = text.bytes();
        while let Some(byte) = input.next() {
            bytes.push(match byte {
                b'+' => b' ',
                b'%' => {
                    let hex = [input.next()?, input.next()?];
                    u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
                }
                other => other,
            });
        }
        String::from_utf8(bytes).ok()
    };
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((decode(name)?, decode(value)?))
        })
        .collect()
}
