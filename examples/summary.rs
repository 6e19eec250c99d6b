//! What became of a load: every message's status and every delivery's state, tallied per
//! citizen category, the email stand-in's counts, and the evidence journal of a sample of
//! messages verified with [`Engine::verify_journal`] and checked against the stored state.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use io_core::{
    ChannelKind, Delivery, DeliveryState, EmailAddress, Engine, FailureReason, JournalEntry,
    JournalEvent, MessageStatus, Store, StoreError,
};

use crate::demo::OWNER_EMAIL;
use crate::{Category, EmailCounts, Sent};

/// The messages and deliveries of one category of citizen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages submitted.
    pub messages: usize,
    /// Messages per status label ([`status_label`]).
    pub statuses: BTreeMap<String, usize>,
    /// Deliveries per channel and state label ([`state_label`]).
    pub deliveries: BTreeMap<(ChannelKind, String), usize>,
}

/// The outcome of a load.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Messages submitted.
    pub messages: usize,
    /// Per citizen category.
    pub by_category: BTreeMap<Category, Tally>,
    /// What the email stand-in would have sent.
    pub email: EmailCounts,
    /// Journals verified.
    pub journals_checked: usize,
    /// Journals that failed verification or disagree with the stored state, with the reason.
    pub journal_failures: Vec<String>,
}

/// IO's name of a message status, with the rejection reason: `REJECTED SERVICE_NOT_ALLOWED`.
pub fn status_label(status: &MessageStatus) -> String {
    match status {
        MessageStatus::Rejected(reason) => format!("REJECTED {}", reason.as_str()),
        other => other.as_str().to_owned(),
    }
}

/// IO's name of a delivery state, with the failure reason: `FAILED invalid_recipient`.
pub fn state_label(state: &DeliveryState) -> String {
    match state {
        DeliveryState::Failed {
            reason: FailureReason::InvalidRecipient,
        } => "FAILED invalid_recipient".to_owned(),
        DeliveryState::Failed {
            reason: FailureReason::Permanent { reason },
        } => format!("FAILED {}", reason.code),
        other => other.as_str().to_owned(),
    }
}

impl Summary {
    /// Reads the status and deliveries of every message in `sent`, and verifies the journals of
    /// about `sample` of them (always including each category's first message).
    pub async fn collect<S: Store>(
        engine: &Engine<S>,
        sent: &[Sent],
        email: EmailCounts,
        sample: usize,
    ) -> Result<Self, StoreError> {
        let store = engine.store();
        let step = sent.len().div_ceil(sample.max(1)).max(1);
        let mut first_of_category = BTreeSet::new();
        let mut summary = Summary {
            messages: sent.len(),
            email,
            ..Summary::default()
        };
        for (index, message) in sent.iter().enumerate() {
            let Some(stored) = store.message(&message.id).await? else {
                summary
                    .journal_failures
                    .push(format!("message {} is missing from the store", message.id));
                continue;
            };
            let deliveries = store.deliveries(&message.id).await?;
            let tally = summary.by_category.entry(message.category).or_default();
            tally.messages += 1;
            *tally
                .statuses
                .entry(status_label(&stored.status))
                .or_default() += 1;
            for delivery in &deliveries {
                let key = (delivery.channel(), state_label(&delivery.state));
                *tally.deliveries.entry(key).or_default() += 1;
            }
            if first_of_category.insert(message.category) || index % step == 0 {
                summary.journals_checked += 1;
                let checked = match engine.verify_journal(&message.id).await {
                    Ok(entries) => agrees(&entries, &stored.status, &deliveries),
                    Err(error) => Err(error.to_string()),
                };
                if let Err(reason) = checked {
                    summary
                        .journal_failures
                        .push(format!("journal of {}: {reason}", message.id));
                }
            }
        }
        Ok(summary)
    }

    /// Messages per status label, over all categories.
    pub fn statuses(&self) -> BTreeMap<String, usize> {
        let mut totals = BTreeMap::new();
        for tally in self.by_category.values() {
            for (label, count) in &tally.statuses {
                *totals.entry(label.clone()).or_default() += count;
            }
        }
        totals
    }

    /// Deliveries per channel and state label, over all categories.
    pub fn deliveries(&self) -> BTreeMap<(ChannelKind, String), usize> {
        let mut totals = BTreeMap::new();
        for tally in self.by_category.values() {
            for (key, count) in &tally.deliveries {
                *totals.entry(key.clone()).or_default() += count;
            }
        }
        totals
    }

