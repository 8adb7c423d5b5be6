//! The software key and self-signed certificate, created once and reused.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::fsutil::{AtomicWriteError, write_atomic};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot create or read the TLS directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a usable private key ({reason}); move it away to let roomd create a new one"
    )]
    BadKey { path: PathBuf, reason: String },
    #[error("{path} must not be readable by others (mode {mode:o}); run: chmod 600 {path}")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("certificate name {name:?} is neither a DNS name nor an IP address")]
    BadName { name: String },
    #[error("cannot create the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
    #[error("invalid TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A certificate and its private key, as rustls wants them.
pub struct SoftwareIdentity {
    pub certificate: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for SoftwareIdentity {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareIdentity")
            .field("sha256", &self.sha256())
            .finish_non_exhaustive()
    }
}

impl SoftwareIdentity {
    /// Loads the identity from `dir`, creating the key and certificate when missing, and
    /// re-issuing the certificate when `names` differ from the ones it was made for.
    pub fn load_or_create(
        dir: &Path,
        common_name: &str,
        names: &[String],
    ) -> Result<Self, TlsError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| TlsError::Dir {
                path: dir.to_owned(),
                source,
            })?;
        let key_path = dir.join("key.pem");
        let cert_path = dir.join("cert.pem");
        let names_path = dir.join("cert-names");

        let key_pair = if key_path.exists() {
            load_key(&key_path)?
        } else {
            tracing::info!(path = %key_path.display(), "creating the device's TLS key");
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
            key
        };

        let wanted_names = names.join("\n");
        let current_names = fs::read_to_string(&names_path).ok();
        let cert_pem = match fs::read_to_string(&cert_path) {
            Ok(pem) if current_names.as_deref() == Some(wanted_names.as_str()) => pem,
            _ => {
                tracing::info!(path = %cert_path.display(), "issuing the self-signed TLS certificate");
                let pem = self_signed(&key_pair, common_name, names)?;
                write_atomic(&cert_path, pem.as_bytes(), 0o644)?;
                write_atomic(&names_path, wanted_names.as_bytes(), 0o644)?;
                pem
            }
        };
        let certificate = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| TlsError::BadKey {
                path: cert_path.clone(),
                reason: e.to_string(),
            })?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        Ok(SoftwareIdentity { certificate, key })
    }

    /// SHA-256 of the certificate, as colon-separated upper-case hex (what browsers show).
    pub fn sha256(&self) -> String {
        Sha256::digest(self.certificate.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

fn load_key(path: &Path) -> Result<KeyPair, TlsError> {
    let meta = fs::metadata(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    let pem = fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    KeyPair::from_pem(&pem).map_err(|e| TlsError::BadKey {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn self_signed(key: &KeyPair, common_name: &str, names: &[String]) -> Result<String, TlsError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "roomd");
    params.distinguished_name = dn;
    params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_, _>>()?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    Ok(params.self_signed(key)?.pem())
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
    use super::*;

    fn names() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into()]
    }

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = SoftwareIdentity::load_or_create(dir.path(), "room", &names()).unwrap();
        let second = SoftwareIdentity::load_or_create(dir.path(), "room", &names()).unwrap();
        assert_eq!(first.sha256(), second.sha256());
        let mode = fs::metadata(dir.path().join("key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn new_names_reissue_the_certificate_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = SoftwareIdentity::load_or_create(dir.path(), "room", &names()).unwrap();
        let mut more = names();
        more.push("room-12.example.org".into());
        let second = SoftwareIdentity::load_or_create(dir.path(), "room", &more).unwrap();
        assert_ne!(first.sha256(), second.sha256());
        assert_eq!(first.key.secret_der(), second.key.secret_der());
    }

    #[test]
    fn a_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        SoftwareIdentity::load_or_create(dir.path(), "room", &names()).unwrap();
        let key = dir.path().join("key.pem");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SoftwareIdentity::load_or_create(dir.path(), "room", &names()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_garbage_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        write_atomic(&key, b"not a key", 0o600).unwrap();
        let err = SoftwareIdentity::load_or_create(dir.path(), "room", &names()).unwrap_err();
        assert!(err.to_string().contains("key.pem"), "{err}");
    }
}
