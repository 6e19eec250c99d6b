//! The email channel: a notification email over SMTP, never the message itself.
//!
//! - **Content** ([`content`]): the IO teaser of the message (markdown stripped, links removed,
//!   134 characters, zero-width space after every "."), the organization and service names, and
//!   an invitation to read the message in the app; a plain-text and an HTML part; in the
//!   citizen's first preferred language (it, en, de, fr, es; Italian otherwise).
//! - **Idempotency**: `Message-ID` is derived from the delivery id, so a repeat after a crash is
//!   recognisable downstream as the same email.
//! - **Transport**: lettre's pooled async SMTP client; STARTTLS, implicit TLS, or plain (only
//!   toward a loopback relay, for tests and a local MTA).
//! - **Answers**: 4xx → transient; 550/551/553 (no such mailbox) → invalid recipient with the
//!   effect [`Effect::EmailBounced`]: the engine marks the profile's address bounced in the same
//!   write as the outcome, so that no email goes to it until the citizen changes it; other 5xx →
//!   permanent; no answer → transient. The channel never touches the store.

pub mod content;

use std::net::IpAddr;
use std::time::Duration;

use io_core::{
    Channel, ChannelKind, DeliveryJob, DeliveryTarget, Effect, EmailAddress, Outcome,
    PermanentReason, Report, TransientCause,
};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::error_text::error_chain;
use crate::provider_limit::{self, ProviderLimit, ProviderLimiter};
use crate::{ConfigError, TrustedRoots};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which the relay must offer (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: allowed only toward a loopback relay.
    Plain,
}

impl SmtpSecurity {
    fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::Tls => 465,
            Self::Plain => 25,
        }
    }
}

/// How to reach the SMTP relay, and what the emails say they come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The relay's host name (checked against its certificate) or address.
    pub host: String,
    /// The relay's port; by default 587, 465 or 25 by `security`.
    #[serde(default)]
    pub port: Option<u16>,
    /// STARTTLS, TLS or plain.
    pub security: SmtpSecurity,
    /// The relay account, if it requires authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// The relay account's password.
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, e.g. `IO - L'app dei servizi pubblici <no-reply@io.example.it>`.
    pub from: String,
    /// The name io gives in EHLO; the local host name by default.
    #[serde(default)]
    pub hello_name: Option<String>,
    /// Whose certificates are trusted.
    #[serde(default)]
    pub roots: TrustedRoots,
    /// The longest one SMTP command may take.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Connections kept open to the relay.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// The relay's send rate, if it must be capped.
    #[serde(default)]
    pub limit: Option<ProviderLimit>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_pool_size() -> u32 {
    8
}

/// Email notifications through one SMTP relay.
pub struct EmailChannel {
    smtp: Smtp,
    from_domain: String,
}

impl EmailChannel {
    /// Checks the configuration and prepares the pool (connections open on first use). Call it
    /// inside a tokio runtime: the pool keeps a task that closes idle connections.
    pub fn new(config: EmailConfig) -> Result<Self, ConfigError> {
        let smtp = Smtp::new(&config, &EMAIL_SETTINGS)?;
        let from_domain = smtp.from.email.domain().to_owned();
        Ok(Self { smtp, from_domain })
    }
}

/// What a configuration error calls the settings of an SMTP account, by where it is configured.
pub(crate) struct SmtpSettings {
    pub(crate) section: &'static str,
    pub(crate) from: &'static str,
    pub(crate) security: &'static str,
    pub(crate) pool_size: &'static str,
    pub(crate) username: &'static str,
    pub(crate) roots: &'static str,
    pub(crate) extra_pem: &'static str,
    pub(crate) limit: &'static str,
}

const EMAIL_SETTINGS: SmtpSettings = SmtpSettings {
    section: "email",
    from: "email.from",
    security: "email.security",
    pool_size: "email.pool_size",
    username: "email.username",
    roots: "email.roots",
    extra_pem: "email.roots.extra_pem",
    limit: "email.limit",
};

/// A pooled SMTP client for one account, with its sender and send rate: what the email and the
/// PEC channels share.
pub(crate) struct Smtp {
    pub(crate) transport: AsyncSmtpTransport<Tokio1Executor>,
    pub(crate) from: Mailbox,
    pub(crate) limiter: Option<ProviderLimiter>,
}

