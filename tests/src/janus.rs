//! A real Janus 1.1 (Debian package `janus`) for one test: a config folder of its own with only
//! the VideoRoom plugin and the HTTP transport, no admin secret, no STUN server, ICE on the test
//! network's address only, and the HTTP API over HTTPS with a certificate from a test CA (plus
//! plain HTTP, for tools that cannot be given a CA). Killed when dropped; `restart` brings it
//! back on the same address and ports, as a server restart mid-meeting would.
//!
//! ```no_run
//! let net = roomd_tests::TestNetwork::create()?;
//! let janus = roomd_tests::Janus::builder(&net).room(1234).pin("4321").start()?;
//! let settings = format!("[meeting]\nca_file = \"{}\"", janus.ca_path().display());
//! # Ok::<(), roomd_tests::HarnessError>(())
//! ```

use std::fs::OpenOptions;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::HarnessError;
use crate::netns::TestNetwork;
use crate::test_ca::TestCa;

const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Janus listens on these inside a namespace of its own (nothing else is there).
const HTTP_PORT_IN_NAMESPACE: u16 = 8088;
const HTTPS_PORT_IN_NAMESPACE: u16 = 8089;
/// The two modules a VideoRoom meeting over HTTP needs; every other one stays unloaded.
const PLUGIN: &str = "libjanus_videoroom.so";
const TRANSPORT: &str = "libjanus_http.so";

/// What a test wants from its Janus.
pub struct JanusBuilder<'a> {
    network: &'a TestNetwork,
    room: u64,
    pin: Option<String>,
    in_namespace: bool,
}

impl JanusBuilder<'_> {
    /// The VideoRoom room id (default 1234).
    pub fn room(mut self, room: u64) -> Self {
        self.room = room;
        self
    }

    /// A PIN participants must give to join the room.
    pub fn pin(mut self, pin: &str) -> Self {
        self.pin = Some(pin.to_owned());
        self
    }

    /// Runs Janus on the host (on the veth's host address) instead of inside the namespace.
    pub fn on_host(mut self) -> Self {
        self.in_namespace = false;
        self
    }

    pub fn start(self) -> Result<Janus, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("roomd-janus-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a directory for Janus", e))?;
        let (address, http_port, https_port, launcher) = if self.in_namespace {
            (
                self.network.namespace_address(),
                HTTP_PORT_IN_NAMESPACE,
                HTTPS_PORT_IN_NAMESPACE,
                self.network.launcher(),
            )
        } else {
            let address = self.network.host_address();
            (
                address,
                free_port(address)?,
                free_port(address)?,
                Vec::new(),
            )
        };
        let ca = TestCa::new("roomd test CA for Janus")?;
        let server = ca.issue_server(&[address.to_string()])?;
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text)
                .map_err(|e| HarnessError::io(format!("cannot write Janus's {name}"), e))
        };
        write("ca.pem", &ca.cert_pem())?;
        write("server.pem", &server.cert_pem)?;
        write("server.key", &server.key_pem)?;
        let modules = ModuleFolders::find()?;
        write("janus.jcfg", &core_config(dir.path(), &modules, address)?)?;
        write(
            "janus.transport.http.jcfg",
            &http_config(dir.path(), address, http_port, https_port),
        )?;
        write(
            "janus.plugin.videoroom.jcfg",
            &videoroom_config(self.room, self.pin.as_deref()),
        )?;
        let agent = ca_agent(&ca.cert_pem())?;
        let mut janus = Janus {
            child: None,
            address,
            http_port,
            https_port,
            launcher,
            room: self.room,
            pin: self.pin,
            agent,
            dir,
        };
        janus.start_again()?;
        Ok(janus)
    }
}

pub struct Janus {
    child: Option<Child>,
    address: Ipv4Addr,
    http_port: u16,
    https_port: u16,
    launcher: Vec<String>,
    room: u64,
    pin: Option<String>,
    agent: ureq::Agent,
    // Declared last: removed after the process is gone.
    dir: TempDir,
}

