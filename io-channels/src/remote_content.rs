//! Reads a message's details from the sender's server (IO's remote contents): `GET
//! {base_url}/messages/{id}` with the citizen's fiscal code in the `fiscal_code` header and the
//! configuration's authentication header, through the SSRF guard of [`crate::outbound`]. The
//! answer is the sender's JSON object (IO's `ThirdPartyMessage`: `details`, `attachments`),
//! size-limited; every failure says what the sender did, so the citizen's app can tell "try
//! again later" from "this will not work".

use io_core::{FiscalCode, RemoteEnvironment};

use crate::ConfigError;
use crate::error_text::http_error_chain;
use crate::outbound::{self, OutboundClient};
use crate::webhook::WebhookConfig;

/// The largest answer read from a sender, in bytes.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Why a sender's details could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteContentFailure {
    /// The base URL is not one io calls (malformed, or refused by the SSRF guard).
    #[error("the sender's server {0} is refused: {1}")]
    Refused(String, String),
    /// No connection, or it broke (retriable).
    #[error("the sender's server could not be reached: {0}")]
    Unreachable(String),
    /// No answer within the configured timeout (retriable).
    #[error("the sender's server did not answer in time")]
    Timeout,
    /// An answer other than 200.
    #[error("the sender's server answered {0}")]
    Status(u16),
    /// Over [`MAX_ANSWER_BYTES`].
    #[error("the sender's answer is over {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    /// Not a JSON object.
    #[error("the sender's answer is not a JSON object: {0}")]
    NotJson(String),
}

impl RemoteContentFailure {
    /// Whether asking again later may succeed (the sender is down or slow, or said so).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::Timeout => true,
            Self::Status(status) => *status == 429 || *status >= 500,
            Self::Refused(..) | Self::TooLarge | Self::NotJson(_) => false,
        }
    }
}

/// The client that reads remote contents.
pub struct RemoteContentClient {
    outbound: OutboundClient,
}

impl RemoteContentClient {
    /// A client with its own connection pool, with the guard, timeout and roots of `config`.
    pub fn new(config: &WebhookConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            outbound: OutboundClient::new(
                config,
                concat!("io-remote-contents/", env!("CARGO_PKG_VERSION")),
            )?,
        })
    }

    /// Checks a base URL before it is kept: the rules of [`OutboundClient::check_url`].
    pub fn check_url(&self, url: &str) -> Result<(), outbound::UrlRefused> {
        self.outbound.check_url(url).map(drop)
    }

    /// The details of the sender's message `id` for `citizen`, from `environment`.
    pub async fn fetch(
        &self,
        environment: &RemoteEnvironment,
        id: &str,
        citizen: &FiscalCode,
    ) -> Result<serde_json::Map<String, serde_json::Value>, RemoteContentFailure> {
        let base = &environment.base_url;
        let mut url = self
            .outbound
            .check_url(base)
            .map_err(|e| RemoteContentFailure::Refused(base.clone(), e.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| RemoteContentFailure::Refused(base.clone(), "not a base URL".to_owned()))?
            .pop_if_empty()
            .push("messages")
            .push(id);
        let auth = &environment.details_authentication;
        let sent = self
            .outbound
            .http()
            .get(url)
            .header("fiscal_code", citizen.as_str())
            .header(auth.header_key_name.as_str(), auth.key.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) if outbound::refused_by_guard(&error) => {
                return Err(RemoteContentFailure::Refused(
                    base.clone(),
                    http_error_chain(&error),
                ));
            }
            Err(error) if error.is_timeout() => return Err(RemoteContentFailure::Timeout),
            Err(error) => {
                return Err(RemoteContentFailure::Unreachable(http_error_chain(&error)));
            }
        };
        let status = response.status().as_u16();
        if status != 200 {
            return Err(RemoteContentFailure::Status(status));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
        {
            return Err(RemoteContentFailure::TooLarge);
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(RemoteContentFailure::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) if error.is_timeout() => return Err(RemoteContentFailure::Timeout),
                Err(error) => {
                    return Err(RemoteContentFailure::Unreachable(http_error_chain(&error)));
                }
            }
        }
        serde_json::from_slice(&body).map_err(|e| RemoteContentFailure::NotJson(e.to_string()))
    }
}
