//! The watchdog loop: ping systemd only while the room core proves it is alive.

use std::future::Future;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::time::{MissedTickBehavior, interval as ticker, timeout};

use super::notifier::Notifier;

/// `tokio::time::interval` panics on a zero period; a watchdog this tight is a configuration error
/// we would rather survive.
const SHORTEST_INTERVAL: Duration = Duration::from_millis(1);

pub(super) async fn run<F, Fut>(notifier: &Notifier, interval: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let interval = interval.max(SHORTEST_INTERVAL);
    let mut ticks = ticker(interval);
    // After a slow check, wait a full interval again rather than pinging in a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match timeout(interval, check()).await {
            Ok(true) => notifier.send(&[NotifyState::Watchdog]),
            Ok(false) => {
                tracing::warn!("room core reports unhealthy; not pinging the systemd watchdog")
            }
            Err(_) => tracing::warn!(
                "room core did not answer the health check within {interval:?}; \
                 not pinging the systemd watchdog"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    const INTERVAL: Duration = Duration::from_millis(20);
    const RUN_FOR: Duration = Duration::from_millis(200);

    /// Runs the watchdog for `RUN_FOR` against a fresh socket and returns every datagram it sent.
    async fn datagrams_sent<F, Fut>(check: F) -> Vec<String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        let notifier = Notifier::to_socket(&path);
        let finished = timeout(RUN_FOR, run(&notifier, INTERVAL, check)).await;
        assert!(
            finished.is_err(),
            "the watchdog loop must run until cancelled"
        );

        socket.set_nonblocking(true).expect("non-blocking socket");
        let mut received = Vec::new();
        let mut buffer = [0u8; 256];
        while let Ok(length) = socket.recv(&mut buffer) {
            received.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
        received
    }

    #[tokio::test]
    async fn healthy_core_pings_repeatedly() {
        let received = datagrams_sent(|| async { true }).await;
        assert!(
            received.len() >= 3,
            "expected several pings, got {received:?}"
        );
        assert!(received.iter().all(|message| message == "WATCHDOG=1\n"));
    }

    #[tokio::test]
    async fn unhealthy_core_never_pings() {
        let received = datagrams_sent(|| async { false }).await;
        assert!(received.is_empty(), "unexpected pings: {received:?}");
    }

    #[tokio::test]
    async fn hung_core_never_pings() {
        let received = datagrams_sent(std::future::pending::<bool>).await;
        assert!(received.is_empty(), "unexpected pings: {received:?}");
    }

    #[tokio::test]
    async fn pings_resume_when_the_core_recovers() {
        let mut checks = 0;
        let received = datagrams_sent(move || {
            checks += 1;
            let healthy = checks > 3;
            async move { healthy }
        })
        .await;
        assert!(!received.is_empty(), "no ping after recovery");
    }

    #[tokio::test]
    async fn zero_interval_does_not_panic() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let notifier = Notifier::to_socket(&dir.path().join("notify"));
        let finished = timeout(RUN_FOR, run(&notifier, Duration::ZERO, || async { false })).await;
        assert!(finished.is_err());
    }
}
