//! A network for tests with real WebRTC peers: libnice and Janus skip loopback when they gather
//! ICE candidates, so peers need other addresses. A `TestNetwork` is a network namespace joined
//! to the host by a veth pair: the host side is 10.77.<n>.1, the namespace side 10.77.<n>.2 (with
//! its own `lo` up). Programs started through [`TestNetwork::launcher`] run inside; everything
//! on the host (the test itself, Chromium, a roomd on 127.0.0.1) reaches them through the veth.
//!
//! The subnet number `n` names everything (namespace `roomd-t<n>`, links `rt<n>h` / `rt<n>n`),
//! so test processes running at the same time must not pick the same one: they choose under a
//! file lock and record their pid, and a network whose owner is dead (a killed earlier run) is
//! removed and reused.
//!
//! ```no_run
//! let net = roomd_tests::TestNetwork::create()?;
//! let janus = roomd_tests::Janus::builder(&net).start()?;
//! # Ok::<(), roomd_tests::HarnessError>(())
//! ```

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::HarnessError;

/// Where the lock and the owner records live (tmpfs: gone after a reboot, like the namespaces).
const STATE_DIR: &str = "/run/roomd-testnet";
/// Subnets 10.77.1.0/24 to 10.77.240.0/24; above is left for people trying things by hand.
const SUBNETS: std::ops::RangeInclusive<u8> = 1..=240;

pub struct TestNetwork {
    subnet: u8,
}

impl TestNetwork {
    /// Creates a namespace and veth pair on a free 10.77.<n>.0/24 (needs root).
    pub fn create() -> Result<TestNetwork, HarnessError> {
        std::fs::create_dir_all(STATE_DIR)
            .map_err(|e| HarnessError::io(format!("cannot create {STATE_DIR} (run as root)"), e))?;
        let lock = lock_file()?;
        let taken = addresses_in_use()?;
        for subnet in SUBNETS {
            if owner_alive(subnet) {
                continue;
            }
            // Leftovers of a run that was killed: nobody owns them any more.
            remove(subnet);
            // Addresses on our own links were just removed with them; others belong to someone.
            let ours = host_interface_name(subnet);
            if taken
                .iter()
                .any(|(link, ip)| *link != ours && ip.octets()[..3] == [10, 77, subnet])
            {
                continue;
            }
            let network = TestNetwork { subnet };
            std::fs::write(owner_path(subnet), own_identity()?)
                .map_err(|e| HarnessError::io("cannot record the test network's owner", e))?;
            if let Err(e) = network.build() {
                // Drop removes what was made so far.
                drop(network);
                return Err(e);
            }
            drop(lock);
            return Ok(network);
        }
        Err(HarnessError::Config {
            message: format!(
                "no free test subnet 10.77.<n>.0/24 for n in {SUBNETS:?}: see {STATE_DIR} and \
                 `ip netns list`"
            ),
        })
    }

