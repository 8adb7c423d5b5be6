//! Delays between attempts: exponential from one second, capped at `provisioning.retry_max_s`,
//! drawn from the upper half of each step, so that a room set up together with many others
//! (a whole floor powered on at once) does not knock on the server in step with them.

use std::time::Duration;

pub(crate) struct Backoff {
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Backoff {
        Backoff { max, attempt: 0 }
    }

    /// The next delay: uniform in [ceiling/2, ceiling], ceiling = min(1 s · 2^attempt, max).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = Duration::from_secs(1)
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        upper_half(ceiling)
    }
}

/// Uniform in [ceiling/2, ceiling].
pub(crate) fn upper_half(ceiling: Duration) -> Duration {
    let half = ceiling / 2;
    let span = u64::try_from((ceiling - half).as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(random_below(span.saturating_add(1)))
}

fn random_below(bound: u64) -> u64 {
    let mut bytes = [0u8; 8];
    roomd_base::random::fill(&mut bytes);
    u64::from_le_bytes(bytes) % bound.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_stays_in_the_upper_half() {
        let mut b = Backoff::new(Duration::from_secs(5));
        for ceiling in [1000u64, 2000, 4000, 5000, 5000] {
            let d = b.next_delay().as_millis() as u64;
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d} for ceiling {ceiling}"
            );
        }
    }
}
