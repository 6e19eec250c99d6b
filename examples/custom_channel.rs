//! # custom_channel: a third-party channel plugin, an SMS gateway over HTTP
//!
//! Shows how to write your own [`io_core::Channel`] and plug it into the engine.
//!
//! **Framing.** The engine routes by [`io_core::ChannelKind`]: `Inbox`, `Email`, `Push`. A
//! plugin does not add a route: it takes one of the routes the decision already makes. Here an
//! institution that prefers SMS to app push plugs its SMS gateway into the **`Push`** route. The
//! decision of io-reference §4 still says who gets a "push": the inbox is allowed, push is on in
//! the profile and not blocked for the service, and the citizen has at least one registered
//! device installation (`Store::put_installation`, here platform `fcmv1` with a dummy token).
//! Those citizens get an SMS instead of a push notification; the others get none.
//!
//! **Privacy.** The gateway keeps its own directory of phone numbers keyed by IO's pseudonym of
//! the fiscal code, `lowercase(hex(sha256(code)))` ([`io_core::FiscalCode::hash`]): io sends the
//! hash, never the raw fiscal code, and never needs the phone number. The SMS text is
//! [`io_core::notification_text::push_text`]: the organization and the subject only when the
//! citizen chose FULL previews and the message does not require secure channels, otherwise the
//! anonymous "Hai un nuovo messaggio".
//!
//! **Wire.** `POST /sms` over HTTP/1.1, one request per connection, with a form body
//! (`application/x-www-form-urlencoded`, as Twilio-style SMS APIs take it):
//! `to=<hash>&text=<text>`, percent-encoded. The header `Idempotency-Key` carries the delivery
//! id (`DeliveryId`'s `Display`, stable across retries and crashes), so the gateway sends one SMS
//! per delivery however often the engine retries. The channel has the usual parts: a config, a
//! pure payload, a pure `classify` (answer → [`io_core::Outcome`], table-tested below), and a
//! client. It never retries or sleeps: the engine persists retries.
//!
//! | gateway answer | outcome | engine |
//! |---|---|---|
//! | 2xx (`X-Message-Id`) | `Delivered { provider_ref }` | SENT |
//! | 404 | `InvalidRecipient` | FAILED |
//! | 429 (`Retry-After: <secs>`) | `RateLimited { retry_after }` | retried, not before the hint |
//! | 5xx | `Transient { ServerError(code) }` | retried with backoff |
//! | other 4xx, 1xx, 3xx | `Permanent` | FAILED |
//! | connect error, broken connection | `Transient { Connection }` | retried |
//! | no answer within the timeout | `Transient { Timeout }` | retried |
//!
//! **The demo.** It starts a simulated gateway on `127.0.0.1:0` (only loopback traffic;
//! `io_examples::sms_gateway`, kept apart because it stands for the provider), whose directory
//! knows all but one citizen; it answers 429 with `Retry-After: 2` to the first request
//! for a "busy" recipient, 503 to the first for a "flaky" one, and for a "slow" one it sends the
//! SMS but answers after the channel's timeout, so the engine retries and the gateway recognises
//! the idempotency key and does not send twice. The engine runs with a 200 ms retry base; the
//! program loops `run_until_idle` and sleeps until the next retry is due, until the backlog is
//! empty (at most 10 s). It prints what the gateway received and every delivery's final state,
//! and exits with status 1 if any differs from what the scenario implies.
//!
//! Run it, and its `classify` table test, from the workspace root:
//!
//! ```text
//! cargo run --release -p io-examples --example custom_channel
//! cargo test -p io-examples --example custom_channel
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_core::notification_text::{PushPreview, push_text};
use io_core::{
    Channel, ChannelKind, Clock, DeliveryJob, Engine, EngineConfig, FiscalCode, Installation,
    InstallationId, JournalEvent, MessageId, NewMessage, NewMessageContent, Outcome, OutcomeRecord,
    PermanentReason, Profile, PushNotificationsContentType, PushPlatform, Report, RetryPolicy,
    SenderCapabilities, ServicePreference, ServicePreferencesMode, ServicePreferencesSettings,
    Store, Submission, SystemClock, TransientCause,
};
use io_examples::Demo;
use io_examples::demo::fiscal_code_from;
use io_examples::http1::split_head;
use io_examples::sms_gateway::{Quirk, SmsGateway};
use io_store::SledStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------------
// The channel: config, payload, classify, client.
// ---------------------------------------------------------------------------------------------

