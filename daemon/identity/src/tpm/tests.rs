//! The TPM module against a real (software) TPM.

use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use super::test_swtpm::TestSwtpm;
use super::*;

#[test]
fn the_device_key_is_created_once_and_reused_after_a_restart() {
    let mut swtpm = TestSwtpm::start();
    let first = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
    let created = first.device_key().clone();
    drop(first);
    // Same TPM state, new process and connection: as after a reboot.
    swtpm.run();
    let second = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
    assert_eq!(second.device_key(), &created);
}

#[test]
fn another_tpm_has_another_key() {
    let one = TestSwtpm::start();
    let other = TestSwtpm::start();
    let a = Tpm::open(&one.tcti(), DEVICE_KEY_HANDLE).unwrap();
    let b = Tpm::open(&other.tcti(), DEVICE_KEY_HANDLE).unwrap();
    assert_ne!(a.device_key(), b.device_key());
}

#[test]
fn signatures_verify_with_the_public_key_and_only_for_their_message() {
    let swtpm = TestSwtpm::start();
    let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
    let public = UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_ASN1,
        tpm.device_key().uncompressed_point(),
    );
    // Many signatures in a row: transient objects must not pile up in a TPM without a
    // resource manager (swtpm has 3 object slots).
    for i in 0..20u8 {
        let message = [b"handshake transcript ".as_slice(), &[i]].concat();
        let signature = tpm
            .sign_digest(Sha256::digest(&message).into())
            .unwrap()
            .to_der();
        public.verify(&message, &signature).unwrap();
        assert!(public.verify(b"another message", &signature).is_err());
    }
}

