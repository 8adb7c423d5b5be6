//! One real roomd process for one test: its own temporary directory, config file, state dir,
//! port and notify socket. Dropping it kills the process; the directory goes with it.

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::HarnessError;
use crate::binaries::roomd_bin;
use crate::command::setpriv_prefix;
use crate::http::{ApiRequest, ApiResponse, Endpoint, raw_exchange};
use crate::netns::TestNetwork;
use crate::notify::NotifySocket;
use crate::session::Session;
use crate::tls::DeviceCertificate;
use crate::ws::EventSocket;

/// Username and password the harness claims devices with.
pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// roomd's temporary folder inside the test's folder.
const TEMP_DIR: &str = "tmp";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts to start when another process took the chosen port in between.
const START_ATTEMPTS: usize = 5;

/// What a test wants from its roomd before it starts.
#[derive(Default)]
pub struct RoomdBuilder {
    extra_toml: String,
    env: Vec<(String, String)>,
    binary: Option<PathBuf>,
    launcher: Vec<String>,
    address: Option<Ipv4Addr>,
    run_as: Option<String>,
}

impl RoomdBuilder {
    /// Runs roomd as the system user `user` (with that user's groups), as systemd does on a
    /// device: the test's folder is handed to that user, and roomd is started through
    /// `setpriv`. For tests of what the system grants roomd's own user (its D-Bus name).
    pub fn run_as(mut self, user: &str) -> RoomdBuilder {
        self.run_as = Some(user.to_owned());
        self
    }

    /// Settings merged into the base config (which sets `system.state_dir`, `api.listen`,
    /// `system.hardware_profile = "simulated"` and, unless `[identity]` is given here,
    /// `identity.backend = "software"`); e.g. `"[api]\nmax_body_bytes = 4096"`.
    pub fn config(mut self, extra_toml: &str) -> RoomdBuilder {
        self.extra_toml = extra_toml.to_owned();
        self
    }

