//! The self-signed device certificate in `cert.pem`: issued over the device key on first start,
//! reused afterwards so that clients that pinned it keep working, and re-issued (same key) only
//! when the names it must cover change or when it no longer belongs to the device key (the TPM
//! was cleared, or the backend changed).

use std::fs;
use std::path::Path;

use rcgen::{CertificateParams, DistinguishedName, DnType, SanType};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::{DeviceKey, TlsError};
use roomd_base::fsutil::write_atomic;

/// File name of the self-signed certificate (PEM) in the TLS directory.
pub const CERTIFICATE_FILE: &str = "cert.pem";
const NAMES_FILE: &str = "cert-names";

/// The device certificate in `dir`, issued anew when missing or stale.
pub(super) fn load_or_issue(
    dir: &Path,
    key: &DeviceKey,
    common_name: &str,
    names: &[String],
) -> Result<CertificateDer<'static>, TlsError> {
    let cert_path = dir.join(CERTIFICATE_FILE);
    let names_path = dir.join(NAMES_FILE);
    let wanted_names = names.join("\n");
    let names_unchanged =
        fs::read_to_string(&names_path).ok().as_deref() == Some(wanted_names.as_str());
    if names_unchanged && let Some(existing) = read_certificate(&cert_path) {
        if spki_of(&existing).as_deref() == Some(key.spki_der().as_slice()) {
            return Ok(existing);
        }
        tracing::warn!(
            path = %cert_path.display(),
            "the device certificate is not for the current device key: issuing a new one"
        );
    }
    tracing::info!(path = %cert_path.display(), "issuing the self-signed device certificate");
    let pem = key.self_signed(&params(common_name, names)?)?;
    write_atomic(&cert_path, pem.as_bytes(), 0o644)?;
    write_atomic(&names_path, wanted_names.as_bytes(), 0o644)?;
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::BadCertificate {
        path: cert_path,
        reason: e.to_string(),
    })
}

/// Subject and names of the device: used for the self-signed certificate and for CSRs.
pub(super) fn params(common_name: &str, names: &[String]) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "roomd");
    params.distinguished_name = dn;
    params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_, _>>()?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    Ok(params)
}

/// The SubjectPublicKeyInfo (DER) of a certificate, if it parses.
pub fn spki_of(certificate: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    Some(parsed.public_key().raw.to_vec())
}

fn read_certificate(path: &Path) -> Option<CertificateDer<'static>> {
    let pem = fs::read(path).ok()?;
    CertificateDer::from_pem_slice(&pem).ok()
}

fn san(name: &str) -> Result<SanType, TlsError> {
    if let Ok(ip) = name.parse() {
        return Ok(SanType::IpAddress(ip));
    }
    name.try_into()
        .map(SanType::DnsName)
        .map_err(|_| TlsError::BadName {
            name: name.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn names() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into()]
    }

    fn software_key() -> DeviceKey {
        DeviceKey::Software(Arc::new(
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        ))
    }

    #[test]
    fn issued_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let key = software_key();
        let first = load_or_issue(dir.path(), &key, "room", &names()).unwrap();
        let second = load_or_issue(dir.path(), &key, "room", &names()).unwrap();
        assert_eq!(first, second);
        assert_eq!(spki_of(&first).unwrap(), key.spki_der());
    }

    #[test]
    fn new_names_reissue_it_for_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = software_key();
        let first = load_or_issue(dir.path(), &key, "room", &names()).unwrap();
        let mut more = names();
        more.push("room-12.example.org".into());
        let second = load_or_issue(dir.path(), &key, "room", &more).unwrap();
        assert_ne!(first, second);
        assert_eq!(spki_of(&second).unwrap(), key.spki_der());
    }

    #[test]
    fn another_key_reissues_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_issue(dir.path(), &software_key(), "room", &names()).unwrap();
        let other = software_key();
        let second = load_or_issue(dir.path(), &other, "room", &names()).unwrap();
        assert_ne!(first, second);
        assert_eq!(spki_of(&second).unwrap(), other.spki_der());
    }
}
