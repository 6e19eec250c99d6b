//! **The example's stand-in for an email channel.** It sends no mail: it counts what it would
//! send, per address, and builds the teaser a real notification would carry. The real SMTP
//! channel is a cargo feature of io-channels in a later release; until then this lets the
//! quickstart show the email route of the decision end to end.
//!
//! Like any channel it makes one attempt and reports an [`Outcome`]; the delivery id (stable
//! across retries) is its idempotency key, so an attempt repeated by the engine is counted as a
//! duplicate, not as a second email.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, PoisonError};

use io_core::notification_text::email_teaser;
use io_core::{
    Channel, ChannelKind, DeliveryId, DeliveryJob, DeliveryTarget, EmailAddress, Outcome,
    PermanentReason, Report,
};

/// What the stand-in would have sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailCounts {
    /// Distinct emails (one per delivery id).
    pub sent: u64,
    /// Attempts for a delivery id already counted: a real channel's provider would have
    /// deduplicated them by the idempotency key.
    pub duplicates: u64,
    /// Emails per recipient address.
    pub by_address: BTreeMap<EmailAddress, u64>,
    /// The teaser of the first email, as a real notification would carry it.
    pub sample_teaser: Option<String>,
}

#[derive(Default)]
struct State {
    counts: EmailCounts,
    seen: HashSet<DeliveryId>,
}

/// An email channel that counts instead of sending. See the module documentation.
#[derive(Default)]
pub struct CountingEmailChannel {
    state: Mutex<State>,
}

impl CountingEmailChannel {
    /// A stand-in that has counted nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// What it has counted so far.
    pub fn counts(&self) -> EmailCounts {
        self.lock().counts.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Channel for CountingEmailChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    async fn send(&self, job: DeliveryJob<'_>) -> Report {
        let DeliveryTarget::Email { address } = &job.delivery.target else {
            return Outcome::Permanent(PermanentReason::new(
                "not_an_email_target",
                format!("delivery {} has no email address", job.delivery.id),
            ))
            .into();
        };
        // Built as a real channel would, though nothing is sent: the teaser never carries the
        // content's links, and never the content itself beyond its opening.
        let teaser = email_teaser(&job.message.body.content.markdown);
        let mut state = self.lock();
        if state.seen.insert(job.delivery.id) {
            state.counts.sent += 1;
            *state.counts.by_address.entry(address.clone()).or_default() += 1;
            state.counts.sample_teaser.get_or_insert(teaser);
        } else {
            state.counts.duplicates += 1;
        }
        Outcome::Delivered {
            provider_ref: Some(format!("counted:{}", job.delivery.id)),
        }
        .into()
    }
}
