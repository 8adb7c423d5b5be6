//! libre's BFCP (Debian `libre-dev` 1.1, the library under baresip) as a peer for roomd-bfcp,
//! an implementation written independently of ours. A small C program,
//! `tests/bfcp-peer/bfcp_peer.c`, is compiled at test time (`cc`, `pkg-config libre`) into the
//! peer's temporary directory and run as a floor control server or a floor participant over
//! UDP on 127.0.0.1 (libre 1.1 has no BFCP over TCP). It prints one line per event, which the
//! test waits on; a failure shows everything it printed.

use std::fs::File;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::command::run_checked;

/// How long the peer may take to compile and listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running libre BFCP peer; killed when dropped.
pub struct LibrePeer {
    role: &'static str,
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
}

impl LibrePeer {
    /// A floor control server on 127.0.0.1 (a port of its choosing) for `conference_id` with
    /// the one floor `floor_id`: Hello answered, FloorRequest answered Pending and then
    /// granted by a FloorRequestStatus of its own, FloorRelease answered Released.
    pub fn server(conference_id: u32, floor_id: u16) -> Result<LibrePeer, HarnessError> {
        LibrePeer::start(
            "server",
            &[
                "server".to_owned(),
                "0".to_owned(),
                conference_id.to_string(),
                floor_id.to_string(),
            ],
        )
    }

    /// A floor participant on 127.0.0.1:`port` talking to the server on
    /// 127.0.0.1:`server_port`: Hello, FloorQuery, FloorRequest for `floor_id`, and once
    /// granted FloorRelease after `hold` (unless the floor was taken away before).
    pub fn client(
        port: u16,
        server_port: u16,
        conference_id: u32,
        user_id: u16,
        floor_id: u16,
        hold: Duration,
    ) -> Result<LibrePeer, HarnessError> {
        LibrePeer::start(
            "client",
            &[
                "client".to_owned(),
                port.to_string(),
                server_port.to_string(),
                conference_id.to_string(),
                user_id.to_string(),
                floor_id.to_string(),
                hold.as_millis().to_string(),
            ],
        )
    }

    fn start(role: &'static str, args: &[String]) -> Result<LibrePeer, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("roomd-bfcp-peer-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a directory for the BFCP peer", e))?;
        let binary = compile(dir.path())?;
        let output = File::create(dir.path().join("peer.out"))
            .map_err(|e| HarnessError::io("cannot create the BFCP peer's output file", e))?;
        let errors = File::create(dir.path().join("peer.err"))
            .map_err(|e| HarnessError::io("cannot create the BFCP peer's error file", e))?;
        let child = Command::new(&binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(output))
            .stderr(Stdio::from(errors))
            .spawn()
            .map_err(|e| HarnessError::io(format!("cannot start {}", binary.display()), e))?;
        let mut peer = LibrePeer {
            role,
            dir,
            child: Some(child),
            port: 0,
        };
        let listening = peer.wait_for_line("listening port=", START_TIMEOUT)?;
        peer.port = listening
            .trim_start_matches("listening port=")
            .parse()
            .map_err(|_| peer.failure("its port", "not a port number".to_owned()))?;
        Ok(peer)
    }

    /// The UDP port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything it printed so far: its event lines, then libre's own messages (stderr).
    pub fn output(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("peer.out"), read("peer.err"))
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("peer.out"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits, at most `timeout`, for an event line that starts with `start`; returns it. A
    /// peer that exits or stays silent is an error carrying its output.
    pub fn wait_for_line(
        &mut self,
        start: &str,
        timeout: Duration,
    ) -> Result<String, HarnessError> {
        let lines = self.wait_for_lines(start, 1, timeout)?;
        Ok(lines.into_iter().next().unwrap_or_default())
    }

    /// As [`LibrePeer::wait_for_line`], until `count` such lines are there; returns them.
    pub fn wait_for_lines(
        &mut self,
        start: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<String>, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<String> = self
                .lines()
                .into_iter()
                .filter(|l| l.starts_with(start))
                .collect();
            if found.len() >= count {
                return Ok(found);
            }
            let what = format!("{count} x {start}");
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(self.failure(&what, format!("it exited ({status})")));
            }
            if Instant::now() > deadline {
                return Err(self.failure(&what, format!("not within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it printed an event line that starts with `start`.
    pub fn printed(&self, start: &str) -> bool {
        self.lines().iter().any(|l| l.starts_with(start))
    }

    fn failure(&self, what: &str, message: String) -> HarnessError {
        HarnessError::PeerFailed {
            peer: format!("libre BFCP {}", self.role),
            what: format!("'{what}'"),
            message: format!("{message}; its output:\n{}", self.output()),
        }
    }
}

impl Drop for LibrePeer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- libre BFCP {} output ----\n{}---- end ----",
                self.role,
                self.output()
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago, for a peer that must be told its port
/// before it starts.
pub fn free_udp_port() -> Result<u16, HarnessError> {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .map_err(|e| HarnessError::io("cannot find a free UDP port", e))
}

/// Compiles the peer into `dir`; returns the binary's path.
fn compile(dir: &Path) -> Result<PathBuf, HarnessError> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("bfcp-peer/bfcp_peer.c");
    let flags = run_checked(Command::new("pkg-config").args(["--cflags", "--libs", "libre"]))
        .map_err(|e| HarnessError::PeerStart {
            what: "the libre BFCP peer".to_owned(),
            message: format!("{e} (is Debian's libre-dev installed?)"),
        })?;
    let binary = dir.join("bfcp_peer");
    run_checked(
        Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&binary)
            .arg(&source)
            .args(flags.split_whitespace()),
    )?;
    Ok(binary)
}
