//! A small client of Firebase Cloud Messaging's HTTP v1 API. Why not the `fcm` crate: it speaks
//! the legacy API that Google shut down in 2024.
//!
//! - **Credentials**: a service-account JSON. The client signs an RS256 assertion and trades it
//!   at the account's `token_uri` (OAuth2 JWT bearer grant, RFC 7523) for an access token,
//!   cached until five minutes before it expires; one exchange serves every send meanwhile.
//! - **Sending**: `POST {base}/v1/projects/{project}/messages:send`, one device per request,
//!   multiplexed on one HTTP/2 connection.
//! - **Errors**: classified on the `FcmError` code in the error details, else on the status.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use io_core::{Outcome, PermanentReason, Timestamp, TransientCause};
use serde::{Deserialize, Serialize};

use crate::http::{self, ClientSettings};
use crate::jwt::JwtKey;
use crate::provider_limit::{self, ProviderLimit, ProviderLimiter};
use crate::push::{DeviceResult, Prune, PushNotification};
use crate::{ConfigError, TrustedRoots};

/// Google's FCM endpoint.
pub const FCM_BASE_URL: &str = "https://fcm.googleapis.com";
/// The OAuth2 scope that allows sending.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// An access token is renewed this long before Google says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

/// How to reach FCM for one Firebase project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    /// The service account's JSON key file, as text.
    pub service_account_json: String,
    /// [`FCM_BASE_URL`] or a test peer.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Whose certificates are trusted (Google's are in the built-in roots).
    #[serde(default)]
    pub roots: TrustedRoots,
    /// The longest one request may take.
    #[serde(default = "http::default_request_timeout")]
    pub request_timeout: Duration,
    /// The project's send rate, if it must be capped (FCM allows 600,000 per minute).
    #[serde(default)]
    pub limit: Option<ProviderLimit>,
}

fn default_base_url() -> String {
    FCM_BASE_URL.to_owned()
}

/// The fields of a service-account key file that io uses.
#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    private_key: String,
    client_email: String,
    #[serde(default)]
    token_uri: Option<String>,
}

struct AccessToken {
    value: String,
    renew_at: tokio::time::Instant,
}

/// An FCM sender for one project.
pub struct FcmClient {
    http: reqwest::Client,
    send_url: String,
    token_uri: String,
    client_email: String,
    key: JwtKey,
    token: tokio::sync::Mutex<Option<AccessToken>>,
    exchanges: AtomicU64,
    limiter: Option<ProviderLimiter>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize, Default)]
struct ErrorEnvelope {
    #[serde(default)]
    error: ErrorStatus,
}

#[derive(Deserialize, Default)]
struct ErrorStatus {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "@type", default)]
    kind: String,
    #[serde(rename = "errorCode", default)]
    error_code: Option<String>,
    #[serde(rename = "fieldViolations", default)]
    field_violations: Vec<FieldViolation>,
}

#[derive(Deserialize)]
struct FieldViolation {
    #[serde(default)]
    field: String,
}

