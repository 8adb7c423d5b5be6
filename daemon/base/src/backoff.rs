//! Delays between attempts: exponential, capped, and drawn at random from the upper half of each
//! step ("equal jitter"), so that rooms that lost a server at the same moment (a broker restart,
//! a floor of rooms powered on together) do not all come back in the same second. Used by the
//! fleet channel's reconnects and provisioning's fetches.

use std::time::Duration;

/// The delay before each reconnect attempt.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays from about `min` (first attempt) doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// After a successful connection: the next failure waits about `min` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The ceiling of the next delay: `min · 2^attempt`, at most `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// The next delay: uniform in [ceiling/2, ceiling].
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        upper_half(ceiling)
    }
}

/// A delay uniform in [ceiling/2, ceiling].
pub fn upper_half(ceiling: Duration) -> Duration {
    let half = ceiling / 2;
    let span = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
    half + Duration::from_micros(random_below(span.saturating_add(1)))
}

fn random_below(bound: u64) -> u64 {
    let mut bytes = [0u8; 8];
    crate::random::fill(&mut bytes);
    u64::from_le_bytes(bytes) % bound.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_stays_in_the_upper_half() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let ceilings = [100, 200, 400, 800, 1000, 1000];
        for ceiling in ceilings {
            let ceiling = Duration::from_millis(ceiling);
            assert_eq!(b.ceiling(), ceiling);
            let d = b.next_delay();
            assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} for {ceiling:?}");
        }
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn delays_are_spread() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
            seen.insert(b.next_delay().as_millis() / 50);
        }
        // 200 draws over [500 ms, 1000 ms] in 50 ms buckets fill nearly all 11 of them.
        assert!(seen.len() >= 8, "{seen:?}");
    }
}