    fn build(&self) -> Result<(), HarnessError> {
        let (ns, host, inside) = (self.name(), self.host_interface(), self.inner_interface());
        let host_cidr = format!("{}/24", self.host_address());
        let inner_cidr = format!("{}/24", self.namespace_address());
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &host, "type", "veth", "peer", "name", &inside, "netns", &ns,
        ])?;
        ip(&["addr", "add", &host_cidr, "dev", &host])?;
        ip(&["link", "set", &host, "up"])?;
        ip(&["-n", &ns, "addr", "add", &inner_cidr, "dev", &inside])?;
        ip(&["-n", &ns, "link", "set", &inside, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> String {
        namespace_name(self.subnet)
    }

    /// The subnet number n of 10.77.<n>.0/24.
    pub fn subnet(&self) -> u8 {
        self.subnet
    }

    /// The host's end of the veth pair: 10.77.<n>.1.
    pub fn host_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 1)
    }

    /// The namespace's end of the veth pair: 10.77.<n>.2.
    pub fn namespace_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 2)
    }

    /// The host-side interface name (≤ 15 characters).
    pub fn host_interface(&self) -> String {
        host_interface_name(self.subnet)
    }

    /// The interface name inside the namespace.
    pub fn inner_interface(&self) -> String {
        format!("rt{}n", self.subnet)
    }

    /// The program and arguments that run a command inside the namespace (its arguments
    /// follow): `["ip", "netns", "exec", <name>]`, e.g. for `RoomdBuilder::launcher`.
    pub fn launcher(&self) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.name()]
    }

    /// A `Command` that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name()]).arg(program);
        command
    }

    /// Makes the link from the host into the namespace a bottleneck of `rate` (tc's notation,
    /// e.g. `40kbit`): a token bucket that queues what exceeds it for up to a second, then
    /// drops, as a slow access link does (the kernel here has no netem; tbf works). Lifted when
    /// the returned guard is dropped.
    pub fn bottleneck_into_namespace(&self, rate: &str) -> Result<Bottleneck, HarnessError> {
        let interface = self.host_interface();
        let output = Command::new("tc")
            .args([
                "qdisc", "add", "dev", &interface, "root", "tbf", "rate", rate,
            ])
            .args(["burst", "4kb", "latency", "1000ms"])
            .output()
            .map_err(|e| HarnessError::io("cannot run tc (iproute2)", e))?;
        if !output.status.success() {
            return Err(HarnessError::Config {
                message: format!(
                    "tc cannot limit {interface} to {rate}: {}",
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
        Ok(Bottleneck { interface })
    }
}

/// A rate limit on a test network's link (see [`TestNetwork::bottleneck_into_namespace`]).
pub struct Bottleneck {
    interface: String,
}

impl Drop for Bottleneck {
    fn drop(&mut self) {
        let _ = Command::new("tc")
            .args(["qdisc", "del", "dev", &self.interface, "root"])
            .output();
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        remove(self.subnet);
    }
}

/// Deletes namespace `n` (which takes both veth ends with it) and its owner record. Programs
/// still running inside (a Janus or roomd of a killed test run) are killed first: a namespace
/// lives on, nameless, as long as a process is in it.
fn remove(subnet: u8) {
    let (ns, host) = (namespace_name(subnet), host_interface_name(subnet));
    if Path::new("/run/netns").join(&ns).exists() {
        if let Ok(pids) = ip_output(&["netns", "pids", &ns]) {
            for pid in pids.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = ip(&["netns", "del", &ns]);
    }
    // A veth whose namespace was deleted by hand may linger on the host side.
    if Path::new("/sys/class/net").join(&host).exists() {
        let _ = ip(&["link", "del", &host]);
    }
    let _ = std::fs::remove_file(owner_path(subnet));
}

fn namespace_name(subnet: u8) -> String {
    format!("roomd-t{subnet}")
}

fn host_interface_name(subnet: u8) -> String {
    format!("rt{subnet}h")
}

fn lock_file() -> Result<File, HarnessError> {
    let path = Path::new(STATE_DIR).join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| HarnessError::io(format!("cannot open {}", path.display()), e))?;
    file.lock()
        .map_err(|e| HarnessError::io(format!("cannot lock {}", path.display()), e))?;
    Ok(file)
}

fn owner_path(subnet: u8) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{subnet}.owner"))
}

/// "<pid> <start time>": the start time tells a live owner from a new process with a reused pid.
fn own_identity() -> Result<String, HarnessError> {
    let pid = std::process::id();
    start_time(pid)
        .map(|start| format!("{pid} {start}"))
        .ok_or_else(|| HarnessError::Config {
            message: format!("cannot read /proc/{pid}/stat"),
        })
}

fn owner_alive(subnet: u8) -> bool {
    let Ok(record) = std::fs::read_to_string(owner_path(subnet)) else {
        return false;
    };
    let mut fields = record.split_whitespace();
    let (Some(Ok(pid)), Some(start)) = (fields.next().map(str::parse::<u32>), fields.next()) else {
        return false;
    };
    start_time(pid).is_some_and(|now| now == start)
}

/// Field 22 of /proc/<pid>/stat (start time in clock ticks after boot).
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; everything after its ')' splits cleanly.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// IPv4 addresses configured on the host now, with their link (someone else may use a 10.77
/// subnet).
fn addresses_in_use() -> Result<Vec<(String, Ipv4Addr)>, HarnessError> {
    let output = ip_output(&["-4", "-o", "addr", "show"])?;
    Ok(output
        .lines()
        .filter_map(|line| {
            // "3: eth0    inet 192.0.2.2/24 brd ..."
            let mut words = line.split_whitespace().skip(1);
            let link = words.next()?.split('@').next()?.to_owned();
            words.next().filter(|w| *w == "inet")?;
            let ip = words.next()?.split('/').next()?.parse().ok()?;
            Some((link, ip))
        })
        .collect())
}

fn ip(args: &[&str]) -> Result<(), HarnessError> {
    ip_output(args).map(|_| ())
}

fn ip_output(args: &[&str]) -> Result<String, HarnessError> {
    let command = format!("ip {}", args.join(" "));
    let output = Command::new("ip").args(args).output().map_err(|e| {
        HarnessError::io(
            format!("cannot run `{command}` (Debian package iproute2)"),
            e,
        )
    })?;
    if !output.status.success() {
        return Err(HarnessError::CommandFailed {
            command,
            message: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
