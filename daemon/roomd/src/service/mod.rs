//! Talking to systemd: readiness, status, stopping and the watchdog (the sd_notify protocol).
//!
//! Every function is a no-op when roomd does not run under systemd (no `$NOTIFY_SOCKET`), and a
//! failed notification is logged, never fatal: systemd acts on missing notifications itself.
//! The environment is left untouched so child processes and tests see the same variables.

mod notifier;
mod watchdog;

use std::future::Future;
use std::time::Duration;

use sd_notify::NotifyState;

use notifier::Notifier;

/// Tells systemd that startup finished (`READY=1`) and what roomd is doing (`STATUS=`).
pub fn notify_ready(status: &str) {
    Notifier::from_env().send(&[NotifyState::Ready, NotifyState::Status(&one_line(status))]);
}

/// Updates the one-line status shown by `systemctl status roomd`.
pub fn notify_status(status: &str) {
    Notifier::from_env().send(&[NotifyState::Status(&one_line(status))]);
}

/// Tells systemd that roomd is shutting down on purpose (`STOPPING=1`).
pub fn notify_stopping() {
    Notifier::from_env().send(&[NotifyState::Stopping]);
}

/// Tells systemd that roomd restarts in place (`RELOADING=1`): it re-executes itself in the
/// same process, and the new image's `READY=1` ends the reload. `STOPPING=1` would have
/// systemd wait for the process to exit and then kill it.
pub fn notify_restarting(status: &str) {
    Notifier::from_env().send(&[
        NotifyState::Reloading,
        NotifyState::Status(&one_line(status)),
    ]);
}

/// How often to ping the watchdog: half of `$WATCHDOG_USEC`, as systemd recommends, when the
/// watchdog is enabled for this process (`$WATCHDOG_PID` unset or equal to our pid).
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().and_then(ping_interval)
}

/// Pings the watchdog every `interval`, but only when `check()` answers true within `interval`:
/// a hung room core must let systemd restart us. Runs until dropped/cancelled.
pub async fn run_watchdog<F, Fut>(interval: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    watchdog::run(&Notifier::from_env(), interval, check).await;
}

/// Half of the watchdog timeout; `None` for a zero timeout, which systemd uses to mean "disabled".
fn ping_interval(timeout: Duration) -> Option<Duration> {
    let half = timeout / 2;
    (!half.is_zero()).then_some(half)
}

/// The protocol is one `KEY=value` per line: a newline inside a status would start a new key.
fn one_line(status: &str) -> String {
    status.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_interval_is_half_the_timeout() {
        assert_eq!(
            ping_interval(Duration::from_secs(30)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            ping_interval(Duration::from_nanos(3)),
            Some(Duration::from_nanos(1))
        );
    }

    #[test]
    fn zero_timeout_means_no_watchdog() {
        assert_eq!(ping_interval(Duration::ZERO), None);
        assert_eq!(ping_interval(Duration::from_nanos(1)), None);
    }

    #[test]
    fn status_cannot_inject_further_keys() {
        assert_eq!(one_line("ok\nREADY=1\r\n"), "ok READY=1  ");
    }
}
