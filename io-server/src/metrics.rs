//! Prometheus metrics, kept in a small registry of our own (a few counters and histograms need
//! no global recorder, and each server instance, as in tests, has its own). The engine's
//! counters come from its [`Observer`] hook, so they count exactly what was committed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use io_core::{Committed, DeliveryState, JournalEvent, Observer};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0,
    3600.0,
];

/// A cumulative histogram with fixed buckets.
#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Tables {
    rejected: BTreeMap<&'static str, u64>,
    deliveries: BTreeMap<(&'static str, &'static str), u64>,
    retries: BTreeMap<&'static str, u64>,
    outcome_unknown: BTreeMap<&'static str, u64>,
    receipts: BTreeMap<&'static str, u64>,
    requests: BTreeMap<(String, &'static str, u16), Histogram>,
    corrupt: BTreeMap<&'static str, u64>,
    delivered_latency: BTreeMap<&'static str, Histogram>,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    accepted: AtomicU64,
    processed: AtomicU64,
    failed: AtomicU64,
    tables: Mutex<Tables>,
}

impl Metrics {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one HTTP request by route template (never the raw path: no fiscal code in
    /// labels), method (from a closed set, [`crate::app::method_label`]) and status.
    pub fn observe_request(
        &self,
        route: &str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        self.tables()
            .requests
            .entry((route.to_string(), method, status))
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a damaged stored record met by a request, by record kind.
    pub fn corrupt_record(&self, what: &'static str) {
        *self.tables().corrupt.entry(what).or_default() += 1;
    }

    /// The damaged records met since start, by kind (empty when none): `/readyz` reports them.
    pub fn corrupt_records(&self) -> Vec<(&'static str, u64)> {
        self.tables()
            .corrupt
            .iter()
            .map(|(what, n)| (*what, *n))
            .collect()
    }

    /// The Prometheus text exposition, with the backlog gauge read by the caller.
    pub fn render(&self, backlog: u64) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        for (name, help, value) in [
            (
                "io_messages_accepted_total",
                "Messages durably accepted.",
                &self.accepted,
            ),
            (
                "io_messages_processed_total",
                "Messages that reached the inbox.",
                &self.processed,
            ),
            (
                "io_messages_failed_total",
                "Messages failed before processing.",
                &self.failed,
            ),
        ] {
            counter(&mut out, name, help);
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let tables = self.tables();
        counter(
            &mut out,
            "io_messages_rejected_total",
            "Messages rejected, by reason.",
        );
        for (reason, n) in &tables.rejected {
            let _ = writeln!(out, "io_messages_rejected_total{{reason=\"{reason}\"}} {n}");
        }
        counter(
            &mut out,
            "io_deliveries_total",
            "Delivery outcomes by channel and resulting state (SENT, FAILED, EXPIRED).",
        );
        for ((channel, state), n) in &tables.deliveries {
            let _ = writeln!(
                out,
                "io_deliveries_total{{channel=\"{channel}\",state=\"{state}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "io_delivery_retries_total",
            "Attempts that scheduled a retry.",
        );
        for (channel, n) in &tables.retries {
            let _ = writeln!(
                out,
                "io_delivery_retries_total{{channel=\"{channel}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "io_delivery_outcome_unknown_total",
            "Attempts whose outcome was lost (the process stopped while the provider was called), by channel: the provider may have been contacted.",
        );
        for (channel, n) in &tables.outcome_unknown {
            let _ = writeln!(
                out,
                "io_delivery_outcome_unknown_total{{channel=\"{channel}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "io_pec_receipts_total",
            "PEC receipts recorded as evidence, by kind (accettazione, avvenuta-consegna, ...).",
        );
        for (kind, n) in &tables.receipts {
            let _ = writeln!(out, "io_pec_receipts_total{{kind=\"{kind}\"}} {n}");
        }
        counter(
            &mut out,
            "io_store_corrupt_records_total",
            "Requests that met a damaged stored record, by record kind (run io-server store check).",
        );
        for (what, n) in &tables.corrupt {
            let _ = writeln!(
                out,
                "io_store_corrupt_records_total{{record=\"{what}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP io_backlog_tasks Queued engine tasks.\n# TYPE io_backlog_tasks gauge\nio_backlog_tasks {backlog}"
        );
        let _ = writeln!(
            out,
            "# HELP io_http_request_duration_seconds HTTP requests by route, method and status.\n# TYPE io_http_request_duration_seconds histogram"
        );
        for ((route, method, status), histogram) in &tables.requests {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
            histogram.render(&mut out, "io_http_request_duration_seconds", &labels);
        }
        let _ = writeln!(
            out,
            "# HELP io_accept_to_sent_seconds From accept to SENT, by channel.\n# TYPE io_accept_to_sent_seconds histogram"
        );
        for (channel, histogram) in &tables.delivered_latency {
            let labels = format!("channel=\"{channel}\"");
            histogram.render(&mut out, "io_accept_to_sent_seconds", &labels);
        }
        out
    }
}

impl Observer for Metrics {
    fn committed(&self, change: Committed<'_>) {
        match change.event {
            JournalEvent::Accepted { .. } => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
            }
            JournalEvent::Processed { .. } => {
                self.processed.fetch_add(1, Ordering::Relaxed);
            }
            JournalEvent::Failed { .. } => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
            JournalEvent::Rejected { reason } => {
                *self.tables().rejected.entry(reason.as_str()).or_default() += 1;
            }
            JournalEvent::OutcomeUnknown { channel, .. } => {
                *self
                    .tables()
                    .outcome_unknown
                    .entry(channel.as_str())
                    .or_default() += 1;
            }
            JournalEvent::Expired { channel } => {
                *self
                    .tables()
                    .deliveries
                    .entry((channel.as_str(), "EXPIRED"))
                    .or_default() += 1;
            }
            JournalEvent::ReceiptRecorded {
                channel,
                receipt,
                state,
                ..
            } => {
                let mut tables = self.tables();
                *tables.receipts.entry(receipt.as_str()).or_default() += 1;
                if state.is_final() {
                    *tables
                        .deliveries
                        .entry((channel.as_str(), state.as_str()))
                        .or_default() += 1;
                }
            }
            JournalEvent::ReceiptOverdue { channel, state, .. } => {
                if state.is_final() {
                    *self
                        .tables()
                        .deliveries
                        .entry((channel.as_str(), state.as_str()))
                        .or_default() += 1;
                }
            }
            JournalEvent::Attempted { channel, state, .. } => {
                let mut tables = self.tables();
                match state {
                    DeliveryState::Retrying => {
                        *tables.retries.entry(channel.as_str()).or_default() += 1;
                    }
                    DeliveryState::Pending => {}
                    final_state => {
                        *tables
                            .deliveries
                            .entry((channel.as_str(), final_state.as_str()))
                            .or_default() += 1;
                    }
                }
                if matches!(state, DeliveryState::Sent) {
                    let accepted_ms = change.message.millis() as i64;
                    let seconds = (change.at.as_millis() - accepted_ms).max(0) as f64 / 1000.0;
                    tables
                        .delivered_latency
                        .entry(channel.as_str())
                        .or_default()
                        .observe(seconds);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use io_core::{ChannelKind, MessageId, ServiceId, Timestamp};

    #[test]
    fn lost_outcomes_are_counted_by_channel() {
        let metrics = Metrics::default();
        let service = ServiceId::parse("svc").unwrap();
        let message: MessageId = "01J0000000000000000000000A".parse().unwrap();
        for channel in [ChannelKind::Email, ChannelKind::Email, ChannelKind::Push] {
            metrics.committed(Committed {
                message,
                service_id: &service,
                at: Timestamp::from_millis(0),
                event: &JournalEvent::OutcomeUnknown {
                    channel,
                    attempt: 1,
                },
            });
        }
        let text = metrics.render(0);
        assert!(text.contains("# TYPE io_delivery_outcome_unknown_total counter"));
        assert!(text.contains("io_delivery_outcome_unknown_total{channel=\"email\"} 2"));
        assert!(text.contains("io_delivery_outcome_unknown_total{channel=\"push\"} 1"));
    }
}
