//! Telling the outside world what the engine committed: the server counts metrics from it, and
//! sender callbacks are built on it. Called after the write is durable, in commit order per
//! message; it must be quick (count, or hand over to a queue) because it runs on the engine's
//! path.

use crate::{JournalEvent, MessageId, ServiceId, Timestamp};

/// One committed state change: exactly the journal event that was written.
#[derive(Debug, Clone, Copy)]
pub struct Committed<'a> {
    /// The message.
    pub message: MessageId,
    /// Its sender.
    pub service_id: &'a ServiceId,
    /// When the engine recorded it.
    pub at: Timestamp,
    /// What happened.
    pub event: &'a JournalEvent,
}

/// Receives every committed state change.
pub trait Observer: Send + Sync + 'static {
    /// Called once per committed journal event.
    fn committed(&self, change: Committed<'_>);
}
