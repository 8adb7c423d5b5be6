//! Enrolment: a CSR signed by the key in the (software) TPM, a certificate from a CA made in the
//! test, installed over the API and then served. Certificates for anything but the device key
//! are refused.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, IsCa, Issuer,
    KeyPair, PKCS_ECDSA_P256_SHA256,
};
use roomd_tests::{HarnessError, Roomd, Swtpm};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use x509_parser::prelude::FromDer;

struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        TestCa { params, key, pem }
    }

    /// Signs a CSR as it is (subject, names, key), valid from yesterday for a year.
    fn sign_csr(&self, csr_pem: &str) -> String {
        self.sign_csr_valid(csr_pem, (-1, 365))
    }

    /// Signs a CSR with the given validity in days from now.
    fn sign_csr_valid(&self, csr_pem: &str, days: (i64, i64)) -> String {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .expect("the CSR parses and its signature verifies");
        let now = time::OffsetDateTime::now_utc();
        csr.params.not_before = now + time::Duration::days(days.0);
        csr.params.not_after = now + time::Duration::days(days.1);
        csr.signed_by(&Issuer::from_params(&self.params, &self.key))
            .expect("CA signs")
            .pem()
    }

    /// A certificate for some other key, with the given validity in days from now.
    fn certificate_for(&self, key: &KeyPair, days: (i64, i64)) -> String {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("leaf params");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        params
            .signed_by(key, &Issuer::from_params(&self.params, &self.key))
            .expect("CA signs")
            .pem()
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn csr_spki(csr_pem: &str) -> Vec<u8> {
    let der = rustls::pki_types::CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .expect("PEM CSR");
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(der.as_ref())
            .expect("PKCS#10");
    csr.verify_signature()
        .expect("the CSR is signed by its key");
    csr.certification_request_info.subject_pki.raw.to_vec()
}

fn get_json(roomd: &Roomd, path: &str, token: &str) -> Result<Value, HarnessError> {
    roomd
        .get(path)
        .bearer(token)
        .send()?
        .expect_status(200, path)?
        .json()
}

fn install(
    roomd: &Roomd,
    token: &str,
    chain: &str,
) -> Result<roomd_tests::ApiResponse, HarnessError> {
    roomd
        .request("PUT", "/api/v1/identity/certificate")
        .bearer(token)
        .json(&json!({ "certificate_chain": chain }))
        .send()
}

/// The leaf a rustls client trusting only `ca_pem` is shown by roomd (the handshake must verify).
fn leaf_seen_by_a_client_trusting(roomd: &Roomd, ca_pem: &str) -> CertificateDer<'static> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM"))
        .expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let connection = ClientConnection::new(Arc::new(config), name).expect("connection");
    let socket = TcpStream::connect(("127.0.0.1", roomd.port())).expect("connect");
    let mut tls = StreamOwned::new(connection, socket);
    let request = "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    tls.write_all(request.as_bytes())
        .expect("handshake and request");
    let mut answer = String::new();
    let _ = tls.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "answer: {answer}");
    tls.conn.peer_certificates().expect("server certificate")[0].clone()
}