impl Janus {
    /// Janus inside `network`'s namespace, room 1234 without PIN unless the builder says more.
    pub fn builder(network: &TestNetwork) -> JanusBuilder<'_> {
        JanusBuilder {
            network,
            room: 1234,
            pin: None,
            in_namespace: true,
        }
    }

    /// The HTTPS API, e.g. `https://10.77.3.2:8089/janus` (what roomd's `janus` target takes).
    pub fn https_url(&self) -> String {
        format!("https://{}:{}/janus", self.address, self.https_port)
    }

    /// The same API over plain HTTP (test-only: for clients that cannot be given the CA).
    pub fn http_url(&self) -> String {
        format!("http://{}:{}/janus", self.address, self.http_port)
    }

    /// PEM of the CA that issued Janus's certificate (for `meeting.ca_file`, `--ca`).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    pub fn room(&self) -> u64 {
        self.room
    }

    pub fn pin(&self) -> Option<&str> {
        self.pin.as_deref()
    }

    /// Janus's output so far (all runs).
    pub fn log_text(&self) -> String {
        std::fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Kills Janus: every session and PeerConnection is gone at once, as in a crash.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills Janus and starts it again on the same address, ports and rooms.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.start_again()
    }

    /// Starts Janus (after `stop`) and waits until `GET /janus/info` answers over HTTPS.
    pub fn start_again(&mut self) -> Result<(), HarnessError> {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let mut child = self.spawn()?;
            match self.wait_ready(&mut child, deadline) {
                Ok(()) => {
                    self.child = Some(child);
                    return Ok(());
                }
                // Ports of the previous run may not be free again yet: try again until the
                // deadline.
                Err(Exited) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HarnessError::PeerStart {
                        what: format!("Janus on {}", self.https_url()),
                        message: format!(
                            "no answer to GET /janus/info within {START_TIMEOUT:?}; its log:\n{}",
                            self.log_text()
                        ),
                    });
                }
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("janus.log")
    }

    fn spawn(&self) -> Result<Child, HarnessError> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| HarnessError::io("cannot open Janus's log file", e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| HarnessError::io("cannot open Janus's log file", e))?;
        let mut command = match self.launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg("janus");
                command
            }
            None => Command::new("janus"),
        };
        command
            .arg("-F")
            .arg(self.dir.path())
            // No colour codes in the log a failing test prints.
            .arg("--disable-colors")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| HarnessError::io("cannot start janus (Debian package janus)", e))
    }

    fn wait_ready(&self, child: &mut Child, deadline: Instant) -> Result<(), NotReady> {
        let info = format!("{}/info", self.https_url());
        loop {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return Err(Exited);
            }
            if let Ok(response) = self.agent.get(&info).call()
                && response.status() == 200
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(NotReady::Timeout);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- Janus log ({}) ----\n{}\n---- end of Janus log ----",
                self.https_url(),
                self.log_text()
            );
        }
        self.stop();
    }
}

enum NotReady {
    Exited,
    Timeout,
}
use NotReady::Exited;

/// Debian's folders of Janus modules (multiarch: /usr/lib/<triplet>/janus).
struct ModuleFolders {
    root: PathBuf,
}

impl ModuleFolders {
    fn find() -> Result<ModuleFolders, HarnessError> {
        let candidates = std::fs::read_dir("/usr/lib")
            .map_err(|e| HarnessError::io("cannot list /usr/lib", e))?
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("janus"))
            .find(|root| root.join("plugins").join(PLUGIN).exists());
        candidates
            .map(|root| ModuleFolders { root })
            .ok_or_else(|| HarnessError::Config {
                message: format!(
                    "no /usr/lib/*/janus/plugins/{PLUGIN}: install the Debian package janus"
                ),
            })
    }

    fn folder(&self, kind: &str) -> PathBuf {
        self.root.join(kind)
    }

    /// The modules of `kind` other than `keep`, for Janus's `disable` lists.
    fn all_but(&self, kind: &str, keep: &str) -> Result<String, HarnessError> {
        let folder = self.folder(kind);
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .map_err(|e| HarnessError::io(format!("cannot list {}", folder.display()), e))?
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.starts_with("libjanus_") && name.ends_with(".so") && name != keep)
            .collect();
        names.sort();
        Ok(names.join(","))
    }
}

