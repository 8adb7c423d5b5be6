//! Certificate enrolment with the customer's CA over ACME (RFC 8555), as a bundle's
//! `enrolment.acme` asks: a new account bound to the customer's external account (EAB: the key
//! id and MAC key come in the signed bundle, which is what authorises the room at the CA), one
//! order for the bundle's DNS identifier, a CSR signed by the device key in the TPM (the key
//! never leaves it), and the issued chain installed through the identity's own install path,
//! which checks that it certifies the device key. From then on the API serves the CA-issued
//! chain, and the fleet channel presents it from its next connection.
//!
//! Challenges: the room answers `http-01` by telling the CA it is ready; a CA that binds
//! accounts externally may validate nothing more (pebble with `PEBBLE_VA_ALWAYS_VALID`, or a
//! private CA whose policy is the EAB credential). `device-attest-01`, which would let the CA
//! check the TPM itself, is not offered by the ACME servers available to test here.
//!
//! The ACME client is `instant-acme` with *ring* (no aws-lc), driven over `ureq`, the HTTP client
//! roomd already uses, instead of its hyper client: one TLS stack and one root store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, ExternalAccountKey,
    HttpClient, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::bundle::AcmeEnrolment;
use roomd_identity::tls::{DeviceIdentity, InstallError};

/// Largest ACME answer read (certificate chains are a few KiB).
const MAX_ANSWER_BYTES: u64 = 256 * 1024;
/// How long one ACME request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the CA may take to validate and to issue.
const ORDER_TIMEOUT: Duration = Duration::from_secs(60);

/// What was installed.
#[derive(Debug, Clone)]
pub(crate) struct Enrolled {
    /// The leaf's issuer (distinguished name).
    pub(crate) issuer: String,
    /// The leaf's expiry, RFC 3339.
    pub(crate) not_after: String,
}

/// Enrols the device key; `extra_roots` are PEM CA certificates the ACME server's HTTPS is
/// verified against besides Mozilla's roots. Errors say which step failed.
pub(crate) async fn enrol(
    acme: &AcmeEnrolment,
    identity: Arc<DeviceIdentity>,
    extra_roots: &[CertificateDer<'static>],
) -> Result<Enrolled, String> {
    let hmac = URL_SAFE_NO_PAD
        .decode(acme.eab_hmac_key.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(&acme.eab_hmac_key))
        .map_err(|e| format!("enrolment.acme.eab_hmac_key is not base64url: {e}"))?;
    let eab = ExternalAccountKey::new(acme.eab_kid.clone(), &hmac);
    let client = UreqClient::new(extra_roots);
    let (account, _credentials) = Account::builder_with_http(Box::new(client))
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            acme.directory.clone(),
            Some(&eab),
        )
        .await
        .map_err(|e| format!("ACME account at {}: {e}", acme.directory))?;
    let identifiers = [Identifier::Dns(acme.identifier.clone())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| format!("ACME order for {}: {e}", acme.identifier))?;
    {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization =
                authorization.map_err(|e| format!("ACME authorization: {e}"))?;
            match authorization.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => return Err(format!("ACME authorization is {other:?}")),
            }
            let mut challenge = authorization
                .challenge(ChallengeType::Http01)
                .ok_or("the CA offers no http-01 challenge for the identifier")?;
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("ACME challenge: {e}"))?;
        }
    }
    let retries = RetryPolicy::new().timeout(ORDER_TIMEOUT);
    let status = order
        .poll_ready(&retries)
        .await
        .map_err(|e| format!("ACME order validation: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!("the ACME order is {status:?}, not ready"));
    }
    let csr_pem = {
        let identity = identity.clone();
        let name = acme.identifier.clone();
        tokio::task::spawn_blocking(move || {
            identity.certification_request_for(&name, std::slice::from_ref(&name))
        })
        .await
        .map_err(|e| format!("the CSR task failed: {e}"))?
        .map_err(|e| format!("cannot make the CSR with the device key: {e}"))?
    };
    let csr = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .map_err(|e| format!("the CSR does not parse: {e}"))?;
    order
        .finalize_csr(csr.as_ref())
        .await
        .map_err(|e| format!("ACME finalize: {e}"))?;
    let chain = order
        .poll_certificate(&retries)
        .await
        .map_err(|e| format!("ACME certificate: {e}"))?;
    let installed = tokio::task::spawn_blocking(move || identity.install_chain(chain.as_bytes()))
        .await
        .map_err(|e| format!("the installation task failed: {e}"))?
        .map_err(|e| match e {
            InstallError::Refused(reason) => format!("the issued chain was refused: {reason}"),
            InstallError::Failed(e) => format!("cannot install the issued chain: {e}"),
        })?;
    let leaf = installed
        .first()
        .ok_or("the issued chain is empty")?
        .clone();
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("the issued certificate does not parse: {e}"))?;
    Ok(Enrolled {
        issuer: cert.issuer().to_string(),
        not_after: cert
            .validity()
            .not_after
            .to_datetime()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    })
}

/// instant-acme's HTTP requests over ureq (blocking, in `spawn_blocking`).
struct UreqClient {
    agent: ureq::Agent,
}

impl UreqClient {
    fn new(extra_roots: &[CertificateDer<'static>]) -> UreqClient {
        let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect();
        roots.extend(
            extra_roots
                .iter()
                .map(|der| Certificate::from_der(der.as_ref()).to_owned()),
        );
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::new_with_certs(&roots))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            .https_only(true)
            // ACME answers errors as problem documents the client reads.
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent(concat!("roomd/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        UreqClient { agent }
    }
}

type Boxed = Box<dyn std::error::Error + Send + Sync + 'static>;

impl HttpClient for UreqClient {
    fn request(
        &self,
        request: ureq::http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let agent = self.agent.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            // The request body is in memory already; collecting it cannot fail (Infallible).
            let body = match http_body_util::BodyExt::collect(body).await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let response = tokio::task::spawn_blocking(move || -> Result<_, Boxed> {
                let mut response = if body.is_empty() {
                    agent.run(ureq::http::Request::from_parts(parts, ()))?
                } else {
                    agent.run(ureq::http::Request::from_parts(parts, body.to_vec()))?
                };
                let bytes = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_ANSWER_BYTES)
                    .read_to_vec()?;
                let (parts, _) = response.into_parts();
                Ok((parts, bytes))
            })
            .await
            .map_err(|e| instant_acme::Error::Other(Box::new(e)))?
            .map_err(instant_acme::Error::Other)?;
            let (parts, bytes) = response;
            Ok(BytesResponse {
                parts,
                body: Box::new(Bytes::from(bytes)),
            })
        })
    }
}
