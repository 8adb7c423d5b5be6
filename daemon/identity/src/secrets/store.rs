//! The secret store: a sealed data-encryption key and AES-256-GCM files.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::SecretsError;
use crate::tpm::Tpm;
use roomd_base::fsutil::write_atomic;

const SEALED_KEY_FILE: &str = "dek.sealed";
const PLAIN_KEY_FILE: &str = "dek.key";
const KEY_BYTES: usize = 32;
/// First byte of every secret file, so the format can change later.
const FORMAT_VERSION: u8 = 1;
const NAME_MAX_CHARS: usize = 64;

/// What protects the data-encryption key.
pub enum KeyProtection {
    /// Sealed by the TPM: opens only on this device.
    Tpm(Tpm),
    /// A 0600 file (`identity.backend = "software"`).
    Software,
}

/// Secrets encrypted at rest, one file per name in a private directory, under a data-encryption
/// key that only this device can open (see [`KeyProtection`]).
pub struct SecretStore {
    dir: PathBuf,
    key: LessSafeKey,
}

impl SecretStore {
    /// Opens the store in `dir`, creating its key on first use.
    pub fn open(dir: &Path, protection: &KeyProtection) -> Result<SecretStore, SecretsError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| SecretsError::Io {
                path: dir.to_owned(),
                source,
            })?;
        let key = match protection {
            KeyProtection::Tpm(tpm) => sealed_key(dir, tpm)?,
            KeyProtection::Software => plain_key(dir)?,
        };
        let key = UnboundKey::new(&AES_256_GCM, &key)
            .map_err(|_| SecretsError::Crypto("AES-256-GCM refused a 32-byte key"))?;
        Ok(SecretStore {
            dir: dir.to_owned(),
            key: LessSafeKey::new(key),
        })
    }

    /// Stores `secret` under `name`, replacing what was there (atomically).
    pub fn put(&self, name: &str, secret: &[u8]) -> Result<(), SecretsError> {
        let path = self.path_of(name)?;
        let mut nonce = [0u8; NONCE_LEN];
        roomd_base::random::fill(&mut nonce);
        let mut sealed = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SecretsError::Crypto("AES-256-GCM could not encrypt"))?;
        let mut file = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        file.push(FORMAT_VERSION);
        file.extend_from_slice(&nonce);
        file.extend_from_slice(&sealed);
        write_atomic(&path, &file, 0o600)?;
        Ok(())
    }

    /// The secret stored under `name`, or `None` if there is none.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SecretsError> {
        let path = self.path_of(name)?;
        let file = match fs::read(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SecretsError::Io { path, source }),
        };
        let Some((&FORMAT_VERSION, rest)) = file.split_first() else {
            return Err(SecretsError::Damaged { path });
        };
        let Some((nonce, sealed)) = rest.split_first_chunk::<NONCE_LEN>() else {
            return Err(SecretsError::Damaged { path });
        };
        let mut sealed = sealed.to_vec();
        let opened = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(name.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SecretsError::Undecryptable { path: path.clone() })?;
        Ok(Some(opened.to_vec()))
    }

    /// Deletes the secret stored under `name`; none stored is fine.
    pub fn remove(&self, name: &str) -> Result<(), SecretsError> {
        let path = self.path_of(name)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SecretsError::Io { path, source }),
        }
    }

    /// The directory the store keeps its files in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, name: &str) -> Result<PathBuf, SecretsError> {
        let valid = !name.is_empty()
            && name.chars().count() <= NAME_MAX_CHARS
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(SecretsError::BadName {
                name: name.to_owned(),
            });
        }
        Ok(self.dir.join(format!("{name}.secret")))
    }
}

/// The DEK sealed in `dir/dek.sealed`, made and sealed on first use.
fn sealed_key(dir: &Path, tpm: &Tpm) -> Result<Vec<u8>, SecretsError> {
    let path = dir.join(SEALED_KEY_FILE);
    match fs::read(&path) {
        Ok(blob) => tpm
            .unseal(blob)
            .map_err(|source| SecretsError::Unseal { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; KEY_BYTES];
            roomd_base::random::fill(&mut key);
            let blob = tpm.seal(key.clone()).map_err(SecretsError::Seal)?;
            write_atomic(&path, &blob, 0o600)?;
            Ok(key)
        }
        Err(source) => Err(SecretsError::Io { path, source }),
    }
}

