//! Where the engine reads the time. Tests swap in a clock driven by tokio's paused time, so
//! retries, leases and expiry are tested without sleeping.

use std::time::SystemTime;

use crate::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock: what a deployment uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_millis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that follows tokio's timer: under `#[tokio::test(start_paused = true)]` it moves only
/// when the test advances time (or the runtime auto-advances to the next timer), so a test of a
/// seven-day time-to-live runs in milliseconds and sees exactly the instants the engine sees.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start_instant: tokio::time::Instant,
    start: Timestamp,
}

impl TokioClock {
    /// A clock reading `start` now and moving with tokio's time from here on.
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            start_instant: tokio::time::Instant::now(),
            start,
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.start.plus(self.start_instant.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_moves_with_paused_time() {
        let clock = TokioClock::starting_at(Timestamp::from_millis(1_000));
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), Timestamp::from_millis(1_000 + 3_600_000));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp::from_millis(1_577_836_800_000));
    }
}
