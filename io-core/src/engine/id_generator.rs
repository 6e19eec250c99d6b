//! Monotonic ULIDs: ids created in the same millisecond still sort in creation order, so the
//! inbox order is the acceptance order.

use rand::Rng;

use crate::{MessageId, Timestamp};

/// The last id handed out.
#[derive(Debug, Default)]
pub(super) struct IdGenerator {
    last: Option<MessageId>,
}

/// The random part of a ULID is 80 bits.
const RANDOM_MAX: u128 = (1 << 80) - 1;

impl IdGenerator {
    /// A new id at `now`, greater than every id this generator returned before.
    pub(super) fn next(&mut self, now: Timestamp, rng: &mut impl Rng) -> MessageId {
        let millis = u64::try_from(now.as_millis()).unwrap_or(0);
        let id = match self.last {
            Some(last) if last.millis() >= millis && last.random() < RANDOM_MAX => {
                MessageId::from_parts(last.millis(), last.random() + 1)
            }
            Some(last) if last.millis() >= millis => MessageId::from_parts(last.millis() + 1, 0),
            _ => MessageId::from_parts(millis, rng.random::<u128>() & (RANDOM_MAX >> 1)),
        };
        self.last = Some(id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ids_increase_within_and_across_milliseconds_and_clock_steps_back() {
        let mut generator = IdGenerator::default();
        let mut rng = StdRng::seed_from_u64(3);
        let at = |ms| Timestamp::from_millis(ms);
        let ids: Vec<MessageId> = [5, 5, 5, 6, 4, 7]
            .into_iter()
            .map(|ms| generator.next(at(ms), &mut rng))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }
}
