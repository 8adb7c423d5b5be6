//! The audit log's timer, one task: writes the counted 404/405 noise once per interval, applies
//! the retention every hour, and follows changes of the `logging.audit_*` settings.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, interval, interval_at};

use super::log::{AuditLog, AuditSettings};
use roomd_model::config::Config;

/// How often the retention is applied: a record is deleted within this time of expiring.
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// What the configuration says for the audit log: its settings and the noise interval.
pub fn settings_of(config: &Config) -> (AuditSettings, Duration) {
    let logging = &config.logging;
    (
        AuditSettings {
            max_file_bytes: logging.audit_max_file_bytes,
            max_files: logging.audit_max_files,
            retention_days: logging.audit_retention_days,
        },
        Duration::from_secs(u64::from(logging.audit_noise_interval_seconds)),
    )
}

/// Runs until aborted. The retention runs once at once (a device that was off for months
/// deletes what expired meanwhile), then every [`RETENTION_EVERY`].
pub async fn run(log: Arc<AuditLog>, config: watch::Receiver<Arc<Config>>) {
    let mut config = Some(config);
    let (settings, mut noise_every) = match &mut config {
        Some(config) => settings_of(&config.borrow_and_update()),
        None => (AuditSettings::default(), Duration::from_secs(60)),
    };
    log.set_settings(settings);
    let mut noise = interval_at(Instant::now() + noise_every, noise_every);
    noise.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut retention = interval(RETENTION_EVERY);
    retention.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = noise.tick() => flush_noise(&log).await,
            _ = retention.tick() => apply_retention(&log).await,
            changed = changed(&mut config) => {
                let Some(new) = changed else {
                    // The room core is gone (shutting down): keep the timers, stop watching.
                    config = None;
                    continue;
                };
                let (settings, every) = settings_of(&new);
                log.set_settings(settings);
                if every != noise_every {
                    noise_every = every;
                    noise = interval_at(Instant::now() + every, every);
                    noise.set_missed_tick_behavior(MissedTickBehavior::Delay);
                }
            }
        }
    }
}

/// The next configuration, or `None` once nobody can send one; pending without a receiver.
async fn changed(config: &mut Option<watch::Receiver<Arc<Config>>>) -> Option<Arc<Config>> {
    match config {
        Some(config) => match config.changed().await {
            Ok(()) => Some(config.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// Writes the counted noise now (also at shutdown, so that the last interval is not lost).
pub async fn flush_noise(log: &Arc<AuditLog>) {
    let log = log.clone();
    match tokio::task::spawn_blocking(move || log.flush_noise()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!("audit log: cannot write the counted 404/405 requests: {e}"),
        Err(e) => tracing::error!("audit log task failed: {e}"),
    }
}

async fn apply_retention(log: &Arc<AuditLog>) {
    let log = log.clone();
    let now = OffsetDateTime::now_utc();
    match tokio::task::spawn_blocking(move || log.enforce_retention(now)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!("audit log retention: {e}"),
        Err(e) => tracing::error!("audit log task failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use time::format_description::well_known::Rfc3339;

    use super::*;
    use crate::audit::{AUDIT_FILE, AuditRecord, NewAuditRecord};

    fn probe() -> NewAuditRecord {
        NewAuditRecord {
            actor: "anonymous".into(),
            role: None,
            source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            method: "POST".into(),
            path: "/api/v1/nothing".into(),
            status: 404,
            detail: None,
        }
    }

    /// Lets blocking work the timer started finish, without moving the paused clock.
    async fn wait_until(what: &str, done: impl Fn() -> bool) {
        let started = std::time::Instant::now();
        while !done() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "{what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
            tokio::task::yield_now().await;
        }
    }

    fn old_line(seq: u64) -> String {
        let old_time = (OffsetDateTime::now_utc() - time::Duration::days(400))
            .replace_nanosecond(0)
            .unwrap()
            .format(&Rfc3339)
            .unwrap();
        serde_json::to_string(&AuditRecord::new(seq, old_time, probe())).unwrap() + "\n"
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_writes_counted_noise_and_applies_the_retention_hourly() {
        let dir = tempfile::tempdir().unwrap();
        // A record from before the retention, e.g. written before the device sat in a cupboard:
        // deleted as soon as the timer starts.
        let old_file = dir.path().join("audit.log.1");
        std::fs::write(&old_file, old_line(7)).unwrap();
        let log = Arc::new(
            AuditLog::open(&dir.path().join(AUDIT_FILE), AuditSettings::default()).unwrap(),
        );
        let (_config_tx, config_rx) = watch::channel(Arc::new(Config::default()));
        let task = tokio::spawn(run(log.clone(), config_rx));
        wait_until("the retention runs at start", || !old_file.exists()).await;

        // Another one appears (a restored backup, say): the next hourly run deletes it.
        std::fs::write(&old_file, old_line(5)).unwrap();
        for _ in 0..30 {
            log.count_noise(probe());
        }
        assert_eq!(
            log.read(None, 10).unwrap().len(),
            1,
            "noise is not written at once"
        );
        tokio::time::sleep(Duration::from_secs(61)).await;
        wait_until("the noise is written after its interval", || {
            log.read(None, 10).unwrap().len() == 2
        })
        .await;
        let records = log.read(None, 10).unwrap();
        assert_eq!((records[0].seq, records[0].status), (8, 404));
        let detail = records[0].detail.as_deref().unwrap();
        assert!(
            detail.starts_with("30 anonymous requests answered 404"),
            "{detail}"
        );
        assert!(
            old_file.exists(),
            "the retention runs hourly, not every minute"
        );

        tokio::time::sleep(RETENTION_EVERY).await;
        wait_until("the hourly retention deletes the old record", || {
            !old_file.exists()
        })
        .await;
        assert_eq!(log.read(None, 10).unwrap().len(), 1);
        task.abort();
    }
}