/// What handing one message to the SMTP server came to.
pub(crate) enum Sending {
    /// The server took it; its answer, kept as evidence.
    Taken {
        /// The server's reply text (its queue id), if any.
        provider_ref: Option<String>,
    },
    /// The server refused it, or did not answer: the channel classifies the error.
    Refused(lettre::transport::smtp::Error),
    /// Not sent: the message could not be built, or the account's rate holds it back.
    NotSent(Report),
}

impl Smtp {
    /// Sends `email` (as the builder left it) within the account's rate.
    pub(crate) async fn send(&self, email: Result<Message, lettre::error::Error>) -> Sending {
        let email = match email {
            Ok(email) => email,
            Err(error) => {
                return Sending::NotSent(Report::from(Outcome::Permanent(PermanentReason::new(
                    "unbuildable_email",
                    error.to_string(),
                ))));
            }
        };
        if let Err(wait) = provider_limit::acquire(self.limiter.as_ref()).await {
            return Sending::NotSent(Report::from(Outcome::RateLimited {
                retry_after: Some(wait),
            }));
        }
        // The exchange runs as a task of its own, so that the engine giving up on this send
        // (`send_timeout`) cannot cut it in the middle: lettre puts a connection dropped
        // mid-exchange back in its pool, where the next message's commands would land inside
        // this one's transaction (a "503 nested MAIL", or worse, inside its DATA). The task
        // ends by itself, bounded by the per-command `timeout`.
        let transport = self.transport.clone();
        let exchange = tokio::spawn(async move { transport.send(email).await });
        match exchange.await {
            Ok(Ok(response)) => Sending::Taken {
                provider_ref: Some(response.message().collect::<Vec<_>>().join(" "))
                    .filter(|r| !r.is_empty()),
            },
            Ok(Err(error)) => Sending::Refused(error),
            Err(_) => Sending::NotSent(Report::from(Outcome::Transient {
                retry_after: None,
                cause: TransientCause::Connection,
            })),
        }
    }

    /// Checks `config` (errors name its settings as `names` says) and prepares the pool.
    pub(crate) fn new(config: &EmailConfig, names: &SmtpSettings) -> Result<Self, ConfigError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::invalid(
                names.section,
                "the channel must be built inside a tokio runtime (its connection pool runs a task)",
            ));
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| ConfigError::invalid(names.from, format!("not a mailbox: {e}")))?;
        let port = config.port.unwrap_or(config.security.default_port());
        let tls = match config.security {
            SmtpSecurity::Plain => {
                if !is_loopback(&config.host) {
                    return Err(ConfigError::invalid(
                        names.security,
                        "plain SMTP is allowed only toward a loopback relay; use start_tls or tls",
                    ));
                }
                Tls::None
            }
            SmtpSecurity::StartTls => Tls::Required(tls_parameters(config, names)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(config, names)?),
        };
        if config.pool_size == 0 {
            return Err(ConfigError::invalid(names.pool_size, "must be at least 1"));
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(port)
            .tls(tls)
            .timeout(Some(config.timeout))
            .pool_config(PoolConfig::new().max_size(config.pool_size));
        if let Some(name) = &config.hello_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => {
                return Err(ConfigError::invalid(
                    names.username,
                    "username and password go together",
                ));
            }
        }
        let limiter = config
            .limit
            .map(|limit| ProviderLimiter::new(limit, names.limit))
            .transpose()?;
        Ok(Self {
            transport: builder.build(),
            from,
            limiter,
        })
    }
}

pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn tls_parameters(
    config: &EmailConfig,
    names: &SmtpSettings,
) -> Result<TlsParameters, ConfigError> {
    let store = if config.roots.builtin {
        CertificateStore::WebpkiRoots
    } else {
        CertificateStore::None
    };
    let mut builder = TlsParameters::builder(config.host.clone()).certificate_store(store);
    for pem in &config.roots.extra_pem {
        let certificate = Certificate::from_pem(pem.as_bytes())
            .map_err(|e| ConfigError::invalid(names.extra_pem, e.to_string()))?;
        builder = builder.add_root_certificate(certificate);
    }
    if !config.roots.builtin && config.roots.extra_pem.is_empty() {
        return Err(crate::TlsError::NoRoots.into());
    }
    builder
        .build_rustls()
        .map_err(|e| ConfigError::invalid(names.roots, e.to_string()))
}

