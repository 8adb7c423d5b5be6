//! Rooms for end-to-end encrypted meetings: each enrolled with a device certificate from a CA
//! made in the test (its CSR signed by the key in its own swtpm), and a client for the room's
//! API that trusts that CA (the harness's own client trusts only the self-signed certificate
//! roomd served before).
//!
//! ```no_run
//! let ca = roomd_tests::e2ee::DeviceCa::new("Customer device CA");
//! # let roomd: roomd_tests::Roomd = todo!();
//! let room = roomd_tests::e2ee::EnrolledRoom::enrol(&roomd, &ca)?;
//! let meeting = room.meeting()?;
//! # Ok::<(), roomd_tests::HarnessError>(())
//! ```

use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, DnValue, IsCa,
    Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
};
use serde_json::{Value, json};

use crate::{BrowserPeer, HarnessError, Roomd};

/// A customer CA that certifies rooms' device keys.
pub struct DeviceCa {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl DeviceCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> DeviceCa {
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        DeviceCa { params, key, pem }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Writes the CA certificate to `path` (for `meeting.e2ee_ca_file`).
    pub fn write_pem(&self, path: &std::path::Path) -> Result<(), HarnessError> {
        std::fs::write(path, &self.pem)
            .map_err(|e| HarnessError::io(format!("cannot write {}", path.display()), e))
    }

    /// Signs a CSR as it is (subject, names, key), valid from yesterday for a year; the leaf
    /// PEM and its common name.
    pub fn sign_csr(&self, csr_pem: &str) -> Result<(String, String), HarnessError> {
        let bad = |message: String| HarnessError::UnexpectedBody {
            what: "the room's CSR".into(),
            message,
        };
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| bad(format!("does not parse: {e}")))?;
        let name = csr
            .params
            .distinguished_name
            .get(&DnType::CommonName)
            .map(dn_text)
            .unwrap_or_default();
        let now = time::OffsetDateTime::now_utc();
        csr.params.not_before = now - time::Duration::days(1);
        csr.params.not_after = now + time::Duration::days(365);
        let leaf = csr
            .signed_by(&Issuer::from_params(&self.params, &self.key))
            .map_err(|e| bad(format!("cannot be signed: {e}")))?
            .pem();
        Ok((leaf, name))
    }
}

fn dn_text(value: &DnValue) -> String {
    match value {
        DnValue::Utf8String(s) => s.clone(),
        DnValue::PrintableString(s) => s.as_str().to_owned(),
        DnValue::Ia5String(s) => s.as_str().to_owned(),
        other => format!("{other:?}"),
    }
}

/// A room enrolled with a certificate from a [`DeviceCa`], and a client that trusts it.
pub struct EnrolledRoom {
    agent: ureq::Agent,
    base_url: String,
    token: String,
    /// The common name of the room's certificate: what the others show it verified as.
    pub certificate_name: String,
}

const POLL: Duration = Duration::from_millis(200);

