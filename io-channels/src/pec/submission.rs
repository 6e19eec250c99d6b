//! The PEC channel: a message with legal value submitted to the sender's PEC provider over
//! SMTP, authenticated and over TLS, as the full message (not a teaser): the certified copy
//! the citizen's domicile receives is the message itself.
//!
//! - **Message-ID** is [`io_core::pec::message_id`] of the message: every attempt of a delivery
//!   sends the same one, and the receipts' `X-Riferimento-Message-ID` leads back to the
//!   delivery without an index.
//! - **Body**: the subject as the subject; the markdown as the text part and rendered to HTML
//!   (raw HTML in the markdown escaped, never passed through), each with the sender's names.
//! - **Answers**: 250 → [`Outcome::Submitted`]: the delivery waits for its receipts, read from
//!   the sender's mailbox; 4xx or no answer → transient; 535 (authentication) and other 5xx →
//!   permanent. A refusal of the recipient comes later, as a `non-accettazione` receipt.

use std::time::{Duration, SystemTime};

use io_core::{
    Channel, ChannelKind, DeliveryJob, DeliveryTarget, Outcome, PermanentReason, Report,
    TransientCause,
};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use pulldown_cmark::{Event, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};

use crate::ConfigError;
use crate::email::{EmailConfig, Sending, Smtp, SmtpSettings};
use crate::error_text::error_chain;

/// The sender's PEC mailbox at its provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PecConfig {
    /// The SMTP account of the mailbox: the provider's submission server (TLS), the mailbox's
    /// credentials (required: providers accept only authenticated submissions) and its address
    /// as `from`.
    pub smtp: EmailConfig,
    /// The domain part of the `Message-ID`s; the mailbox's domain by default.
    #[serde(default)]
    pub message_id_domain: Option<String>,
}

const PEC_SETTINGS: SmtpSettings = SmtpSettings {
    section: "pec",
    from: "pec.smtp.from",
    security: "pec.smtp.security",
    pool_size: "pec.smtp.pool_size",
    username: "pec.smtp.username",
    roots: "pec.smtp.roots",
    extra_pem: "pec.smtp.roots.extra_pem",
    limit: "pec.smtp.limit",
};

/// Submissions of messages with legal value through the sender's PEC mailbox.
pub struct PecChannel {
    smtp: Smtp,
    message_id_domain: String,
}

impl PecChannel {
    /// Checks the configuration and prepares the connection pool (inside a tokio runtime).
    pub fn new(config: PecConfig) -> Result<Self, ConfigError> {
        if config.smtp.username.is_none() {
            return Err(ConfigError::invalid(
                "pec.smtp.username",
                "PEC providers accept only authenticated submissions: set username and password",
            ));
        }
        let smtp = Smtp::new(&config.smtp, &PEC_SETTINGS)?;
        let message_id_domain = match config.message_id_domain {
            Some(domain) if is_message_id_domain(&domain) => domain,
            Some(_) => {
                return Err(ConfigError::invalid(
                    "pec.message_id_domain",
                    "a domain name: letters, digits, '-' and '.'",
                ));
            }
            None => smtp.from.email.domain().to_owned(),
        };
        Ok(Self {
            smtp,
            message_id_domain,
        })
    }
}

fn is_message_id_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The text and HTML parts of a submission: the message in full, then who sends it.
pub(crate) fn render(markdown: &str, organization: &str, service: &str) -> (String, String) {
    let signature = format!("{organization} - {service}");
    let plain = format!("{markdown}\n\n--\n{signature}\n");
    let events = Parser::new(markdown).map(|event| match event {
        // Raw HTML in a message is shown as text, never passed to the reader's client.
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        other => other,
    });
    let mut body = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut body, events);
    body.push_str("<hr>\n");
    // The names as text: escaped like any text of the message.
    let signature_events = [
        Event::Start(Tag::Paragraph),
        Event::Text(signature.as_str().into()),
        Event::End(TagEnd::Paragraph),
    ];
    pulldown_cmark::html::push_html(&mut body, signature_events.into_iter());
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n{body}</body></html>\n"
    );
    (plain, html)
}

