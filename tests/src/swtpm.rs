//! A software TPM for one test: its own state directory and ports, manufactured fresh (persistent
//! handles survive in swtpm's state, so tests must not share one), killed when dropped.
//!
//! A TPM chip is much slower than swtpm (tens of milliseconds a signature, not one):
//! [`Swtpm::start_with_latency`] puts a relay between roomd and swtpm that holds every TPM command
//! for that long.
//!
//! ```no_run
//! let tpm = roomd_tests::Swtpm::start()?;
//! let roomd = roomd_tests::Roomd::start(&tpm.identity_toml())?;
//! # Ok::<(), roomd_tests::HarnessError>(())
//! ```

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::HarnessError;

const START_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 5;

pub struct Swtpm {
    child: Option<Child>,
    port: u16,
    /// Added to every TPM command by `relay`, which the TCTI then names.
    latency: Option<Duration>,
    relay: Option<LatencyRelay>,
    // Declared last: removed after the process is gone.
    dir: TempDir,
}

impl Swtpm {
    /// Manufactures a TPM like a real one leaves the factory (EK with its certificate in NV,
    /// platform certificate, SHA-256 PCR bank) and starts it.
    pub fn start() -> Result<Swtpm, HarnessError> {
        Swtpm::start_inner(None)
    }

    /// Like `start`, but every TPM command reaches swtpm `latency` late, as with a hardware TPM
    /// (about 30 ms for a P-256 signature).
    pub fn start_with_latency(latency: Duration) -> Result<Swtpm, HarnessError> {
        Swtpm::start_inner(Some(latency))
    }

