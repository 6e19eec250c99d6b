//! Rate limits on deliveries, keyed per service, per channel and per citizen, on `governor`'s
//! GCRA limiters driven by the engine's [`Clock`] (so tests with paused time see them too).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::{ChannelKind, Clock, FiscalCode, FiscalCodeHash, ServiceId};

/// A sustained rate of `count` per `per` (one event every `per / count`), allowing bursts of
/// up to `count` events (GCRA): over long windows the rate converges to `count / per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Events allowed per period (and the burst size).
    pub count: NonZeroU32,
    /// The period.
    pub per: Duration,
}

impl RateLimit {
    fn quota(self) -> Option<Quota> {
        let interval = self.per.checked_div(self.count.get())?;
        Some(Quota::with_period(interval)?.allow_burst(self.count))
    }
}

/// Which deliveries are limited, and how fast.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    /// Deliveries per sending service (all channels).
    pub per_service: Option<RateLimit>,
    /// Deliveries per channel (all services): a provider account's quota.
    pub per_channel: BTreeMap<ChannelKind, RateLimit>,
    /// Notifications per citizen (email and push; the inbox is never limited per citizen).
    pub per_citizen: Option<RateLimit>,
}

impl RateLimit {
    /// This limit's share when `processes` enforce it side by side: the count divided among
    /// them (rounded up, at least 1), the period unchanged.
    pub fn divided_among(self, processes: u32) -> Self {
        let share = self.count.get().div_ceil(processes.max(1));
        Self {
            count: NonZeroU32::new(share).unwrap_or(NonZeroU32::MIN),
            per: self.per,
        }
    }
}

impl RateLimits {
    /// Each limit's share when `processes` share one store and each enforces its own limiters
    /// (see [`RateLimit::divided_among`]).
    pub fn divided_among(&self, processes: u32) -> Self {
        Self {
            per_service: self.per_service.map(|l| l.divided_among(processes)),
            per_channel: self
                .per_channel
                .iter()
                .map(|(channel, l)| (*channel, l.divided_among(processes)))
                .collect(),
            per_citizen: self.per_citizen.map(|l| l.divided_among(processes)),
        }
    }
}

/// A limit whose period is zero or too long for the limiter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit {limit:?} is not usable: its period must be positive and below 584 years")]
pub struct InvalidRateLimit {
    /// The limit.
    pub limit: RateLimit,
}

#[derive(Clone)]
struct EngineTime(Arc<dyn Clock>);

impl GovernorClock for EngineTime {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        let millis = u64::try_from(self.0.now().as_millis()).unwrap_or(0);
        Nanos::new(millis.saturating_mul(1_000_000))
    }
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, EngineTime, NoOpMiddleware<Nanos>>;
type Direct = RateLimiter<NotKeyed, InMemoryState, EngineTime, NoOpMiddleware<Nanos>>;

fn keyed<K: std::hash::Hash + Eq + Clone>(
    limit: Option<RateLimit>,
    clock: &EngineTime,
) -> Result<Option<Keyed<K>>, InvalidRateLimit> {
    limit
        .map(|l| {
            let quota = l.quota().ok_or(InvalidRateLimit { limit: l })?;
            Ok(RateLimiter::new(
                quota,
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ))
        })
        .transpose()
}

/// The engine's limiters. A denied check says how long to wait; the engine defers the delivery
/// by that much without counting an attempt.
pub(crate) struct Limiters {
    clock: EngineTime,
    per_service: Option<Keyed<ServiceId>>,
    per_channel: BTreeMap<ChannelKind, Direct>,
    per_citizen: Option<Keyed<FiscalCodeHash>>,
}

impl Limiters {
    pub(crate) fn new(
        limits: &RateLimits,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InvalidRateLimit> {
        let clock = EngineTime(clock);
        let quota = |limit: RateLimit| limit.quota().ok_or(InvalidRateLimit { limit });
        let per_channel = limits
            .per_channel
            .iter()
            .map(|(kind, limit)| {
                Ok((
                    *kind,
                    RateLimiter::new(quota(*limit)?, InMemoryState::default(), clock.clone()),
                ))
            })
            .collect::<Result<_, InvalidRateLimit>>()?;
        Ok(Self {
            per_service: keyed(limits.per_service, &clock)?,
            per_citizen: keyed(limits.per_citizen, &clock)?,
            per_channel,
            clock,
        })
    }

    /// Takes one token from every limiter that applies, or says how long to wait for the
    /// slowest one that refused. (A refusal by a later limiter still spent the earlier ones'
    /// tokens; that errs on the side of sending less, never more.)
    pub(crate) fn check(
        &self,
        service: &ServiceId,
        channel: ChannelKind,
        citizen: &FiscalCode,
    ) -> Result<(), Duration> {
        let now = self.clock.now();
        let mut denied = false;
        let mut wait = Duration::ZERO;
        if let Some(limiter) = &self.per_service
            && let Err(refusal) = limiter.check_key(service)
        {
            denied = true;
            wait = wait.max(refusal.wait_time_from(now));
        }
        if let Some(limiter) = self.per_channel.get(&channel)
            && let Err(refusal) = limiter.check()
        {
            denied = true;
            wait = wait.max(refusal.wait_time_from(now));
        }
        if channel != ChannelKind::Inbox
            && let Some(limiter) = &self.per_citizen
            // Keyed by hash so the limiter's memory holds no fiscal code; hashed only when a
            // per-citizen limit is configured.
            && let Err(refusal) = limiter.check_key(&citizen.hash())
        {
            denied = true;
            wait = wait.max(refusal.wait_time_from(now));
        }
        if denied {
            Err(wait.max(Duration::from_millis(1)))
        } else {
            Ok(())
        }
    }

    /// Forgets keys whose limiters are back to full, so memory does not grow with every
    /// service and citizen ever seen.
    pub(crate) fn shrink(&self) {
        if let Some(limiter) = &self.per_service {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_citizen {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod division_tests {
    use super::*;

    #[test]
    fn limits_are_divided_among_processes_rounding_up_and_never_to_zero() {
        let limit = |count| RateLimit {
            count: NonZeroU32::new(count).unwrap(),
            per: Duration::from_secs(1),
        };
        let mut limits = RateLimits {
            per_service: Some(limit(100)),
            per_channel: BTreeMap::new(),
            per_citizen: Some(limit(1)),
        };
        limits.per_channel.insert(ChannelKind::Email, limit(10));
        let shared = limits.divided_among(3);
        assert_eq!(shared.per_service, Some(limit(34)));
        assert_eq!(shared.per_channel[&ChannelKind::Email], limit(4));
        assert_eq!(shared.per_citizen, Some(limit(1)));
        assert_eq!(limits.divided_among(1), limits);
    }
}
