//! The update worker: the one owner of `status.update` (the core publishes what it reports).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::error::UpdateError;
use crate::os_release::OsRelease;
use crate::rauc::{InstallerProxy, slot_text};
use crate::{bundle, floor};
use roomd_base::sync::lock;
use roomd_core::{EngineState, Notification, RoomEvent, RoomHandle};
use roomd_model::config::UpdateConfig;
use roomd_model::update::{
    RolledBack, UpdateProgress, UpdateState, UpdateStatus, compare_versions,
};

/// Name of the staging folder inside `system.state_dir`.
pub const STAGING_DIR: &str = "update";
/// The persisted security floor, inside the staging folder (a factory reset keeps it: the
/// floor must never go down).
pub const FLOOR_FILE: &str = "floor";
/// Progress of a transfer is reported at most once per this many bytes.
const REPORT_EVERY_BYTES: u64 = 1024 * 1024;

/// What the worker starts from.
pub struct UpdateSetup {
    /// The room core, which publishes `status.update`.
    pub room: RoomHandle,
    /// `[update]` as loaded at start.
    pub config: UpdateConfig,
    /// `system.state_dir`: bundles are staged and the floor kept in its `update/` folder.
    pub state_dir: PathBuf,
    /// Where the API listens: part of the health check is that it accepts connections.
    pub api_listen: Vec<SocketAddr>,
}

/// The way into the update worker (the API hands it bundles). Cheap to clone.
#[derive(Clone)]
pub struct UpdateHandle {
    inner: Arc<Inner>,
}

struct Inner {
    room: RoomHandle,
    staging_dir: PathBuf,
    status: Mutex<UpdateStatus>,
    status_tx: watch::Sender<UpdateStatus>,
    rauc: OnceLock<InstallerProxy<'static>>,
    /// RAUC's compatible of this device, read at start.
    compatible: OnceLock<String>,
    /// One update at a time: set from [`UpdateHandle::begin`] until the install has ended.
    busy: AtomicBool,
}

/// Starts the worker: reads what image runs, reaches RAUC, raises the floor, detects a
/// rollback, marks the booted slot good once the room is healthy, and follows `update.reboot`.
pub fn start(setup: UpdateSetup) -> (UpdateHandle, JoinHandle<()>) {
    let (status_tx, status_rx) = watch::channel(UpdateStatus::unknown());
    let inner = Arc::new(Inner {
        room: setup.room.clone(),
        staging_dir: setup.state_dir.join(STAGING_DIR),
        status: Mutex::new(UpdateStatus::unknown()),
        status_tx,
        rauc: OnceLock::new(),
        compatible: OnceLock::new(),
        busy: AtomicBool::new(false),
    });
    // Subscribed before anything can be published: no `update.reboot` is missed.
    let events = setup.room.subscribe();
    let handle = UpdateHandle {
        inner: inner.clone(),
    };
    let task = tokio::spawn(async move {
        let forward = tokio::spawn(forward_status(setup.room.clone(), status_rx));
        inner.init(&setup.config).await;
        let health = inner.rauc.get().is_some().then(|| {
            let inner = inner.clone();
            let timeout = Duration::from_secs(setup.config.health_timeout_s.into());
            tokio::spawn(async move { inner.mark_when_healthy(&setup.api_listen, timeout).await })
        });
        follow_reboot_requests(&inner, events).await;
        if let Some(health) = health {
            health.abort();
        }
        forward.abort();
    });
    (handle, task)
}

/// Sends each new `status.update` to the core; a burst of changes goes as its latest value.
async fn forward_status(room: RoomHandle, mut status: watch::Receiver<UpdateStatus>) {
    loop {
        let current = status.borrow_and_update().clone();
        if room.update_report(current).await.is_err() || status.changed().await.is_err() {
            break;
        }
    }
}