#[test]
fn a_csr_from_the_tpm_key_becomes_the_served_certificate() -> Result<(), HarnessError> {
    let tpm = Swtpm::start()?;
    let mut roomd = Roomd::start_claimed(&tpm.identity_toml())?;
    let admin = roomd.admin_token()?;
    let integrator = roomd.token_for("integrator")?;

    let before = get_json(&roomd, "/api/v1/identity", &integrator)?;
    assert_eq!(before["backend"], "tpm", "{before}");
    assert_eq!(before["self_signed"], true, "{before}");
    let key_sha256 = before["key_sha256"].as_str().unwrap_or_default().to_owned();

    // The CSR is signed by the device key (verified twice: x509-parser here, openssl below).
    let csr = get_json(&roomd, "/api/v1/identity/csr", &integrator)?;
    let csr_pem = csr["csr"].as_str().unwrap_or_default().to_owned();
    assert_eq!(hex_sha256(&csr_spki(&csr_pem)), key_sha256);
    let csr_path = roomd.dir().join("device.csr");
    std::fs::write(&csr_path, &csr_pem).expect("write CSR");
    let verified = Command::new("openssl")
        .args(["req", "-verify", "-noout", "-in"])
        .arg(&csr_path)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(
        verified.status.success(),
        "openssl req -verify: {}",
        String::from_utf8_lossy(&verified.stderr)
    );

    let ca = TestCa::new("Fleet CA");
    let leaf = ca.sign_csr(&csr_pem);
    // Only an admin changes what every client is shown.
    assert_eq!(install(&roomd, &integrator, &leaf)?.status, 403);
    let installed = install(&roomd, &admin, &format!("{leaf}{}", ca.pem))?
        .expect_status(200, "install the CA-issued chain")?
        .json()?;
    assert_eq!(installed["self_signed"], false, "{installed}");
    assert_eq!(installed["key_sha256"], key_sha256.as_str());

    let leaf_der = CertificateDer::from_pem_slice(leaf.as_bytes()).expect("leaf PEM");
    assert_eq!(leaf_seen_by_a_client_trusting(&roomd, &ca.pem), leaf_der);
    let status = get_json(&roomd, "/api/v1/status/identity", &integrator)?;
    assert_eq!(
        status["certificate_sha256"],
        installed["certificate_sha256"]
    );
    assert_ne!(status["certificate_sha256"], before["certificate_sha256"]);

    // Persisted: served again after a restart. (The harness's own client trusts only the
    // self-signed certificate, so from here on only clients trusting the CA get through.)
    roomd.restart()?;
    assert_eq!(leaf_seen_by_a_client_trusting(&roomd, &ca.pem), leaf_der);
    assert!(matches!(
        roomd.get("/api/v1/identity").bearer(&integrator).send(),
        Err(HarnessError::Transport { .. })
    ));
    Ok(())
}

#[test]
fn certificates_that_do_not_certify_the_device_key_are_refused() -> Result<(), HarnessError> {
    let tpm = Swtpm::start()?;
    let roomd = Roomd::start_claimed(&tpm.identity_toml())?;
    let admin = roomd.admin_token()?;
    let ca = TestCa::new("Fleet CA");
    let other_ca = TestCa::new("Other CA");
    let csr = get_json(&roomd, "/api/v1/identity/csr", &admin)?;
    let csr_pem = csr["csr"].as_str().unwrap_or_default();
    let device_leaf = ca.sign_csr(csr_pem);
    let stranger = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");

    let refused = [
        (
            "a certificate for another key",
            ca.certificate_for(&stranger, (-1, 365)),
        ),
        (
            "an expired certificate",
            ca.sign_csr_valid(csr_pem, (-30, -1)),
        ),
        (
            "a certificate not valid yet",
            ca.sign_csr_valid(csr_pem, (2, 30)),
        ),
        ("not a certificate", "hello".to_owned()),
        ("a chain out of order", format!("{}{device_leaf}", ca.pem)),
        (
            "a chain with the wrong issuer",
            format!("{device_leaf}{}", other_ca.pem),
        ),
    ];
    for (what, chain) in refused {
        let response = install(&roomd, &admin, &chain)?;
        assert_eq!(response.status, 422, "{what}: {}", response.text());
        let body = response.json()?;
        assert_eq!(body["field"], "certificate_chain", "{what}: {body}");
    }
    // Nothing was installed: the self-signed certificate is still served.
    let identity = get_json(&roomd, "/api/v1/identity", &admin)?;
    assert_eq!(identity["self_signed"], true, "{identity}");
    assert!(!roomd.state_dir().join("tls").join("chain.pem").exists());
    Ok(())
}

#[test]
fn who_may_read_and_enrol_the_identity() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    for (role, read, csr) in [
        ("admin", 200, 200),
        ("integrator", 200, 200),
        ("audit", 200, 403),
        ("user", 403, 403),
        ("room-control", 403, 403),
    ] {
        let token = roomd.token_for(role)?;
        let got = roomd.get("/api/v1/identity").bearer(&token).send()?.status;
        assert_eq!(got, read, "{role} GET /identity");
        let got = roomd
            .get("/api/v1/identity/csr")
            .bearer(&token)
            .send()?
            .status;
        assert_eq!(got, csr, "{role} GET /identity/csr");
    }
    let software = get_json(&roomd, "/api/v1/identity", &roomd.admin_token()?)?;
    assert_eq!(software["backend"], "software");
    assert!(software["warning"].is_string(), "{software}");
    Ok(())
}
