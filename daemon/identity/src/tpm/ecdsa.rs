//! The two encodings the world wants from a TPM's ECC structures: the public key as an X.509
//! SubjectPublicKeyInfo and the signature as the DER `Ecdsa-Sig-Value` (RFC 3279), which is what
//! TLS and X.509 carry.

use sha2::{Digest, Sha256};

/// DER of `AlgorithmIdentifier { id-ecPublicKey, prime256v1 }` inside an SPKI, followed by the
/// BIT STRING header for a 65-byte uncompressed point. Fixed for P-256, so written out.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const COORDINATE_BYTES: usize = 32;

/// A NIST P-256 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P256PublicKey {
    x: [u8; COORDINATE_BYTES],
    y: [u8; COORDINATE_BYTES],
}

impl P256PublicKey {
    /// From big-endian coordinates as the TPM returns them (which may omit leading zero bytes).
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Option<P256PublicKey> {
        Some(P256PublicKey {
            x: left_padded(x)?,
            y: left_padded(y)?,
        })
    }

    /// SEC 1 uncompressed point: `04 || x || y`.
    pub fn uncompressed_point(&self) -> Vec<u8> {
        let mut point = Vec::with_capacity(1 + 2 * COORDINATE_BYTES);
        point.push(0x04);
        point.extend_from_slice(&self.x);
        point.extend_from_slice(&self.y);
        point
    }

    /// X.509 SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> Vec<u8> {
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.uncompressed_point());
        der
    }

    /// SHA-256 of the SubjectPublicKeyInfo as lower-case hex: the key's fingerprint, stable
    /// across certificates (what `openssl pkey -pubin -outform der | sha256sum` prints).
    pub fn fingerprint(&self) -> String {
        Sha256::digest(self.spki_der())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn left_padded(value: &[u8]) -> Option<[u8; COORDINATE_BYTES]> {
    let significant = match value.iter().position(|b| *b != 0) {
        Some(first) => &value[first..],
        None => &[],
    };
    if significant.len() > COORDINATE_BYTES {
        return None;
    }
    let mut out = [0u8; COORDINATE_BYTES];
    out[COORDINATE_BYTES - significant.len()..].copy_from_slice(significant);
    Some(out)
}

/// An ECDSA signature as the TPM returns it: the two big-endian integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdsaSignature {
    /// r, an unsigned big-endian integer as the TPM returned it.
    pub r: Vec<u8>,
    /// s, likewise.
    pub s: Vec<u8>,
}

impl EcdsaSignature {
    /// `SEQUENCE { INTEGER r, INTEGER s }`. Both integers are at most 33 bytes for P-256, so
    /// every length fits in the short form.
    pub fn to_der(&self) -> Vec<u8> {
        let r = der_unsigned_integer(&self.r);
        let s = der_unsigned_integer(&self.s);
        let mut der = Vec::with_capacity(2 + r.len() + s.len());
        der.push(0x30);
        der.push((r.len() + s.len()) as u8);
        der.extend_from_slice(&r);
        der.extend_from_slice(&s);
        der
    }
}

/// A positive INTEGER: minimal length, with a zero byte in front when the high bit is set so it
/// does not read as negative.
fn der_unsigned_integer(big_endian: &[u8]) -> Vec<u8> {
    let first = big_endian
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(big_endian.len());
    let significant = &big_endian[first..];
    let mut content = Vec::with_capacity(significant.len() + 1);
    if significant.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(significant);
    let mut der = vec![0x02, content.len() as u8];
    der.extend_from_slice(&content);
    der
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(der_unsigned_integer(&[0, 0, 0x12]), vec![0x02, 1, 0x12]);
        assert_eq!(der_unsigned_integer(&[0x80]), vec![0x02, 2, 0, 0x80]);
        assert_eq!(der_unsigned_integer(&[0, 0]), vec![0x02, 1, 0]);
        assert_eq!(der_unsigned_integer(&[]), vec![0x02, 1, 0]);
    }

    #[test]
    fn a_signature_from_raw_integers_verifies_with_ring() {
        // ring signs in the fixed r||s form; re-encoding it must give a DER signature that
        // ring's ASN.1 verifier accepts for the same key and message.
        use ring::rand::SystemRandom;
        use ring::signature::{self, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        for message in [&b"first message"[..], b"second", b""] {
            let fixed = key.sign(&rng, message).unwrap();
            let (r, s) = fixed.as_ref().split_at(32);
            let der = EcdsaSignature {
                r: r.to_vec(),
                s: s.to_vec(),
            }
            .to_der();
            signature::UnparsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_ASN1,
                key.public_key().as_ref(),
            )
            .verify(message, &der)
            .unwrap();
        }
    }

    #[test]
    fn spki_matches_the_point_and_short_coordinates_are_padded() {
        let key = P256PublicKey::from_coordinates(&[1; 32], &[0, 0, 7]).unwrap();
        let spki = key.spki_der();
        assert_eq!(spki.len(), 91);
        assert_eq!(&spki[26..27], &[0x04]);
        assert_eq!(&spki[27..59], &[1; 32]);
        assert_eq!(spki[90], 7);
        assert_eq!(spki[59..90], [0; 31]);
        assert!(P256PublicKey::from_coordinates(&[1; 33], &[1; 32]).is_none());
        assert_eq!(key.fingerprint().len(), 64);
    }

    #[test]
    fn spki_is_what_rcgen_writes_for_a_p256_key() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let point = rcgen::PublicKeyData::der_bytes(&pair);
        let key = P256PublicKey::from_coordinates(&point[1..33], &point[33..65]).unwrap();
        assert_eq!(
            key.spki_der(),
            rcgen::PublicKeyData::subject_public_key_info(&pair)
        );
    }
}
