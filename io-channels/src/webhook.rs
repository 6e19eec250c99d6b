//! Signed HTTP callbacks: io POSTs a JSON event to a URL the sender registered, signed so the
//! receiver can tell it came from io and is fresh. [`WebhookClient`] is the engine's
//! [`CallbackSender`]: the engine picks the events, retries and records progress; the client
//! makes one signed POST and classifies the answer.
//!
//! **Signature.** Header `IO-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//! `t` from the engine's clock at the attempt, the key the bytes of the target's secret.
//! A receiver recomputes the HMAC over the timestamp, a full stop and the raw body, compares in
//! constant time, and rejects a timestamp older than its tolerance (five minutes is usual), which
//! defeats replays. [`verify_signature`] is that check. `IO-Event-Id` names the event, so a
//! receiver can drop the rare repeat (io retries until it gets a 2xx).
//!
//! **Answers.** 2xx → delivered. Timeouts, connection errors, 408, 429 (with `Retry-After`) and
//! 5xx → retried. 410 Gone → invalid recipient (the receiver retired the endpoint). Any other
//! status, redirects included, is permanent.
//!
//! **SSRF guard.** A callback URL is chosen by a sender, so io refuses to call private, loopback,
//! link-local, shared and multicast addresses unless the configuration allows them
//! ([`crate::outbound`], shared with the remote-content client).

use std::time::Duration;

use hmac::{Hmac, Mac};
use io_core::{
    CallbackEvent, CallbackSender, CallbackTarget, Outcome, PermanentReason, Timestamp,
    TransientCause,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error_text::http_error_chain;
use crate::http;
use crate::outbound::{self, OutboundClient, OutboundPolicy};
pub use crate::outbound::{MAX_URL_LEN, UrlRefused, is_internal};
use crate::{ConfigError, TrustedRoots};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "IO-Signature";
/// The event id header's name.
pub const EVENT_ID_HEADER: &str = "IO-Event-Id";

/// How callbacks are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Allow private, loopback and link-local destinations (tests, in-house receivers).
    pub allow_private_addresses: bool,
    /// The longest one callback may take.
    pub timeout: Duration,
    /// Whose certificates are trusted for `https` callbacks.
    pub roots: TrustedRoots,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            timeout: Duration::from_secs(10),
            roots: TrustedRoots::default(),
        }
    }
}

/// A signature that does not prove the body came from io recently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=<seconds>,v1=<hex>`.
    #[error("malformed IO-Signature header")]
    Malformed,
    /// The timestamp is outside the tolerance.
    #[error("IO-Signature timestamp outside the tolerance")]
    Stale,
    /// No `v1` value matches the body.
    #[error("IO-Signature does not match the body")]
    Mismatch,
}

/// The `IO-Signature` header value for `body` sent at `unix_seconds`.
pub fn sign(secret: &[u8], unix_seconds: u64, body: &[u8]) -> String {
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac(secret, unix_seconds, body).finalize().into_bytes())
    )
}

fn mac(secret: &[u8], unix_seconds: u64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// What a receiver does: checks `header` against `body`, with `now` and a `tolerance` for the
/// timestamp (both in seconds). Every `v1` value is tried, so a sender may list several during a
/// secret rotation.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: u64,
    tolerance: u64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => {
                timestamp = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            Some(("v1", value)) => {
                candidates.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?);
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(timestamp) > tolerance {
        return Err(SignatureError::Stale);
    }
    let expected = mac(secret, timestamp, body);
    if candidates
        .iter()
        .any(|candidate| expected.clone().verify_slice(candidate).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Sends signed callbacks.
pub struct WebhookClient {
    outbound: OutboundClient,
}

impl WebhookClient {
    /// A client with its own connection pool.
    pub fn new(config: &WebhookConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            outbound: OutboundClient::new(&OutboundPolicy {
                allow_private_addresses: config.allow_private_addresses,
                https_only: false,
                timeout: config.timeout,
                roots: &config.roots,
                user_agent: concat!("io-callbacks/", env!("CARGO_PKG_VERSION")),
                section: "webhook",
            })?,
        })
    }

    /// Checks a URL before it is registered (and again before each call): absolute http(s),
    /// no credentials, and no internal literal address unless allowed. Host names are checked
    /// when they are resolved, at each connection.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, UrlRefused> {
        self.outbound.check_url(url)
    }
}

#[async_trait::async_trait]
impl CallbackSender for WebhookClient {
    /// POSTs `event.body` (JSON) to `target.url` with `IO-Event-Id: event.id`, signed with the
    /// bytes of `target.secret` at `now` (unix seconds), and classifies the answer; the URL is
    /// checked again first (a registration may predate a stricter guard).
    async fn post(
        &self,
        target: &CallbackTarget,
        event: &CallbackEvent,
        now: Timestamp,
    ) -> Outcome {
        let url = match self.check_url(&target.url) {
            Ok(url) => url,
            Err(refused) => {
                return Outcome::Permanent(PermanentReason::new(
                    "callback_url_refused",
                    refused.to_string(),
                ));
            }
        };
        let unix_seconds = u64::try_from(now.as_millis() / 1000).unwrap_or(0);
        let signature = sign(target.secret.as_bytes(), unix_seconds, &event.body);
        let response = self
            .outbound
            .http()
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, event.id.as_str())
            .body(event.body.clone())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) if outbound::refused_by_guard(&error) => {
                return Outcome::Permanent(PermanentReason::new(
                    "callback_url_refused",
                    http_error_chain(&error),
                ));
            }
            Err(error) => {
                return Outcome::Transient {
                    retry_after: None,
                    cause: http::transport_cause(&error),
                };
            }
        };
        classify(
            response.status().as_u16(),
            http::retry_after(response.headers(), now),
        )
    }
}

