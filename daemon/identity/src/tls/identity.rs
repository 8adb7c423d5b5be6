//! The device identity as a whole: the device key (TPM or software), the certificate the API
//! serves with it, and the files in `<state_dir>/tls/`.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use super::installed_chain::{self, CHAIN_FILE, ChainError};
use super::{
    DeviceKey, SOFTWARE_KEY_FILE, ServedCertificate, TlsError, TpmKey, device_certificate,
    load_or_create_software_key,
};
use crate::tpm::{DEVICE_KEY_HANDLE, Tpm};
use roomd_base::fsutil::write_atomic;
use roomd_base::sync::lock;
use roomd_model::IdentityStatus;
use roomd_model::config::{IdentityBackend, IdentityConfig};

/// The device key, the self-signed certificate over it and the certificate chain the API
/// serves (an installed CA-issued chain, else the self-signed certificate).
pub struct DeviceIdentity {
    key: DeviceKey,
    dir: PathBuf,
    common_name: String,
    names: Vec<String>,
    self_signed: CertificateDer<'static>,
    served: Arc<ServedCertificate>,
    /// One installation at a time, so the file and the served chain cannot disagree.
    installing: Mutex<()>,
}

/// Why a certificate chain was not installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The chain itself is unacceptable: the caller's problem.
    #[error(transparent)]
    Refused(#[from] ChainError),
    /// It could not be stored or used: the device's problem.
    #[error(transparent)]
    Failed(#[from] TlsError),
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
        let self_signed = device_certificate::load_or_issue(dir, &key, common_name, names)?;
        let chain = installed_chain::load_installed(dir, &key.spki_der())
            .unwrap_or_else(|| vec![self_signed.clone()]);
        let served = Arc::new(ServedCertificate::new(CertifiedKey::new(
            chain,
            key.rustls_key()?,
        )));
        Ok(DeviceIdentity {
            key,
            dir: dir.to_owned(),
            common_name: common_name.to_owned(),
            names: names.to_vec(),
            self_signed,
            served,
            installing: Mutex::new(()),
        })
    }

    /// A PKCS#10 request for a CA to certify the device key, PEM, with the device's subject and
    /// names. Blocks while the TPM signs.
    pub fn certification_request(&self) -> Result<String, TlsError> {
        self.key
            .certification_request(&device_certificate::params(&self.common_name, &self.names)?)
    }

    /// A PKCS#10 request for the device key with `common_name` and exactly `names` (DNS names or
    /// addresses), PEM: what an enrolment protocol asks for when the CA decides the names (an
    /// ACME order must match the CSR's names exactly). Blocks while the TPM signs.
    pub fn certification_request_for(
        &self,
        common_name: &str,
        names: &[String],
    ) -> Result<String, TlsError> {
        self.key
            .certification_request(&device_certificate::params(common_name, names)?)
    }

    /// Checks a CA-issued chain (PEM, leaf first), stores it and serves it from the next
    /// handshake on. Blocks on file I/O.
    pub fn install_chain(&self, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, InstallError> {
        let chain = installed_chain::check_chain(pem, &self.key.spki_der())?;
        let _one_at_a_time = lock(&self.installing);
        write_atomic(
            &self.dir.join(CHAIN_FILE),
            installed_chain::to_pem(&chain).as_bytes(),
            0o644,
        )
        .map_err(TlsError::from)?;
        self.served
            .replace(CertifiedKey::new(chain.clone(), self.key.rustls_key()?));
        tracing::info!(
            "installed a CA-issued certificate chain ({} certificates); certificate SHA-256 {}",
            chain.len(),
            self.certificate_sha256()
        );
        Ok(chain)
    }

    /// The identity as the status tree shows it; a software key comes with a warning.
    pub fn status(&self) -> IdentityStatus {
        let warning = match self.key {
            DeviceKey::Tpm(_) => None,
            DeviceKey::Software(_) => Some(format!(
                "the device key is a software key in {} (identity.backend = \"software\"): \
                 anyone with the disk can copy it and impersonate this room",
                self.dir.join(SOFTWARE_KEY_FILE).display()
            )),
        };
        IdentityStatus {
            backend: self.key.backend(),
            key_sha256: self.key.fingerprint(),
            certificate_sha256: self.certificate_sha256(),
            warning,
        }
    }

    /// Whether the API serves the self-signed certificate (no chain installed, or it no longer
    /// fits).
    pub fn serves_self_signed(&self) -> bool {
        self.served_chain() == [self.self_signed.clone()]
    }

    /// The device key, to sign with or to reach its TPM.
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
