//! hostnamed, timedated, timesyncd, networkd and logind on the system bus.
//!
//! Properties are read uncached every time (`NTPSynchronized` sends no change signal, and the
//! status must be what the services say now). Every call has a deadline: a service that hangs
//! makes a setting fail, not the worker.

use std::time::Duration;

use jiff::Timestamp;
use zbus::names::BusName;
use zbus::proxy::CacheProperties;
use zbus_systemd::{hostname1, login1, network1, timedate1, timesync1};

use crate::error::HostError;
use roomd_model::host::HostStatus;

/// How long a single D-Bus call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// timesyncd's bus name: read only when it runs (asking would start it).
const TIMESYNC_NAME: &str = "org.freedesktop.timesync1";

/// A connection to the system bus.
pub(crate) struct Services {
    conn: zbus::Connection,
}

macro_rules! proxy {
    ($conn:expr, $proxy:ty, $service:literal) => {
        <$proxy>::builder($conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(HostError::service($service))
    };
}

impl Services {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, or the standard socket).
    pub(crate) async fn connect() -> Result<Services, HostError> {
        let build = zbus::connection::Builder::system()
            .method_timeout(CALL_TIMEOUT)
            .build();
        let conn = tokio::time::timeout(CALL_TIMEOUT, build)
            .await
            .map_err(|_| HostError::NoBus("no answer within 10 s".to_owned()))?
            .map_err(|e| HostError::NoBus(e.to_string()))?;
        Ok(Services { conn })
    }

    async fn hostnamed(&self) -> Result<hostname1::HostnamedProxy<'_>, HostError> {
        proxy!(&self.conn, hostname1::HostnamedProxy<'_>, "hostnamed")
    }

    async fn timedated(&self) -> Result<timedate1::TimedatedProxy<'_>, HostError> {
        proxy!(&self.conn, timedate1::TimedatedProxy<'_>, "timedated")
    }

    async fn networkd(&self) -> Result<network1::ManagerProxy<'_>, HostError> {
        proxy!(&self.conn, network1::ManagerProxy<'_>, "networkd")
    }

    async fn logind(&self) -> Result<login1::ManagerProxy<'_>, HostError> {
        proxy!(&self.conn, login1::ManagerProxy<'_>, "logind")
    }

    /// hostnamed `SetStaticHostname`.
    pub(crate) async fn set_hostname(&self, name: &str) -> Result<(), HostError> {
        let hostnamed = self.hostnamed().await?;
        hostnamed
            .set_static_hostname(name.to_owned(), false)
            .await
            .map_err(HostError::service("hostnamed"))
    }

    /// timedated `SetTimezone`.
    pub(crate) async fn set_timezone(&self, zone: &str) -> Result<(), HostError> {
        let timedated = self.timedated().await?;
        timedated
            .set_timezone(zone.to_owned(), false)
            .await
            .map_err(HostError::service("timedated"))
    }

    /// timedated `SetNTP` (starts or stops timesyncd).
    pub(crate) async fn set_ntp(&self, on: bool) -> Result<(), HostError> {
        let timedated = self.timedated().await?;
        timedated
            .set_ntp(on, false)
            .await
            .map_err(HostError::service("timedated"))
    }

    /// networkd `Reload`: it reads its files again and reconfigures the links.
    pub(crate) async fn reload_network(&self) -> Result<(), HostError> {
        let networkd = self.networkd().await?;
        networkd
            .reload()
            .await
            .map_err(HostError::service("networkd"))
    }

    /// logind `Reboot(false)`.
    pub(crate) async fn reboot(&self) -> Result<(), HostError> {
        let logind = self.logind().await?;
        logind
            .reboot(false)
            .await
            .map_err(HostError::service("logind"))
    }

    /// logind `PowerOff(false)`.
    pub(crate) async fn power_off(&self) -> Result<(), HostError> {
        let logind = self.logind().await?;
        logind
            .power_off(false)
            .await
            .map_err(HostError::service("logind"))
    }

    /// logind `ScheduleShutdown("reboot", at)`; replaces what was scheduled.
    pub(crate) async fn schedule_reboot(&self, at: Timestamp) -> Result<(), HostError> {
        let usec = u64::try_from(at.as_microsecond())
            .map_err(|_| HostError::Time(format!("{at} is before 1970")))?;
        let logind = self.logind().await?;
        logind
            .schedule_shutdown("reboot".to_owned(), usec)
            .await
            .map_err(HostError::service("logind"))
    }

    /// logind `CancelScheduledShutdown`, but only when what is scheduled is a reboot (a
    /// power-off someone else scheduled stays).
    pub(crate) async fn cancel_scheduled_reboot(&self) -> Result<(), HostError> {
        let logind = self.logind().await?;
        let (kind, _) = logind
            .scheduled_shutdown()
            .await
            .map_err(HostError::service("logind"))?;
        if is_reboot(&kind) {
            logind
                .cancel_scheduled_shutdown()
                .await
                .map_err(HostError::service("logind"))?;
        }
        Ok(())
    }

    /// Reads what the services say into `status`; returns the services that could not be read
    /// and why (empty: all of them answered).
    pub(crate) async fn read(&self, status: &mut HostStatus) -> Vec<String> {
        let mut missing = Vec::new();
        match self.read_hostnamed(status).await {
            Ok(()) => {}
            Err(e) => missing.push(e.to_string()),
        }
        match self.read_timedated(status).await {
            Ok(()) => {}
            Err(e) => missing.push(e.to_string()),
        }
        match self.read_networkd().await {
            Ok(state) => status.network_state = state,
            Err(e) => {
                status.network_state.clear();
                missing.push(e.to_string());
            }
        }
        match self.read_logind().await {
            Ok(at) => status.nightly_reboot_at = at,
            Err(e) => {
                status.nightly_reboot_at = None;
                missing.push(e.to_string());
            }
        }
        status.ntp_servers = self.read_timesyncd().await.unwrap_or_default();
        missing
    }

    async fn read_hostnamed(&self, status: &mut HostStatus) -> Result<(), HostError> {
        let hostnamed = self.hostnamed().await?;
        let fail = HostError::service("hostnamed");
        let name = hostnamed.static_hostname().await.map_err(&fail)?;
        status.hostname = if name.is_empty() {
            hostnamed.hostname().await.map_err(&fail)?
        } else {
            name
        };
        Ok(())
    }

    async fn read_timedated(&self, status: &mut HostStatus) -> Result<(), HostError> {
        let timedated = self.timedated().await?;
        let fail = HostError::service("timedated");
        status.timezone = timedated.timezone().await.map_err(&fail)?;
        status.ntp_enabled = timedated.ntp().await.map_err(&fail)?;
        status.ntp_synchronized = timedated.ntp_synchronized().await.map_err(&fail)?;
        Ok(())
    }

    async fn read_networkd(&self) -> Result<String, HostError> {
        let networkd = self.networkd().await?;
        networkd
            .operational_state()
            .await
            .map_err(HostError::service("networkd"))
    }

    /// RFC 3339 time of logind's scheduled reboot, if one is.
    async fn read_logind(&self) -> Result<Option<String>, HostError> {
        let logind = self.logind().await?;
        let (kind, usec) = logind
            .scheduled_shutdown()
            .await
            .map_err(HostError::service("logind"))?;
        Ok(scheduled_reboot_at(&kind, usec))
    }

    /// timesyncd's link and system servers, each once; `None` when timesyncd does not run.
    async fn read_timesyncd(&self) -> Option<Vec<String>> {
        let bus = zbus::fdo::DBusProxy::new(&self.conn).await.ok()?;
        let name = BusName::try_from(TIMESYNC_NAME).ok()?;
        if !bus.name_has_owner(name).await.ok()? {
            return None;
        }
        let timesyncd = timesync1::ManagerProxy::builder(&self.conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .ok()?;
        let mut servers = timesyncd.link_ntp_servers().await.unwrap_or_default();
        servers.extend(timesyncd.system_ntp_servers().await.unwrap_or_default());
        Some(dedup(servers))
    }
}

fn is_reboot(kind: &str) -> bool {
    matches!(kind, "reboot" | "dry-reboot")
}

/// logind's `ScheduledShutdown` as `status.host.nightly_reboot_at`: RFC 3339 UTC when a reboot
/// is scheduled, else `None` (nothing, or a power-off).
pub(crate) fn scheduled_reboot_at(kind: &str, usec: u64) -> Option<String> {
    if !is_reboot(kind) || usec == 0 {
        return None;
    }
    let usec = i64::try_from(usec).ok()?;
    Timestamp::from_microsecond(usec)
        .ok()
        .map(|t| t.to_string())
}

/// Keeps the first of each entry, in order.
fn dedup(entries: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(entries.len());
    for entry in entries {
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_reboot_is_shown_in_utc() {
        let usec = 1_796_610_600_000_000; // 2026-12-07T02:30:00Z
        assert_eq!(
            scheduled_reboot_at("reboot", usec).as_deref(),
            Some("2026-12-07T02:30:00Z")
        );
        assert_eq!(scheduled_reboot_at("poweroff", usec), None);
        assert_eq!(scheduled_reboot_at("", 0), None);
    }

    #[test]
    fn ntp_servers_are_listed_once() {
        let servers = ["a", "b", "a", "c", "b"].map(str::to_owned).to_vec();
        assert_eq!(dedup(servers), ["a", "b", "c"]);
    }
}
