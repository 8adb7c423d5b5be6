//! The software device key (`identity.backend = "software"`): a P-256 key in `key.pem`, mode
//! 0600, created once and reused. Anyone who can read the disk can copy it, which is why it is
//! only used when configured explicitly.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};

use super::TlsError;
use roomd_base::fsutil::write_atomic;

/// File name of the software device key (PKCS#8 PEM, mode 0600) in the TLS directory.
pub const SOFTWARE_KEY_FILE: &str = "key.pem";

/// Loads `dir/key.pem`, creating it when missing. `dir` must exist.
pub fn load_or_create_software_key(dir: &Path) -> Result<KeyPair, TlsError> {
    let path = dir.join(SOFTWARE_KEY_FILE);
    if path.exists() {
        return load_key(&path);
    }
    tracing::info!(path = %path.display(), "creating the device's software TLS key");
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    write_atomic(&path, key.serialize_pem().as_bytes(), 0o600)?;
    Ok(key)
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
    let key = KeyPair::from_pem(&pem).map_err(|e| TlsError::BadKey {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
        return Err(TlsError::BadKey {
            path: path.to_owned(),
            reason: "not a NIST P-256 key".to_owned(),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_software_key(dir.path()).unwrap();
        let second = load_or_create_software_key(dir.path()).unwrap();
        assert_eq!(first.public_key_raw(), second.public_key_raw());
        let mode = fs::metadata(dir.path().join(SOFTWARE_KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_software_key(dir.path()).unwrap();
        let key = dir.path().join(SOFTWARE_KEY_FILE);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_software_key(dir.path()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_garbage_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join(SOFTWARE_KEY_FILE);
        write_atomic(&key, b"not a key", 0o600).unwrap();
        let err = load_or_create_software_key(dir.path()).unwrap_err();
        assert!(err.to_string().contains("key.pem"), "{err}");
    }
}
