//! Pacing of password guesses against one account from everywhere: the defence against many
//! addresses guessing one user's password, where per-source lockouts see each address only a
//! few times.
//!
//! It delays, it does not lock: after [`PACE_AFTER`] failures for a username (from any source),
//! checks of that username's password are spaced out, one per step (1 s, doubling with each
//! further failure, at most [`MAX_STEP`]). An attempt waits for its turn; the slot it takes is
//! what keeps parallel guesses from all running at once. Whoever would wait more than
//! [`MAX_WAIT`] is told to come back later instead (429 with `Retry-After`), so waiting requests
//! stay few. Sources (grouped as in [`source_group`]) that logged into the account before are
//! not paced at all: a guesser elsewhere cannot keep the user out of their usual desk, and even
//! from a new place the user waits at most a bounded time, never a lockout.
//!
//! At the cap one account gets at most one guess per [`MAX_STEP`] from all unknown sources
//! together: 4 s → 10 800 guesses in 12 hours, against passwords of 12 characters or more.
//! Unknown usernames are paced the same way, so the delay does not reveal which names exist.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock::Clock;
use roomd_base::net_source::source_group;
use roomd_base::sync::lock;

/// Failures for one username (all sources together) before its checks are paced.
pub(super) const PACE_AFTER: u32 = 10;
/// Longest spacing between two checks of one account's password.
pub(super) const MAX_STEP: Duration = Duration::from_secs(4);
/// Longest an attempt is made to wait for its turn; past it, 429.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(10);
/// Sources remembered per account as ones the user logged in from.
const MAX_KNOWN_SOURCES: usize = 8;
/// Accounts (typed usernames) remembered at once; past it the least useful entry goes.
const MAX_ACCOUNTS: usize = 10_000;
/// An account without failures for this long is forgotten (its known sources too).
const FORGET_AFTER: Duration = Duration::from_secs(30 * 24 * 60 * 60);

#[derive(Debug)]
struct Account {
    failures: u32,
    /// When the next paced check may run.
    next_slot: Instant,
    last_seen: Instant,
    known_sources: Vec<IpAddr>,
}

#[derive(Debug)]
pub(super) struct AccountPacing {
    clock: Arc<dyn Clock>,
    max_accounts: usize,
    accounts: Mutex<HashMap<String, Account>>,
}

/// When an attempt may check its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    /// Wait this long (zero: right away), then check.
    After(Duration),
    /// The queue is too long: come back after this long.
    Refused { retry_after: Duration },
}

