//! A real Mosquitto broker for the fleet tests: a TLS listener on a free loopback port that
//! requires client certificates, takes the certificate's CN as the user name
//! (`use_identity_as_username`) and confines each room with the ACL from docs/fleet.md. The
//! tests talk to it with Mosquitto's own clients (`mosquitto_sub`, `mosquitto_pub`, MQTT 5).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::HarnessError;

/// The ACL of docs/fleet.md, plus one fleet manager (`fleet-admin`) that may use every room's
/// topics.
pub const FLEET_ACL: &str = "\
# Every room (user name = the CN of its certificate) may use its own topics only.
pattern write roomd/%u/status
pattern write roomd/%u/status/delta
pattern write roomd/%u/events
pattern write roomd/%u/presence
pattern write roomd/%u/replies/#
pattern read roomd/%u/commands

# The fleet manager sees and steers every room.
user fleet-admin
topic readwrite roomd/#
";

/// A CA for one test: it issues the broker's certificate and the clients' certificates.
pub struct FleetCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    key_pem: String,
}

/// The common name of every [`FleetCa`].
pub const FLEET_CA_CN: &str = "roomd fleet test CA";

impl FleetCa {
    pub fn new() -> Result<FleetCa, HarnessError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        params
            .distinguished_name
            .push(DnType::CommonName, FLEET_CA_CN);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(fail)?;
        let key_pem = key.serialize_pem();
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(fail)?;
        Ok(FleetCa { issuer, key_pem })
    }

    /// The CA's private key, PEM (for the fleet simulator, which issues its rooms' certificates).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate (PEM) and key (PEM) with common name `cn`, for a server (`names` as SANs)
    /// or a client.
    pub fn issue(
        &self,
        cn: &str,
        names: &[String],
        server: bool,
    ) -> Result<(String, String), HarnessError> {
        let mut params = CertificateParams::new(names.to_vec()).map_err(fail)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = KeyPair::generate().map_err(fail)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(fail)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn fail(e: rcgen::Error) -> HarnessError {
    HarnessError::Config {
        message: format!("cannot make a test certificate: {e}"),
    }
}

/// A running `mosquitto`; stopped when dropped.
pub struct Mosquitto {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// A client identity for `mosquitto_sub`/`mosquitto_pub`: certificate and key files.
#[derive(Clone)]
pub struct MqttClient {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub port: u16,
}

impl Mosquitto {
    /// Starts mosquitto on a free loopback port; clients must present a certificate from `ca`
    /// or one of the extra trust anchors in `extra_trust_pem` (e.g. a room's self-signed
    /// device certificate).
    pub fn start(ca: &FleetCa, extra_trust_pem: &str) -> Result<Mosquitto, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("mosquitto-test-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a temporary directory", e))?;
        let port = crate::free_port()?;
        let (cert, key) = ca.issue("127.0.0.1", &["127.0.0.1".to_owned()], true)?;
        write(&dir.path().join("server.pem"), &cert)?;
        write(&dir.path().join("server.key"), &key)?;
        write(&dir.path().join("ca.pem"), &ca.cert_pem())?;
        write(
            &dir.path().join("trust.pem"),
            &format!("{}{extra_trust_pem}", ca.cert_pem()),
        )?;
        write(&dir.path().join("acl"), FLEET_ACL)?;
        let d = dir.path().display();
        let conf = format!(
            "user root\n\
             persistence false\n\
             log_dest stderr\n\
             log_type error\n\
             log_type warning\n\
             log_type notice\n\
             allow_anonymous false\n\
             listener {port} 127.0.0.1\n\
             protocol mqtt\n\
             cafile {d}/trust.pem\n\
             certfile {d}/server.pem\n\
             keyfile {d}/server.key\n\
             require_certificate true\n\
             use_identity_as_username true\n\
             acl_file {d}/acl\n"
        );
        write(&dir.path().join("mosquitto.conf"), &conf)?;
        let mut broker = Mosquitto {
            dir,
            port,
            child: None,
        };
        broker.spawn()?;
        Ok(broker)
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("mosquitto.log"))
            .map_err(|e| HarnessError::io("cannot open the broker log", e))?;
        // One file descriptor per client: the scale test connects over a thousand.
        let child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 16384 && exec mosquitto -c \"$0\"")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                HarnessError::io("cannot start mosquitto (apt-get install mosquitto)", e)
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(HarnessError::Config {
                    message: format!("mosquitto did not listen within 10 s: {}", self.log()),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Trusts `extra_trust_pem` besides the CA from the next start on.
    pub fn trust(&self, ca: &FleetCa, extra_trust_pem: &str) -> Result<(), HarnessError> {
        write(
            &self.dir.path().join("trust.pem"),
            &format!("{}{extra_trust_pem}", ca.cert_pem()),
        )
    }

    /// Stops the broker (SIGKILL: its sessions and retained messages are gone, as after a
    /// crash without persistence) and starts it again on the same port.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.spawn()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtts://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.port)
    }

    /// The CA file rooms trust for the broker.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The broker's folder (configuration, certificates, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// A client certificate from `ca` with common name `cn` (its user name at the broker).
    pub fn client(&self, ca: &FleetCa, cn: &str) -> Result<MqttClient, HarnessError> {
        let (cert, key) = ca.issue(cn, &[], false)?;
        let cert_path = self.dir.path().join(format!("{cn}.pem"));
        let key_path = self.dir.path().join(format!("{cn}.key"));
        write(&cert_path, &cert)?;
        write(&key_path, &key)?;
        Ok(MqttClient {
            cert: cert_path,
            key: key_path,
            ca: self.ca_file(),
            port: self.port,
        })
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

impl MqttClient {
    fn base(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .args(["-V", "5", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("--cafile")
            .arg(&self.ca)
            .arg("--cert")
            .arg(&self.cert)
            .arg("--key")
            .arg(&self.key);
        command
    }

    /// Receives up to `count` messages on `topic` (retained ones included) within `timeout`;
    /// each line formatted by `format` (mosquitto_sub `-F`).
    pub fn receive(
        &self,
        topic: &str,
        count: usize,
        timeout: Duration,
        format: &str,
    ) -> Result<Vec<String>, HarnessError> {
        let output = self
            .sub_command(topic, count, timeout, format)
            .output()
            .map_err(|e| HarnessError::io("cannot run mosquitto_sub", e))?;
        Ok(lines(&output))
    }

    /// A `mosquitto_sub` to start in the background (spawn it, then read its output).
    pub fn sub_command(
        &self,
        topic: &str,
        count: usize,
        timeout: Duration,
        format: &str,
    ) -> Command {
        let mut command = self.base("mosquitto_sub");
        command
            .args(["-t", topic, "-C"])
            .arg(count.to_string())
            .arg("-W")
            .arg(timeout.as_secs().max(1).to_string())
            .args(["-F", format]);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    /// Publishes `payload` on `topic`; `properties` are `-D publish <name> <value>` pairs.
    pub fn publish(
        &self,
        topic: &str,
        payload: &str,
        retain: bool,
        properties: &[(&str, &str)],
    ) -> Result<Output, HarnessError> {
        let mut command = self.base("mosquitto_pub");
        command.args(["-t", topic, "-m", payload, "-q", "1"]);
        if retain {
            command.arg("-r");
        }
        for (name, value) in properties {
            command.args(["-D", "publish", name, value]);
        }
        command
            .output()
            .map_err(|e| HarnessError::io("cannot run mosquitto_pub", e))
    }
}

/// stdout of a finished client, one entry per line.
pub fn lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write(path: &Path, contents: &str) -> Result<(), HarnessError> {
    std::fs::write(path, contents)
        .map_err(|e| HarnessError::io(format!("cannot write {}", path.display()), e))
}
