//! The global limit on password checks running at once. Each argon2 check takes ~19 MiB and
//! tens of milliseconds of one core; without a limit, a few hundred parallel logins would each
//! get a blocking thread and its 19 MiB, and the device would run out of memory. Past the limit
//! a login is answered right away with 503 and `Retry-After` instead of queueing: a queue would
//! only hold more connections and memory while the flood lasts.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::AccountsError;

/// What a refused login is told: checks take well under a second each.
pub(super) const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Most checks at once on any device: 4 × 19 MiB.
const MAX_CONCURRENT_CHECKS: usize = 4;

/// Permission to run one password check; the slot frees when it is dropped.
#[derive(Debug)]
pub struct CheckPermit(#[allow(dead_code)] OwnedSemaphorePermit);

#[derive(Debug)]
pub(super) struct PasswordChecks {
    permits: Arc<Semaphore>,
}

impl PasswordChecks {
    /// As many checks at once as the device has cores (more would only wait for a core while
    /// holding their memory), at most [`MAX_CONCURRENT_CHECKS`].
    pub(super) fn for_this_device() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores.clamp(1, MAX_CONCURRENT_CHECKS))
    }

    pub(super) fn new(limit: usize) -> Self {
        PasswordChecks {
            permits: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    /// A slot for one check, or [`AccountsError::Busy`] if all are taken.
    pub(super) fn try_start(&self) -> Result<CheckPermit, AccountsError> {
        self.permits
            .clone()
            .try_acquire_owned()
            .map(CheckPermit)
            .map_err(|_| AccountsError::Busy {
                retry_after: BUSY_RETRY_AFTER,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_limit_run_and_a_slot_frees_when_done() {
        let checks = PasswordChecks::new(2);
        let a = checks.try_start().unwrap();
        let _b = checks.try_start().unwrap();
        assert!(matches!(
            checks.try_start(),
            Err(AccountsError::Busy { retry_after }) if retry_after == BUSY_RETRY_AFTER
        ));
        drop(a);
        assert!(checks.try_start().is_ok());
    }
}
