//! Debian's Chromium as a real WebRTC peer: runs a node driver from `tests/browser/` (Playwright
//! drives Chromium with a fake camera and microphone), collects the JSON lines it prints, and
//! lets a test wait for one that satisfies a condition (e.g. frames decoded from roomd). Dropping
//! it stops the driver and its Chromium.
//!
//! ```no_run
//! # let net = roomd_tests::TestNetwork::create()?;
//! # let janus = roomd_tests::Janus::builder(&net).start()?;
//! use std::time::Duration;
//! use roomd_tests::{BrowserPeer, browser};
//! let alice = BrowserPeer::janus_participant(&janus, "Alice")?;
//! alice.wait_for("video from a remote feed", Duration::from_secs(20), |line| {
//!     browser::inbound_video_frames(line).iter().any(|frames| *frames > 30)
//! })?;
//! # Ok::<(), roomd_tests::HarnessError>(())
//! ```

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::HarnessError;
use crate::janus::Janus;
use crate::netns::TestNetwork;

const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// `tests/browser/`, where the drivers and their node_modules are.
pub fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

pub struct BrowserPeer {
    name: String,
    /// In a Mutex: waiting for a line checks (through `&self`) whether the driver has exited.
    child: Mutex<Option<Child>>,
    /// Held open: the driver stops when its stdin closes (if the test process dies too). Also
    /// where [`BrowserPeer::command`] writes.
    stdin: Mutex<Option<ChildStdin>>,
    lines: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl BrowserPeer {
    /// Runs `tests/browser/<script>` with `args` on the host.
    pub fn start(script: &str, args: &[String]) -> Result<BrowserPeer, HarnessError> {
        BrowserPeer::spawn(&[], script, args)
    }

    /// Runs the driver (and so Chromium) inside `network`'s namespace.
    pub fn start_in(
        network: &TestNetwork,
        script: &str,
        args: &[String],
    ) -> Result<BrowserPeer, HarnessError> {
        BrowserPeer::spawn(&network.launcher(), script, args)
    }

    /// A participant in `janus`'s room (with its PIN) that publishes and subscribes to everyone,
    /// speaking HTTPS verified with Janus's test CA.
    pub fn janus_participant(janus: &Janus, name: &str) -> Result<BrowserPeer, HarnessError> {
        BrowserPeer::janus_participant_with(janus, name, &[])
    }

    /// [`BrowserPeer::janus_participant`] with more options for `janus-participant.mjs`
    /// (the benchmark's `--width`, `--height`, `--fps`, `--timecode`).
    pub fn janus_participant_with(
        janus: &Janus,
        name: &str,
        extra: &[String],
    ) -> Result<BrowserPeer, HarnessError> {
        let mut args = vec![
            "--janus".to_owned(),
            janus.https_url(),
            "--room".to_owned(),
            janus.room().to_string(),
            "--name".to_owned(),
            name.to_owned(),
            "--ca".to_owned(),
            janus.ca_path().display().to_string(),
        ];
        if let Some(pin) = janus.pin() {
            args.extend(["--pin".to_owned(), pin.to_owned()]);
        }
        args.extend_from_slice(extra);
        BrowserPeer::start("janus-participant.mjs", &args)
    }

    /// A guest of a meeting hosted by a roomd: `join_url` is the meeting's
    /// `https://<room>/join/<id>`, `ca` roomd's certificate (PEM) to verify it with.
    pub fn direct_guest(
        join_url: &str,
        name: &str,
        pin: Option<&str>,
        ca: &std::path::Path,
    ) -> Result<BrowserPeer, HarnessError> {
        let mut args = vec![
            "--url".to_owned(),
            join_url.to_owned(),
            "--name".to_owned(),
            name.to_owned(),
            "--ca".to_owned(),
            ca.display().to_string(),
        ];
        if let Some(pin) = pin {
            args.extend(["--pin".to_owned(), pin.to_owned()]);
        }
        BrowserPeer::start("direct-guest.mjs", &args)
    }

    /// Guests named `names` on roomd's shipped guest page (`tests/browser/guest-page.mjs`): one
    /// Chromium, a context each; they join `join_url` with `pin`, trusting only `ca`'s key.
    pub fn guest_pages(
        join_url: &str,
        names: &[&str],
        pin: &str,
        ca: &std::path::Path,
    ) -> Result<BrowserPeer, HarnessError> {
        BrowserPeer::guest_pages_reporting(join_url, names, pin, ca, Duration::from_secs(1))
    }

    /// [`BrowserPeer::guest_pages`], reporting what the pages show every `every`.
    pub fn guest_pages_reporting(
        join_url: &str,
        names: &[&str],
        pin: &str,
        ca: &std::path::Path,
        every: Duration,
    ) -> Result<BrowserPeer, HarnessError> {
        BrowserPeer::start(
            "guest-page.mjs",
            &[
                "--url".to_owned(),
                join_url.to_owned(),
                "--names".to_owned(),
                names.join(","),
                "--pin".to_owned(),
                pin.to_owned(),
                "--ca".to_owned(),
                ca.display().to_string(),
                "--report-ms".to_owned(),
                every.as_millis().to_string(),
            ],
        )
    }

    /// roomd's shipped touch panel at `base_url` in Chromium, signed in with `token` as a
    /// paired panel is (`tests/browser/panel.mjs`: reports what the panel shows, taps and types
    /// on request).
    pub fn panel(base_url: &str, token: &str) -> Result<BrowserPeer, HarnessError> {
        BrowserPeer::start(
            "panel.mjs",
            &[
                "--url".to_owned(),
                base_url.to_owned(),
                "--token".to_owned(),
                token.to_owned(),
            ],
        )
    }

    fn spawn(
        launcher: &[String],
        script: &str,
        args: &[String],
    ) -> Result<BrowserPeer, HarnessError> {
        let dir = browser_dir();
        if !dir.join("node_modules").join("playwright-core").is_dir() {
            return Err(HarnessError::PeerStart {
                what: format!("browser driver {script}"),
                message: format!(
                    "{}/node_modules has no playwright-core: run `npm ci` there (`make test` does)",
                    dir.display()
                ),
            });
        }
        let mut command = match launcher.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg("node");
                command
            }
            None => Command::new("node"),
        };
        command
            .arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that Chromium's processes can be killed with it.
            .process_group(0);
        let mut child = command.spawn().map_err(|e| {
            HarnessError::io(
                "cannot start node (Debian package nodejs) for a browser driver",
                e,
            )
        })?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            let sink = lines.clone();
            let noise = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<Value>(&line) {
                        Ok(value) => push(&sink, value),
                        // Not a report: keep it with stderr for the failure message.
                        Err(_) => push_bytes(&noise, format!("{line}\n").as_bytes()),
                    }
                }
            });
        }
        if let Some(mut pipe) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    push_bytes(&sink, &buf[..n]);
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(BrowserPeer {
            name: script.to_owned(),
            child: Mutex::new(Some(child)),
            stdin: Mutex::new(stdin),
            lines,
            stderr,
        })
    }

    /// Sends the driver one command (a JSON line on its stdin; each driver lists the ones it
    /// knows).
    pub fn command(&self, command: &Value) -> Result<(), HarnessError> {
        use std::io::Write as _;
        let mut stdin = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
        let pipe = stdin
            .as_mut()
            .ok_or_else(|| self.failure("a command", "stdin is closed"))?;
        writeln!(pipe, "{command}")
            .map_err(|e| HarnessError::io("cannot write a command to the browser driver", e))
    }

    /// The pid of the node driver (its first line), whose descendants are its Chromium
    /// ([`crate::cpu::chromium_seconds`]).
    pub fn driver_pid(&self) -> Result<u32, HarnessError> {
        let line = self.wait_for("its pid", Duration::from_secs(30), |l| l["event"] == "pid")?;
        line["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .ok_or_else(|| self.failure("its pid", &format!("no pid in {line}")))
    }

    /// Every JSON line so far, oldest first.
    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// How many lines came so far: pass it to [`BrowserPeer::wait_for_after`] to look only at
    /// what comes next.
    pub fn line_count(&self) -> usize {
        self.lines.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// The newest `stats` line.
    pub fn latest_stats(&self) -> Option<Value> {
        self.lines()
            .into_iter()
            .rev()
            .find(|line| line["event"] == "stats")
    }

    /// Waits for a line (any so far, or a later one) for which `condition` holds; returns it.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&Value) -> bool,
    ) -> Result<Value, HarnessError> {
        self.wait_for_after(0, what, timeout, condition)
    }

    /// Like [`BrowserPeer::wait_for`], looking only at lines from number `first` on.
    pub fn wait_for_after(
        &self,
        first: usize,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&Value) -> bool,
    ) -> Result<Value, HarnessError> {
        let number = self.wait_for_line_number(first, what, timeout, condition)?;
        Ok(self.lines().swap_remove(number))
    }

    /// Like [`BrowserPeer::wait_for_after`], returning the line's number: what happened after
    /// it (e.g. stats after a rejoin) is `wait_for_after(number + 1, ...)`.
    pub fn wait_for_line_number(
        &self,
        first: usize,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&Value) -> bool,
    ) -> Result<usize, HarnessError> {
        let deadline = Instant::now() + timeout;
        let mut seen = first;
        loop {
            let lines = self.lines();
            if let Some(found) = lines.iter().skip(seen).position(&condition) {
                return Ok(seen + found);
            }
            seen = seen.max(lines.len());
            if let Some(error) = lines.iter().find(|line| line["event"] == "error") {
                return Err(self.failure(what, &format!("the driver failed: {error}")));
            }
            if let Some(status) = self.exit_status() {
                // Let the reader threads catch up, then look one last time.
                std::thread::sleep(Duration::from_millis(200));
                let lines = self.lines();
                if let Some(found) = lines.iter().skip(seen).position(&condition) {
                    return Ok(seen + found);
                }
                return Err(self.failure(what, &format!("the driver exited ({status})")));
            }
            if Instant::now() > deadline {
                return Err(self.failure(what, &format!("nothing within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The driver's exit status, once it has exited.
    fn exit_status(&self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.lock().ok()?;
        child.as_mut()?.try_wait().ok().flatten()
    }

    fn failure(&self, what: &str, message: &str) -> HarnessError {
        let lines = self.lines();
        let tail: Vec<String> = lines
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(Value::to_string)
            .collect();
        let stderr = self
            .stderr
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        HarnessError::PeerFailed {
            peer: self.name.clone(),
            what: what.to_owned(),
            message: format!(
                "{message}; its last lines:\n{}\nits stderr:\n{stderr}",
                tail.join("\n")
            ),
        }
    }

    /// Stops the driver: SIGTERM lets it close Chromium; what is left after 5 s is killed.
    pub fn stop(&mut self) {
        let taken = match self.child.get_mut() {
            Ok(child) => child.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(mut child) = taken else {
            return;
        };
        let group = Pid::from_raw(-(child.id() as i32));
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Chromium's helpers, or everything if the driver did not stop.
        let _ = kill(group, Signal::SIGKILL);
        let _ = child.wait();
    }
}

impl Drop for BrowserPeer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let stderr = self
                .stderr
                .lock()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let lines: Vec<String> = self.lines().iter().map(Value::to_string).collect();
            eprintln!(
                "---- {} lines ----\n{}\n---- its stderr ----\n{stderr}\n---- end ----",
                self.name,
                lines.join("\n")
            );
        }
        self.stop();
    }
}

fn push(lines: &Mutex<Vec<Value>>, value: Value) {
    if let Ok(mut lines) = lines.lock() {
        lines.push(value);
    }
}

fn push_bytes(buffer: &Mutex<Vec<u8>>, bytes: &[u8]) {
    if let Ok(mut buffer) = buffer.lock() {
        buffer.extend_from_slice(bytes);
    }
}

/// Frames decoded per incoming video stream in a `stats` line (one entry per remote feed).
pub fn inbound_video_frames(stats: &Value) -> Vec<u64> {
    rtp_entries(stats, "inbound", "video")
        .map(|entry| entry["frames_decoded"].as_u64().unwrap_or(0))
        .collect()
}

/// Frames decoded from the incoming video of one connection (`peer`, e.g. `feed-<id>` in the
/// Janus participant's lines) in a `stats` line; `None` when that connection is not in it.
pub fn inbound_video_frames_of(stats: &Value, peer: &str) -> Option<u64> {
    peers(stats).find(|p| p["peer"] == peer).map(|p| {
        p["inbound"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["kind"] == "video")
            .map(|entry| entry["frames_decoded"].as_u64().unwrap_or(0))
            .sum()
    })
}

/// Frames encoded per outgoing video stream in a `stats` line.
pub fn outbound_video_frames(stats: &Value) -> Vec<u64> {
    rtp_entries(stats, "outbound", "video")
        .map(|entry| entry["frames_encoded"].as_u64().unwrap_or(0))
        .collect()
}

/// Audio packets received per incoming audio stream in a `stats` line.
pub fn inbound_audio_packets(stats: &Value) -> Vec<u64> {
    rtp_entries(stats, "inbound", "audio")
        .map(|entry| entry["packets_received"].as_u64().unwrap_or(0))
        .collect()
}

/// The ICE pairs in use (`{"local", "remote", "protocol"}`) of every connection in a `stats` line.
pub fn selected_pairs(stats: &Value) -> Vec<Value> {
    peers(stats)
        .filter_map(|peer| peer.get("pair").filter(|p| !p.is_null()).cloned())
        .collect()
}

fn peers(stats: &Value) -> impl Iterator<Item = &Value> {
    stats["peers"].as_array().into_iter().flatten()
}

fn rtp_entries<'a>(
    stats: &'a Value,
    direction: &'static str,
    kind: &'static str,
) -> impl Iterator<Item = &'a Value> {
    peers(stats)
        .flat_map(move |peer| peer[direction].as_array().into_iter().flatten())
        .filter(move |entry| entry["kind"] == kind)
}
