//! BFCP over TLS (`TCP/TLS/BFCP`, RFC 8856 §5 and RFC 8122): the room connects to the far end's
//! floor control over TCP and runs TLS on it, each side known by the certificate fingerprint in
//! its SDP (carried over SIP-TLS), not by a CA: the far end's certificate must hash to the
//! `a=fingerprint:sha-256` of its SDP, and the room shows the certificate whose fingerprint is
//! in its own BFCP section. A far end that shows another certificate is refused before any BFCP
//! message is read.
//!
//! The room's certificate for it is its own, not the DTLS-SRTP media's: GStreamer keeps that
//! one's private key to itself. It is made once per process (ECDSA P-256, self-signed: the trust
//! is in the fingerprint) and lives in memory only. rustls does the TLS (TLS 1.2 and 1.3, the
//! ring provider, as every TLS of roomd); only the check of the far end's certificate is ours.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long the TLS handshake may take once TCP is connected.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why BFCP over TLS did not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FloorTlsError {
    /// The room's own certificate or key did not load.
    #[error("the room's certificate for BFCP over TLS: {0}")]
    Certificate(String),
    /// rustls refused the settings (a bug rather than input).
    #[error("TLS settings for BFCP: {0}")]
    Settings(#[source] rustls::Error),
    /// The handshake failed: among others, the far end's certificate does not match the
    /// fingerprint of its SDP.
    #[error("BFCP over TLS with {remote}: {source}")]
    Handshake {
        /// The far end.
        remote: SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The handshake did not finish in time.
    #[error("BFCP over TLS with {0}: no TLS handshake in 5 s")]
    Timeout(SocketAddr),
}

/// The room's certificate for BFCP over TLS, and its key.
pub(crate) struct FloorCertificate {
    /// The certificate and its private key, PEM.
    pem: String,
    fingerprint: [u8; 32],
}

impl std::fmt::Debug for FloorCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FloorCertificate({:02X?})", self.fingerprint)
    }
}

impl FloorCertificate {
    /// SHA-256 of the certificate, for the room's `a=fingerprint` in its BFCP section.
    pub(crate) fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }
}

/// The room's certificate for BFCP over TLS, made on first use.
pub(crate) fn room_certificate() -> Result<&'static FloorCertificate, FloorTlsError> {
    static CERTIFICATE: OnceLock<Result<FloorCertificate, String>> = OnceLock::new();
    CERTIFICATE
        .get_or_init(|| {
            let made = rcgen::generate_simple_self_signed(vec!["roomd".to_owned()])
                .map_err(|e| e.to_string())?;
            Ok(FloorCertificate {
                pem: format!("{}{}", made.cert.pem(), made.signing_key.serialize_pem()),
                fingerprint: Sha256::digest(made.cert.der().as_ref()).into(),
            })
        })
        .as_ref()
        .map_err(|e| FloorTlsError::Certificate(e.clone()))
}

/// Runs TLS as a client on `stream` (connected to `remote`), showing `room` and accepting only
/// a far end whose certificate's SHA-256 is `far_end_fingerprint`.
pub(crate) async fn connect(
    stream: TcpStream,
    remote: SocketAddr,
    far_end_fingerprint: [u8; 32],
    room: &FloorCertificate,
) -> Result<TlsStream<TcpStream>, FloorTlsError> {
    connect_with_pem(stream, remote, far_end_fingerprint, &room.pem).await
}

async fn connect_with_pem(
    stream: TcpStream,
    remote: SocketAddr,
    far_end_fingerprint: [u8; 32],
    room_pem: &str,
) -> Result<TlsStream<TcpStream>, FloorTlsError> {
    let (chain, key) = load(room_pem)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = FingerprintVerifier {
        expected: far_end_fingerprint,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(FloorTlsError::Settings)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)
        .map_err(FloorTlsError::Settings)?;
    let name = ServerName::IpAddress(remote.ip().into());
    tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, stream),
    )
    .await
    .map_err(|_| FloorTlsError::Timeout(remote))?
    .map_err(|source| FloorTlsError::Handshake { remote, source })
}