impl EnrolledRoom {
    /// Has `roomd` make a CSR with its device key, signs it with `ca` and installs the chain.
    pub fn enrol(roomd: &Roomd, ca: &DeviceCa) -> Result<EnrolledRoom, HarnessError> {
        let token = roomd.admin_token()?;
        let csr = roomd
            .get("/api/v1/identity/csr")
            .bearer(&token)
            .send()?
            .expect_status(200, "GET /api/v1/identity/csr")?
            .json()?;
        let csr_pem = csr["csr"].as_str().unwrap_or_default();
        let (leaf, certificate_name) = ca.sign_csr(csr_pem)?;
        roomd
            .request("PUT", "/api/v1/identity/certificate")
            .bearer(&token)
            .json(&json!({ "certificate_chain": format!("{leaf}{}", ca.pem) }))
            .send()?
            .expect_status(200, "install the CA-issued chain")?;
        let root = ureq::tls::Certificate::from_pem(ca.pem.as_bytes())
            .map_err(|e| HarnessError::UnexpectedBody {
                what: "the test CA".into(),
                message: e.to_string(),
            })?
            .to_owned();
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[root]))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(EnrolledRoom {
            agent,
            base_url: roomd.base_url(),
            token,
            certificate_name,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, HarnessError> {
        let url = format!("{}{path}", self.base_url);
        let auth = format!("Bearer {}", self.token);
        let transport = |e: ureq::Error| HarnessError::Transport {
            method: method.to_owned(),
            path: path.to_owned(),
            message: e.to_string(),
        };
        let mut response = match body {
            Some(body) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(body)
                .map_err(transport)?,
            None => self
                .agent
                .get(&url)
                .header("Authorization", &auth)
                .call()
                .map_err(transport)?,
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(transport)?;
        if status != 200 {
            return Err(HarnessError::UnexpectedStatus {
                what: format!("{method} {path}"),
                expected: 200,
                status,
                body: text,
            });
        }
        serde_json::from_str(&text).map_err(|e| HarnessError::UnexpectedBody {
            what: format!("{method} {path}"),
            message: format!("not JSON ({e}): {text}"),
        })
    }

    /// Runs a command (`POST /api/v1/commands/<name>`) as admin; its `result`.
    pub fn command(&self, name: &str, arguments: &Value) -> Result<Value, HarnessError> {
        let answer = self.call("POST", &format!("/api/v1/commands/{name}"), Some(arguments))?;
        Ok(answer.get("result").cloned().unwrap_or(Value::Null))
    }

    /// The room's shipped touch panel in Chromium, signed in with this client's token
    /// (`tests/browser/panel.mjs`: reports what the panel shows, taps on request).
    pub fn panel(&self) -> Result<BrowserPeer, HarnessError> {
        BrowserPeer::panel(&self.base_url, &self.token)
    }

    /// `status.meeting`.
    pub fn meeting(&self) -> Result<Value, HarnessError> {
        self.call("GET", "/api/v1/status/meeting", None)
    }

    /// Polls `status.meeting` until `condition` holds; on timeout the error shows the last one.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&Value) -> bool,
    ) -> Result<Value, HarnessError> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            last = self.meeting()?;
            if condition(&last) {
                return Ok(last);
            }
            std::thread::sleep(POLL);
        }
        Err(HarnessError::Timeout {
            what: format!("{what}; last status.meeting: {last}"),
            timeout,
        })
    }
}

/// `webui/src/e2ee/<entry>.ts` bundled into `out` for a page or a worker, with the web UI's own
/// esbuild (`make webui` installs it); `global`: the name the module's exports get on the page.
pub fn bundle_webui_module(entry: &str, global: Option<&str>, out: &std::path::Path) {
    let webui = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../webui");
    let mut command = std::process::Command::new(webui.join("node_modules/.bin/esbuild"));
    command
        .arg(webui.join(format!("src/e2ee/{entry}.ts")))
        .args(["--bundle", "--format=iife", "--target=es2020"])
        .arg(format!("--outfile={}", out.display()));
    if let Some(global) = global {
        command.arg(format!("--global-name={global}"));
    }
    let status = command
        .status()
        .expect("the web UI's esbuild runs (make webui installs it)");
    assert!(status.success(), "esbuild of {entry} failed: {status}");
}

/// The browser participant's end-to-end encryption (`meeting.js`: the key agreement and its
/// glue, `worker.js`: the frame transforms) bundled into `dir`, for
/// `janus-participant.mjs --e2ee <dir>`.
pub fn browser_e2ee_bundles(dir: &std::path::Path) -> std::path::PathBuf {
    bundle_webui_module("meeting", Some("roomdE2ee"), &dir.join("meeting.js"));
    bundle_webui_module("transform-worker", None, &dir.join("worker.js"));
    dir.to_path_buf()
}