/// The DEK in `dir/dek.key` (software backend), made on first use.
fn plain_key(dir: &Path) -> Result<Vec<u8>, SecretsError> {
    let path = dir.join(PLAIN_KEY_FILE);
    match fs::read(&path) {
        Ok(key) if key.len() == KEY_BYTES => Ok(key),
        Ok(_) => Err(SecretsError::Damaged { path }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; KEY_BYTES];
            roomd_base::random::fill(&mut key);
            write_atomic(&path, &key, 0o600)?;
            Ok(key)
        }
        Err(source) => Err(SecretsError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::DEVICE_KEY_HANDLE;
    use crate::tpm::test_swtpm::TestSwtpm;

    #[test]
    fn secrets_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::open(dir.path(), &KeyProtection::Software).unwrap();
        assert_eq!(store.get("sip-password").unwrap(), None);
        store.put("sip-password", b"hunter2").unwrap();
        let store = SecretStore::open(dir.path(), &KeyProtection::Software).unwrap();
        assert_eq!(store.get("sip-password").unwrap().unwrap(), b"hunter2");
        let file = fs::read(dir.path().join("sip-password.secret")).unwrap();
        assert!(!file.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn swapped_tampered_or_misnamed_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::open(dir.path(), &KeyProtection::Software).unwrap();
        store.put("a", b"first").unwrap();
        store.put("b", b"second").unwrap();
        fs::copy(dir.path().join("a.secret"), dir.path().join("b.secret")).unwrap();
        assert!(matches!(
            store.get("b"),
            Err(SecretsError::Undecryptable { .. })
        ));
        let mut file = fs::read(dir.path().join("a.secret")).unwrap();
        let last = file.len() - 1;
        file[last] ^= 1;
        fs::write(dir.path().join("a.secret"), &file).unwrap();
        assert!(matches!(
            store.get("a"),
            Err(SecretsError::Undecryptable { .. })
        ));
        fs::write(dir.path().join("c.secret"), [9u8]).unwrap();
        assert!(matches!(store.get("c"), Err(SecretsError::Damaged { .. })));
        for bad in ["", "../etc", "Upper", "a.b", &"x".repeat(65)] {
            assert!(matches!(
                store.put(bad, b"x"),
                Err(SecretsError::BadName { .. })
            ));
        }
    }

    #[test]
    fn a_copied_store_does_not_open_on_another_tpm_nor_after_another_boot() {
        let mut swtpm = TestSwtpm::start();
        let dir = tempfile::tempdir().unwrap();
        let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        let store = SecretStore::open(dir.path(), &KeyProtection::Tpm(tpm)).unwrap();
        store
            .put("meeting-server", b"token for the meeting server")
            .unwrap();
        drop(store);
        assert!(dir.path().join(SEALED_KEY_FILE).exists());
        assert!(!dir.path().join(PLAIN_KEY_FILE).exists());

        // Same box after a reboot: opens.
        swtpm.run();
        let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        let store = SecretStore::open(dir.path(), &KeyProtection::Tpm(tpm)).unwrap();
        assert_eq!(
            store.get("meeting-server").unwrap().unwrap(),
            b"token for the meeting server"
        );

        // The same box booted into another chain (PCR 7 differs): the key does not unseal.
        drop(store);
        let extended = std::process::Command::new("tpm2_pcrextend")
            .args([
                "-T",
                &swtpm.tcti(),
                &format!("7:sha256={}", "cd".repeat(32)),
            ])
            .output()
            .expect("tpm2_pcrextend (Debian package tpm2-tools) runs");
        assert!(extended.status.success(), "{extended:?}");
        let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        match SecretStore::open(dir.path(), &KeyProtection::Tpm(tpm)) {
            Err(SecretsError::Unseal { path, .. }) => assert!(path.ends_with(SEALED_KEY_FILE)),
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("the store opened after PCR 7 changed"),
        }
        // A reboot into the original chain resets PCR 7: it opens again.
        swtpm.run();
        let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        let store = SecretStore::open(dir.path(), &KeyProtection::Tpm(tpm)).unwrap();
        assert!(store.get("meeting-server").unwrap().is_some());

        // The disk in another box: the key does not unseal, so nothing opens.
        let other = TestSwtpm::start();
        let other_tpm = Tpm::open(&other.tcti(), DEVICE_KEY_HANDLE).unwrap();
        match SecretStore::open(dir.path(), &KeyProtection::Tpm(other_tpm)) {
            Err(SecretsError::Unseal { path, .. }) => assert!(path.ends_with(SEALED_KEY_FILE)),
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a copied store opened on another TPM"),
        }
    }
}
