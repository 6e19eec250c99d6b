//! A small client of the Apple Push Notification service (HTTP/2 provider API) with token
//! authentication. Why not the `a2` crate: its endpoint is a closed enum of Apple's two hosts
//! and its TLS roots are built in, so it cannot be pointed at a test peer; io's client takes a
//! base URL and trusted roots, and is tested against a loopback HTTP/2 server.
//!
//! - One client per team and topic holds one long-lived HTTP/2 connection; sends multiplex on it.
//! - The provider token (ES256 JWT `{alg, kid}.{iss: team, iat}`) is signed once and reused for
//!   `token_refresh` (20–55 minutes: Apple refuses tokens older than an hour and answers
//!   `TooManyProviderTokenUpdates` to tokens renewed more often than every 20 minutes).
//! - Every reason Apple documents is classified; the list follows a2's `ErrorReason`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use io_core::{Outcome, PermanentReason, Timestamp, TransientCause};
use serde::{Deserialize, Serialize};

use crate::http::{self, ClientSettings};
use crate::jwt::JwtKey;
use crate::provider_limit::{self, ProviderLimit, ProviderLimiter};
use crate::push::{DeviceResult, Prune, PushNotification};
use crate::{ConfigError, TrustedRoots};

/// Apple's production endpoint.
pub const APNS_PRODUCTION: &str = "https://api.push.apple.com";
/// Apple's development (sandbox) endpoint.
pub const APNS_DEVELOPMENT: &str = "https://api.development.push.apple.com";

/// How to reach APNs for one team and app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    /// [`APNS_PRODUCTION`], [`APNS_DEVELOPMENT`], or a test peer.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The Apple developer team id (the token's `iss`).
    pub team_id: String,
    /// The id of the signing key (the token's `kid`).
    pub key_id: String,
    /// The `.p8` signing key, PEM text.
    pub signing_key_pem: String,
    /// The app's bundle id (`apns-topic`).
    pub topic: String,
    /// Whose certificates are trusted (Apple's are in the built-in roots).
    #[serde(default)]
    pub roots: TrustedRoots,
    /// The longest one request may take.
    #[serde(default = "http::default_request_timeout")]
    pub request_timeout: Duration,
    /// How long a provider token is reused: 20 to 55 minutes.
    #[serde(default = "default_token_refresh")]
    pub token_refresh: Duration,
    /// The team's send rate, if it must be capped.
    #[serde(default)]
    pub limit: Option<ProviderLimit>,
}

fn default_base_url() -> String {
    APNS_PRODUCTION.to_owned()
}

fn default_token_refresh() -> Duration {
    Duration::from_secs(50 * 60)
}

/// The shortest and longest reuse of a provider token that Apple accepts.
const TOKEN_REFRESH_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(20 * 60)..=Duration::from_secs(55 * 60);

struct ProviderToken {
    jwt: String,
    signed_at: tokio::time::Instant,
}

/// An APNs connection for one team and topic.
pub struct ApnsClient {
    http: reqwest::Client,
    base_url: String,
    topic: String,
    team_id: String,
    key_id: String,
    key: JwtKey,
    token_refresh: Duration,
    token: Mutex<Option<ProviderToken>>,
    tokens_signed: AtomicU64,
    limiter: Option<ProviderLimiter>,
}

/// Apple's error body.
#[derive(Deserialize)]
struct ErrorBody {
    reason: String,
    /// For 410: when the token stopped being valid, in milliseconds since the epoch.
    timestamp: Option<u64>,
}

