//! A real RAUC 1.8 service for update tests, on a private D-Bus: `rauc service` with a
//! system.conf this rig writes (compatible `roomd-test`, two `type=raw` slots on plain files, the
//! `custom` boot loader backend as a small script that keeps the primary slot and each slot's
//! state in files), a keyring made with openssl, and signed plain bundles built with
//! `rauc bundle`. Nothing is mocked: roomd talks to RAUC over D-Bus as it does on the device.
//!
//! Needs `rauc`, `rauc-service`, `squashfs-tools`, `dbus` and `openssl` (Debian packages).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::HarnessError;
use crate::command::run_checked;

/// RAUC's compatible in these tests.
pub const RAUC_COMPATIBLE: &str = "roomd-test";
/// Size of each slot file.
const SLOT_BYTES: u64 = 1024 * 1024;
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Who signed a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The key the device's keyring trusts (issued by the rig's CA).
    Trusted,
    /// A self-signed key the keyring does not know.
    Stranger,
}

/// One RAUC service on its own bus, with its slots, keys and boot loader state.
pub struct Rauc {
    dir: TempDir,
    bus_pid: Option<i32>,
    service: Option<Child>,
    address: String,
}

impl Rauc {
    /// Starts a bus and RAUC on it, booted from slot A; `setup` runs on the rig's folder first
    /// (to write boot loader state or a central status file before RAUC reads it).
    pub fn start_with(setup: impl FnOnce(&Path)) -> Result<Rauc, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("roomd-rauc-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create the RAUC folder", e))?;
        let root = dir.path().to_owned();
        for sub in ["state", "data", "mnt", "bundles"] {
            std::fs::create_dir_all(root.join(sub))
                .map_err(|e| HarnessError::io("cannot create the RAUC folders", e))?;
        }
        make_keys(&root)?;
        for slot in ["slotA", "slotB"] {
            let file = std::fs::File::create(root.join(slot))
                .map_err(|e| HarnessError::io("cannot create a slot file", e))?;
            file.set_len(SLOT_BYTES)
                .map_err(|e| HarnessError::io("cannot size a slot file", e))?;
        }
        write(&root.join("state/primary"), "A\n")?;
        write(&root.join("backend.sh"), &backend_script(&root))?;
        run_checked(Command::new("chmod").arg("+x").arg(root.join("backend.sh")))?;
        write(&root.join("system.conf"), &system_conf(&root))?;
        write(&root.join("bus.conf"), &bus_conf(&root))?;
        setup(&root);

        let output = run_checked(
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}", root.join("bus.conf").display()))
                .args(["--fork", "--print-pid"]),
        )?;
        let bus_pid = output.trim().parse::<i32>().ok();
        let address = format!("unix:path={}", root.join("bus").display());
        let service = Command::new("rauc")
            .arg("service")
            .arg(format!("--conf={}", root.join("system.conf").display()))
            .arg(format!("--mount={}", root.join("mnt").display()))
            .arg("--override-boot-slot=A")
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("DBUS_STARTER_BUS_TYPE", "session")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(root.join("rauc.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .map_err(|e| HarnessError::io("cannot start rauc service", e))?;
        let rauc = Rauc {
            dir,
            bus_pid,
            service: Some(service),
            address,
        };
        rauc.wait_ready()?;
        Ok(rauc)
    }

    /// Starts RAUC with fresh slots, booted from A.
    pub fn start() -> Result<Rauc, HarnessError> {
        Rauc::start_with(|_| {})
    }

    /// The bus address, for `update.rauc_bus`.
    pub fn bus_address(&self) -> &str {
        &self.address
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The bytes of slot `A` or `B`.
    pub fn slot(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir().join(format!("slot{name}"))).unwrap_or_default()
    }

    /// The custom backend's state of slot `A` or `B` (`good` unless set).
    pub fn boot_state(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir().join(format!("state/state.{name}")))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "good".to_owned())
    }

    /// The custom backend's primary slot.
    pub fn primary(&self) -> String {
        std::fs::read_to_string(self.dir().join("state/primary"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    }

    /// `GetSlotStatus` as busctl prints it.
    pub fn slot_status(&self) -> Result<String, HarnessError> {
        run_checked(Command::new("busctl").args([
            &format!("--address={}", self.address),
            "call",
            "de.pengutronix.rauc",
            "/",
            "de.pengutronix.rauc.Installer",
            "GetSlotStatus",
        ]))
    }

    /// An os-release file for roomd: a firmware image of `version` with `floor`, or (both None)
    /// a plain system.
    pub fn os_release(&self, name: &str, version: Option<&str>, floor: Option<&str>) -> PathBuf {
        let mut text = String::from("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n");
        if let Some(version) = version {
            text.push_str(&format!("IMAGE_ID=roomd\nIMAGE_VERSION={version}\n"));
        }
        if let Some(floor) = floor {
            text.push_str(&format!("ROOMD_SECURITY_FLOOR={floor}\n"));
        }
        let path = self.dir().join(name);
        let _ = std::fs::write(&path, text);
        path
    }

    /// Builds a signed plain bundle whose one image is `image` (written to the rootfs slot).
    pub fn bundle(
        &self,
        name: &str,
        version: &str,
        compatible: &str,
        signer: Signer,
        image: &[u8],
    ) -> Result<PathBuf, HarnessError> {
        let root = self.dir();
        let content = root.join("bundles").join(format!("{name}.d"));
        std::fs::create_dir_all(&content)
            .map_err(|e| HarnessError::io("cannot create a bundle folder", e))?;
        std::fs::write(content.join("root.img"), image)
            .map_err(|e| HarnessError::io("cannot write a bundle image", e))?;
        write(
            &content.join("manifest.raucm"),
            &format!(
                "[update]\ncompatible={compatible}\nversion={version}\n\n[bundle]\nformat=plain\n\n\
                 [image.rootfs]\nfilename=root.img\n"
            ),
        )?;
        let (cert, key) = match signer {
            Signer::Trusted => ("signer.crt", "signer.key"),
            Signer::Stranger => ("stranger.crt", "stranger.key"),
        };
        let out = root.join("bundles").join(format!("{name}.raucb"));
        run_checked(
            Command::new("rauc")
                .arg("bundle")
                .arg(format!("--cert={}", root.join(cert).display()))
                .arg(format!("--key={}", root.join(key).display()))
                .arg(&content)
                .arg(&out),
        )?;
        Ok(out)
    }

    fn wait_ready(&self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.slot_status().is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir().join("rauc.log")).unwrap_or_default();
                return Err(HarnessError::Timeout {
                    what: format!("rauc service on {}; its log: {log}", self.address),
                    timeout: START_TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Rauc {
    fn drop(&mut self) {
        if let Some(mut service) = self.service.take() {
            let _ = service.kill();
            let _ = service.wait();
        }
        if let Some(pid) = self.bus_pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

/// A CA whose certificate is the keyring, a signing key it issued, and a stranger's key.
fn make_keys(root: &Path) -> Result<(), HarnessError> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run_checked(
        Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args([
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "3650",
                "-subj",
                "/CN=roomd test CA",
            ])
            .args(["-addext", "basicConstraints=critical,CA:true"])
            .args(["-addext", "keyUsage=critical,keyCertSign"])
            .current_dir(root),
    )?;
    run_checked(
        Command::new("openssl")
            .arg("req")
            .args(ec)
            .args([
                "-keyout",
                "signer.key",
                "-out",
                "signer.csr",
                "-subj",
                "/CN=roomd test signer",
            ])
            .current_dir(root),
    )?;
    write(
        &root.join("signer.ext"),
        "basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\n",
    )?;
    run_checked(
        Command::new("openssl")
            .args([
                "x509",
                "-req",
                "-in",
                "signer.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
            ])
            .args([
                "-CAcreateserial",
                "-out",
                "signer.crt",
                "-days",
                "3650",
                "-extfile",
                "signer.ext",
            ])
            .current_dir(root),
    )?;
    run_checked(
        Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args([
                "-keyout",
                "stranger.key",
                "-out",
                "stranger.crt",
                "-days",
                "3650",
            ])
            .args(["-subj", "/CN=someone else"])
            .current_dir(root),
    )?;
    Ok(())
}

/// RAUC's custom boot loader backend: primary and per-slot state in files. `set-primary` also
/// makes the slot good, as a boot-counting loader gives a new primary fresh tries.
fn backend_script(root: &Path) -> String {
    let state = root.join("state");
    let state = state.display();
    format!(
        "#!/bin/sh\nS={state}\ncase \"$1\" in\n\
         get-primary) cat $S/primary ;;\n\
         set-primary) echo \"$2\" > $S/primary; echo good > $S/state.$2 ;;\n\
         get-state) cat $S/state.$2 2>/dev/null || echo good ;;\n\
         set-state) echo \"$3\" > $S/state.$2 ;;\n\
         get-current) cat $S/primary ;;\n\
         *) exit 1 ;;\nesac\n"
    )
}

fn system_conf(root: &Path) -> String {
    let r = root.display();
    format!(
        "[system]\ncompatible={RAUC_COMPATIBLE}\nbootloader=custom\ndata-directory={r}/data\n\n\
         [handlers]\nbootloader-custom-backend={r}/backend.sh\n\n\
         [keyring]\npath={r}/ca.crt\n\n\
         [slot.rootfs.0]\ndevice={r}/slotA\ntype=raw\nbootname=A\n\n\
         [slot.rootfs.1]\ndevice={r}/slotB\ntype=raw\nbootname=B\n"
    )
}

fn bus_conf(root: &Path) -> String {
    format!(
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
         \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\
         <type>session</type><listen>unix:path={}/bus</listen><auth>EXTERNAL</auth>\
         <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
         <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy>\
         </busconfig>\n",
        root.display()
    )
}

fn write(path: &Path, text: &str) -> Result<(), HarnessError> {
    std::fs::write(path, text)
        .map_err(|e| HarnessError::io(format!("cannot write {}", path.display()), e))
}

/// An HTTPS server on 127.0.0.1 that answers every GET with one file, under a certificate of a
/// [`crate::TestCa`]: where roomd downloads a bundle from in the URL test.
pub struct FileServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileServer {
    pub fn start(
        cert: &crate::ServerCertificate,
        body: Vec<u8>,
    ) -> Result<FileServer, HarnessError> {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let config = cert.rustls_server_config("file server")?;
        let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| HarnessError::io("cannot listen for the file server", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| HarnessError::io("file server address", e))?
            .port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_c = stop.clone();
        let body = Arc::new(body);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_c.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (config, body) = (config.clone(), body.clone());
                std::thread::spawn(move || serve_file(stream, config, &body));
            }
        });
        Ok(FileServer {
            port,
            stop,
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_file(
    stream: std::net::TcpStream,
    config: std::sync::Arc<rustls::ServerConfig>,
    body: &[u8],
) {
    use std::io::{Read, Write};
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
        match tls.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let header = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = tls.write_all(header.as_bytes());
    let _ = tls.write_all(body);
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