fn core_config(
    dir: &Path,
    modules: &ModuleFolders,
    address: Ipv4Addr,
) -> Result<String, HarnessError> {
    let folder = |kind: &str| modules.folder(kind).display().to_string();
    Ok(format!(
        r#"# Written by roomd's test harness (tests/src/janus.rs).
general: {{
	configs_folder = "{configs}"
	plugins_folder = "{plugins}"
	transports_folder = "{transports}"
	events_folder = "{events}"
	loggers_folder = "{loggers}"
	# The address written into SDP: the test network's, not a guess.
	interface = "{address}"
	debug_level = 4
	# No admin_secret and no token auth: the test network is closed.
}}
media: {{
	ipv6 = false
}}
nat: {{
	# No stun_server: the test network has no internet and needs none.
	ice_enforce_list = "{address}"
	ignore_mdns = true
}}
plugins: {{
	disable = "{plugins_off}"
}}
transports: {{
	disable = "{transports_off}"
}}
loggers: {{
	disable = "{loggers_off}"
}}
events: {{
	broadcast = false
}}
"#,
        configs = dir.display(),
        plugins = folder("plugins"),
        transports = folder("transports"),
        events = folder("events"),
        loggers = folder("loggers"),
        plugins_off = modules.all_but("plugins", PLUGIN)?,
        transports_off = modules.all_but("transports", TRANSPORT)?,
        loggers_off = modules.all_but("loggers", "")?,
    ))
}

fn http_config(dir: &Path, address: Ipv4Addr, http_port: u16, https_port: u16) -> String {
    format!(
        r#"# Written by roomd's test harness (tests/src/janus.rs).
general: {{
	json = "compact"
	base_path = "/janus"
	http = true
	ip = "{address}"
	port = {http_port}
	https = true
	secure_ip = "{address}"
	secure_port = {https_port}
}}
admin: {{
	admin_http = false
	admin_https = false
}}
certificates: {{
	cert_pem = "{cert}"
	cert_key = "{key}"
}}
"#,
        cert = dir.join("server.pem").display(),
        key = dir.join("server.key").display(),
    )
}

fn videoroom_config(room: u64, pin: Option<&str>) -> String {
    let pin = pin
        .map(|pin| format!("\tpin = \"{pin}\"\n"))
        .unwrap_or_default();
    format!(
        r#"# Written by roomd's test harness (tests/src/janus.rs).
general: {{
}}
room-{room}: {{
	description = "roomd test room"
	publishers = 10
	bitrate = 2000000
	fir_freq = 10
	videocodec = "h264,vp8"
	audiocodec = "opus"
	notify_joining = true
{pin}}}
"#
    )
}

/// A ureq agent that trusts exactly the test CA.
fn ca_agent(ca_pem: &str) -> Result<ureq::Agent, HarnessError> {
    let ca =
        ureq::tls::Certificate::from_pem(ca_pem.as_bytes()).map_err(|e| HarnessError::Config {
            message: format!("the test CA is not PEM: {e}"),
        })?;
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca.to_owned()]))
        .build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into())
}

fn free_port(address: Ipv4Addr) -> Result<u16, HarnessError> {
    TcpListener::bind((address, 0))
        .and_then(|listener| listener.local_addr())
        .map(|a| a.port())
        .map_err(|e| HarnessError::io(format!("cannot find a free port on {address}"), e))
}
