//! Wiring: from a configuration to a running room, and back down on SIGTERM.
//!
//! Order matters: everything that can fail on bad state (state directory, TLS key, accounts,
//! audit log, binding the listen addresses) happens before systemd is told READY=1, so that a
//! broken device fails its start visibly instead of half-running.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::factory_reset::{self, FactoryResetError};
use crate::service;
use roomd_api::accounts::{Accounts, AccountsError, AccountsPolicy};
use roomd_api::audit::{AUDIT_FILE, AuditError, AuditLog, housekeeping};
use roomd_api::logging::RecentLog;
use roomd_api::{ApiState, ServeError};
use roomd_core::{CoreSetup, MediaEngineStatus, MediaReport, Notification, RoomEvent};
use roomd_hardware::Profile;
use roomd_identity::secrets::{KeyProtection, SecretStore, SecretsError};
use roomd_identity::tls::{self, DeviceIdentity, DeviceKey, TlsError};
use roomd_media::{DisplaySnapshots, EngineSetup, MediaTaps};
use roomd_model::config::{Config, ConfigError};

/// Where the configuration is read from when no path is given; the file may be absent there
/// (see [`load_config`]).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/roomd/roomd.toml";

/// Why the daemon could not start, or stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration file cannot be read, is invalid, or cannot be rewritten once its
    /// secrets are sealed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state directory cannot be created or restricted to mode 0700.
    #[error("cannot prepare the state directory {path} (system.state_dir): {source}")]
    StateDir {
        /// The directory (`system.state_dir`).
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The device identity (key, certificate) or the API's TLS configuration cannot be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The account store cannot be opened.
    #[error("accounts: {0}")]
    Accounts(#[from] AccountsError),
    /// The audit log cannot be opened.
    #[error("audit log: {0}")]
    Audit(#[from] AuditError),
    /// The sealed secret store cannot be opened, or a secret from the configuration file cannot
    /// be stored in it.
    #[error("secret store: {0}")]
    Secrets(#[from] SecretsError),
    /// The API server cannot be set up: a listen address cannot be bound, or its TLS fails.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The HTTPS server stopped with an error while running.
    #[error("the HTTPS server failed: {0}")]
    Server(std::io::Error),
    /// The SIGTERM/SIGINT handlers cannot be installed.
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    /// A factory reset was asked for (the marker exists) but could not be carried out.
    #[error(transparent)]
    FactoryReset(#[from] FactoryResetError),
}

/// How [`run`] ended without a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM or SIGINT: roomd exits.
    Stopped,
    /// `system.factory_reset` wrote its marker: roomd re-executes itself (same process, same
    /// arguments), and the new start wipes the state before it opens anything.
    Restart,
}

/// Loads the configuration. A missing file is an error, except at the default path, where a
/// device without a configuration file starts with the defaults (and the file is created on the
/// first change made through the API).
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    if path == Path::new(DEFAULT_CONFIG_PATH) && !path.exists() {
        tracing::warn!(
            "{DEFAULT_CONFIG_PATH} does not exist: starting with the default configuration"
        );
        return Ok(Config::default());
    }
    Config::load(path)
}

/// Overrides where roomd writes its networkd file, for tests only: the tests run roomd on
/// machines whose `/run/systemd/network` is not theirs. Not a configuration key, so no API
/// caller can point the file elsewhere.
pub const NETWORK_DIR_ENV: &str = "ROOMD_NETWORK_DIR";

/// `/run/systemd/network`, or what [`NETWORK_DIR_ENV`] says.
fn network_dir() -> PathBuf {
    std::env::var_os(NETWORK_DIR_ENV)
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(roomd_system::DEFAULT_NETWORK_DIR))
}

/// Runs the room until SIGTERM or SIGINT, or until a factory reset asks for a restart, on the
/// hardware `profile` describes. `recent_log` is the buffer [`roomd_api::logging::init`] fills;
/// the API serves it. A factory-reset marker must have been dealt with before
/// ([`factory_reset_at_start`]).
pub async fn run(
    config_path: PathBuf,
    mut config: Config,
    profile: Profile,
    recent_log: RecentLog,
) -> Result<Exit, DaemonError> {
    let state_dir = config.system.state_dir.clone();
    prepare_state_dir(&state_dir)?;

    let identity = DeviceIdentity::open(
        &config.identity,
        &state_dir.join("tls"),
        &config.system.name,
        &certificate_names(&config),
    )?;
    let identity_status = identity.status();
    match &identity_status.warning {
        Some(warning) => tracing::warn!("{warning}"),
        None => tracing::info!(
            "device key in the TPM ({}), key SHA-256 {}",
            config.identity.tcti,
            identity_status.key_sha256
        ),
    }
    tracing::info!(
        "API certificate SHA-256 {}",
        identity_status.certificate_sha256
    );
    let secrets = Arc::new(open_secrets(&identity, &state_dir)?);
    seal_new_secrets(&mut config, &secrets, &config_path)?;
    let client_ca =
        (!config.api.client_ca.is_empty()).then(|| PathBuf::from(&config.api.client_ca));
    if client_ca.is_none() && !config.api.client_crl.is_empty() {
        tracing::warn!("api.client_crl is set but api.client_ca is not: no client certificates");
    }
    let client_crls = match config.api.client_crl.as_str() {
        "" => Vec::new(),
        path => tls::load_client_crls(Path::new(path))?,
    };
    let tls = tls::server_config(identity.served(), client_ca.as_deref(), client_crls)?;
    // Checked while the configuration was read; a bad name cannot get here.
    let client_role = client_ca
        .as_ref()
        .and_then(|_| config.api.client_role.parse().ok());

    let accounts = Arc::new(Accounts::open(&state_dir, policy_of(&config))?);
    let audit = Arc::new(AuditLog::open(
        &state_dir.join(AUDIT_FILE),
        housekeeping::settings_of(&config).0,
    )?);

    let (room, core_task) = roomd_core::spawn(CoreSetup {
        config: config.clone(),
        config_path,
        claimed: accounts.is_claimed(),
        identity: identity_status,
    });
    let policy_task = tokio::spawn(follow_account_policy(room.watch_config(), accounts.clone()));
    let audit_task = tokio::spawn(housekeeping::run(audit.clone(), room.watch_config()));
    let gstreamer = report_hardware(&room, &config.system.hardware_profile, &profile).await;
    // Without GStreamer the room still has its API (and says why media is missing in status).
    let (display, taps, media_task) = match gstreamer {
        Ok(()) => {
            let engine = roomd_media::start(EngineSetup {
                room: room.clone(),
                profile,
                claim_code: accounts.claim_code().map(|code| code.expose().to_owned()),
                pairing_code: accounts.pairing_display_code(),
                video_codec: config.video.codec,
            });
            (engine.display, engine.taps, Some(engine.task))
        }
        Err(e) => {
            let mut status = MediaEngineStatus::starting();
            status.state = roomd_core::EngineState::Failed;
            status.detail = format!("GStreamer cannot start: {e}");
            let _ = room.report(MediaReport::Engine(status)).await;
            // Taps with no engine behind them: meetings then fail with a clear "no display".
            (DisplaySnapshots::default(), MediaTaps::default(), None)
        }
    };

    // Subscribed before the API serves: no factory reset asked for through it is missed.
    let reset_requests = room.subscribe();
    // The SIP account ([sip]): registration over TLS with the password from the sealed store,
    // and calls for the meeting engine; without a registrar configured it does not start (and
    // status has no sip branch).
    let sip = roomd_sip::start(roomd_sip::SipSetup {
        room: room.clone(),
        config: config.sip.clone(),
        password: sip_password(&config, &secrets),
    });
    let sip_calls = sip
        .as_ref()
        .and_then(|account| account.phone.clone())
        .map(|phone| phone as Arc<dyn roomd_meetings::SipCalls>);
    let (meetings, meeting_task) =
        roomd_meetings::start(room.clone(), taps, secrets.clone(), sip_calls);
    let (updates, update_task) = roomd_update::start(roomd_update::UpdateSetup {
        room: room.clone(),
        config: config.update.clone(),
        state_dir: state_dir.clone(),
        api_listen: config.api.listen.clone(),
    });

    // The box's own settings ([host]) go to systemd's services over the system bus; without
    // them roomd runs on and says so in status.host.
    let host_task = roomd_system::start(roomd_system::HostSetup {
        room: room.clone(),
        network_dir: network_dir(),
    });

    // Local programs (a touch panel's bridge, a room-control system) reach the room over
    // D-Bus; without the bus roomd runs on and says so in status.system.dbus.
    let dbus_task = roomd_dbus::start(roomd_dbus::DbusSetup {
        room: room.clone(),
        audit: audit.clone(),
        bus: config.dbus.bus.clone(),
    });

    // The fleet channel ([fleet]): out to the customer's MQTT broker with the device key;
    // without a broker configured it does not start (and status has no fleet branch).
    let fleet_task = roomd_fleet::start(roomd_fleet::FleetSetup {
        room: room.clone(),
        updates: updates.clone(),
        audit: audit.clone(),
        certificate: identity.served(),
        config: config.fleet.clone(),
    });

    // Zero-touch provisioning ([provisioning]): a signed bundle fetched at the first start,
    // applied through the core's configuration path; off when not configured.
    // End-to-end encrypted meetings: the device key signs for the room.
    meetings.set_identity(roomd_meetings::MeetingIdentity::new(
        identity.key().clone(),
        identity.served(),
    ));
    let identity = Arc::new(identity);
    let (provisioned_tx, provisioned_rx) = tokio::sync::oneshot::channel();
    let provisioning_task = roomd_provisioning::start(roomd_provisioning::ProvisioningSetup {
        room: room.clone(),
        identity: identity.clone(),
        config: config.provisioning.clone(),
        state_dir: state_dir.clone(),
        provisioned: Some(provisioned_tx),
    });
    // A new room that provisioned itself at this start joins the fleet its bundle named (with
    // the certificate the bundle enrolled) without waiting for a restart. The fleet worker
    // reads [fleet] once; when it runs already, the bundle's [fleet] counts from the next start.
    let late_fleet_task = fleet_task.is_none().then(|| {
        tokio::spawn(start_fleet_when_provisioned(
            provisioned_rx,
            room.clone(),
            updates.clone(),
            audit.clone(),
            identity.served(),
        ))
    });

    let state = ApiState {
        room: room.clone(),
        accounts,
        audit: audit.clone(),
        identity,
        client_role,
        display,
        meetings,
        updates,
        logs: recent_log,
        secrets,
    };
    let server = roomd_api::serve(state, tls, &config.api.listen)?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);

    for addr in &config.api.listen {
        tracing::info!("roomd API listening on https://{}", display_addr(addr));
    }
    service::notify_ready("roomd is ready");
    let watchdog = service::watchdog_interval().map(|interval| {
        let room = room.clone();
        tokio::spawn(service::run_watchdog(interval, move || {
            let room = room.clone();
            async move {
                matches!(
                    tokio::time::timeout(interval, room.ping()).await,
                    Ok(Ok(()))
                )
            }
        }))
    });

    let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let marker = state_dir.join(roomd_model::factory_reset::MARKER_FILE);
    let (server_result, exit) = tokio::select! {
        _ = terminate.recv() => { tracing::info!("SIGTERM: shutting down"); (None, Exit::Stopped) }
        _ = interrupt.recv() => { tracing::info!("SIGINT: shutting down"); (None, Exit::Stopped) }
        by = factory_reset_requested(reset_requests, &marker) => {
            tracing::warn!(
                "factory reset asked for by {}: shutting down to restart and wipe",
                if by.is_empty() { "an unnamed caller" } else { by.as_str() }
            );
            (None, Exit::Restart)
        }
        result = server_task => (Some(result), Exit::Stopped),
    };

    match exit {
        Exit::Stopped => service::notify_stopping(),
        Exit::Restart => service::notify_restarting("factory reset: restarting"),
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    policy_task.abort();
    // No more commands from D-Bus; the name is released with the connection.
    dbus_task.abort();
    // No more commands from the fleet; the broker publishes the room's last will ("offline").
    if let Some(task) = fleet_task {
        task.abort();
    }
    // A provisioning attempt in flight is abandoned; its next start tries again.
    if let Some(task) = provisioning_task {
        task.abort();
    }
    if let Some(task) = late_fleet_task {
        task.abort();
    }
    // The SIP endpoint and its TLS connections close with the task.
    if let Some(account) = sip {
        account.task.abort();
    }
    // Finish requests in flight (up to the server's shutdown timeout), then stop the core.
    server_handle.stop(true).await;
    // The last interval's counted 404/405 requests are written, not lost.
    audit_task.abort();
    housekeeping::flush_noise(&audit).await;
    room.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), core_task).await;
    // The update worker ends with the core (an install in progress goes on inside RAUC).
    let _ = tokio::time::timeout(Duration::from_secs(5), update_task).await;
    // So does the host worker (a D-Bus call in flight ends with it).
    let _ = tokio::time::timeout(Duration::from_secs(5), host_task).await;
    // The meeting engine hangs up (leaves Janus, ends WHIP sessions) once the core is gone.
    let _ = tokio::time::timeout(Duration::from_secs(5), meeting_task).await;
    // The engine stops its pipelines once the core is gone.
    if let Some(task) = media_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    match server_result {
        Some(Ok(Err(e))) => Err(DaemonError::Server(e)),
        _ => Ok(exit),
    }
}