impl FcmClient {
    /// Checks the configuration and key; the first send fetches the first access token.
    pub fn new(config: FcmConfig) -> Result<Self, ConfigError> {
        let account: ServiceAccount = serde_json::from_str(&config.service_account_json)
            .map_err(|e| ConfigError::invalid("fcm.service_account_json", e.to_string()))?;
        let key = JwtKey::rs256(&account.private_key, "fcm.service_account_json.private_key")?;
        let project_ok = !account.project_id.is_empty()
            && account
                .project_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !project_ok {
            return Err(ConfigError::invalid(
                "fcm.service_account_json.project_id",
                "must be a Firebase project id (letters, digits, '-')",
            ));
        }
        let base_url = config.base_url.trim_end_matches('/');
        let token_uri = account
            .token_uri
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
        for (setting, url) in [
            ("fcm.base_url", base_url),
            ("fcm.service_account_json.token_uri", token_uri.as_str()),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::invalid(setting, "must be an http(s) URL"));
            }
        }
        let http = http::client(ClientSettings {
            roots: &config.roots,
            timeout: config.request_timeout,
            http2_only: false,
        })?;
        let limiter = config
            .limit
            .map(|limit| ProviderLimiter::new(limit, "fcm.limit"))
            .transpose()?;
        Ok(Self {
            http,
            send_url: format!(
                "{base_url}/v1/projects/{}/messages:send",
                account.project_id
            ),
            token_uri,
            client_email: account.client_email,
            key,
            token: tokio::sync::Mutex::new(None),
            exchanges: AtomicU64::new(0),
            limiter,
        })
    }

    /// How many token exchanges this client has made (a gauge of token reuse).
    pub fn token_exchanges(&self) -> u64 {
        self.exchanges.load(Ordering::Relaxed)
    }

    /// A valid access token; one exchange at a time, shared by every waiting send. The error is
    /// the outcome to report for the send; `now` is the engine's clock, for `Retry-After`.
    async fn access_token(&self, renew: Option<&str>, now: Timestamp) -> Result<String, Outcome> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref() {
            let rejected = renew == Some(token.value.as_str());
            if !rejected && tokio::time::Instant::now() < token.renew_at {
                return Ok(token.value.clone());
            }
        }
        // Real time, not the engine's clock: Google checks the assertion's `iat` and `exp`
        // against its own clock, so they carry the wall clock's instant even under a test clock.
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let assertion = self
            .key
            .sign(
                None,
                &serde_json::json!({
                    "iss": self.client_email,
                    "scope": FCM_SCOPE,
                    "aud": self.token_uri,
                    "iat": iat,
                    "exp": iat + 3600,
                }),
            )
            .map_err(|_| {
                Outcome::Permanent(PermanentReason::new(
                    "signing_failed",
                    "could not sign the OAuth2 assertion",
                ))
            })?;
        let form = serde_urlencoded::to_string([
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ])
        .expect("a form of strings encodes");
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        let response = self
            .http
            .post(&self.token_uri)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .await
            .map_err(|error| Outcome::Transient {
                retry_after: None,
                cause: http::transport_cause(&error),
            })?;
        let status = response.status().as_u16();
        let retry_after = http::retry_after(response.headers(), now);
        let body = response.bytes().await.unwrap_or_default();
        if status >= 500 || status == 429 {
            return Err(Outcome::Transient {
                retry_after,
                cause: TransientCause::ServerError(status),
            });
        }
        let token: TokenResponse = match serde_json::from_slice(&body) {
            Ok(token) if status == 200 => token,
            _ => {
                let text = String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>();
                return Err(configuration_alert(
                    "token_exchange",
                    &format!("the token endpoint answered {status}: {text}"),
                ));
            }
        };
        let lifetime = Duration::from_secs(token.expires_in).saturating_sub(TOKEN_MARGIN);
        *slot = Some(AccessToken {
            value: token.access_token.clone(),
            renew_at: tokio::time::Instant::now() + lifetime,
        });
        Ok(token.access_token)
    }

    /// Sends one notification to one device and classifies Google's answer.
    pub async fn send(&self, device_token: &str, notification: &PushNotification) -> DeviceResult {
        if device_token.is_empty() {
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
        let body = serde_json::json!({
            "message": {
                "token": device_token,
                "notification": { "title": notification.title, "body": notification.body },
                "data": { "message_id": notification.message_id },
                "android": {
                    "priority": "HIGH",
                    "ttl": format!("{}s", notification.time_to_live.as_secs()),
                },
                "apns": { "headers": { "apns-expiration": notification.expires_at.to_string() } },
                "fcm_options": { "analytics_label": notification.id },
            }
        });
        let mut rejected_token: Option<String> = None;
        loop {
            let token = match self
                .access_token(rejected_token.as_deref(), notification.now)
                .await
            {
                Ok(token) => token,
                Err(outcome) => {
                    return DeviceResult::keep(outcome);
                }
            };
            let response = match self
                .http
                .post(&self.send_url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
            {
                Ok(response) => response,
                Err(error) => {
                    return DeviceResult::keep(Outcome::Transient {
                        retry_after: None,
                        cause: http::transport_cause(&error),
                    });
                }
            };
            let status = response.status().as_u16();
            let retry_after = http::retry_after(response.headers(), notification.now);
            let bytes = response.bytes().await.unwrap_or_default();
            if status == 200 {
                let name = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("name")?.as_str().map(str::to_owned));
                return DeviceResult::keep(Outcome::Delivered { provider_ref: name });
            }
            let error = serde_json::from_slice::<ErrorEnvelope>(&bytes)
                .unwrap_or_default()
                .error;
            let fcm_code = error
                .details
                .iter()
                .filter(|d| d.kind.ends_with("google.firebase.fcm.v1.FcmError"))
                .find_map(|d| d.error_code.clone());
            // A plain 401 is our access token: renew it and try once more.
            if status == 401 && fcm_code.is_none() && rejected_token.is_none() {
                rejected_token = Some(token);
                continue;
            }
            return classify(status, fcm_code.as_deref(), &error, retry_after);
        }
    }
}

