//! Secret values (cookies, CSRF and API tokens, password hashes) and how they are made and
//! fingerprinted. Wrapping them in [`Secret`] keeps them out of `Debug` output and therefore out
//! of logs and error messages.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A string that must never be logged. `Debug` prints `[redacted]`; read it with [`Secret::expose`]
/// only where it leaves roomd on purpose (a response body, a cookie, a state file).
/// Deliberately no `PartialEq`: compare secrets with `subtle` in constant time.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`; from here on it is redacted in `Debug` output.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret in clear, for where it leaves roomd on purpose; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `bytes` random bytes, base64url without padding (safe in cookies, headers and URLs).
pub fn random_base64url(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    roomd_base::random::fill(&mut buf);
    URL_SAFE_NO_PAD.encode(&buf)
}

/// SHA-256 of `value`. Bearer secrets and cookies carry 256 random bits, so a fast unsalted hash
/// is enough to make a stolen state file useless without the slowness of a password hash.
pub fn sha256(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// [`sha256`] as lowercase hex, the form kept in state files.
pub fn sha256_hex(value: &str) -> String {
    use std::fmt::Write;
    sha256(value)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2-very-secret".into());
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }

    #[test]
    fn sha256_hex_matches_a_known_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn random_base64url_has_the_expected_length_and_alphabet() {
        let value = random_base64url(32);
        assert_eq!(value.len(), 43);
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(random_base64url(32), value);
    }
}
