//! RFC 9605's own test vectors (Appendix C) through roomd's [`seal`] and [`unseal`], the functions
//! every protected frame goes through. The same file is the reference for the browser's
//! implementation. Suites 1 to 3 (AES-CTR with HMAC) are skipped: roomd uses suite 5 only, and
//! ring, our one crypto backend, has no AES-CTR.

use roomd_e2ee::frame::{seal, unseal};
use roomd_e2ee::keys::{KeySecret, ReceiverKeys};
use serde::Deserialize;
use sframe::CipherSuite;
use sframe::key::EncryptionKey;

#[derive(Deserialize)]
struct Vectors {
    sframe: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    cipher_suite: u8,
    kid: u64,
    ctr: u64,
    base_key: String,
    metadata: String,
    pt: String,
    ct: String,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn the_rfc_9605_aes_gcm_vectors_seal_and_unseal() {
    let vectors: Vectors =
        serde_json::from_str(include_str!("rfc9605-sframe.json")).expect("vectors parse");
    let mut checked = 0;
    for v in &vectors.sframe {
        let suite = match v.cipher_suite {
            4 => CipherSuite::AesGcm128Sha256,
            5 => CipherSuite::AesGcm256Sha512,
            _ => continue,
        };
        let key = EncryptionKey::derive_from(suite, v.kid, hex(&v.base_key)).expect("derive");
        let sealed = seal(&key, v.ctr, &hex(&v.metadata), &hex(&v.pt)).expect("seal");
        assert_eq!(sealed, hex(&v.ct), "suite {} ciphertext", v.cipher_suite);
        if suite == roomd_e2ee::keys::CIPHER_SUITE {
            let mut keys = ReceiverKeys::default();
            let secret = KeySecret::from_slice(&hex(&v.base_key)).expect("base key");
            keys.insert(v.kid, &secret).expect("receiver key");
            assert_eq!(
                unseal(&keys, &hex(&v.metadata), &hex(&v.ct)).expect("unseal"),
                hex(&v.pt)
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 2, "both AES-GCM vectors were checked");
}
