//! When `send` tries a row again: a pure function of the answer, the retries already made and a
//! jitter draw, so that every case is a line of a table test.

use std::time::Duration;

use rand::Rng;

/// What one attempt at a row got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 201: the message id, and whether the server replayed an earlier answer to the same
    /// idempotency key.
    Created {
        /// The message id.
        id: String,
        /// The `Idempotent-Replayed: true` header.
        replayed: bool,
    },
    /// 429, with the server's `Retry-After` when it gave one.
    TooManyRequests {
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
        /// The problem's detail.
        detail: String,
    },
    /// 401: the key is not valid; no row can succeed.
    Unauthorized {
        /// The problem's detail.
        detail: String,
    },
    /// Another 4xx (or an unexpected status): the row is refused as it is.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The problem's detail.
        detail: String,
    },
    /// 5xx.
    ServerError {
        /// The HTTP status.
        status: u16,
        /// The problem's detail.
        detail: String,
    },
    /// No answer: connection refused or reset, timeout.
    Unreachable {
        /// What failed.
        error: String,
    },
}

impl Answer {
    /// Whether another attempt could get another answer.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::TooManyRequests { .. } | Self::ServerError { .. } | Self::Unreachable { .. }
        )
    }

    /// What to write in the results file when this is the last answer.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Created { id, .. } => format!("created {id}"),
            Self::TooManyRequests { detail, .. } => format!("429 Too Many Requests: {detail}"),
            Self::Unauthorized { detail } => detail.clone(),
            Self::Refused { detail, .. } => detail.clone(),
            Self::ServerError { status, detail } => format!("{status}: {detail}"),
            Self::Unreachable { error } => format!("no answer: {error}"),
        }
    }
}

/// How many times and how long `send` waits before giving up on a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Attempts after the first one.
    pub(crate) max_retries: u32,
    /// The first backoff; each retry doubles it.
    pub(crate) base: Duration,
    /// The longest backoff.
    pub(crate) cap: Duration,
    /// The longest wait a `Retry-After` may impose.
    pub(crate) max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 5 retries; backoff 0.5 s doubling up to 30 s (so at most ~16 s on a row's 5xx); a
    /// `Retry-After` obeyed up to 60 s.
    fn default() -> Self {
        Self {
            max_retries: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before trying again after `answer`, when `retries` retries were made
    /// already; `None` when the answer is final or the retries are spent.
    pub(crate) fn delay(
        &self,
        answer: &Answer,
        retries: u32,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        if !answer.is_transient() || retries >= self.max_retries {
            return None;
        }
        if let Answer::TooManyRequests {
            retry_after: Some(wait),
            ..
        } = answer
        {
            return Some((*wait).min(self.max_retry_after));
        }
        Some(self.backoff(retries, rng))
    }

    /// The `retries`-th backoff: `base · 2^retries`, capped, with "equal jitter" (a uniform
    /// draw in its upper half) so that rows failing together do not retry together.
    fn backoff(&self, retries: u32, rng: &mut impl Rng) -> Duration {
        let full = self
            .base
            .saturating_mul(2u32.saturating_pow(retries))
            .min(self.cap);
        let half = full / 2;
        half + half.mul_f64(rng.random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    fn answer(kind: &str) -> Answer {
        match kind {
            "201" => Answer::Created {
                id: "01ID".into(),
                replayed: false,
            },
            "429" => Answer::TooManyRequests {
                retry_after: None,
                detail: "slow down".into(),
            },
            "429+7s" => Answer::TooManyRequests {
                retry_after: Some(Duration::from_secs(7)),
                detail: "slow down".into(),
            },
            "429+1h" => Answer::TooManyRequests {
                retry_after: Some(Duration::from_secs(3600)),
                detail: "slow down".into(),
            },
            "400" => Answer::Refused {
                status: 400,
                detail: "content.subject".into(),
            },
            "401" => Answer::Unauthorized {
                detail: "bad key".into(),
            },
            "503" => Answer::ServerError {
                status: 503,
                detail: "down".into(),
            },
            "down" => Answer::Unreachable {
                error: "connection refused".into(),
            },
            other => unreachable!("{other}"),
        }
    }

    #[test]
    fn transient_answers_are_retried_a_bounded_number_of_times() {
        let policy = RetryPolicy::default();
        let mut rng = SmallRng::seed_from_u64(1);
        let s = Duration::from_secs;
        for (kind, retries, want) in [
            ("201", 0, None),
            ("400", 0, None),
            ("401", 0, None),
            ("429+7s", 0, Some(s(7))),
            ("429+7s", 4, Some(s(7))),
            ("429+7s", 5, None),
            ("429+1h", 0, Some(s(60))),
            ("503", 5, None),
            ("down", 5, None),
        ] {
            assert_eq!(
                policy.delay(&answer(kind), retries, &mut rng),
                want,
                "{kind} after {retries} retries"
            );
        }
        // Without Retry-After: backoff in [half, full] of 0.5 s · 2^retries, capped at 30 s.
        for kind in ["429", "503", "down"] {
            for (retries, full_ms) in [(0, 500), (1, 1000), (4, 8000), (3, 4000)] {
                let wait = policy.delay(&answer(kind), retries, &mut rng).unwrap();
                let full = Duration::from_millis(full_ms);
                assert!(
                    wait >= full / 2 && wait <= full,
                    "{kind} {retries}: {wait:?}"
                );
            }
        }
        let capped = RetryPolicy {
            max_retries: 40,
            ..policy
        };
        let wait = capped.delay(&answer("503"), 39, &mut rng).unwrap();
        assert!(wait <= s(30) && wait >= s(15), "{wait:?}");
    }
}