/// Where the gateway is and how long one request may take.
#[derive(Debug, Clone, Copy)]
struct SmsGatewayConfig {
    endpoint: SocketAddr,
    timeout: Duration,
}

/// The largest answer the client reads; the gateway's are a few hundred bytes.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// What one SMS request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SmsRequest {
    /// The recipient's fiscal-code hash: the gateway's directory key.
    to: String,
    text: String,
    idempotency_key: String,
}

/// The payload of one delivery (pure).
fn sms_request(job: &DeliveryJob<'_>) -> SmsRequest {
    let preview = match job.profile.map(|p| p.push_notifications_content_type) {
        Some(PushNotificationsContentType::Full) => PushPreview::Full,
        _ => PushPreview::Anonymous,
    };
    let secure = job
        .message
        .requires_secure_channels(job.service.require_secure_channels);
    let text = push_text(
        preview,
        secure,
        &job.service.organization_name,
        &job.message.body.content.subject,
    );
    SmsRequest {
        to: job.delivery.fiscal_code.hash().to_string(),
        text: format!("{}: {}", text.title, text.body),
        idempotency_key: job.delivery.id.to_string(),
    }
}

/// The bytes of the HTTP request for `sms`.
fn http_request(sms: &SmsRequest, endpoint: SocketAddr) -> Vec<u8> {
    let body = form_encode(&[("to", &sms.to), ("text", &sms.text)]);
    format!(
        "POST /sms HTTP/1.1\r\n\
         Host: {endpoint}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\
         Idempotency-Key: {}\r\n\
         Connection: close\r\n\
         \r\n\
         {body}",
        body.len(),
        sms.idempotency_key
    )
    .into_bytes()
}

/// How one exchange with the gateway ended, as `classify` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// An HTTP answer, with the headers that matter.
    Http {
        status: u16,
        retry_after: Option<String>,
        message_id: Option<String>,
    },
    /// The connection could not be opened.
    ConnectFailed,
    /// The connection broke, or what came back was not HTTP.
    Broken,
    /// No complete answer within the timeout.
    TimedOut,
}

/// The gateway's answer as an [`Outcome`] (pure). `Retry-After` is read in its delta-seconds
/// form; the HTTP-date form is ignored (the engine's backoff applies then).
fn classify(answer: &Answer) -> Outcome {
    let transient = |retry_after, cause| Outcome::Transient { retry_after, cause };
    match answer {
        Answer::Http {
            status,
            retry_after,
            message_id,
        } => {
            let retry_after = retry_after
                .as_deref()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            match status {
                200..=299 => Outcome::Delivered {
                    provider_ref: message_id.clone(),
                },
                404 => Outcome::InvalidRecipient,
                429 => Outcome::RateLimited { retry_after },
                500..=599 => transient(retry_after, TransientCause::ServerError(*status)),
                400..=499 => Outcome::Permanent(PermanentReason::new(
                    "gateway_rejected",
                    format!("the SMS gateway answered HTTP {status}"),
                )),
                _ => Outcome::Permanent(PermanentReason::new(
                    "unexpected_status",
                    format!("the SMS gateway answered HTTP {status}"),
                )),
            }
        }
        Answer::ConnectFailed | Answer::Broken => transient(None, TransientCause::Connection),
        Answer::TimedOut => transient(None, TransientCause::Timeout),
    }
}

/// The SMS gateway as a channel on the `Push` route.
struct SmsGatewayChannel {
    config: SmsGatewayConfig,
}

impl SmsGatewayChannel {
    /// One request on a fresh connection, bounded by the timeout.
    async fn exchange(&self, request: &[u8]) -> Answer {
        let attempt = async {
            let Ok(mut stream) = TcpStream::connect(self.config.endpoint).await else {
                return Answer::ConnectFailed;
            };
            if stream.write_all(request).await.is_err() {
                return Answer::Broken;
            }
            // `Connection: close`: the answer ends where the gateway closes the connection.
            let mut raw = Vec::new();
            if (&mut stream)
                .take(MAX_RESPONSE_BYTES)
                .read_to_end(&mut raw)
                .await
                .is_err()
            {
                return Answer::Broken;
            }
            parse_response(&raw).unwrap_or(Answer::Broken)
        };
        tokio::time::timeout(self.config.timeout, attempt)
            .await
            .unwrap_or(Answer::TimedOut)
    }
}