impl AccountPacing {
    pub(super) fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_max_accounts(clock, MAX_ACCOUNTS)
    }

    fn with_max_accounts(clock: Arc<dyn Clock>, max_accounts: usize) -> Self {
        AccountPacing {
            clock,
            max_accounts,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// Starts an attempt on `username` from `source`: counted as a failure until
    /// [`AccountPacing::succeeded`] or [`AccountPacing::cancel`].
    pub(super) fn begin(&self, username: &str, source: IpAddr) -> Turn {
        let now = self.clock.now();
        let source = source_group(source);
        let username = short(username);
        let mut accounts = self.lock();
        if !accounts.contains_key(&username) && accounts.len() >= self.max_accounts {
            make_room(&mut accounts, now);
        }
        let account = accounts.entry(username).or_insert_with(|| Account {
            failures: 0,
            next_slot: now,
            last_seen: now,
            known_sources: Vec::new(),
        });
        if now.saturating_duration_since(account.last_seen) >= FORGET_AFTER {
            account.failures = 0;
            account.known_sources.clear();
        }
        account.last_seen = now;
        let paced = account.failures >= PACE_AFTER && !account.known_sources.contains(&source);
        let turn = if paced {
            let slot = account.next_slot.max(now);
            let wait = slot.saturating_duration_since(now);
            if wait > MAX_WAIT {
                return Turn::Refused {
                    retry_after: wait - MAX_WAIT,
                };
            }
            account.next_slot = slot + step_after(account.failures - PACE_AFTER);
            Turn::After(wait)
        } else {
            Turn::After(Duration::ZERO)
        };
        account.failures = account.failures.saturating_add(1);
        turn
    }

    /// The attempt was never checked (the server was busy): it is not a failure.
    pub(super) fn cancel(&self, username: &str) {
        if let Some(account) = self.lock().get_mut(&short(username)) {
            account.failures = account.failures.saturating_sub(1);
        }
    }

    /// The password was right: the account's failures are forgiven and `source` is one the
    /// user logs in from.
    pub(super) fn succeeded(&self, username: &str, source: IpAddr) {
        let source = source_group(source);
        let now = self.clock.now();
        if let Some(account) = self.lock().get_mut(&short(username)) {
            account.failures = 0;
            account.next_slot = now;
            if !account.known_sources.contains(&source) {
                if account.known_sources.len() >= MAX_KNOWN_SOURCES {
                    account.known_sources.remove(0);
                }
                account.known_sources.push(source);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        // Every update leaves an entry consistent, so a poisoned table may still be used.
        lock(&self.accounts)
    }
}

/// Usernames are kept at most 64 characters long (the longest valid one), bounding each entry.
fn short(username: &str) -> String {
    username.chars().take(64).collect()
}

/// Forgets old entries; if that is not enough, one entry, preferring those with no known
/// source and the fewest failures (flooding the table with new names must neither forget a
/// user's known sources nor lift the pacing of an account under attack).
fn make_room(accounts: &mut HashMap<String, Account>, now: Instant) {
    accounts.retain(|_, a| now.saturating_duration_since(a.last_seen) < FORGET_AFTER);
    let evict = accounts
        .iter()
        .min_by_key(|(_, a)| (!a.known_sources.is_empty(), a.failures, a.last_seen))
        .map(|(name, _)| name.clone());
    if let Some(name) = evict {
        accounts.remove(&name);
    }
}

/// 1 s × 2^`extra_failures`, capped at [`MAX_STEP`].
fn step_after(extra_failures: u32) -> Duration {
    let seconds = 1u64.checked_shl(extra_failures).unwrap_or(u64::MAX);
    Duration::from_secs(seconds).min(MAX_STEP)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::accounts::clock::ManualClock;

    fn source(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, n))
    }

    fn setup() -> (Arc<ManualClock>, AccountPacing) {
        let clock = Arc::new(ManualClock::new());
        (clock.clone(), AccountPacing::new(clock))
    }

    #[test]
    fn failures_from_many_sources_space_out_the_checks() {
        let (clock, pacing) = setup();
        for n in 0..PACE_AFTER {
            assert_eq!(
                pacing.begin("alice", source(n as u8)),
                Turn::After(Duration::ZERO)
            );
        }
        // Parallel guesses from new sources each get their own, later slot.
        assert_eq!(
            pacing.begin("alice", source(100)),
            Turn::After(Duration::ZERO)
        );
        assert_eq!(
            pacing.begin("alice", source(101)),
            Turn::After(Duration::from_secs(1))
        );
        assert_eq!(
            pacing.begin("alice", source(102)),
            Turn::After(Duration::from_secs(3))
        );
        assert_eq!(
            pacing.begin("alice", source(103)),
            Turn::After(Duration::from_secs(7))
        );
        // 7 + 4 = 11 s: beyond the longest wait.
        assert_eq!(
            pacing.begin("alice", source(104)),
            Turn::Refused {
                retry_after: Duration::from_secs(1)
            }
        );
        clock.advance(Duration::from_secs(11));
        assert_eq!(
            pacing.begin("alice", source(105)),
            Turn::After(Duration::ZERO)
        );
        // Other accounts are not affected.
        assert_eq!(
            pacing.begin("bob", source(100)),
            Turn::After(Duration::ZERO)
        );
    }

    #[test]
    fn a_known_source_is_never_paced_and_success_forgives() {
        let (_clock, pacing) = setup();
        let desk = source(1);
        let _ = pacing.begin("alice", desk);
        pacing.succeeded("alice", desk);
        for n in 0..(PACE_AFTER + 5) {
            let _ = pacing.begin("alice", source(50 + n as u8));
        }
        assert_ne!(
            pacing.begin("alice", source(99)),
            Turn::After(Duration::ZERO)
        );
        assert_eq!(pacing.begin("alice", desk), Turn::After(Duration::ZERO));
        pacing.succeeded("alice", desk);
        assert_eq!(
            pacing.begin("alice", source(99)),
            Turn::After(Duration::ZERO)
        );
    }

    #[test]
    fn ipv6_sources_of_one_64_share_known_status() {
        let (_clock, pacing) = setup();
        let desk: IpAddr = "2001:db8:1:2::10".parse().unwrap();
        let same_host_new_address: IpAddr = "2001:db8:1:2:abcd::1".parse().unwrap();
        pacing.succeeded("alice", desk); // no entry yet: nothing remembered
        let _ = pacing.begin("alice", desk);
        pacing.succeeded("alice", desk);
        for n in 0..(PACE_AFTER + 5) {
            let _ = pacing.begin("alice", source(n as u8));
        }
        assert_eq!(
            pacing.begin("alice", same_host_new_address),
            Turn::After(Duration::ZERO)
        );
    }

    #[test]
    fn cancelled_attempts_do_not_count() {
        let (_clock, pacing) = setup();
        for _ in 0..(PACE_AFTER * 3) {
            let _ = pacing.begin("alice", source(1));
            pacing.cancel("alice");
        }
        assert_eq!(
            pacing.begin("alice", source(2)),
            Turn::After(Duration::ZERO)
        );
    }

    #[test]
    fn the_table_is_bounded_and_keeps_accounts_under_attack() {
        let clock = Arc::new(ManualClock::new());
        let pacing = AccountPacing::with_max_accounts(clock.clone(), 5);
        // Its next check is 11 s away.
        for n in 0..(PACE_AFTER + 4) {
            let _ = pacing.begin("alice", source(n as u8));
        }
        for i in 0..100 {
            clock.advance(Duration::from_millis(10));
            let _ = pacing.begin(&format!("random{i}"), source(200));
        }
        assert_eq!(pacing.lock().len(), 5);
        assert_ne!(
            pacing.begin("alice", source(201)),
            Turn::After(Duration::ZERO),
            "still paced"
        );
        let long = "x".repeat(10_000);
        let _ = pacing.begin(&long, source(1));
        assert!(pacing.lock().keys().all(|k| k.chars().count() <= 64));
    }
}
