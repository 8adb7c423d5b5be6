//! Throttling of password guessing: after `threshold` failures for one key, every further attempt
//! is refused (before the password is even checked) until a delay has passed that doubles with
//! each failure: 1 s, 2 s, 4 s … up to a cap.
//!
//! An attempt counts as a failure as soon as it starts and is forgiven only when it succeeds.
//! Counting on completion instead would let an attacker fire many guesses in parallel while the
//! slow password hash runs, all passing the check before the first failure is recorded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock::Clock;
use roomd_base::net_source::source_group;
use roomd_base::sync::lock;

/// What failures are counted against. Sources are grouped by [`source_group`] (an IPv6 /64 is
/// one source); build keys with the constructors, which do that.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum LockoutKey {
    /// Logins for one username from one address (so a guesser elsewhere cannot lock a user out
    /// everywhere).
    Login { username: String, source: IpAddr },
    /// Logins from one address, whatever the username (a guesser spraying many names).
    Source { source: IpAddr },
    /// Claim attempts from one address.
    Claim { source: IpAddr },
    /// Touch panel pairing codes typed from one address.
    Pairing { source: IpAddr },
}

impl LockoutKey {
    /// The key for a login attempt. The username is as typed (it may not exist) and is cut short
    /// so that each entry's size stays bounded.
    pub(super) fn login(username: &str, source: IpAddr) -> Self {
        LockoutKey::Login {
            username: username.chars().take(64).collect(),
            source: source_group(source),
        }
    }

    /// The key for every login attempt from `source`.
    pub(super) fn source(source: IpAddr) -> Self {
        LockoutKey::Source {
            source: source_group(source),
        }
    }

    pub(super) fn claim(source: IpAddr) -> Self {
        LockoutKey::Claim {
            source: source_group(source),
        }
    }

    pub(super) fn pairing(source: IpAddr) -> Self {
        LockoutKey::Pairing {
            source: source_group(source),
        }
    }
}

/// Entries without an attempt for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Most keys remembered at once (a few MB at most); beyond that the least useful entry goes.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
}

#[derive(Debug)]
struct Table {
    threshold: u32,
    max_delay: Duration,
    max_keys: usize,
    entries: HashMap<LockoutKey, Entry>,
}

#[derive(Debug)]
pub(super) struct Lockout {
    clock: Arc<dyn Clock>,
    table: Mutex<Table>,
}

impl Lockout {
    pub(super) fn new(threshold: u32, max_delay: Duration, clock: Arc<dyn Clock>) -> Self {
        Self::with_max_keys(threshold, max_delay, clock, MAX_KEYS)
    }

    fn with_max_keys(
        threshold: u32,
        max_delay: Duration,
        clock: Arc<dyn Clock>,
        max_keys: usize,
    ) -> Self {
        Lockout {
            clock,
            table: Mutex::new(Table {
                threshold: threshold.max(1),
                max_delay,
                max_keys,
                entries: HashMap::new(),
            }),
        }
    }

    /// Applies new limits (configuration changed); existing counts are kept.
    pub(super) fn set_limits(&self, threshold: u32, max_delay: Duration) {
        let mut table = self.lock();
        table.threshold = threshold.max(1);
        table.max_delay = max_delay;
    }

