//! A provider account's send rate (an SMTP relay's messages per second, an APNs team's or an FCM
//! project's quota), enforced before the request leaves so that io stays under the quota
//! instead of learning about it from 429s. A send waits for its turn when the wait is short;
//! a longer wait comes back as `RateLimited` so the engine reschedules the delivery instead of
//! holding a worker. Driven by tokio's clock, so paused-time tests see it too.

use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use io_core::RateLimit;
use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// A provider account's limit, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderLimit {
    /// Sends allowed per period (also the burst).
    pub rate: RateLimit,
    /// The longest a send waits in line for its turn; a longer wait is reported as
    /// `RateLimited` with that wait as `retry_after`.
    #[serde(default = "default_max_wait")]
    pub max_wait: Duration,
}

fn default_max_wait() -> Duration {
    Duration::from_secs(2)
}

#[derive(Clone)]
struct TokioTime {
    start: tokio::time::Instant,
}

impl Clock for TokioTime {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        Nanos::from(self.start.elapsed())
    }
}

/// The limiter of one provider account.
pub(crate) struct ProviderLimiter {
    limiter: RateLimiter<NotKeyed, InMemoryState, TokioTime, NoOpMiddleware<Nanos>>,
    clock: TokioTime,
    max_wait: Duration,
}

impl ProviderLimiter {
    /// A limiter for `limit`; `setting` names it in errors.
    pub(crate) fn new(limit: ProviderLimit, setting: &'static str) -> Result<Self, ConfigError> {
        let interval = limit
            .rate
            .per
            .checked_div(limit.rate.count.get())
            .filter(|i| !i.is_zero())
            .ok_or_else(|| ConfigError::invalid(setting, "the period must be positive"))?;
        let quota = Quota::with_period(interval)
            .ok_or_else(|| ConfigError::invalid(setting, "the period must be positive"))?
            .allow_burst(limit.rate.count);
        let clock = TokioTime {
            start: tokio::time::Instant::now(),
        };
        Ok(Self {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            max_wait: limit.max_wait,
        })
    }

    /// Waits for a send slot; `Err(wait)` when the wait would exceed `max_wait`.
    pub(crate) async fn acquire(&self) -> Result<(), Duration> {
        loop {
            match self.limiter.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait: Duration = not_until
                        .earliest_possible()
                        .duration_since(self.clock.now())
                        .into();
                    if wait > self.max_wait {
                        return Err(wait);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Acquires from an optional limiter (no limit configured: always free).
pub(crate) async fn acquire(limiter: Option<&ProviderLimiter>) -> Result<(), Duration> {
    match limiter {
        Some(limiter) => limiter.acquire().await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn limit(count: u32, per: Duration, max_wait: Duration) -> ProviderLimit {
        ProviderLimit {
            rate: RateLimit {
                count: NonZeroU32::new(count).unwrap(),
                per,
            },
            max_wait,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sends_are_spaced_and_a_long_wait_is_handed_back() {
        let limiter = ProviderLimiter::new(
            limit(2, Duration::from_secs(1), Duration::from_millis(600)),
            "limit",
        )
        .unwrap();
        let start = tokio::time::Instant::now();
        limiter.acquire().await.unwrap();
        limiter.acquire().await.unwrap(); // the burst of 2
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire().await.unwrap(); // waits one interval (500 ms ≤ 600 ms)
        assert_eq!(start.elapsed(), Duration::from_millis(500));

        let slow = ProviderLimiter::new(
            limit(1, Duration::from_secs(10), Duration::from_secs(1)),
            "limit",
        )
        .unwrap();
        slow.acquire().await.unwrap();
        let wait = slow.acquire().await.unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
    }

    #[test]
    fn a_zero_period_is_refused() {
        let error = ProviderLimiter::new(limit(5, Duration::ZERO, Duration::ZERO), "smtp.limit")
            .err()
            .unwrap();
        assert!(error.to_string().starts_with("smtp.limit"));
    }
}
