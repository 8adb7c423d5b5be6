//! The host worker: the one owner of `status.host` (the core publishes what it reports).

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;

use crate::addresses::global_addresses;
use crate::error::HostError;
use crate::network::{remove_network_file, render_network, write_network_file};
use crate::schedule::{next_occurrence, postponed};
use crate::services::Services;
use roomd_core::{Notification, RoomEvent, RoomHandle};
use roomd_model::config::{HostConfig, parse_time_of_day};
use roomd_model::host::{HostReport, HostStatus};

/// How often `status.host` is read back from the services (and the nightly reboot checked
/// against the meeting).
const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// A scheduled reboot this long overdue did not happen (logind refused or was not asked): the
/// next one is scheduled.
const OVERDUE: Duration = Duration::from_secs(120);

/// What the worker starts from.
pub struct HostSetup {
    /// The room core: `[host]` comes from its configuration, `status.host` goes to it.
    pub room: RoomHandle,
    /// Where roomd's networkd file goes (`/run/systemd/network`; tests point it elsewhere).
    pub network_dir: PathBuf,
}

/// Starts the worker: applies `[host]` now and at every change of it, reads the services back
/// every 10 s, keeps the nightly reboot scheduled (and out of meetings), and follows
/// `system.reboot` and `system.power_off`. Ends when the core stops.
pub fn start(setup: HostSetup) -> JoinHandle<()> {
    // Subscribed before anything can be published: no power command is missed.
    let events = setup.room.subscribe();
    let worker = Worker {
        room: setup.room,
        network_dir: setup.network_dir,
        services: None,
        bus_error: String::new(),
        applied: None,
        pending_bus: false,
        planned: None,
        error: String::new(),
        reported: None,
    };
    tokio::spawn(worker.run(events))
}

struct Worker {
    room: RoomHandle,
    network_dir: PathBuf,
    /// The system bus, once reached.
    services: Option<Services>,
    /// Why the bus cannot be reached.
    bus_error: String,
    /// `[host]` as last applied; `None` before the first apply.
    applied: Option<HostConfig>,
    /// Settings for D-Bus services failed for want of a bus: applied again once it is there.
    pending_bus: bool,
    /// The nightly reboot as scheduled with logind.
    planned: Option<Timestamp>,
    /// `status.host.error`.
    error: String,
    /// What was last reported to the core.
    reported: Option<HostStatus>,
}

