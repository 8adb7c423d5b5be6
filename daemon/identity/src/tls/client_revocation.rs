//! Revocation of client certificates (`api.client_crl`): the CRLs rustls checks every client
//! certificate against during the handshake, so a revoked certificate never reaches the API.

use std::path::Path;

use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;

use super::TlsError;

/// The CRLs in the PEM file at `path`; a file without any is refused (a typo would otherwise
/// leave every revoked certificate working).
pub fn load_client_crls(
    path: &Path,
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::ClientCrl {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let crls = CertificateRevocationListDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if crls.is_empty() {
        return Err(bad("it holds no PEM X509 CRL".to_owned()));
    }
    Ok(crls)
}
