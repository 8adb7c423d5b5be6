//! A room-wide budget of events (a token bucket): up to `burst` at once, then one more every
//! `refill`. Per-source limits do not stop a guesser with many addresses; a budget shared by
//! all sources does, whatever the number of addresses.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock::Clock;
use roomd_base::sync::lock;

#[derive(Debug)]
struct State {
    /// Events available now, in units of one event.
    available: f64,
    updated: Instant,
}

#[derive(Debug)]
pub(super) struct Budget {
    clock: Arc<dyn Clock>,
    burst: u32,
    refill: Duration,
    state: Mutex<State>,
}

impl Budget {
    /// Starts full.
    pub(super) fn new(burst: u32, refill: Duration, clock: Arc<dyn Clock>) -> Self {
        let now = clock.now();
        Budget {
            clock,
            burst: burst.max(1),
            refill,
            state: Mutex::new(State {
                available: f64::from(burst.max(1)),
                updated: now,
            }),
        }
    }

    /// Spends one event: `Err(wait)` if none is available, with the time until one will be.
    pub(super) fn spend(&self) -> Result<(), Duration> {
        let mut state = self.lock_refilled();
        if state.available >= 1.0 {
            state.available -= 1.0;
            Ok(())
        } else {
            Err(self.refill.mul_f64(1.0 - state.available))
        }
    }

    /// Gives back one spent event (it turned out not to count).
    pub(super) fn refund(&self) {
        let mut state = self.lock_refilled();
        state.available = (state.available + 1.0).min(f64::from(self.burst));
    }

    fn lock_refilled(&self) -> std::sync::MutexGuard<'_, State> {
        let now = self.clock.now();
        // Plain numbers, consistent after every statement: a poisoned lock is still usable.
        let mut state = lock(&self.state);
        let earned = now.saturating_duration_since(state.updated).as_secs_f64()
            / self.refill.as_secs_f64().max(f64::MIN_POSITIVE);
        state.available = (state.available + earned).min(f64::from(self.burst));
        state.updated = now;
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::clock::ManualClock;

    #[test]
    fn a_burst_then_one_per_refill_and_refunds() {
        let clock = Arc::new(ManualClock::new());
        let budget = Budget::new(3, Duration::from_secs(60), clock.clone());
        for _ in 0..3 {
            assert_eq!(budget.spend(), Ok(()));
        }
        assert_eq!(budget.spend(), Err(Duration::from_secs(60)));
        clock.advance(Duration::from_secs(45));
        assert_eq!(budget.spend(), Err(Duration::from_secs(15)));
        clock.advance(Duration::from_secs(15));
        assert_eq!(budget.spend(), Ok(()));
        budget.refund();
        assert_eq!(budget.spend(), Ok(()));
        // Never more than the burst, however long it rested.
        clock.advance(Duration::from_secs(86_400));
        for _ in 0..3 {
            assert_eq!(budget.spend(), Ok(()));
        }
        assert!(budget.spend().is_err());
    }
}