    /// An extra environment variable for roomd (e.g. `WATCHDOG_USEC`).
    pub fn env(mut self, name: &str, value: &str) -> RoomdBuilder {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Another roomd binary than `ROOMD_BIN` / the one next to the tests.
    pub fn binary(mut self, path: &Path) -> RoomdBuilder {
        self.binary = Some(path.to_owned());
        self
    }

    /// A program that runs roomd by exec'ing the rest of its arguments, e.g.
    /// `["taskset", "-c", "0"]`, so that roomd starts with its CPU affinity already set.
    pub fn launcher(mut self, program_and_args: &[&str]) -> RoomdBuilder {
        self.launcher = program_and_args.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// Listens on `address` (e.g. a test network's host address) instead of 127.0.0.1; the
    /// harness's clients connect there, and roomd's certificate names it.
    pub fn listen_on(mut self, address: Ipv4Addr) -> RoomdBuilder {
        self.address = Some(address);
        self
    }

    /// Runs roomd inside `network`'s namespace, listening on the namespace's address: its ICE
    /// candidates are 10.77.<n>.2, and the test reaches its API through the veth.
    pub fn in_network(self, network: &TestNetwork) -> RoomdBuilder {
        let launcher = network.launcher();
        let launcher: Vec<&str> = launcher.iter().map(String::as_str).collect();
        self.launcher(&launcher)
            .listen_on(network.namespace_address())
    }

    pub fn start(self) -> Result<Roomd, HarnessError> {
        let address = self.address.unwrap_or(Ipv4Addr::LOCALHOST);
        let binary = match self.binary {
            Some(path) => path,
            None => roomd_bin()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("roomd-test-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a temporary directory", e))?;
        let owner = match &self.run_as {
            Some(user) => Some(system_user(user)?),
            None => None,
        };
        let mut launcher = self.launcher.clone();
        let mut env = self.env.clone();
        // roomd under test never reaches this machine's own system services: tests run
        // `system.reboot` and `system.power_off` as admin for real (api_permissions), and the
        // fuzzer patches [host]. The system bus leads nowhere and the networkd file goes into
        // the test's folder, unless a test says otherwise. Its temporary files go to a
        // folder of its own, where a test can see them whatever file system /tmp is.
        let temp_dir = dir.path().join(TEMP_DIR);
        std::fs::create_dir(&temp_dir)
            .map_err(|e| HarnessError::io("cannot create roomd's temporary folder", e))?;
        let defaults = [
            (
                "DBUS_SYSTEM_BUS_ADDRESS",
                format!("unix:path={}/no-system-bus", dir.path().display()),
            ),
            ("ROOMD_NETWORK_DIR", dir.path().display().to_string()),
            ("TMPDIR", temp_dir.display().to_string()),
        ];
        for (name, value) in defaults {
            if !env.iter().any(|(set, _)| set == name) {
                env.push((name.to_owned(), value));
            }
        }
        if let Some(user) = &self.run_as {
            let gid = owner.map(|(_, gid)| gid.to_string()).unwrap_or_default();
            launcher.splice(0..0, setpriv_prefix(user, &gid));
            // GStreamer keeps its registry cache under $HOME, which must be the user's.
            env.push(("HOME".to_owned(), dir.path().display().to_string()));
        }
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port(address)?;
            let config_path = dir.path().join("roomd.toml");
            let state_dir = dir.path().join("state");
            let config = base_config(&self.extra_toml, &state_dir, address, port)?;
            std::fs::write(&config_path, config)
                .map_err(|e| HarnessError::io("cannot write the test config", e))?;
            let notify_path = dir.path().join("notify.sock");
            // A failed attempt leaves its socket file behind.
            let _ = std::fs::remove_file(&notify_path);
            let notify = NotifySocket::bind(&notify_path)?;
            if let Some((uid, gid)) = owner {
                for path in [
                    dir.path(),
                    config_path.as_path(),
                    notify_path.as_path(),
                    temp_dir.as_path(),
                ] {
                    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| {
                        HarnessError::io(format!("cannot hand {} to roomd", path.display()), e)
                    })?;
                }
            }
            let mut process = RoomdProcess {
                binary: binary.clone(),
                launcher: launcher.clone(),
                config_path,
                env: env.clone(),
                child: None,
                stderr: Arc::new(Mutex::new(Vec::new())),
                notify,
                spawned_at: Instant::now(),
                ready_at: Instant::now(),
            };
            match process.spawn_and_wait_ready() {
                Ok(()) => {
                    return Roomd::connect(dir, state_dir, address, port, process);
                }
                Err(HarnessError::ExitedEarly { status, stderr })
                    if stderr.to_ascii_lowercase().contains("in use") =>
                {
                    last_error = Some(HarnessError::ExitedEarly { status, stderr });
                }
                Err(other) => return Err(other),
            }
        }
        Err(last_error.unwrap_or(HarnessError::Config {
            message: "no start attempt was made".to_owned(),
        }))
    }
}

/// The process itself, separate from the client side so that it can be restarted.
struct RoomdProcess {
    binary: PathBuf,
    launcher: Vec<String>,
    config_path: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<u8>>>,
    notify: NotifySocket,
    spawned_at: Instant,
    ready_at: Instant,
}

impl RoomdProcess {
    fn spawn_and_wait_ready(&mut self) -> Result<(), HarnessError> {
        self.notify.clear();
        let mut command = match self.launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        command
            .arg("--config")
            .arg(&self.config_path)
            .env("NOTIFY_SOCKET", self.notify.path())
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("LISTEN_FDS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        self.spawned_at = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| HarnessError::io(format!("cannot start {}", self.binary.display()), e))?;
        self.stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = self.stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut all) = sink.lock() {
                        all.extend_from_slice(&buf[..n]);
                    }
                }
            });
        }
        self.child = Some(child);
        let stderr = self.stderr.clone();
        let child = &mut self.child;
        let ready = self.notify.wait_for_line("READY=1", READY_TIMEOUT, || {
            match child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => {
                    // Let the stderr reader catch up with the last words.
                    std::thread::sleep(Duration::from_millis(100));
                    Err(HarnessError::ExitedEarly {
                        status,
                        stderr: text_of(&stderr),
                    })
                }
                _ => Ok(()),
            }
        });
        match ready {
            Ok(at) => {
                self.ready_at = at;
                Ok(())
            }
            Err(HarnessError::Timeout { timeout, .. }) => Err(HarnessError::NoNotification {
                message: "READY=1".to_owned(),
                timeout,
                stderr: self.stderr_text(),
            }),
            Err(other) => Err(other),
        }
    }

    fn stderr_text(&self) -> String {
        text_of(&self.stderr)
    }

    fn stop(&mut self, signal: Signal, timeout: Duration) -> Result<ExitStatus, HarnessError> {
        let Some(child) = self.child.as_mut() else {
            return Err(HarnessError::Config {
                message: "roomd is not running".to_owned(),
            });
        };
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(status);
        }
        let pid = Pid::from_raw(child.id() as i32);
        kill(pid, signal)
            .map_err(|e| HarnessError::io(format!("cannot send {signal} to roomd"), e.into()))?;
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    return Err(HarnessError::NoExit {
                        timeout,
                        stderr: self.stderr_text(),
                    });
                }
                Err(e) => return Err(HarnessError::io("cannot wait for roomd", e)),
            }
        }
    }
}

