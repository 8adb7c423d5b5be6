//! The device key lives in a (software) TPM: created once, reused across restarts, and the key
//! the API's TLS handshakes are signed with. Each test manufactures its own swtpm.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use roomd_tests::{HarnessError, Roomd, Swtpm};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Persistent handle of the device key (docs/identity.md).
const DEVICE_KEY_HANDLE: &str = "0x81010010";

fn identity_status(roomd: &Roomd, token: &str) -> Result<Value, HarnessError> {
    roomd
        .get("/api/v1/status/identity")
        .bearer(token)
        .send()?
        .expect_status(200, "GET status/identity")?
        .json()
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn spki_of(certificate: &[u8]) -> Vec<u8> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).expect("X.509");
    parsed.public_key().raw.to_vec()
}

fn certificate_in(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).expect("a PEM certificate")
}

/// One request over a rustls connection that offers only `version` and trusts only the
/// device certificate; returns the certificate the server presented.
fn handshake(
    roomd: &Roomd,
    version: &'static rustls::SupportedProtocolVersion,
) -> CertificateDer<'static> {
    let mut roots = RootCertStore::empty();
    roots.add(certificate_in(&roomd.cert_path())).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let connection = ClientConnection::new(Arc::new(config), name).expect("connection");
    let socket = TcpStream::connect(("127.0.0.1", roomd.port())).expect("connect");
    let mut tls = StreamOwned::new(connection, socket);
    let request = "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    tls.write_all(request.as_bytes()).expect("request over TLS");
    let mut answer = String::new();
    let _ = tls.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "answer: {answer}");
    assert_eq!(
        tls.conn.protocol_version(),
        Some(match version.version {
            ProtocolVersion::TLSv1_2 => ProtocolVersion::TLSv1_2,
            _ => ProtocolVersion::TLSv1_3,
        })
    );
    tls.conn.peer_certificates().expect("server certificate")[0].clone()
}

#[test]
fn the_key_is_created_once_and_reused_across_restarts() -> Result<(), HarnessError> {
    let tpm = Swtpm::start()?;
    let mut roomd = Roomd::start_claimed(&tpm.identity_toml())?;
    assert!(
        roomd
            .stderr_text()
            .contains("creating the device key in the TPM"),
        "{}",
        roomd.stderr_text()
    );
    let token = roomd.token_for("user")?;
    let first = identity_status(&roomd, &token)?;
    assert_eq!(first["backend"], "tpm", "{first}");
    assert_eq!(first["warning"], Value::Null, "{first}");
    let first_cert = std::fs::read(roomd.cert_path()).expect("cert.pem");

    roomd.restart()?;
    assert!(
        !roomd.stderr_text().contains("creating the device key"),
        "a second key was created: {}",
        roomd.stderr_text()
    );
    let second = identity_status(&roomd, &token)?;
    assert_eq!(second, first);
    assert_eq!(
        std::fs::read(roomd.cert_path()).expect("cert.pem"),
        first_cert
    );

    roomd.stop_sigterm()?;
    let in_tpm = tpm.public_key_der(DEVICE_KEY_HANDLE);
    assert_eq!(first["key_sha256"], hex_sha256(&in_tpm), "{first}");
    Ok(())
}

#[test]
fn rustls_handshakes_are_signed_by_the_key_in_the_tpm() -> Result<(), HarnessError> {
    let tpm = Swtpm::start()?;
    let mut roomd = Roomd::start(&tpm.identity_toml())?;
    let tls13 = handshake(&roomd, &rustls::version::TLS13);
    let tls12 = handshake(&roomd, &rustls::version::TLS12);
    assert_eq!(tls13, tls12);
    assert_eq!(tls13, certificate_in(&roomd.cert_path()));
    roomd.stop_sigterm()?;
    // The handshake verified against the certificate's key, and that key is the one whose
    // private part only the TPM holds.
    assert_eq!(spki_of(&tls13), tpm.public_key_der(DEVICE_KEY_HANDLE));
    Ok(())
}

