//! `io-server store check`: with the server stopped, reads every record of the sled store
//! (sled verifies each page's checksum), decodes every record of a typed kind, and verifies
//! every message's hash-chained journal, reporting all damage found rather than the first.
//! The server reports damage met while serving as a 500 and through `/readyz`; this command
//! says how far it goes.

use io_core::{MessageId, Store, journal};
use io_store::{DamagedRecord, SledStore};

/// The phase a progress report belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and decoding records: `done` of `total` records.
    Records,
    /// Verifying journals: `done` of `total` messages.
    Journals,
}

/// What the check found.
#[derive(Debug, Clone, Default)]
pub struct StoreCheck {
    /// Records read.
    pub records: u64,
    /// Messages whose journal was verified.
    pub messages: u64,
    /// Records that could not be read or decoded.
    pub damaged: Vec<DamagedRecord>,
    /// Messages whose state cannot be read or whose journal does not verify, with the reason.
    pub broken_messages: Vec<(MessageId, String)>,
}

impl StoreCheck {
    /// Whether nothing is damaged.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty() && self.broken_messages.is_empty()
    }
}

/// Checks `store`, reporting progress as `(phase, done, total)`.
pub async fn check(store: &SledStore, progress: &mut dyn FnMut(Phase, u64, u64)) -> StoreCheck {
    let total = store.record_count();
    let report = store.check(&mut |done| progress(Phase::Records, done, total));
    let mut result = StoreCheck {
        records: report.records,
        damaged: report.damaged,
        ..StoreCheck::default()
    };
    let messages = report.messages.len() as u64;
    for (done, id) in report.messages.iter().enumerate() {
        if let Err(reason) = check_message(store, id).await {
            result.broken_messages.push((*id, reason));
        }
        result.messages += 1;
        if done % 256 == 0 {
            progress(Phase::Journals, done as u64, messages);
        }
    }
    progress(Phase::Journals, messages, messages);
    result
}

/// Reads the message with its state and verifies its journal.
async fn check_message(store: &SledStore, id: &MessageId) -> Result<(), String> {
    store
        .message(id)
        .await
        .map_err(|e| format!("message: {e}"))?;
    let stored = store
        .journal(id)
        .await
        .map_err(|e| format!("journal: {e}"))?;
    journal::verify_stored(&stored.entries, stored.head.as_ref())
        .map(drop)
        .map_err(|e| format!("journal does not verify: {e}"))
}