/// What lettre's error means for the delivery toward `address`.
fn classify(error: &lettre::transport::smtp::Error, address: &EmailAddress) -> Report {
    if let Some(code) = error.status() {
        return classify_reply(u16::from(code), address, || error_chain(error));
    }
    let cause = if error.is_timeout() {
        TransientCause::Timeout
    } else {
        TransientCause::Connection
    };
    tracing::debug!(error = %error_chain(error), "SMTP exchange failed without a reply");
    Report::from(Outcome::Transient {
        retry_after: None,
        cause,
    })
}

/// What a refusal with reply `code` means; `detail` describes it for a permanent failure.
/// "No such mailbox" (550/551/553) reports the address bounced.
fn classify_reply(code: u16, address: &EmailAddress, detail: impl FnOnce() -> String) -> Report {
    match code {
        550 | 551 | 553 => Report::with_effects(
            Outcome::InvalidRecipient,
            vec![Effect::EmailBounced(address.clone())],
        ),
        // "Bad sequence of commands" is about the client's session, never the recipient:
        // another connection succeeds.
        400..=499 | 503 => Report::from(Outcome::Transient {
            retry_after: None,
            cause: TransientCause::ServerError(code),
        }),
        _ => Report::from(Outcome::Permanent(PermanentReason::new(
            format!("smtp_{code}"),
            format!("the relay refused the email: {}", detail()),
        ))),
    }
}

#[async_trait::async_trait]
impl Channel for EmailChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    async fn send(&self, job: DeliveryJob<'_>) -> Report {
        let DeliveryTarget::Email { address } = &job.delivery.target else {
            return Report::from(Outcome::Permanent(PermanentReason::new(
                "wrong_target",
                "an email delivery without an email address",
            )));
        };
        // Defence in depth: the decision never routes these to email.
        if job
            .message
            .requires_secure_channels(job.service.require_secure_channels)
            && job.delivery.fiscal_code.as_str() != io_core::fiscal_code::SANDBOX_FISCAL_CODE
        {
            return Report::from(Outcome::Permanent(PermanentReason::new(
                "secure_channels_required",
                "the message requires secure channels; email is not one",
            )));
        }
        let to: Mailbox = match address.as_str().parse() {
            Ok(to) => to,
            // Not a relay's bounce: the address was never tried, so it is not marked.
            Err(_) => return Report::from(Outcome::InvalidRecipient),
        };
        let language = job
            .profile
            .and_then(|p| p.preferred_languages.first().copied());
        let text = content::render(
            language,
            &job.service.organization_name,
            &job.service.service_name,
            &job.message.body.content.markdown,
        );
        let email = Message::builder()
            .from(self.smtp.from.clone())
            .to(to)
            .subject(text.subject)
            .message_id(Some(format!(
                "<{}@{}>",
                job.delivery.id.as_uuid(),
                self.from_domain
            )))
            .multipart(MultiPart::alternative_plain_html(text.plain, text.html));
        match self.smtp.send(email).await {
            Sending::Taken { provider_ref } => Report::from(Outcome::Delivered { provider_ref }),
            Sending::Refused(error) => classify(&error, address),
            Sending::NotSent(report) => report,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_no_such_mailbox_reports_the_address_bounced() {
        let address = EmailAddress::parse("nobody@example.it").unwrap();
        for code in [550, 551, 553] {
            assert_eq!(
                classify_reply(code, &address, String::new),
                Report::with_effects(
                    Outcome::InvalidRecipient,
                    vec![Effect::EmailBounced(address.clone())]
                ),
                "{code}"
            );
        }
        assert_eq!(
            classify_reply(451, &address, String::new),
            Report::from(Outcome::Transient {
                retry_after: None,
                cause: TransientCause::ServerError(451)
            })
        );
        // A session out of step (a "nested MAIL") is retried on another connection.
        assert_eq!(
            classify_reply(503, &address, String::new),
            Report::from(Outcome::Transient {
                retry_after: None,
                cause: TransientCause::ServerError(503)
            })
        );
        for code in [552, 554] {
            let report = classify_reply(code, &address, || "policy".into());
            assert!(report.effects.is_empty(), "{code}: not a bounce");
            assert!(
                matches!(&report.outcome, Outcome::Permanent(r) if r.code == format!("smtp_{code}")),
                "{code}: {report:?}"
            );
        }
    }

    #[test]
    fn plain_smtp_is_refused_toward_a_remote_relay() {
        for host in ["localhost", "127.0.0.1", "::1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["smtp.example.it", "10.0.0.1", "0.0.0.0"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