#[async_trait::async_trait]
impl Channel for SmsGatewayChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Push
    }

    async fn send(&self, job: DeliveryJob<'_>) -> Report {
        let sms = sms_request(&job);
        let answer = self
            .exchange(&http_request(&sms, self.config.endpoint))
            .await;
        classify(&answer).into()
    }
}

fn parse_response(raw: &[u8]) -> Option<Answer> {
    let (head, _body) = split_head(raw)?;
    let mut start = head.start.splitn(3, ' ');
    let version = start.next()?;
    let status = start.next()?.parse().ok()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    Some(Answer::Http {
        status,
        retry_after: head.header("retry-after").map(str::to_owned),
        message_id: head.header("x-message-id").map(str::to_owned),
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 and form encoding, the little this client needs.
// ---------------------------------------------------------------------------------------------

/// `application/x-www-form-urlencoded`: unreserved bytes as they are, space as `+`, the rest
/// as `%XX` (UTF-8 bytes).
fn form_encode(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        let mut out = String::with_capacity(text.len());
        for byte in text.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    out.push(char::from(byte));
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

// ---------------------------------------------------------------------------------------------
// The scenario.
// ---------------------------------------------------------------------------------------------

/// The channel's timeout for one request.
const SMS_TIMEOUT: Duration = Duration::from_secs(1);
/// How late the gateway answers the slow recipient's first request: past [`SMS_TIMEOUT`].
const SLOW_ANSWER_AFTER: Duration = Duration::from_millis(1_500);
/// The longest the demo waits for retries.
const MAX_RUN: Duration = Duration::from_secs(10);
/// The longest sleep between two `run_until_idle` calls.
const POLL: Duration = Duration::from_millis(250);

/// What the scenario implies for a citizen's SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// An SMS, SENT after this many attempts.
    Sms { attempts: u32 },
    /// The gateway does not know the number: FAILED invalid recipient.
    InvalidRecipient,
    /// The decision routes no push: no SMS delivery at all.
    NoSms,
}

struct Person {
    name: &'static str,
    first15: &'static str,
    /// A registered device installation.
    device: bool,
    /// In the gateway's directory.
    phone: Option<&'static str>,
    /// How the gateway treats the first request for this person.
    quirk: Quirk,
    full_preview: bool,
    /// An AUTO-mode preference that turns push off for the service.
    push_off: bool,
    /// Messages to send, each `(requires secure channels, expected SMS)`.
    messages: &'static [(bool, Expect)],
}

const SENT_FIRST_TIME: Expect = Expect::Sms { attempts: 1 };
const SENT_SECOND_TIME: Expect = Expect::Sms { attempts: 2 };

const PEOPLE: [Person; 7] = [
    Person {
        name: "full preview",
        first15: "RSSMRA85T10A562",
        device: true,
        phone: Some("+39 333 000 0001"),
        quirk: Quirk::None,
        full_preview: true,
        push_off: false,
        // The second message requires secure channels: the SMS goes anonymous.
        messages: &[(false, SENT_FIRST_TIME), (true, SENT_FIRST_TIME)],
    },
    Person {
        name: "busy (429 first)",
        first15: "BNCLRA90A41F205",
        device: true,
        phone: Some("+39 333 000 0002"),
        quirk: Quirk::Busy,
        full_preview: false,
        push_off: false,
        messages: &[(false, SENT_SECOND_TIME)],
    },
    Person {
        name: "flaky (503 first)",
        first15: "VRDGPP80B15L219",
        device: true,
        phone: Some("+39 333 000 0003"),
        quirk: Quirk::Flaky,
        full_preview: false,
        push_off: false,
        messages: &[(false, SENT_SECOND_TIME)],
    },
    Person {
        name: "slow (answer late)",
        first15: "FRRGLI75C50H501",
        device: true,
        phone: Some("+39 333 000 0004"),
        quirk: Quirk::Slow,
        full_preview: true,
        push_off: false,
        messages: &[(false, SENT_SECOND_TIME)],
    },
    Person {
        name: "number unknown",
        first15: "CLMLCU88D22D612",
        device: true,
        phone: None,
        quirk: Quirk::None,
        full_preview: false,
        push_off: false,
        messages: &[(false, Expect::InvalidRecipient)],
    },
    Person {
        name: "no device",
        first15: "RCCSFO92E55G273",
        device: false,
        phone: Some("+39 333 000 0006"),
        quirk: Quirk::None,
        full_preview: false,
        push_off: false,
        messages: &[(false, Expect::NoSms)],
    },
    Person {
        name: "push off for service",
        first15: "MRNMRC70H10A944",
        device: true,
        phone: Some("+39 333 000 0007"),
        quirk: Quirk::None,
        full_preview: false,
        push_off: true,
        messages: &[(false, Expect::NoSms)],
    },
];

fn fiscal_code(person: &Person) -> FiscalCode {
    fiscal_code_from(person.first15).expect("the example's fiscal codes are well-formed")
}

/// Stores the person's profile, preference and installation as the app would have.
async fn register<S: Store>(
    store: &S,
    demo: &Demo,
    person: &Person,
    index: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let fiscal_code = fiscal_code(person);
    let mut profile = Profile::new(fiscal_code.clone());
    if person.full_preview {
        profile.push_notifications_content_type = PushNotificationsContentType::Full;
    }
    if person.push_off {
        profile.service_preferences_settings = ServicePreferencesSettings {
            mode: ServicePreferencesMode::Auto,
            version: 1,
        };
    }
    store.put_profile(&profile).await?;
    if person.push_off {
        let preference = ServicePreference {
            service_id: demo.service.service_id.clone(),
            settings_version: profile.service_preferences_settings.version,
            is_inbox_enabled: true,
            is_email_enabled: true,
            is_webhook_enabled: false,
            can_access_message_read_status: false,
        };
        preference.check_version(&profile)?;
        store.put_preference(&fiscal_code, &preference).await?;
    }
    if person.device {
        let installation = Installation {
            installation_id: InstallationId::parse(&format!("phone-{index}"))?,
            platform: PushPlatform::Fcmv1,
            push_channel: format!("dummy-fcm-token-{index}"),
            updated_at: SystemClock.now(),
        };
        store.put_installation(&fiscal_code, &installation).await?;
    }
    Ok(())
}

fn submission(demo: &Demo, person: &Person, secure: bool) -> Submission {
    let (subject, markdown) = if secure {
        (
            "Esito della sua richiesta di esenzione TARI",
            "Gentile contribuente,\n\nl'esito della sua richiesta di esenzione è disponibile \
             nell'app. Contiene dati personali: non lo riportiamo nelle notifiche.",
        )
    } else {
        (
            "Ritiro ingombranti confermato per il 12 marzo",
            "Gentile cittadino,\n\nil ritiro degli ingombranti che ha prenotato è confermato \
             per il 12 marzo tra le 7:00 e le 13:00. Lasci i rifiuti davanti al civico.",
        )
    };
    Submission {
        service_id: demo.service.service_id.clone(),
        message: NewMessage {
            fiscal_code: Some(fiscal_code(person).as_str().to_owned()),
            content: NewMessageContent {
                subject: Some(subject.to_owned()),
                markdown: Some(markdown.to_owned()),
                require_secure_channels: secure.then_some(true),
                ..NewMessageContent::default()
            },
            ..NewMessage::default()
        },
        capabilities: SenderCapabilities::default(),
        idempotency_key: None,
    }
}

fn describe(outcome: &OutcomeRecord) -> String {
    match outcome {
        OutcomeRecord::Delivered { provider_ref } => {
            format!(
                "delivered ({})",
                provider_ref.as_deref().unwrap_or("no ref")
            )
        }
        OutcomeRecord::Submitted { provider_ref } => {
            format!(
                "submitted, awaiting receipts ({})",
                provider_ref.as_deref().unwrap_or("no ref")
            )
        }
        OutcomeRecord::Transient {
            retry_after_ms,
            cause,
        } => match retry_after_ms {
            Some(ms) => format!("transient {cause:?}, retry after {ms} ms"),
            None => format!("transient {cause:?}"),
        },
        OutcomeRecord::RateLimited { retry_after_ms } => match retry_after_ms {
            Some(ms) => format!("rate limited, retry after {ms} ms"),
            None => "rate limited".to_owned(),
        },
        OutcomeRecord::Permanent { reason } => format!("permanent: {reason}"),
        OutcomeRecord::InvalidRecipient => "invalid recipient".to_owned(),
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("custom_channel failed: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    // The gateway, a third party: its own directory, keyed by fiscal-code hash.
    let hash_of = |p: &Person| fiscal_code(p).hash().to_string();
    let gateway = SmsGateway::start(
        PEOPLE
            .iter()
            .filter_map(|p| Some((hash_of(p), p.phone?.to_owned())))
            .collect(),
        PEOPLE.iter().map(|p| (hash_of(p), p.quirk)).collect(),
        SLOW_ANSWER_AFTER,
    )
    .await?;
    let endpoint = gateway.endpoint();
    println!("SMS gateway (simulated) listening on http://{endpoint}/sms");

    // The integrator's side: store, reference data, engine with the plugin on the Push route.
    let store = Arc::new(SledStore::temporary()?);
    let demo = Demo::new();
    store.put_service(&demo.service).await?;
    for (index, person) in PEOPLE.iter().enumerate() {
        register(&*store, &demo, person, index).await?;
    }
    let sms = SmsGatewayChannel {
        config: SmsGatewayConfig {
            endpoint,
            timeout: SMS_TIMEOUT,
        },
    };
    let config = EngineConfig {
        retry: RetryPolicy {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(1),
        },
        send_timeout: Duration::from_secs(5),
        ..EngineConfig::default()
    };
    let engine = Engine::new(
        store.clone(),
        vec![Arc::new(sms) as Arc<dyn Channel>],
        Arc::new(SystemClock),
        config,
    )?;

    let mut sent: Vec<(&Person, bool, Expect, MessageId)> = Vec::new();
    for person in &PEOPLE {
        for &(secure, expect) in person.messages {
            let accepted = engine.submit(submission(&demo, person, secure)).await?;
            sent.push((person, secure, expect, accepted.id));
        }
    }
    println!(
        "submitted {} messages from {} to {} citizens",
        sent.len(),
        demo.service.organization_name,
        PEOPLE.len()
    );

    // Drive the engine until every delivery is final, sleeping until the next retry is due.
    let started = Instant::now();
    loop {
        engine.run_until_idle().await?;
        let backlog = store.backlog().await?;
        if backlog == 0 {
            break;
        }
        if started.elapsed() >= MAX_RUN {
            eprintln!("gave up after {MAX_RUN:?} with {backlog} tasks queued");
            break;
        }
        let wait = match store.next_due_at().await? {
            Some(due) => due.since(engine.clock().now()),
            None => POLL,
        };
        tokio::time::sleep(wait.clamp(Duration::from_millis(5), POLL)).await;
    }
    println!(
        "engine settled in {:.2} s (retry waits are real here)\n",
        started.elapsed().as_secs_f64()
    );

    let received = gateway.received();
    println!("the gateway received, in order:");
    for (n, r) in received.iter().enumerate() {
        println!(
            "  {:>2}. key {} to {}… -> {} {}\n      text \"{}\"",
            n + 1,
            r.idempotency_key,
            short(&r.to),
            r.status,
            r.what,
            r.text
        );
    }

    println!("\nfinal delivery states:");
    let mut problems = Vec::new();
    for (person, secure, expect, id) in &sent {
        let deliveries = store.deliveries(id).await?;
        let journal = engine.verify_journal(id).await?;
        let push = deliveries.iter().find(|d| d.channel() == ChannelKind::Push);
        let inbox = deliveries
            .iter()
            .find(|d| d.channel() == ChannelKind::Inbox)
            .map_or("none", |d| d.state.as_str());
        let label = format!(
            "{}{}",
            person.name,
            if *secure { ", secure message" } else { "" }
        );
        let Some(push) = push else {
            println!("  {label:<34} inbox {inbox}; no SMS (the decision routed no push)");
            if *expect != Expect::NoSms {
                problems.push(format!("{label}: expected {expect:?}, no SMS delivery"));
            }
            continue;
        };
        let attempts: Vec<String> = journal
            .iter()
            .filter_map(|entry| match &entry.event {
                JournalEvent::Attempted {
                    channel: ChannelKind::Push,
                    outcome,
                    ..
                } => Some(describe(outcome)),
                _ => None,
            })
            .collect();
        let state = io_examples::summary::state_label(&push.state);
        println!(
            "  {label:<34} inbox {inbox}; SMS {state} after {} attempt(s): {}",
            push.attempts,
            attempts.join(" -> ")
        );
        let as_expected = match expect {
            Expect::Sms { attempts } => state == "SENT" && push.attempts == *attempts,
            Expect::InvalidRecipient => state == "FAILED invalid_recipient",
            Expect::NoSms => false,
        };
        if !as_expected {
            problems.push(format!(
                "{label}: expected {expect:?}, got {state} after {} attempt(s)",
                push.attempts
            ));
        }
    }

    // One SMS per delivery, whatever the retries: the idempotency key at work.
    let sms_expected = sent
        .iter()
        .filter(|(_, _, e, _)| matches!(e, Expect::Sms { .. }))
        .count();
    let sms_sent = gateway.sms_sent() as usize;
    println!("\nthe gateway sent {sms_sent} SMS for {sms_expected} SMS deliveries");
    if sms_sent != sms_expected {
        problems.push(format!(
            "the gateway sent {sms_sent} SMS, expected {sms_expected}"
        ));
    }
    if problems.is_empty() {
        println!("OK");
        Ok(true)
    } else {
        for problem in &problems {
            eprintln!("PROBLEM: {problem}");
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, retry_after: Option<&str>, message_id: Option<&str>) -> Answer {
        Answer::Http {
            status,
            retry_after: retry_after.map(str::to_owned),
            message_id: message_id.map(str::to_owned),
        }
    }

    #[test]
    fn gateway_answers_map_to_outcomes() {
        let secs = |s| Some(Duration::from_secs(s));
        let server = |code, retry_after| Outcome::Transient {
            retry_after,
            cause: TransientCause::ServerError(code),
        };
        let rejected = |code: u16| {
            Outcome::Permanent(PermanentReason::new(
                "gateway_rejected",
                format!("the SMS gateway answered HTTP {code}"),
            ))
        };
        for (answer, want) in [
            (
                http(202, None, Some("sms-0001")),
                Outcome::Delivered {
                    provider_ref: Some("sms-0001".into()),
                },
            ),
            (
                http(200, None, None),
                Outcome::Delivered { provider_ref: None },
            ),
            (http(404, None, None), Outcome::InvalidRecipient),
            (
                http(429, Some("2"), None),
                Outcome::RateLimited {
                    retry_after: secs(2),
                },
            ),
            (
                http(429, None, None),
                Outcome::RateLimited { retry_after: None },
            ),
            (
                http(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), None),
                Outcome::RateLimited { retry_after: None },
            ),
            (http(503, None, None), server(503, None)),
            (http(500, Some("5"), None), server(500, secs(5))),
            (http(400, None, None), rejected(400)),
            (http(401, None, None), rejected(401)),
            (
                http(302, None, None),
                Outcome::Permanent(PermanentReason::new(
                    "unexpected_status",
                    "the SMS gateway answered HTTP 302",
                )),
            ),
            (
                Answer::ConnectFailed,
                Outcome::Transient {
                    retry_after: None,
                    cause: TransientCause::Connection,
                },
            ),
            (
                Answer::Broken,
                Outcome::Transient {
                    retry_after: None,
                    cause: TransientCause::Connection,
                },
            ),
            (
                Answer::TimedOut,
                Outcome::Transient {
                    retry_after: None,
                    cause: TransientCause::Timeout,
                },
            ),
        ] {
            assert_eq!(classify(&answer), want, "{answer:?}");
        }
    }

    /// The client's encoding against the gateway's decoding.
    #[test]
    fn form_bodies_round_trip_awkward_text() {
        let text = "Comune di Sant'Anna: 50% & più = \"tutto\" + altro\\fine\n€";
        let body = form_encode(&[("to", "ab12"), ("text", text)]);
        assert!(body.is_ascii() && !body.contains(' '), "{body}");
        let decoded = io_examples::sms_gateway::form_decode(&body).unwrap();
        assert_eq!(decoded.get("text").map(String::as_str), Some(text));
        assert_eq!(decoded.get("to").map(String::as_str), Some("ab12"));
        assert_eq!(io_examples::sms_gateway::form_decode("text=%E"), None);
    }

    #[test]
    fn responses_parse_with_their_headers() {
        let raw = b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\nX-Message-Id: m1\r\n\r\n{}";
        assert_eq!(parse_response(raw), Some(http(429, Some("2"), Some("m1"))));
        assert_eq!(parse_response(b"HTTP/1.1 202 Accepted\r\n"), None);
        assert_eq!(parse_response(b"SMTP 250 ok\r\n\r\n"), None);
    }
}
