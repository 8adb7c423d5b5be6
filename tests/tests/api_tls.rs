//! The API speaks HTTPS only, with TLS 1.3 and 1.2 and nothing older.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use roomd_tests::{HarnessError, Roomd};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned};

/// Handshakes with a client that offers only `version`; returns the version agreed.
fn handshake_with_only(
    roomd: &Roomd,
    version: &'static rustls::SupportedProtocolVersion,
) -> ProtocolVersion {
    let mut roots = RootCertStore::empty();
    let cert = std::fs::read(roomd.cert_path()).expect("device certificate");
    for der in rustls_pemfile_certs(&cert) {
        roots.add(der).expect("device certificate as root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .expect("client versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let connection = ClientConnection::new(Arc::new(config), name).expect("client connection");
    let socket = TcpStream::connect(("127.0.0.1", roomd.port())).expect("connect");
    let mut tls = StreamOwned::new(connection, socket);
    let request = "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    tls.write_all(request.as_bytes()).expect("request over TLS");
    let mut answer = String::new();
    let _ = tls.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "answer: {answer}");
    tls.conn.protocol_version().expect("negotiated version")
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .expect("PEM certificates")
}

#[test]
fn tls_1_3_and_1_2_are_served() -> Result<(), HarnessError> {
    let roomd = Roomd::start("")?;
    assert_eq!(
        handshake_with_only(&roomd, &rustls::version::TLS13),
        ProtocolVersion::TLSv1_3
    );
    assert_eq!(
        handshake_with_only(&roomd, &rustls::version::TLS12),
        ProtocolVersion::TLSv1_2
    );
    Ok(())
}

#[test]
fn tls_1_1_is_refused_by_the_server() -> Result<(), HarnessError> {
    let roomd = Roomd::start("")?;
    // SECLEVEL=0 lets OpenSSL's client offer TLS 1.1, so a refusal comes from roomd.
    let output = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", roomd.port()),
        ])
        .args(["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-brief"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl (Debian package openssl) runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "a TLS 1.1 handshake succeeded: {text}"
    );
    // rustls answers a ClientHello without TLS 1.2 or 1.3 with a handshake_failure alert (40):
    // the refusal comes from roomd, not from the client's own settings.
    assert!(
        text.contains("SSL alert number"),
        "roomd should refuse the version itself with an alert: {text}"
    );
    Ok(())
}

#[test]
fn plain_http_gets_no_answer() -> Result<(), HarnessError> {
    let roomd = Roomd::start("")?;
    let mut socket = TcpStream::connect(("127.0.0.1", roomd.port())).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    socket
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("send plain HTTP");
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&answer)
    );
    Ok(())
}