#[test]
fn signing_from_many_threads_is_serialised() {
    let swtpm = TestSwtpm::start();
    let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
    let point = tpm.device_key().uncompressed_point();
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let tpm = tpm.clone();
            let point = point.clone();
            std::thread::spawn(move || {
                for i in 0..5u8 {
                    let message = [t, i];
                    let signature = tpm
                        .sign_digest(Sha256::digest(message).into())
                        .unwrap()
                        .to_der();
                    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &point)
                        .verify(&message, &signature)
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn a_missing_tpm_is_an_error_naming_the_tcti() {
    let swtpm = TestSwtpm::start();
    let tcti = swtpm.tcti();
    drop(swtpm);
    let err = Tpm::open(&tcti, DEVICE_KEY_HANDLE).unwrap_err();
    assert!(matches!(err, TpmError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains(&tcti), "{err}");
}

#[test]
fn a_foreign_key_at_the_handle_is_not_overwritten() {
    // A storage (decryption) key persisted where the device key belongs: roomd must refuse to
    // use it, and must not evict it.
    use std::str::FromStr;
    use tss_esapi::handles::PersistentTpmHandle;
    use tss_esapi::interface_types::{
        dynamic_handles::Persistent,
        resource_handles::{Hierarchy, Provision},
        session_handles::AuthSession,
    };
    let swtpm = TestSwtpm::start();
    let name = tss_esapi::tcti_ldr::TctiNameConf::from_str(&swtpm.tcti()).unwrap();
    let mut context = tss_esapi::Context::new(name).unwrap();
    let template = device_key::storage_primary_template().unwrap();
    context
        .execute_with_session(Some(AuthSession::Password), |context| {
            let primary = context
                .create_primary(Hierarchy::Owner, template, None, None, None, None)
                .unwrap()
                .key_handle;
            let persistent = PersistentTpmHandle::new(DEVICE_KEY_HANDLE).unwrap();
            context
                .evict_control(
                    Provision::Owner,
                    primary.into(),
                    Persistent::Persistent(persistent),
                )
                .unwrap();
            context.flush_context(primary.into())
        })
        .unwrap();
    drop(context);

    for _ in 0..2 {
        let err = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap_err();
        assert!(matches!(err, TpmError::ForeignKey { .. }), "{err:?}");
        assert!(err.to_string().contains("0x81010010"), "{err}");
    }
}

mod quotes {
    use super::*;
    use roomd_attestation::{QuoteError, verify_quote};

    fn quote_of(tpm: &Tpm, nonce: &[u8]) -> (Vec<u8>, Quote) {
        let ak = tpm
            .attestation()
            .expect("attestation is set up")
            .ak_public
            .clone();
        (ak.uncompressed_point(), tpm.quote(nonce.to_vec()).unwrap())
    }

    #[test]
    fn a_quote_verifies_with_the_attestation_key_and_its_nonce() {
        let swtpm = TestSwtpm::start();
        let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        let nonce = b"a fresh nonce from the verifier";
        let (ak, quote) = quote_of(&tpm, nonce);
        assert_eq!(
            quote.pcrs.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            QUOTED_PCRS
        );
        let verified = verify_quote(
            &ak,
            &quote.attest,
            &quote.signature.to_der(),
            nonce,
            &quote.pcrs,
        )
        .unwrap();
        assert_eq!(verified.pcr_digest.len(), 32);
    }

    #[test]
    fn the_attestation_key_is_kept_across_restarts() {
        let mut swtpm = TestSwtpm::start();
        let first = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        let ak = first.attestation().unwrap().ak_public.clone();
        drop(first);
        swtpm.run();
        let second = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        assert_eq!(second.attestation().unwrap().ak_public, ak);
        assert_ne!(ak, *second.device_key());
    }

    #[test]
    fn wrong_nonce_tampering_and_a_foreign_key_are_refused() {
        let swtpm = TestSwtpm::start();
        let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        let nonce = b"nonce one";
        let (ak, quote) = quote_of(&tpm, nonce);
        let signature = quote.signature.to_der();
        let check = |ak: &[u8], attest: &[u8], nonce: &[u8], pcrs: &[(u8, Vec<u8>)]| {
            verify_quote(ak, attest, &signature, nonce, pcrs)
        };
        assert_eq!(
            check(&ak, &quote.attest, b"nonce two", &quote.pcrs),
            Err(QuoteError::WrongNonce)
        );
        let mut tampered = quote.attest.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            check(&ak, &tampered, nonce, &quote.pcrs),
            Err(QuoteError::BadSignature)
        );
        let mut pcrs = quote.pcrs.clone();
        pcrs[0].1[0] ^= 1;
        assert_eq!(
            check(&ak, &quote.attest, nonce, &pcrs),
            Err(QuoteError::PcrDigestMismatch)
        );
        let other = TestSwtpm::start();
        let other_tpm = Tpm::open(&other.tcti(), DEVICE_KEY_HANDLE).unwrap();
        let (foreign_ak, _) = quote_of(&other_tpm, b"x");
        assert_eq!(
            check(&foreign_ak, &quote.attest, nonce, &quote.pcrs),
            Err(QuoteError::BadSignature)
        );
    }
}

mod credentials {
    use std::str::FromStr;

    use super::*;
    use roomd_attestation::{ak_name, ak_point, make_credential};

    /// The EK's public key as a verifier gets it (SubjectPublicKeyInfo DER), read straight from
    /// the TPM: these swtpms have no EK certificate.
    fn ek_spki(tcti: &str) -> Vec<u8> {
        use tss_esapi::abstraction::{AsymmetricAlgorithmSelection, ek};
        use tss_esapi::interface_types::key_bits::RsaKeyBits;
        let name = tss_esapi::tcti_ldr::TctiNameConf::from_str(tcti).unwrap();
        let mut context = tss_esapi::Context::new(name).unwrap();
        let ek = ek::create_ek_object_2(
            &mut context,
            AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
            None,
        )
        .unwrap();
        let (public, _, _) = context.read_public(ek).unwrap();
        context.flush_context(ek.into()).unwrap();
        let tss_esapi::structures::Public::Rsa { unique, .. } = public else {
            panic!("not an RSA EK");
        };
        use rsa::pkcs8::EncodePublicKey;
        let n = rsa::BigUint::from_bytes_be(unique.value());
        let key = rsa::RsaPublicKey::new(n, rsa::BigUint::from(65537u32)).unwrap();
        key.to_public_key_der().unwrap().as_bytes().to_vec()
    }

    #[test]
    fn the_tpm_releases_a_credential_made_for_its_ek_and_its_ak() {
        let swtpm = TestSwtpm::start();
        let ek = ek_spki(&swtpm.tcti());
        let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        let attestation = tpm.attestation().unwrap().clone();
        assert_eq!(
            ak_point(&attestation.ak_public_area).unwrap(),
            attestation.ak_public.uncompressed_point()
        );
        let name = ak_name(&attestation.ak_public_area);
        let challenge = make_credential(&ek, &name).unwrap();
        let answer = tpm
            .activate_credential(challenge.credential_blob, challenge.encrypted_secret)
            .unwrap();
        assert_eq!(answer, challenge.credential);
    }

    #[test]
    fn a_credential_for_another_key_name_or_another_tpm_is_not_released() {
        let swtpm = TestSwtpm::start();
        let other = TestSwtpm::start();
        let ek = ek_spki(&swtpm.tcti());
        let other_ek = ek_spki(&other.tcti());
        let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        let name = ak_name(&tpm.attestation().unwrap().ak_public_area);
        // Another AK name (e.g. a software key presented as the AK).
        let mut wrong_name = name.clone();
        wrong_name[5] ^= 1;
        let challenge = make_credential(&ek, &wrong_name).unwrap();
        assert!(
            tpm.activate_credential(challenge.credential_blob, challenge.encrypted_secret)
                .is_err()
        );
        // Made for another TPM's EK.
        let challenge = make_credential(&other_ek, &name).unwrap();
        assert!(
            tpm.activate_credential(challenge.credential_blob, challenge.encrypted_secret)
                .is_err()
        );
        // The TPM still answers afterwards (sessions and the EK were flushed).
        let challenge = make_credential(&ek, &name).unwrap();
        assert_eq!(
            tpm.activate_credential(challenge.credential_blob, challenge.encrypted_secret)
                .unwrap(),
            challenge.credential
        );
    }
}

mod sealing {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_on_its_tpm_after_a_restart_and_not_on_another() {
        let mut swtpm = TestSwtpm::start();
        let secret = b"data-encryption key: 32 bytes..".to_vec();
        let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        let blob = tpm.seal(secret.clone()).unwrap();
        assert!(!blob.windows(secret.len()).any(|w| w == secret.as_slice()));
        drop(tpm);
        swtpm.run();
        let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
        assert_eq!(tpm.unseal(blob.clone()).unwrap(), secret);

        // A copied disk on another box: the blob is useless there.
        let other = TestSwtpm::start();
        let other_tpm = Tpm::open(&other.tcti(), DEVICE_KEY_HANDLE).unwrap();
        assert!(other_tpm.unseal(blob.clone()).is_err());
        // A tampered blob does not open either, and the TPM keeps working afterwards.
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(tpm.unseal(tampered).is_err());
        assert_eq!(tpm.unseal(blob).unwrap(), secret);
    }
}

#[test]
fn handshake_signatures_beyond_the_bound_are_refused_at_once() {
    let swtpm = TestSwtpm::start();
    let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).unwrap();
    let start = std::sync::Arc::new(std::sync::Barrier::new(64));
    let threads: Vec<_> = (0..64u8)
        .map(|t| {
            let (tpm, start) = (tpm.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let begun = std::time::Instant::now();
                let result = tpm.sign_digest_for_handshake(Sha256::digest([t]).into());
                (result, begun.elapsed())
            })
        })
        .collect();
    let (mut signed, mut busy) = (0, 0);
    for thread in threads {
        match thread.join().unwrap() {
            (Ok(_), _) => signed += 1,
            (Err(TpmError::Busy { waiting }), took) => {
                assert!(waiting >= MAX_WAITING_HANDSHAKE_SIGNATURES);
                // Refused without waiting for the TPM.
                assert!(took < std::time::Duration::from_millis(50), "{took:?}");
                busy += 1;
            }
            (Err(e), _) => panic!("{e}"),
        }
    }
    assert!(
        signed >= MAX_WAITING_HANDSHAKE_SIGNATURES,
        "{signed} signed"
    );
    assert!(busy > 0, "64 at once, none refused");
    // Once the queue has drained, handshake signatures are served again, and other callers
    // (certificates, CSRs) always wait for their turn.
    tpm.sign_digest_for_handshake(Sha256::digest(b"after").into())
        .unwrap();
    tpm.sign_digest(Sha256::digest(b"certificate").into())
        .unwrap();
}