impl ApnsClient {
    /// Checks the configuration and prepares the client (the connection opens on first use).
    pub fn new(config: ApnsConfig) -> Result<Self, ConfigError> {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(ConfigError::invalid(
                "apns.base_url",
                "must be an http(s) URL",
            ));
        }
        if !TOKEN_REFRESH_RANGE.contains(&config.token_refresh) {
            return Err(ConfigError::invalid(
                "apns.token_refresh",
                "must be between 20 and 55 minutes",
            ));
        }
        for (setting, value) in [
            ("apns.team_id", &config.team_id),
            ("apns.key_id", &config.key_id),
            ("apns.topic", &config.topic),
        ] {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::invalid(
                    setting,
                    "must be non-empty printable ASCII",
                ));
            }
        }
        let key = JwtKey::es256(&config.signing_key_pem, "apns.signing_key_pem")?;
        let http = http::client(ClientSettings {
            roots: &config.roots,
            timeout: config.request_timeout,
            http2_only: true,
        })?;
        let limiter = config
            .limit
            .map(|limit| ProviderLimiter::new(limit, "apns.limit"))
            .transpose()?;
        Ok(Self {
            http,
            base_url,
            topic: config.topic,
            team_id: config.team_id,
            key_id: config.key_id,
            key,
            token_refresh: config.token_refresh,
            token: Mutex::new(None),
            tokens_signed: AtomicU64::new(0),
            limiter,
        })
    }

    /// How many provider tokens this client has signed (a gauge of token reuse).
    pub fn provider_tokens_signed(&self) -> u64 {
        self.tokens_signed.load(Ordering::Relaxed)
    }

    /// The current provider token, signing a new one when it is older than `token_refresh`
    /// or when `renew` (Apple said it expired).
    fn provider_token(&self, renew: bool) -> Result<String, PermanentReason> {
        let mut slot = self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(token) = slot.as_ref()
            && !renew
            && token.signed_at.elapsed() < self.token_refresh
        {
            return Ok(token.jwt.clone());
        }
        // Real time, not the engine's clock: Apple checks `iat` against its own clock, so a
        // provider token must carry the wall clock's instant even under a test clock.
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let jwt = self
            .key
            .sign(
                Some(&self.key_id),
                &serde_json::json!({ "iss": self.team_id, "iat": iat }),
            )
            .map_err(|_| PermanentReason::new("signing_failed", "could not sign the APNs token"))?;
        self.tokens_signed.fetch_add(1, Ordering::Relaxed);
        *slot = Some(ProviderToken {
            jwt: jwt.clone(),
            signed_at: tokio::time::Instant::now(),
        });
        Ok(jwt)
    }

    /// Sends one notification to one device and classifies Apple's answer.
    pub async fn send(&self, device_token: &str, notification: &PushNotification) -> DeviceResult {
        if device_token.is_empty() || !device_token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return DeviceResult {
                outcome: Outcome::InvalidRecipient,
                prune: Prune::Remove,
            };
        }
        if let Err(wait) = provider_limit::acquire(self.limiter.as_ref()).await {
            return DeviceResult::keep(Outcome::RateLimited {
                retry_after: Some(wait),
            });
        }
        let first = self.attempt(device_token, notification, false).await;
        match first {
            Attempt::ExpiredToken => match self.attempt(device_token, notification, true).await {
                Attempt::Done(result) => result,
                Attempt::ExpiredToken => DeviceResult::keep(configuration_alert(
                    "ExpiredProviderToken",
                    "a freshly signed provider token was refused as expired: check the clock",
                )),
            },
            Attempt::Done(result) => result,
        }
    }

    async fn attempt(
        &self,
        device_token: &str,
        notification: &PushNotification,
        renew_token: bool,
    ) -> Attempt {
        let jwt = match self.provider_token(renew_token) {
            Ok(jwt) => jwt,
            Err(reason) => return Attempt::Done(DeviceResult::keep(Outcome::Permanent(reason))),
        };
        let payload = serde_json::json!({
            "aps": {
                "alert": { "title": notification.title, "body": notification.body },
                "sound": "default",
            },
            "message_id": notification.message_id,
        });
        let response = self
            .http
            .post(format!("{}/3/device/{device_token}", self.base_url))
            // Apple documents the scheme in lower case.
            .header(reqwest::header::AUTHORIZATION, format!("bearer {jwt}"))
            .header("apns-id", &notification.id)
            .header("apns-expiration", notification.expires_at.to_string())
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .json(&payload)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                return Attempt::Done(DeviceResult::keep(Outcome::Transient {
                    retry_after: None,
                    cause: http::transport_cause(&error),
                }));
            }
        };
        let status = response.status().as_u16();
        let retry_after = http::retry_after(response.headers(), notification.now);
        if status == 200 {
            let apns_id = response
                .headers()
                .get("apns-id")
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| notification.id.clone(), str::to_owned);
            return Attempt::Done(DeviceResult::keep(Outcome::Delivered {
                provider_ref: Some(apns_id),
            }));
        }
        let body = response.bytes().await.unwrap_or_default();
        let (reason, timestamp) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => (error.reason, error.timestamp),
            Err(_) => (String::new(), None),
        };
        if reason == "ExpiredProviderToken" {
            return Attempt::ExpiredToken;
        }
        Attempt::Done(classify(status, &reason, timestamp, retry_after))
    }
}

/// One HTTP exchange: either an answer to report, or Apple's "your token expired".
enum Attempt {
    Done(DeviceResult),
    ExpiredToken,
}

/// A refusal caused by io's own APNs settings: permanent, never a reason to prune, and logged
/// loudly because every push fails until an operator fixes it.
fn configuration_alert(reason: &str, detail: &str) -> Outcome {
    tracing::error!(reason, detail, "APNs configuration alert");
    Outcome::Permanent(PermanentReason::new(
        format!("apns_{reason}"),
        format!("APNs refused io's configuration: {reason} ({detail})"),
    ))
}