/// The outcome of applying one key.
type Outcome = (&'static str, Result<(), HostError>);

impl Worker {
    async fn run(mut self, mut events: broadcast::Receiver<Notification>) {
        let mut config = self.room.watch_config();
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        self.connect().await;
        let host = config.borrow_and_update().host.clone();
        self.apply(&host).await;
        self.refresh().await;
        loop {
            tokio::select! {
                changed = config.changed() => {
                    // The core has stopped: roomd is shutting down.
                    if changed.is_err() {
                        break;
                    }
                    let host = config.borrow_and_update().host.clone();
                    if self.applied.as_ref() != Some(&host) {
                        self.apply(&host).await;
                        self.refresh().await;
                    }
                }
                event = events.recv() => match event {
                    Ok(Notification::Event(event)) => match event.event {
                        RoomEvent::SystemRebootRequested { .. } => self.power(true).await,
                        RoomEvent::SystemPowerOffRequested { .. } => self.power(false).await,
                        _ => {}
                    },
                    Ok(Notification::StatusChanged { .. }) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!("host worker missed {missed} room notifications");
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    if self.services.is_none() {
                        self.connect().await;
                        if self.services.is_some() && self.pending_bus {
                            // The bus came late: what needed it is applied now.
                            self.applied = None;
                            let host = config.borrow().host.clone();
                            self.apply(&host).await;
                        }
                    }
                    // Keys that failed are tried again until they hold.
                    let host = config.borrow().host.clone();
                    if self.services.is_some() && self.applied.as_ref().is_some_and(|a| *a != host) {
                        self.apply(&host).await;
                    }
                    self.keep_nightly_reboot().await;
                    self.refresh().await;
                }
            }
        }
        tracing::debug!("host worker stopped");
    }

    async fn connect(&mut self) {
        match Services::connect().await {
            Ok(services) => {
                self.services = Some(services);
                self.bus_error.clear();
            }
            Err(e) => {
                if self.bus_error.is_empty() {
                    tracing::info!("host settings: {e}");
                }
                self.bus_error = e.to_string();
            }
        }
    }

    fn bus(&self) -> Result<&Services, HostError> {
        self.services
            .as_ref()
            .ok_or_else(|| HostError::NoBus(self.bus_error.clone()))
    }

    /// Applies what changed in `[host]` since the last apply (at start: everything set).
    /// Absent keys leave the system alone; a removed `nightly_reboot` cancels logind's reboot,
    /// and a removed network section removes roomd's networkd file.
    async fn apply(&mut self, host: &HostConfig) {
        let first = self.applied.is_none();
        let before = self.applied.clone().unwrap_or_default();
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut needs_bus = false;

        if host.hostname != before.hostname
            && let Some(name) = &host.hostname
        {
            needs_bus = true;
            let result = match self.bus() {
                Ok(bus) => bus.set_hostname(name).await,
                Err(e) => Err(e),
            };
            outcomes.push(("host.hostname", result));
        }
        if host.timezone != before.timezone
            && let Some(zone) = &host.timezone
        {
            needs_bus = true;
            let result = match self.bus() {
                Ok(bus) => bus.set_timezone(zone).await,
                Err(e) => Err(e),
            };
            outcomes.push(("host.timezone", result));
        }
        if host.ntp != before.ntp
            && let Some(on) = host.ntp
        {
            needs_bus = true;
            let result = match self.bus() {
                Ok(bus) => bus.set_ntp(on).await,
                Err(e) => Err(e),
            };
            outcomes.push(("host.ntp", result));
        }
        if first || host.network != before.network || host.ntp_servers != before.ntp_servers {
            let key = if host.network != before.network || host.ntp_servers.is_empty() {
                "host.network"
            } else {
                "host.ntp_servers"
            };
            if let Some(result) = self.apply_network(host, first).await {
                needs_bus |= matches!(result, Err(HostError::NoBus(_)));
                outcomes.push((key, result));
            }
        }
        let nightly_moved = host.nightly_reboot.is_some() && host.timezone != before.timezone;
        if host.nightly_reboot != before.nightly_reboot || nightly_moved {
            let result = match &host.nightly_reboot {
                Some(time) => Some(self.schedule_nightly(time, host.timezone.as_deref()).await),
                // Removed: the reboot roomd scheduled goes. Absent from the start: logind's
                // schedule is left as it is.
                None if !first => {
                    self.planned = None;
                    Some(match self.bus() {
                        Ok(bus) => bus.cancel_scheduled_reboot().await,
                        Err(e) => Err(e),
                    })
                }
                None => None,
            };
            if let Some(result) = result {
                needs_bus = true;
                outcomes.push(("host.nightly_reboot", result));
            }
        }

        self.pending_bus = needs_bus && self.services.is_none();
        let mut applied = host.clone();
        let mut keys = Vec::new();
        let mut failures = Vec::new();
        for (key, result) in outcomes {
            match result {
                Ok(()) => keys.push(key.to_owned()),
                Err(e) => {
                    // Not applied: it stays different from the configuration, so the next
                    // tick tries it again (a service that timed out while the box was
                    // booting). Without a bus at all, everything is applied again once the bus
                    // is there (`pending_bus`).
                    if !matches!(e, HostError::NoBus(_)) {
                        forget_applied(&mut applied, &before, key);
                    }
                    failures.push((key.to_owned(), e.to_string()));
                }
            }
        }
        self.applied = Some(applied);
        if keys.is_empty() && failures.is_empty() {
            return;
        }
        let error = failures
            .iter()
            .map(|(key, reason)| format!("{key}: {reason}"))
            .collect::<Vec<_>>()
            .join("; ");
        // A retry that fails the same way again is not news: logged and published once.
        let repeated = !error.is_empty() && error == self.error;
        self.error = error;
        if !keys.is_empty() {
            tracing::info!("host settings applied: {}", keys.join(", "));
            let _ = self.room.host(HostReport::Applied { keys }).await;
        }
        if repeated {
            return;
        }
        for (key, reason) in failures {
            tracing::warn!("{key} could not be applied: {reason}");
            let _ = self
                .room
                .host(HostReport::ApplyFailed { key, reason })
                .await;
        }
    }

    /// Writes or removes roomd's networkd file and has networkd reload. `None`: nothing to do
    /// (at start, no file wanted and none there).
    async fn apply_network(&self, host: &HostConfig, first: bool) -> Option<Result<(), HostError>> {
        let dir = self.network_dir.clone();
        let wanted = render_network(host);
        let written = tokio::task::spawn_blocking(move || match wanted {
            Some(text) => write_network_file(&dir, &text),
            None => remove_network_file(&dir),
        })
        .await
        .unwrap_or_else(|e| {
            Err(HostError::NetworkFile {
                path: self.network_dir.display().to_string(),
                reason: e.to_string(),
            })
        });
        match written {
            Ok(true) => Some(match self.bus() {
                Ok(bus) => bus.reload_network().await,
                Err(e) => Err(e),
            }),
            Ok(false) if first => None,
            Ok(false) => Some(Ok(())),
            Err(e) => Some(Err(e)),
        }
    }

    /// Schedules the next `HH:MM` in the time zone `[host]` sets (else the system's).
    async fn schedule_nightly(&mut self, time: &str, zone: Option<&str>) -> Result<(), HostError> {
        let (hour, minute) = parse_time_of_day(time).map_err(HostError::Time)?;
        let tz = match zone {
            Some(zone) => TimeZone::get(zone).map_err(|e| HostError::Time(e.to_string()))?,
            None => TimeZone::system(),
        };
        let at = next_occurrence(Timestamp::now(), &tz, hour, minute)?;
        self.bus()?.schedule_reboot(at).await?;
        tracing::info!("nightly reboot scheduled for {at}");
        self.planned = Some(at);
        Ok(())
    }

    /// Pushes the nightly reboot back while a meeting is on, and schedules the next one when
    /// the planned one is well past (logind did not reboot).
    async fn keep_nightly_reboot(&mut self) {
        let Some(planned) = self.planned else {
            return;
        };
        let now = Timestamp::now();
        let meeting_on = self.room.status().status.meeting.state.active();
        if let Some(later) = postponed(planned, now, meeting_on) {
            let result = match self.bus() {
                Ok(bus) => bus.schedule_reboot(later).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    tracing::info!("a meeting is on: the nightly reboot moves to {later}");
                    self.planned = Some(later);
                }
                Err(e) => tracing::warn!("cannot move the nightly reboot: {e}"),
            }
            return;
        }
        let overdue = jiff::SignedDuration::try_from(OVERDUE).unwrap_or_default();
        if now.duration_since(planned) > overdue {
            let nightly = self
                .applied
                .as_ref()
                .and_then(|h| h.nightly_reboot.clone().map(|t| (t, h.timezone.clone())));
            self.planned = None;
            if let Some((time, zone)) = nightly
                && let Err(e) = self.schedule_nightly(&time, zone.as_deref()).await
            {
                tracing::warn!("cannot schedule the next nightly reboot: {e}");
            }
        }
    }

    /// `system.reboot` / `system.power_off`: the event is out; now logind.
    async fn power(&mut self, reboot: bool) {
        let key = if reboot {
            "system.reboot"
        } else {
            "system.power_off"
        };
        if self.services.is_none() {
            self.connect().await;
        }
        tracing::warn!("{key}: asking logind");
        let result = match self.bus() {
            Ok(bus) if reboot => bus.reboot().await,
            Ok(bus) => bus.power_off().await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!("{key} failed: {e}");
            self.error = format!("{key}: {e}");
            let report = HostReport::ApplyFailed {
                key: key.to_owned(),
                reason: e.to_string(),
            };
            let _ = self.room.host(report).await;
            self.refresh().await;
        }
    }

    /// Reads `status.host` back from the services and reports it when it changed.
    async fn refresh(&mut self) {
        let mut status = HostStatus::unknown();
        match &self.services {
            Some(services) => {
                let missing = services.read(&mut status).await;
                status.available = missing.is_empty();
                status.unavailable_reason = missing.join("; ");
            }
            None => {
                status.unavailable_reason = HostError::NoBus(self.bus_error.clone()).to_string();
            }
        }
        status.addresses = tokio::task::spawn_blocking(global_addresses)
            .await
            .unwrap_or_default();
        status.error = self.error.clone();
        if self.reported.as_ref() != Some(&status) {
            if self.room.host_report(status.clone()).await.is_err() {
                return;
            }
            self.reported = Some(status);
        }
    }
}