/// The receiver's status to an outcome.
fn classify(status: u16, retry_after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered {
            provider_ref: Some(status.to_string()),
        },
        429 => Outcome::RateLimited { retry_after },
        408 => Outcome::Transient {
            retry_after,
            cause: TransientCause::Timeout,
        },
        500..=599 => Outcome::Transient {
            retry_after,
            cause: TransientCause::ServerError(status),
        },
        410 => Outcome::InvalidRecipient,
        _ => Outcome::Permanent(PermanentReason::new(
            format!("callback_{status}"),
            format!("the callback receiver answered {status}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_forgery_does_not() {
        let body = br#"{"type":"message.accepted"}"#;
        let header = sign(b"s3cret", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(
            verify_signature(b"s3cret", &header, body, 1_700_000_010, 300),
            Ok(())
        );
        assert_eq!(
            verify_signature(b"other", &header, body, 1_700_000_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"s3cret", &header, b"{}", 1_700_000_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"s3cret", &header, body, 1_700_001_000, 300),
            Err(SignatureError::Stale)
        );
        let forged_time = header.replace("t=1700000000", "t=1700000900");
        assert_eq!(
            verify_signature(b"s3cret", &forged_time, body, 1_700_000_900, 300),
            Err(SignatureError::Mismatch),
            "a fresh timestamp on an old signature is caught"
        );
        assert_eq!(
            verify_signature(b"s3cret", "v1=00", body, 0, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn receiver_answers_map_to_outcomes() {
        let wait = Some(Duration::from_secs(120));
        let permanent = |status: u16| {
            Outcome::Permanent(PermanentReason::new(
                format!("callback_{status}"),
                format!("the callback receiver answered {status}"),
            ))
        };
        for (status, want) in [
            (
                204,
                Outcome::Delivered {
                    provider_ref: Some("204".into()),
                },
            ),
            (429, Outcome::RateLimited { retry_after: wait }),
            (
                408,
                Outcome::Transient {
                    retry_after: wait,
                    cause: TransientCause::Timeout,
                },
            ),
            (
                503,
                Outcome::Transient {
                    retry_after: wait,
                    cause: TransientCause::ServerError(503),
                },
            ),
            (410, Outcome::InvalidRecipient),
            (302, permanent(302)),
            (401, permanent(401)),
        ] {
            assert_eq!(classify(status, wait), want, "{status}");
        }
    }

    #[test]
    fn the_guard_refuses_every_special_purpose_range_of_the_red_team_pass() {
        for ip in [
            "64:ff9b::a00:1",   // NAT64 of 10.0.0.1, not only the prefix's base
            "64:ff9b::7f00:1",  // NAT64 of 127.0.0.1
            "::7f00:1",         // IPv4-compatible 127.0.0.1
            "::a9fe:a9fe",      // IPv4-compatible 169.254.169.254
            "2002:7f00:1::1",   // 6to4 of 127.0.0.1
            "2002:a9fe:a9fe::", // 6to4 of the metadata service
            "fec0::1",          // site-local
            "198.18.0.1",       // benchmarking
            "198.19.255.255",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
            "255.255.255.255",
            "ff02::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["198.20.0.1", "2a01:4f8::1", "2003::1", "8.8.8.8"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_refused_urls_query_does_not_reach_the_outcome() {
        let client = WebhookClient::new(&WebhookConfig::default()).unwrap();
        let target = CallbackTarget {
            url: "http://localhost:9/io/cb?token=s3cret".into(),
            secret: "k".into(),
        };
        let event = CallbackEvent {
            id: "e1".into(),
            body: b"{}".to_vec(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(client.post(&target, &event, Timestamp::from_millis(0)));
        let Outcome::Permanent(reason) = &outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(reason.code, "callback_url_refused");
        assert!(!format!("{outcome:?}").contains("s3cret"), "{outcome:?}");
        assert!(reason.detail.contains("localhost"), "{outcome:?}");
    }

    #[test]
    fn the_guard_refuses_internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2a00:1450:4001:80b::200e", "151.101.1.69"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
        let client = WebhookClient::new(&WebhookConfig::default()).unwrap();
        assert_eq!(
            client.check_url("http://127.0.0.1:8080/cb"),
            Err(UrlRefused::Internal("127.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            client.check_url("http://[::1]/cb"),
            Err(UrlRefused::Internal("::1".parse().unwrap()))
        );
        assert_eq!(
            client.check_url("ftp://example.it/"),
            Err(UrlRefused::Malformed)
        );
        assert_eq!(
            client.check_url("https://u:p@example.it/"),
            Err(UrlRefused::Credentials)
        );
        assert!(
            client
                .check_url("https://callbacks.comune.example.it/io")
                .is_ok()
        );
    }
}
