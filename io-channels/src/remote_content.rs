//! Reads a message's details from the sender's server (IO's remote contents): `GET
//! {base_url}/messages/{id}` with the citizen's fiscal code in the `fiscal_code` header and the
//! configuration's authentication header, through the SSRF guard of [`crate::outbound`]. The
//! answer is the sender's JSON object (IO's `ThirdPartyMessage`: `details`, `attachments`),
//! size-limited; every failure says what the sender did, so the citizen's app can tell "try
//! again later" from "this will not work".
//!
//! The guard has its own switch here: unlike a callback, whose answer nobody sees, what a
//! sender's server answers is shown to a citizen, so allowing internal addresses lets any
//! institution holding a manage key read what those addresses answer. Base URLs must be https
//! unless internal addresses are allowed (in-house servers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use io_core::{ConfigurationId, FiscalCode, RemoteEnvironment};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::error_text::{http_error_chain, redacted_url};
use crate::outbound::{self, OutboundClient, OutboundPolicy};
use crate::{ConfigError, TrustedRoots};

/// The largest answer read from a sender, in bytes.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// How remote contents are read (`[remote_contents]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteContentConfig {
    /// Allow private, loopback and link-local senders' servers, and plain http toward them.
    /// Every institution with a manage key can then make io read such addresses for its
    /// citizens: enable it only for a platform whose institutions are all trusted, or tests.
    pub allow_private_addresses: bool,
    /// The longest one read may take.
    pub timeout: Duration,
    /// Reads of one configuration in flight at once in this process; beyond, a read is refused
    /// at once (retriable) instead of piling up on a slow sender.
    pub max_concurrent_reads: usize,
    /// Whose certificates are trusted.
    pub roots: TrustedRoots,
}

impl Default for RemoteContentConfig {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            timeout: Duration::from_secs(10),
            max_concurrent_reads: 16,
            roots: TrustedRoots::default(),
        }
    }
}

/// Why a sender's details could not be read. Texts carry no secret: URLs are cut to scheme,
/// host, port and path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteContentFailure {
    /// The base URL or the sender's id is not one io calls (malformed, plain http, refused by
    /// the SSRF guard, a dot segment).
    #[error("refused by io's outbound policy: {0}")]
    Refused(String),
    /// No connection, or it broke (retriable).
    #[error("the sender's server could not be reached: {0}")]
    Unreachable(String),
    /// No answer within the configured timeout (retriable).
    #[error("the sender's server did not answer in time")]
    Timeout,
    /// A 4xx other than 429: the sender refuses this read (asking again will not help).
    #[error("the sender's server refused the read with {0}")]
    Rejected(u16),
    /// 429, 5xx or another unexpected status: the sender cannot answer now (retriable).
    #[error("the sender's server is unavailable (it answered {0})")]
    Unavailable(u16),
    /// As many reads of this configuration are in flight as allowed (retriable).
    #[error("too many reads of this sender's server are in progress")]
    Busy,
    /// Over [`MAX_ANSWER_BYTES`].
    #[error("the sender's answer is over {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    /// Not a JSON object.
    #[error("the sender's answer is not a JSON object: {0}")]
    NotJson(String),
}

impl RemoteContentFailure {
    /// Whether asking again later may succeed (the sender is down, slow or busy).
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::Timeout | Self::Unavailable(_) | Self::Busy
        )
    }
}

/// The client that reads remote contents.
pub struct RemoteContentClient {
    outbound: OutboundClient,
    max_concurrent_reads: usize,
    /// One permit pool per configuration (as many entries as configurations read).
    in_flight: Mutex<HashMap<ConfigurationId, Arc<Semaphore>>>,
}

impl RemoteContentClient {
    /// A client with its own connection pool.
    pub fn new(config: &RemoteContentConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            outbound: OutboundClient::new(&OutboundPolicy {
                allow_private_addresses: config.allow_private_addresses,
                https_only: true,
                timeout: config.timeout,
                roots: &config.roots,
                user_agent: concat!("io-remote-contents/", env!("CARGO_PKG_VERSION")),
                section: "remote_contents",
            })?,
            max_concurrent_reads: config.max_concurrent_reads.max(1),
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// Checks a base URL before it is kept: the rules of [`OutboundClient::check_url`], https
    /// unless internal addresses are allowed.
    pub fn check_url(&self, url: &str) -> Result<(), outbound::UrlRefused> {
        self.outbound.check_url(url).map(drop)
    }

    /// The details of the sender's message `id` for `citizen`, from `environment` of
    /// `configuration`.
    pub async fn fetch(
        &self,
        configuration: &ConfigurationId,
        environment: &RemoteEnvironment,
        id: &str,
        citizen: &FiscalCode,
    ) -> Result<serde_json::Map<String, serde_json::Value>, RemoteContentFailure> {
        let permits = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            in_flight
                .entry(configuration.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.max_concurrent_reads)))
                .clone()
        };
        let _permit = permits
            .try_acquire_owned()
            .map_err(|_| RemoteContentFailure::Busy)?;
        self.read(environment, id, citizen).await
    }

    async fn read(
        &self,
        environment: &RemoteEnvironment,
        id: &str,
        citizen: &FiscalCode,
    ) -> Result<serde_json::Map<String, serde_json::Value>, RemoteContentFailure> {
        // `url` drops "." and ".." segments: the read would go to another path of the sender.
        if id == "." || id == ".." || id.contains(['/', '\\']) {
            return Err(RemoteContentFailure::Refused(
                "the sender's id is not one path segment".to_owned(),
            ));
        }
        let mut url = self
            .outbound
            .check_url(&environment.base_url)
            .map_err(|e| RemoteContentFailure::Refused(e.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| RemoteContentFailure::Refused("not a base URL".to_owned()))?
            .pop_if_empty()
            .push("messages")
            .push(id);
        let auth = &environment.details_authentication;
        let sent = self
            .outbound
            .http()
            .get(url.clone())
            .header("fiscal_code", citizen.as_str())
            .header(auth.header_key_name.as_str(), auth.key.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) if outbound::refused_by_guard(&error) => {
                return Err(RemoteContentFailure::Refused(format!(
                    "{} resolves to an internal address",
                    redacted_url(&url)
                )));
            }
            Err(error) if error.is_timeout() => return Err(RemoteContentFailure::Timeout),
            Err(error) => {
                return Err(RemoteContentFailure::Unreachable(http_error_chain(&error)));
            }
        };
        match response.status().as_u16() {
            200 => {}
            429 => return Err(RemoteContentFailure::Unavailable(429)),
            status @ 400..=499 => return Err(RemoteContentFailure::Rejected(status)),
            status => return Err(RemoteContentFailure::Unavailable(status)),
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
