//! The firmware image (image/build.sh) booted in a virtual machine: qemu-system-x86_64 under
//! software emulation (KVM does not work on the test machines), OVMF as UEFI firmware, a swtpm
//! manufactured like a factory TPM as the machine's TPM 2.0, the serial console written to a file
//! and the guest's API port forwarded to a port on 127.0.0.1. Both processes are killed when the
//! [`FirmwareVm`] is dropped; the serial log stays where the caller put it (a test artefact).

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::http::{ApiRequest, Endpoint};
use crate::tls::DeviceCertificate;

/// UEFI firmware for q35 with Secure Boot on (Debian's ovmf): the "snakeoil" variable store has
/// Debian's test key as PK, KEK and db, and Debian ships its private key for signing test
/// binaries (password "snakeoil"). The firmware keeps Secure Boot state in SMM, which qemu must
/// then provide. The variable store is copied per machine.
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd";
/// The key and certificate the snakeoil variable store trusts.
pub const SNAKEOIL_KEY: &str = "/usr/share/ovmf/PkKek-1-snakeoil.key";
pub const SNAKEOIL_CERT: &str = "/usr/share/ovmf/PkKek-1-snakeoil.pem";
/// roomd's API port in the image (image/rootfs/usr/share/roomd/factory/roomd.toml).
pub const GUEST_API_PORT: u16 = 8443;
const SWTPM_SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

pub struct FirmwareVm {
    qemu: Option<Child>,
    swtpm: Option<Child>,
    /// A second disk (e.g. a USB stick's image) attached at the next power-on.
    stick: Option<PathBuf>,
    run_dir: PathBuf,
    serial: PathBuf,
    tpm_state: PathBuf,
    port: u16,
    cpus: u32,
}

impl FirmwareVm {
    /// Boots a copy of `image` in `run_dir` (emptied first), grown by `grow_bytes` as if the image
    /// had been written to a larger disk, with a new TPM and `cpus` virtual CPUs. Returns once
    /// qemu runs; the guest boots on its own.
    ///
    /// Under TCG each virtual CPU is a host thread: two guests of one CPU each fill a 2-core
    /// machine, where guests of two CPUs would spin on each other's preempted locks.
    pub fn boot(
        image: &Path,
        run_dir: &Path,
        grow_bytes: u64,
        cpus: u32,
    ) -> Result<FirmwareVm, HarnessError> {
        if run_dir.exists() {
            std::fs::remove_dir_all(run_dir)
                .map_err(|e| HarnessError::io(format!("cannot empty {}", run_dir.display()), e))?;
        }
        let tpm_state = run_dir.join("tpm");
        std::fs::create_dir_all(&tpm_state)
            .map_err(|e| HarnessError::io(format!("cannot create {}", tpm_state.display()), e))?;

        // The disk is a sparse copy: the guest writes its data partition, the image stays as built.
        let disk = run_dir.join("disk.img");
        run(Command::new("cp")
            .arg("--sparse=always")
            .arg(image)
            .arg(&disk))?;
        let size = std::fs::metadata(&disk)
            .map_err(|e| HarnessError::io("cannot stat the disk copy", e))?
            .len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&disk)
            .and_then(|file| file.set_len(size + grow_bytes))
            .map_err(|e| HarnessError::io("cannot grow the disk copy", e))?;
        let vars = run_dir.join("OVMF_VARS.fd");
        std::fs::copy(OVMF_VARS, &vars)
            .map_err(|e| HarnessError::io(format!("cannot copy {OVMF_VARS} (Debian ovmf)"), e))?;