/// Runs TLS as the server on `stream` (the far end connected from `from`), showing `room`
/// and taking only a far end whose certificate's SHA-256 is `far_end_fingerprint` (a client
/// certificate is required).
pub(crate) async fn accept(
    stream: TcpStream,
    from: SocketAddr,
    far_end_fingerprint: [u8; 32],
    room: &FloorCertificate,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, FloorTlsError> {
    let (chain, key) = load(&room.pem)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = FingerprintVerifier {
        expected: far_end_fingerprint,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(FloorTlsError::Settings)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain, key)
        .map_err(FloorTlsError::Settings)?;
    tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_rustls::TlsAcceptor::from(Arc::new(config)).accept(stream),
    )
    .await
    .map_err(|_| FloorTlsError::Timeout(from))?
    .map_err(|source| FloorTlsError::Handshake {
        remote: from,
        source,
    })
}

/// The certificate chain and private key in `pem`.
fn load(
    pem: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), FloorTlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| FloorTlsError::Certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(FloorTlsError::Certificate(
            "no certificate in it".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| FloorTlsError::Certificate(format!("its private key: {e}")))?;
    Ok((chain, key))
}

/// Accepts exactly the certificate of the far end's SDP fingerprint, as server or as client;
/// the handshake's signatures are checked as rustls checks any (the certificate's key signed
/// them).
#[derive(Debug)]
struct FingerprintVerifier {
    expected: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl FingerprintVerifier {
    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if Sha256::digest(end_entity.as_ref()).as_slice() == self.expected {
            Ok(())
        } else {
            Err(rustls::Error::General(
                "the far end's certificate is not the one whose fingerprint its SDP names".into(),
            ))
        }
    }
}

