//! A private system-like D-Bus for one test: `dbus-daemon` with a configuration this rig
//! writes, whose policy is Debian's system bus default plus the repository's own
//! `systemd/org.roomd.conf`, included as the device includes it. So the policy the package
//! installs is the one under test. Clients run as other users (root, a member of
//! `roomd-control`, `nobody`) through `setpriv`, with `busctl` and `gdbus` as an integrator would.
//!
//! The users and groups come from the repository's sysusers.d file, run for real on this
//! machine (`systemd-sysusers`), plus one test caller in `roomd-control`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::HarnessError;
use crate::command::{run_checked, setpriv_prefix};

/// A test caller in the group `roomd-control` (created by [`ensure_accounts`]).
pub const PANEL_USER: &str = "roomd-test-panel";
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Creates roomd's user and groups from `systemd/sysusers.d/roomd.conf`, and [`PANEL_USER`]
/// in `roomd-control`, unless they exist (systemd-sysusers leaves existing entries alone).
pub fn ensure_accounts() -> Result<(), HarnessError> {
    run_checked(
        Command::new("systemd-sysusers").arg(repo().join("systemd/sysusers.d/roomd.conf")),
    )?;
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("cannot create a folder", e))?;
    let panel = dir.path().join("roomd-test-panel.conf");
    std::fs::write(
        &panel,
        format!(
            "u {PANEL_USER} - \"roomd D-Bus test caller\" /nonexistent /usr/sbin/nologin\n\
             m {PANEL_USER} roomd-control\n"
        ),
    )
    .map_err(|e| HarnessError::io("cannot write a sysusers file", e))?;
    run_checked(Command::new("systemd-sysusers").arg(&panel))?;
    Ok(())
}

/// One `dbus-daemon` with the repository's policy. Dropping it stops the daemon.
pub struct PrivateBus {
    dir: TempDir,
    daemon: Child,
    address: String,
}

impl PrivateBus {
    pub fn start() -> Result<PrivateBus, HarnessError> {
        // dbus-daemon looks the policy's users and groups up once, when it reads the policy: a
        // bus started before they exist ignores their rules and refuses roomd the name (a
        // fresh machine's first tests did).
        ensure_accounts()?;
        let dir = tempfile::Builder::new()
            .prefix("roomd-bus-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create the bus folder", e))?;
        // Every test user must reach the socket; the bus's policy decides what they may do.
        run_checked(Command::new("chmod").arg("0755").arg(dir.path()))?;
        let config = dir.path().join("bus.conf");
        std::fs::write(&config, bus_conf(dir.path()))
            .map_err(|e| HarnessError::io("cannot write the bus configuration", e))?;
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| HarnessError::io("cannot start dbus-daemon", e))?;
        // The address is printed once the bus listens.
        let mut line = String::new();
        if let Some(out) = daemon.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        if line.trim().is_empty() {
            let _ = daemon.kill();
            let _ = daemon.wait();
            return Err(HarnessError::Config {
                message: "dbus-daemon did not start (see its stderr)".to_owned(),
            });
        }
        Ok(PrivateBus {
            address: format!("unix:path={}", dir.path().join("bus").display()),
            dir,
            daemon,
        })
    }

    /// The bus's address, for `dbus.bus` and the clients.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The bus's folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `busctl --address=<bus> <args>` as `user` (`root`: as this process).
    pub fn busctl(&self, user: &str, args: &[&str]) -> Result<Output, HarnessError> {
        let mut command = as_user(user, "busctl");
        command
            .arg(format!("--address={}", self.address))
            .args(args);
        command
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HarnessError::io("cannot run busctl", e))
    }

    /// Calls `org.roomd.Room1.Run(name, arguments_json)` as `user`.
    pub fn run_command(
        &self,
        user: &str,
        name: &str,
        arguments_json: &str,
    ) -> Result<Output, HarnessError> {
        self.busctl(
            user,
            &[
                "call",
                "org.roomd",
                "/org/roomd/Room",
                "org.roomd.Room1",
                "Run",
                "ss",
                name,
                arguments_json,
            ],
        )
    }

    /// Reads a property of `org.roomd.Room1` as `user`, as JSON (`busctl --json=short`).
    pub fn property(&self, user: &str, name: &str) -> Result<serde_json::Value, HarnessError> {
        let output = self.busctl(
            user,
            &[
                "--json=short",
                "get-property",
                "org.roomd",
                "/org/roomd/Room",
                "org.roomd.Room1",
                name,
            ],
        )?;
        if !output.status.success() {
            return Err(HarnessError::Config {
                message: format!(
                    "reading {name} failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        let value: serde_json::Value =
            serde_json::from_slice(&output.stdout).map_err(|e| HarnessError::Config {
                message: format!("busctl printed no JSON for {name}: {e}"),
            })?;
        Ok(value["data"].clone())
    }

    /// Follows every signal `org.roomd` sends (`gdbus monitor`), as `user`; returns once the
    /// monitor is subscribed.
    pub fn watch_signals(&self, user: &str) -> Result<SignalWatch, HarnessError> {
        let mut command = as_user(user, "gdbus");
        command
            .args(["monitor", "--address", &self.address, "--dest", "org.roomd"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .map_err(|e| HarnessError::io("cannot run gdbus monitor", e))?;
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        if let Some(out) = child.stdout.take() {
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut all) = sink.lock() {
                        all.push(line);
                    }
                }
            });
        }
        let watch = SignalWatch { child, lines };
        // gdbus prints the owner once it has added its match rules.
        watch.wait_for("subscribed", |line| line.contains("is owned by"))?;
        Ok(watch)
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The lines `gdbus monitor` printed, collected as they come.
pub struct SignalWatch {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl SignalWatch {
    /// Waits until a line matches; returns it.
    pub fn wait_for(
        &self,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> Result<String, HarnessError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| matches(l)) {
                return Ok(line);
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Config {
                    message: format!(
                        "no signal line {what} within {START_TIMEOUT:?}; seen:\n{}",
                        self.lines().join("\n")
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` run as `user` with that user's primary and supplementary groups; as this
/// process for `root`.
pub fn as_user(user: &str, program: &str) -> Command {
    if user == "root" {
        return Command::new(program);
    }
    // The primary group's name is not always the user's (nobody's is nogroup).
    let gid = match nix::unistd::User::from_name(user) {
        Ok(Some(u)) => u.gid.as_raw().to_string(),
        _ => user.to_owned(),
    };
    let prefix = setpriv_prefix(user, &gid);
    let mut command = Command::new(&prefix[0]);
    command.args(&prefix[1..]).arg(program);
    command
}

/// Debian 12's system bus policy (/usr/share/dbus-1/system.conf, "default" context), then the
/// repository's policy file, included as the device's bus includes system.d/.
fn bus_conf(dir: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={dir}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"#,
        dir = dir.display(),
        policy = repo().join("systemd/org.roomd.conf").display(),
    )
}