        // A TPM as it leaves the factory: EK and its certificate, platform certificate, SHA-256.
        run(Command::new("swtpm_setup")
            .args(["--tpm2", "--tpmstate"])
            .arg(&tpm_state)
            .args([
                "--createek",
                "--create-ek-cert",
                "--create-platform-cert",
                "--pcr-banks",
                "sha256",
            ]))?;
        let mut vm = FirmwareVm {
            qemu: None,
            swtpm: None,
            stick: None,
            run_dir: run_dir.to_owned(),
            serial: run_dir.join("serial.log"),
            tpm_state,
            port: free_port()?,
            cpus,
        };
        vm.power_on("serial.log")?;
        Ok(vm)
    }

    /// Powers the machine on (again): the same disk, UEFI variables and TPM, the console written
    /// to `serial_name` in the run folder. The guest boots on its own.
    pub fn power_on(&mut self, serial_name: &str) -> Result<(), HarnessError> {
        self.power_off();
        let run_dir = self.run_dir.clone();
        let disk = run_dir.join("disk.img");
        let vars = run_dir.join("OVMF_VARS.fd");
        self.serial = run_dir.join(serial_name);
        let socket = run_dir.join("swtpm.sock");
        let _ = std::fs::remove_file(&socket);
        // qemu's tpm-emulator speaks swtpm's control protocol over this socket; the firmware sends
        // TPM2_Startup itself. --terminate: swtpm ends when qemu closes the connection.
        let swtpm = Command::new("swtpm")
            .args(["socket", "--tpm2", "--terminate", "--tpmstate"])
            .arg(format!("dir={}", self.tpm_state.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| HarnessError::PeerStart {
                what: "swtpm".into(),
                message: e.to_string(),
            })?;
        self.swtpm = Some(swtpm);
        let deadline = Instant::now() + SWTPM_SOCKET_TIMEOUT;
        while !socket.exists() {
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout {
                    what: format!("swtpm's socket {}", socket.display()),
                    timeout: SWTPM_SOCKET_TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }

        let qemu = Command::new("qemu-system-x86_64")
            .args(["-machine", "q35,smm=on", "-accel", "tcg", "-cpu", "max"])
            // Only SMM code may write the variable store (Secure Boot keys and state).
            .args(["-global", "driver=cfi.pflash01,property=secure,value=on"])
            .args(["-smp", &self.cpus.to_string(), "-m", "2048"])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", self.serial.display()))
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
            ))
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ))
            .arg("-drive")
            .arg(format!("if=virtio,format=raw,file={}", disk.display()))
            .args(self.stick.iter().flat_map(|stick| {
                [
                    "-drive".to_owned(),
                    format!("if=virtio,format=raw,readonly=on,file={}", stick.display()),
                ]
            }))
            .arg("-netdev")
            .arg(format!(
                "user,id=net0,hostfwd=tcp:127.0.0.1:{}-:{GUEST_API_PORT}",
                self.port
            ))
            .args(["-device", "virtio-net-pci,netdev=net0"])
            .arg("-chardev")
            .arg(format!("socket,id=chrtpm,path={}", socket.display()))
            .args(["-tpmdev", "emulator,id=tpm0,chardev=chrtpm"])
            .args(["-device", "tpm-tis,tpmdev=tpm0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HarnessError::PeerStart {
                what: "qemu-system-x86_64 (Debian qemu-system-x86)".into(),
                message: e.to_string(),
            })?;
        self.qemu = Some(qemu);
        Ok(())
    }

    /// Plugs `image` in as a second (read-only) disk from the next power-on on, as a USB stick
    /// would be; `None` unplugs it.
    pub fn plug_stick(&mut self, image: Option<&Path>) {
        self.stick = image.map(Path::to_path_buf);
    }

    /// The file names in the ESP's EFI/Linux of the machine's disk (see [`esp_boot_entries`]).
    /// Reading while the guest runs is safe: the guest mounts the ESP with `flush`.
    pub fn boot_entries(&self, esp_offset_mib: u64) -> Result<Vec<String>, HarnessError> {
        esp_boot_entries(&self.run_dir.join("disk.img"), esp_offset_mib)
    }

    /// Waits until the guest turns the machine off by itself: qemu runs with `-no-reboot`, so a
    /// reboot in the guest ends qemu (power it on again with [`FirmwareVm::power_on`]).
    pub fn wait_until_off(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(qemu) = self.qemu.as_mut() else {
                return Ok(());
            };
            match qemu.try_wait() {
                Ok(Some(_)) => {
                    self.power_off();
                    return Ok(());
                }
                Ok(None) if Instant::now() > deadline => {
                    return Err(HarnessError::Timeout {
                        what: "the guest to turn itself off (reboot)".into(),
                        timeout,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(500)),
                Err(e) => return Err(HarnessError::io("cannot wait for qemu", e)),
            }
        }
    }

    /// Everything the guest wrote to its serial console so far.
    pub fn console(&self) -> String {
        std::fs::read(&self.serial)
            .map(|bytes| String::from_utf8_lossy(&bytes).replace('\r', ""))
            .unwrap_or_default()
    }

    /// The last `lines` lines of the console.
    pub fn console_tail(&self, lines: usize) -> String {
        let console = self.console();
        let all: Vec<&str> = console.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn serial_log(&self) -> &Path {
        &self.serial
    }

    /// Waits until the console has a line containing `needle` and returns that line; fails early
    /// when qemu exits.
    pub fn wait_for_console(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.console().lines().find(|line| line.contains(needle)) {
                return Ok(line.to_owned());
            }
            self.check_running()?;
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout {
                    what: format!("{needle:?} on the guest's console"),
                    timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn check_running(&mut self) -> Result<(), HarnessError> {
        let Some(qemu) = self.qemu.as_mut() else {
            return Err(HarnessError::PeerFailed {
                peer: "qemu".into(),
                what: "a running guest".into(),
                message: "it was stopped".into(),
            });
        };
        match qemu.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                let mut stderr = String::new();
                if let Some(mut pipe) = qemu.stderr.take() {
                    use std::io::Read;
                    let _ = pipe.read_to_string(&mut stderr);
                }
                Err(HarnessError::ExitedEarly { status, stderr })
            }
            Err(e) => Err(HarnessError::io("cannot wait for qemu", e)),
        }
    }

    /// A request to the guest's API through the forwarded port, trusting only `certificate`.
    pub fn request(&self, certificate: &DeviceCertificate, method: &str, path: &str) -> ApiRequest {
        let endpoint = Endpoint {
            agent: certificate.ureq_agent(),
            tls: certificate.rustls.clone(),
            address: Ipv4Addr::LOCALHOST,
            port: self.port,
        };
        ApiRequest::new(endpoint, method, path)
    }

    /// The host port that reaches the guest's API.
    pub fn api_port(&self) -> u16 {
        self.port
    }

    /// The software TPM's state directory (read it after [`FirmwareVm::power_off`]).
    pub fn tpm_state(&self) -> &Path {
        &self.tpm_state
    }

    /// Pulls the plug: qemu and swtpm are killed (swtpm writes its NV state as it goes).
    pub fn power_off(&mut self) {
        for child in [self.qemu.take(), self.swtpm.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for FirmwareVm {
    fn drop(&mut self) {
        self.power_off();
    }
}

/// The file names in EFI/Linux (the root slots' boot entries with their boot counters, sorted) of
/// the ESP that starts `esp_offset_mib` into `disk`, read with mtools without mounting.
pub fn esp_boot_entries(disk: &Path, esp_offset_mib: u64) -> Result<Vec<String>, HarnessError> {
    let output = Command::new("mdir")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-b")
        .arg("-i")
        .arg(format!("{}@@{}M", disk.display(), esp_offset_mib))
        .arg("::/EFI/Linux")
        .output()
        .map_err(|e| HarnessError::io("cannot run mdir (mtools)", e))?;
    if !output.status.success() {
        return Err(HarnessError::PeerFailed {
            peer: "mdir".into(),
            what: "the ESP's EFI/Linux".into(),
            message: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.rsplit('/').next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    names.sort();
    Ok(names)
}

/// A port on 127.0.0.1 that was free a moment ago (qemu binds it for the forward).
pub fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| HarnessError::io("cannot find a free port", e))
}

fn run(command: &mut Command) -> Result<(), HarnessError> {
    let output = command
        .output()
        .map_err(|e| HarnessError::io(format!("cannot run {command:?}"), e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(HarnessError::CommandFailed {
            command: format!("{command:?}"),
            message: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}
