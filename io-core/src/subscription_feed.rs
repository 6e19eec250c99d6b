//! The subscriptions feed (io-reference §6): per day, the citizens (by hash) who became
//! reachable or unreachable for a service — through their profile (every service) or through
//! a per-service preference. Events are written in the same atomic write as the change that
//! causes them, so the feed never misses one.

use serde::{Deserialize, Serialize};

use crate::{FiscalCodeHash, ServiceId, Timestamp};

/// Whether the citizen can now be written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subscription {
    /// The citizen can now be written to.
    Subscribed,
    /// The citizen can no longer be written to.
    Unsubscribed,
}

/// Which services an event concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedScope {
    /// Every service (a profile created, its inbox switched, or the citizen erased).
    AllServices,
    /// One service (a preference changed).
    Service(ServiceId),
}

/// One change of the feed. On a given day the last change for a (scope, citizen) wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEvent {
    /// When it happened (its UTC day places it in the feed).
    pub at: Timestamp,
    /// Which services it concerns.
    pub scope: FeedScope,
    /// The citizen, by hash.
    pub citizen: FiscalCodeHash,
    /// What changed.
    pub change: Subscription,
}

/// A service's feed for one day: the citizens who became reachable and unreachable. A
/// service-level event overrides a profile-level one of the same day for the same citizen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayFeed {
    /// Hashes of citizens subscribed that day.
    pub subscribed: Vec<FiscalCodeHash>,
    /// Hashes of citizens unsubscribed that day.
    pub unsubscribed: Vec<FiscalCodeHash>,
}

/// `YYYY-MM-DD` of an instant, in UTC: the feed's day.
pub fn utc_day(at: Timestamp) -> String {
    at.to_rfc3339()[..10].to_string()
}

/// A UTC day of the feed, as days since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedDay(i64);

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

impl FeedDay {
    /// The day `at` falls on (UTC).
    pub fn of(at: Timestamp) -> Self {
        Self(at.as_millis().div_euclid(DAY_MS))
    }

    /// A `YYYY-MM-DD` date; `None` when it is not one.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() != 10 {
            return None;
        }
        let midnight = Timestamp::parse_rfc3339(&format!("{raw}T00:00:00Z")).ok()?;
        Some(Self::of(midnight))
    }

    /// Days since the epoch (for store keys: sort like the days).
    pub fn days_since_epoch(self) -> i64 {
        self.0
    }

    /// The inverse of [`FeedDay::days_since_epoch`].
    pub fn from_days_since_epoch(days: i64) -> Self {
        Self(days)
    }
}

impl std::fmt::Display for FeedDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&utc_day(Timestamp::from_millis(
            self.0.saturating_mul(DAY_MS),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_days_parse_print_and_contain_their_instants() {
        let day = FeedDay::parse("2026-12-01").unwrap();
        assert_eq!(day.to_string(), "2026-12-01");
        let noon = Timestamp::parse_rfc3339("2026-12-01T12:00:00Z").unwrap();
        let last = Timestamp::parse_rfc3339("2026-12-01T23:59:59.999Z").unwrap();
        assert_eq!(FeedDay::of(noon), day);
        assert_eq!(FeedDay::of(last), day);
        assert!(FeedDay::of(last.plus(std::time::Duration::from_millis(1))) > day);
        assert_eq!(
            FeedDay::of(Timestamp::from_millis(-1)).to_string(),
            "1969-12-31"
        );
        for bad in [
            "2026-13-01",
            "2026-12-1",
            "yesterday",
            "2026-12-01T00:00:00Z",
        ] {
            assert_eq!(FeedDay::parse(bad), None, "{bad}");
        }
    }
}