/// A refusal caused by io's own FCM settings: permanent, no pruning, logged loudly.
fn configuration_alert(code: &str, detail: &str) -> Outcome {
    tracing::error!(code, detail, "FCM configuration alert");
    Outcome::Permanent(PermanentReason::new(
        format!("fcm_{code}"),
        format!("FCM refused io's configuration: {detail}"),
    ))
}

fn classify(
    status: u16,
    fcm_code: Option<&str>,
    error: &ErrorStatus,
    retry_after: Option<Duration>,
) -> DeviceResult {
    let code = fcm_code.unwrap_or(error.status.as_str());
    let gone = DeviceResult {
        outcome: Outcome::InvalidRecipient,
        prune: Prune::Remove,
    };
    let outcome = match code {
        "UNREGISTERED" => return gone,
        "INVALID_ARGUMENT" => {
            let names_token = error
                .details
                .iter()
                .flat_map(|d| &d.field_violations)
                .any(|v| v.field == "message.token");
            if names_token {
                return gone;
            }
            Outcome::Permanent(PermanentReason::new(
                "fcm_INVALID_ARGUMENT",
                format!("FCM refused the message: {}", error.message),
            ))
        }
        "SENDER_ID_MISMATCH"
        | "THIRD_PARTY_AUTH_ERROR"
        | "PERMISSION_DENIED"
        | "UNAUTHENTICATED" => configuration_alert(code, &error.message),
        "QUOTA_EXCEEDED" | "RESOURCE_EXHAUSTED" => Outcome::RateLimited { retry_after },
        "UNAVAILABLE" | "INTERNAL" => Outcome::Transient {
            retry_after,
            cause: TransientCause::ServerError(status),
        },
        _ => match status {
            404 => return gone,
            429 => Outcome::RateLimited { retry_after },
            500..=599 => Outcome::Transient {
                retry_after,
                cause: TransientCause::ServerError(status),
            },
            _ => Outcome::Permanent(PermanentReason::new(
                "fcm_unknown",
                format!("FCM answered {status} {code}: {}", error.message),
            )),
        },
    };
    DeviceResult::keep(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: serde_json::Value) -> ErrorStatus {
        serde_json::from_value::<ErrorEnvelope>(json).unwrap().error
    }

    #[test]
    fn invalid_argument_prunes_only_when_it_names_the_token() {
        let on_token = error(serde_json::json!({ "error": {
            "code": 400, "status": "INVALID_ARGUMENT", "message": "bad token",
            "details": [
                { "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT" },
                { "@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{ "field": "message.token", "description": "x" }] }
            ]
        }}));
        let result = classify(400, Some("INVALID_ARGUMENT"), &on_token, None);
        assert_eq!(result.prune, Prune::Remove);
        let on_payload = error(serde_json::json!({ "error": {
            "code": 400, "status": "INVALID_ARGUMENT", "message": "bad ttl",
            "details": [{ "@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{ "field": "message.android.ttl" }] }]
        }}));
        let result = classify(400, None, &on_payload, None);
        assert_eq!(result.prune, Prune::Keep);
        assert!(matches!(result.outcome, Outcome::Permanent(_)));
    }

    #[test]
    fn sender_mismatch_is_a_configuration_error_that_keeps_the_device() {
        let result = classify(
            403,
            Some("SENDER_ID_MISMATCH"),
            &ErrorStatus::default(),
            None,
        );
        assert_eq!(result.prune, Prune::Keep);
        assert!(
            matches!(&result.outcome, Outcome::Permanent(r) if r.code == "fcm_SENDER_ID_MISMATCH")
        );
    }
}