    fn start_inner(latency: Option<Duration>) -> Result<Swtpm, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("roomd-swtpm-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a directory for swtpm", e))?;
        let state = dir.path().join("state");
        std::fs::create_dir(&state)
            .map_err(|e| HarnessError::io("cannot create swtpm's state directory", e))?;
        let output = Command::new("swtpm_setup")
            .args([
                "--tpm2",
                "--createek",
                "--create-ek-cert",
                "--create-platform-cert",
            ])
            .args(["--pcr-banks", "sha256", "--tpmstate"])
            .arg(&state)
            .output()
            .map_err(|e| {
                HarnessError::io("cannot run swtpm_setup (Debian package swtpm-tools)", e)
            })?;
        if !output.status.success() {
            return Err(HarnessError::Config {
                message: format!(
                    "swtpm_setup failed ({}): {}{}",
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
        let mut swtpm = Swtpm {
            child: None,
            port: 0,
            latency,
            relay: None,
            dir,
        };
        swtpm.run()?;
        Ok(swtpm)
    }

    /// Stops swtpm (if running) and starts it again on the same state: a power cycle. The
    /// ports change.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.run()
    }

    /// Stops swtpm: the TPM is gone until `restart`.
    pub fn stop(&mut self) {
        self.relay = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The TCTI roomd reaches this TPM through.
    pub fn tcti(&self) -> String {
        let port = self.relay.as_ref().map_or(self.port, |relay| relay.port);
        format!("swtpm:host=127.0.0.1,port={port}")
    }

    /// `[identity]` settings that put roomd's device key in this TPM.
    pub fn identity_toml(&self) -> String {
        format!(
            "[identity]\nbackend = \"tpm\"\ntcti = \"{}\"\n",
            self.tcti()
        )
    }

    /// swtpm's state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The SubjectPublicKeyInfo (DER) of the key at persistent `handle`, read with tpm2-tools,
    /// independently of roomd (which must be stopped: swtpm serves one client at a time).
    pub fn public_key_der(&self, handle: &str) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        let pem_path = self.dir().join("public-key.pem");
        let output = Command::new("tpm2_readpublic")
            .args(["-T", &self.tcti(), "-c", handle, "-o"])
            .arg(&pem_path)
            .args(["-f", "pem"])
            .output()
            .expect("tpm2_readpublic (Debian package tpm2-tools) runs");
        assert!(
            output.status.success(),
            "no key at {handle} in the TPM: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pem = std::fs::read_to_string(&pem_path).expect("tpm2_readpublic wrote the key");
        rustls::pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
            .expect("a PEM public key")
            .to_vec()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A PEM file with the CA certificates that issued this TPM's EK certificate: swtpm_setup's
    /// local CA (issuer and root, from `/etc/swtpm-localca.conf`), as a verifier would get
    /// them from a TPM manufacturer.
    pub fn ek_ca_bundle(&self) -> Result<PathBuf, HarnessError> {
        const CONF: &str = "/etc/swtpm-localca.conf";
        let conf = std::fs::read_to_string(CONF)
            .map_err(|e| HarnessError::io(format!("cannot read {CONF}"), e))?;
        let setting = |name: &str| {
            conf.lines()
                .filter_map(|line| line.split_once('='))
                .find(|(key, _)| key.trim() == name)
                .map(|(_, value)| PathBuf::from(value.trim()))
        };
        let (Some(statedir), Some(issuer)) = (setting("statedir"), setting("issuercert")) else {
            return Err(HarnessError::Config {
                message: format!("{CONF} names no statedir or issuercert"),
            });
        };
        let mut bundle = Vec::new();
        for path in [issuer, statedir.join("swtpm-localca-rootca-cert.pem")] {
            let pem = std::fs::read(&path)
                .map_err(|e| HarnessError::io(format!("cannot read {}", path.display()), e))?;
            bundle.extend_from_slice(&pem);
        }
        let path = self.dir.path().join("ek-ca.pem");
        std::fs::write(&path, bundle)
            .map_err(|e| HarnessError::io("cannot write the EK CA bundle", e))?;
        Ok(path)
    }

    /// Starts swtpm on free ports; another process may take them between the check and the
    /// bind, so a start that dies at once is retried on new ports.
    fn run(&mut self) -> Result<(), HarnessError> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let started = self.run_once().and_then(|()| match self.latency {
                Some(latency) => LatencyRelay::start(self.port, latency).map(Some),
                None => Ok(None),
            });
            match started {
                Ok(relay) => {
                    self.relay = relay;
                    return Ok(());
                }
                Err(e) => {
                    self.stop();
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or(HarnessError::Config {
            message: "no swtpm start attempt was made".to_owned(),
        }))
    }

    fn run_once(&mut self) -> Result<(), HarnessError> {
        let port = free_port_pair()?;
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "startup-clear", "--tpmstate"])
            .arg(format!("dir={}", self.state_dir().display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| HarnessError::io("cannot start swtpm (Debian package swtpm)", e))?;
        self.child = Some(child);
        self.port = port;
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || Instant::now() > deadline {
                return Err(HarnessError::Timeout {
                    what: format!("swtpm to listen on 127.0.0.1:{port}"),
                    timeout: START_TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Listens on a port pair like swtpm's and passes connections on to swtpm: on the command port
/// each TPM command is held for `latency` first; the control port is passed on as it is.
struct LatencyRelay {
    port: u16,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl LatencyRelay {
    fn start(swtpm_port: u16, latency: Duration) -> Result<LatencyRelay, HarnessError> {
        let failed = |e| HarnessError::io("cannot start the TPM latency relay", e);
        let port = free_port_pair()?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (offset, latency) in [(0, Some(latency)), (1, None)] {
            let listener = TcpListener::bind(("127.0.0.1", port + offset)).map_err(failed)?;
            let stop = stop.clone();
            let upstream = swtpm_port + offset;
            threads.push(std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    std::thread::spawn(move || relay_connection(client, upstream, latency));
                }
            }));
        }
        Ok(LatencyRelay {
            port,
            stop,
            threads,
        })
    }
}

impl Drop for LatencyRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for offset in 0..2 {
            // Wakes the accept loop so that it sees `stop`.
            let _ = TcpStream::connect(("127.0.0.1", self.port + offset));
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Passes one connection on; ends when either side closes (swtpm stopping closes them all).
fn relay_connection(client: TcpStream, upstream_port: u16, latency: Option<Duration>) {
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(mut client_in), Ok(mut upstream_in)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let (mut client_out, mut upstream_out) = (client, upstream);
    let answers = std::thread::spawn(move || {
        let _ = std::io::copy(&mut upstream_in, &mut client_out);
        let _ = client_out.shutdown(Shutdown::Both);
    });
    match latency {
        Some(latency) => relay_commands(&mut client_in, &mut upstream_out, latency),
        None => {
            let _ = std::io::copy(&mut client_in, &mut upstream_out);
        }
    }
    let _ = upstream_out.shutdown(Shutdown::Both);
    let _ = answers.join();
}

/// TPM commands (header: tag u16, size u32 big-endian, code u32), each `latency` late. Bytes that
/// are not a TPM command are passed on at once.
fn relay_commands(from: &mut TcpStream, to: &mut TcpStream, latency: Duration) {
    const HEADER: usize = 10;
    const MAX_COMMAND: usize = 64 * 1024;
    loop {
        let mut command = vec![0u8; HEADER];
        if from.read_exact(&mut command).is_err() {
            return;
        }
        let size = u32::from_be_bytes([command[2], command[3], command[4], command[5]]) as usize;
        if !(HEADER..=MAX_COMMAND).contains(&size) {
            if to.write_all(&command).is_ok() {
                let _ = std::io::copy(from, to);
            }
            return;
        }
        command.resize(size, 0);
        if from.read_exact(&mut command[HEADER..]).is_err() {
            return;
        }
        std::thread::sleep(latency);
        if to.write_all(&command).is_err() {
            return;
        }
    }
}

/// A port P such that P and P + 1 are free now (swtpm's command and control ports).
fn free_port_pair() -> Result<u16, HarnessError> {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| HarnessError::io("cannot find a free port", e))?;
        let port = first
            .local_addr()
            .map_err(|e| HarnessError::io("cannot find a free port", e))?
            .port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(HarnessError::Config {
        message: "no two adjacent free ports on 127.0.0.1 for swtpm".to_owned(),
    })
}
