//! Password rules, hashing (argon2id, PHC string) and verification.
//!
//! Hashing and verifying are deliberately slow (tens of milliseconds, ~19 MiB of memory): callers
//! run them on a blocking thread and never while holding a lock.

use std::sync::OnceLock;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

use super::error::AccountsError;
use roomd_model::{Secret, random_base64url};

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in UTF-8 bytes (bounds the hashing work).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password against the policy. Length is counted in characters (what a person
/// types), the upper bound in bytes (what the hash function has to process).
pub(super) fn check_password_policy(username: &str, password: &str) -> Result<(), AccountsError> {
    let weak = |reason: &str| AccountsError::WeakPassword {
        reason: reason.to_owned(),
    };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(weak("it must be at least 12 characters long"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(weak("it must be at most 1024 bytes long"));
    }
    if password.to_lowercase() == username.to_lowercase() {
        return Err(weak("it must not be the username"));
    }
    Ok(())
}

/// The argon2 instance new hashes are made with: the crate's defaults (argon2id, version 19,
/// m = 19 MiB, t = 2, p = 1) in production. Unit tests use the cheapest parameters so that the
/// many logins in tests stay fast in unoptimised builds. Verification always uses the parameters
/// stored in the hash itself.
fn hasher() -> Result<Argon2<'static>, AccountsError> {
    #[cfg(not(test))]
    {
        Ok(Argon2::default())
    }
    #[cfg(test)]
    {
        let params = argon2::Params::new(8, 1, 1, None).map_err(|e| AccountsError::Hashing {
            detail: e.to_string(),
        })?;
        Ok(Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }
}

/// Hashes `password` with a fresh random salt; returns the PHC string to store.
pub(super) fn hash_password(password: &str) -> Result<Secret, AccountsError> {
    let hashing_failed = |e: argon2::password_hash::Error| AccountsError::Hashing {
        detail: e.to_string(),
    };
    let mut salt_bytes = [0u8; 16];
    roomd_base::random::fill(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(hashing_failed)?;
    let hash = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(hashing_failed)?;
    Ok(Secret::new(hash.to_string()))
}

/// Whether `stored` (a PHC string) is a hash this module can verify. Used to reject damaged
/// state files at load time instead of at someone's login.
pub(super) fn is_valid_phc(stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| hash.algorithm.as_str().starts_with("argon2"))
}

/// Whether `password` matches the PHC string `stored`. The comparison inside argon2 is
/// constant-time.
pub(super) fn verify_password(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// Like [`verify_password`], but for a user that may not exist: without a stored hash the
/// password is verified against a dummy hash (and the result discarded) so that an unknown
/// username takes as long as a wrong password and names cannot be probed by timing.
pub(super) fn verify_password_or_dummy(stored: Option<&str>, password: &str) -> bool {
    match stored {
        Some(stored) => verify_password(stored, password),
        None => {
            match dummy_hash() {
                Some(dummy) => {
                    verify_password(dummy, password);
                }
                // Only if hashing itself is broken; spend the same effort anyway.
                None => {
                    let _ = hash_password(password);
                }
            }
            false
        }
    }
}

/// Computes the dummy hash now (one password hash), so that the first login with an unknown
/// username is not the one that pays for it, which would make it measurably slower.
pub(super) fn prepare_dummy_hash() {
    dummy_hash();
}

/// A hash of a random password nobody knows, made with the same parameters as real hashes.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<Secret>> = OnceLock::new();
    DUMMY
        .get_or_init(|| match hash_password(&random_base64url(24)) {
            Ok(hash) => Some(hash),
            Err(error) => {
                tracing::error!(%error, "could not prepare the dummy password hash");
                None
            }
        })
        .as_ref()
        .map(Secret::expose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_counts_characters_not_bytes() {
        // 11 two-byte characters: 22 bytes, still too short.
        assert!(check_password_policy("alice", &"é".repeat(11)).is_err());
        assert!(check_password_policy("alice", &"é".repeat(12)).is_ok());
        assert!(check_password_policy("alice", "short").is_err());
        assert!(check_password_policy("alice", "correct horse").is_ok());
    }

    #[test]
    fn policy_limits_bytes_and_refuses_the_username() {
        assert!(check_password_policy("alice", &"x".repeat(1024)).is_ok());
        let err = check_password_policy("alice", &"x".repeat(1025)).unwrap_err();
        assert!(err.to_string().contains("1024 bytes"), "{err}");
        let err = check_password_policy("administrator", "Administrator").unwrap_err();
        assert!(err.to_string().contains("username"), "{err}");
    }

    #[test]
    fn hash_is_argon2id_phc_and_verifies_only_the_right_password() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(
            hash.expose().starts_with("$argon2id$v=19$"),
            "{}",
            hash.expose()
        );
        assert!(is_valid_phc(hash.expose()));
        assert!(verify_password(hash.expose(), "correct horse battery"));
        assert!(!verify_password(hash.expose(), "correct horse battery!"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        let again = hash_password("correct horse battery").unwrap();
        assert_ne!(hash.expose(), again.expose(), "salts differ");
    }

    #[test]
    fn production_hasher_makes_argon2id_v19_with_default_costs() {
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let hash = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }

    #[test]
    fn unknown_user_never_verifies() {
        assert!(!verify_password_or_dummy(None, "anything at all"));
        assert!(!is_valid_phc("$pbkdf2$x"));
    }
}
