//! Message ids that cannot be guessed and still sort in acceptance order: a ULID's 48-bit time
//! part is the acceptance millisecond; the first id of a millisecond takes 79 random bits, and
//! each next id of the same millisecond adds a random step of 1 to 2⁶⁴ to the previous one
//! (from a cryptographically secure generator, ChaCha, seeded by the operating system).
//!
//! A plain monotonic ULID (the previous random part plus one) would hand a service that
//! receives one id its neighbours: the ids of other services' messages accepted in the same
//! millisecond. With random steps, knowing one id leaves 2⁶⁴ candidates for the next, while
//! ids of one engine still sort exactly as they were handed out (an inbox lists a
//! millisecond's messages in acceptance order, a service's queue is claimed first in, first
//! out). If a millisecond's steps ever exhausted the 80 bits, the next id moves to the next
//! millisecond.

use rand::rngs::StdRng;
use rand::{CryptoRng, Rng, SeedableRng};

use crate::{MessageId, Timestamp};

/// The random part of a ULID is the low 80 bits.
const RANDOM_MASK: u128 = (1 << 80) - 1;

/// The first id of a millisecond draws below 2⁷⁹, leaving half the space for its steps.
const FIRST_MASK: u128 = (1 << 79) - 1;

/// Hands out message ids.
#[derive(Debug)]
pub(super) struct IdGenerator<R = StdRng> {
    /// Where the random bits come from; only a [`CryptoRng`] will do.
    rng: R,
    /// The latest id handed out: the next one sorts after it, whatever the clock says.
    last: Option<(u64, u128)>,
}

impl IdGenerator {
    /// A generator seeded by the operating system: what the engine uses, whatever the seed of
    /// its jitter generator (a seeded id generator would make ids guessable again).
    pub(super) fn from_os_rng() -> Self {
        Self::with_rng(StdRng::from_os_rng())
    }
}

impl<R: CryptoRng> IdGenerator<R> {
    /// A generator drawing from `rng` (tests pass a seeded one).
    pub(super) fn with_rng(rng: R) -> Self {
        Self { rng, last: None }
    }

    /// A new id at `now`, after every id handed out before (if the clock stepped back, in the
    /// latest millisecond already used).
    pub(super) fn next(&mut self, now: Timestamp) -> MessageId {
        let now = u64::try_from(now.as_millis()).unwrap_or(0);
        let (millis, random) = match self.last {
            Some((millis, previous)) if millis >= now => {
                let step = 1 + u128::from(self.rng.random::<u64>());
                match previous.checked_add(step).filter(|r| *r <= RANDOM_MASK) {
                    Some(random) => (millis, random),
                    None => (millis + 1, self.rng.random::<u128>() & FIRST_MASK),
                }
            }
            _ => (now, self.rng.random::<u128>() & FIRST_MASK),
        };
        self.last = Some((millis, random));
        MessageId::from_parts(millis, random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(seed: u64) -> IdGenerator {
        IdGenerator::with_rng(StdRng::seed_from_u64(seed))
    }

    /// The 80 random bits of an id.
    fn random_part(id: MessageId) -> u128 {
        u128::from_be_bytes(id.to_bytes()) & RANDOM_MASK
    }

    #[test]
    fn ids_follow_the_clock_and_never_go_back_in_time_when_it_steps_back() {
        let mut generator = seeded(3);
        let millis: Vec<u64> = [5, 5, 6, 4, 7, 7]
            .into_iter()
            .map(|ms| generator.next(Timestamp::from_millis(ms)).millis())
            .collect();
        assert_eq!(millis, [5, 5, 6, 6, 7, 7]);
        let earlier = generator.next(Timestamp::from_millis(7));
        let later = generator.next(Timestamp::from_millis(8));
        assert!(earlier < later, "a later millisecond sorts after");
        assert_eq!(
            seeded(1).next(Timestamp::from_millis(-5)).millis(),
            0,
            "before the epoch"
        );
    }

    #[test]
    fn ids_of_one_millisecond_keep_their_order_but_not_their_distance() {
        const N: usize = 1_000;
        let mut generator = seeded(7);
        let now = Timestamp::from_millis(1_767_225_600_000);
        let ids: Vec<MessageId> = (0..N).map(|_| generator.next(now)).collect();
        assert!(ids.iter().all(|id| id.millis() == 1_767_225_600_000));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "acceptance order");
        // Knowing one id says nothing useful about the next: the steps are random 64-bit
        // numbers, none of them small, all different (a counter would step by one).
        let mut steps: Vec<u128> = ids
            .windows(2)
            .map(|w| random_part(w[1]) - random_part(w[0]))
            .collect();
        assert!(steps.iter().all(|step| *step > 1 << 32), "a small step");
        steps.sort_unstable();
        steps.dedup();
        assert_eq!(steps.len(), N - 1, "repeated steps");
    }

    #[test]
    fn a_millisecond_whose_random_space_is_used_up_moves_to_the_next() {
        let mut generator = seeded(9);
        generator.last = Some((10, RANDOM_MASK - 1));
        let id = generator.next(Timestamp::from_millis(10));
        assert_eq!(id.millis(), 11);
        assert!(generator.next(Timestamp::from_millis(10)) > id);
    }

    #[test]
    fn the_engine_s_generator_is_seeded_by_the_operating_system() {
        let now = Timestamp::from_millis(1_767_225_600_000);
        let (mut a, mut b) = (IdGenerator::from_os_rng(), IdGenerator::from_os_rng());
        assert_ne!(
            a.next(now),
            b.next(now),
            "two engines do not share a sequence"
        );
    }
}
