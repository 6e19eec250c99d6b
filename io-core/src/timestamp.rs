//! Points in time as milliseconds since the Unix epoch: cheap to compare, to store as big-endian
//! keys and to hash into the journal; RFC 3339 only at the edges.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant with millisecond precision. Serialized as an integer so stored records and
/// journal hashes do not depend on a textual date format.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

/// A date-time that is not RFC 3339 or lies outside the supported range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an RFC 3339 date-time (e.g. 2026-01-31T23:59:59Z)")]
pub struct TimestampError {
    /// The rejected text, cut to 64 characters.
    pub value: String,
}

impl Timestamp {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant moved `duration` later, saturating instead of overflowing.
    pub fn plus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// This instant moved `duration` earlier, saturating instead of overflowing.
    pub fn minus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(millis))
    }

    /// How long after `earlier` this instant is; zero when it is not later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// Parses an RFC 3339 date-time with any offset (IO's `due_date`, `created_at`).
    pub fn parse_rfc3339(raw: &str) -> Result<Self, TimestampError> {
        let error = || TimestampError {
            value: raw.chars().take(64).collect(),
        };
        let parsed = OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| error())?;
        let millis = parsed.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis).map(Self).map_err(|_| error())
    }

    /// RFC 3339 in UTC with milliseconds, the form IO's APIs return.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(at) => {
                let (y, mo, d) = (at.year(), u8::from(at.month()), at.day());
                let (h, mi, s, ms) = (at.hour(), at.minute(), at.second(), at.millisecond());
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
            }
            Err(_) => format!("@{}ms", self.0),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_in_utc() {
        let at = Timestamp::parse_rfc3339("2026-03-01T10:15:30.250+01:00").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-03-01T09:15:30.250Z");
        assert_eq!(Timestamp::parse_rfc3339(&at.to_rfc3339()).unwrap(), at);
    }

    #[test]
    fn malformed_dates_are_rejected() {
        for raw in ["", "2026-13-01T00:00:00Z", "yesterday", "2026-01-01"] {
            assert!(Timestamp::parse_rfc3339(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn arithmetic_saturates() {
        let late = Timestamp::from_millis(i64::MAX - 1);
        assert_eq!(
            late.plus(Duration::from_secs(10)),
            Timestamp::from_millis(i64::MAX)
        );
        assert_eq!(Timestamp::EPOCH.since(late), Duration::ZERO);
    }
}