#[test]
fn openssl_s_client_completes_the_handshake() -> Result<(), HarnessError> {
    let tpm = Swtpm::start()?;
    let roomd = Roomd::start(&tpm.identity_toml())?;
    for version in ["-tls1_3", "-tls1_2"] {
        let output = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{}", roomd.port()),
            ])
            .args([
                version,
                "-verify_return_error",
                "-verify_hostname",
                "localhost",
            ])
            .arg("-CAfile")
            .arg(roomd.cert_path())
            .stdin(Stdio::null())
            .output()
            .expect("openssl (Debian package openssl) runs");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "openssl s_client {version} failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
        assert!(text.contains("Peer signature type: ECDSA"), "{text}");
    }
    Ok(())
}

#[test]
fn without_a_tpm_roomd_refuses_to_start_and_says_how_to_opt_out() {
    let mut tpm = Swtpm::start().expect("swtpm");
    let identity = tpm.identity_toml();
    let tcti = tpm.tcti();
    tpm.stop();
    match Roomd::start(&identity) {
        Err(HarnessError::ExitedEarly { status, stderr }) => {
            assert!(!status.success(), "{status}");
            assert!(stderr.contains(&tcti), "{stderr}");
            assert!(
                stderr.contains("identity.backend = \"software\""),
                "{stderr}"
            );
        }
        Err(other) => panic!("unexpected harness error: {other}"),
        Ok(_) => panic!("roomd started without its TPM"),
    }
    // The default TCTI, on a path that has no TPM.
    match Roomd::start("[identity]\ntcti = \"device:/nonexistent/tpmrm0\"\n") {
        Err(HarnessError::ExitedEarly { status, stderr }) => {
            assert!(!status.success(), "{status}");
            assert!(stderr.contains("device:/nonexistent/tpmrm0"), "{stderr}");
        }
        Err(other) => panic!("unexpected harness error: {other}"),
        Ok(_) => panic!("roomd started without a TPM"),
    }
}

#[test]
fn a_software_key_is_used_only_when_configured_and_shown_as_a_warning() -> Result<(), HarnessError>
{
    let mut roomd = Roomd::start_claimed("[identity]\nbackend = \"software\"\n")?;
    let token = roomd.token_for("user")?;
    let identity = identity_status(&roomd, &token)?;
    assert_eq!(identity["backend"], "software", "{identity}");
    let warning = identity["warning"].as_str().unwrap_or_default();
    assert!(warning.contains("software key"), "{identity}");
    let key = roomd.state_dir().join("tls").join("key.pem");
    assert!(key.exists());
    let cert = certificate_in(&roomd.cert_path());
    assert_eq!(identity["key_sha256"], hex_sha256(&spki_of(&cert)));
    roomd.stop_sigterm()?;
    Ok(())
}

#[test]
fn returning_clients_resume_without_another_tpm_signature() -> Result<(), HarnessError> {
    // A full handshake costs one signature in the TPM (slow on hardware); a client that comes
    // back resumes its session, which needs none.
    let tpm = Swtpm::start()?;
    let roomd = Roomd::start(&tpm.identity_toml())?;
    let mut roots = RootCertStore::empty();
    roots.add(certificate_in(&roomd.cert_path())).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let connection = ClientConnection::new(config.clone(), name).expect("connection");
        let socket = TcpStream::connect(("127.0.0.1", roomd.port())).expect("connect");
        let mut tls = StreamOwned::new(connection, socket);
        let request = "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        tls.write_all(request.as_bytes()).expect("request");
        let mut answer = String::new();
        let _ = tls.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        kinds.push(tls.conn.handshake_kind());
    }
    assert_eq!(
        kinds,
        [
            Some(rustls::HandshakeKind::Full),
            Some(rustls::HandshakeKind::Resumed),
            Some(rustls::HandshakeKind::Resumed)
        ]
    );
    Ok(())
}