    /// Starts an attempt for `key`: `Err(remaining delay)` if the key is locked, otherwise the
    /// attempt is counted as a failure until [`Lockout::record_success`] forgives it.
    pub(super) fn begin_attempt(&self, key: &LockoutKey) -> Result<(), Duration> {
        let now = self.clock.now();
        let mut table = self.lock();
        let (threshold, max_delay) = (table.threshold, table.max_delay);
        if let Some(entry) = table.entries.get_mut(key) {
            if now.saturating_duration_since(entry.last_failure) >= FORGET_AFTER {
                entry.failures = 0;
            }
            if let Some(remaining) = remaining_delay(entry, now, threshold, max_delay) {
                return Err(remaining);
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            return Ok(());
        }
        if table.entries.len() >= table.max_keys {
            table.make_room(now);
        }
        table.entries.insert(
            key.clone(),
            Entry {
                failures: 1,
                last_failure: now,
            },
        );
        Ok(())
    }

    /// The attempt for `key` was never made (the server was too busy to check it): it no longer
    /// counts as a failure.
    pub(super) fn cancel_attempt(&self, key: &LockoutKey) {
        let mut table = self.lock();
        if let Some(entry) = table.entries.get_mut(key) {
            entry.failures = entry.failures.saturating_sub(1);
        }
    }

    /// The attempt for `key` succeeded: forget its failures.
    pub(super) fn record_success(&self, key: &LockoutKey) {
        self.lock().entries.remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table is always consistent between statements, so a panic elsewhere cannot have
        // left it half-updated.
        lock(&self.table)
    }
}

impl Table {
    /// Drops idle entries; if that is not enough, evicts one entry, preferring ones that are not
    /// currently locked (so flooding the table with new names does not lift a lockout), oldest
    /// first.
    fn make_room(&mut self, now: Instant) {
        self.entries
            .retain(|_, entry| now.saturating_duration_since(entry.last_failure) < FORGET_AFTER);
        if self.entries.len() < self.max_keys {
            return;
        }
        let (threshold, max_delay) = (self.threshold, self.max_delay);
        let evict = self
            .entries
            .iter()
            .min_by_key(|(_, entry)| {
                let locked = remaining_delay(entry, now, threshold, max_delay).is_some();
                (locked, entry.last_failure)
            })
            .map(|(key, _)| key.clone());
        if let Some(key) = evict {
            self.entries.remove(&key);
        }
    }
}

/// How long `entry` stays locked from `now`, or `None` if an attempt is allowed.
fn remaining_delay(
    entry: &Entry,
    now: Instant,
    threshold: u32,
    max_delay: Duration,
) -> Option<Duration> {
    if entry.failures < threshold {
        return None;
    }
    let delay = delay_after(entry.failures - threshold, max_delay);
    let elapsed = now.saturating_duration_since(entry.last_failure);
    (elapsed < delay).then(|| delay - elapsed)
}

/// 1 s × 2^`extra_failures`, capped at `max_delay`.
fn delay_after(extra_failures: u32, max_delay: Duration) -> Duration {
    let seconds = 1u64.checked_shl(extra_failures).unwrap_or(u64::MAX);
    Duration::from_secs(seconds).min(max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::clock::ManualClock;
    use std::net::Ipv4Addr;

    const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

    fn setup(threshold: u32, max_seconds: u64) -> (Arc<ManualClock>, Lockout) {
        let clock = Arc::new(ManualClock::new());
        let lockout = Lockout::new(threshold, Duration::from_secs(max_seconds), clock.clone());
        (clock, lockout)
    }

    #[test]
    fn locks_after_threshold_with_doubling_capped_delay() {
        let (clock, lockout) = setup(5, 5);
        let key = LockoutKey::login("alice", SOURCE);
        for _ in 0..5 {
            assert_eq!(lockout.begin_attempt(&key), Ok(()));
        }
        assert_eq!(lockout.begin_attempt(&key), Err(Duration::from_secs(1)));
        clock.advance(Duration::from_millis(400));
        assert_eq!(lockout.begin_attempt(&key), Err(Duration::from_millis(600)));
        clock.advance(Duration::from_millis(600));
        assert_eq!(
            lockout.begin_attempt(&key),
            Ok(()),
            "sixth failure allowed after 1 s"
        );
        assert_eq!(lockout.begin_attempt(&key), Err(Duration::from_secs(2)));
        clock.advance(Duration::from_secs(2));
        assert_eq!(lockout.begin_attempt(&key), Ok(()));
        assert_eq!(lockout.begin_attempt(&key), Err(Duration::from_secs(4)));
        clock.advance(Duration::from_secs(4));
        assert_eq!(lockout.begin_attempt(&key), Ok(()));
        assert_eq!(
            lockout.begin_attempt(&key),
            Err(Duration::from_secs(5)),
            "8 s capped at max"
        );
    }

    #[test]
    fn keys_are_independent_and_success_resets() {
        let (_clock, lockout) = setup(2, 60);
        let alice = LockoutKey::login("alice", SOURCE);
        lockout.begin_attempt(&alice).unwrap();
        lockout.begin_attempt(&alice).unwrap();
        assert!(lockout.begin_attempt(&alice).is_err());
        let elsewhere = LockoutKey::login("alice", IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8)));
        assert!(lockout.begin_attempt(&elsewhere).is_ok());
        let claim = LockoutKey::Claim { source: SOURCE };
        assert!(lockout.begin_attempt(&claim).is_ok());

        lockout.record_success(&alice);
        assert!(lockout.begin_attempt(&alice).is_ok());
        assert!(lockout.begin_attempt(&alice).is_ok());
        assert!(lockout.begin_attempt(&alice).is_err());
    }

    #[test]
    fn forgets_after_a_day_idle() {
        let (clock, lockout) = setup(1, 3600);
        let key = LockoutKey::Claim { source: SOURCE };
        for _ in 0..10 {
            clock.advance(Duration::from_secs(3600));
            assert_eq!(lockout.begin_attempt(&key), Ok(()));
        }
        assert_eq!(lockout.begin_attempt(&key), Err(Duration::from_secs(512)));
        clock.advance(FORGET_AFTER);
        assert_eq!(lockout.begin_attempt(&key), Ok(()));
        assert_eq!(
            lockout.begin_attempt(&key),
            Err(Duration::from_secs(1)),
            "count restarted from zero"
        );
    }

    #[test]
    fn table_is_bounded_and_keeps_locked_entries_when_evicting() {
        let clock = Arc::new(ManualClock::new());
        let lockout = Lockout::with_max_keys(2, Duration::from_secs(60), clock.clone(), 3);
        let victim = LockoutKey::login("alice", SOURCE);
        lockout.begin_attempt(&victim).unwrap();
        lockout.begin_attempt(&victim).unwrap();
        for i in 0..10 {
            clock.advance(Duration::from_millis(10));
            lockout
                .begin_attempt(&LockoutKey::login(&format!("flood{i}"), SOURCE))
                .unwrap();
        }
        assert_eq!(lockout.lock().entries.len(), 3);
        assert!(
            lockout.begin_attempt(&victim).is_err(),
            "the locked key survived the flood"
        );
    }

    #[test]
    fn zero_threshold_behaves_as_one_and_long_usernames_are_cut() {
        let (_clock, lockout) = setup(0, 60);
        let key = LockoutKey::login(&"x".repeat(10_000), SOURCE);
        assert!(matches!(&key, LockoutKey::Login { username, .. } if username.len() == 64));
        assert!(lockout.begin_attempt(&key).is_ok());
        assert!(lockout.begin_attempt(&key).is_err());
    }
}
