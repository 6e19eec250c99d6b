//! Sender callbacks: a service that registered a [`CallbackTarget`] receives a signed POST for
//! every state change of its messages, in order. The journal is the source: event `n` of a
//! message is its journal entry `n`, sent once entries `0..n` were acknowledged.
//!
//! Callbacks are engine work like deliveries: one *callback* task per message with an open
//! outbox, claimed with a lease, posted through a [`CallbackSender`], retried with the engine's
//! backoff on the engine's clock. The outbox is opened in the same atomic write as the accept,
//! and every write that appends to a message's journal makes a waiting outbox due, so no event
//! is lost at any instant. A crash between the receiver's 2xx and the cursor's commit repeats
//! that event with the same [`CallbackEvent::id`], which receivers use to drop it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    DeliveryState, JournalEntry, JournalEvent, MessageId, Outcome, RetryPolicy, ServiceId,
    Timestamp,
};

/// Where a service's callbacks go, and the key they are signed with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackTarget {
    /// The receiver's URL (https in production; checked by the sender's SSRF guard).
    pub url: String,
    /// The HMAC key, hex: shown to the service once, when generated.
    pub secret: String,
}

/// Debug hides the secret, and the URL's credentials, query and fragment (where receivers
/// often put a token of their own).
impl fmt::Debug for CallbackTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackTarget")
            .field("url", &self.url_for_logs())
            .finish_non_exhaustive()
    }
}

impl CallbackTarget {
    /// The URL as logs may show it: no userinfo, no query, no fragment (`?…` marks a cut).
    pub fn url_for_logs(&self) -> String {
        let (base, cut) = match self.url.find(['?', '#']) {
            Some(at) => (&self.url[..at], true),
            None => (self.url.as_str(), false),
        };
        let base = match base.split_once("://") {
            Some((scheme, rest)) => {
                let authority_end = rest.find('/').unwrap_or(rest.len());
                let (authority, path) = rest.split_at(authority_end);
                let host = authority
                    .rsplit_once('@')
                    .map_or(authority, |(_, host)| host);
                format!("{scheme}://{host}{path}")
            }
            None => base.to_owned(),
        };
        if cut { format!("{base}?…") } else { base }
    }
}

/// Where a message's outbox stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackCursor {
    /// Journal entries the receiver acknowledged (or that were abandoned): the next event to
    /// send is entry `acknowledged`.
    pub acknowledged: u64,
    /// Failed attempts at that entry.
    pub attempts: u32,
}

/// How callbacks are retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackPolicy {
    /// The backoff between attempts at one event (full jitter, `Retry-After` honoured).
    pub retry: RetryPolicy,
    /// Attempts at one event before it is abandoned (logged) and the next one follows.
    pub max_attempts: u32,
}

impl Default for CallbackPolicy {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            max_attempts: 12,
        }
    }
}

/// One event as the receiver gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackEvent {
    /// `<message id>-<journal seq>`: stable across retries and crashes, for deduplication.
    pub id: String,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl CallbackEvent {
    /// The event of journal entry `entry` of `message`, sent by `service`.
    pub fn of(message: MessageId, service: &ServiceId, entry: &JournalEntry) -> Self {
        let id = format!("{message}-{}", entry.seq);
        let body = serde_json::json!({
            "id": id,
            "type": event_type(&entry.event),
            "message_id": message.to_string(),
            "service_id": service.as_str(),
            "sequence": entry.seq,
            "at": entry.at.to_rfc3339(),
            "event": entry.event,
            "journal_hash": entry.hash,
        });
        Self {
            id,
            // A `Value` of strings and numbers always serializes.
            body: serde_json::to_vec(&body).unwrap_or_default(),
        }
    }
}

/// The event's `type`: `message.accepted`, `delivery.sent`, …
pub fn event_type(event: &JournalEvent) -> String {
    match event {
        JournalEvent::Accepted { .. } => "message.accepted".to_owned(),
        JournalEvent::Processed { .. } => "message.processed".to_owned(),
        JournalEvent::Rejected { .. } => "message.rejected".to_owned(),
        JournalEvent::Failed { .. } => "message.failed".to_owned(),
        JournalEvent::Attempted { state, .. } => format!("delivery.{}", state_name(state)),
        JournalEvent::OutcomeUnknown { .. } => "delivery.outcome_unknown".to_owned(),
        JournalEvent::Expired { .. } => "delivery.expired".to_owned(),
        JournalEvent::ReceiptRecorded { receipt, .. } => format!("delivery.receipt.{receipt}"),
        JournalEvent::ReceiptOverdue { .. } => "delivery.receipt_overdue".to_owned(),
    }
}

fn state_name(state: &DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Retrying => "retrying",
        DeliveryState::Submitted { .. } => "submitted",
        DeliveryState::Sent => "sent",
        DeliveryState::Expired => "expired",
        DeliveryState::Failed { .. } => "failed",
    }
}

/// Posts callback events: the webhook client of io-channels in a deployment, a recorder in
/// tests. Like a channel, it classifies the receiver's answer and never retries or sleeps.
#[async_trait::async_trait]
pub trait CallbackSender: Send + Sync {
    /// One attempt at `event` toward `target`, signed with the engine's `now`.
    async fn post(&self, target: &CallbackTarget, event: &CallbackEvent, now: Timestamp)
    -> Outcome;
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn logs_never_show_a_callback_urls_credentials_or_query() {
        let target = |url: &str| CallbackTarget {
            url: url.into(),
            secret: "k".into(),
        };
        let shown = target("https://u:p@hooks.example.it/io/cb?token=s3cret#f").url_for_logs();
        assert_eq!(shown, "https://hooks.example.it/io/cb?…");
        let debug = format!("{:?}", target("https://hooks.example.it/cb?token=s3cret"));
        assert!(
            !debug.contains("s3cret") && !debug.contains("\"k\""),
            "{debug}"
        );
        assert_eq!(
            target("https://hooks.example.it/cb").url_for_logs(),
            "https://hooks.example.it/cb"
        );
    }
}
