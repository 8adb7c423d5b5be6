//! A software TPM for one test: its own state directory and ports, manufactured fresh (persistent
//! handles survive in swtpm's state, so tests must not share one), killed when dropped.
//!
//! ```no_run
//! let tpm = roomd_tests::Swtpm::start()?;
//! let roomd = roomd_tests::Roomd::start(&tpm.identity_toml())?;
//! # Ok::<(), roomd_tests::HarnessError>(())
//! ```

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::HarnessError;

const START_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 5;

pub struct Swtpm {
    child: Option<Child>,
    port: u16,
    // Declared last: removed after the process is gone.
    dir: TempDir,
}

impl Swtpm {
    /// Manufactures a TPM like a real one leaves the factory (EK with its certificate in NV,
    /// platform certificate, SHA-256 PCR bank) and starts it.
    pub fn start() -> Result<Swtpm, HarnessError> {
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
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The TCTI roomd reaches this TPM through.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
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
            match self.run_once() {
                Ok(()) => return Ok(()),
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