/// Follows `update.reboot` until the core stops (its status channel closes: every room handle,
/// this worker's too, keeps the event channel itself open).
async fn follow_reboot_requests(inner: &Inner, mut events: broadcast::Receiver<Notification>) {
    let mut core = inner.room.watch_status();
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            changed = core.changed() => match changed {
                Ok(()) => continue,
                Err(_) => break,
            },
        };
        match event {
            Ok(Notification::Event(event)) => {
                if let RoomEvent::UpdateRebootRequested { version } = event.event {
                    tracing::warn!("rebooting into the installed update {version}");
                    if let Err(e) = reboot().await {
                        tracing::error!("{e}");
                        inner.update(|s| s.error = e.to_string());
                    }
                }
            }
            Ok(Notification::StatusChanged { .. }) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!("update worker missed {missed} room notifications");
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// Asks logind (system bus) to reboot; the installed slot is RAUC's primary by now.
async fn reboot() -> Result<(), UpdateError> {
    let fail = |e: zbus::Error| UpdateError::Service(format!("logind could not reboot: {e}"));
    let conn = zbus::connection::Builder::system()
        .build()
        .await
        .map_err(fail)?;
    let manager = zbus_systemd::login1::ManagerProxy::new(&conn)
        .await
        .map_err(fail)?;
    manager.reboot(false).await.map_err(fail)
}

impl UpdateHandle {
    /// `status.update` as the worker knows it.
    pub fn status(&self) -> UpdateStatus {
        lock(&self.inner.status).clone()
    }

    /// `status.update` from now on: a caller that must wait for an install to end (the fleet
    /// channel answers only then) waits on this instead of polling.
    pub fn watch(&self) -> watch::Receiver<UpdateStatus> {
        self.inner.status_tx.subscribe()
    }

    /// Starts receiving a bundle of at most `max_bytes` (`total_bytes`: what the sender
    /// announced, if anything). Refused when updates are not available, while another update
    /// runs, or when the announced size is over the limit.
    pub fn begin(&self, max_bytes: u64, total_bytes: Option<u64>) -> Result<Staging, UpdateError> {
        let limit_mib = u32::try_from(max_bytes / (1024 * 1024)).unwrap_or(u32::MAX);
        let status = self.status();
        if status.image_version.is_empty() {
            return Err(UpdateError::NotFirmwareImage(status.unavailable_reason));
        }
        if !status.available {
            return Err(UpdateError::NotAvailable(status.unavailable_reason));
        }
        if self
            .inner
            .busy
            .compare_exchange(false, true, AtomicOrdering::AcqRel, AtomicOrdering::Acquire)
            .is_err()
        {
            return Err(UpdateError::Busy {
                state: self.status().state.as_str(),
            });
        }
        if total_bytes.is_some_and(|total| total > max_bytes) {
            let error = UpdateError::TooLarge { limit_mib };
            self.inner.update(|s| {
                s.state = UpdateState::Failed;
                s.error = error.to_string();
            });
            self.inner.busy.store(false, AtomicOrdering::Release);
            return Err(error);
        }
        let name = format!("bundle-{}", roomd_base::random::token_hex(8));
        let part = self.inner.staging_dir.join(format!("{name}.part"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&part);
        let file = match file {
            Ok(file) => file,
            Err(e) => {
                self.inner.busy.store(false, AtomicOrdering::Release);
                return Err(UpdateError::Staging {
                    path: part.display().to_string(),
                    reason: e.to_string(),
                });
            }
        };
        self.inner.update(|s| {
            s.state = UpdateState::Downloading;
            s.progress = UpdateProgress {
                bytes: 0,
                total_bytes,
                percent: total_bytes.map(|_| 0),
                message: String::new(),
            };
            s.version.clear();
            s.error.clear();
            s.needs_reboot = false;
        });
        Ok(Staging {
            inner: self.inner.clone(),
            file: Some(file),
            part,
            bundle: self.inner.staging_dir.join(format!("{name}.raucb")),
            bytes: 0,
            reported: 0,
            max_bytes,
            limit_mib,
            total_bytes,
            failure: None,
            handed_over: false,
        })
    }
}

/// A bundle being received into the staging folder. Dropped before [`Staging::finish`], the
/// partial file is removed and the update fails.
pub struct Staging {
    inner: Arc<Inner>,
    file: Option<File>,
    part: PathBuf,
    bundle: PathBuf,
    bytes: u64,
    reported: u64,
    max_bytes: u64,
    limit_mib: u32,
    total_bytes: Option<u64>,
    failure: Option<String>,
    handed_over: bool,
}

impl Staging {
    /// Appends `data`; refuses to go past the size limit.
    pub fn write_chunk(&mut self, data: &[u8]) -> Result<(), UpdateError> {
        let bytes = self.bytes + data.len() as u64;
        if bytes > self.max_bytes {
            let error = UpdateError::TooLarge {
                limit_mib: self.limit_mib,
            };
            self.failure = Some(error.to_string());
            return Err(error);
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| staging_error(&self.part, "closed"))?;
        if let Err(e) = file.write_all(data) {
            let error = staging_error(&self.part, &e.to_string());
            self.failure = Some(error.to_string());
            return Err(error);
        }
        self.bytes = bytes;
        if self.bytes - self.reported >= REPORT_EVERY_BYTES {
            self.reported = self.bytes;
            let (bytes, total) = (self.bytes, self.total_bytes);
            self.inner.update(|s| {
                s.progress.bytes = bytes;
                s.progress.percent = total
                    .filter(|&t| t > 0)
                    .map(|t| u8::try_from(bytes.min(t) * 100 / t).unwrap_or(100));
            });
        }
        Ok(())
    }

    /// The size the sender announced, when it was not known at [`UpdateHandle::begin`].
    pub fn set_total(&mut self, total_bytes: Option<u64>) {
        self.total_bytes = total_bytes;
        self.inner.update(|s| {
            s.progress.total_bytes = total_bytes;
            s.progress.percent = total_bytes.map(|_| 0);
        });
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Gives up with `reason` as the update's error (e.g. the download failed).
    pub fn fail(mut self, reason: impl Into<String>) {
        self.failure = Some(reason.into());
    }

    /// The bundle is complete: it is synced and renamed into place, checked (structure,
    /// signature and compatible through RAUC's `Info`, the security floor) and handed to RAUC,
    /// which installs it into the other slot. Returns the status once RAUC has started.
    pub async fn finish(mut self) -> Result<UpdateStatus, UpdateError> {
        if let Some(total) = self.total_bytes.filter(|&t| t != self.bytes) {
            let error = UpdateError::Incomplete(format!(
                "{} of {total} announced bytes arrived",
                self.bytes
            ));
            self.failure = Some(error.to_string());
            return Err(error);
        }
        if let Some(Err(e)) = self.file.take().map(|file| file.sync_all()) {
            let error = staging_error(&self.part, &e.to_string());
            self.failure = Some(error.to_string());
            return Err(error);
        }
        if let Err(e) = fs::rename(&self.part, &self.bundle)
            .and_then(|()| File::open(&self.inner.staging_dir)?.sync_all())
        {
            let error = staging_error(&self.bundle, &e.to_string());
            self.failure = Some(error.to_string());
            return Err(error);
        }
        let bytes = self.bytes;
        self.inner.update(|s| {
            s.progress.bytes = bytes;
            s.progress.percent = Some(100);
        });
        // From here on the install owns the file and the busy flag.
        self.handed_over = true;
        self.inner.clone().install(self.bundle.clone()).await
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.handed_over {
            return;
        }
        drop(self.file.take());
        let _ = fs::remove_file(&self.part);
        let _ = fs::remove_file(&self.bundle);
        let reason = self.failure.take().unwrap_or_else(|| {
            format!(
                "the bundle did not arrive whole: the transfer stopped after {} bytes",
                self.bytes
            )
        });
        tracing::warn!("update failed: {reason}");
        self.inner.update(|s| {
            s.state = UpdateState::Failed;
            s.error = reason;
        });
        self.inner.busy.store(false, AtomicOrdering::Release);
    }
}

fn staging_error(path: &Path, reason: &str) -> UpdateError {
    UpdateError::Staging {
        path: path.display().to_string(),
        reason: reason.to_owned(),
    }
}

impl Inner {
    fn update(&self, change: impl FnOnce(&mut UpdateStatus)) {
        let mut status = lock(&self.status);
        change(&mut status);
        self.status_tx.send_replace(status.clone());
    }

    /// Reads the image and RAUC; leaves `status.update` saying whether updates are available
    /// and why not.
    async fn init(&self, config: &UpdateConfig) {
        let mut status = UpdateStatus::unknown();
        let reason = self.check(config, &mut status).await;
        status.available = reason.is_none();
        status.unavailable_reason = reason.unwrap_or_default();
        if !status.available {
            tracing::info!("firmware updates: {}", status.unavailable_reason);
        }
        self.update(|s| *s = status);
    }

    async fn check(&self, config: &UpdateConfig, status: &mut UpdateStatus) -> Option<String> {
        let os_release = Path::new(&config.os_release);
        let release = match OsRelease::read(os_release) {
            Ok(release) => release,
            Err(e) => return Some(format!("cannot read {}: {e}", os_release.display())),
        };
        status.image_version = release.image_version.clone();
        if release.image_version.is_empty() {
            return Some(format!(
                "this system is not a roomd firmware image: {} has no IMAGE_VERSION",
                os_release.display()
            ));
        }
        if let Err(e) = prepare_staging(&self.staging_dir) {
            return Some(e);
        }
        match floor::raise(&self.staging_dir.join(FLOOR_FILE), &release.security_floor) {
            Ok(floor) => status.security_floor = floor,
            Err(e) => return Some(e),
        }
        let installer = match connect(&config.rauc_bus).await {
            Ok(installer) => installer,
            Err(e) => return Some(e),
        };
        let compatible = match installer.compatible().await {
            Ok(compatible) => compatible,
            Err(e) => {
                return Some(format!(
                    "RAUC does not answer on the {} D-Bus: {e}",
                    config.rauc_bus
                ));
            }
        };
        status.booted_slot = installer.boot_slot().await.unwrap_or_default();
        match installer.get_slot_status().await {
            Ok(slots) => status.rolled_back = rolled_back(&slots, &release.image_version),
            Err(e) => tracing::warn!("RAUC's slot status cannot be read: {e}"),
        }
        if let Some(rolled_back) = &status.rolled_back {
            tracing::warn!(
                "the boot loader rolled back: {} did not become good, running {} again",
                rolled_back.from,
                rolled_back.to
            );
        }
        tracing::info!(
            "firmware image {} on slot {} ({compatible}), security floor {}",
            release.image_version,
            status.booted_slot,
            if status.security_floor.is_empty() {
                "none"
            } else {
                &status.security_floor
            }
        );
        let _ = self.compatible.set(compatible);
        let _ = self.rauc.set(installer);
        None
    }

    /// Checks the staged bundle and has RAUC install it; on a refusal the file is removed,
    /// `status.update` says why and the running slot is untouched.
    async fn install(self: Arc<Self>, path: PathBuf) -> Result<UpdateStatus, UpdateError> {
        match self.clone().check_and_start(&path).await {
            Ok(()) => Ok(lock(&self.status).clone()),
            Err(error) => {
                self.end(&path, Err(error.to_string()));
                Err(error)
            }
        }
    }

    async fn check_and_start(self: Arc<Self>, path: &Path) -> Result<(), UpdateError> {
        self.update(|s| {
            s.state = UpdateState::Installing;
            s.progress = UpdateProgress {
                percent: Some(0),
                message: "checking the bundle".to_owned(),
                ..s.progress.clone()
            };
        });
        let to_check = path.to_owned();
        tokio::task::spawn_blocking(move || bundle::check_structure(&to_check))
            .await
            .map_err(|e| UpdateError::Service(format!("bundle check failed: {e}")))?
            .map_err(UpdateError::Corrupt)?;
        let installer = self
            .rauc
            .get()
            .ok_or_else(|| UpdateError::NotAvailable("RAUC is not reachable".to_owned()))?
            .clone();
        let text = path.display().to_string();
        let (compatible, version) = installer.info(&text).await.map_err(|e| match e {
            // RAUC answers every bundle it cannot verify with one error; the structure was
            // checked above, so what is left is the signature.
            zbus::Error::MethodError(..) => UpdateError::BadSignature,
            other => UpdateError::Service(format!("RAUC's Info failed: {other}")),
        })?;
        let device = self.compatible.get().cloned().unwrap_or_default();
        if compatible != device {
            return Err(UpdateError::WrongCompatible {
                bundle: compatible,
                device,
            });
        }
        let floor = lock(&self.status).security_floor.clone();
        if !floor.is_empty() && compare_versions(&version, &floor) == Ordering::Less {
            return Err(UpdateError::BelowFloor { version, floor });
        }
        self.update(|s| {
            s.version = version.clone();
            s.progress.message = "handing the bundle to RAUC".to_owned();
        });
        let service = |e: zbus::Error| UpdateError::Service(format!("RAUC: {e}"));
        // Subscribed before the install starts, so that a fast install's end is not missed.
        let completed = installer.receive_completed().await.map_err(service)?;
        let progress = installer.receive_progress_changed().await;
        // RAUC leaving the bus ends the install too (no Completed would ever come).
        let owner = installer
            .inner()
            .receive_owner_changed()
            .await
            .map_err(service)?;
        installer
            .install_bundle(&text, HashMap::new())
            .await
            .map_err(service)?;
        tracing::info!("RAUC installs {version} from {text}");
        let inner = self.clone();
        let path = path.to_owned();
        tokio::spawn(async move {
            let result = follow_install(&inner, &installer, completed, progress, owner).await;
            inner.end(&path, result);
        });
        Ok(())
    }

    /// The install has ended (or was refused): the staged file goes, the status says how it
    /// ended, and the next update may start.
    fn end(&self, path: &Path, result: Result<(), String>) {
        let _ = fs::remove_file(path);
        match result {
            Ok(()) => {
                self.update(|s| {
                    s.state = UpdateState::Installed;
                    s.needs_reboot = true;
                    s.progress.percent = Some(100);
                    s.error.clear();
                });
                tracing::info!("update installed; it runs after update.reboot");
            }
            Err(reason) => {
                tracing::warn!("update failed: {reason}");
                self.update(|s| {
                    s.state = UpdateState::Failed;
                    s.error = reason;
                });
            }
        }
        self.busy.store(false, AtomicOrdering::Release);
    }

    async fn mark_when_healthy(&self, api_listen: &[SocketAddr], timeout: Duration) {
        let Some(installer) = self.rauc.get() else {
            return;
        };
        if tokio::time::timeout(timeout, healthy(&self.room, api_listen))
            .await
            .is_err()
        {
            tracing::error!(
                "the room did not become healthy within {} s (update.health_timeout_s): the \
                 booted slot is not marked good, and the boot loader falls back after its tries",
                timeout.as_secs()
            );
            return;
        }
        match installer.mark("good", "booted").await {
            Ok((slot, message)) => {
                tracing::info!("healthy: RAUC marked {slot} good ({message})");
                self.update(|s| s.marked_good = true);
            }
            Err(e) => tracing::error!("RAUC could not mark the booted slot good: {e}"),
        }
    }
}

/// Waits until the core answers, the API accepts connections and the media engine runs.
async fn healthy(room: &RoomHandle, api_listen: &[SocketAddr]) {
    while room.ping().await.is_err() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for addr in api_listen {
        let target = SocketAddr::new(reachable(addr.ip()), addr.port());
        while tokio::net::TcpStream::connect(target).await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut status = room.watch_status();
    while status.borrow_and_update().status.system.media.state != EngineState::Running {
        if status.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A wildcard listen address is reached on loopback.
fn reachable(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

async fn follow_install(
    inner: &Inner,
    installer: &InstallerProxy<'static>,
    mut completed: crate::rauc::CompletedStream,
    mut progress: zbus::proxy::PropertyStream<'static, (i32, String, i32)>,
    mut owner: zbus::proxy::OwnerChangedStream<'static>,
) -> Result<(), String> {
    let went_away = || Err("RAUC left the D-Bus during the install".to_owned());
    let code = loop {
        tokio::select! {
            signal = completed.next() => match signal {
                Some(signal) => break signal.args().map(|a| a.result).unwrap_or(-1),
                None => return went_away(),
            },
            Some(None) = owner.next() => return went_away(),
            Some(change) = progress.next() => {
                if let Ok((percent, message, _depth)) = change.get().await {
                    inner.update(|s| {
                        s.progress.percent = u8::try_from(percent.clamp(0, 100)).ok();
                        s.progress.message = message;
                    });
                }
            }
        }
    };
    if code == 0 {
        return Ok(());
    }
    let last = installer.last_error().await.unwrap_or_default();
    Err(format!("RAUC could not install the bundle: {last}"))
}

async fn connect(bus: &str) -> Result<InstallerProxy<'static>, String> {
    let builder = if bus == "system" {
        zbus::connection::Builder::system()
    } else {
        zbus::connection::Builder::address(bus)
    };
    let fail = |e: zbus::Error| format!("cannot reach RAUC on the {bus} D-Bus: {e}");
    let conn = builder.build().await.map_err(fail)?;
    InstallerProxy::new(&conn).await.map_err(fail)
}

fn prepare_staging(dir: &Path) -> Result<(), String> {
    let fail =
        |e: std::io::Error| format!("cannot prepare the staging folder {}: {e}", dir.display());
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(fail)?;
    // What an earlier run left behind (power cut mid-upload) is no use now.
    for entry in fs::read_dir(dir).map_err(fail)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("bundle-") {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// The rollback RAUC's slot status shows: the slot installed last is not the one booted and
/// its boot status is bad.
fn rolled_back(slots: &[crate::rauc::SlotStatus], running: &str) -> Option<RolledBack> {
    let newest = slots
        .iter()
        .filter(|(_, s)| !slot_text(s, "installed.timestamp").is_empty())
        .max_by(|(_, a), (_, b)| {
            slot_text(a, "installed.timestamp").cmp(&slot_text(b, "installed.timestamp"))
        })?;
    let slot = &newest.1;
    (slot_text(slot, "state") != "booted" && slot_text(slot, "boot-status") == "bad").then(|| {
        RolledBack {
            from: slot_text(slot, "bundle.version"),
            to: running.to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::{OwnedVariant, Variant};

    fn slot(name: &str, fields: &[(&str, &str)]) -> crate::rauc::SlotStatus {
        let map = fields
            .iter()
            .map(|(k, v)| {
                let value = OwnedVariant::try_from(Variant::from(*v)).expect("a string variant");
                ((*k).to_owned(), value)
            })
            .collect();
        (name.to_owned(), map)
    }

    #[test]
    fn a_rollback_is_the_newest_slot_bad_and_not_booted() {
        let booted = slot("rootfs.0", &[("state", "booted"), ("boot-status", "good")]);
        let newer_bad = slot(
            "rootfs.1",
            &[
                ("state", "inactive"),
                ("boot-status", "bad"),
                ("bundle.version", "1.1"),
                ("installed.timestamp", "2026-12-01T10:00:00Z"),
            ],
        );
        assert_eq!(
            rolled_back(&[booted.clone(), newer_bad.clone()], "1.0"),
            Some(RolledBack {
                from: "1.1".into(),
                to: "1.0".into()
            })
        );
        // The newest slot is the booted one: the update worked.
        let booted_newest = slot(
            "rootfs.0",
            &[
                ("state", "booted"),
                ("boot-status", "good"),
                ("installed.timestamp", "2026-12-02T10:00:00Z"),
            ],
        );
        assert_eq!(rolled_back(&[booted_newest, newer_bad], "1.1"), None);
        // Installed and not booted yet, but not bad: waiting for the reboot, no rollback.
        let pending = slot(
            "rootfs.1",
            &[
                ("state", "inactive"),
                ("boot-status", "good"),
                ("installed.timestamp", "2026-12-01T10:00:00Z"),
            ],
        );
        assert_eq!(rolled_back(&[booted, pending], "1.0"), None);
    }
}