/// Puts `key` of `applied` back to what was applied before, after it failed to apply.
fn forget_applied(applied: &mut HostConfig, before: &HostConfig, key: &str) {
    match key {
        "host.hostname" => applied.hostname = before.hostname.clone(),
        "host.timezone" => applied.timezone = before.timezone.clone(),
        "host.ntp" => applied.ntp = before.ntp,
        "host.network" | "host.ntp_servers" => {
            applied.network = before.network.clone();
            applied.ntp_servers = before.ntp_servers.clone();
        }
        "host.nightly_reboot" => applied.nightly_reboot = before.nightly_reboot.clone(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_failed_stays_different_from_the_configuration() {
        let before = HostConfig::default();
        let wanted = HostConfig {
            hostname: Some("room-4-12".to_owned()),
            timezone: Some("Europe/Berlin".to_owned()),
            ntp_servers: vec!["192.0.2.123".to_owned()],
            ..HostConfig::default()
        };
        let mut applied = wanted.clone();
        forget_applied(&mut applied, &before, "host.hostname");
        forget_applied(&mut applied, &before, "host.ntp_servers");
        assert_eq!(applied.hostname, None, "tried again at the next tick");
        assert!(
            applied.ntp_servers.is_empty(),
            "tried again at the next tick"
        );
        assert_eq!(applied.timezone, wanted.timezone, "applied, left alone");
        assert_ne!(applied, wanted);
    }
}
