//! GDPR requests (io-reference §7): a citizen asks for a copy of their data (DOWNLOAD) or for
//! its erasure (DELETE). One request per citizen and choice: PENDING when asked, WIP while
//! carried out, then CLOSED (or FAILED; ABORTED when the citizen withdrew a DELETE in time).
//! The store keeps open requests ordered by due time, so the worker reads only what is due.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// What the citizen asks for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Choice {
    /// A copy of every piece of data about the citizen.
    Download,
    /// The erasure of every piece of data about the citizen.
    Delete,
}

impl Choice {
    /// Both choices.
    pub const ALL: [Choice; 2] = [Self::Download, Self::Delete];

    /// IO's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Download => "DOWNLOAD",
            Self::Delete => "DELETE",
        }
    }

    /// The choice named `raw` (IO's names, upper case).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

/// Where a request stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestStatus {
    /// Asked, not yet carried out (a DELETE can still be aborted).
    Pending,
    /// Being carried out.
    Wip,
    /// Carried out.
    Closed,
    /// Could not be carried out; the citizen may ask again.
    Failed,
    /// Withdrawn by the citizen before it was carried out.
    Aborted,
}

impl RequestStatus {
    /// IO's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Wip => "WIP",
            Self::Closed => "CLOSED",
            Self::Failed => "FAILED",
            Self::Aborted => "ABORTED",
        }
    }
}

/// A GDPR request, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRequest {
    /// What was asked.
    pub choice: Choice,
    /// Where it stands.
    pub status: RequestStatus,
    /// When it was asked.
    pub created_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
    /// From when it may be carried out: at once for a DOWNLOAD, after the grace period in
    /// force when it was asked for a DELETE.
    pub due_at: Timestamp,
}

impl DataRequest {
    /// A PENDING request of `choice` asked at `now`; a DELETE waits `grace`.
    pub fn asked(choice: Choice, now: Timestamp, grace: Duration) -> Self {
        Self {
            choice,
            status: RequestStatus::Pending,
            created_at: now,
            updated_at: now,
            due_at: match choice {
                Choice::Download => now,
                Choice::Delete => now.plus(grace),
            },
        }
    }

    /// Not finished: another request of the same choice is refused meanwhile, and the store
    /// lists it among the due requests from `due_at` on.
    pub fn is_open(&self) -> bool {
        matches!(self.status, RequestStatus::Pending | RequestStatus::Wip)
    }

    /// The same request with `status` from `now` on.
    pub fn moved_to(self, status: RequestStatus, now: Timestamp) -> Self {
        Self {
            status,
            updated_at: now,
            ..self
        }
    }
}