/// Starts the fleet worker once provisioning applied a bundle at this start, if the
/// configuration now names a broker; runs until aborted (which stops the fleet worker too).
async fn start_fleet_when_provisioned(
    provisioned: tokio::sync::oneshot::Receiver<()>,
    room: roomd_core::RoomHandle,
    updates: roomd_update::UpdateHandle,
    audit: Arc<AuditLog>,
    certificate: Arc<roomd_identity::tls::ServedCertificate>,
) {
    /// Aborts the fleet worker when this task is aborted (a dropped JoinHandle would not).
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    if provisioned.await.is_err() {
        // Provisioning is off, or applied nothing new at this start.
        return;
    }
    let config = room.config().fleet.clone();
    if config.broker.is_empty() {
        return;
    }
    tracing::info!(
        "the provisioning bundle set fleet.broker {}: starting the fleet channel",
        config.broker
    );
    if let Some(task) = roomd_fleet::start(roomd_fleet::FleetSetup {
        room,
        updates,
        audit,
        certificate,
        config,
    }) {
        let mut task = AbortOnDrop(task);
        let _ = (&mut task.0).await;
    }
}

/// Resolves with the name of who asked once `system.factory_reset` has written its marker (the
/// core publishes the event only after the marker is on the disk). Never resolves when the core
/// stops first.
async fn factory_reset_requested(
    mut events: tokio::sync::broadcast::Receiver<Notification>,
    marker: &Path,
) -> String {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(Notification::Event(event)) => {
                if let RoomEvent::FactoryResetRequested { by } = event.event {
                    return by;
                }
            }
            Ok(Notification::StatusChanged { .. }) => {}
            // Missed notifications may have held the request: the marker tells.
            Err(RecvError::Lagged(_)) => {
                if marker.exists() {
                    return String::new();
                }
            }
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Carries out a factory reset if its marker asks for one, before the configuration is used
/// for anything (the log level included) and before anything opens the state. Returns what was
/// done; log it with [`log_factory_reset`] once logging runs.
pub fn factory_reset_at_start(
    config_path: &Path,
    config: &mut Config,
) -> Result<Option<factory_reset::Done>, DaemonError> {
    Ok(factory_reset::run_if_asked(config_path, config)?)
}

/// The one line that says a factory reset ran, what asked for it and what it did.
pub fn log_factory_reset(done: &factory_reset::Done, config: &Config) {
    tracing::warn!(
        "factory reset: ran on {}; removed {} entries from {} (the device key and the security \
         floor stay) and reset the configuration to the factory state",
        done.trigger,
        done.removed,
        config.system.state_dir.display()
    );
}

/// Probes the devices and elements the profile names and publishes what was found before READY,
/// so that the first status a client reads already says what is missing.
/// Returns whether GStreamer could be initialised.
async fn report_hardware(
    room: &roomd_core::RoomHandle,
    name: &str,
    profile: &Profile,
) -> Result<(), gstreamer::glib::Error> {
    let gstreamer = gstreamer::init();
    if let Err(e) = &gstreamer {
        tracing::error!("GStreamer cannot start: {e}; no media elements are available");
    }
    let element_exists =
        |element: &str| gstreamer.is_ok() && gstreamer::ElementFactory::find(element).is_some();
    let status = roomd_hardware::probe(
        name,
        profile,
        &roomd_hardware::SystemPaths::default(),
        &element_exists,
    );
    for device in status.devices.iter().filter(|d| !d.present) {
        tracing::warn!(
            "hardware profile {name}: {} {} is not usable: {}",
            device.kind,
            device.id,
            device.detail
        );
    }
    let _ = room.report(MediaReport::Hardware(status)).await;
    gstreamer
}

/// Directory of the secret store inside the state directory.
const SECRETS_DIR: &str = "secrets";

/// The secret store, its key sealed by the TPM that holds the device key (under the PCR
/// policy), or a plain key file with the software backend.
fn open_secrets(identity: &DeviceIdentity, state_dir: &Path) -> Result<SecretStore, DaemonError> {
    let protection = match identity.key() {
        DeviceKey::Tpm(key) => KeyProtection::Tpm(key.tpm().clone()),
        DeviceKey::Software(_) => KeyProtection::Software,
    };
    Ok(SecretStore::open(
        &state_dir.join(SECRETS_DIR),
        &protection,
    )?)
}

/// Moves secrets written into the configuration file into the sealed store, and rewrites the
/// file with `"set"` in their place, so that the value does not stay readable on the disk.
fn seal_new_secrets(
    config: &mut Config,
    secrets: &SecretStore,
    config_path: &Path,
) -> Result<(), DaemonError> {
    let new = roomd_model::config::take_from_config(config);
    for secret in &new {
        secrets.put(secret.store_name, secret.value.expose().as_bytes())?;
    }
    if !new.is_empty() {
        config.save(config_path)?;
        tracing::info!(
            "moved {} secret(s) from {} into the sealed secret store",
            new.len(),
            config_path.display()
        );
    }
    for name in roomd_model::config::set_in(config) {
        if !matches!(secrets.get(name), Ok(Some(_))) {
            tracing::warn!(
                "the configuration says {name} is set, but the secret store in {} holds none; \
                 set it again",
                secrets.dir().display()
            );
        }
    }
    Ok(())
}

/// `sip.password` from the sealed store, when the configuration says it is set.
fn sip_password(config: &Config, secrets: &SecretStore) -> Option<roomd_model::Secret> {
    if config.sip.password.is_empty() {
        return None;
    }
    match secrets.get(roomd_model::config::SIP_PASSWORD_SECRET) {
        Ok(Some(password)) => Some(roomd_model::Secret::new(
            String::from_utf8_lossy(&password).into_owned(),
        )),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("cannot read the SIP password from the secret store: {e}");
            None
        }
    }
}