impl ClientCertVerifier for FingerprintVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for FingerprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use roomd_bfcp::{
        FloorEvent, FloorIds, FloorServer, Participant, RequestStatus, ServerIds, Timers, Transport,
    };
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    use super::*;

    /// A far end's certificate and key, and its SHA-256 (what its SDP names).
    fn far_end_certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>, [u8; 32]) {
        let certified = rcgen::generate_simple_self_signed(vec!["far-end.example".into()])
            .expect("a certificate");
        let der = certified.cert.der().clone();
        let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).expect("key");
        let fingerprint = Sha256::digest(der.as_ref()).into();
        (der, key, fingerprint)
    }

    /// The far end's side of a check by fingerprint: it takes only the room's certificate,
    /// by the fingerprint of the room's answer.
    fn checking_the_room() -> FingerprintVerifier {
        FingerprintVerifier {
            expected: *room().fingerprint(),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    struct FarEnd {
        address: SocketAddr,
        fingerprint: [u8; 32],
        acceptor: TlsAcceptor,
        listener: TcpListener,
    }

    /// A far end whose floor control listens (`a=setup:passive`).
    async fn far_end() -> FarEnd {
        let (der, key, fingerprint) = far_end_certificate();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(Arc::new(checking_the_room()))
        .with_single_cert(vec![der], key)
        .expect("server settings");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        FarEnd {
            address: listener.local_addr().expect("address"),
            fingerprint,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            listener,
        }
    }

    fn room() -> &'static FloorCertificate {
        room_certificate().expect("the room's certificate")
    }

    #[tokio::test]
    async fn bfcp_runs_over_tls_between_the_certificates_the_sdps_name() {
        let room = room();
        let far = far_end().await;
        let accepting = async {
            let (tcp, _) = far.listener.accept().await.expect("accepted");
            far.acceptor.accept(tcp).await.expect("TLS as server")
        };
        let connecting = async {
            let tcp = TcpStream::connect(far.address).await.expect("connected");
            connect(tcp, far.address, far.fingerprint, room).await
        };
        let (server_side, room_side) = tokio::join!(accepting, connecting);
        // Both ends took the other's certificate by its fingerprint.
        let room_side = room_side.expect("TLS as client");
        // BFCP runs over it: the room asks the far end's server for the floor and gets it.
        let ids = ServerIds {
            conference_id: 9,
            floor_id: 1,
            far_end_user_id: 3,
            room_user_id: 2,
        };
        let (_server, _far_events) = FloorServer::start(
            Transport::Tcp(Box::new(server_side)),
            ids,
            Timers::default(),
        );
        let (participant, mut events) = Participant::start(
            Transport::Tcp(Box::new(room_side)),
            FloorIds {
                conference_id: 9,
                user_id: 3,
                floor_id: 1,
            },
            Timers::default(),
        );
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), participant.request_floor())
                .await
                .expect("answered in 5 s")
                .expect("answered"),
            RequestStatus::Granted
        );
        let mut granted = false;
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_secs(5), events.recv()).await
        {
            if event == FloorEvent::Granted {
                granted = true;
                break;
            }
        }
        assert!(granted, "the room heard no Granted");
    }

    #[tokio::test]
    async fn a_far_end_showing_another_certificate_than_its_sdp_names_is_refused() {
        let room = room();
        let far = far_end().await;
        let mut wrong = far.fingerprint;
        wrong[0] ^= 1;
        let accepting = async {
            let (tcp, _) = far.listener.accept().await.expect("accepted");
            // The room ends the handshake; the far end sees it fail.
            far.acceptor.accept(tcp).await.is_err()
        };
        let connecting = async {
            let tcp = TcpStream::connect(far.address).await.expect("connected");
            connect(tcp, far.address, wrong, room).await
        };
        let (far_failed, refused) = tokio::join!(accepting, connecting);
        let error = refused.expect_err("a certificate other than the SDP's is refused");
        assert!(
            error
                .to_string()
                .contains("not the one whose fingerprint its SDP names"),
            "{error}"
        );
        assert!(far_failed);
    }

    #[tokio::test]
    async fn a_room_certificate_without_a_key_is_a_clear_error() {
        let far = far_end().await;
        let pem = &room().pem;
        let certificate_only = &pem[..pem.find("-----END CERTIFICATE-----").expect("PEM")
            + "-----END CERTIFICATE-----".len()];
        let tcp = TcpStream::connect(far.address).await.expect("connected");
        let error = connect_with_pem(tcp, far.address, far.fingerprint, certificate_only)
            .await
            .expect_err("no key, no TLS");
        assert!(matches!(error, FloorTlsError::Certificate(_)), "{error}");
    }

    /// A far end that connects to the room (`a=setup:active`), as a TLS client with a
    /// certificate of its own (whose fingerprint is returned), checking the room's.
    fn far_end_connecting(
        to: SocketAddr,
    ) -> (
        [u8; 32],
        impl std::future::Future<Output = std::io::Result<TlsStream<TcpStream>>>,
    ) {
        let (der, key, fingerprint) = far_end_certificate();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(checking_the_room()))
        .with_client_auth_cert(vec![der], key)
        .expect("client settings");
        let connecting = async move {
            let tcp = TcpStream::connect(to).await?;
            TlsConnector::from(Arc::new(config))
                .connect(ServerName::IpAddress(to.ip().into()), tcp)
                .await
        };
        (fingerprint, connecting)
    }

    #[tokio::test]
    async fn a_far_end_that_connects_gets_bfcp_over_tls_when_its_certificate_is_its_sdps() {
        let room = room();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let address = listener.local_addr().expect("address");
        let (far_fingerprint, connecting) = far_end_connecting(address);
        let accepting = async {
            let (tcp, peer) = listener.accept().await.expect("accepted");
            accept(tcp, peer, far_fingerprint, room).await
        };
        let (room_side, far_side) = tokio::join!(accepting, connecting);
        let room_side = room_side.expect("TLS as server");
        let far_side = far_side.expect("the far end checked the room's certificate");
        // BFCP over it, the room serving this time: the far end asks and is granted.
        let (_server, _room_events) = FloorServer::start(
            Transport::Tcp(Box::new(room_side)),
            ServerIds {
                conference_id: 5,
                floor_id: 2,
                far_end_user_id: 7,
                room_user_id: 1,
            },
            Timers::default(),
        );
        let (participant, _far_events) = Participant::start(
            Transport::Tcp(Box::new(far_side)),
            FloorIds {
                conference_id: 5,
                user_id: 7,
                floor_id: 2,
            },
            Timers::default(),
        );
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), participant.request_floor())
                .await
                .expect("answered in 5 s")
                .expect("answered"),
            RequestStatus::Granted
        );

        // A far end whose certificate is not the one its SDP named is refused.
        let (_, connecting) = far_end_connecting(address);
        let accepting = async {
            let (tcp, peer) = listener.accept().await.expect("accepted");
            accept(tcp, peer, far_fingerprint, room).await
        };
        let (refused, _) = tokio::join!(accepting, connecting);
        let error = refused.expect_err("another certificate than the SDP's");
        assert!(
            error
                .to_string()
                .contains("not the one whose fingerprint its SDP names"),
            "{error}"
        );
    }
}
