//! Proof that the attestation key lives in the same TPM as the EK: TPM2_MakeCredential done in
//! software by the verifier (TPM 2.0 Part 1, "Credential Protection"). The credential is
//! encrypted so that only the TPM holding the EK's private key can recover it, and only into an
//! object with the AK's exact name; the device returns it after TPM2_ActivateCredential.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use ring::hmac;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use sha2::{Digest, Sha256};

const TPM_ALG_ECC: u16 = 0x0023;
const TPM_ALG_SHA256: u16 = 0x000b;
const TPM_ALG_NULL: u16 = 0x0010;
const TPM_ECC_NIST_P256: u16 = 0x0003;
const FIXED_TPM: u32 = 1 << 1;
const RESTRICTED: u32 = 1 << 16;
const DECRYPT: u32 = 1 << 17;
const SIGN: u32 = 1 << 18;

/// Why an attestation key's public area was refused or no credential could be made for it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    /// The TPMT_PUBLIC is truncated, has an oversized point or trailing bytes, or a name
    /// algorithm other than SHA-256.
    #[error("the attestation key's public area is malformed: {0}")]
    MalformedAk(&'static str),
    /// The key is not ECC P-256, not restricted, not signing-only or not fixed to its TPM.
    #[error(
        "the attestation key is not a TPM-bound, restricted P-256 signing key: it could sign \
         data that looks like a quote"
    )]
    NotAnAttestationKey,
    /// The EK certificate's SubjectPublicKeyInfo is not an RSA key (only RSA EKs are supported).
    #[error("the EK certificate's key is not an RSA key: {0}")]
    NotRsa(String),
    /// RSA-OAEP encryption of the seed to the EK failed.
    #[error("cannot encrypt the credential to the EK: {0}")]
    Encrypt(String),
}

/// A challenge for the device and the answer only the right TPM can give.
#[derive(Debug, Clone)]
pub struct CredentialChallenge {
    /// TPM2B_ID_OBJECT contents.
    pub credential_blob: Vec<u8>,
    /// TPM2B_ENCRYPTED_SECRET contents.
    pub encrypted_secret: Vec<u8>,
    /// What TPM2_ActivateCredential must return.
    pub credential: Vec<u8>,
}

/// The AK's TPM name: nameAlg || SHA-256(TPMT_PUBLIC).
pub fn ak_name(public_area: &[u8]) -> Vec<u8> {
    let mut name = TPM_ALG_SHA256.to_be_bytes().to_vec();
    name.extend_from_slice(&Sha256::digest(public_area));
    name
}

/// The uncompressed P-256 point of the AK described by `public_area` (TPMT_PUBLIC), after
/// checking that it is a restricted signing key that cannot leave the TPM.
pub fn ak_point(public_area: &[u8]) -> Result<Vec<u8>, CredentialError> {
    let mut r = Reader(public_area);
    if r.u16()? != TPM_ALG_ECC {
        return Err(CredentialError::NotAnAttestationKey);
    }
    if r.u16()? != TPM_ALG_SHA256 {
        return Err(CredentialError::MalformedAk(
            "name algorithm is not SHA-256",
        ));
    }
    let attributes = r.u32()?;
    let wanted = FIXED_TPM | RESTRICTED | SIGN;
    if attributes & wanted != wanted || attributes & DECRYPT != 0 {
        return Err(CredentialError::NotAnAttestationKey);
    }
    let _auth_policy = r.sized()?;
    if r.u16()? != TPM_ALG_NULL {
        // A symmetric algorithm belongs to storage keys, not signing keys.
        return Err(CredentialError::NotAnAttestationKey);
    }
    if r.u16()? != TPM_ALG_NULL {
        let _scheme_hash = r.u16()?;
    }
    if r.u16()? != TPM_ECC_NIST_P256 {
        return Err(CredentialError::NotAnAttestationKey);
    }
    if r.u16()? != TPM_ALG_NULL {
        let _kdf_hash = r.u16()?;
    }
    let (x, y) = (r.sized()?, r.sized()?);
    if x.len() > 32 || y.len() > 32 || !r.0.is_empty() {
        return Err(CredentialError::MalformedAk("bad point or trailing bytes"));
    }
    let mut point = vec![0x04];
    point.extend(std::iter::repeat_n(0, 32 - x.len()));
    point.extend_from_slice(x);
    point.extend(std::iter::repeat_n(0, 32 - y.len()));
    point.extend_from_slice(y);
    Ok(point)
}