fn text_of(buffer: &Mutex<Vec<u8>>) -> String {
    match buffer.lock() {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => "(stderr buffer unavailable)".to_owned(),
    }
}

/// The uid and primary gid of the system user `name`.
fn system_user(name: &str) -> Result<(u32, u32), HarnessError> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => Ok((user.uid.as_raw(), user.gid.as_raw())),
        Ok(None) => Err(HarnessError::Config {
            message: format!("there is no user {name} to run roomd as"),
        }),
        Err(e) => Err(HarnessError::io(
            format!("cannot look up the user {name}"),
            e.into(),
        )),
    }
}

/// A port nobody listens on right now (the kernel's choice for an ephemeral bind). An address
/// that is not the host's belongs to a namespace of roomd's own, where any port is free: a free
/// loopback port will do.
fn free_port(address: Ipv4Addr) -> Result<u16, HarnessError> {
    let listener = TcpListener::bind((address, 0))
        .or_else(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .map_err(|e| HarnessError::io("cannot find a free port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| HarnessError::io("cannot find a free port", e))
}

/// The test's settings with the harness's own on top: state dir and listen address always
/// belong to the harness; the hardware profile defaults to `simulated`.
fn base_config(
    extra_toml: &str,
    state_dir: &Path,
    address: Ipv4Addr,
    port: u16,
) -> Result<String, HarnessError> {
    let mut config: toml::Table =
        extra_toml
            .parse()
            .map_err(|e: toml::de::Error| HarnessError::Config {
                message: e.to_string(),
            })?;
    let section = |config: &mut toml::Table, name: &str| -> Result<toml::Table, HarnessError> {
        match config.remove(name) {
            None => Ok(toml::Table::new()),
            Some(toml::Value::Table(table)) => Ok(table),
            Some(_) => Err(HarnessError::Config {
                message: format!("`{name}` must be a table"),
            }),
        }
    };
    let mut system = section(&mut config, "system")?;
    system.insert(
        "state_dir".to_owned(),
        toml::Value::String(state_dir.display().to_string()),
    );
    system
        .entry("hardware_profile")
        .or_insert_with(|| toml::Value::String("simulated".to_owned()));
    let mut api = section(&mut config, "api")?;
    api.insert(
        "listen".to_owned(),
        toml::Value::Array(vec![toml::Value::String(format!("{address}:{port}"))]),
    );
    // Tests that are not about the device identity need no TPM: a software key unless the
    // test configures `[identity]` itself (the identity tests bring their own swtpm).
    if !config.contains_key("identity") {
        let mut identity = toml::Table::new();
        identity.insert(
            "backend".to_owned(),
            toml::Value::String("software".to_owned()),
        );
        config.insert("identity".to_owned(), toml::Value::Table(identity));
    }
    // Tests that are not about D-Bus do not touch this machine's system bus (if it has one):
    // no D-Bus interface unless the test configures `[dbus]` (the D-Bus tests bring a bus).
    if !config.contains_key("dbus") {
        let mut dbus = toml::Table::new();
        dbus.insert("bus".to_owned(), toml::Value::String("none".to_owned()));
        config.insert("dbus".to_owned(), toml::Value::Table(dbus));
    }
    // roomd reaches only the servers `meeting.allowed_servers` lists: unless the test sets the
    // key, the test networks (Janus, WHIP, other rooms on 10.77.<n>.2) and loopback (the
    // hostile signalling servers on 127.0.0.1).
    let mut meeting = section(&mut config, "meeting")?;
    meeting.entry("allowed_servers").or_insert_with(|| {
        toml::Value::Array(vec![
            toml::Value::String("10.77.0.0/16".to_owned()),
            toml::Value::String("127.0.0.1".to_owned()),
        ])
    });
    config.insert("meeting".to_owned(), toml::Value::Table(meeting));
    config.insert("system".to_owned(), toml::Value::Table(system));
    config.insert("api".to_owned(), toml::Value::Table(api));
    toml::to_string(&config).map_err(|e| HarnessError::Config {
        message: e.to_string(),
    })
}

/// Credentials of the admin the harness created by claiming the device.
struct Admin {
    username: String,
    password: String,
    token: String,
}

/// A running roomd and clients for it.
pub struct Roomd {
    process: RoomdProcess,
    endpoint: Endpoint,
    certificate: DeviceCertificate,
    state_dir: PathBuf,
    admin: Option<Admin>,
    /// Numbers names of tokens and users the harness creates, so each is unique.
    counter: AtomicU32,
    // Declared last: removed after the process is gone.
    dir: TempDir,
}

impl Roomd {
    pub fn builder() -> RoomdBuilder {
        RoomdBuilder::default()
    }

    /// Starts roomd with `extra_toml` merged into the base config and waits for READY=1.
    pub fn start(extra_toml: &str) -> Result<Roomd, HarnessError> {
        Roomd::builder().config(extra_toml).start()
    }

    /// Starts roomd and claims it: the admin is [`ADMIN_USERNAME`] / [`ADMIN_PASSWORD`].
    pub fn start_claimed(extra_toml: &str) -> Result<Roomd, HarnessError> {
        let mut roomd = Roomd::start(extra_toml)?;
        roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
        Ok(roomd)
    }

    fn connect(
        dir: TempDir,
        state_dir: PathBuf,
        address: Ipv4Addr,
        port: u16,
        process: RoomdProcess,
    ) -> Result<Roomd, HarnessError> {
        let certificate = DeviceCertificate::load(&state_dir.join("tls").join("cert.pem"))?;
        let endpoint = Endpoint {
            agent: certificate.ureq_agent(),
            tls: certificate.rustls.clone(),
            address,
            port,
        };
        Ok(Roomd {
            process,
            endpoint,
            certificate,
            state_dir,
            admin: None,
            counter: AtomicU32::new(0),
            dir,
        })
    }

    pub fn base_url(&self) -> String {
        self.endpoint.base_url()
    }

    pub fn port(&self) -> u16 {
        self.endpoint.port
    }

    /// The address roomd's API listens on (127.0.0.1 unless the builder said otherwise).
    pub fn address(&self) -> Ipv4Addr {
        self.endpoint.address
    }

    /// A ureq agent that trusts exactly this roomd's certificate and does not turn 4xx/5xx
    /// into errors.
    pub fn client(&self) -> ureq::Agent {
        self.endpoint.agent.clone()
    }

    /// rustls client settings trusting exactly this roomd's certificate.
    pub fn tls_config(&self) -> std::sync::Arc<rustls::ClientConfig> {
        self.certificate.rustls.clone()
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// roomd's `TMPDIR` (unless the test set another): a folder of the test's own.
    pub fn temp_dir(&self) -> PathBuf {
        self.process
            .config_path
            .parent()
            .map(|dir| dir.join(TEMP_DIR))
            .unwrap_or_default()
    }

    pub fn config_path(&self) -> &Path {
        &self.process.config_path
    }

    /// The device certificate roomd wrote (`<state>/tls/cert.pem`).
    pub fn cert_path(&self) -> PathBuf {
        self.state_dir.join("tls").join("cert.pem")
    }

    /// The temporary directory holding config, state and notify socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.process.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Everything roomd wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.process.stderr_text()
    }

    /// Time from spawning the process to its READY=1.
    pub fn ready_after(&self) -> Duration {
        self.process
            .ready_at
            .saturating_duration_since(self.process.spawned_at)
    }

    /// When the process was spawned (for start-up measurements).
    pub fn spawned_at(&self) -> Instant {
        self.process.spawned_at
    }

    /// Every notify datagram roomd sent since it was (re)started.
    pub fn notify_messages(&self) -> Vec<String> {
        self.process.notify.messages()
    }

    /// Waits for a notify datagram containing the line `line` (e.g. `WATCHDOG=1`), counting only
    /// datagrams not seen before this call.
    pub fn wait_for_notify(&mut self, line: &str, timeout: Duration) -> Result<(), HarnessError> {
        self.process.notify.clear();
        self.process
            .notify
            .wait_for_line(line, timeout, || Ok(()))
            .map(|_| ())
            .map_err(|_| HarnessError::NoNotification {
                message: line.to_owned(),
                timeout,
                stderr: self.process.stderr_text(),
            })
    }

    /// Sends SIGTERM and waits (up to 10 s) for roomd to exit.
    pub fn stop_sigterm(&mut self) -> Result<ExitStatus, HarnessError> {
        self.process.stop(Signal::SIGTERM, STOP_TIMEOUT)
    }

    /// Waits for roomd to restart itself in place (a factory reset): `RELOADING=1`, then a
    /// `READY=1` after it, from the same process. Then trusts the certificate the new start
    /// wrote (the device certificate is issued again) and forgets the harness's admin, whose
    /// account the reset erased.
    pub fn wait_for_restart_in_place(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let process = &mut self.process;
        let stderr = process.stderr.clone();
        let child = &mut process.child;
        let mut exited = || match child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Err(HarnessError::ExitedEarly {
                status,
                stderr: text_of(&stderr),
            }),
            _ => Ok(()),
        };
        let reloading =
            process
                .notify
                .wait_for_line_after("RELOADING=1", None, timeout, &mut exited)?;
        let ready =
            process
                .notify
                .wait_for_line_after("READY=1", Some(reloading), timeout, &mut exited)?;
        process.ready_at = ready;
        self.start_over_as_new_device()
    }

    /// After a factory reset: trusts the device certificate the new start issued (over the same
    /// key) and forgets the harness's admin, whose account is gone.
    pub fn start_over_as_new_device(&mut self) -> Result<(), HarnessError> {
        self.certificate = DeviceCertificate::load(&self.cert_path())?;
        self.endpoint.agent = self.certificate.ureq_agent();
        self.endpoint.tls = self.certificate.rustls.clone();
        self.admin = None;
        Ok(())
    }

    /// Stops roomd with SIGTERM and starts it again on the same config, state and port.
    pub fn restart(&mut self) -> Result<ExitStatus, HarnessError> {
        let status = self.stop_sigterm()?;
        self.process.spawn_and_wait_ready()?;
        // Pooled connections went to the old process: start with a fresh pool.
        self.endpoint.agent = self.certificate.ureq_agent();
        Ok(status)
    }

    /// Starts roomd again after [`Roomd::stop_sigterm`] (or an exit), on the same config, state
    /// and port; an early exit is [`HarnessError::ExitedEarly`] with roomd's words.
    pub fn start_again(&mut self) -> Result<(), HarnessError> {
        self.process.spawn_and_wait_ready()?;
        self.endpoint.agent = self.certificate.ureq_agent();
        Ok(())
    }

    // ---- requests ----

    /// A request to `path` (starting with `/`); add credentials and a body, then `send()`.
    pub fn request(&self, method: &str, path: &str) -> ApiRequest {
        ApiRequest::new(self.endpoint.clone(), method, path)
    }

    pub fn get(&self, path: &str) -> ApiRequest {
        self.request("GET", path)
    }

    /// Sends `request` bytes as they are over a fresh TLS connection.
    pub fn raw_exchange(&self, request: &[u8]) -> Result<ApiResponse, HarnessError> {
        raw_exchange(&self.endpoint, request, None)
    }

    /// Opens the events WebSocket with these request headers (credentials, `Origin`).
    pub fn websocket(&self, headers: &[(&str, &str)]) -> Result<EventSocket, HarnessError> {
        EventSocket::connect(&self.endpoint, headers)
    }

    /// Opens the events WebSocket with a bearer token.
    pub fn websocket_with_token(&self, token: &str) -> Result<EventSocket, HarnessError> {
        let authorization = format!("Bearer {token}");
        self.websocket(&[("Authorization", authorization.as_str())])
    }

    // ---- accounts ----

    /// The first-boot claim code from `<state>/claim-code`.
    pub fn claim_code(&self) -> Result<String, HarnessError> {
        let path = self.state_dir.join("claim-code");
        std::fs::read_to_string(&path)
            .map(|code| code.trim().to_owned())
            .map_err(|e| HarnessError::io(format!("cannot read {}", path.display()), e))
    }

    /// Claims the device as admin `username`, logs in, and creates an admin bearer token the
    /// other helpers use.
    pub fn claim(&mut self, username: &str, password: &str) -> Result<(), HarnessError> {
        let code = self.claim_code()?;
        self.request("POST", "/api/v1/claim")
            .json(&json!({ "code": code, "username": username, "password": password }))
            .send()?
            .expect_status(201, "claiming the device")?;
        let session = self.login(username, password)?;
        let created = self
            .request("POST", "/api/v1/tokens")
            .session(&session)
            .json(&json!({ "name": "harness-admin", "role": "admin" }))
            .send()?
            .expect_status(201, "creating the harness's admin token")?
            .json()?;
        let token = string_field(&created, "token", "POST /api/v1/tokens")?;
        self.admin = Some(Admin {
            username: username.to_owned(),
            password: password.to_owned(),
            token,
        });
        Ok(())
    }

    fn admin(&self) -> Result<&Admin, HarnessError> {
        self.admin.as_ref().ok_or_else(|| HarnessError::Config {
            message: "the device is not claimed yet: call claim() first".to_owned(),
        })
    }

    /// The harness admin's bearer token.
    pub fn admin_token(&self) -> Result<String, HarnessError> {
        Ok(self.admin()?.token.clone())
    }

    /// The harness admin's username and password.
    pub fn admin_credentials(&self) -> Result<(String, String), HarnessError> {
        let admin = self.admin()?;
        Ok((admin.username.clone(), admin.password.clone()))
    }

    /// `POST /api/v1/session`; fails unless roomd answers 200.
    pub fn login(&self, username: &str, password: &str) -> Result<Session, HarnessError> {
        let response = self
            .request("POST", "/api/v1/session")
            .json(&json!({ "username": username, "password": password }))
            .send()?
            .expect_status(200, &format!("logging in as {username}"))?;
        Session::from_login_response(&response)
    }

    /// Creates a token named `name` for `role` as the harness admin; returns roomd's whole
    /// answer (`id`, `token`, ...).
    pub fn create_token(&self, name: &str, role: &str) -> Result<Value, HarnessError> {
        self.request("POST", "/api/v1/tokens")
            .bearer(&self.admin()?.token)
            .json(&json!({ "name": name, "role": role }))
            .send()?
            .expect_status(201, &format!("creating a {role} token"))?
            .json()
    }

    /// A fresh bearer token for `role`.
    pub fn token_for(&self, role: &str) -> Result<String, HarnessError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let created = self.create_token(&format!("test-{role}-{n}"), role)?;
        string_field(&created, "token", "POST /api/v1/tokens")
    }

    /// Creates user `username` with `role` as the harness admin.
    pub fn create_user(
        &self,
        username: &str,
        password: &str,
        role: &str,
    ) -> Result<(), HarnessError> {
        self.request("POST", "/api/v1/users")
            .bearer(&self.admin()?.token)
            .json(&json!({ "username": username, "password": password, "role": role }))
            .send()?
            .expect_status(201, &format!("creating user {username}"))?;
        Ok(())
    }

    /// A name no earlier call returned, for users and tokens a test creates.
    pub fn unique_name(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs a command as the harness admin and returns its `result`.
    pub fn command(&self, name: &str, arguments: &Value) -> Result<Value, HarnessError> {
        let answer = self
            .request("POST", &format!("/api/v1/commands/{name}"))
            .bearer(&self.admin()?.token)
            .json(arguments)
            .send()?
            .expect_status(200, &format!("command {name}"))?
            .json()?;
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| HarnessError::UnexpectedBody {
                what: format!("command {name}"),
                message: format!("no `result` in {answer}"),
            })
    }
}

fn string_field(body: &Value, name: &str, what: &str) -> Result<String, HarnessError> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| HarnessError::UnexpectedBody {
            what: what.to_owned(),
            message: format!("no string {name:?} in {body}"),
        })
}

impl Drop for Roomd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- roomd stderr (port {}) ----\n{}\n---- end of roomd stderr ----",
                self.endpoint.port,
                self.stderr_text()
            );
        }
        if let Some(mut child) = self.process.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
