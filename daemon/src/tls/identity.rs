//! The device identity as a whole: the device key (TPM or software), the certificate the API
//! serves with it, and the files in `<state_dir>/tls/`.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use super::{
    DeviceKey, ServedCertificate, TlsError, TpmKey, device_certificate, load_or_create_software_key,
};
use crate::config::{IdentityBackend, IdentityConfig};
use crate::tpm::{DEVICE_KEY_HANDLE, Tpm};

pub struct DeviceIdentity {
    key: DeviceKey,
    dir: PathBuf,
    served: Arc<ServedCertificate>,
}

impl DeviceIdentity {
    /// Opens the device key as configured (creating it on first start) and the certificate
    /// to serve with it. `dir` is `<state_dir>/tls`.
    pub fn open(
        config: &IdentityConfig,
        dir: &Path,
        common_name: &str,
        names: &[String],
    ) -> Result<DeviceIdentity, TlsError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| TlsError::Dir {
                path: dir.to_owned(),
                source,
            })?;
        let key = match config.backend {
            IdentityBackend::Tpm => {
                let tpm = Tpm::open(&config.tcti, DEVICE_KEY_HANDLE).map_err(|source| {
                    TlsError::NoTpm {
                        tcti: config.tcti.clone(),
                        source,
                    }
                })?;
                DeviceKey::Tpm(TpmKey::new(tpm))
            }
            IdentityBackend::Software => {
                DeviceKey::Software(Arc::new(load_or_create_software_key(dir)?))
            }
        };
        let certificate = device_certificate::load_or_issue(dir, &key, common_name, names)?;
        let served = Arc::new(ServedCertificate::new(CertifiedKey::new(
            vec![certificate],
            key.rustls_key()?,
        )));
        Ok(DeviceIdentity {
            key,
            dir: dir.to_owned(),
            served,
        })
    }

    pub fn key(&self) -> &DeviceKey {
        &self.key
    }

    /// Where the identity's files live (`<state_dir>/tls`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the TLS server resolves its certificate from.
    pub fn served(&self) -> Arc<ServedCertificate> {
        self.served.clone()
    }

    /// The chain the API serves now, leaf first.
    pub fn served_chain(&self) -> Vec<CertificateDer<'static>> {
        self.served.current().cert.clone()
    }

    /// SHA-256 of the served leaf certificate (DER), colon-separated upper-case hex: what
    /// browsers show and clients pin.
    pub fn certificate_sha256(&self) -> String {
        self.served_chain()
            .first()
            .map(|leaf| colon_hex(&Sha256::digest(leaf.as_ref())))
            .unwrap_or_default()
    }
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