fn prepare_state_dir(dir: &Path) -> Result<(), DaemonError> {
    let err = |source| DaemonError::StateDir {
        path: dir.to_owned(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    // Keys, accounts and the audit log live here: nobody else may look in.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)
}

fn policy_of(config: &Config) -> AccountsPolicy {
    AccountsPolicy {
        lockout_threshold: config.accounts.lockout_threshold,
        lockout_max: Duration::from_secs(config.accounts.lockout_max_seconds),
        session_idle: Duration::from_secs(u64::from(config.api.session_idle_minutes) * 60),
    }
}

/// Lockout and session settings change at once when the configuration changes.
async fn follow_account_policy(
    mut config: tokio::sync::watch::Receiver<Arc<Config>>,
    accounts: Arc<Accounts>,
) {
    while config.changed().await.is_ok() {
        let policy = policy_of(&config.borrow_and_update());
        accounts.set_policy(policy);
    }
}

/// Names the self-signed certificate covers: loopback, this host, the listen addresses, and
/// whatever the integrator configured.
fn certificate_names(config: &Config) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
    {
        names.push(host);
    }
    for addr in &config.api.listen {
        if !addr.ip().is_unspecified() {
            names.push(addr.ip().to_string());
        }
    }
    names.extend(config.api.certificate_names.iter().cloned());
    let mut unique = Vec::with_capacity(names.len());
    for n in names {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    unique
}

fn display_addr(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}