/// What lettre's error means for a submission.
fn classify(error: &lettre::transport::smtp::Error) -> Outcome {
    if let Some(code) = error.status() {
        return classify_reply(u16::from(code), || error_chain(error));
    }
    let cause = if error.is_timeout() {
        TransientCause::Timeout
    } else {
        TransientCause::Connection
    };
    tracing::debug!(error = %error_chain(error), "PEC submission failed without a reply");
    Outcome::Transient {
        retry_after: None,
        cause,
    }
}

/// What a refusal with reply `code` means; `detail` describes it for a permanent failure.
fn classify_reply(code: u16, detail: impl FnOnce() -> String) -> Outcome {
    match code {
        // 503, "bad sequence of commands", is about the session, not the submission.
        400..=499 | 503 => Outcome::Transient {
            retry_after: None,
            cause: TransientCause::ServerError(code),
        },
        535 => Outcome::Permanent(PermanentReason::new(
            "pec_authentication_failed",
            format!(
                "the PEC provider refused the mailbox's credentials: {}",
                detail()
            ),
        )),
        _ => Outcome::Permanent(PermanentReason::new(
            format!("smtp_{code}"),
            format!("the PEC provider refused the submission: {}", detail()),
        )),
    }
}

fn system_time(now: io_core::Timestamp) -> SystemTime {
    let millis = u64::try_from(now.as_millis()).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_millis(millis)
}

#[async_trait::async_trait]
impl Channel for PecChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Pec
    }

    async fn send(&self, job: DeliveryJob<'_>) -> Report {
        let DeliveryTarget::Pec { address } = &job.delivery.target else {
            return Report::from(Outcome::Permanent(PermanentReason::new(
                "wrong_target",
                "a PEC delivery without a digital domicile",
            )));
        };
        let Ok(to) = address.as_str().parse::<Mailbox>() else {
            return Report::from(Outcome::InvalidRecipient);
        };
        let content = &job.message.body.content;
        let (plain, html) = render(
            &content.markdown,
            &job.service.organization_name,
            &job.service.service_name,
        );
        let message_id = io_core::pec::message_id(job.message.id, &self.message_id_domain);
        let email = Message::builder()
            .from(self.smtp.from.clone())
            .to(to)
            .subject(content.subject.clone())
            .message_id(Some(message_id))
            .date(system_time(job.now))
            .multipart(MultiPart::alternative_plain_html(plain, html));
        match self.smtp.send(email).await {
            Sending::Taken { provider_ref } => Report::from(Outcome::Submitted { provider_ref }),
            Sending::Refused(error) => Report::from(classify(&error)),
            Sending::NotSent(report) => report,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_raw_html_is_escaped() {
        let (plain, html) = render(
            "# Avviso\n\nPaghi **entro** il 30.\n\n<script>alert(1)</script>\n\n<b>x</b>",
            "Comune di Esempio",
            "Tributi <ufficio>",
        );
        assert!(
            plain.starts_with("# Avviso\n\nPaghi **entro** il 30."),
            "{plain}"
        );
        assert!(
            plain.ends_with("--\nComune di Esempio - Tributi <ufficio>\n"),
            "{plain}"
        );
        assert!(html.contains("<h1>Avviso</h1>"), "{html}");
        assert!(html.contains("<strong>entro</strong>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("Tributi &lt;ufficio&gt;"), "{html}");
    }

    #[test]
    fn replies_map_to_outcomes() {
        assert_eq!(
            classify_reply(451, String::new),
            Outcome::Transient {
                retry_after: None,
                cause: TransientCause::ServerError(451)
            }
        );
        assert!(matches!(
            classify_reply(535, || "bad credentials".into()),
            Outcome::Permanent(r) if r.code == "pec_authentication_failed"
        ));
        assert!(matches!(
            classify_reply(554, || "policy".into()),
            Outcome::Permanent(r) if r.code == "smtp_554"
        ));
    }

    #[test]
    fn a_message_id_domain_is_a_plain_domain() {
        assert!(is_message_id_domain("pec.comune.example.it"));
        for bad in ["", "a b", "x>y", "a@b", &"a".repeat(254)] {
            assert!(!is_message_id_domain(bad), "{bad:?}");
        }
    }
}
