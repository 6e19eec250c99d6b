//! The Services API's rate limit per institution (io-reference §6): every key of every service
//! of one organization fiscal code draws from one GCRA bucket (governor), sized by the
//! institution's tier. Over it, 429 with `Retry-After`; every answer carries
//! `x-rate-limit-limit` and `x-rate-limit-remaining`.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::config::{RateLimitConfig, Tier};
use crate::problem::Problem;

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// What the limiter decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No limit applies to this institution.
    Unlimited,
    /// Allowed; `remaining` calls are left in the burst.
    Allowed {
        /// The tier's calls per period.
        limit: u32,
        /// Calls left before the bucket is empty.
        remaining: u32,
    },
    /// Refused until `retry_after` has passed.
    Refused {
        /// The tier's calls per period.
        limit: u32,
        /// The earliest the next call can succeed.
        retry_after: Duration,
    },
}

/// The 429 an institution over its limit gets: `Retry-After` in whole seconds, rounded up, and
/// the rate-limit headers (nothing remains; the bucket refills within `Retry-After`).
pub fn refusal(organization: &str, limit: u32, retry_after: Duration) -> Problem {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    Problem::too_many_requests(
        format!(
            "the institution {organization} exceeded its limit of {limit} calls per period; retry after {secs} s"
        ),
        secs,
    )
    .with_header("x-rate-limit-limit", limit.to_string())
    .with_header("x-rate-limit-remaining", "0".into())
    .with_header("x-rate-limit-reset", secs.max(1).to_string())
}

/// One limiter per distinct tier, keyed by organization fiscal code.
pub struct InstitutionLimiter {
    default: Option<(u32, Limiter)>,
    specific: BTreeMap<String, Option<(u32, Limiter)>>,
    clock: DefaultClock,
}

fn limiter(tier: Tier) -> Option<(u32, Limiter)> {
    match tier {
        Tier::Unlimited => None,
        Tier::Limited { calls, per_secs } => {
            let period = Duration::from_secs(per_secs.get()) / calls.get();
            let quota = Quota::with_period(period.max(Duration::from_nanos(1)))?
                .allow_burst(NonZeroU32::from(calls));
            Some((
                calls.get(),
                RateLimiter::dashmap(quota).with_middleware::<StateInformationMiddleware>(),
            ))
        }
    }
}

impl InstitutionLimiter {
    /// Limiters for the configured tiers.
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            default: limiter(config.default),
            specific: config
                .institutions
                .iter()
                .map(|(org, tier)| (org.clone(), limiter(*tier)))
                .collect(),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one call of `organization` and says whether it may go on.
    pub fn check(&self, organization: &str) -> Verdict {
        let entry = match self.specific.get(organization) {
            Some(specific) => specific.as_ref(),
            None => self.default.as_ref(),
        };
        let Some((limit, limiter)) = entry else {
            return Verdict::Unlimited;
        };
        match limiter.check_key(&organization.to_string()) {
            Ok(snapshot) => Verdict::Allowed {
                limit: *limit,
                remaining: snapshot.remaining_burst_capacity(),
            },
            Err(not_until) => Verdict::Refused {
                limit: *limit,
                retry_after: not_until.wait_time_from(self.clock.now()),
            },
        }
    }

    /// Forgets buckets that are full again (call now and then: keys are never evicted).
    pub fn shrink(&self) {
        if let Some((_, limiter)) = &self.default {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU64;

    fn config(calls: u32, per_secs: u64) -> RateLimitConfig {
        RateLimitConfig {
            default: Tier::Limited {
                calls: NonZeroU32::new(calls).unwrap(),
                per_secs: NonZeroU64::new(per_secs).unwrap(),
            },
            institutions: BTreeMap::from([("00000000000".to_string(), Tier::Unlimited)]),
        }
    }

    #[test]
    fn a_burst_of_the_tier_passes_and_the_next_call_waits() {
        // An hour-long period: the bucket cannot refill while the test runs.
        let limiter = InstitutionLimiter::new(&config(3, 3600));
        for remaining in [2, 1, 0] {
            assert_eq!(
                limiter.check("12345678901"),
                Verdict::Allowed {
                    limit: 3,
                    remaining
                }
            );
        }
        match limiter.check("12345678901") {
            Verdict::Refused { limit, retry_after } => {
                assert_eq!(limit, 3);
                assert!(retry_after > Duration::from_secs(1100), "{retry_after:?}");
                assert!(retry_after <= Duration::from_secs(1200), "{retry_after:?}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Another institution has its own bucket; an unlimited one has none.
        assert!(matches!(
            limiter.check("10987654321"),
            Verdict::Allowed { .. }
        ));
        assert_eq!(limiter.check("00000000000"), Verdict::Unlimited);
    }
}
