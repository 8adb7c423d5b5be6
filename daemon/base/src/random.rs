//! Secrets and identifiers from the operating system's random source.

use std::fmt::Write;

/// Alphabet for codes people read off a screen and type: no 0/O, 1/I/L, 2/Z, 5/S, 8/B.
pub const UNAMBIGUOUS_ALPHABET: &[u8] = b"ACDEFGHJKMNPQRTUVWXY34679";

/// Fills `buf` from the OS random source. Failing to get randomness is unrecoverable for a
/// security device, so this aborts loudly rather than hand out a weak secret.
pub fn fill(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        panic!("the operating system's random source failed: {e}");
    }
}

/// `bytes` random bytes as lowercase hex.
pub fn token_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill(&mut buf);
    buf.iter()
        .fold(String::with_capacity(bytes * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A code of `len` characters from `alphabet`, uniformly distributed (rejection sampling).
pub fn code(len: usize, alphabet: &[u8]) -> String {
    assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut byte = [0u8; 1];
    while out.len() < len {
        fill(&mut byte);
        if (byte[0] as usize) < limit {
            out.push(alphabet[byte[0] as usize % alphabet.len()] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_only_the_alphabet() {
        let c = code(12, UNAMBIGUOUS_ALPHABET);
        assert_eq!(c.len(), 12);
        assert!(c.bytes().all(|b| UNAMBIGUOUS_ALPHABET.contains(&b)));
        assert_ne!(code(12, UNAMBIGUOUS_ALPHABET), c);
    }

    #[test]
    fn hex_tokens_have_the_right_length() {
        assert_eq!(token_hex(16).len(), 32);
    }
}