/// TPM2_MakeCredential for an RSA 2048 EK (default template: SHA-256 name, AES-128-CFB) and the
/// object named `name`, with a fresh random credential.
pub fn make_credential(
    ek_spki: &[u8],
    name: &[u8],
) -> Result<CredentialChallenge, CredentialError> {
    let ek = RsaPublicKey::from_public_key_der(ek_spki)
        .map_err(|e| CredentialError::NotRsa(e.to_string()))?;
    let mut seed = [0u8; 32];
    roomd_base::random::fill(&mut seed);
    let mut credential = vec![0u8; 32];
    roomd_base::random::fill(&mut credential);

    let encrypted_secret = ek
        .encrypt(
            &mut rsa::rand_core::OsRng,
            Oaep::new_with_label::<Sha256, _>("IDENTITY\0"),
            &seed,
        )
        .map_err(|e| CredentialError::Encrypt(e.to_string()))?;

    let symmetric_key = kdfa(&seed, b"STORAGE", name, &[], 128);
    let mut plaintext = (credential.len() as u16).to_be_bytes().to_vec();
    plaintext.extend_from_slice(&credential);
    let encrypted_identity = aes128_cfb_encrypt(&symmetric_key, &plaintext);

    let hmac_key = kdfa(&seed, b"INTEGRITY", &[], &[], 256);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &hmac_key);
    let mut context = hmac::Context::with_key(&key);
    context.update(&encrypted_identity);
    context.update(name);
    let outer_hmac = context.sign();

    let mut credential_blob = (outer_hmac.as_ref().len() as u16).to_be_bytes().to_vec();
    credential_blob.extend_from_slice(outer_hmac.as_ref());
    credential_blob.extend_from_slice(&encrypted_identity);
    Ok(CredentialChallenge {
        credential_blob,
        encrypted_secret,
        credential,
    })
}

/// KDFa with HMAC-SHA256 (TPM 2.0 Part 1, 11.4.10.2).
fn kdfa(key: &[u8], label: &[u8], context_u: &[u8], context_v: &[u8], bits: u32) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let bytes = bits.div_ceil(8) as usize;
    let mut out = Vec::with_capacity(bytes + 32);
    let mut counter: u32 = 1;
    while out.len() < bytes {
        let mut context = hmac::Context::with_key(&key);
        context.update(&counter.to_be_bytes());
        context.update(label);
        context.update(&[0]);
        context.update(context_u);
        context.update(context_v);
        context.update(&bits.to_be_bytes());
        out.extend_from_slice(context.sign().as_ref());
        counter += 1;
    }
    out.truncate(bytes);
    out
}

/// AES-128 in CFB mode with a zero IV, as TPM2 uses for credentials.
fn aes128_cfb_encrypt(key: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes128::new(GenericArray::from_slice(key));
    let mut feedback = [0u8; 16];
    let mut out = Vec::with_capacity(plaintext.len());
    for chunk in plaintext.chunks(16) {
        let mut block = GenericArray::from(feedback);
        cipher.encrypt_block(&mut block);
        let encrypted: Vec<u8> = chunk.iter().zip(block.iter()).map(|(p, k)| p ^ k).collect();
        feedback[..encrypted.len()].copy_from_slice(&encrypted);
        out.extend_from_slice(&encrypted);
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CredentialError> {
        if self.0.len() < n {
            return Err(CredentialError::MalformedAk("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, CredentialError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, CredentialError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn sized(&mut self) -> Result<&'a [u8], CredentialError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdfa_matches_a_known_answer() {
        // Output computed independently with Python's hmac/hashlib (same inputs, 256 bits).
        let out = kdfa(b"seed", b"INTEGRITY", b"", b"", 256);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "8c7fbd98063c7a7f290f0372d7cc6393e1fdf845b232a05d460687ae62a5b25c"
        );
        assert_ne!(out, kdfa(b"seed", b"STORAGE", b"", b"", 256));
        assert_eq!(kdfa(b"seed", b"STORAGE", b"n", b"", 128).len(), 16);
    }

    #[test]
    fn cfb_of_a_partial_block_is_the_keystream_prefix() {
        let key = [7u8; 16];
        let long = aes128_cfb_encrypt(&key, &[0u8; 34]);
        let short = aes128_cfb_encrypt(&key, &[0u8; 5]);
        assert_eq!(long.len(), 34);
        assert_eq!(&long[..5], &short[..]);
    }
}
