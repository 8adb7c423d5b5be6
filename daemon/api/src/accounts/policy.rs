//! The tunable limits of the accounts module, taken from the configuration
//! (`accounts.lockout_threshold`, `accounts.lockout_max_seconds`, `api.session_idle_minutes`).

use std::time::Duration;

/// Lockout and session limits; [`Default`] gives the configuration's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountsPolicy {
    /// Failed attempts per (username, source) before every further attempt is delayed.
    /// 0 is treated as 1: a lockout that starts before the first failure would lock everyone out.
    pub lockout_threshold: u32,
    /// Cap of the doubling delay.
    pub lockout_max: Duration,
    /// A session without requests for this long ends.
    pub session_idle: Duration,
}

impl Default for AccountsPolicy {
    /// The configuration's defaults.
    fn default() -> Self {
        AccountsPolicy {
            lockout_threshold: 5,
            lockout_max: Duration::from_secs(900),
            session_idle: Duration::from_secs(30 * 60),
        }
    }
}