/// Apple's status and reason to an outcome, as Apple documents them.
fn classify(
    status: u16,
    reason: &str,
    timestamp: Option<u64>,
    retry_after: Option<Duration>,
) -> DeviceResult {
    let outcome = match reason {
        "BadDeviceToken" | "DeviceTokenNotForTopic" => {
            return DeviceResult {
                outcome: Outcome::InvalidRecipient,
                prune: Prune::Remove,
            };
        }
        "Unregistered" => {
            let prune = match timestamp {
                Some(millis) => Prune::IfRegisteredBefore(Timestamp::from_millis(
                    i64::try_from(millis).unwrap_or(i64::MAX),
                )),
                None => Prune::Remove,
            };
            return DeviceResult {
                outcome: Outcome::InvalidRecipient,
                prune,
            };
        }
        "BadTopic"
        | "TopicDisallowed"
        | "InvalidProviderToken"
        | "MissingProviderToken"
        | "Forbidden"
        | "BadCertificate"
        | "BadCertificateEnvironment"
        | "MissingTopic" => configuration_alert(reason, "fix the APNs team, key or topic settings"),
        "TooManyRequests" => Outcome::RateLimited { retry_after },
        "InternalServerError" | "ServiceUnavailable" | "Shutdown" => Outcome::Transient {
            retry_after,
            cause: TransientCause::ServerError(status),
        },
        "TooManyProviderTokenUpdates" | "IdleTimeout" => Outcome::Transient {
            retry_after,
            cause: TransientCause::Other(reason.to_owned()),
        },
        "PayloadTooLarge" | "BadMessageId" | "BadPriority" | "BadExpirationDate" | "BadPath"
        | "MethodNotAllowed" | "DuplicateHeaders" | "BadCollapseId" | "InvalidPushType"
        | "MissingDeviceToken" | "ExpiredToken" => Outcome::Permanent(PermanentReason::new(
            format!("apns_{reason}"),
            format!("APNs refused the request ({status} {reason})"),
        )),
        // A reason Apple added after this list: judged by the status, the text kept.
        _ => match status {
            410 => {
                return DeviceResult {
                    outcome: Outcome::InvalidRecipient,
                    prune: Prune::Remove,
                };
            }
            429 => Outcome::RateLimited { retry_after },
            500..=599 => Outcome::Transient {
                retry_after,
                cause: TransientCause::ServerError(status),
            },
            _ => Outcome::Permanent(PermanentReason::new(
                "apns_unknown",
                format!("APNs answered {status} {reason:?}"),
            )),
        },
    };
    DeviceResult::keep(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn client(token_refresh: Duration) -> Result<ApnsClient, ConfigError> {
        let rng = ring::rand::SystemRandom::new();
        let der = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der.as_ref())
        );
        ApnsClient::new(ApnsConfig {
            base_url: "https://localhost:1".into(),
            team_id: "TEAM".into(),
            key_id: "KEY".into(),
            signing_key_pem: pem,
            topic: "it.example.app".into(),
            roots: TrustedRoots::default(),
            request_timeout: http::default_request_timeout(),
            token_refresh,
            limit: None,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn the_provider_token_is_reused_until_its_refresh_age() {
        let client = client(Duration::from_secs(50 * 60)).unwrap();
        let first = client.provider_token(false).unwrap();
        tokio::time::advance(Duration::from_secs(49 * 60)).await;
        assert_eq!(client.provider_token(false).unwrap(), first);
        assert_eq!(client.provider_tokens_signed(), 1);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_ne!(client.provider_token(false).unwrap(), first);
        assert_eq!(client.provider_tokens_signed(), 2);
        client.provider_token(true).unwrap();
        assert_eq!(client.provider_tokens_signed(), 3, "renewed on demand");
    }

    #[test]
    fn a_token_age_outside_apples_window_is_refused() {
        for minutes in [5, 19, 56, 60] {
            let error = client(Duration::from_secs(minutes * 60)).err().unwrap();
            assert!(
                error.to_string().starts_with("apns.token_refresh"),
                "{minutes}: {error}"
            );
        }
    }

    #[test]
    fn every_documented_reason_has_its_outcome() {
        let gone = classify(410, "Unregistered", Some(1_700_000_000_000), None);
        assert_eq!(gone.outcome, Outcome::InvalidRecipient);
        assert_eq!(
            gone.prune,
            Prune::IfRegisteredBefore(Timestamp::from_millis(1_700_000_000_000))
        );
        for reason in ["BadDeviceToken", "DeviceTokenNotForTopic"] {
            assert_eq!(classify(400, reason, None, None).prune, Prune::Remove);
        }
        for reason in [
            "BadTopic",
            "TopicDisallowed",
            "InvalidProviderToken",
            "Forbidden",
        ] {
            let result = classify(403, reason, None, None);
            assert!(matches!(result.outcome, Outcome::Permanent(_)), "{reason}");
            assert_eq!(result.prune, Prune::Keep, "{reason}");
        }
        let wait = Some(Duration::from_secs(30));
        assert_eq!(
            classify(429, "TooManyRequests", None, wait).outcome,
            Outcome::RateLimited { retry_after: wait }
        );
        for (status, reason) in [
            (500, "InternalServerError"),
            (503, "ServiceUnavailable"),
            (503, "Shutdown"),
        ] {
            assert!(matches!(
                classify(status, reason, None, None).outcome,
                Outcome::Transient { cause: TransientCause::ServerError(s), .. } if s == status
            ));
        }
        let unknown = classify(400, "SomethingNew", None, None);
        assert!(
            matches!(&unknown.outcome, Outcome::Permanent(r) if r.detail.contains("SomethingNew")),
            "{unknown:?}"
        );
        assert!(matches!(
            classify(502, "", None, None).outcome,
            Outcome::Transient { .. }
        ));
    }
}
