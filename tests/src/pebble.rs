//! Debian's `pebble` (2.4), the ACME (RFC 8555) test server from Let's Encrypt, run with a
//! configuration the test makes: HTTPS with a certificate from the test's CA, external account
//! binding required with one MAC key, and `PEBBLE_VA_ALWAYS_VALID=1` (every challenge counts as
//! validated: the room's authorisation is the EAB credential from its signed bundle, and the
//! room serves no http-01 token). Its root and intermediate certificates come from the
//! management port, as a client would fetch them.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{HarnessError, TestCa, free_port};

/// The EAB key id the test's pebble knows.
pub const EAB_KID: &str = "roomd-test-kid";
/// Its MAC key, base64url as pebble's configuration and the bundle carry it (48 bytes).
pub const EAB_HMAC_KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

pub struct Pebble {
    child: Child,
    port: u16,
    management_port: u16,
    ca_pem: String,
}

impl Pebble {
    /// Starts pebble on 127.0.0.1 with its files in `dir`; its HTTPS certificate is issued by
    /// `ca`.
    pub fn start(dir: &Path, ca: &TestCa) -> Result<Pebble, HarnessError> {
        let fail = |message: String| HarnessError::Config { message };
        let cert = ca.issue_server(&["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        let (cert_path, key_path) = (dir.join("pebble.pem"), dir.join("pebble.key"));
        std::fs::write(&cert_path, &cert.cert_pem).map_err(|e| fail(e.to_string()))?;
        std::fs::write(&key_path, &cert.key_pem).map_err(|e| fail(e.to_string()))?;
        let (port, management_port) = (free_port()?, free_port()?);
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": cert_path,
            "privateKey": key_path,
            // Unused with PEBBLE_VA_ALWAYS_VALID; ports nobody else needs.
            "httpPort": free_port()?,
            "tlsPort": free_port()?,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": true,
            "externalAccountMACKeys": {EAB_KID: EAB_HMAC_KEY},
        }});
        let config_path = dir.join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).map_err(|e| fail(e.to_string()))?;
        let log = std::fs::File::create(dir.join("pebble.log")).map_err(|e| fail(e.to_string()))?;
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .env("PEBBLE_VA_ALWAYS_VALID", "1")
            .env("PEBBLE_VA_NOSLEEP", "1")
            // Pebble rejects 5 % of nonces by default to exercise clients' retries; the test
            // is about enrolment, not about that.
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| fail(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| fail(format!("cannot run pebble (Debian package pebble): {e}")))?;
        let pebble = Pebble {
            child,
            port,
            management_port,
            ca_pem: ca.cert_pem(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        for p in [port, management_port] {
            let address = SocketAddr::from((Ipv4Addr::LOCALHOST, p));
            while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
                if Instant::now() > deadline {
                    return Err(fail(format!(
                        "pebble did not listen on {address} within 15 s; see {}",
                        dir.join("pebble.log").display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(pebble)
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// Pebble's issuing root (PEM), from the management port.
    pub fn root_pem(&self) -> Result<String, HarnessError> {
        self.management("/roots/0")
    }

    /// Pebble's intermediate (PEM), which signs the certificates it issues.
    pub fn intermediate_pem(&self) -> Result<String, HarnessError> {
        self.management("/intermediates/0")
    }

    fn management(&self, path: &str) -> Result<String, HarnessError> {
        use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider, parse_pem};
        let roots: Vec<Certificate<'static>> = parse_pem(self.ca_pem.as_bytes())
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c.to_owned()),
                _ => None,
            })
            .collect();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(
                TlsConfig::builder()
                    .provider(TlsProvider::Rustls)
                    .root_certs(RootCerts::new_with_certs(&roots))
                    .build(),
            )
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let url = format!("https://127.0.0.1:{}{path}", self.management_port);
        agent
            .get(&url)
            .call()
            .and_then(|mut r| r.body_mut().read_to_string())
            .map_err(|e| HarnessError::Config {
                message: format!("pebble management {url}: {e}"),
            })
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
