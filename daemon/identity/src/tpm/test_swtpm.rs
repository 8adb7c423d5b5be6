//! A private swtpm per test: fresh state directory, free ports, killed when dropped. Persistent
//! handles survive in swtpm's state, so sharing one between tests would make them depend on
//! each other.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct TestSwtpm {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl TestSwtpm {
    /// Manufactures a new TPM (EK in place, no certificates: these tests do not need them) and
    /// starts it.
    pub(crate) fn start() -> TestSwtpm {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let setup = Command::new("swtpm_setup")
            .args([
                "--tpm2",
                "--createek",
                "--pcr-banks",
                "sha256",
                "--tpmstate",
            ])
            .arg(&state)
            .stdout(Stdio::null())
            .output()
            .expect("swtpm_setup runs (Debian package swtpm-tools, see the Makefile)");
        assert!(
            setup.status.success(),
            "swtpm_setup failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        );
        let mut swtpm = TestSwtpm {
            dir,
            port: 0,
            child: None,
        };
        swtpm.run();
        swtpm
    }

    /// (Re)starts swtpm on the same state, as after a reboot.
    pub(crate) fn run(&mut self) {
        self.stop();
        let port = free_port_pair();
        let state = self.state_dir();
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "startup-clear", "--tpmstate"])
            .arg(format!("dir={}", state.display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("swtpm runs (Debian package swtpm, see the Makefile)");
        self.child = Some(child);
        self.port = port;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "swtpm did not open port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestSwtpm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port P such that P and P + 1 are free now (swtpm needs both).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two adjacent free ports on 127.0.0.1");
}
