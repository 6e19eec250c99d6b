//! The retry schedule: exponential backoff with full jitter, capped, never sooner than the
//! provider asked. A pure function; the engine persists its result as `next_attempt_at`, so the
//! schedule survives a crash (an in-memory retry loop would not).

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// The ceiling of the first retry's delay.
    pub base: Duration,
    /// No delay exceeds this (except a longer `Retry-After` from the provider).
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// 1 s doubling up to 15 min: about 12 attempts in the first hour.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(15 * 60),
        }
    }
}

impl RetryPolicy {
    /// The delay before the attempt that follows failed attempt number `attempt` (1-based):
    /// uniform in `[0, min(cap, base·2^(attempt-1))]` ("full jitter", which spreads a crowd of
    /// failed deliveries instead of retrying them in lockstep), then raised to `retry_after`
    /// when the provider gave one.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        let ceiling = self.ceiling(attempt);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let jittered = Duration::from_millis(rng.random_range(0..=ceiling_ms));
        match retry_after {
            Some(asked) => jittered.max(asked),
            None => jittered,
        }
    }

    /// `min(cap, base·2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(32);
        self.base
            .checked_mul(1u32 << exponent.min(31))
            .map_or(self.cap, |d| d.min(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ceiling_doubles_then_caps() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        let ceilings: Vec<u64> = (1..=8).map(|a| policy.ceiling(a).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_the_ceiling_and_spreads() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..1000).map(|_| policy.delay(5, None, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(16)));
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 500, "full jitter spreads delays");
    }

    #[test]
    fn retry_after_is_a_lower_bound_even_past_the_cap() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
        };
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let asked = Duration::from_secs(120);
            assert_eq!(policy.delay(1, Some(asked), &mut rng), asked);
        }
    }
}