    /// Everything that should not happen in the quickstart: a message still ACCEPTED after the
    /// engine went idle, a delivery not final (the inbox and the stand-in never fail), a journal
    /// that does not verify or disagrees with the state, an email counted twice.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let accepted = self.statuses().get("ACCEPTED").copied().unwrap_or(0);
        if accepted > 0 {
            problems.push(format!("{accepted} messages are still ACCEPTED"));
        }
        let open: usize = self
            .deliveries()
            .iter()
            .filter(|((_, state), _)| state == "PENDING" || state == "THROTTLED")
            .map(|(_, count)| count)
            .sum();
        if open > 0 {
            problems.push(format!("{open} deliveries are not final"));
        }
        if self.email.duplicates > 0 {
            problems.push(format!(
                "{} email attempts repeated an already counted delivery",
                self.email.duplicates
            ));
        }
        problems.extend(self.journal_failures.iter().cloned());
        problems
    }
}

/// Whether a verified journal tells the same story as the stored state: it starts with the
/// acceptance, records the decision the status shows, and ends each delivery in its state.
fn agrees(
    entries: &[JournalEntry],
    status: &MessageStatus,
    deliveries: &[Delivery],
) -> Result<(), String> {
    if !matches!(
        entries.first().map(|e| &e.event),
        Some(JournalEvent::Accepted { .. })
    ) {
        return Err("does not start with the acceptance".to_owned());
    }
    let decided = entries.iter().find_map(|e| match &e.event {
        JournalEvent::Processed { channels } => Some((MessageStatus::Processed, channels.clone())),
        JournalEvent::Rejected { reason } => Some((MessageStatus::Rejected(*reason), Vec::new())),
        JournalEvent::Failed { .. } => Some((MessageStatus::Failed, Vec::new())),
        _ => None,
    });
    let Some((journal_status, channels)) = decided else {
        return Err(format!(
            "records no decision, status is {}",
            status_label(status)
        ));
    };
    if journal_status != *status {
        return Err(format!(
            "records {}, status is {}",
            status_label(&journal_status),
            status_label(status)
        ));
    }
    let stored: Vec<ChannelKind> = deliveries.iter().map(Delivery::channel).collect();
    if channels != stored {
        return Err(format!("records channels {channels:?}, stored {stored:?}"));
    }
    for delivery in deliveries {
        let last = entries.iter().rev().find_map(|e| match &e.event {
            JournalEvent::Attempted { channel, state, .. } if *channel == delivery.channel() => {
                Some(state.clone())
            }
            JournalEvent::Expired { channel } if *channel == delivery.channel() => {
                Some(DeliveryState::Expired)
            }
            _ => None,
        });
        let journal_state = last.unwrap_or(DeliveryState::Pending);
        if journal_state != delivery.state {
            return Err(format!(
                "{} ends {}, stored {}",
                delivery.channel(),
                state_label(&journal_state),
                state_label(&delivery.state)
            ));
        }
    }
    Ok(())
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "messages by status")?;
        for (label, count) in self.statuses() {
            writeln!(f, "  {label:<32} {count:>8}")?;
        }
        writeln!(f, "deliveries by channel and state")?;
        for ((channel, state), count) in self.deliveries() {
            writeln!(f, "  {:<32} {count:>8}", format!("{channel:<6} {state}"))?;
        }
        writeln!(f, "per citizen")?;
        for (category, tally) in &self.by_category {
            let statuses = join(tally.statuses.iter().map(|(l, c)| format!("{l} {c}")));
            let deliveries = join(
                tally
                    .deliveries
                    .iter()
                    .map(|((ch, st), c)| format!("{ch} {st} {c}")),
            );
            let deliveries = if deliveries.is_empty() {
                "no deliveries".to_owned()
            } else {
                deliveries
            };
            writeln!(
                f,
                "  {:<30} {:>6} msgs  {statuses}; {deliveries}",
                category.name(),
                tally.messages
            )?;
        }
        let to_owner = EmailAddress::parse(OWNER_EMAIL)
            .ok()
            .and_then(|owner| self.email.by_address.get(&owner).copied())
            .unwrap_or(0);
        writeln!(
            f,
            "email stand-in: {} emails would be sent ({to_owner} of them to the service owner), \
             {} repeated attempts",
            self.email.sent, self.email.duplicates
        )?;
        if let Some(teaser) = &self.email.sample_teaser {
            // The teaser has a zero-width space after every dot; shown without them here.
            writeln!(
                f,
                "  teaser of the first: \"{}\"",
                teaser.replace('\u{200B}', "")
            )?;
        }
        write!(
            f,
            "journals: {} verified and checked against the stored state, {} failed",
            self.journals_checked,
            self.journal_failures.len()
        )
    }
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(", ")
}
